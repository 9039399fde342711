/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santabundleservice: hashes the bundle of a blocked program for santagui
 * (see service.h and bundle.h). Runs as root, started on demand: its
 * listening socket comes from systemd or santad's launcher (LISTEN_FDS);
 * --socket creates one itself, for tests only.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "activation.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "santa-build.h"
#include "service.h"

#define BSVC_IDLE_DEFAULT_SEC 30u

typedef struct bsvc_args {
	const char *config;
	const char *socket;
	const char *dpkg_root;
	const char *app_root;
	uint32_t timeout_sec;
	uint32_t idle_sec;
} bsvc_args;

static void bsvc_usage(FILE *out)
{
	fprintf(out,
		"Usage: santabundleservice [OPTIONS]\n"
		"\n"
		"Hashes every executable of a blocked program's bundle, for santagui.\n"
		"Normally started by systemd or santad, as root, with its listening\n"
		"socket passed as LISTEN_FDS. Exits 78 when it cannot read its\n"
		"configuration.\n"
		"\n"
		"  -c, --config FILE   read FILE (default $SANTA_CONFIG, else\n"
		"                      %s)\n"
		"      --timeout SECS  give up on a bundle after SECS (default 600)\n"
		"      --idle-exit SECS\n"
		"                      exit after SECS without work or connection\n"
		"                      (default %u; 0 = never)\n"
		"      --socket PATH   for tests: create and listen on PATH instead of\n"
		"                      a passed socket\n"
		"      --dpkg-root DIR\n"
		"                      for tests: packages were installed below DIR\n"
		"                      (dpkg --root), not in /\n"
		"      --app-root DIR  for tests: application root instead of /opt\n"
		"  -d, --debug         log debug messages\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n",
		SANTA_DEFAULT_CONFIG, BSVC_IDLE_DEFAULT_SEC);
}

static int bsvc_parse_secs(const char *opt, const char *s, uint32_t min, uint32_t *ret)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > 86400) {
		fprintf(stderr, "santabundleservice: %s: expected %u to 86400 seconds, got '%s'\n",
			opt, min, s);
		return -1;
	}
	*ret = (uint32_t)v;
	return 0;
}

/* 0 to run, 1 to exit successfully, -1 on a bad option. */
static int bsvc_parse_args(int argc, char **argv, bsvc_args *a)
{
	enum { O_TIMEOUT = 256, O_IDLE, O_SOCKET, O_DPKG_ROOT, O_APP_ROOT };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "idle-exit", required_argument, NULL, O_IDLE },
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "dpkg-root", required_argument, NULL, O_DPKG_ROOT },
		{ "app-root", required_argument, NULL, O_APP_ROOT },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:dhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
		case O_SOCKET: a->socket = optarg; break;
		case O_DPKG_ROOT: a->dpkg_root = optarg; break;
		case O_APP_ROOT: a->app_root = optarg; break;
		case O_TIMEOUT:
			if (bsvc_parse_secs("--timeout", optarg, 1, &a->timeout_sec) < 0)
				return -1;
			break;
		case O_IDLE:
			if (bsvc_parse_secs("--idle-exit", optarg, 0, &a->idle_sec) < 0)
				return -1;
			break;
		case 'd': log_set_level(SANTA_LOG_DEBUG); break;
		case 'h': bsvc_usage(stdout); return 1;
		case 'V': printf("santabundleservice %s\n", SANTA_VERSION); return 1;
		default: bsvc_usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "santabundleservice: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

static int bsvc_listen(const bsvc_args *a)
{
	int fd;

	if (a->socket) {
		fd = ipc_listen_socket(a->socket, 0666, (uid_t)-1, (gid_t)-1);
		if (fd < 0)
			return log_error_errno(fd, "Listening on '%s' failed", a->socket);
		return fd;
	}
	fd = santa_listen_fd(NULL);
	if (fd < 0)
		return log_error_errno(fd, "Getting the listening socket failed (systemd or "
				       "santad pass it in LISTEN_FDS)");
	/* Passed sockets may be blocking; the server accepts until EAGAIN. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		int r = log_error_errno(-errno, "Making the listening socket non-blocking failed");

		close(fd);
		return r;
	}
	return fd;
}

static int bsvc_on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	log_info("Stopping on signal %u", si->ssi_signo);
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int bsvc_run(const bsvc_args *a, const santa_config *cfg)
{
	bsvc_opts o = {
		.limit_ms = a->timeout_sec * 1000u,
		.idle_usec = (uint64_t)a->idle_sec * 1000000u,
		.dpkg_root = a->dpkg_root,
		.app_root = a->app_root,
	};
	ipc_trust *trust = NULL;
	sd_event *ev = NULL;
	bsvc *s = NULL;
	sigset_t mask;
	int fd, r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = ipc_trust_new(&trust);
	if (r >= 0)
		r = ipc_trust_add_defaults(trust, cfg->trusted_executables);
	if (r < 0) {
		log_error_errno(r, "Setting up the table of trusted executables failed");
		goto out;
	}
	r = sd_event_new(&ev);
	if (r >= 0)
		r = sd_event_add_signal(ev, NULL, SIGTERM, bsvc_on_signal, NULL);
	if (r >= 0)
		r = sd_event_add_signal(ev, NULL, SIGINT, bsvc_on_signal, NULL);
	if (r < 0) {
		log_error_errno(r, "Setting up the event loop failed");
		goto out;
	}
	fd = bsvc_listen(a);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	r = bsvc_new(ev, fd, trust, &o, &s);
	if (r < 0) {
		log_error_errno(r, "Starting the bundle service failed");
		goto out;
	}
	log_info("Serving bundle hashing requests (limit %u s, idle exit %s)",
		 o.limit_ms ? o.limit_ms / 1000u : BSVC_LIMIT_MS / 1000u,
		 a->idle_sec ? "on" : "off");
	r = sd_event_loop(ev);
	if (r < 0)
		log_error_errno(r, "Running the event loop failed");
out:
	bsvc_free(s);
	sd_event_unref(ev);
	ipc_trust_free(trust);
	return r;
}

int main(int argc, char **argv)
{
	bsvc_args args = { .idle_sec = BSVC_IDLE_DEFAULT_SEC };
	santa_config cfg;
	char err[512];
	int r;

	log_open("santabundleservice");
	r = bsvc_parse_args(argc, argv, &args);
	if (r != 0)
		return r > 0 ? EXIT_SUCCESS : 2;
	if (santa_config_load(args.config, &cfg, err, sizeof(err)) < 0) {
		log_error("Reading the configuration failed: %s", err);
		santa_config_done(&cfg);
		/* EX_CONFIG: the launchers do not restart it in a loop. */
		return 78;
	}
	r = bsvc_run(&args, &cfg);
	santa_config_done(&cfg);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
