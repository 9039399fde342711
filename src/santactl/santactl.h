/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santactl's internals: the command table, the connection to santad and
 * the helpers every command shares.
 *
 * Each command lives in its own cmd_*.c file and exports one
 * santactl_cmd; santactl.c lists them in one table. A command's run()
 * returns the process exit status, as the original's commands do:
 * 0 success, 1 failure or usage error, 2 "requires root".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "config.h"

typedef struct ipc_client ipc_client;
typedef struct ipc_trust ipc_trust;

/* What every command may use. The daemon connection is made on first
 * use, so that commands that need no daemon (version, fileinfo without a
 * Rule) work without one. */
typedef struct santactl_ctx {
	const char *config_file;   /* --config, or NULL for the default */
	santa_config cfg;
	bool cfg_loaded;
	bool cfg_failed;           /* reported once, not again per call */
	ipc_trust *trust;
	ipc_client *daemon;
	int daemon_err;            /* why the last connect failed, or 0 */
	bool daemon_refused;       /* ... because santad refused us */
} santactl_ctx;

typedef struct santactl_cmd {
	const char *name;
	const char *short_help;
	const char *long_help;
	bool requires_root;
	int (*run)(santactl_ctx *ctx, int argc, char **argv);
} santactl_cmd;

extern const santactl_cmd santactl_cmd_checkcache;
extern const santactl_cmd santactl_cmd_doctor;
extern const santactl_cmd santactl_cmd_fileinfo;
extern const santactl_cmd santactl_cmd_flushcache;
extern const santactl_cmd santactl_cmd_metrics;
extern const santactl_cmd santactl_cmd_rule;
extern const santactl_cmd santactl_cmd_status;
extern const santactl_cmd santactl_cmd_sync;
extern const santactl_cmd santactl_cmd_version;

/* The message and exit status of the original when santad cannot be
 * reached or stops answering. */
#define SANTACTL_NO_DAEMON_MSG \
	"An error occurred communicating with the daemon, is it running?"
#define SANTACTL_EXIT_NO_DAEMON 1

/* Load the configuration (once). Prints the reason and returns -1 if the
 * file is unusable. */
int santactl_load_config(santactl_ctx *ctx);

/* The connection to santad, made on first use within the IPC handshake
 * deadline. Returns 0, or -1 after printing, unless QUIET,
 * SANTACTL_NO_DAEMON_MSG (santad unreachable) or santactl_print_refusal
 * (santad runs and refused this santactl). */
int santactl_daemon(santactl_ctx *ctx, bool quiet, ipc_client **ret);

/* True when the connection to santad failed because santad refused this
 * santactl in the handshake (typically: its executable is not trusted). */
bool santactl_daemon_refused(const santactl_ctx *ctx);
/* After such a refusal: one sentence naming this santactl's executable
 * and why santad may not trust it. */
void santactl_refusal_reason(santactl_ctx *ctx, char *buf, size_t size);
/* The same on F, followed by which executables santad trusts and what to
 * do about it. */
void santactl_print_refusal(santactl_ctx *ctx, FILE *f);

/*
 * Call santad's method NAME (as in proto/santad.proto) with REQ, sending
 * FD along if >= 0. On success *RET_REPLY gets the reply (free it with
 * protobuf_c_message_free_unpacked). On failure returns a negative
 * ipc_error; *RET_ERRMSG (if non-NULL) gets santad's reason for an
 * IPC_E_PEER or IPC_E_NOT_PERMITTED error (free()). When santad is gone
 * or not answering, prints SANTACTL_NO_DAEMON_MSG unless QUIET (or, when
 * santad refused to connect, santactl_print_refusal).
 */
int santactl_call(santactl_ctx *ctx, const char *name,
		  const ProtobufCMessage *req, int fd, bool quiet,
		  ProtobufCMessage **ret_reply, char **ret_errmsg);

/* True when ERR means santad is unreachable rather than refusing. */
bool santactl_err_is_daemon_gone(int err);

/* After a failed santactl_call: "WHAT: <santad's reason>" on stderr,
 * unless santad was unreachable (already said). Frees ERRMSG. */
void santactl_report(const char *what, int err, char *errmsg);

/* "MSG\n\nLONG_HELP" on stderr, as the original does for usage errors;
 * returns 1, the status to exit with. */
int santactl_usage_error(const santactl_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print "Help for 'NAME':\n" and the long help on stdout. */
void santactl_print_help(const santactl_cmd *cmd);
