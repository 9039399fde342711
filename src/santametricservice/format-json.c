/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The original's two JSON formats.
 *
 * rawjson is the metric set as the original's SNTMetricSet exports it:
 *   {"metrics": {NAME: {"type": N, "description": D,
 *                       "fields": {"f1,f2": [{"value": "v1,v2",
 *                                             "created": T, "last_updated": T,
 *                                             "data": X}]}}},
 *    "root_labels": {KEY: VALUE}}
 * with several field names (and their values) joined by commas, and a
 * metric without fields under the field name "".
 *
 * monarchjson is the original's translation of that for Monarch:
 *   {"metricsCollection": [{"rootLabels": [{"key", "stringValue"}],
 *     "metricsDataSet": [{"metricName", "description", "fieldDescriptor":
 *       [{"name", "fieldType": "STRING"}], "streamKind": GAUGE|CUMULATIVE
 *       (absent for constants), "valueType": BOOL|STRING|INT64|DOUBLE,
 *       "data": [{"field": [{"name", "stringValue"}], "startTimestamp",
 *                 "endTimestamp", "<kind>Value": X}]}]}]}
 * where endTimestamp is the export time and "field" and "fieldDescriptor"
 * are left out for a metric without fields.
 */
#include "format-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | \
		    JSON_C_TO_STRING_NOSLASHESCAPE)

/* --- Flattening --- */

/* PARTS joined by ',', then EXTRA if not NULL. */
static char *join_commas(char *const *parts, size_t n, const char *extra)
{
	size_t len = 1 + (extra ? strlen(extra) + 1 : 0);
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(parts[i]) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	p = s;
	*p = '\0';
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? "," : "", parts[i]);
	if (extra)
		sprintf(p, "%s%s", n ? "," : "", extra);
	return s;
}

static void row_set_data(mf_row *row, const Santa__MetricValue *v)
{
	switch (v->data_case) {
	case SANTA__METRIC_VALUE__DATA_BOOL_VALUE:
		row->kind = MF_BOOL;
		row->b = v->bool_value;
		break;
	case SANTA__METRIC_VALUE__DATA_STRING_VALUE:
		row->kind = MF_STRING;
		row->s = v->string_value;
		break;
	case SANTA__METRIC_VALUE__DATA_DOUBLE_VALUE:
		row->kind = MF_DOUBLE;
		row->d = v->double_value;
		break;
	default:
		row->kind = MF_INT64;
		row->i = v->int64_value;
		break;
	}
}

static int series_init(mf_series *s, const Santa__Metric *m, const char *suffix,
		       int type, const char *desc_suffix, size_t n_rows,
		       const char *extra_field)
{
	size_t len = strlen(m->name) + strlen(suffix) + 1;

	s->name = malloc(len);
	s->field_key = join_commas(m->field_names, m->n_field_names, extra_field);
	s->rows = calloc(n_rows ? n_rows : 1, sizeof(*s->rows));
	if (!s->name || !s->field_key || !s->rows)
		return -ENOMEM;
	snprintf(s->name, len, "%s%s", m->name, suffix);
	s->type = type;
	s->description = m->description;
	if (desc_suffix) {
		len = strlen(m->description) + strlen(desc_suffix) + 1;
		s->desc_owned = malloc(len);
		if (!s->desc_owned)
			return -ENOMEM;
		snprintf(s->desc_owned, len, "%s%s", m->description, desc_suffix);
		s->description = s->desc_owned;
	}
	return 0;
}

static int row_init(mf_row *row, const Santa__MetricValue *v, const char *extra)
{
	row->field_value = join_commas(v->field_values, v->n_field_values, extra);
	if (!row->field_value)
		return -ENOMEM;
	row->created_usec = v->created_usec;
	row->updated_usec = v->last_updated_usec;
	return 0;
}

static int64_t clamp_count(uint64_t n)
{
	return n > INT64_MAX ? INT64_MAX : (int64_t)n;
}

static int flatten_plain(const Santa__Metric *m, mf_series *s)
{
	int r = series_init(s, m, "", m->type, NULL, m->n_values, NULL);

	for (size_t i = 0; r == 0 && i < m->n_values; i++) {
		r = row_init(&s->rows[i], m->values[i], NULL);
		row_set_data(&s->rows[i], m->values[i]);
		s->n_rows++;
	}
	return r;
}

static int flatten_buckets(const Santa__Metric *m, mf_series *s)
{
	size_t n_rows = 0;
	int r;

	for (size_t i = 0; i < m->n_values; i++)
		n_rows += m->values[i]->histogram->n_counts;
	r = series_init(s, m, "_bucket", SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER,
			" (observations at or below the bound le)", n_rows, "le");
	for (size_t i = 0; r == 0 && i < m->n_values; i++) {
		const Santa__Histogram *h = m->values[i]->histogram;
		uint64_t cumulative = 0;

		for (size_t b = 0; r == 0 && b < h->n_counts; b++) {
			mf_row *row = &s->rows[s->n_rows++];
			char le[40] = "+Inf";

			if (b < h->n_bounds)
				mf_format_double(h->bounds[b], le, sizeof(le));
			cumulative += h->counts[b];
			r = row_init(row, m->values[i], le);
			row->kind = MF_INT64;
			row->i = clamp_count(cumulative);
		}
	}
	return r;
}

static int flatten_totals(const Santa__Metric *m, mf_series *count, mf_series *sum)
{
	int r;

	r = series_init(count, m, "_count", SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER,
			" (number of observations)", m->n_values, NULL);
	if (r == 0)
		r = series_init(sum, m, "_sum", SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_DOUBLE,
				" (sum of observations)", m->n_values, NULL);
	for (size_t i = 0; r == 0 && i < m->n_values; i++) {
		const Santa__Histogram *h = m->values[i]->histogram;
		uint64_t total = 0;

		for (size_t b = 0; b < h->n_counts; b++)
			total += h->counts[b];
		r = row_init(&count->rows[i], m->values[i], NULL);
		count->rows[i].kind = MF_INT64;
		count->rows[i].i = clamp_count(total);
		count->n_rows++;
		if (r == 0)
			r = row_init(&sum->rows[i], m->values[i], NULL);
		sum->rows[i].kind = MF_DOUBLE;
		sum->rows[i].d = h->sum;
		sum->n_rows++;
	}
	return r;
}

int mf_series_build(const Santa__MetricSet *set, mf_series **ret, size_t *ret_n)
{
	size_t n = 0, cap = 0;
	mf_series *s;
	int r = 0;

	for (size_t i = 0; i < set->n_metrics; i++)
		cap += set->metrics[i]->type == SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM ?
		       3 : 1;
	s = calloc(cap ? cap : 1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < set->n_metrics; i++) {
		const Santa__Metric *m = set->metrics[i];

		if (m->type != SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM) {
			r = flatten_plain(m, &s[n++]);
			continue;
		}
		r = flatten_buckets(m, &s[n++]);
		if (r == 0)
			r = flatten_totals(m, &s[n], &s[n + 1]);
		n += 2;
	}
	if (r < 0) {
		mf_series_free(s, n);
		return r;
	}
	*ret = s;
	*ret_n = n;
	return 0;
}

void mf_series_free(mf_series *series, size_t n)
{
	if (!series)
		return;
	for (size_t i = 0; i < n; i++) {
		mf_series *s = &series[i];

		for (size_t j = 0; s->rows && j < s->n_rows; j++)
			free(s->rows[j].field_value);
		free(s->rows);
		free(s->name);
		free(s->desc_owned);
		free(s->field_key);
	}
	free(series);
}

/* --- json-c helpers --- */

/* Each json_object_*_add takes the value, even on failure; a NULL value
 * means an allocation failed and is reported by json_ok(). */
typedef struct jctx {
	bool failed;
} jctx;

static void jadd(jctx *j, json_object *obj, const char *key, json_object *val)
{
	if (!obj || !val || json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		j->failed = true;
	}
}

static void jappend(jctx *j, json_object *arr, json_object *val)
{
	if (!arr || !val || json_object_array_add(arr, val) < 0) {
		json_object_put(val);
		j->failed = true;
	}
}

static json_object *jstr(const char *s)
{
	return json_object_new_string(s);
}

static json_object *jtime(int64_t usec)
{
	char buf[40];

	return jstr(metric_format_time(usec, buf, sizeof(buf)));
}

static json_object *row_data(const mf_row *row)
{
	switch (row->kind) {
	case MF_BOOL:
		return json_object_new_boolean(row->b);
	case MF_STRING:
		return jstr(row->s);
	case MF_DOUBLE:
		return json_object_new_double(row->d);
	default:
		return json_object_new_int64(row->i);
	}
}

static int jfinish(jctx *j, json_object *root, char **ret_text, size_t *ret_len)
{
	const char *text;
	size_t len;
	int r = -ENOMEM;

	if (j->failed || !root)
		goto out;
	text = json_object_to_json_string_length(root, JSON_FLAGS, &len);
	if (!text)
		goto out;
	/* The original ends each export with a newline. */
	*ret_text = malloc(len + 2);
	if (!*ret_text)
		goto out;
	memcpy(*ret_text, text, len);
	(*ret_text)[len] = '\n';
	(*ret_text)[len + 1] = '\0';
	if (ret_len)
		*ret_len = len + 1;
	r = 0;
out:
	json_object_put(root);
	return r;
}

/* --- rawjson --- */

static json_object *raw_metric(jctx *j, const mf_series *s)
{
	json_object *m = json_object_new_object();
	json_object *fields = json_object_new_object();
	json_object *rows = json_object_new_array();

	jadd(j, m, "type", json_object_new_int(s->type));
	jadd(j, m, "description", jstr(s->description));
	for (size_t i = 0; i < s->n_rows; i++) {
		const mf_row *row = &s->rows[i];
		json_object *r = json_object_new_object();

		jadd(j, r, "value", jstr(row->field_value));
		jadd(j, r, "created", jtime(row->created_usec));
		jadd(j, r, "last_updated", jtime(row->updated_usec));
		jadd(j, r, "data", row_data(row));
		jappend(j, rows, r);
	}
	jadd(j, fields, s->field_key, rows);
	jadd(j, m, "fields", fields);
	return m;
}

int mf_render_rawjson(const Santa__MetricSet *set, char **ret_text, size_t *ret_len)
{
	json_object *root = json_object_new_object();
	json_object *metrics = json_object_new_object();
	json_object *labels = json_object_new_object();
	mf_series *series;
	jctx j = { 0 };
	size_t n;
	int r;

	r = mf_series_build(set, &series, &n);
	if (r < 0) {
		json_object_put(root);
		json_object_put(metrics);
		json_object_put(labels);
		return r;
	}
	for (size_t i = 0; i < n; i++)
		jadd(&j, metrics, series[i].name, raw_metric(&j, &series[i]));
	for (size_t i = 0; i < set->n_root_labels; i++)
		jadd(&j, labels, set->root_labels[i]->key, jstr(set->root_labels[i]->value));
	jadd(&j, root, "metrics", metrics);
	jadd(&j, root, "root_labels", labels);
	mf_series_free(series, n);
	return jfinish(&j, root, ret_text, ret_len);
}

/* --- monarchjson --- */

static const char *monarch_value_type(int type)
{
	switch (type) {
	case SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_BOOL:
	case SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_BOOL:
		return "BOOL";
	case SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_STRING:
	case SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_STRING:
		return "STRING";
	case SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_DOUBLE:
	case SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_DOUBLE:
		return "DOUBLE";
	default:
		return "INT64";
	}
}

static const char *monarch_stream_kind(int type)
{
	switch (type) {
	case SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_BOOL:
	case SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_STRING:
	case SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_INT64:
	case SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_DOUBLE:
		return "GAUGE";
	case SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER:
		return "CUMULATIVE";
	default:
		return NULL;     /* constants have no stream kind */
	}
}

static const char *monarch_value_key(mf_kind kind)
{
	static const char *const keys[] = {
		[MF_BOOL] = "boolValue",
		[MF_STRING] = "stringValue",
		[MF_INT64] = "int64Value",
		[MF_DOUBLE] = "doubleValue",
	};

	return keys[kind];
}

/* The next comma-separated token of *P (possibly empty), advancing *P past
 * it; NULL after the last. */
static const char *next_token(const char **p, char *tok, size_t size)
{
	const char *start = *p, *comma;
	size_t len;

	if (!start)
		return NULL;
	comma = strchr(start, ',');
	len = comma ? (size_t)(comma - start) : strlen(start);
	*p = comma ? comma + 1 : NULL;
	snprintf(tok, size, "%.*s", (int)len, start);
	return tok;
}

/* [{"name": N, "stringValue": V}] for the comma-joined NAMES and VALUES,
 * or with only "name" and "fieldType" when VALUES is NULL. Names and
 * values are at most METRIC_SET_MAX_STRING bytes (metric_set_check). */
static json_object *monarch_fields(jctx *j, const char *names, const char *values)
{
	char name[METRIC_SET_MAX_STRING + 1], value[METRIC_SET_MAX_STRING + 1];
	json_object *arr = json_object_new_array();
	const char *np = names, *vp = values;

	while (next_token(&np, name, sizeof(name))) {
		json_object *f = json_object_new_object();

		jadd(j, f, "name", jstr(name));
		if (values)
			jadd(j, f, "stringValue",
			     jstr(next_token(&vp, value, sizeof(value)) ? value : ""));
		else
			jadd(j, f, "fieldType", jstr("STRING"));
		jappend(j, arr, f);
	}
	return arr;
}

static json_object *monarch_metric(jctx *j, const mf_series *s, int64_t end_usec)
{
	json_object *m = json_object_new_object();
	json_object *data = json_object_new_array();
	const char *kind = monarch_stream_kind(s->type);

	jadd(j, m, "metricName", jstr(s->name));
	jadd(j, m, "description", jstr(s->description));
	if (*s->field_key)
		jadd(j, m, "fieldDescriptor", monarch_fields(j, s->field_key, NULL));
	if (kind)
		jadd(j, m, "streamKind", jstr(kind));
	jadd(j, m, "valueType", jstr(monarch_value_type(s->type)));
	for (size_t i = 0; i < s->n_rows; i++) {
		const mf_row *row = &s->rows[i];
		json_object *d = json_object_new_object();

		if (*s->field_key)
			jadd(j, d, "field", monarch_fields(j, s->field_key,
							   row->field_value));
		jadd(j, d, "startTimestamp", jtime(row->created_usec));
		jadd(j, d, "endTimestamp", jtime(end_usec));
		jadd(j, d, monarch_value_key(row->kind), row_data(row));
		jappend(j, data, d);
	}
	jadd(j, m, "data", data);
	return m;
}

int mf_render_monarchjson(const Santa__MetricSet *set, char **ret_text,
			  size_t *ret_len)
{
	json_object *root = json_object_new_object();
	json_object *collection = json_object_new_array();
	json_object *entry = json_object_new_object();
	json_object *labels = json_object_new_array();
	json_object *dataset = json_object_new_array();
	mf_series *series;
	jctx j = { 0 };
	size_t n;
	int r;

	r = mf_series_build(set, &series, &n);
	if (r < 0)
		j.failed = true;
	for (size_t i = 0; r == 0 && i < set->n_root_labels; i++) {
		json_object *l = json_object_new_object();

		jadd(&j, l, "key", jstr(set->root_labels[i]->key));
		jadd(&j, l, "stringValue", jstr(set->root_labels[i]->value));
		jappend(&j, labels, l);
	}
	for (size_t i = 0; r == 0 && i < n; i++)
		jappend(&j, dataset, monarch_metric(&j, &series[i], set->export_time_usec));
	if (r == 0)
		mf_series_free(series, n);
	jadd(&j, entry, "rootLabels", labels);
	jadd(&j, entry, "metricsDataSet", dataset);
	jappend(&j, collection, entry);
	jadd(&j, root, "metricsCollection", collection);
	return jfinish(&j, root, ret_text, ret_len);
}
