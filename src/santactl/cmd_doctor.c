/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl doctor`: is this installation able to do its job? One line per
 * check, "[+] ..." when it is fine, "[-] ..." when it is not and "[ ] ..."
 * when this user cannot run it (it says why), and exit status 1 when any
 * check found a problem: a skipped check is not one. Checks, in order: the
 * configuration parses; the kernel has fanotify permission events; santad
 * runs and answers; each service answers on its socket; the sync server
 * answers HTTP.
 *
 * Nothing here changes the machine. The kernel check marks nothing (see
 * doctor_kernel), and no service is asked to do any work: a handshake,
 * even one the service refuses because santactl is not its peer, is an
 * answer. Connecting to an on-demand service's socket may start the
 * service, which then exits again when idle.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "args.h"
#include "ipc.h"
#include "santactl.h"
#include "bundle.pb-c.h"
#include "metric.pb-c.h"
#include "santad.pb-c.h"
#include "sync.pb-c.h"
#include "userns.h"

/* How long the sync server may take to answer: doctor should not hang. */
#define DOCTOR_HTTP_TIMEOUT_MS 5000L
/* A service answers its handshake within the IPC deadline (2 s). */
#define DOCTOR_HANDSHAKE_USEC (2ULL * 1000000)

typedef struct doctor {
	santactl_ctx *ctx;
	bool config_ok;
	int problems;
	int skipped;
} doctor;

static void doctor_say(doctor *d, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void doctor_say(doctor *d, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("[%c] ", ok ? '+' : '-');
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!ok)
		d->problems++;
}

/* A check this user cannot run: neither fine nor a problem. FMT says what
 * was not checked and why. */
static void doctor_skip(doctor *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void doctor_skip(doctor *d, const char *fmt, ...)
{
	va_list ap;

	printf("[ ] ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	d->skipped++;
}

/* Load the configuration into the context, so that the later checks (and
 * santactl_call) use it; say what was read. */
static void doctor_config(doctor *d)
{
	santactl_ctx *ctx = d->ctx;
	const char *file = ctx->config_file ? ctx->config_file : santa_config_default_path();
	char err[512];

	if (santa_config_load(ctx->config_file, &ctx->cfg, err, sizeof(err)) < 0) {
		ctx->cfg_failed = true;
		doctor_say(d, false, "Configuration: %s", err);
		return;
	}
	ctx->cfg_loaded = true;
	d->config_ok = true;
	if (ctx->cfg.path)
		doctor_say(d, true, "Configuration: \"%s\" parses", ctx->cfg.path);
	else
		doctor_say(d, true, "Configuration: \"%s\" does not exist: every default applies",
			   file);
}

/*
 * santad needs a fanotify group of the content class (permission events)
 * and the FAN_OPEN_EXEC_PERM event (Linux 5.0). The kernel validates a
 * mark's event mask before it looks up the path, so a mark of the empty
 * path fails with ENOENT when the event exists and EINVAL when it does
 * not: nothing is ever marked, so no exec can wait on this process.
 */
static void doctor_kernel(doctor *d)
{
	int fd, r;

	if (geteuid() != 0) {
		/* fanotify_init of a permission class needs CAP_SYS_ADMIN. */
		doctor_skip(d, "Kernel: fanotify permission events: skipped, only root may "
			    "create a fanotify group (run `santactl doctor` as root)");
		return;
	}
	fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY);
	if (fd < 0) {
		doctor_say(d, false, "Kernel: no fanotify permission events "
			   "(fanotify_init(FAN_CLASS_CONTENT): %s); santad cannot run",
			   strerror(errno));
		return;
	}
	r = fanotify_mark(fd, FAN_MARK_ADD, FAN_OPEN_EXEC_PERM, AT_FDCWD, "");
	if (r == 0)
		(void)fanotify_mark(fd, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL);
	if (r < 0 && errno == EINVAL)
		doctor_say(d, false, "Kernel: fanotify has no FAN_OPEN_EXEC_PERM "
			   "(Linux 5.0 or later needed); santad cannot run");
	else
		doctor_say(d, true, "Kernel: fanotify permission events (FAN_OPEN_EXEC_PERM)");
	close(fd);
}

static const char *doctor_mode_name(Santa__ClientMode mode)
{
	return mode == SANTA__CLIENT_MODE__LOCKDOWN ? "Lockdown" : "Monitor";
}

/* The states santad reports for a service (ServiceState.state) that mean
 * something is wrong, rather than not configured or on its way. */
static bool doctor_state_is_problem(const char *state)
{
	return strcmp(state, "not answering") == 0 || strcmp(state, "misconfigured") == 0;
}

/* Users who can mount filesystems of their own run what santad cannot
 * see: a problem in Lockdown only. */
static void doctor_userns(doctor *d, Santa__ClientMode mode)
{
	bool lockdown = mode == SANTA__CLIENT_MODE__LOCKDOWN;
	char why[512];
	int open = santa_userns_unprivileged("/proc", why, sizeof(why));

	if (!open)
		doctor_say(d, true, "Kernel: %s", why);
	else
		doctor_say(d, !lockdown, "Kernel: %s%s", why,
			   lockdown ? "" : " (Monitor mode: nothing is blocked anyway)");
}

/* santad answers Status, and says whether its fanotify listener runs. */
static void doctor_santad(doctor *d)
{
	Santa__Empty req = SANTA__EMPTY__INIT;
	const Santa__StatusReply *st;
	ProtobufCMessage *reply;
	char *errmsg = NULL, path[4096];
	struct stat sb;
	int r;

	snprintf(path, sizeof(path), "%s/santad.sock", d->ctx->cfg.run_directory);
	if (stat(path, &sb) < 0 && errno == ENOENT) {
		doctor_say(d, false, "santad: not running (no socket \"%s\")", path);
		return;
	}
	r = santactl_call(d->ctx, "Status", &req.base, -1, true, &reply, &errmsg);
	if (r < 0 && santactl_daemon_refused(d->ctx)) {
		char why[2 * PATH_MAX];

		santactl_refusal_reason(d->ctx, why, sizeof(why));
		doctor_say(d, false, "santad: answers on \"%s\" but %s", path, why);
		return;
	}
	if (r < 0) {
		doctor_say(d, false, "santad: not answering on \"%s\": %s", path,
			   errmsg ? errmsg : ipc_strerror(d->ctx->daemon_err ?
							  d->ctx->daemon_err : r));
		free(errmsg);
		return;
	}
	st = (const Santa__StatusReply *)reply;
	doctor_say(d, true, "santad: %s answers, %s mode", st->version,
		   doctor_mode_name(st->mode));
	if (!st->driver_connected)
		doctor_say(d, false, "santad: not watching executions (its fanotify "
			   "listener is not running)");
	for (size_t i = 0; i < st->n_services; i++)
		doctor_say(d, !doctor_state_is_problem(st->services[i]->state),
			   "santad: its link to %s: %s", st->services[i]->name,
			   st->services[i]->state);
	if (*st->metric_error)
		doctor_say(d, false, "santad: metrics are not exported: %s", st->metric_error);
	doctor_userns(d, st->mode);
	protobuf_c_message_free_unpacked(reply, NULL);
}

/* What a connection to a service's socket showed. */
enum doctor_reach {
	DOCTOR_REACH_ANSWERS,     /* handshake done */
	DOCTOR_REACH_REFUSES,     /* answered, but not to santactl */
	DOCTOR_REACH_UNTRUSTED,   /* santactl refused the server: not one of ours */
	DOCTOR_REACH_NO_SOCKET,
	DOCTOR_REACH_NO_ACCESS,   /* not root, and the socket is not ours to reach */
	DOCTOR_REACH_FAILED,
};

static enum doctor_reach doctor_connect(doctor *d, const char *path,
					const ProtobufCServiceDescriptor *desc,
					ipc_role role, int *ret_err)
{
	ipc_client *cl = NULL;
	bool refused;
	struct stat st;
	int r;

	*ret_err = 0;
	if (stat(path, &st) < 0) {
		*ret_err = -errno;
		if (errno == EACCES && geteuid() != 0)
			return DOCTOR_REACH_NO_ACCESS;
		return errno == ENOENT ? DOCTOR_REACH_NO_SOCKET : DOCTOR_REACH_FAILED;
	}
	/* Some services' sockets are for root and their own user only. */
	if (geteuid() != 0 && faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) < 0 &&
	    errno == EACCES) {
		*ret_err = -EACCES;
		return DOCTOR_REACH_NO_ACCESS;
	}
	r = ipc_client_connect_ex(path, d->ctx->trust, desc, IPC_ROLE_BIT(role),
				  DOCTOR_HANDSHAKE_USEC, &cl, &refused);
	ipc_client_free(cl);
	*ret_err = r;
	if (r == 0)
		return DOCTOR_REACH_ANSWERS;
	if (refused)
		return DOCTOR_REACH_REFUSES;
	return r == IPC_E_NOT_PERMITTED ? DOCTOR_REACH_UNTRUSTED : DOCTOR_REACH_FAILED;
}

/* One service, when the configuration uses it: connecting to an unused
 * on-demand service would start it for nothing. */
static void doctor_service(doctor *d, const char *name,
			   const ProtobufCServiceDescriptor *desc, ipc_role role,
			   bool configured, const char *unconfigured_why)
{
	char path[4096];
	int err;

	if (!configured) {
		doctor_say(d, true, "%s: not in use (%s)", name, unconfigured_why);
		return;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s.sock", d->ctx->cfg.run_directory,
			     name) >= sizeof(path)) {
		doctor_say(d, false, "%s: RunDirectory is too long", name);
		return;
	}
	switch (doctor_connect(d, path, desc, role, &err)) {
	case DOCTOR_REACH_ANSWERS:
		doctor_say(d, true, "%s: answers on \"%s\"", name, path);
		break;
	case DOCTOR_REACH_REFUSES:
		doctor_say(d, true, "%s: answers on \"%s\" (and refuses santactl, "
			   "which is not its peer)", name, path);
		break;
	case DOCTOR_REACH_UNTRUSTED:
		doctor_say(d, false, "%s: the process answering on \"%s\" is not one of "
			   "Santa's executables (installed, or in TrustedExecutables)", name, path);
		break;
	case DOCTOR_REACH_NO_SOCKET:
		doctor_say(d, false, "%s: no socket \"%s\" (is santad running?)", name, path);
		break;
	case DOCTOR_REACH_NO_ACCESS:
		doctor_skip(d, "%s: skipped, uid %u may not reach \"%s\" (run `santactl "
			    "doctor` as root)", name, (unsigned)geteuid(), path);
		break;
	default:
		doctor_say(d, false, "%s: not answering on \"%s\": %s", name, path,
			   ipc_strerror(err));
		break;
	}
}

static void doctor_services(doctor *d)
{
	const santa_config *cfg = &d->ctx->cfg;
	int r;

	if (!d->ctx->trust) {
		r = ipc_trust_new(&d->ctx->trust);
		if (r == 0)
			r = ipc_trust_add_defaults(d->ctx->trust, cfg->trusted_executables);
		if (r < 0) {
			doctor_say(d, false, "Services: cannot list Santa's executables: %s",
				   ipc_strerror(r));
			return;
		}
	}
	doctor_service(d, "santasyncservice", &santa__sync_service__descriptor,
		       IPC_ROLE_SYNCSERVICE, cfg->sync_base_url != NULL, "no SyncBaseURL");
	/* santad starts it with itself, MetricURL or not. */
	doctor_service(d, "santametricservice", &santa__metric_service__descriptor,
		       IPC_ROLE_METRICSERVICE, true, NULL);
	doctor_service(d, "santabundleservice", &santa__bundle_service__descriptor,
		       IPC_ROLE_BUNDLESERVICE, cfg->enable_bundles, "EnableBundles is off");
}

static size_t doctor_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

/* Any HTTP answer from SyncBaseURL means the server is there; the TLS
 * settings are the sync service's, so a certificate problem shows here. */
static void doctor_sync_server(doctor *d)
{
	const santa_config *cfg = &d->ctx->cfg;
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;
	CURL *curl;

	if (!cfg->sync_base_url) {
		doctor_say(d, true, "Sync server: none configured (no SyncBaseURL)");
		return;
	}
	curl = curl_easy_init();
	if (!curl) {
		doctor_say(d, false, "Sync server: cannot set up an HTTP client");
		return;
	}
	curl_easy_setopt(curl, CURLOPT_URL, cfg->sync_base_url);
	curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, DOCTOR_HTTP_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, doctor_discard);
	if (cfg->sync_ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, cfg->sync_ca_file);
	if (cfg->sync_client_cert_file)
		curl_easy_setopt(curl, CURLOPT_SSLCERT, cfg->sync_client_cert_file);
	if (cfg->sync_client_key_file)
		curl_easy_setopt(curl, CURLOPT_SSLKEY, cfg->sync_client_key_file);

	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (rc != CURLE_OK)
		doctor_say(d, false, "Sync server: \"%s\" does not answer: %s",
			   cfg->sync_base_url, *errbuf ? errbuf : curl_easy_strerror(rc));
	else
		doctor_say(d, true, "Sync server: \"%s\" answers (HTTP %ld)",
			   cfg->sync_base_url, status);
}

static int doctor_run(santactl_ctx *ctx, int argc, char **argv)
{
	static const santactl_opt opts[] = { { 0 } };
	doctor d = { .ctx = ctx };
	santactl_args a;
	const char *val;
	char err[256];
	int id;

	santactl_args_init(&a, argc, argv);
	while ((id = santactl_args_next(&a, opts, &val, err, sizeof(err)))) {
		if (id == SANTACTL_ARGS_POSITIONAL)
			return santactl_usage_error(&santactl_cmd_doctor,
						    "Unknown argument: %s", val);
		return santactl_usage_error(&santactl_cmd_doctor, "%s", err);
	}

	doctor_config(&d);
	doctor_kernel(&d);
	if (d.config_ok) {
		doctor_santad(&d);
		doctor_services(&d);
		doctor_sync_server(&d);
	} else {
		doctor_say(&d, false, "santad, services, sync server: not checked "
			   "without a usable configuration");
	}
	if (fflush(stdout) != 0)
		return 1;
	return d.problems ? 1 : 0;
}

const santactl_cmd santactl_cmd_doctor = {
	.name = "doctor",
	.short_help = "Check that Santa can run here and that its parts answer.",
	.long_help =
		"Checks this installation and prints one line per check: [+] when it\n"
		"is fine, [-] when it is not, [ ] when this user may not run it (the line\n"
		"says why). Exits 1 when any check found a problem; a skipped check is\n"
		"not one.\n"
		"\n"
		"  - the configuration file parses;\n"
		"  - the kernel has fanotify permission events (root only);\n"
		"  - santad runs and answers;\n"
		"  - santasyncservice (with SyncBaseURL), santametricservice and\n"
		"    santabundleservice answer on their sockets;\n"
		"  - the sync server answers HTTP within 5 seconds (with SyncBaseURL).\n"
		"\n"
		"Usage: santactl doctor\n",
	.run = doctor_run,
};
