/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl checkcache PATH` and `santactl flushcache`: santad's decision
 * cache, for development and tests.
 *
 * checkcache sends santad the descriptor of the file it opened, so that
 * santad looks up the very file santactl named (its device, inode and
 * change stamps) and not whatever a path would resolve to later.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "santactl.h"
#include "santad.pb-c.h"

static const santactl_opt cache_no_opts[] = {
	{ 0 },
};

/* The one positional argument of checkcache, or NULL after printing why. */
static const char *checkcache_path(int argc, char **argv, int *ret_status)
{
	const char *val, *path = NULL;
	santactl_args a;
	char err[256];
	int id;

	santactl_args_init(&a, argc, argv);
	while ((id = santactl_args_next(&a, cache_no_opts, &val, err, sizeof(err)))) {
		if (id == SANTACTL_ARGS_POSITIONAL && !path) {
			path = val;
			continue;
		}
		*ret_status = santactl_usage_error(&santactl_cmd_checkcache, "%s",
			id == SANTACTL_ARGS_POSITIONAL ? "Only one path may be given" : err);
		return NULL;
	}
	if (!path)
		*ret_status = santactl_usage_error(&santactl_cmd_checkcache,
						   "A path is required");
	return path;
}

static int checkcache_print(const Santa__CheckCacheReply *rep)
{
	if (!rep->cached) {
		fprintf(stderr, "File does not exist in cache\n");
		return 1;
	}
	if (strcmp(rep->decision, "DENY") == 0)
		printf("File exists in [blocklist] cache\n");
	else
		printf("File exists in [allowlist] cache\n");
	return 0;
}

static int checkcache_run(santactl_ctx *ctx, int argc, char **argv)
{
	Santa__FileRequest req = SANTA__FILE_REQUEST__INIT;
	ProtobufCMessage *reply;
	const char *path;
	char *errmsg;
	int fd, r, status = 1;

	path = checkcache_path(argc, argv, &status);
	if (!path)
		return status;
	/* O_PATH: santad only needs the file's identity, and a file the
	 * caller may execute but not read can be cached too. */
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "Cannot open '%s': %s\n", path, strerror(errno));
		return 1;
	}
	req.path = (char *)path;
	r = santactl_call(ctx, "CheckCache", &req.base, fd, false, &reply, &errmsg);
	close(fd);
	if (r < 0) {
		santactl_report("Failed to check the cache", r, errmsg);
		return 1;
	}
	status = checkcache_print((Santa__CheckCacheReply *)reply);
	protobuf_c_message_free_unpacked(reply, NULL);
	return status;
}

static int flushcache_run(santactl_ctx *ctx, int argc, char **argv)
{
	Santa__Empty req = SANTA__EMPTY__INIT;
	ProtobufCMessage *reply;
	char *errmsg;
	int r;

	if (argc > 0)
		return santactl_usage_error(&santactl_cmd_flushcache,
					    "Unknown argument: %s", argv[0]);
	r = santactl_call(ctx, "FlushCache", &req.base, -1, false, &reply, &errmsg);
	if (r < 0) {
		santactl_report("Cache flush failed", r, errmsg);
		return 1;
	}
	protobuf_c_message_free_unpacked(reply, NULL);
	printf("Cache flush requested\n");
	return 0;
}

const santactl_cmd santactl_cmd_checkcache = {
	.name = "checkcache",
	.short_help = "Prints the authorization status of a file in the cache.",
	.long_help =
		"Checks santad's decision cache for the given file.\n"
		"Returns 0 if the file is cached, 1 otherwise.\n"
		"\n"
		"Usage: santactl checkcache PATH\n"
		"\n"
		"IMPORTANT: This command is intended for development purposes only.\n",
	.run = checkcache_run,
};

const santactl_cmd santactl_cmd_flushcache = {
	.name = "flushcache",
	.short_help = "Flush the authorization caches.",
	.long_help =
		"Flushes santad's decision cache and the allow decisions the kernel holds,\n"
		"so that every program is decided anew the next time it runs.\n"
		"\n"
		"IMPORTANT: This command is intended for development purposes only.\n",
	.requires_root = true,
	.run = flushcache_run,
};
