/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Desktop notifications through libnotify. Its calls are synchronous
 * D-Bus calls on the session bus; the action button's signal arrives
 * through GLib's main loop, which santagui runs in desktop mode (see
 * loop.h).
 */
#include "display-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libnotify/notify.h>

#include "log.h"

/* Notifications kept for progress updates and their action: a bundle is
 * hashed soon after its block, so the last few suffice. */
#define DESKTOP_KEEP 16

typedef struct desktop_item {
	uint64_t id;
	NotifyNotification *n;
	char *summary;
	char *body;            /* as shown, before any progress line */
} desktop_item;

typedef struct display_desktop {
	bool markup;           /* the server renders body markup */
	desktop_item items[DESKTOP_KEEP];
} display_desktop;

static void desktop_item_clear(desktop_item *it)
{
	if (it->n) {
		g_object_unref(it->n);
		it->n = NULL;
	}
	free(it->summary);
	free(it->body);
	memset(it, 0, sizeof(*it));
}

static desktop_item *desktop_find(display_desktop *dd, uint64_t id)
{
	desktop_item *it = &dd->items[id % DESKTOP_KEEP];

	return it->id == id && it->n ? it : NULL;
}

static void desktop_open_url(NotifyNotification *n, char *action, gpointer userdata)
{
	char *argv[] = { "xdg-open", userdata, NULL };
	GError *err = NULL;

	/* GLib reaps the child itself (no G_SPAWN_DO_NOT_REAP_CHILD). */
	if (!g_spawn_async(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
			   NULL, NULL, NULL, &err)) {
		log_warning("Opening the detail URL '%s' with xdg-open failed: %s, ignoring",
			    (char *)userdata, err ? err->message : "unknown error");
		g_clear_error(&err);
	}
}

/* The body as the server wants it: escaped when it renders markup. */
static char *desktop_body(display_desktop *dd, const char *plain)
{
	return dd->markup ? notice_markup_escape(plain) : strdup(plain);
}

static int desktop_present(display_desktop *dd, desktop_item *it, const char *extra)
{
	char *plain = NULL, *body;
	GError *err = NULL;

	if (extra && asprintf(&plain, "%s\n%s", it->body, extra) < 0)
		return -ENOMEM;
	body = desktop_body(dd, plain ? plain : it->body);
	free(plain);
	if (!body)
		return -ENOMEM;
	notify_notification_update(it->n, it->summary, body, "dialog-warning");
	free(body);
	if (!notify_notification_show(it->n, &err)) {
		log_warning("Showing the notification '%s' failed: %s", it->summary,
			    err ? err->message : "unknown error");
		g_clear_error(&err);
		return -EIO;
	}
	return 0;
}

static int desktop_show(display *d, const notice *n, uint64_t id)
{
	display_desktop *dd = d->impl;
	desktop_item *it = &dd->items[id % DESKTOP_KEEP];

	desktop_item_clear(it);
	it->id = id;
	it->summary = strdup(n->summary);
	it->body = strdup(n->body);
	it->n = notify_notification_new(n->summary, "", "dialog-warning");
	if (!it->summary || !it->body || !it->n) {
		desktop_item_clear(it);
		return -ENOMEM;
	}
	notify_notification_set_app_name(it->n, "Santa");
	notify_notification_set_urgency(it->n, n->kind == NOTICE_BLOCK ? NOTIFY_URGENCY_CRITICAL
								      : NOTIFY_URGENCY_NORMAL);
	if (n->kind == NOTICE_BLOCK)
		notify_notification_set_timeout(it->n, NOTIFY_EXPIRES_NEVER);
	if (n->url && display_url_allowed(n->url))
		notify_notification_add_action(it->n, "details", n->action_label,
					       desktop_open_url, strdup(n->url), free);
	else if (n->url)
		log_warning("Not offering the detail URL '%s': only http and https are opened",
			    n->url);
	return desktop_present(dd, it, NULL);
}

static void desktop_progress(display *d, uint64_t id, const Santa__BundleProgress *p)
{
	display_desktop *dd = d->impl;
	desktop_item *it = desktop_find(dd, id);
	char line[160];

	if (!it || p->done)
		return;
	snprintf(line, sizeof(line), "Hashing its application: %u of %u executables",
		 p->hashed_count, p->binary_count);
	desktop_present(dd, it, line);
}

static void desktop_done(display *d, uint64_t id, int err, const char *hash, unsigned count)
{
	display_desktop *dd = d->impl;
	desktop_item *it = desktop_find(dd, id);
	char line[160];

	if (!it)
		return;
	if (err < 0 || !hash || !hash[0])
		return;   /* nothing the user needs to see; logged by the caller */
	snprintf(line, sizeof(line), "Application bundle: %u executables, hash %.12s...",
		 count, hash);
	desktop_present(dd, it, line);
}

static void desktop_free(display *d)
{
	display_desktop *dd = d->impl;

	for (size_t i = 0; dd && i < DESKTOP_KEEP; i++)
		desktop_item_clear(&dd->items[i]);
	free(dd);
	if (notify_is_initted())
		notify_uninit();
}

static const display_ops desktop_ops = {
	.show = desktop_show,
	.progress = desktop_progress,
	.done = desktop_done,
	.free = desktop_free,
};

static bool desktop_server_has_markup(void)
{
	GList *caps = notify_get_server_caps();
	bool markup = false;

	for (GList *c = caps; c; c = c->next)
		if (strcmp(c->data, "body-markup") == 0)
			markup = true;
	g_list_free_full(caps, g_free);
	return markup;
}

int display_desktop_new(const char *app_name, display **ret)
{
	char *name = NULL, *vendor = NULL, *version = NULL, *spec = NULL;
	display *d;
	display_desktop *dd;

	*ret = NULL;
	if (!notify_init(app_name))
		return -EIO;
	if (!notify_get_server_info(&name, &vendor, &version, &spec)) {
		notify_uninit();
		return -EIO;
	}
	log_info("Showing notifications through '%s' (%s %s, spec %s)", name, vendor, version,
		 spec);
	g_free(name);
	g_free(vendor);
	g_free(version);
	g_free(spec);

	d = calloc(1, sizeof(*d));
	dd = calloc(1, sizeof(*dd));
	if (!d || !dd) {
		free(d);
		free(dd);
		notify_uninit();
		return -ENOMEM;
	}
	dd->markup = desktop_server_has_markup();
	d->ops = &desktop_ops;
	d->impl = dd;
	*ret = d;
	return 0;
}
