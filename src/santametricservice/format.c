/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Format names, the configuration check, the check of a set from the wire,
 * and the flattening both JSON formats share.
 */
#include "format-internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

static const struct {
	const char *name;
	const char *content_type;
} format_table[METRIC_FORMAT_MAX] = {
	[METRIC_FORMAT_RAWJSON] = { "rawjson", "application/json" },
	[METRIC_FORMAT_MONARCHJSON] = { "monarchjson", "application/json" },
	[METRIC_FORMAT_PROMETHEUS] = { "prometheus", "text/plain; version=0.0.4" },
};

int metric_format_from_name(const char *name)
{
	for (int f = 0; f < METRIC_FORMAT_MAX; f++)
		if (name && strcmp(name, format_table[f].name) == 0)
			return f;
	return -1;
}

const char *metric_format_name(metric_format f)
{
	return f < METRIC_FORMAT_MAX ? format_table[f].name : "unknown";
}

const char *metric_format_content_type(metric_format f)
{
	return f < METRIC_FORMAT_MAX ? format_table[f].content_type : "text/plain";
}

int metric_format_render(metric_format f, const Santa__MetricSet *set,
			 char **ret_text, size_t *ret_len)
{
	switch (f) {
	case METRIC_FORMAT_RAWJSON:
		return mf_render_rawjson(set, ret_text, ret_len);
	case METRIC_FORMAT_MONARCHJSON:
		return mf_render_monarchjson(set, ret_text, ret_len);
	case METRIC_FORMAT_PROMETHEUS:
		return mf_render_prometheus(set, ret_text, ret_len);
	default:
		return -EINVAL;
	}
}

const char *metric_type_display_name(int type)
{
	static const char *const names[] = {
		[SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_BOOL] = "SNTMetricTypeConstantBool",
		[SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_STRING] = "SNTMetricTypeConstantString",
		[SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_INT64] = "SNTMetricTypeConstantInt64",
		[SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_DOUBLE] = "SNTMetricTypeConstantDouble",
		[SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_BOOL] = "SNTMetricTypeGaugeBool",
		[SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_STRING] = "SNTMetricTypeGaugeString",
		[SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_INT64] = "SNTMetricTypeGaugeInt64",
		[SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_DOUBLE] = "SNTMetricTypeGaugeDouble",
		[SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER] = "SNTMetricTypeCounter",
		[SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM] = "Histogram",
	};

	if (type > 0 && (size_t)type < sizeof(names) / sizeof(names[0]))
		return names[type];
	return "SNTMetricTypeUnknown";
}

/* --- Configuration --- */

static int check_file_url(CURLU *u, const char *url, char *errbuf, size_t errsize)
{
	char *host = NULL, *path = NULL;
	int r = 0;

	curl_url_get(u, CURLUPART_HOST, &host, 0);
	if (host && *host && strcmp(host, "localhost") != 0) {
		snprintf(errbuf, errsize, "MetricURL \"%s\": a file URL must name a "
			 "local path (file:///dir/file), not host \"%s\"", url, host);
		r = -EINVAL;
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) != CURLUE_OK ||
	    path[0] != '/' || path[strlen(path) - 1] == '/') {
		snprintf(errbuf, errsize, "MetricURL \"%s\": a file URL must name a "
			 "file by its absolute path (file:///dir/file)", url);
		r = -EINVAL;
	}
out:
	curl_free(host);
	curl_free(path);
	return r;
}

static int check_url(const char *url, char *errbuf, size_t errsize)
{
	char *scheme = NULL, *host = NULL;
	CURLU *u;
	int r = -EINVAL;

	u = curl_url();
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		snprintf(errbuf, errsize, "MetricURL \"%s\" is not a URL "
			 "(file:///path, http://host/path or https://host/path)", url);
		goto out;
	}
	if (strcmp(scheme, "file") == 0) {
		r = check_file_url(u, url, errbuf, errsize);
		goto out;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		snprintf(errbuf, errsize, "MetricURL \"%s\": no writer for scheme "
			 "\"%s\" (file, http and https have one)", url, scheme);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
		snprintf(errbuf, errsize, "MetricURL \"%s\" names no host", url);
		goto out;
	}
	r = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return r;
}

int metric_export_check(const char *format, const char *url,
			metric_format *ret_format, char *errbuf, size_t errsize)
{
	int f = METRIC_FORMAT_RAWJSON;

	if (format && *format) {
		f = metric_format_from_name(format);
		if (f < 0) {
			snprintf(errbuf, errsize, "MetricFormat \"%s\" is not one of "
				 "rawjson, monarchjson, prometheus", format);
			return -EINVAL;
		}
	}
	if (!url || !*url) {
		snprintf(errbuf, errsize, "MetricURL is not set");
		return -EINVAL;
	}
	if (check_url(url, errbuf, errsize) < 0)
		return -EINVAL;
	if (ret_format)
		*ret_format = f;
	return 0;
}

/* --- Checking a set from the wire --- */

#define MAX_TIME_USEC 253402300799999999LL  /* 9999-12-31T23:59:59.999999Z */

typedef struct check_ctx {
	char *errbuf;
	size_t errsize;
	size_t values;
} check_ctx;

static int check_fail(check_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int check_fail(check_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errbuf, c->errsize, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Valid UTF-8 (no overlongs, no surrogates), no control characters, at
 * most METRIC_SET_MAX_STRING bytes. */
static bool string_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);

	if (len > METRIC_SET_MAX_STRING)
		return false;
	while (*p) {
		unsigned c = *p, n, cp;

		if (c < 0x20 || c == 0x7f)
			return false;
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (unsigned i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first string that occurs twice among STRS (sorted in place), or
 * NULL. */
static const char *find_duplicate(char **strs, size_t n)
{
	qsort(strs, n, sizeof(*strs), cmp_strp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(strs[i - 1], strs[i]) == 0)
			return strs[i];
	return NULL;
}

static bool time_ok(int64_t usec)
{
	return usec >= 0 && usec <= MAX_TIME_USEC;
}

static int check_histogram(check_ctx *c, const Santa__Metric *m,
			   const Santa__Histogram *h)
{
	if (!h || h->n_bounds > METRIC_SET_MAX_BOUNDS || h->n_counts != h->n_bounds + 1)
		return check_fail(c, "metric \"%s\": a histogram needs one count more "
				  "than bounds, and at most %d bounds", m->name,
				  METRIC_SET_MAX_BOUNDS);
	for (size_t i = 0; i < h->n_bounds; i++)
		if (!isfinite(h->bounds[i]) || (i > 0 && h->bounds[i] <= h->bounds[i - 1]))
			return check_fail(c, "metric \"%s\": histogram bounds must be "
					  "finite and ascending", m->name);
	if (!isfinite(h->sum))
		return check_fail(c, "metric \"%s\": histogram sum is not finite", m->name);
	return 0;
}

static Santa__MetricValue__DataCase type_data_case(int type)
{
	switch (type) {
	case SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_BOOL:
	case SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_BOOL:
		return SANTA__METRIC_VALUE__DATA_BOOL_VALUE;
	case SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_STRING:
	case SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_STRING:
		return SANTA__METRIC_VALUE__DATA_STRING_VALUE;
	case SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_INT64:
	case SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_INT64:
	case SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER:
		return SANTA__METRIC_VALUE__DATA_INT64_VALUE;
	case SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_DOUBLE:
	case SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_DOUBLE:
		return SANTA__METRIC_VALUE__DATA_DOUBLE_VALUE;
	case SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM:
		return SANTA__METRIC_VALUE__DATA_HISTOGRAM;
	default:
		return SANTA__METRIC_VALUE__DATA__NOT_SET;
	}
}

/* Field values joined by '\x1f' (a byte string_ok() refuses, so it cannot
 * occur inside a value), for the duplicate check. */
static char *join_key(const Santa__MetricValue *v)
{
	size_t len = 1;
	char *key, *p;

	for (size_t i = 0; i < v->n_field_values; i++)
		len += strlen(v->field_values[i]) + 1;
	key = malloc(len);
	if (!key)
		return NULL;
	p = key;
	for (size_t i = 0; i < v->n_field_values; i++) {
		size_t n = strlen(v->field_values[i]);

		memcpy(p, v->field_values[i], n);
		p += n;
		*p++ = '\x1f';
	}
	*p = '\0';
	return key;
}

static int check_value_strings(check_ctx *c, const Santa__Metric *m,
			       const Santa__MetricValue *v)
{
	for (size_t i = 0; i < v->n_field_values; i++)
		if (!string_ok(v->field_values[i]) || strchr(v->field_values[i], ','))
			return check_fail(c, "metric \"%s\": field value %zu is not "
					  "printable UTF-8 without commas", m->name, i);
	if (v->data_case == SANTA__METRIC_VALUE__DATA_STRING_VALUE &&
	    !string_ok(v->string_value))
		return check_fail(c, "metric \"%s\": string value is not printable UTF-8",
				  m->name);
	return 0;
}

static int check_value(check_ctx *c, const Santa__Metric *m, const Santa__MetricValue *v)
{
	int r;

	if (v->n_field_values != m->n_field_names)
		return check_fail(c, "metric \"%s\": %zu field values for %zu field names",
				  m->name, v->n_field_values, m->n_field_names);
	r = check_value_strings(c, m, v);
	if (r < 0)
		return r;
	if (v->data_case != type_data_case(m->type))
		return check_fail(c, "metric \"%s\": value does not match its type %d",
				  m->name, m->type);
	if (!time_ok(v->created_usec) || !time_ok(v->last_updated_usec))
		return check_fail(c, "metric \"%s\": timestamp out of range", m->name);
	if (v->data_case == SANTA__METRIC_VALUE__DATA_DOUBLE_VALUE &&
	    !isfinite(v->double_value))
		return check_fail(c, "metric \"%s\": value is not finite", m->name);
	if (v->data_case == SANTA__METRIC_VALUE__DATA_HISTOGRAM)
		return check_histogram(c, m, v->histogram);
	return 0;
}

/* Names the Prometheus renderer adds as labels of its own. */
static bool field_name_reserved(const Santa__Metric *m, const char *name)
{
	if (m->type == SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM)
		return strcmp(name, "le") == 0;
	if (type_data_case(m->type) == SANTA__METRIC_VALUE__DATA_STRING_VALUE)
		return strcmp(name, "value") == 0;
	return false;
}

/* Field names stay distinct as Prometheus labels, also from the label the
 * Prometheus renderer adds ("le", "value"). */
static int check_prom_labels(check_ctx *c, const Santa__Metric *m)
{
	char names[METRIC_SET_MAX_FIELDS + 1][MF_PROM_NAME_MAX];
	size_t n = 0;

	if (m->type == SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM)
		snprintf(names[n++], MF_PROM_NAME_MAX, "le");
	else if (type_data_case(m->type) == SANTA__METRIC_VALUE__DATA_STRING_VALUE)
		snprintf(names[n++], MF_PROM_NAME_MAX, "value");
	for (size_t i = 0; i < m->n_field_names; i++) {
		mf_prom_name(m->field_names[i], false, names[n], MF_PROM_NAME_MAX);
		for (size_t j = 0; j < n; j++)
			if (strcmp(names[j], names[n]) == 0)
				return check_fail(c, "metric \"%s\": field \"%s\" is "
						  "the same label as another one",
						  m->name, m->field_names[i]);
		n++;
	}
	return 0;
}

static int check_field_names(check_ctx *c, const Santa__Metric *m)
{
	if (m->n_field_names > METRIC_SET_MAX_FIELDS)
		return check_fail(c, "metric \"%s\": more than %d field names", m->name,
				  METRIC_SET_MAX_FIELDS);
	for (size_t i = 0; i < m->n_field_names; i++) {
		const char *f = m->field_names[i];

		if (!*f || !string_ok(f) || strchr(f, ',') || field_name_reserved(m, f))
			return check_fail(c, "metric \"%s\": field name %zu is empty, "
					  "reserved, or not printable UTF-8 without "
					  "commas", m->name, i);
	}
	return check_prom_labels(c, m);
}

static int check_duplicate_values(check_ctx *c, const Santa__Metric *m)
{
	const char *dup;
	char **keys;
	int r = 0;

	if (m->n_values < 2)
		return 0;
	keys = calloc(m->n_values, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_values; i++) {
		keys[i] = join_key(m->values[i]);
		if (!keys[i]) {
			r = -ENOMEM;
			goto out;
		}
	}
	dup = find_duplicate(keys, m->n_values);
	if (dup)
		r = check_fail(c, "metric \"%s\": one combination of field values "
			       "given twice", m->name);
out:
	for (size_t i = 0; i < m->n_values; i++)
		free(keys[i]);
	free(keys);
	return r;
}

static int check_metric(check_ctx *c, const Santa__Metric *m)
{
	int r;

	if (!*m->name || !string_ok(m->name))
		return check_fail(c, "a metric name is empty or not printable UTF-8");
	if (!string_ok(m->description))
		return check_fail(c, "metric \"%s\": description is not printable UTF-8",
				  m->name);
	if (type_data_case(m->type) == SANTA__METRIC_VALUE__DATA__NOT_SET)
		return check_fail(c, "metric \"%s\": unknown type %d", m->name, m->type);
	r = check_field_names(c, m);
	if (r < 0)
		return r;
	c->values += m->n_values;
	if (c->values > METRIC_SET_MAX_VALUES)
		return check_fail(c, "more than %d values in the set", METRIC_SET_MAX_VALUES);
	for (size_t i = 0; i < m->n_values; i++) {
		r = check_value(c, m, m->values[i]);
		if (r < 0)
			return r;
	}
	return check_duplicate_values(c, m);
}

static int check_labels(check_ctx *c, const Santa__MetricSet *set)
{
	char (*names)[MF_PROM_NAME_MAX];
	int r = 0;

	if (set->n_root_labels > METRIC_SET_MAX_LABELS)
		return check_fail(c, "more than %d root labels", METRIC_SET_MAX_LABELS);
	names = calloc(set->n_root_labels + 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < set->n_root_labels; i++) {
		const Santa__RootLabel *l = set->root_labels[i];

		if (!*l->key || !string_ok(l->key) || !string_ok(l->value)) {
			r = check_fail(c, "root label %zu is empty or not printable UTF-8", i);
			break;
		}
		mf_prom_name(l->key, false, names[i], MF_PROM_NAME_MAX);
		for (size_t j = 0; r == 0 && j < i; j++)
			if (strcmp(names[j], names[i]) == 0)
				r = check_fail(c, "root label \"%s\" given twice (as a "
					       "Prometheus label)", l->key);
	}
	free(names);
	return r;
}

/* Every name a metric takes in Prometheus text: NAME, NAME_total for a
 * counter, NAME_bucket/_sum/_count for a histogram. The original names
 * cannot collide unless these do. */
static int add_prom_names(char **names, size_t *n, const Santa__Metric *m)
{
	static const char *const hist[] = { "_bucket", "_sum", "_count" };
	bool is_hist = m->type == SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM;
	char base[MF_PROM_NAME_MAX];

	mf_prom_name(m->name, m->type == SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER,
		     base, sizeof(base));
	for (size_t i = 0; i < (is_hist ? 3u : 1u); i++) {
		if (asprintf(&names[*n], "%s%s", base, is_hist ? hist[i] : "") < 0)
			return -ENOMEM;
		(*n)++;
	}
	return 0;
}

static int check_duplicate_metrics(check_ctx *c, const Santa__MetricSet *set)
{
	const char *dup;
	char **names;
	size_t n = 0;
	int r = 0;

	names = calloc(set->n_metrics * 3 + 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < set->n_metrics; i++)
		r = add_prom_names(names, &n, set->metrics[i]);
	if (r == 0) {
		dup = find_duplicate(names, n);
		if (dup)
			r = check_fail(c, "two metrics are both \"%s\" in Prometheus "
				       "text (or a metric is given twice)", dup);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

int metric_set_check(const Santa__MetricSet *set, char *errbuf, size_t errsize)
{
	check_ctx c = { .errbuf = errbuf, .errsize = errsize };
	int r;

	if (set->n_metrics > METRIC_SET_MAX_METRICS)
		return check_fail(&c, "more than %d metrics in the set",
				  METRIC_SET_MAX_METRICS);
	if (!time_ok(set->export_time_usec))
		return check_fail(&c, "export time out of range");
	r = check_labels(&c, set);
	if (r < 0)
		return r;
	for (size_t i = 0; i < set->n_metrics; i++) {
		r = check_metric(&c, set->metrics[i]);
		if (r < 0)
			return r;
	}
	return check_duplicate_metrics(&c, set);
}

/* --- Text helpers --- */

const char *metric_format_time(int64_t usec, char *buf, size_t size)
{
	time_t secs = (time_t)(usec / 1000000);
	struct tm tm;

	if (usec < 0 || !gmtime_r(&secs, &tm)) {
		snprintf(buf, size, "1970-01-01T00:00:00.000Z");
		return buf;
	}
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(usec % 1000000 / 1000));
	return buf;
}

void mf_format_double(double v, char *buf, size_t size)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

static bool buf_grow(mf_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->err)
		return false;
	if (b->len + need + 1 <= b->cap)
		return true;
	while (cap < b->len + need + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->err = -ENOMEM;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void mf_buf_append(mf_buf *b, const char *s, size_t n)
{
	if (!buf_grow(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void mf_buf_puts(mf_buf *b, const char *s)
{
	mf_buf_append(b, s, strlen(s));
}

void mf_buf_printf(mf_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

int mf_buf_finish(mf_buf *b, char **ret_text, size_t *ret_len)
{
	if (!b->err && !b->data && buf_grow(b, 0))
		b->data[0] = '\0';
	if (b->err) {
		free(b->data);
		return b->err;
	}
	*ret_text = b->data;
	if (ret_len)
		*ret_len = b->len;
	return 0;
}
