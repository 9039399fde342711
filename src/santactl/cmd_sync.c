/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl sync`: a placeholder until the sync engineer's command (which
 * talks to santasyncservice) replaces this file.
 */
#include <stdio.h>

#include "santactl.h"

static int sync_run(santactl_ctx *ctx, int argc, char **argv)
{
	fprintf(stderr, "santactl sync: not available yet\n");
	return 1;
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
