/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file writer: each write replaces the file whole and leaves no
 * temporary file behind, also when it fails. (The http writer is tested
 * end to end against a local server: tests/e2e/test_metrics_writers.py.)
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "writer.h"

static char dir[64];

static int setup(void **state)
{
	strcpy(dir, "/tmp/santa-test-writer-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];

	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || de->d_name[1] == '.'))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	return rmdir(dir);
}

static size_t count_entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static char *slurp(const char *path)
{
	static char buf[256];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_file_replace(void **state)
{
	char url[256], path[128], err[256] = "";
	metric_writer *w = NULL;
	struct stat st;

	snprintf(path, sizeof(path), "%s/santa.prom", dir);
	snprintf(url, sizeof(url), "file://%s", path);
	assert_int_equal(metric_writer_new(url, 0, &w, err, sizeof(err)), 0);
	assert_string_equal(metric_writer_url(w), url);

	assert_int_equal(metric_writer_write(w, "text/plain", "first export\n", 13, err,
					     sizeof(err)), 0);
	assert_string_equal(slurp(path), "first export\n");
	assert_int_equal(metric_writer_write(w, "text/plain", "2nd\n", 4, err, sizeof(err)),
			 0);
	assert_string_equal(slurp(path), "2nd\n");
	assert_int_equal(count_entries(), 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	metric_writer_free(w);
	metric_writer_free(NULL);
}

/* Percent-escapes in the URL name the file they decode to. */
static void test_file_url_decoding(void **state)
{
	char url[256], path[128], err[256] = "";
	metric_writer *w = NULL;

	snprintf(url, sizeof(url), "file://%s/a%%20b.json", dir);
	snprintf(path, sizeof(path), "%s/a b.json", dir);
	assert_int_equal(metric_writer_new(url, 0, &w, err, sizeof(err)), 0);
	assert_int_equal(metric_writer_write(w, "application/json", "{}\n", 3, err,
					     sizeof(err)), 0);
	assert_string_equal(slurp(path), "{}\n");
	metric_writer_free(w);
}

/* A failed replace keeps the old file and leaves no temporary file. */
static void test_file_failure(void **state)
{
	char url[256], path[128], err[256] = "";
	metric_writer *w = NULL;

	snprintf(path, sizeof(path), "%s/sub", dir);
	snprintf(url, sizeof(url), "file://%s/missing/x.json", dir);
	assert_int_equal(metric_writer_new(url, 0, &w, err, sizeof(err)), 0);
	assert_true(metric_writer_write(w, "application/json", "{}", 2, err,
					sizeof(err)) < 0);
	assert_non_null(strstr(err, "/missing/x.json"));
	assert_non_null(strstr(err, "No such file or directory"));
	metric_writer_free(w);

	/* The target is a directory: rename fails after the temporary file
	 * was written, and the temporary file is removed. */
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(url, sizeof(url), "file://%s", path);
	assert_int_equal(metric_writer_new(url, 0, &w, err, sizeof(err)), 0);
	assert_true(metric_writer_write(w, "application/json", "{}", 2, err,
					sizeof(err)) < 0);
	assert_non_null(strstr(err, "replacing"));
	assert_int_equal(count_entries(), 1);
	rmdir(path);
	metric_writer_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_url_decoding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_failure, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
