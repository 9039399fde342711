/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every example santa.conf(5) shows must be accepted by the parser every
 * Santa executable uses: mkman.py writes them to a JSON object (key ->
 * example value), and this test loads each as a one-key configuration
 * file. An example that the parser refuses would teach administrators a
 * file their santad will not start with.
 *
 * Usage: test-conf-examples EXAMPLES.json
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"

/* Write {"KEY": VALUE} to a new temporary file; its path in PATH. */
static int write_example(const char *key, json_object *value, char *path, size_t size)
{
	json_object *obj = json_object_new_object();
	const char *text;
	FILE *f;
	int fd, r = -1;

	snprintf(path, size, "%s/santa-conf-example-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!obj || json_object_object_add(obj, key, json_object_get(value)) < 0)
		goto out;
	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY);
	fd = mkstemp(path);
	if (fd < 0)
		goto out;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		goto out;
	}
	r = fputs(text, f) < 0 ? -1 : 0;
	if (fclose(f) != 0)
		r = -1;
	if (r < 0)
		unlink(path);
out:
	json_object_put(obj);
	return r;
}

static int check_example(const char *key, json_object *value)
{
	char path[4096], err[512];
	santa_config cfg;
	int r;

	if (write_example(key, value, path, sizeof(path)) < 0) {
		fprintf(stderr, "writing the example of %s: %s\n", key, strerror(errno));
		return -1;
	}
	r = santa_config_load(path, &cfg, err, sizeof(err));
	unlink(path);
	if (r < 0) {
		fprintf(stderr, "santa.conf(5)'s example of %s is refused: %s\n", key, err);
		return -1;
	}
	santa_config_done(&cfg);
	printf("ok %s\n", key);
	return 0;
}

int main(int argc, char **argv)
{
	json_object *examples;
	int failed = 0, n = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s EXAMPLES.json\n", argv[0]);
		return 2;
	}
	examples = json_object_from_file(argv[1]);
	if (!examples || !json_object_is_type(examples, json_type_object)) {
		fprintf(stderr, "reading \"%s\": %s\n", argv[1], json_util_get_last_err());
		json_object_put(examples);
		return 1;
	}
	json_object_object_foreach(examples, key, value) {
		n++;
		if (check_example(key, value) < 0)
			failed++;
	}
	json_object_put(examples);
	printf("%d passed, %d failed\n", n - failed, failed);
	return failed || n == 0 ? 1 : 0;
}
