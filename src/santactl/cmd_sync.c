/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl sync [--clean | --clean-all]`: ask santasyncservice for a sync
 * now, print its log lines as they come, and exit with the sync's status
 * (the original's SNTSyncStatusType: 0 success, 1 preflight failed, ...,
 * 5 too many syncs in progress, 6 no SyncBaseURL, 8 santad not answering).
 *
 * As the original, it drops root first and talks only to the sync service.
 * The log lines travel over an anonymous endpoint this command serves
 * (santa.SyncLogListener) and hands to the service with the Sync call; the
 * service answers Sync only after its last line was delivered.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "ipc.h"
#include "log.h"
#include "santactl.h"
#include "sync.pb-c.h"

/* A sync with a slow server may retry each request for minutes. */
#define SYNC_CALL_TIMEOUT_USEC (3600ULL * 1000000)
#define SYNC_EXIT_FAILED 1

typedef struct sync_cli {
	sd_event *ev;
	ipc_trust *trust;
	ipc_conn *service;
	ipc_conn *listener;
	int remote_fd;
	int type;
	bool answered;
} sync_cli;

static void sync_cli_log(ipc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const Santa__LogLine *line = (const Santa__LogLine *)request;
	Santa__Empty reply = SANTA__EMPTY__INIT;

	(void)userdata;
	/* The service ends with an empty line to know all others arrived. */
	if (line->line && *line->line) {
		printf("%s\n", line->line);
		fflush(stdout);
	}
	ipc_call_reply(call, &reply.base);
}

static const ipc_method sync_cli_methods[] = {
	{ sync_cli_log, 0, IPC_ROLE_BIT(IPC_ROLE_SYNCSERVICE) },
};

static ipc_service sync_cli_listener = {
	.desc = &santa__sync_log_listener__descriptor,
	.methods = sync_cli_methods,
	.accept_roles = IPC_ROLE_BIT(IPC_ROLE_SYNCSERVICE),
};

static void sync_cli_fail(sync_cli *c, const char *what)
{
	fprintf(stderr, "%s\n", what);
	sd_event_exit(c->ev, SYNC_EXIT_FAILED);
}

static void sync_cli_reply(ipc_conn *conn, int err, const char *errmsg,
			   const ProtobufCMessage *reply, void *userdata)
{
	const Santa__SyncReply *r = (const Santa__SyncReply *)reply;
	sync_cli *c = userdata;

	(void)conn;
	c->answered = true;
	if (err < 0) {
		fprintf(stderr, "The sync service failed the sync: %s\n",
			errmsg ? errmsg : ipc_strerror(err));
		sd_event_exit(c->ev, SYNC_EXIT_FAILED);
		return;
	}
	if (r->status == SANTA__SYNC_STATUS__SYNC_STATUS_TOO_MANY_SYNCS_IN_PROGRESS)
		printf("Too many syncs in progress, try again later.\n");
	sd_event_exit(c->ev, (int)r->status);
}

/* The IPC layer calls a method by its index in the service descriptor;
 * look it up by name so that the order in sync.proto does not matter. */
static unsigned sync_cli_method(const char *name)
{
	const ProtobufCServiceDescriptor *d = &santa__sync_service__descriptor;
	const ProtobufCMethodDescriptor *m =
		protobuf_c_service_descriptor_get_method_by_name(d, name);

	return m ? (unsigned)(m - d->methods) : UINT32_MAX;
}

/* The log endpoint is for the sync service alone: say who else tried it
 * (the IPC layer's reason names them). */
static void sync_cli_listener_closed(ipc_conn *conn, int err, const char *reason,
				     void *userdata)
{
	if (err == IPC_E_NOT_PERMITTED || err == IPC_E_INVALID)
		log_warning("Refused a connection on the sync log endpoint: %s",
			    reason ? reason : ipc_strerror(err));
	else if (err < 0 && err != IPC_E_DISCONNECTED)
		log_debug("the sync log endpoint closed: %s", reason ? reason : ipc_strerror(err));
}

static void sync_cli_ready(ipc_conn *conn, int err, void *userdata)
{
	Santa__SyncRequest req = SANTA__SYNC_REQUEST__INIT;
	sync_cli *c = userdata;
	int r;

	if (err < 0) {
		log_debug("connecting to santasyncservice: %s", ipc_strerror(err));
		sync_cli_fail(c, "Failed to connect to the sync service.");
		return;
	}
	/* Only the process we just validated may connect to this endpoint. */
	r = ipc_endpoint_new(c->ev, c->trust, &sync_cli_listener, ipc_conn_peer(conn),
			     &(ipc_server_opts){ .on_close = sync_cli_listener_closed },
			     &c->remote_fd, &c->listener);
	if (r < 0) {
		log_debug("making the log endpoint: %s", ipc_strerror(r));
		sync_cli_fail(c, "Failed to set up the sync log listener.");
		return;
	}
	req.type = (Santa__SyncType)c->type;
	r = ipc_call_async(conn, sync_cli_method("Sync"), &req.base, c->remote_fd,
			   SYNC_CALL_TIMEOUT_USEC, sync_cli_reply, c);
	if (r < 0) {
		log_debug("calling Sync: %s", ipc_strerror(r));
		sync_cli_fail(c, "Failed to connect to the sync service.");
	}
}

static void sync_cli_closed(ipc_conn *conn, int err, const char *reason, void *userdata)
{
	sync_cli *c = userdata;

	(void)conn;
	(void)err;
	log_debug("the sync service's connection closed: %s", reason ? reason : "");
	if (!c->answered)
		sync_cli_fail(c, "The sync service went away before the sync finished.");
}

/* The original never syncs as root: the service runs as nobody, and so
 * does the command that listens to it. */
static int sync_cli_drop_root(const santactl_ctx *ctx)
{
	const char *user = ctx->cfg.service_user ? ctx->cfg.service_user : "nobody";
	struct passwd *pw;

	if (geteuid() != 0)
		return 0;
	pw = getpwnam(user);
	if (!pw || pw->pw_uid == 0)
		return -ENOENT;
	if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return -errno;
	return 0;
}

static int sync_cli_args(int argc, char **argv, int *ret_type)
{
	*ret_type = SANTA__SYNC_TYPE__SYNC_TYPE_NORMAL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--clean") == 0 &&
		    *ret_type != SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL)
			*ret_type = SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN;
		else if (strcmp(argv[i], "--clean-all") == 0)
			*ret_type = SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL;
		else
			return santactl_usage_error(&santactl_cmd_sync, "Unknown option: %s",
						    argv[i]);
	}
	return 0;
}

static int sync_cli_connect(santactl_ctx *ctx, sync_cli *c)
{
	ipc_conn_opts opts = {
		.accept_roles = IPC_ROLE_BIT(IPC_ROLE_SYNCSERVICE),
		.on_close = sync_cli_closed,
		.userdata = c,
	};
	char path[4096];
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/santasyncservice.sock",
			     ctx->cfg.run_directory) >= sizeof(path))
		return -ENAMETOOLONG;
	r = sd_event_new(&c->ev);
	if (r == 0)
		r = ipc_trust_new(&c->trust);
	if (r == 0)
		r = ipc_trust_add_defaults(c->trust, ctx->cfg.trusted_executables);
	if (r == 0)
		r = ipc_connect(c->ev, path, c->trust, &santa__sync_service__descriptor, &opts,
				sync_cli_ready, &c->service);
	return r;
}

static void sync_cli_done(sync_cli *c)
{
	if (c->remote_fd >= 0)
		close(c->remote_fd);
	ipc_conn_unref(c->listener);
	ipc_conn_unref(c->service);
	ipc_trust_free(c->trust);
	sd_event_unref(c->ev);
}

static int sync_run(santactl_ctx *ctx, int argc, char **argv)
{
	sync_cli c = { .remote_fd = -1 };
	int r;

	r = sync_cli_args(argc, argv, &c.type);
	if (r != 0)
		return r;
	if (santactl_load_config(ctx) < 0)
		return SYNC_EXIT_FAILED;
	if (!ctx->cfg.sync_base_url) {
		fprintf(stderr, "Missing SyncBaseURL. Exiting.\n");
		return SYNC_EXIT_FAILED;
	}
	if (sync_cli_drop_root(ctx) < 0) {
		fprintf(stderr, "Failed to drop root privileges. Exiting.\n");
		return SYNC_EXIT_FAILED;
	}

	r = sync_cli_connect(ctx, &c);
	if (r < 0) {
		log_debug("connecting to santasyncservice: %s", ipc_strerror(r));
		fprintf(stderr, "Failed to connect to the sync service.\n");
		sync_cli_done(&c);
		return SYNC_EXIT_FAILED;
	}
	r = sd_event_loop(c.ev);
	sync_cli_done(&c);
	return r < 0 ? SYNC_EXIT_FAILED : r;
}

const santactl_cmd santactl_cmd_sync = {
	.name = "sync",
	.short_help = "Synchronizes Santa with a configured server.",
	.long_help =
		"If Santa is configured to synchronize with a server, this is the command used\n"
		"for syncing.\n\n"
		"Options:\n"
		"  --clean: Perform a clean sync, erasing all existing non-transitive rules and\n"
		"           requesting a clean sync from the server.\n"
		"  --clean-all: Perform a clean sync, erasing all existing rules and requesting a\n"
		"               clean sync from the server.\n",
	.run = sync_run,
};
