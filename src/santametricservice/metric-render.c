/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A test tool: renders the sample metric set (metric_set_sample) in a
 * format and prints it, or writes it through the writer for a URL, REPEAT
 * times. With --pack it prints the sample set as protobuf bytes instead
 * (the fuzz corpus' seed).
 *
 *   metric-render FORMAT [--write URL [--timeout SEC] [--repeat N]]
 *   metric-render --pack
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"
#include "metricset.h"
#include "writer.h"

static int usage(void)
{
	fprintf(stderr, "usage: metric-render FORMAT [--write URL [--timeout SEC] "
		"[--repeat N]]\n       metric-render --pack\n");
	return 2;
}

static int pack(const Santa__MetricSet *set)
{
	size_t len = santa__metric_set__get_packed_size(set);
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf)
		return 1;
	santa__metric_set__pack(set, buf);
	if (fwrite(buf, 1, len, stdout) != len) {
		free(buf);
		return 1;
	}
	free(buf);
	return 0;
}

static int write_out(metric_format f, const char *text, size_t len, const char *url,
		     unsigned timeout, unsigned repeat)
{
	metric_writer *w = NULL;
	char err[512] = "";
	int r;

	if (metric_export_check(metric_format_name(f), url, NULL, err, sizeof(err)) < 0 ||
	    metric_writer_new(url, timeout, &w, err, sizeof(err)) < 0) {
		fprintf(stderr, "metric-render: %s\n", err);
		return 1;
	}
	for (unsigned i = 0; i < repeat; i++) {
		r = metric_writer_write(w, metric_format_content_type(f), text, len, err,
					sizeof(err));
		if (r < 0) {
			fprintf(stderr, "metric-render: %s\n", err);
			metric_writer_free(w);
			return 1;
		}
	}
	metric_writer_free(w);
	return 0;
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	unsigned repeat = 1, timeout = 5;
	Santa__MetricSet *set;
	char err[512] = "out of memory", *text;
	size_t len;
	int f, r;

	if (argc < 2)
		return usage();
	set = metric_set_sample();
	if (!set)
		return 1;
	if (strcmp(argv[1], "--pack") == 0) {
		r = pack(set);
		metric_set_free(set);
		return r;
	}
	f = metric_format_from_name(argv[1]);
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--write") == 0)
			url = argv[i + 1];
		else if (strcmp(argv[i], "--repeat") == 0)
			repeat = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--timeout") == 0)
			timeout = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else
			f = -1;
	}
	if (f < 0 || argc % 2) {
		metric_set_free(set);
		return usage();
	}
	if (metric_set_check(set, err, sizeof(err)) < 0 ||
	    metric_format_render(f, set, &text, &len) < 0) {
		fprintf(stderr, "metric-render: the sample set: %s\n", err);
		metric_set_free(set);
		return 1;
	}
	metric_set_free(set);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (url)
		r = write_out(f, text, len, url, timeout, repeat);
	else
		r = fwrite(text, 1, len, stdout) == len ? 0 : 1;
	free(text);
	curl_global_cleanup();
	return r;
}
