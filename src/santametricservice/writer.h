/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metric writers: where a rendered export goes, chosen by MetricURL's
 * scheme.
 *
 *  file:///dir/name   the file is replaced at each export: the text goes to
 *                     a temporary file in the same directory, which is then
 *                     renamed over NAME, so a reader (node_exporter's
 *                     textfile collector, a tail) sees the old export or
 *                     the new one, never half of one.
 *  http://, https://  one POST per export, with the format's Content-Type,
 *                     within MetricExportTimeout; any answer but 2xx is a
 *                     failure. Redirects are not followed.
 *
 * Errors: negative errno (-EIO for a failed transfer) with a sentence
 * naming the URL and the reason in ERRBUF. Nothing here logs.
 * metric_writer_write blocks for up to the timeout: call it off the event
 * loop.
 */
#pragma once

#include <stddef.h>

typedef struct metric_writer metric_writer;

/* URL must have passed metric_export_check(). For http(s) the process must
 * have called curl_global_init() first. */
int metric_writer_new(const char *url, unsigned timeout_sec, metric_writer **ret,
		      char *errbuf, size_t errsize);
metric_writer *metric_writer_free(metric_writer *w);

int metric_writer_write(metric_writer *w, const char *content_type,
			const char *data, size_t len, char *errbuf, size_t errsize);

const char *metric_writer_url(const metric_writer *w);
