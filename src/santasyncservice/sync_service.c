/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santasyncservice: talks to the sync server on santad's behalf.
 *
 * It runs as `nobody`, started on demand (systemd socket activation or
 * santad's launcher passes the listening socket as LISTEN_FDS; --socket
 * PATH makes one for tests). It serves santa.SyncService to santad and
 * santactl, and is a client of santad's control socket, where the IPC layer
 * gives it the SYNCSERVICE role and santad lets that role change rules,
 * events and sync settings.
 *
 * Two threads. The main thread runs the sd-event loop: the IPC server, the
 * full-sync timer, and the log listeners of `santactl sync`. A worker
 * thread runs syncs and uploads one at a time, with blocking libcurl and a
 * blocking ipc_client to santad, so that a slow server never stalls the
 * loop. The worker hands log lines and results back through a locked inbox
 * and an eventfd; every ipc_conn is touched only by the main thread.
 *
 * At most two syncs are waiting or running at a time (the original's
 * limit); a third request is answered TooManySyncsInProgress.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "activation.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "santa-build.h"
#include "sync.pb-c.h"
#include "sync_daemon.h"
#include "sync_engine.h"
#include "sync_http.h"
#include "sync_sysinfo.h"

#define SVC_MAX_SYNCS 2                  /* waiting or running */
#define SVC_MAX_POSTS 16                 /* event uploads waiting */
#define SVC_MAX_LINES 2000               /* lines held for one listener */
#define SVC_UPLOAD_BACKOFF_SEC 600       /* per file hash, as santad's queue */
#define SVC_RECENT_MAX 1024
#define SVC_LOG_CALL_USEC (10ULL * 1000000)

typedef enum svc_job_kind {
	SVC_JOB_SYNC,
	SVC_JOB_POST_EVENTS,
} svc_job_kind;

typedef enum svc_listener_state {
	SVC_LISTENER_NONE,         /* nobody asked for the lines */
	SVC_LISTENER_CONNECTING,
	SVC_LISTENER_READY,
	SVC_LISTENER_GONE,
} svc_listener_state;

typedef struct svc svc;
typedef struct svc_job svc_job;

/* A log line on its way from the worker to a listener; a NULL-text entry
 * tells the main thread its job is done. */
typedef struct svc_line {
	struct svc_line *next;
	svc_job *job;
	int level;
	bool done;
	char text[];
} svc_line;

struct svc_job {
	svc_job *next;             /* worker queue (under svc.lock) */
	svc_job *all_next;         /* svc.jobs (main thread) */
	svc *s;
	svc_job_kind kind;
	int sync_type;
	Santa__PostEventsRequest *events;

	/* Main thread only. */
	ipc_call *call;            /* the Sync call to answer, if any */
	ipc_conn *listener;
	svc_listener_state listener_state;
	svc_line *lines;
	svc_line **lines_tail;
	size_t n_lines;
	bool done;
	bool barrier_sent;

	/* Written by the worker before it reports the job done. */
	Santa__SyncStatus status;
	uint32_t full_sync_interval;
};

typedef struct svc_knobs {
	uint32_t attempts;
	uint32_t backoff_ms;
	uint32_t timeout_ms;
	uint32_t max_pages;        /* rule pages per sync; 0 = the engine's */
} svc_knobs;

typedef struct svc_recent {
	char sha256[65];
	time_t when;
} svc_recent;

struct svc {
	santa_config cfg;
	svc_knobs knobs;
	char *machine_id;          /* MachineID, else /etc/machine-id */
	char *santad_path;
	sd_event *ev;
	ipc_trust *trust;
	ipc_server *server;
	sd_event_source *timer;
	sd_event_source *inbox_src;
	int inbox_fd;
	bool config_error;         /* exit with SVC_EXIT_CONFIG */

	/* Main thread. */
	svc_job *jobs;
	unsigned n_syncs;
	unsigned n_posts;
	uint32_t interval;
	svc_recent recent[SVC_RECENT_MAX];

	/* Shared with the worker, under LOCK. */
	pthread_t worker;
	bool worker_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	svc_job *queue;
	svc_job **queue_tail;
	svc_line *inbox;
	svc_line **inbox_tail;
	bool stopping;
	atomic_int cancel;

	/* Worker only. */
	sync_http *http;
	svc_job *current;
	sync_unblock unblock;      /* uploaded blocks, for "can now be run" */
};

static void svc_job_progress(svc_job *job);

/* --- Jobs, main thread --- */

static void svc_job_free(svc_job *job)
{
	svc_line *l, *next;

	if (!job)
		return;
	for (l = job->lines; l; l = next) {
		next = l->next;
		free(l);
	}
	if (job->listener) {
		ipc_conn_set_userdata(job->listener, NULL);
		ipc_conn_unref(job->listener);
	}
	if (job->events)
		protobuf_c_message_free_unpacked(&job->events->base, NULL);
	if (job->call)
		ipc_call_fail(job->call, IPC_E_DISCONNECTED, "santasyncservice is stopping");
	free(job);
}

static void svc_schedule(svc *s, uint64_t seconds);

static void svc_job_finish(svc_job *job)
{
	svc *s = job->s;
	Santa__SyncReply reply = SANTA__SYNC_REPLY__INIT;

	if (job->call) {
		reply.status = job->status;
		(void)ipc_call_reply(job->call, &reply.base);
		job->call = NULL;
	}
	for (svc_job **p = &s->jobs; *p; p = &(*p)->all_next) {
		if (*p == job) {
			*p = job->all_next;
			break;
		}
	}
	if (job->kind == SVC_JOB_SYNC) {
		s->n_syncs--;
		/* The server's interval once it said one, else the config's. */
		if (job->full_sync_interval >= SYNC_MIN_FULL_SYNC_INTERVAL)
			s->interval = job->full_sync_interval;
		if (s->cfg.sync_base_url)
			svc_schedule(s, s->interval);
	} else {
		s->n_posts--;
	}
	svc_job_free(job);
}

static unsigned svc_log_method(void)
{
	const ProtobufCMethodDescriptor *m = protobuf_c_service_descriptor_get_method_by_name(
		&santa__sync_log_listener__descriptor, "Log");

	return (unsigned)(m - santa__sync_log_listener__descriptor.methods);
}

static void svc_barrier_done(ipc_conn *c, int err, const char *errmsg,
			     const ProtobufCMessage *reply, void *userdata)
{
	svc_job *job = ipc_conn_get_userdata(c);

	(void)err;
	(void)errmsg;
	(void)reply;
	(void)userdata;
	if (job)
		svc_job_finish(job);
}

/* Send what the listener has not seen yet, as one-way messages, in order. */
static void svc_job_flush(svc_job *job)
{
	Santa__LogLine msg = SANTA__LOG_LINE__INIT;
	svc_line *l;

	while ((l = job->lines) != NULL) {
		job->lines = l->next;
		if (!job->lines)
			job->lines_tail = &job->lines;
		job->n_lines--;
		msg.line = l->text;
		msg.level = (uint32_t)l->level;
		if (ipc_send_oneway(job->listener, svc_log_method(), &msg.base, -1) < 0)
			job->listener_state = SVC_LISTENER_GONE;
		free(l);
	}
}

/*
 * Move a job forward on the main thread: deliver its lines, and once the
 * worker is done with it, answer the Sync call. The answer waits for a last
 * Log *call* to come back, which proves every line before it arrived, so
 * that `santactl sync` never exits before printing the sync's last line.
 */
static void svc_job_progress(svc_job *job)
{
	Santa__LogLine msg = SANTA__LOG_LINE__INIT;

	if (job->listener_state == SVC_LISTENER_READY)
		svc_job_flush(job);
	if (!job->done || job->listener_state == SVC_LISTENER_CONNECTING ||
	    job->barrier_sent)
		return;
	if (job->listener_state == SVC_LISTENER_READY) {
		msg.line = (char *)"";
		if (ipc_call_async(job->listener, svc_log_method(), &msg.base, -1,
				   SVC_LOG_CALL_USEC, svc_barrier_done, NULL) == 0) {
			job->barrier_sent = true;
			return;
		}
	}
	svc_job_finish(job);
}

static void svc_listener_ready(ipc_conn *c, int err, void *userdata)
{
	svc_job *job = ipc_conn_get_userdata(c);

	(void)userdata;
	if (!job)
		return;
	if (err < 0)
		log_warning("Connecting to the sync log listener of conn %" PRIu64
			    " failed: %s, continuing without it", ipc_conn_peer(c)->conn_id,
			    ipc_strerror(err));
	job->listener_state = err < 0 ? SVC_LISTENER_GONE : SVC_LISTENER_READY;
	svc_job_progress(job);
}

static void svc_listener_closed(ipc_conn *c, int err, const char *reason, void *userdata)
{
	svc_job *job = ipc_conn_get_userdata(c);

	(void)err;
	(void)reason;
	(void)userdata;
	if (!job)
		return;
	/* santactl went away (Ctrl-C): the sync goes on without it. */
	job->listener_state = SVC_LISTENER_GONE;
	if (job->barrier_sent) {
		svc_job_finish(job);
		return;
	}
	svc_job_progress(job);
}

static int svc_listener_connect(svc *s, svc_job *job, ipc_call *call, int fd)
{
	ipc_conn_opts opts = {
		.accept_roles = IPC_ROLE_BIT(IPC_ROLE_SANTACTL),
		.on_close = svc_listener_closed,
	};
	int r;

	r = ipc_endpoint_connect(s->ev, fd, ipc_call_peer(call), s->trust,
				 &santa__sync_log_listener__descriptor, &opts,
				 svc_listener_ready, &job->listener);
	if (r < 0)
		return r;
	ipc_conn_set_userdata(job->listener, job);
	job->listener_state = SVC_LISTENER_CONNECTING;
	return 0;
}

/* --- The worker's queue --- */

static void svc_enqueue(svc *s, svc_job *job)
{
	job->all_next = s->jobs;
	s->jobs = job;
	pthread_mutex_lock(&s->lock);
	job->next = NULL;
	*s->queue_tail = job;
	s->queue_tail = &job->next;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static svc_job *svc_job_new(svc *s, svc_job_kind kind)
{
	svc_job *job = calloc(1, sizeof(*job));

	if (!job)
		return NULL;
	job->s = s;
	job->kind = kind;
	job->lines_tail = &job->lines;
	job->status = SANTA__SYNC_STATUS__SYNC_STATUS_UNKNOWN;
	return job;
}

/* Start a full sync of TYPE unless two are already waiting or running. */
static svc_job *svc_start_sync(svc *s, int type)
{
	svc_job *job;

	if (s->n_syncs >= SVC_MAX_SYNCS)
		return NULL;
	job = svc_job_new(s, SVC_JOB_SYNC);
	if (!job)
		return NULL;
	job->sync_type = type;
	s->n_syncs++;
	return job;
}

/* --- The inbox: lines and results from the worker --- */

static void svc_post_line(svc *s, svc_job *job, int level, const char *text, bool done)
{
	size_t len = text ? strlen(text) : 0;
	svc_line *l = malloc(sizeof(*l) + len + 1);
	uint64_t one = 1;

	if (!l)
		return;
	l->next = NULL;
	l->job = job;
	l->level = level;
	l->done = done;
	memcpy(l->text, text ? text : "", len + 1);
	pthread_mutex_lock(&s->lock);
	*s->inbox_tail = l;
	s->inbox_tail = &l->next;
	pthread_mutex_unlock(&s->lock);
	(void)!write(s->inbox_fd, &one, sizeof(one));
}

static void svc_take_line(svc_line *l)
{
	svc_job *job = l->job;

	if (l->done) {
		job->done = true;
		free(l);
		return;
	}
	if (job->listener_state == SVC_LISTENER_NONE ||
	    job->listener_state == SVC_LISTENER_GONE || job->n_lines >= SVC_MAX_LINES) {
		free(l);
		return;
	}
	l->next = NULL;
	*job->lines_tail = l;
	job->lines_tail = &l->next;
	job->n_lines++;
}

static int svc_inbox_ready(sd_event_source *src, int fd, uint32_t revents, void *ud)
{
	svc *s = ud;
	svc_line *l, *next;
	uint64_t n;

	(void)src;
	(void)revents;
	(void)!read(fd, &n, sizeof(n));
	pthread_mutex_lock(&s->lock);
	l = s->inbox;
	s->inbox = NULL;
	s->inbox_tail = &s->inbox;
	pthread_mutex_unlock(&s->lock);

	for (; l; l = next) {
		svc_job *job = l->job;
		bool done = l->done;

		next = l->next;
		svc_take_line(l);
		/* Progress once per job per batch is enough, but a job may finish
		 * (and be freed) here: only touch it again through its lines. */
		if (done || !next || next->job != job)
			svc_job_progress(job);
	}
	return 0;
}

/* --- The worker --- */

static void svc_engine_log(void *ud, int level, const char *line)
{
	svc *s = ud;

	log_msg(level, "%s", line);
	if (s->current && s->current->kind == SVC_JOB_SYNC)
		svc_post_line(s, s->current, level, line, false);
}

static int64_t svc_now(void)
{
	return (int64_t)time(NULL);
}

static int svc_http(svc *s)
{
	sync_encoding enc;
	sync_http_opts o = {
		.base_url = s->cfg.sync_base_url,
		.ca_file = s->cfg.sync_ca_file,
		.cert_file = s->cfg.sync_client_cert_file,
		.key_file = s->cfg.sync_client_key_file,
		.extra_headers = s->cfg.sync_extra_headers,
		.user_agent = "santactl-sync/" SANTA_VERSION,
		.attempts = s->knobs.attempts,
		.backoff_ms = s->knobs.backoff_ms,
		.timeout_ms = s->knobs.timeout_ms,
		.cancel = &s->cancel,
	};

	char *probe = NULL;

	if (s->http)
		return 0;
	if (s->cfg.sync_base_url && *s->cfg.sync_base_url &&
	    sync_url_for_stage(s->cfg.sync_base_url, "preflight", "machine", &probe) < 0) {
		char where[PATH_MAX + 32];

		/* Said once, where it can be fixed; each sync fails naming it. */
		log_error("%sSyncBaseURL \"%s\" is not an http(s) URL with a host: no sync "
			  "can succeed",
			  santa_config_where(&s->cfg, "SyncBaseURL", where, sizeof(where)),
			  s->cfg.sync_base_url);
	}
	free(probe);
	if (sync_encoding_from_name(s->cfg.sync_client_content_encoding, &enc) < 0) {
		char where[PATH_MAX + 32];

		log_warning("%sSyncClientContentEncoding \"%s\" is not deflate, gzip or none, "
			    "using deflate",
			    santa_config_where(&s->cfg, "SyncClientContentEncoding", where,
					       sizeof(where)),
			    s->cfg.sync_client_content_encoding);
		enc = SYNC_ENCODING_DEFLATE;
	}
	o.encoding = enc;
	o.machine_id = s->machine_id;
	return sync_http_new(&o, &s->http);
}

/* Run JOB with a fresh connection to santad, so that a santad restart
 * between syncs costs nothing but a reconnect. */
static void svc_run_job(svc *s, svc_job *job, const sync_sysinfo *info)
{
	sync_engine e = {
		.daemon = &sync_daemon_ipc_ops,
		.transport = &sync_http_transport,
		.transport_ud = s->http,
		.log = svc_engine_log,
		.log_ud = s,
		.sync_base_url = s->cfg.sync_base_url,
		.machine_id = s->machine_id,
		.host = {
			.serial_num = info->serial_num,
			.hostname = info->hostname,
			.os_version = info->os_version,
			.os_build = info->os_build,
			.model_identifier = info->model_identifier,
			.primary_user = info->primary_user,
			.santa_version = SANTA_VERSION,
		},
		.unblock = &s->unblock,
		.now = svc_now,
		.max_rule_pages = s->knobs.max_pages,
		.cancel = &s->cancel,
	};
	ipc_client *cl = NULL;
	sync_result res;
	int r;

	/* Without a server or a machine id the engine stops before it needs
	 * santad, and says which is missing. */
	if (job->kind == SVC_JOB_SYNC && (!s->cfg.sync_base_url || !*s->machine_id)) {
		job->status = sync_engine_run(&e, job->sync_type, &res);
		return;
	}
	r = sync_daemon_connect(s->santad_path, s->trust, &cl);
	if (r < 0) {
		svc_engine_log(s, SANTA_LOG_ERR, "Connecting to santad failed; is it running?");
		log_error("Connecting to santad at %s failed: %s", s->santad_path,
			  ipc_strerror(r));
		job->status = SANTA__SYNC_STATUS__SYNC_STATUS_DAEMON_TIMEOUT;
		return;
	}
	e.daemon_ud = cl;
	if (job->kind == SVC_JOB_SYNC) {
		job->status = sync_engine_run(&e, job->sync_type, &res);
		job->full_sync_interval = res.full_sync_interval;
	} else {
		r = sync_engine_post_events(&e, job->events->events, job->events->n_events);
		job->status = r < 0 ? SANTA__SYNC_STATUS__SYNC_STATUS_EVENT_UPLOAD_FAILED :
				      SANTA__SYNC_STATUS__SYNC_STATUS_SUCCESS;
	}
	ipc_client_free(cl);
}

static void svc_work(svc *s, svc_job *job)
{
	sync_sysinfo info;

	s->current = job;
	if (svc_http(s) < 0 || sync_sysinfo_gather(NULL, s->machine_id, &info) < 0) {
		svc_engine_log(s, SANTA_LOG_ERR, "Preparing the sync failed: out of memory");
		job->status = SANTA__SYNC_STATUS__SYNC_STATUS_UNKNOWN;
	} else {
		svc_run_job(s, job, &info);
		sync_sysinfo_done(&info);
	}
	s->current = NULL;
	svc_post_line(s, job, 0, NULL, true);
}

static void *svc_worker(void *ud)
{
	svc *s = ud;
	svc_job *job;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (!s->queue && !s->stopping)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stopping) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		job = s->queue;
		s->queue = job->next;
		if (!s->queue)
			s->queue_tail = &s->queue;
		pthread_mutex_unlock(&s->lock);
		svc_work(s, job);
	}
	return NULL;
}

/* --- The service's methods --- */

static void svc_sync(ipc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const Santa__SyncRequest *req = (const Santa__SyncRequest *)request;
	Santa__SyncReply reply = SANTA__SYNC_REPLY__INIT;
	svc *s = userdata;
	char who[320];
	svc_job *job;
	int fd = ipc_call_take_fd(call);

	ipc_peer_describe(ipc_call_peer(call), who, sizeof(who));
	if (req->type > SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL) {
		if (fd >= 0)
			close(fd);
		ipc_call_fail(call, IPC_E_INVALID, "unknown sync type %d", req->type);
		return;
	}
	job = svc_start_sync(s, req->type);
	if (!job) {
		if (fd >= 0)
			close(fd);
		log_notice("Refusing a sync for %s: %u syncs are already waiting or running",
			   who, s->n_syncs);
		reply.status = SANTA__SYNC_STATUS__SYNC_STATUS_TOO_MANY_SYNCS_IN_PROGRESS;
		ipc_call_reply(call, &reply.base);
		return;
	}
	log_info("Starting a %s sync for %s", sync_type_name(req->type), who);
	job->call = call;
	if (fd >= 0 && svc_listener_connect(s, job, call, fd) < 0)
		log_warning("Connecting to the sync log listener of %s failed, "
			    "continuing without it", who);
	svc_enqueue(s, job);
}

/* Whether HASH was uploaded in the last ten minutes; if not, note it now. */
static bool svc_recently_uploaded(svc *s, const char *hash, time_t now)
{
	svc_recent *oldest = &s->recent[0];

	for (size_t i = 0; i < SVC_RECENT_MAX; i++) {
		svc_recent *r = &s->recent[i];

		if (r->when && now - r->when < SVC_UPLOAD_BACKOFF_SEC &&
		    strcmp(r->sha256, hash) == 0)
			return true;
		if (r->when < oldest->when)
			oldest = r;
	}
	snprintf(oldest->sha256, sizeof(oldest->sha256), "%s", hash);
	oldest->when = now;
	return false;
}

/* Keep, in place, the events whose hash was not uploaded lately. */
static size_t svc_filter_events(svc *s, Santa__PostEventsRequest *req)
{
	time_t now = time(NULL);
	size_t kept = 0;

	for (size_t i = 0; i < req->n_events; i++) {
		Santa__Event *ev = req->events[i];

		/* Keyed as santad keys them: a bundle's events by its hash. */
		const char *key = ev->file_bundle_hash && *ev->file_bundle_hash ?
					  ev->file_bundle_hash : ev->file_sha256;

		if (svc_recently_uploaded(s, key, now)) {
			protobuf_c_message_free_unpacked(&ev->base, NULL);
			continue;
		}
		req->events[kept++] = ev;
	}
	req->n_events = kept;
	return kept;
}

/* A copy that outlives the call: the request belongs to the library. */
static Santa__PostEventsRequest *svc_copy_events(const Santa__PostEventsRequest *req)
{
	size_t len = santa__post_events_request__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	Santa__PostEventsRequest *copy;

	if (!buf)
		return NULL;
	santa__post_events_request__pack(req, buf);
	copy = santa__post_events_request__unpack(NULL, len, buf);
	free(buf);
	return copy;
}

static void svc_queue_events(svc *s, const Santa__PostEventsRequest *req)
{
	svc_job *job;

	if (!s->cfg.sync_base_url || req->n_events == 0)
		return;
	if (s->n_posts >= SVC_MAX_POSTS) {
		log_warning("Dropping %zu events of blocked executions: %u uploads are "
			    "already waiting; the next full sync uploads them", req->n_events,
			    s->n_posts);
		return;
	}
	job = svc_job_new(s, SVC_JOB_POST_EVENTS);
	if (job)
		job->events = svc_copy_events(req);
	if (!job || !job->events) {
		svc_job_free(job);
		log_error("Queueing %zu events for upload failed: out of memory", req->n_events);
		return;
	}
	if (svc_filter_events(s, job->events) == 0) {
		svc_job_free(job);
		return;
	}
	s->n_posts++;
	svc_enqueue(s, job);
}

static void svc_post_events(ipc_call *call, const ProtobufCMessage *request, void *userdata)
{
	Santa__Empty reply = SANTA__EMPTY__INIT;

	/* The request lives as long as the call: take what we need first.
	 * santad then waits only for our receipt, not for the upload. */
	svc_queue_events(userdata, (const Santa__PostEventsRequest *)request);
	ipc_call_reply(call, &reply.base);
}

static void svc_spindown(ipc_call *call, const ProtobufCMessage *request, void *userdata)
{
	Santa__Empty reply = SANTA__EMPTY__INIT;
	svc *s = userdata;

	(void)request;
	log_info("Spinning down at santad's request");
	ipc_call_reply(call, &reply.base);
	sd_event_exit(s->ev, 0);
}

/* EX_CONFIG: a launcher does not restart a service that exits with it
 * (RestartPreventExitStatus in the unit, and santad's launcher). */
#define SVC_EXIT_CONFIG 78

#define SVC_PEERS (IPC_ROLE_BIT(IPC_ROLE_SANTAD) | IPC_ROLE_BIT(IPC_ROLE_SANTACTL))

/* By name: the IPC layer indexes methods by their place in sync.proto,
 * which svc_build_methods() finds. No method is privileged, since santactl
 * calls Sync as its user and santad's role is what matters. */
static const struct {
	const char *name;
	ipc_method m;
} svc_named_methods[] = {
	{ "Sync", { svc_sync, IPC_METHOD_ACCEPT_FD, SVC_PEERS } },
	{ "PostEvents", { svc_post_events, 0, IPC_ROLE_BIT(IPC_ROLE_SANTAD) } },
	{ "Spindown", { svc_spindown, 0, IPC_ROLE_BIT(IPC_ROLE_SANTAD) } },
};

#define SVC_N_METHODS (sizeof(svc_named_methods) / sizeof(svc_named_methods[0]))

static ipc_method svc_methods[SVC_N_METHODS];

/* svc_methods[] in the service descriptor's order; every method of the
 * service needs a handler, so that sync.proto and this file cannot drift
 * apart silently. */
static int svc_build_methods(void)
{
	const ProtobufCServiceDescriptor *d = &santa__sync_service__descriptor;

	if (d->n_methods != SVC_N_METHODS) {
		log_error("Serving %s: it has %u methods, santasyncservice serves %zu",
			  d->name, d->n_methods, SVC_N_METHODS);
		return -EPROTO;
	}
	for (size_t i = 0; i < SVC_N_METHODS; i++) {
		const ProtobufCMethodDescriptor *md =
			protobuf_c_service_descriptor_get_method_by_name(d,
									 svc_named_methods[i].name);

		if (!md) {
			log_error("Serving %s: it has no method %s", d->name,
				  svc_named_methods[i].name);
			return -EPROTO;
		}
		svc_methods[md - d->methods] = svc_named_methods[i].m;
	}
	return 0;
}

/* --- The full-sync timer --- */

static int svc_timer_fired(sd_event_source *src, uint64_t usec, void *ud)
{
	svc *s = ud;
	svc_job *job;

	(void)src;
	(void)usec;
	job = svc_start_sync(s, SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL);
	if (!job) {
		/* A sync is running or waiting; it reschedules when done. */
		return 0;
	}
	log_info("Starting the scheduled full sync");
	svc_enqueue(s, job);
	return 0;
}

static void svc_schedule(svc *s, uint64_t seconds)
{
	int r;

	if (!s->timer) {
		r = sd_event_add_time_relative(s->ev, &s->timer, CLOCK_MONOTONIC,
					       seconds * 1000000, 1000000, svc_timer_fired, s);
	} else {
		r = sd_event_source_set_time_relative(s->timer, seconds * 1000000);
		if (r >= 0)
			r = sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
	}
	if (r < 0)
		log_error_errno(r, "Scheduling the next full sync in %" PRIu64 " s failed",
				seconds);
}

/* --- Set-up --- */

static int svc_listen_fd(const char *socket_path)
{
	int fd;

	if (socket_path) {
		fd = ipc_listen_socket(socket_path, 0666, (uid_t)-1, (gid_t)-1);
		if (fd < 0)
			log_error_errno(fd, "Creating the socket \"%s\" failed", socket_path);
		return fd;
	}
	fd = santa_listen_fd("santasyncservice");
	if (fd == -ENOENT)
		fd = santa_listen_fd(NULL);
	if (fd < 0)
		log_error_errno(fd, "Taking the listening socket passed by systemd or santad "
				"(LISTEN_FDS) failed; run by hand with --socket PATH");
	return fd;
}

/* The IPC layer closes a refused or misbehaving peer with a reason that
 * names it (connection id, uid, pid, executable); saying so is ours. */
static void svc_conn_closed(ipc_conn *c, int err, const char *reason, void *userdata)
{
	char who[384];

	(void)userdata;
	if (!reason)
		reason = ipc_peer_describe(ipc_conn_peer(c), who, sizeof(who));
	if (err == 0 || err == IPC_E_DISCONNECTED)
		log_debug("Connection closed: %s", reason);
	else
		log_warning("Closed a connection: %s (%s)", reason, ipc_strerror(err));
}

static int svc_join_path(const char *dir, const char *name, char **ret)
{
	return asprintf(ret, "%s/%s", dir, name) < 0 ? -ENOMEM : 0;
}

static int svc_setup_loop(svc *s, int listen_fd)
{
	static ipc_service service = {
		.desc = &santa__sync_service__descriptor,
		.methods = svc_methods,
		.accept_roles = SVC_PEERS,
		/* santactl runs as its user and we as nobody, so we may not read
		 * its executable; claiming to be santactl only gets a Sync, which
		 * that user could ask for by running santactl anyway. */
		.claimable_roles = IPC_ROLE_BIT(IPC_ROLE_SANTACTL),
	};
	sigset_t mask;
	int r;

	service.userdata = s;
	r = svc_build_methods();
	if (r < 0)
		return r;
	r = sd_event_default(&s->ev);
	if (r < 0)
		return log_error_errno(r, "Creating the event loop failed");
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	r = sd_event_add_signal(s->ev, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(s->ev, NULL, SIGINT, NULL, NULL);
	if (r < 0)
		return log_error_errno(r, "Handling SIGTERM failed");

	s->inbox_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->inbox_fd < 0)
		return log_error_errno(-errno, "Creating the worker's eventfd failed");
	r = sd_event_add_io(s->ev, &s->inbox_src, s->inbox_fd, EPOLLIN, svc_inbox_ready, s);
	if (r < 0)
		return log_error_errno(r, "Watching the worker's eventfd failed");

	r = ipc_server_new(s->ev, listen_fd, s->trust, &service,
			   &(ipc_server_opts){ .on_close = svc_conn_closed }, &s->server);
	if (r < 0)
		return log_error_errno(r, "Serving santa.SyncService failed: %s",
				       ipc_strerror(r));
	return 0;
}

/* The machine id, once: MachineID, else /etc/machine-id. An empty one
 * is not fatal; each sync then ends with MissingMachineID. */
static int svc_machine_id(svc *s)
{
	sync_sysinfo info;

	if (sync_sysinfo_gather(NULL, s->cfg.machine_id, &info) < 0)
		return log_error_errno(-ENOMEM, "Reading the machine id failed");
	s->machine_id = info.machine_id;
	info.machine_id = NULL;
	sync_sysinfo_done(&info);
	if (!*s->machine_id)
		log_warning("No MachineID configured and /etc/machine-id is unreadable: "
			    "syncs will fail until one exists");
	return 0;
}

static int svc_setup(svc *s, const char *config_file, const char *socket_path,
		     const svc_knobs *flags)
{
	char err[512];
	int fd, r;

	/* santa_config_load starts from santa_config_init's defaults itself. */
	if (santa_config_load(config_file, &s->cfg, err, sizeof(err)) < 0) {
		log_error("Loading the configuration failed: %s", err);
		s->config_error = true;
		return -EINVAL;
	}
	/* Retries and timeouts come from the configuration (zero keeps the
	 * protocol's defaults); the command-line flags override them. */
	s->knobs = (svc_knobs){
		.attempts = s->cfg.sync_retry_attempts ?: SYNC_HTTP_DEFAULT_ATTEMPTS,
		.backoff_ms = s->cfg.sync_retry_backoff_ms ?: SYNC_HTTP_DEFAULT_BACKOFF_MS,
		.timeout_ms = s->cfg.sync_request_timeout_ms ?: SYNC_HTTP_DEFAULT_TIMEOUT_MS,
	};
	if (flags->attempts)
		s->knobs.attempts = flags->attempts;
	if (flags->backoff_ms)
		s->knobs.backoff_ms = flags->backoff_ms;
	if (flags->timeout_ms)
		s->knobs.timeout_ms = flags->timeout_ms;
	s->knobs.max_pages = flags->max_pages;
	s->interval = s->cfg.full_sync_interval >= SYNC_MIN_FULL_SYNC_INTERVAL ?
			      s->cfg.full_sync_interval : SYNC_DEFAULT_FULL_SYNC_INTERVAL;
	if (svc_join_path(s->cfg.run_directory, "santad.sock", &s->santad_path) < 0)
		return -ENOMEM;
	r = svc_machine_id(s);
	if (r < 0)
		return r;

	r = ipc_trust_new(&s->trust);
	if (r == 0)
		r = ipc_trust_add_defaults(s->trust, s->cfg.trusted_executables);
	if (r < 0)
		return log_error_errno(r, "Loading the trusted executables failed");

	fd = svc_listen_fd(socket_path);
	if (fd < 0)
		return fd;
	r = svc_setup_loop(s, fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	return 0;
}

static void svc_stop_worker(svc *s)
{
	if (!s->worker_started)
		return;
	atomic_store(&s->cancel, 1);
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->worker, NULL);
}

static void svc_done(svc *s)
{
	svc_line *l, *next;

	svc_stop_worker(s);
	while (s->jobs) {
		svc_job *job = s->jobs;

		s->jobs = job->all_next;
		svc_job_free(job);
	}
	for (l = s->inbox; l; l = next) {
		next = l->next;
		free(l);
	}
	sync_http_free(s->http);
	ipc_server_free(s->server);
	sd_event_source_unref(s->timer);
	sd_event_source_unref(s->inbox_src);
	if (s->inbox_fd >= 0)
		close(s->inbox_fd);
	sd_event_unref(s->ev);
	ipc_trust_free(s->trust);
	free(s->santad_path);
	free(s->machine_id);
	santa_config_done(&s->cfg);
}

static int svc_parse_knob(const char *arg, uint32_t *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || *end || end == arg || v < 1 || v > 3600000)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

static uint32_t *svc_knob_field(svc_knobs *k, int opt)
{
	switch (opt) {
	case 'a':
		return &k->attempts;
	case 'b':
		return &k->backoff_ms;
	case 't':
		return &k->timeout_ms;
	default:
		return &k->max_pages;
	}
}

static const char *svc_knob_name(int opt)
{
	switch (opt) {
	case 'a':
		return "retry-attempts";
	case 'b':
		return "retry-backoff-ms";
	case 't':
		return "request-timeout-ms";
	default:
		return "max-rule-pages";
	}
}

static void svc_usage(FILE *f)
{
	fprintf(f, "Usage: santasyncservice [OPTIONS]\n"
		"\n"
		"Talks to the sync server for santad. Normally started by systemd or\n"
		"santad, as ServiceUser (nobody), with its listening socket passed as\n"
		"LISTEN_FDS. Exits 78 when it cannot read its configuration.\n"
		"\n"
		"  -c, --config FILE          read FILE (default $SANTA_CONFIG, else\n"
		"                             %s)\n"
		"  -s, --socket PATH          for tests: listen on PATH instead of a\n"
		"                             passed socket\n"
		"      --retry-attempts N     override SyncRetryAttempts\n"
		"      --retry-backoff-ms MS  override SyncRetryBackoffMs\n"
		"      --request-timeout-ms MS\n"
		"                             override SyncRequestTimeoutMs\n"
		"      --max-rule-pages N     lower the bound on rule pages per sync\n"
		"                             (10000)\n"
		"  -d, --debug                log debug messages\n"
		"  -h, --help                 show this help\n"
		"  -V, --version              show the version\n",
		SANTA_DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "retry-attempts", required_argument, NULL, 'a' },
		{ "retry-backoff-ms", required_argument, NULL, 'b' },
		{ "request-timeout-ms", required_argument, NULL, 't' },
		{ "max-rule-pages", required_argument, NULL, 'p' },
		{ 0 },
	};
	const char *config_file = NULL, *socket_path = NULL;
	svc_knobs flags = { 0 };
	svc s = { .inbox_fd = -1 };
	int c, r;

	log_open("santasyncservice");
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "c:s:dhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_file = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case 'd':
			log_set_level(SANTA_LOG_DEBUG);
			break;
		case 'a':
		case 'b':
		case 't':
		case 'p':
			if (svc_parse_knob(optarg, svc_knob_field(&flags, c)) < 0) {
				log_error("--%s: \"%s\" is not a number from 1 to 3600000",
					  svc_knob_name(c), optarg);
				return 2;
			}
			break;
		case 'h':
			svc_usage(stdout);
			return 0;
		case 'V':
			printf("santasyncservice %s\n", SANTA_VERSION);
			return 0;
		default:
			/* 2, a usage error, as santad and the other services. */
			svc_usage(stderr);
			return 2;
		}
	}
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	s.queue_tail = &s.queue;
	s.inbox_tail = &s.inbox;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("Initializing libcurl failed");
		return 1;
	}

	r = svc_setup(&s, config_file, socket_path, &flags);
	if (r == 0) {
		r = pthread_create(&s.worker, NULL, svc_worker, &s);
		s.worker_started = r == 0;
		if (r != 0)
			log_error("Starting the sync worker thread failed: %s", strerror(r));
		r = -r;
	}
	if (r == 0) {
		if (s.cfg.sync_base_url)
			svc_schedule(&s, 0);
		else
			log_notice("No SyncBaseURL is configured: serving, but not syncing");
		log_info("Serving santa.SyncService; santad is at %s", s.santad_path);
		r = sd_event_loop(s.ev);
		if (r < 0)
			log_error_errno(r, "The event loop failed");
	}
	svc_done(&s);
	curl_global_cleanup();
	if (s.config_error)
		return SVC_EXIT_CONFIG;
	return r < 0 ? 1 : 0;
}
