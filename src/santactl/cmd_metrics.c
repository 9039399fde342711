/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl metrics`: a placeholder until the metrics engineer's command
 * replaces this file.
 */
#include <stdio.h>

#include "santactl.h"

static int metrics_run(santactl_ctx *ctx, int argc, char **argv)
{
	fprintf(stderr, "santactl metrics: not available yet\n");
	return 1;
}

const santactl_cmd santactl_cmd_metrics = {
	.name = "metrics",
	.short_help = "Show Santa metric information.",
	.long_help =
		"Provides metrics about Santa's operation while it's running.\n"
		"  Pass prefixes to filter list of metrics, if desired.\n"
		"  Use --json to output in JSON format\n",
	.run = metrics_run,
};
