/* SPDX-License-Identifier: Apache-2.0 */
/* The display interface, and the terminal display. */
#include "display-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "ipc.h"

typedef struct display_term {
	FILE *out;
	bool json;
} display_term;

bool display_url_allowed(const char *url)
{
	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
		return false;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int display_show(display *d, const notice *n, uint64_t *ret_id)
{
	uint64_t id = ++d->next_id;
	int r = d->ops->show(d, n, id);

	if (r >= 0 && ret_id)
		*ret_id = id;
	return r;
}

void display_bundle_progress(display *d, uint64_t id, const Santa__BundleProgress *p)
{
	d->ops->progress(d, id, p);
}

void display_bundle_done(display *d, uint64_t id, int err, const char *bundle_hash,
			 unsigned binary_count)
{
	d->ops->done(d, id, err, bundle_hash, binary_count);
}

display *display_free(display *d)
{
	if (!d)
		return NULL;
	d->ops->free(d);
	free(d);
	return NULL;
}

/* --- Terminal --- */

static const char *display_kind_name(notice_kind k)
{
	switch (k) {
	case NOTICE_BLOCK:
		return "block";
	case NOTICE_MODE:
		return "mode";
	default:
		return "rule_sync";
	}
}

static void term_json_add_str(json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, value ? json_object_new_string(value) : NULL);
}

static void term_emit_json(display_term *t, json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);

	fprintf(t->out, "%s\n", s ? s : "{}");
	fflush(t->out);
	json_object_put(o);
}

static int term_show_json(display_term *t, const notice *n, uint64_t id)
{
	json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	term_json_add_str(o, "type", display_kind_name(n->kind));
	json_object_object_add(o, "id", json_object_new_uint64(id));
	term_json_add_str(o, "summary", n->summary);
	term_json_add_str(o, "message", n->message);
	term_json_add_str(o, "body", n->body);
	term_json_add_str(o, "url", n->url);
	term_json_add_str(o, "action", n->action_label);
	term_json_add_str(o, "path", n->path);
	term_json_add_str(o, "sha256", n->sha256);
	term_json_add_str(o, "reason", n->reason);
	json_object_object_add(o, "raised_at", json_object_new_double(n->raised_at));
	json_object_object_add(o, "dropped_before", json_object_new_int64(n->dropped_before));
	term_emit_json(t, o);
	return 0;
}

static void term_time(double at, char *buf, size_t size)
{
	time_t secs = (time_t)at;
	struct tm tm;

	if (at <= 0 || !gmtime_r(&secs, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "-");
}

static int term_show(display *d, const notice *n, uint64_t id)
{
	display_term *t = d->impl;
	char when[32];

	if (t->json)
		return term_show_json(t, n, id);
	term_time(n->raised_at, when, sizeof(when));
	fprintf(t->out, "--- [%" PRIu64 "] %s (%s)\n%s\n", id, n->summary, when, n->body);
	if (n->url)
		fprintf(t->out, "%s: %s\n", n->action_label, n->url);
	fprintf(t->out, "\n");
	fflush(t->out);
	return 0;
}

static void term_progress(display *d, uint64_t id, const Santa__BundleProgress *p)
{
	display_term *t = d->impl;
	json_object *o;

	if (!t->json) {
		fprintf(t->out, "[%" PRIu64 "] hashing bundle %s: %u executables found, %u hashed, "
			"%u files looked at%s\n", id, p->bundle_path ? p->bundle_path : "",
			p->binary_count, p->hashed_count, p->file_count, p->done ? ", done" : "");
		fflush(t->out);
		return;
	}
	o = json_object_new_object();
	if (!o)
		return;
	term_json_add_str(o, "type", "bundle_progress");
	json_object_object_add(o, "id", json_object_new_uint64(id));
	json_object_object_add(o, "event_id", json_object_new_int64(p->event_id));
	term_json_add_str(o, "file_path", p->file_path);
	term_json_add_str(o, "bundle_path", p->bundle_path);
	json_object_object_add(o, "binary_count", json_object_new_int64(p->binary_count));
	json_object_object_add(o, "file_count", json_object_new_int64(p->file_count));
	json_object_object_add(o, "hashed_count", json_object_new_int64(p->hashed_count));
	json_object_object_add(o, "done", json_object_new_boolean(p->done));
	term_emit_json(t, o);
}

static void term_done(display *d, uint64_t id, int err, const char *hash, unsigned count)
{
	display_term *t = d->impl;
	json_object *o;

	if (!t->json) {
		if (err < 0)
			fprintf(t->out, "[%" PRIu64 "] hashing the bundle failed: %s\n", id,
				ipc_strerror(err));
		else if (!hash || !hash[0])
			fprintf(t->out, "[%" PRIu64 "] the file belongs to no bundle\n", id);
		else
			fprintf(t->out, "[%" PRIu64 "] bundle hash %s over %u executables\n", id,
				hash, count);
		fflush(t->out);
		return;
	}
	o = json_object_new_object();
	if (!o)
		return;
	term_json_add_str(o, "type", "bundle_done");
	json_object_object_add(o, "id", json_object_new_uint64(id));
	term_json_add_str(o, "error", err < 0 ? ipc_strerror(err) : NULL);
	term_json_add_str(o, "bundle_hash", err < 0 ? NULL : hash);
	json_object_object_add(o, "binary_count", json_object_new_int64(count));
	term_emit_json(t, o);
}

static void term_free(display *d)
{
	free(d->impl);
}

static const display_ops term_ops = {
	.show = term_show,
	.progress = term_progress,
	.done = term_done,
	.free = term_free,
};

int display_terminal_new(FILE *out, bool json, display **ret)
{
	display *d = calloc(1, sizeof(*d));
	display_term *t = calloc(1, sizeof(*t));

	if (!d || !t) {
		free(d);
		free(t);
		return -ENOMEM;
	}
	t->out = out;
	t->json = json;
	d->ops = &term_ops;
	d->impl = t;
	*ret = d;
	return 0;
}

#ifndef HAVE_LIBNOTIFY
int display_desktop_new(const char *app_name, display **ret)
{
	*ret = NULL;
	return -EOPNOTSUPP;
}
#endif
