/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santagui: shows the user of this session why santad blocked a program.
 *
 * One runs per logged-in user (XDG autostart or a systemd user unit). It
 * registers a notifier endpoint with santad, which calls it for the
 * active session only, and hashes blocked programs' bundles with
 * santabundleservice when santad asks for it. See app.h for the parts.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "loop.h"
#include "santa-build.h"

typedef struct gui_args {
	const char *config;
	const char *santad_socket;
	const char *bundle_socket;
	bool terminal;
	bool json;
	uint32_t bundle_timeout_ms;
	const char *hash_bundle;
} gui_args;

static void gui_usage(FILE *out)
{
	fprintf(out,
		"Usage: santagui [OPTIONS]\n"
		"\n"
		"Shows why Santa blocked a program, as desktop notifications or in a\n"
		"terminal. Started in each user's session; exits 1 when it cannot read its\n"
		"configuration.\n"
		"\n"
		"  -c, --config FILE       read FILE (default $SANTA_CONFIG, else\n"
		"                          %s)\n"
		"      --terminal          print notifications to stdout instead of the\n"
		"                          desktop\n"
		"      --json              with --terminal: one JSON object per line\n"
		"      --santad-socket PATH\n"
		"                          santad's socket (default RunDirectory/santad.sock)\n"
		"      --bundle-socket PATH\n"
		"                          santabundleservice's socket\n"
		"                          (default RunDirectory/santabundleservice.sock)\n"
		"      --bundle-timeout SECS\n"
		"                          give up hashing a bundle after SECS (default:\n"
		"                          the service's limit, 10 minutes)\n"
		"      --hash-bundle FILE  hash the bundle FILE belongs to with\n"
		"                          santabundleservice, show the result, and exit\n"
		"  -d, --debug             log debug messages\n"
		"  -h, --help              show this help\n"
		"  -V, --version           show the version\n",
		SANTA_DEFAULT_CONFIG);
}

enum {
	OPT_TERMINAL = 256,
	OPT_JSON,
	OPT_SANTAD_SOCKET,
	OPT_BUNDLE_SOCKET,
	OPT_BUNDLE_TIMEOUT,
	OPT_HASH_BUNDLE,
};

static int gui_parse_timeout(const char *s, uint32_t *ret_ms)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > 3600)
		return -EINVAL;
	*ret_ms = (uint32_t)v * 1000u;
	return 0;
}

/* 0 to run, 1 to exit successfully (help, version), -1 on a bad option. */
static int gui_parse_args(int argc, char **argv, gui_args *args)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "terminal", no_argument, NULL, OPT_TERMINAL },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "santad-socket", required_argument, NULL, OPT_SANTAD_SOCKET },
		{ "bundle-socket", required_argument, NULL, OPT_BUNDLE_SOCKET },
		{ "bundle-timeout", required_argument, NULL, OPT_BUNDLE_TIMEOUT },
		{ "hash-bundle", required_argument, NULL, OPT_HASH_BUNDLE },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:dhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': args->config = optarg; break;
		case OPT_TERMINAL: args->terminal = true; break;
		case OPT_JSON: args->json = true; break;
		case OPT_SANTAD_SOCKET: args->santad_socket = optarg; break;
		case OPT_BUNDLE_SOCKET: args->bundle_socket = optarg; break;
		case OPT_HASH_BUNDLE: args->hash_bundle = optarg; break;
		case OPT_BUNDLE_TIMEOUT:
			if (gui_parse_timeout(optarg, &args->bundle_timeout_ms) < 0) {
				fprintf(stderr, "santagui: --bundle-timeout: expected 1 to 3600 "
					"seconds, got '%s'\n", optarg);
				return -1;
			}
			break;
		case 'd': log_set_level(SANTA_LOG_DEBUG); break;
		case 'h': gui_usage(stdout); return 1;
		case 'V': printf("santagui %s\n", SANTA_VERSION); return 1;
		default: gui_usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "santagui: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (args->json && !args->terminal) {
		fprintf(stderr, "santagui: --json goes with --terminal\n");
		return -1;
	}
	return 0;
}

static char *gui_socket_path(const char *given, const char *dir, const char *name)
{
	char *p;

	if (given)
		return strdup(given);
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

static int gui_setup(app *a, const gui_args *args)
{
	char err[512];
	int r;

	if (santa_config_load(args->config, &a->cfg, err, sizeof(err)) < 0) {
		log_error("Reading the configuration failed: %s", err);
		return -EINVAL;
	}
	r = ipc_trust_new(&a->trust);
	if (r >= 0)
		r = ipc_trust_add_defaults(a->trust, a->cfg.trusted_executables);
	if (r < 0)
		return log_error_errno(r, "Setting up the table of trusted executables failed");

	a->santad_path = gui_socket_path(args->santad_socket, a->cfg.run_directory, "santad.sock");
	a->bundle_path = gui_socket_path(args->bundle_socket, a->cfg.run_directory,
					 "santabundleservice.sock");
	if (!a->santad_path || !a->bundle_path)
		return log_error_errno(-ENOMEM, "Setting up the socket paths failed");
	a->bundle_timeout_ms = args->bundle_timeout_ms;
	a->hash_bundle = args->hash_bundle;

	if (args->terminal)
		r = display_terminal_new(stdout, args->json, &a->display);
	else
		r = display_desktop_new("Santa", &a->display);
	if (r < 0)
		return log_error_errno(r, "Setting up the %s display failed%s",
				       args->terminal ? "terminal" : "desktop",
				       args->terminal ? "" : " (no notification server on the "
				       "session bus? --terminal prints to stdout)");
	return 0;
}

static int gui_on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	log_info("Stopping on signal %u", si->ssi_signo);
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void gui_hashed(void *userdata)
{
	app *a = userdata;

	sd_event_exit(a->ev, 0);
}

/* --hash-bundle: one job, without santad. */
static int gui_hash_one(app *a)
{
	Santa__Event e = SANTA__EVENT__INIT;
	char *path = realpath(a->hash_bundle, NULL), *slash;
	int r;

	if (!path)
		return log_error_errno(-errno, "Resolving '%s' failed", a->hash_bundle);
	slash = strrchr(path, '/');
	*slash = '\0';
	e.file_path = slash == path ? "/" : path;
	e.file_name = slash + 1;
	bundler_on_idle(a->bundler, gui_hashed, a);
	r = bundler_enqueue(a->bundler, &e, 0);
	free(path);
	return r;
}

static int gui_run(app *a, bool glib)
{
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return log_error_errno(-errno, "Blocking the stop signals failed");
	signal(SIGPIPE, SIG_IGN);

	r = sd_event_new(&a->ev);
	if (r >= 0)
		r = sd_event_add_signal(a->ev, NULL, SIGTERM, gui_on_signal, a);
	if (r >= 0)
		r = sd_event_add_signal(a->ev, NULL, SIGINT, gui_on_signal, a);
	if (r < 0)
		return log_error_errno(r, "Setting up the event loop failed");

	r = bundler_new(a, &a->bundler);
	if (r >= 0 && a->hash_bundle)
		r = gui_hash_one(a);
	else if (r >= 0)
		r = link_start(a);
	if (r < 0)
		return log_error_errno(r, "Starting failed");
	if (!a->hash_bundle)
		log_info("Waiting for santad at '%s'", a->santad_path);
	r = loop_run(a->ev, glib);
	if (r < 0)
		return log_error_errno(r, "Running the event loop failed");
	return a->hash_bundle && bundler_failed(a->bundler) ? -EIO : 0;
}

static void gui_cleanup(app *a)
{
	a->link = link_free(a->link);
	a->bundler = bundler_free(a->bundler);
	a->display = display_free(a->display);
	a->ev = sd_event_unref(a->ev);
	a->trust = ipc_trust_free(a->trust);
	free(a->santad_path);
	free(a->bundle_path);
	santa_config_done(&a->cfg);
}

int main(int argc, char **argv)
{
	gui_args args = { 0 };
	app a = { 0 };
	int r;

	log_open("santagui");
	r = gui_parse_args(argc, argv, &args);
	if (r != 0)
		return r > 0 ? EXIT_SUCCESS : 2;

	r = gui_setup(&a, &args);
	if (r >= 0)
		r = gui_run(&a, !args.terminal);
	gui_cleanup(&a);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
