/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santactl: the command line to see and steer santad.
 *
 * `santactl [--config FILE] COMMAND [ARGS]`. Each command is one
 * santactl_cmd in its own file; this file holds the table, the help, the
 * root check and the connection to santad that the commands share.
 * Everything santactl shows about santad comes from santad over the IPC
 * layer, never from santad's files, so root and users see the same.
 */
#include "santactl.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "args.h"
#include "ipc.h"
#include "log.h"
#include "santa-build.h"
#include "santad.pb-c.h"

/* Sorted by name: `santactl --help` lists them in this order. */
static const santactl_cmd *const santactl_cmds[] = {
	&santactl_cmd_checkcache,
	&santactl_cmd_doctor,
	&santactl_cmd_fileinfo,
	&santactl_cmd_flushcache,
	&santactl_cmd_metrics,
	&santactl_cmd_rule,
	&santactl_cmd_status,
	&santactl_cmd_sync,
	&santactl_cmd_version,
};

#define N_CMDS (sizeof(santactl_cmds) / sizeof(santactl_cmds[0]))

static const santactl_cmd *santactl_find(const char *name)
{
	for (size_t i = 0; i < N_CMDS; i++)
		if (strcmp(santactl_cmds[i]->name, name) == 0)
			return santactl_cmds[i];
	return NULL;
}

static void santactl_usage(FILE *f)
{
	int width = 0;

	for (size_t i = 0; i < N_CMDS; i++) {
		int len = (int)strlen(santactl_cmds[i]->name);

		if (len > width)
			width = len;
	}
	fprintf(f, "Usage: santactl [--config FILE] <command> [options]:\n");
	for (size_t i = 0; i < N_CMDS; i++)
		fprintf(f, "\t%*s - %s\n", width, santactl_cmds[i]->name,
			santactl_cmds[i]->short_help);
	fprintf(f, "\nSee 'santactl help <command>' to read about a specific subcommand.\n");
}

void santactl_print_help(const santactl_cmd *cmd)
{
	printf("Help for '%s':\n%s", cmd->name, cmd->long_help);
}

int santactl_usage_error(const santactl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n%s", cmd->long_help);
	return 1;
}

int santactl_load_config(santactl_ctx *ctx)
{
	char err[512];

	if (ctx->cfg_loaded)
		return 0;
	if (ctx->cfg_failed)
		return -1;
	if (santa_config_load(ctx->config_file, &ctx->cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "santactl: %s\n", err);
		ctx->cfg_failed = true;
		return -1;
	}
	ctx->cfg_loaded = true;
	return 0;
}

static int santactl_connect(santactl_ctx *ctx)
{
	char path[4096];
	int r;

	r = ipc_trust_new(&ctx->trust);
	if (r < 0)
		return r;
	r = ipc_trust_add_defaults(ctx->trust, ctx->cfg.trusted_executables);
	if (r < 0)
		return r;
	if ((size_t)snprintf(path, sizeof(path), "%s/santad.sock",
			     ctx->cfg.run_directory) >= sizeof(path))
		return -ENAMETOOLONG;
	return ipc_client_connect_ex(path, ctx->trust, &santa__santad__descriptor,
				     IPC_ROLE_BIT(IPC_ROLE_SANTAD), 0, &ctx->daemon,
				     &ctx->daemon_refused);
}

/* Why santad may not trust this santactl at EXE, as far as our own
 * configuration tells (santad reads its own, usually the same file). */
static void santactl_untrusted_why(santactl_ctx *ctx, const char *exe, char *buf,
				   size_t size)
{
	const char *cfg = ctx->cfg.path ? ctx->cfg.path : santa_config_default_path();
	char why[PATH_MAX + 128];

	if (ipc_path_is_root_held(exe, why, sizeof(why)) < 0)
		snprintf(buf, size, "it is not held by root: %s", why);
	else if (!ctx->trust || ipc_trust_self_role(ctx->trust) != IPC_ROLE_SANTACTL)
		snprintf(buf, size, "it is neither installed nor listed in TrustedExecutables "
			 "of \"%s\"", cfg);
	else
		snprintf(buf, size, "\"%s\" lists it, so santad may run with another "
			 "configuration", cfg);
}

bool santactl_daemon_refused(const santactl_ctx *ctx)
{
	return !ctx->daemon && ctx->daemon_refused;
}

void santactl_refusal_reason(santactl_ctx *ctx, char *buf, size_t size)
{
	char exe[PATH_MAX], why[PATH_MAX + 256];
	ssize_t n;

	if (ctx->daemon_err != IPC_E_NOT_PERMITTED) {
		snprintf(buf, size, "santad refused this santactl: %s",
			 ipc_strerror(ctx->daemon_err));
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(buf, size, "santad refused this santactl: its executable is not one "
			 "santad trusts");
		return;
	}
	exe[n] = '\0';
	santactl_untrusted_why(ctx, exe, why, sizeof(why));
	snprintf(buf, size, "santad refused this santactl (\"%s\"): its executable is not "
		 "one santad trusts; %s", exe, why);
}

void santactl_print_refusal(santactl_ctx *ctx, FILE *f)
{
	char reason[2 * PATH_MAX];

	santactl_refusal_reason(ctx, reason, sizeof(reason));
	fprintf(f, "%s.\n", reason);
	if (ctx->daemon_err != IPC_E_NOT_PERMITTED)
		return;
	fprintf(f, "santad trusts only Santa's executables installed in %s, %s and %s, and "
		"those listed in its TrustedExecutables, when they and every directory above "
		"them are owned by root and writable by no one else.\n"
		"Run the installed %s/santactl, or add this executable (or its directory, "
		"ending in '/') to santad's TrustedExecutables.\n",
		SANTA_BINDIR, SANTA_SBINDIR, SANTA_LIBEXECDIR, SANTA_BINDIR);
}

int santactl_daemon(santactl_ctx *ctx, bool quiet, ipc_client **ret)
{
	/* A bad configuration file was reported, naming its cause. */
	if (santactl_load_config(ctx) < 0)
		return -1;
	if (!ctx->daemon && !ctx->daemon_err) {
		int r = santactl_connect(ctx);

		if (r < 0) {
			ctx->daemon_err = r;
			log_debug("connecting to santad: %s", ipc_strerror(r));
		}
	}
	if (!ctx->daemon) {
		if (quiet)
			return -1;
		/* santad runs but will not talk to us: saying it may not run
		 * would send the user looking in the wrong place. */
		if (ctx->daemon_refused)
			santactl_print_refusal(ctx, stderr);
		else
			printf("%s\n", SANTACTL_NO_DAEMON_MSG);
		return -1;
	}
	*ret = ctx->daemon;
	return 0;
}

bool santactl_err_is_daemon_gone(int err)
{
	return err == IPC_E_DISCONNECTED || err == IPC_E_TIMEOUT;
}

int santactl_call(santactl_ctx *ctx, const char *name,
		  const ProtobufCMessage *req, int fd, bool quiet,
		  ProtobufCMessage **ret_reply, char **ret_errmsg)
{
	const ProtobufCMethodDescriptor *m;
	ipc_client *cl;
	int r;

	*ret_reply = NULL;
	if (ret_errmsg)
		*ret_errmsg = NULL;
	m = protobuf_c_service_descriptor_get_method_by_name(&santa__santad__descriptor,
							      name);
	if (!m)
		return IPC_E_INVALID;
	if (santactl_daemon(ctx, quiet, &cl) < 0)
		return IPC_E_DISCONNECTED;

	r = ipc_client_call(cl, (unsigned)(m - santa__santad__descriptor.methods), req,
			    fd, 0, ret_reply, ret_errmsg);
	if (r < 0) {
		log_debug("calling santad's %s: %s", name, ipc_strerror(r));
		if (santactl_err_is_daemon_gone(r) && !quiet)
			printf("%s\n", SANTACTL_NO_DAEMON_MSG);
	}
	return r;
}

void santactl_report(const char *what, int err, char *errmsg)
{
	if (!santactl_err_is_daemon_gone(err))
		fprintf(stderr, "%s: %s\n", what, errmsg ? errmsg : ipc_strerror(err));
	free(errmsg);
}

/* Take "--config FILE" / "--config=FILE" out of ARGV (before any "--"),
 * wherever it is, so that every command accepts it. */
static int santactl_take_config(int *argc, char **argv, const char **ret)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		if (strncasecmp(argv[i], "--config=", 9) == 0) {
			*ret = argv[i] + 9;
		} else if (strcasecmp(argv[i], "--config") == 0) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "santactl: --config requires a file\n");
				return -1;
			}
			*ret = argv[++i];
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	argv[out] = NULL;
	return 0;
}

/* `santactl`, `santactl help [COMMAND]`, `santactl --help`: the exit
 * statuses are the original's. Returns -1 when NAME is a real command. */
static int santactl_help(const char *name, int argc, char **argv)
{
	const santactl_cmd *cmd;

	if (!name || strcmp(name, "usage") == 0 || strcmp(name, "commands") == 0) {
		santactl_usage(stdout);
		return 1;
	}
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
	    (strcmp(name, "help") == 0 && argc < 3)) {
		santactl_usage(stdout);
		return 0;
	}
	if (strcmp(name, "help") == 0) {
		cmd = santactl_find(argv[2]);
		if (!cmd) {
			printf("Unknown command: %s\n", argv[2]);
			return 1;
		}
		santactl_print_help(cmd);
		return 1;
	}
	return -1;
}

static int santactl_run(santactl_ctx *ctx, int argc, char **argv)
{
	const santactl_cmd *cmd;
	int r;

	r = santactl_help(argc > 1 ? argv[1] : NULL, argc, argv);
	if (r >= 0)
		return r;
	cmd = santactl_find(argv[1]);
	if (!cmd) {
		printf("Unknown command: %s\n", argv[1]);
		return 128;
	}
	if (santactl_args_want_help(argc - 2, argv + 2)) {
		santactl_print_help(cmd);
		return 0;
	}
	if (cmd->requires_root && getuid() != 0) {
		printf("The command '%s' requires root privileges.\n", cmd->name);
		return 2;
	}
	return cmd->run(ctx, argc - 2, argv + 2);
}

int main(int argc, char **argv)
{
	santactl_ctx ctx = { 0 };
	int r;

	log_open("santactl");
	if (getenv("SANTACTL_DEBUG"))
		log_set_level(SANTA_LOG_DEBUG);
	if (santactl_take_config(&argc, argv, &ctx.config_file) < 0)
		return 1;

	r = santactl_run(&ctx, argc, argv);

	ipc_client_free(ctx.daemon);
	ipc_trust_free(ctx.trust);
	if (ctx.cfg_loaded)
		santa_config_done(&ctx.cfg);
	if (fflush(stdout) != 0 && r == 0)
		r = 1;
	return r;
}
