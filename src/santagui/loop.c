/* SPDX-License-Identifier: Apache-2.0 */
#include "loop.h"

#include <errno.h>

#ifdef HAVE_LIBNOTIFY
#include <glib.h>

typedef struct loop_source {
	GSource source;
	sd_event *ev;
	GMainLoop *main;
} loop_source;

static gboolean loop_prepare(GSource *s, gint *timeout)
{
	loop_source *ls = (loop_source *)s;

	/* sd_event's own timers are timerfds behind its descriptor, so GLib
	 * needs no timeout of its own for them. */
	*timeout = -1;
	return sd_event_prepare(ls->ev) > 0;
}

static gboolean loop_check(GSource *s)
{
	loop_source *ls = (loop_source *)s;

	if (sd_event_get_state(ls->ev) == SD_EVENT_PENDING)
		return TRUE;
	if (sd_event_get_state(ls->ev) != SD_EVENT_ARMED)
		return FALSE;
	return sd_event_wait(ls->ev, 0) > 0;
}

static gboolean loop_dispatch(GSource *s, GSourceFunc cb, gpointer userdata)
{
	loop_source *ls = (loop_source *)s;

	if (sd_event_get_state(ls->ev) == SD_EVENT_PENDING)
		sd_event_dispatch(ls->ev);
	if (sd_event_get_state(ls->ev) == SD_EVENT_FINISHED)
		g_main_loop_quit(ls->main);
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs loop_funcs = {
	.prepare = loop_prepare,
	.check = loop_check,
	.dispatch = loop_dispatch,
};

static int loop_run_glib(sd_event *ev)
{
	loop_source *ls;
	int code = 0, r;

	ls = (loop_source *)g_source_new(&loop_funcs, sizeof(*ls));
	ls->ev = ev;
	ls->main = g_main_loop_new(NULL, FALSE);
	g_source_add_unix_fd(&ls->source, sd_event_get_fd(ev), G_IO_IN);
	g_source_attach(&ls->source, NULL);

	g_main_loop_run(ls->main);

	g_main_loop_unref(ls->main);
	g_source_destroy(&ls->source);
	g_source_unref(&ls->source);
	r = sd_event_get_exit_code(ev, &code);
	return r < 0 ? r : code;
}
#endif

int loop_run(sd_event *ev, bool glib)
{
#ifdef HAVE_LIBNOTIFY
	if (glib)
		return loop_run_glib(ev);
#else
	if (glib)
		return -EOPNOTSUPP;
#endif
	return sd_event_loop(ev);
}
