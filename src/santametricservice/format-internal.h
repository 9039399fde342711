/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the format renderers: a set flattened into the original's
 * vocabulary (histograms expanded into counters), which both JSON formats
 * walk, and a growing text buffer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

typedef enum mf_kind {
	MF_BOOL,
	MF_STRING,
	MF_INT64,
	MF_DOUBLE,
} mf_kind;

typedef struct mf_row {
	char *field_value;          /* field values joined by ',' ("" if none) */
	int64_t created_usec;
	int64_t updated_usec;
	mf_kind kind;
	bool b;
	const char *s;              /* borrowed from the set */
	int64_t i;
	double d;
} mf_row;

typedef struct mf_series {
	char *name;
	int type;                   /* Santa__MetricType, never HISTOGRAM */
	const char *description;    /* borrowed, or DESC_OWNED below */
	char *desc_owned;
	char *field_key;            /* field names joined by ',' ("" if none) */
	mf_row *rows;
	size_t n_rows;
} mf_series;

/* Flatten a checked SET. */
int mf_series_build(const Santa__MetricSet *set, mf_series **ret, size_t *ret_n);
void mf_series_free(mf_series *series, size_t n);

int mf_render_rawjson(const Santa__MetricSet *set, char **ret_text, size_t *ret_len);
int mf_render_monarchjson(const Santa__MetricSet *set, char **ret_text,
			  size_t *ret_len);
int mf_render_prometheus(const Santa__MetricSet *set, char **ret_text,
			 size_t *ret_len);

/* NAME as a Prometheus metric or label name: leading slashes dropped,
 * every other character outside [A-Za-z0-9_] made '_', a leading digit
 * prefixed with '_', and "_total" appended for a COUNTER. SIZE must be at
 * least METRIC_SET_MAX_STRING + 8. */
#define MF_PROM_NAME_MAX (METRIC_SET_MAX_STRING + 8)
void mf_prom_name(const char *name, bool counter, char *buf, size_t size);

/* Shortest decimal text of a finite double that reads back the same. */
void mf_format_double(double v, char *buf, size_t size);

/* A growing NUL-terminated buffer; on allocation failure it remembers the
 * error and every later append is a no-op. */
typedef struct mf_buf {
	char *data;
	size_t len;
	size_t cap;
	int err;
} mf_buf;

void mf_buf_append(mf_buf *b, const char *s, size_t n);
void mf_buf_puts(mf_buf *b, const char *s);
void mf_buf_printf(mf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the text over: 0 and *RET_TEXT, or the remembered error. */
int mf_buf_finish(mf_buf *b, char **ret_text, size_t *ret_len);
