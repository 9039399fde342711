/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bundle hashing queue: one job at a time, over one connection to
 * santabundleservice that lives while there is work and ends with
 * Spindown, so that the service can exit when idle (the launcher starts
 * it again on the next connection).
 */
#include "app.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.pb-c.h"
#include "log.h"

/* Blocks arrive in bursts (a script run in a loop): beyond this many
 * waiting, new ones are not hashed. */
#define BUNDLER_QUEUE_MAX 16u
/* Beyond the service's own limit, for the answer to travel. */
#define BUNDLER_MARGIN_USEC 30000000u
#define BUNDLER_SERVICE_LIMIT_MS 600000u
#define BUNDLER_SPINDOWN_USEC 5000000u

typedef struct bundler_job {
	Santa__Event *event;
	uint64_t display_id;
	struct bundler_job *next;
} bundler_job;

struct bundler {
	app *a;
	bundler_job *head, *tail;
	size_t n_queued;
	bundler_job *current;
	ipc_conn *svc;             /* to santabundleservice */
	ipc_conn *progress;        /* our endpoint for the current job */
	int remote_fd;
	ipc_service progress_svc;  /* the endpoint keeps a pointer to it */
	bool spinning_down;
	unsigned hash_method, spindown_method;
	bool failed;
	void (*on_idle)(void *userdata);
	void *idle_userdata;
};

static void bundler_next(bundler *b);

static void bundler_job_free(bundler_job *j)
{
	if (!j)
		return;
	if (j->event)
		protobuf_c_message_free_unpacked(&j->event->base, NULL);
	free(j);
}

static void bundler_drop_progress(bundler *b)
{
	ipc_conn *p = b->progress;

	b->progress = NULL;
	if (b->remote_fd >= 0) {
		close(b->remote_fd);
		b->remote_fd = -1;
	}
	if (p) {
		ipc_conn_close(p);
		ipc_conn_unref(p);
	}
}

static void bundler_drop_svc(bundler *b)
{
	ipc_conn *s = b->svc;

	b->svc = NULL;
	b->spinning_down = false;
	if (s) {
		ipc_conn_close(s);
		ipc_conn_unref(s);
	}
}

/* End the current job (its result, if any, was dealt with) and go on. */
static void bundler_finish(bundler *b)
{
	bundler_job *j = b->current;

	b->current = NULL;
	bundler_drop_progress(b);
	bundler_job_free(j);
	bundler_next(b);
}

static void bundler_fail(bundler *b, const char *what, int err)
{
	bundler_job *j = b->current;

	b->failed = true;
	if (j) {
		log_warning("Hashing the bundle of '%s/%s' failed (%s: %s)", j->event->file_path,
			    j->event->file_name, what, ipc_strerror(err));
		display_bundle_done(b->a->display, j->display_id, err, NULL, 0);
	}
	bundler_drop_svc(b);
	bundler_finish(b);
}

/* --- Progress, as the bundle service reports it --- */

static void bundler_on_progress(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	const Santa__BundleProgress *p = (const Santa__BundleProgress *)req;
	Santa__Empty empty = SANTA__EMPTY__INIT;
	bundler *b = userdata;

	if (b->current && ipc_call_conn(call) == b->progress)
		display_bundle_progress(b->a->display, b->current->display_id, p);
	ipc_call_reply(call, &empty.base);
}

#define BUNDLER_SERVICE_ROLE IPC_ROLE_BIT(IPC_ROLE_BUNDLESERVICE)
static const ipc_method bundler_progress_methods[] = {
	[NOTIFIER_POST_BLOCK] = { NULL, 0, 0 },
	[NOTIFIER_POST_CLIENT_MODE] = { NULL, 0, 0 },
	[NOTIFIER_POST_RULE_SYNC] = { NULL, 0, 0 },
	[NOTIFIER_UPDATE_BUNDLE_PROGRESS] = { bundler_on_progress, 0, BUNDLER_SERVICE_ROLE },
};

/* --- Results --- */

/* The blocked event with the bundle's fields, then the bundle's binaries,
 * to santad. */
static void bundler_hand_over(bundler *b, const Santa__HashBundleReply *rep)
{
	const Santa__BundleInfo *bi = rep->bundle;
	Santa__Event stamped = *b->current->event, **all;
	int r;

	stamped.file_bundle_id = bi->id;
	stamped.file_bundle_name = bi->name;
	stamped.file_bundle_path = bi->path;
	stamped.file_bundle_version = bi->version;
	stamped.file_bundle_version_string = bi->version_string;
	stamped.file_bundle_executable_rel_path = bi->executable_rel_path;
	stamped.file_bundle_hash = bi->hash;
	stamped.file_bundle_hash_millis = bi->hash_millis;
	stamped.file_bundle_binary_count = bi->binary_count;

	all = calloc(rep->n_events + 1, sizeof(*all));
	if (!all) {
		log_warning("Handing the bundle of '%s' to santad failed: out of memory",
			    stamped.file_name);
		return;
	}
	all[0] = &stamped;
	memcpy(all + 1, rep->events, rep->n_events * sizeof(*all));
	r = link_sync_bundle_event(b->a->link, all, rep->n_events + 1);
	if (r < 0)
		log_warning("Handing the bundle of '%s' to santad failed: %s, dropped",
			    stamped.file_name, ipc_strerror(r));
	free(all);
}

static void bundler_hashed(ipc_conn *c, int err, const char *errmsg,
			   const ProtobufCMessage *reply, void *userdata)
{
	const Santa__HashBundleReply *rep = (const Santa__HashBundleReply *)reply;
	bundler *b = userdata;
	bundler_job *j = b->current;

	if (c != b->svc || !j)
		return;
	if (err < 0) {
		bundler_fail(b, errmsg ? errmsg : "HashBundleBinaries", err);
		return;
	}
	if (!rep->found || !rep->bundle) {
		log_info("'%s/%s' belongs to no bundle", j->event->file_path, j->event->file_name);
		display_bundle_done(b->a->display, j->display_id, 0, "", 0);
	} else {
		log_info("Hashed the %s bundle '%s' of '%s': %s over %u executables in %u ms",
			 rep->bundle->kind, rep->bundle->path, j->event->file_name,
			 rep->bundle->hash, rep->bundle->binary_count, rep->bundle->hash_millis);
		if (!b->a->hash_bundle)
			bundler_hand_over(b, rep);
		display_bundle_done(b->a->display, j->display_id, 0, rep->bundle->hash,
				    rep->bundle->binary_count);
	}
	bundler_finish(b);
}

/* The progress endpoint is for the bundle service alone: log whoever else
 * tried it. Its normal end (the job done) is not worth a line. */
static void bundler_progress_closed(ipc_conn *c, int err, const char *reason, void *userdata)
{
	if (err < 0 && err != IPC_E_DISCONNECTED)
		log_warning("Closed the bundle progress endpoint: %s",
			    reason ? reason : ipc_strerror(err));
}

static void bundler_start_job(bundler *b)
{
	ipc_server_opts opts = { .on_close = bundler_progress_closed, .userdata = b };
	Santa__HashBundleRequest req = SANTA__HASH_BUNDLE_REQUEST__INIT;
	uint32_t limit = b->a->bundle_timeout_ms ? b->a->bundle_timeout_ms
						  : BUNDLER_SERVICE_LIMIT_MS;
	int r;

	b->progress_svc = (ipc_service){
		.desc = &santa__notifier__descriptor,
		.methods = bundler_progress_methods,
		.accept_roles = BUNDLER_SERVICE_ROLE,
		.userdata = b,
	};
	r = ipc_endpoint_new(b->a->ev, b->a->trust, &b->progress_svc, ipc_conn_peer(b->svc), &opts,
			     &b->remote_fd, &b->progress);
	if (r < 0) {
		bundler_fail(b, "making the progress endpoint", r);
		return;
	}
	req.event = b->current->event;
	req.timeout_ms = b->a->bundle_timeout_ms;
	r = ipc_call_async(b->svc, b->hash_method, &req.base, b->remote_fd,
			   (uint64_t)limit * 1000u + BUNDLER_MARGIN_USEC, bundler_hashed, b);
	if (r < 0)
		bundler_fail(b, "HashBundleBinaries", r);
}

/* --- The connection to the service --- */

static void bundler_svc_ready(ipc_conn *c, int err, void *userdata)
{
	bundler *b = userdata;

	if (c != b->svc || !b->current)
		return;
	if (err < 0) {
		bundler_fail(b, "connecting to santabundleservice", err);
		return;
	}
	bundler_start_job(b);
}

static void bundler_svc_closed(ipc_conn *c, int err, const char *reason, void *userdata)
{
	bundler *b = userdata;

	if (c != b->svc)
		return;
	log_debug("santabundleservice connection closed: %s", reason ? reason : "");
	/* A job in flight got its reply callback (failed) before this. */
	bundler_drop_svc(b);
	if (!b->current)
		bundler_next(b);
}

static int bundler_connect(bundler *b)
{
	ipc_conn_opts opts = {
		.accept_roles = BUNDLER_SERVICE_ROLE,
		.on_close = bundler_svc_closed,
		.userdata = b,
	};

	return ipc_connect(b->a->ev, b->a->bundle_path, b->a->trust,
			   &santa__bundle_service__descriptor, &opts, bundler_svc_ready, &b->svc);
}

static void bundler_spun_down(ipc_conn *c, int err, const char *errmsg,
			      const ProtobufCMessage *reply, void *userdata)
{
	bundler *b = userdata;

	if (c != b->svc)
		return;
	bundler_drop_svc(b);
	bundler_next(b);
}

static void bundler_next(bundler *b)
{
	Santa__Empty empty = SANTA__EMPTY__INIT;
	int r;

	if (b->current || b->spinning_down)
		return;
	if (!b->head) {
		/* Nothing left: let the service go. */
		if (b->svc && ipc_call_async(b->svc, b->spindown_method, &empty.base, -1,
					     BUNDLER_SPINDOWN_USEC, bundler_spun_down, b) >= 0) {
			b->spinning_down = true;
			return;
		}
		bundler_drop_svc(b);
		if (b->on_idle)
			b->on_idle(b->idle_userdata);
		return;
	}
	b->current = b->head;
	b->head = b->head->next;
	if (!b->head)
		b->tail = NULL;
	b->n_queued--;

	if (b->svc && ipc_conn_is_ready(b->svc)) {
		bundler_start_job(b);
		return;
	}
	if (b->svc)
		return;   /* handshake under way: bundler_svc_ready starts it */
	r = bundler_connect(b);
	if (r < 0)
		bundler_fail(b, "connecting to santabundleservice", r);
}

int bundler_enqueue(bundler *b, const Santa__Event *event, uint64_t display_id)
{
	bundler_job *j;

	if (b->n_queued >= BUNDLER_QUEUE_MAX)
		return -ENOBUFS;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->event = (Santa__Event *)app_message_copy(&event->base);
	if (!j->event) {
		free(j);
		return -ENOMEM;
	}
	j->display_id = display_id;
	if (b->tail)
		b->tail->next = j;
	else
		b->head = j;
	b->tail = j;
	b->n_queued++;
	bundler_next(b);
	return 0;
}

int bundler_new(app *a, bundler **ret)
{
	const ProtobufCServiceDescriptor *d = &santa__bundle_service__descriptor;
	const ProtobufCMethodDescriptor *hash, *spin;
	bundler *b;

	hash = protobuf_c_service_descriptor_get_method_by_name(d, "HashBundleBinaries");
	spin = protobuf_c_service_descriptor_get_method_by_name(d, "Spindown");
	if (!hash || !spin)
		return -EPROTO;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->a = a;
	b->remote_fd = -1;
	b->hash_method = (unsigned)(hash - d->methods);
	b->spindown_method = (unsigned)(spin - d->methods);
	*ret = b;
	return 0;
}

void bundler_on_idle(bundler *b, void (*fn)(void *userdata), void *userdata)
{
	b->on_idle = fn;
	b->idle_userdata = userdata;
}

bool bundler_failed(const bundler *b)
{
	return b->failed;
}

bundler *bundler_free(bundler *b)
{
	if (!b)
		return NULL;
	bundler_job *j = b->head;

	b->head = b->tail = NULL;
	bundler_drop_progress(b);
	bundler_drop_svc(b);
	bundler_job_free(b->current);
	while (j) {
		bundler_job *next = j->next;

		bundler_job_free(j);
		j = next;
	}
	free(b);
	return NULL;
}
