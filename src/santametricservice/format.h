/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metric formats: a MetricSet (proto/metric.proto) rendered as text that a
 * monitoring system reads.
 *
 *  rawjson      the original Santa's export, {"metrics": {...},
 *               "root_labels": {...}}; also what `santactl metrics` reads.
 *  monarchjson  the original's Monarch layout, {"metricsCollection": [...]}.
 *  prometheus   the Prometheus text exposition format (version 0.0.4).
 *
 * The original has no histogram type. The JSON formats write a histogram
 * NAME as the counters NAME_bucket (one value per upper bound, field "le",
 * cumulative, as Prometheus counts them), NAME_count, and the double gauge
 * NAME_sum, so that collectors that know only the original's nine types
 * still read every value. Prometheus gets a real histogram.
 *
 * A set from the wire is checked with metric_set_check() before it is
 * rendered; the renderers assume a checked set.
 *
 * Errors: negative errno (-EINVAL for a malformed set or configuration,
 * with a reason in ERRBUF; -ENOMEM). Nothing here logs.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "metric.pb-c.h"

typedef enum metric_format {
	METRIC_FORMAT_RAWJSON,
	METRIC_FORMAT_MONARCHJSON,
	METRIC_FORMAT_PROMETHEUS,
	METRIC_FORMAT_MAX,
} metric_format;

/* Limits on a set from the wire. */
#define METRIC_SET_MAX_METRICS 4096
#define METRIC_SET_MAX_VALUES 65536        /* over all metrics */
#define METRIC_SET_MAX_FIELDS 8            /* field names per metric */
#define METRIC_SET_MAX_BOUNDS 64           /* histogram buckets */
#define METRIC_SET_MAX_LABELS 64           /* root labels */
#define METRIC_SET_MAX_STRING 1024         /* bytes of any one string */

/* "rawjson" -> METRIC_FORMAT_RAWJSON; -1 when unknown. */
int metric_format_from_name(const char *name);
const char *metric_format_name(metric_format f);
/* The Content-Type an http writer sends with this format. */
const char *metric_format_content_type(metric_format f);

/*
 * Check MetricFormat and MetricURL as configured: the format is one of
 * ours (an empty or NULL one means rawjson) and the URL's scheme has a
 * writer (file, http, https) and, for file, a local absolute path. Writes
 * a sentence naming the bad value into ERRBUF on error. *RET_FORMAT (may be
 * NULL) gets the format.
 */
int metric_export_check(const char *format, const char *url,
			metric_format *ret_format, char *errbuf, size_t errsize);

/*
 * Check a set received from a peer: counts within the limits above, valid
 * UTF-8 without control characters in every string, no comma in field
 * names or values (the JSON formats join them with commas), one value per
 * field name, data of the metric's type, finite numbers, well-formed
 * histograms, timestamps between 1970 and 9999, no duplicate metric or
 * field-value combination.
 */
int metric_set_check(const Santa__MetricSet *set, char *errbuf, size_t errsize);

/* Render SET. *RET_TEXT is malloc'd and NUL-terminated; *RET_LEN (may be
 * NULL) gets its length. */
int metric_format_render(metric_format f, const Santa__MetricSet *set,
			 char **ret_text, size_t *ret_len);

/* "2021-09-16T21:07:34.826Z" for USEC microseconds since the epoch, as the
 * original writes its timestamps. BUF holds at least 32 bytes. */
const char *metric_format_time(int64_t usec, char *buf, size_t size);

/* The original's names of its metric types, as `santactl metrics` prints
 * them ("SNTMetricTypeCounter"). */
const char *metric_type_display_name(int type);
