/* SPDX-License-Identifier: Apache-2.0 */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "bundle.pb-c.h"
#include "log.h"
#include "notifier.pb-c.h"

#define BSVC_PROGRESS_USEC 100000u
#define BSVC_SPINDOWN_USEC 200000u
/* Leave room below the IPC message limit (4 MiB) for framing. */
#define BSVC_MAX_REPLY (3u << 20)
#define BSVC_ROLES (IPC_ROLE_BIT(IPC_ROLE_GUI) | IPC_ROLE_BIT(IPC_ROLE_SANTAD))

typedef struct bsvc_job {
	bsvc *s;
	ipc_call *call;
	ipc_conn *conn;              /* the caller's connection, to cancel */
	ipc_conn *progress;          /* the caller's notifier endpoint, or NULL */
	char who[200];
	uid_t uid;                   /* the caller's */
	gid_t gid;
	char *path;
	char *bundle_path;           /* set once by the worker, under LOCK */
	int64_t event_id;
	uint32_t timeout_ms;
	pthread_t thread;
	bool started;
	bool awaiting_ack;           /* final progress sent, reply held */
	bool endpoint_pending;       /* progress endpoint handshake under way */
	bool freeing;
	atomic_bool cancel;
	/* Written by the worker under LOCK, read by the main loop. */
	pthread_mutex_t lock;
	bundle_progress progress_now;
	bool progress_dirty;
	bool finished;
	int result;
	bundle b;
	uint64_t last_sent_usec;
	struct bsvc_job *next;
} bsvc_job;

struct bsvc {
	sd_event *ev;
	const ipc_trust *trust;
	ipc_service service;         /* the server keeps a pointer to it */
	ipc_server *server;
	bsvc_opts opts;
	bsvc_job *running;
	bsvc_job *head, *tail;
	size_t n_queued;
	int efd;
	sd_event_source *efd_src;
	sd_event_source *idle_timer;
	bool spindown;
	unsigned progress_method;
};

static void bsvc_check_idle(bsvc *s);
static void bsvc_start_next(bsvc *s);

static uint64_t bsvc_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void bsvc_job_free(bsvc_job *j)
{
	if (!j)
		return;
	j->freeing = true;
	j->awaiting_ack = false;
	if (j->started)
		pthread_join(j->thread, NULL);
	if (j->call)
		ipc_call_fail(j->call, IPC_E_DISCONNECTED, "santabundleservice is stopping");
	if (j->progress) {
		ipc_conn_close(j->progress);
		ipc_conn_unref(j->progress);
	}
	ipc_conn_unref(j->conn);
	pthread_mutex_destroy(&j->lock);
	bundle_done(&j->b);
	free(j->path);
	free(j->bundle_path);
	free(j);
}

/* --- The worker thread --- */

static void bsvc_wake(bsvc *s)
{
	uint64_t one = 1;

	/* A full counter already means "look": nothing is lost. */
	(void)!write(s->efd, &one, sizeof(one));
}

static void bsvc_worker_progress(const bundle_progress *p, void *userdata)
{
	bsvc_job *j = userdata;

	pthread_mutex_lock(&j->lock);
	j->progress_now = *p;
	j->progress_dirty = true;
	pthread_mutex_unlock(&j->lock);
	bsvc_wake(j->s);
}

/* The calling thread becomes the caller for good: its uid and primary
 * group, no supplementary groups and, since no uid of the thread is 0 any
 * more, no capabilities. Only then does a path through /proc/PID/cwd or
 * /proc/PID/root lead nowhere the caller could not go: setfsuid alone
 * would leave root's CAP_SYS_PTRACE, which opens those links of anyone's
 * process. Linux keeps credentials per thread, and the raw system calls
 * change only this one (glibc's wrappers would change every thread's), so
 * it is only ever called on a thread that ends with its work. */
static int bsvc_become_caller(uid_t uid, gid_t gid)
{
	if (geteuid() != 0 || uid == 0)
		return 0;
	if (syscall(SYS_setgroups, 0, NULL) < 0 ||
	    syscall(SYS_setresgid, gid, gid, gid) < 0 ||
	    syscall(SYS_setresuid, uid, uid, uid) < 0)
		return -errno;
	return 0;
}

static void *bsvc_worker(void *userdata)
{
	bsvc_job *j = userdata;
	uint32_t limit = j->s->opts.limit_ms ? j->s->opts.limit_ms : BSVC_LIMIT_MS;
	uint32_t ms = j->timeout_ms && j->timeout_ms < limit ? j->timeout_ms : limit;
	bundle_opts o = {
		.dpkg_root = j->s->opts.dpkg_root,
		.app_root = j->s->opts.app_root,
		.deadline_usec = bsvc_now_usec() + (uint64_t)ms * 1000u,
		.cancel = &j->cancel,
		.progress = bsvc_worker_progress,
		.userdata = j,
	};
	uint64_t start = bsvc_now_usec();
	bundle_progress none = { 0 };
	char *bpath;
	bundle b;
	int r;

	r = bsvc_become_caller(j->uid, j->gid);
	if (r >= 0)
		r = bundle_locate(j->path, &o, &b);
	if (r >= 0 && b.kind != BUNDLE_KIND_NONE) {
		/* Tell the caller at once which bundle is being hashed. */
		bpath = strdup(b.path);
		pthread_mutex_lock(&j->lock);
		j->bundle_path = bpath;
		pthread_mutex_unlock(&j->lock);
		bsvc_worker_progress(&none, j);
		r = bundle_hash_members(&b, &o);
		b.hash_millis = (bsvc_now_usec() - start) / 1000u;
		if (r < 0)
			bundle_done(&b);
	}
	pthread_mutex_lock(&j->lock);
	j->result = r;
	if (r >= 0)
		j->b = b;
	j->finished = true;
	pthread_mutex_unlock(&j->lock);
	bsvc_wake(j->s);
	return NULL;
}

/* --- Replies and progress, on the main loop --- */

static void bsvc_fill_progress(bsvc_job *j, const bundle_progress *p, const char *bpath,
			       Santa__BundleProgress *m)
{
	m->event_id = j->event_id;
	m->file_path = j->path;
	m->bundle_path = (char *)(bpath ? bpath : "");
	m->binary_count = p->binary_count;
	m->file_count = p->file_count;
	m->hashed_count = p->hashed_count;
	m->done = p->done;
}

static void bsvc_send_progress(bsvc_job *j, const bundle_progress *p, const char *bpath)
{
	Santa__BundleProgress m = SANTA__BUNDLE_PROGRESS__INIT;
	int r;

	if (!j->progress || !ipc_conn_is_ready(j->progress))
		return;
	bsvc_fill_progress(j, p, bpath, &m);
	r = ipc_send_oneway(j->progress, j->s->progress_method, &m.base, -1);
	if (r < 0)
		log_debug("Sending progress to %s failed: %s", j->who, ipc_strerror(r));
	j->last_sent_usec = bsvc_now_usec();
}

/* Path of a binary relative to the bundle, as the sync protocol's
 * file_bundle_executable_rel_path. */
static const char *bsvc_rel_path(const bsvc *s, const bundle *b, const char *path)
{
	size_t n = 0;

	if (b->kind == BUNDLE_KIND_DIRECTORY)
		n = strlen(b->path);
	else if (s->opts.dpkg_root)
		for (n = strlen(s->opts.dpkg_root); n && s->opts.dpkg_root[n - 1] == '/'; n--)
			;
	return path[n] == '/' ? path + n + 1 : path + n;
}

static int bsvc_fill_events(bsvc_job *j, Santa__BundleInfo *info, Santa__Event *events,
			    Santa__Event **ptrs, char **dirs)
{
	const bundle *b = &j->b;

	for (size_t i = 0; i < b->n_binaries; i++) {
		const char *p = b->binaries[i].path, *slash = strrchr(p, '/');
		Santa__Event *e = &events[i];

		santa__event__init(e);
		dirs[i] = strndup(p, slash && slash != p ? (size_t)(slash - p) : 1);
		if (!dirs[i])
			return -ENOMEM;
		e->file_sha256 = (char *)b->binaries[i].sha256;
		e->file_path = dirs[i];
		e->file_name = (char *)(slash ? slash + 1 : p);
		e->decision = "BUNDLE_BINARY";
		e->file_bundle_id = info->id;
		e->file_bundle_name = info->name;
		e->file_bundle_path = info->path;
		e->file_bundle_version = info->version;
		e->file_bundle_version_string = info->version_string;
		e->file_bundle_hash = info->hash;
		e->file_bundle_hash_millis = info->hash_millis;
		e->file_bundle_binary_count = info->binary_count;
		e->file_bundle_executable_rel_path = (char *)bsvc_rel_path(j->s, b, p);
		ptrs[i] = e;
	}
	return 0;
}

static int bsvc_reply_found(bsvc_job *j)
{
	Santa__HashBundleReply rep = SANTA__HASH_BUNDLE_REPLY__INIT;
	Santa__BundleInfo info = SANTA__BUNDLE_INFO__INIT;
	bundle *b = &j->b;
	size_t n = b->n_binaries;
	Santa__Event *events = calloc(n ? n : 1, sizeof(*events));
	Santa__Event **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	char **dirs = calloc(n ? n : 1, sizeof(*dirs));
	int r = -ENOMEM;

	info.kind = (char *)bundle_kind_name(b->kind);
	info.id = b->id;
	info.name = b->name;
	info.path = b->path;
	info.version = b->version;
	info.version_string = b->version;
	info.hash = b->hash;
	info.binary_count = (uint32_t)n;
	info.hash_millis = (uint32_t)b->hash_millis;
	info.executable_rel_path = b->executable_rel_path;
	if (!events || !ptrs || !dirs || bsvc_fill_events(j, &info, events, ptrs, dirs) < 0)
		goto out;

	rep.found = true;
	rep.bundle = &info;
	rep.events = ptrs;
	rep.n_events = n;
	if (protobuf_c_message_get_packed_size(&rep.base) > BSVC_MAX_REPLY) {
		r = -E2BIG;
		goto out;
	}
	r = ipc_call_reply(j->call, &rep.base);
	j->call = NULL;
out:
	for (size_t i = 0; dirs && i < n; i++)
		free(dirs[i]);
	free(dirs);
	free(ptrs);
	free(events);
	return r;
}

static void bsvc_reply(bsvc_job *j)
{
	Santa__HashBundleReply none = SANTA__HASH_BUNDLE_REPLY__INIT;
	int r = j->result;

	if (r >= 0 && j->b.kind == BUNDLE_KIND_NONE) {
		log_info("'%s' belongs to no bundle (asked by %s)", j->path, j->who);
		ipc_call_reply(j->call, &none.base);
		j->call = NULL;
		return;
	}
	if (r >= 0)
		r = bsvc_reply_found(j);
	if (r >= 0) {
		log_info("Hashed the %s bundle '%s' of '%s' for %s: %s over %zu executables "
			 "in %llu ms", bundle_kind_name(j->b.kind), j->b.path, j->path, j->who,
			 j->b.hash, j->b.n_binaries, (unsigned long long)j->b.hash_millis);
		return;
	}
	log_warning("Hashing the bundle of '%s' for %s failed: %s", j->path, j->who,
		    r == -ETIME ? "time limit reached" : r == -E2BIG ? "bundle too large"
							      : strerror(-r));
	ipc_call_fail(j->call, r == -ETIME ? IPC_E_TIMEOUT : r == -E2BIG ? IPC_E_LIMIT : IPC_E_PEER,
		      "hashing the bundle of '%s': %s", j->path,
		      r == -ETIME ? "time limit reached" : strerror(-r));
	j->call = NULL;
}

static void bsvc_complete(bsvc *s, bsvc_job *j)
{
	bsvc_reply(j);
	s->running = NULL;
	bsvc_job_free(j);
	bsvc_start_next(s);
	bsvc_check_idle(s);
}

static void bsvc_final_acked(ipc_conn *c, int err, const char *errmsg,
			     const ProtobufCMessage *reply, void *userdata)
{
	bsvc_job *j = userdata;

	if (!j->awaiting_ack)
		return;   /* the job is being freed */
	j->awaiting_ack = false;
	bsvc_complete(j->s, j);
}

/* The last progress report goes as a call, and the reply waits for its
 * answer: on two connections, nothing else would keep "done" from
 * arriving after the result. True when the reply now waits. */
static bool bsvc_send_final(bsvc_job *j)
{
	Santa__BundleProgress m = SANTA__BUNDLE_PROGRESS__INIT;
	bundle_progress p = {
		.done = true,
		.binary_count = (uint32_t)j->b.n_binaries,
		.hashed_count = (uint32_t)j->b.n_binaries,
		.file_count = j->progress_now.file_count,
	};

	if (j->result < 0 || j->b.kind == BUNDLE_KIND_NONE || !j->progress ||
	    !ipc_conn_is_ready(j->progress))
		return false;
	bsvc_fill_progress(j, &p, j->b.path, &m);
	if (ipc_call_async(j->progress, j->s->progress_method, &m.base, -1, 2000000u,
			   bsvc_final_acked, j) < 0)
		return false;
	j->awaiting_ack = true;
	return true;
}

static void bsvc_poll_job(bsvc *s)
{
	bsvc_job *j = s->running;
	bundle_progress p;
	bool dirty, finished;
	const char *bpath;

	if (!j || j->awaiting_ack)
		return;
	pthread_mutex_lock(&j->lock);
	p = j->progress_now;
	bpath = j->bundle_path;
	dirty = j->progress_dirty;
	j->progress_dirty = false;
	finished = j->finished;
	pthread_mutex_unlock(&j->lock);

	/* The first report (the bundle is found) always goes, so that even a
	 * quick bundle shows where it was looked for; later ones are spaced. */
	if (dirty && (!j->last_sent_usec ||
		      (!finished && bsvc_now_usec() - j->last_sent_usec >= BSVC_PROGRESS_USEC)))
		bsvc_send_progress(j, &p, bpath);
	if (!finished)
		return;

	pthread_join(j->thread, NULL);
	j->started = false;
	if (!bsvc_send_final(j))
		bsvc_complete(s, j);
}

static int bsvc_on_wake(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	uint64_t n;

	(void)!read(fd, &n, sizeof(n));
	bsvc_poll_job(userdata);
	return 0;
}

static void bsvc_start_next(bsvc *s)
{
	bsvc_job *j;
	int r;

	/* A job starts once its progress endpoint is connected (or failed),
	 * so that a quick bundle's reports are not lost before it is. */
	while (!s->running && s->head && !s->head->endpoint_pending) {
		j = s->head;
		s->head = j->next;
		if (!s->head)
			s->tail = NULL;
		s->n_queued--;

		r = pthread_create(&j->thread, NULL, bsvc_worker, j);
		if (r != 0) {
			ipc_call_fail(j->call, IPC_E_PEER, "starting the hashing failed: %s",
				      strerror(r));
			j->call = NULL;
			bsvc_job_free(j);
			continue;
		}
		j->started = true;
		s->running = j;
		log_debug("Hashing the bundle of '%s' for %s", j->path, j->who);
	}
}

/* --- Requests --- */

typedef struct bsvc_probe {
	const char *path;
	uid_t uid;
	gid_t gid;
	int result;
} bsvc_probe;

static void *bsvc_probe_main(void *userdata)
{
	bsvc_probe *p = userdata;
	int fd;

	p->result = bsvc_become_caller(p->uid, p->gid);
	if (p->result < 0)
		return NULL;
	fd = open(p->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	p->result = fd < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Whether the caller (UID, GID) could open PATH itself: tried on a thread
 * of its own that becomes the caller (bsvc_become_caller). */
static int bsvc_caller_can_read(const char *path, uid_t uid, gid_t gid)
{
	bsvc_probe p = { .path = path, .uid = uid, .gid = gid };
	pthread_t t;
	int r;

	if (geteuid() != 0 || uid == 0)
		return 0;
	r = pthread_create(&t, NULL, bsvc_probe_main, &p);
	if (r != 0)
		return -r;
	pthread_join(t, NULL);
	return p.result;
}

static int bsvc_request_path(const Santa__HashBundleRequest *req, char **ret)
{
	const Santa__Event *e = req->event;

	if (!e || !e->file_path || !e->file_name || e->file_path[0] != '/' || !e->file_name[0] ||
	    strchr(e->file_name, '/') || strlen(e->file_path) + strlen(e->file_name) + 2 > PATH_MAX)
		return -EINVAL;
	if (asprintf(ret, "%s%s%s", e->file_path, strcmp(e->file_path, "/") ? "/" : "",
		     e->file_name) < 0)
		return -ENOMEM;
	return 0;
}

static void bsvc_progress_ready(ipc_conn *c, int err, void *userdata)
{
	bsvc_job *j = userdata;

	if (j->freeing)
		return;
	if (err < 0)
		log_warning("The progress endpoint of %s failed: %s; hashing goes on without "
			    "progress", j->who, ipc_strerror(err));
	j->endpoint_pending = false;
	bsvc_start_next(j->s);
}

static int bsvc_job_new(bsvc *s, ipc_call *call, const Santa__HashBundleRequest *req,
			bsvc_job **ret)
{
	const ipc_peer *peer = ipc_call_peer(call);
	bsvc_job *j = calloc(1, sizeof(*j));
	int r;

	if (!j)
		return -ENOMEM;
	j->s = s;
	pthread_mutex_init(&j->lock, NULL);
	atomic_init(&j->cancel, false);
	ipc_peer_describe(peer, j->who, sizeof(j->who));
	r = bsvc_request_path(req, &j->path);
	if (r < 0) {
		bsvc_job_free(j);
		return r;
	}
	j->event_id = req->event->id;
	j->timeout_ms = req->timeout_ms;
	j->conn = ipc_conn_ref(ipc_call_conn(call));
	*ret = j;
	return 0;
}

static void bsvc_attach_progress(bsvc *s, bsvc_job *j, ipc_call *call, int fd)
{
	ipc_conn_opts opts = { .accept_roles = IPC_ROLE_BIT(IPC_ROLE_GUI), .userdata = j };
	int r;

	if (fd < 0)
		return;
	r = ipc_endpoint_connect(s->ev, fd, ipc_call_peer(call), s->trust,
				 &santa__notifier__descriptor, &opts, bsvc_progress_ready,
				 &j->progress);
	if (r < 0) {
		j->progress = NULL;
		log_warning("Connecting to the progress endpoint of %s failed: %s; hashing goes "
			    "on without progress", j->who, ipc_strerror(r));
		return;
	}
	j->endpoint_pending = true;
}

static void bsvc_on_hash(ipc_call *call, const ProtobufCMessage *m, void *userdata)
{
	const Santa__HashBundleRequest *req = (const Santa__HashBundleRequest *)m;
	const ipc_peer *peer = ipc_call_peer(call);
	int fd = ipc_call_take_fd(call);
	bsvc *s = userdata;
	bsvc_job *j = NULL;
	int r;

	if (s->n_queued >= BSVC_QUEUE_MAX) {
		r = IPC_E_LIMIT;
		ipc_call_fail(call, r, "too many bundles waiting to be hashed");
		goto fail;
	}
	r = bsvc_job_new(s, call, req, &j);
	if (r < 0) {
		ipc_call_fail(call, IPC_E_INVALID, "HashBundleBinaries: the event does not name "
			      "an absolute file path");
		goto fail;
	}
	j->uid = peer->uid;
	j->gid = peer->gid;
	r = bsvc_caller_can_read(j->path, peer->uid, peer->gid);
	if (r < 0) {
		log_warning("Refusing to hash the bundle of '%s' for %s: the caller cannot open "
			    "it (%s)", j->path, j->who, strerror(-r));
		ipc_call_fail(call, IPC_E_NOT_PERMITTED, "'%s' cannot be opened by its caller",
			      j->path);
		goto fail;
	}
	bsvc_attach_progress(s, j, call, fd);
	fd = -1;
	j->call = call;
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->n_queued++;
	s->spindown = false;
	bsvc_start_next(s);
	return;
fail:
	if (fd >= 0)
		close(fd);
	bsvc_job_free(j);
}

static void bsvc_on_spindown(ipc_call *call, const ProtobufCMessage *m, void *userdata)
{
	Santa__Empty empty = SANTA__EMPTY__INIT;
	bsvc *s = userdata;

	ipc_call_reply(call, &empty.base);
	s->spindown = true;
	bsvc_check_idle(s);
}

/* --- Connections and idleness --- */

static int bsvc_idle_fired(sd_event_source *src, uint64_t usec, void *userdata)
{
	bsvc *s = userdata;

	s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
	if (s->running || s->head)
		return 0;
	if (!s->spindown && ipc_server_conn_count(s->server) > 0)
		return 0;
	log_info("Exiting: %s", s->spindown ? "spun down by the client" : "idle");
	return sd_event_exit(s->ev, 0);
}

static void bsvc_check_idle(bsvc *s)
{
	uint64_t usec;
	int r;

	s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
	if (s->running || s->head)
		return;
	/* Connections are counted when the timer fires: from on_close the
	 * closing one still counts. */
	if (s->spindown)
		usec = BSVC_SPINDOWN_USEC;     /* let the reply leave first */
	else if (s->opts.idle_usec)
		usec = s->opts.idle_usec;
	else
		return;
	r = sd_event_add_time_relative(s->ev, &s->idle_timer, CLOCK_MONOTONIC, usec, 0,
				       bsvc_idle_fired, s);
	if (r < 0)
		log_warning_errno(r, "Arming the idle timer failed; staying up");
}

static void bsvc_on_connect(ipc_conn *c, void *userdata)
{
	bsvc *s = userdata;
	char who[200];

	log_debug("Accepted %s", ipc_peer_describe(ipc_conn_peer(c), who, sizeof(who)));
	s->idle_timer = sd_event_source_disable_unref(s->idle_timer);
}

static void bsvc_on_close(ipc_conn *c, int err, const char *reason, void *userdata)
{
	bsvc *s = userdata;

	/* A caller that went away no longer wants its bundle. */
	if (s->running && s->running->conn == c)
		atomic_store(&s->running->cancel, true);
	for (bsvc_job *j = s->head; j; j = j->next)
		if (j->conn == c)
			atomic_store(&j->cancel, true);
	if (err < 0 && err != IPC_E_DISCONNECTED)
		log_info("Connection closed: %s", reason ? reason : ipc_strerror(err));
	bsvc_check_idle(s);
}

static const ipc_method bsvc_methods[] = {
	{ bsvc_on_hash, IPC_METHOD_ACCEPT_FD, BSVC_ROLES },
	{ bsvc_on_spindown, 0, BSVC_ROLES },
};

int bsvc_new(sd_event *ev, int listen_fd, const ipc_trust *trust, const bsvc_opts *opts,
	     bsvc **ret)
{
	ipc_server_opts so = { .on_connect = bsvc_on_connect, .on_close = bsvc_on_close };
	const ProtobufCMethodDescriptor *pm;
	bsvc *s;
	int r;

	pm = protobuf_c_service_descriptor_get_method_by_name(&santa__notifier__descriptor,
							      "UpdateBundleProgress");
	if (!pm || santa__bundle_service__descriptor.n_methods != 2) {
		close(listen_fd);
		return -EPROTO;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(listen_fd);
		return -ENOMEM;
	}
	s->ev = ev;
	s->trust = trust;
	s->opts = *opts;
	s->progress_method = (unsigned)(pm - santa__notifier__descriptor.methods);
	s->service = (ipc_service){
		.desc = &santa__bundle_service__descriptor,
		.methods = bsvc_methods,
		.accept_roles = BSVC_ROLES,
		.userdata = s,
	};
	so.userdata = s;
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r = s->efd < 0 ? -errno
		       : sd_event_add_io(ev, &s->efd_src, s->efd, EPOLLIN, bsvc_on_wake, s);
	if (r >= 0)
		r = ipc_server_new(ev, listen_fd, trust, &s->service, &so, &s->server);
	if (r < 0) {
		close(listen_fd);
		bsvc_free(s);
		return r;
	}
	bsvc_check_idle(s);
	*ret = s;
	return 0;
}

bsvc *bsvc_free(bsvc *s)
{
	bsvc_job *j;

	if (!s)
		return NULL;
	if (s->running)
		atomic_store(&s->running->cancel, true);
	bsvc_job_free(s->running);
	while ((j = s->head)) {
		s->head = j->next;
		bsvc_job_free(j);
	}
	ipc_server_free(s->server);
	sd_event_source_disable_unref(s->efd_src);
	sd_event_source_disable_unref(s->idle_timer);
	if (s->efd >= 0)
		close(s->efd);
	free(s);
	return NULL;
}
