/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl version`: the version of each component. santad's comes from
 * santad itself; santactl and santagui are built from the same tree as
 * this santactl, so they carry its version (santagui's only when it is
 * installed beside it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "args.h"
#include "santa-build.h"
#include "santactl.h"
#include "santad.pb-c.h"

enum { VERSION_OPT_JSON = 1 };

static const santactl_opt version_opts[] = {
	{ "--json", NULL, false, VERSION_OPT_JSON },
	{ 0 },
};

/* santad's version, or "" when it cannot be asked, as the original
 * prints for a component it cannot find. Returns a malloc'd string. */
static char *version_santad(santactl_ctx *ctx)
{
	Santa__Empty req = SANTA__EMPTY__INIT;
	ProtobufCMessage *reply;
	char *v;

	if (santactl_call(ctx, "Status", &req.base, -1, true, &reply, NULL) < 0)
		return strdup("");
	v = strdup(((Santa__StatusReply *)reply)->version);
	protobuf_c_message_free_unpacked(reply, NULL);
	return v;
}

static int version_print_json(const char *santad, const char *gui)
{
	json_object *o = json_object_new_object();
	int r = 1;

	if (o &&
	    json_object_object_add(o, "santad", json_object_new_string(santad)) == 0 &&
	    json_object_object_add(o, "santactl", json_object_new_string(SANTA_VERSION)) == 0 &&
	    json_object_object_add(o, "SantaGUI", json_object_new_string(gui)) == 0) {
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
			JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
		r = 0;
	}
	json_object_put(o);
	return r;
}

static int version_run(santactl_ctx *ctx, int argc, char **argv)
{
	const char *gui = access(SANTA_BINDIR "/santagui", X_OK) == 0 ? SANTA_VERSION : "";
	santactl_args a;
	bool as_json = false;
	const char *val;
	char err[256], *santad;
	int id, r = 0;

	santactl_args_init(&a, argc, argv);
	while ((id = santactl_args_next(&a, version_opts, &val, err, sizeof(err)))) {
		if (id == SANTACTL_ARGS_POSITIONAL)
			return santactl_usage_error(&santactl_cmd_version,
						    "Unknown argument: %s", val);
		if (id < 0)
			return santactl_usage_error(&santactl_cmd_version, "%s", err);
		as_json = true;
	}

	santad = version_santad(ctx);
	if (!santad)
		return 1;
	if (as_json) {
		r = version_print_json(santad, gui);
	} else {
		printf("%-15s | %s\n", "santad", santad);
		printf("%-15s | %s\n", "santactl", SANTA_VERSION);
		printf("%-15s | %s\n", "SantaGUI", gui);
	}
	free(santad);
	return r;
}

const santactl_cmd santactl_cmd_version = {
	.name = "version",
	.short_help = "Show Santa component versions.",
	.long_help =
		"Show versions of all Santa components.\n"
		"  Use --json to output in JSON format.\n",
	.run = version_run,
};
