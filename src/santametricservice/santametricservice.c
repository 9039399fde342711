/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santametricservice: receives santad's metric set (MetricService.Export,
 * one-way) and writes it in MetricFormat to MetricURL.
 *
 * It runs as ServiceUser (nobody): a process that parses what arrives on a
 * socket and talks to the network holds no privilege. Whoever starts it
 * (santad's launcher or systemd) passes the listening socket as systemd
 * does; `--socket PATH` makes one instead, for tests and trying by hand.
 * Run as root, it drops to ServiceUser once the socket is open. Only santad
 * may connect.
 *
 * Exit status: 0 on SIGTERM/SIGINT, 78 (EX_CONFIG) for a configuration it
 * cannot serve (an unknown MetricFormat, a MetricURL without a writer),
 * 1 for anything else that keeps it from starting.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "activation.h"
#include "config.h"
#include "exporter.h"
#include "format.h"
#include "ipc.h"
#include "log.h"
#include "metric.pb-c.h"
#include "santa-build.h"
#include "santa.pb-c.h"

#define EXIT_CONFIG 78

typedef struct service {
	santa_config cfg;
	exporter *exp;              /* NULL when MetricURL is not set */
	bool warned_unconfigured;
	bool config_error;          /* exit with EXIT_CONFIG */
	sd_event *ev;
	ipc_trust *trust;
	ipc_server *server;
} service;

typedef struct options {
	const char *config;
	const char *socket;
	bool debug;
} options;

static void export_received(ipc_call *call, const ProtobufCMessage *request,
			    void *userdata)
{
	const Santa__MetricSet *set = (const Santa__MetricSet *)request;
	char who[384], err[512] = "", *text;
	service *svc = userdata;
	Santa__Empty empty = SANTA__EMPTY__INIT;
	size_t len;
	int r;

	ipc_peer_describe(ipc_call_peer(call), who, sizeof(who));
	if (!svc->exp) {
		if (!svc->warned_unconfigured)
			log_notice("Receiving metrics from %s, but MetricURL is not set: "
				   "they are not exported", who);
		svc->warned_unconfigured = true;
		goto out;
	}
	r = metric_set_check(set, err, sizeof(err));
	if (r < 0) {
		log_warning("Refusing the metric set from %s: %s", who, err);
		goto out;
	}
	r = metric_format_render(exporter_format(svc->exp), set, &text, &len);
	if (r < 0) {
		log_warning_errno(r, "Rendering the metric set from %s failed", who);
		goto out;
	}
	log_debug("Received %zu metrics from %s", set->n_metrics, who);
	exporter_submit(svc->exp, text, len);
out:
	ipc_call_reply(call, &empty.base);
}

static const ipc_method service_methods[] = {
	{ export_received, 0, IPC_ROLE_BIT(IPC_ROLE_SANTAD) },
};

/* REASON names the peer already. */
static void conn_closed(ipc_conn *c, int err, const char *reason, void *userdata)
{
	char who[384];

	if (!reason)
		reason = ipc_peer_describe(ipc_conn_peer(c), who, sizeof(who));
	if (err == 0 || err == IPC_E_DISCONNECTED)
		log_info("Connection closed: %s", reason);
	else
		log_warning("Closed a connection: %s (%s)", reason, ipc_strerror(err));
}

/* --- Start-up --- */

static void print_help(FILE *f)
{
	fprintf(f,
		"Usage: santametricservice [OPTIONS]\n"
		"\n"
		"Receives santad's metrics and writes them in MetricFormat (rawjson,\n"
		"monarchjson, prometheus) to MetricURL (file://, http://, https://).\n"
		"Normally started by systemd or santad with its listening socket passed\n"
		"as LISTEN_FDS; run as root, it drops to ServiceUser. Exits 78 when it\n"
		"cannot read its configuration or cannot serve its MetricFormat or\n"
		"MetricURL.\n"
		"\n"
		"  -c, --config FILE   read FILE (default $SANTA_CONFIG, else\n"
		"                      " SANTA_DEFAULT_CONFIG ")\n"
		"  -s, --socket PATH   for tests: listen on PATH instead of a passed\n"
		"                      socket\n"
		"  -d, --debug         log debug messages\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n");
}

static int parse_args(int argc, char **argv, options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "debug", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:s:dVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'd':
			o->debug = true;
			break;
		case 'V':
			printf("santametricservice %s\n", SANTA_VERSION);
			return 0;
		case 'h':
			print_help(stdout);
			return 0;
		default:
			print_help(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "santametricservice: unexpected argument \"%s\"\n",
			argv[optind]);
		return -EINVAL;
	}
	return 1;
}

/* The export configuration; an unusable one sets config_error. */
static int setup_export(service *svc)
{
	const santa_config *cfg = &svc->cfg;
	metric_format format;
	char err[512] = "";
	int r;

	if (!cfg->metric_url || !*cfg->metric_url) {
		log_notice("MetricURL is not set: metrics santad sends are not exported");
		return 0;
	}
	r = metric_export_check(cfg->metric_format, cfg->metric_url, &format, err,
				sizeof(err));
	if (r < 0) {
		/* The message starts with the key it is about. */
		const char *key = strncmp(err, "MetricFormat", 12) ? "MetricURL" : "MetricFormat";
		char where[PATH_MAX + 32];

		log_error("Refusing to start: %s%s",
			  santa_config_where(cfg, key, where, sizeof(where)), err);
		svc->config_error = true;
		return -EINVAL;
	}
	r = exporter_new(format, cfg->metric_url, cfg->metric_export_timeout, &svc->exp,
			 err, sizeof(err));
	if (r < 0) {
		log_error("Setting up the export to \"%s\" failed: %s", cfg->metric_url, err);
		return r;
	}
	log_info("Exporting metrics as %s to \"%s\"", metric_format_name(format),
		 cfg->metric_url);
	return 0;
}

static int open_socket(const options *o)
{
	int fd, flags, r;

	if (o->socket) {
		fd = ipc_listen_socket(o->socket, 0600, (uid_t)-1, (gid_t)-1);
		if (fd < 0)
			return log_error_errno(fd, "Listening on \"%s\" failed", o->socket);
		return fd;
	}
	fd = santa_listen_fd(NULL);
	if (fd == -ENOENT) {
		log_error("No listening socket was passed (LISTEN_FDS), and no --socket "
			  "given: refusing to start");
		return fd;
	}
	if (fd < 0)
		return log_error_errno(fd, "Taking the passed listening socket failed");
	/* systemd passes sockets blocking unless told otherwise; the server
	 * accepts in batches until EAGAIN and must not block there. */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		r = log_error_errno(-errno, "Making the passed listening socket non-blocking "
				    "failed");
		close(fd);
		return r;
	}
	return fd;
}

/* Running as root (started by hand): become ServiceUser for good. */
static int drop_privileges(const char *user)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		log_error("Dropping privileges failed: no user \"%s\" (ServiceUser)", user);
		return errno ? -errno : -ENOENT;
	}
	if (pw->pw_uid == 0) {
		log_error("Refusing to run as root: ServiceUser \"%s\" is root", user);
		return -EPERM;
	}
	if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return log_error_errno(-errno, "Dropping privileges to \"%s\" failed", user);
	if (setuid(0) == 0) {
		log_error("Dropping privileges to \"%s\" failed: root could be regained", user);
		return -EPERM;
	}
	log_info("Running as \"%s\" (uid %u)", user, (unsigned)pw->pw_uid);
	return 0;
}

static int setup_server(service *svc, int fd)
{
	static ipc_service desc = {
		.desc = &santa__metric_service__descriptor,
		.methods = service_methods,
		.accept_roles = IPC_ROLE_BIT(IPC_ROLE_SANTAD),
	};
	ipc_server_opts opts = { .on_close = conn_closed, .userdata = svc };
	int r;

	desc.userdata = svc;
	r = ipc_trust_new(&svc->trust);
	if (r == 0)
		r = ipc_trust_add_defaults(svc->trust, svc->cfg.trusted_executables);
	if (r < 0)
		return log_error_errno(r, "Setting up the trusted executables failed");
	r = ipc_server_new(svc->ev, fd, svc->trust, &desc, &opts, &svc->server);
	if (r < 0)
		return log_error_errno(r, "Serving the metric service failed");
	return 0;
}

static int setup_loop(service *svc)
{
	sigset_t mask;
	int r;

	r = sd_event_default(&svc->ev);
	if (r < 0)
		return log_error_errno(r, "Creating the event loop failed");
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	r = sd_event_add_signal(svc->ev, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(svc->ev, NULL, SIGINT, NULL, NULL);
	if (r < 0)
		return log_error_errno(r, "Handling SIGTERM and SIGINT failed");
	return 0;
}

static int run(service *svc, const options *o)
{
	char err[512] = "";
	int fd = -1, r;

	if (santa_config_load(o->config, &svc->cfg, err, sizeof(err)) < 0) {
		log_error("Refusing to start: %s", err);
		svc->config_error = true;
		return -EINVAL;
	}
	r = setup_loop(svc);
	if (r < 0)
		return r;
	fd = open_socket(o);
	if (fd < 0)
		return fd;
	r = drop_privileges(svc->cfg.service_user);
	if (r < 0)
		goto fail;
	/* After the drop: the export thread starts here, and libcurl's global
	 * state is set up before any thread exists. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("Initializing libcurl failed");
		r = -ENOMEM;
		goto fail;
	}
	r = setup_export(svc);
	if (r < 0)
		goto fail;
	r = setup_server(svc, fd);
	if (r < 0)
		goto fail;
	log_info("Serving santad's metrics, santametricservice %s", SANTA_VERSION);
	return sd_event_loop(svc->ev);
fail:
	close(fd);
	return r;
}

int main(int argc, char **argv)
{
	options o = { 0 };
	service svc = { 0 };
	int r;

	log_open(argv[0]);
	r = parse_args(argc, argv, &o);
	if (r <= 0)
		return r < 0 ? 2 : 0;
	if (o.debug)
		log_set_level(SANTA_LOG_DEBUG);
	r = run(&svc, &o);
	ipc_server_free(svc.server);
	exporter_free(svc.exp);
	ipc_trust_free(svc.trust);
	sd_event_unref(svc.ev);
	santa_config_done(&svc.cfg);
	curl_global_cleanup();
	if (svc.config_error)
		return EXIT_CONFIG;
	return r < 0 ? 1 : 0;
}
