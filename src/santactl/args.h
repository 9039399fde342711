/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line flags the way the original santactl reads them: long
 * flags matched without regard to case ("--JSON" works), a value in the
 * next argument or after '=', "--" ending the flags, everything else a
 * positional argument. Pure code, unit-tested in test-args.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct santactl_opt {
	const char *name;     /* "--json" */
	const char *alias;    /* "-r", or NULL */
	bool has_arg;
	int id;               /* > 0, returned by santactl_args_next */
} santactl_opt;

enum {
	SANTACTL_ARGS_END = 0,
	SANTACTL_ARGS_ERROR = -1,
	SANTACTL_ARGS_POSITIONAL = -2,
};

typedef struct santactl_args {
	int argc;
	char **argv;
	int index;
	bool only_positional;   /* after "--" */
} santactl_args;

void santactl_args_init(santactl_args *a, int argc, char **argv);

/*
 * The next flag's id (with its value in *RET_VALUE when it takes one),
 * SANTACTL_ARGS_POSITIONAL with the argument in *RET_VALUE,
 * SANTACTL_ARGS_END, or SANTACTL_ARGS_ERROR with the reason in ERRBUF
 * ("Unknown argument: --x", "--path requires an argument").
 * OPTS ends with an entry whose name is NULL.
 */
int santactl_args_next(santactl_args *a, const santactl_opt *opts,
		       const char **ret_value, char *errbuf, size_t errsize);

/* True if ARGV holds --help or -h before any "--". */
bool santactl_args_want_help(int argc, char **argv);
