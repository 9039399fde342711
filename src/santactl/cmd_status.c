/* SPDX-License-Identifier: Apache-2.0 */
/* `santactl status`: what santad reports about itself. */
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "santactl.h"
#include "santad.pb-c.h"
#include "status_fmt.h"

enum { STATUS_OPT_JSON = 1 };

static const santactl_opt status_opts[] = {
	{ "--json", NULL, false, STATUS_OPT_JSON },
	{ 0 },
};

static int status_parse(int argc, char **argv, bool *ret_json)
{
	santactl_args a;
	const char *val;
	char err[256];
	int id;

	santactl_args_init(&a, argc, argv);
	while ((id = santactl_args_next(&a, status_opts, &val, err, sizeof(err)))) {
		if (id == STATUS_OPT_JSON)
			*ret_json = true;
		else if (id == SANTACTL_ARGS_POSITIONAL)
			return santactl_usage_error(&santactl_cmd_status,
						    "Unknown argument: %s", val);
		else
			return santactl_usage_error(&santactl_cmd_status, "%s", err);
	}
	return 0;
}

static int status_run(santactl_ctx *ctx, int argc, char **argv)
{
	Santa__Empty req = SANTA__EMPTY__INIT;
	ProtobufCMessage *reply;
	char *errmsg, *json;
	bool as_json = false;
	int r;

	r = status_parse(argc, argv, &as_json);
	if (r)
		return r;
	r = santactl_call(ctx, "Status", &req.base, -1, false, &reply, &errmsg);
	if (r < 0) {
		santactl_report("Failed to get status", r, errmsg);
		return 1;
	}

	if (!as_json) {
		santactl_status_print(stdout, (Santa__StatusReply *)reply);
	} else {
		json = santactl_status_json((Santa__StatusReply *)reply);
		if (json)
			printf("%s\n", json);
		else
			fprintf(stderr, "Failed to format the status: out of memory\n");
		r = json ? 0 : 1;
		free(json);
	}
	protobuf_c_message_free_unpacked(reply, NULL);
	return r;
}

const santactl_cmd santactl_cmd_status = {
	.name = "status",
	.short_help = "Show Santa status information.",
	.long_help =
		"Provides details about Santa while it's running.\n"
		"  Use --json to output in JSON format\n",
	.run = status_run,
};
