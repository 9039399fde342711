/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus text exposition format (0.0.4), as node_exporter's
 * textfile collector and a Pushgateway read it.
 *
 * A metric "/santa/executions" becomes santa_executions_total (a counter
 * gets the "_total" suffix Prometheus expects). Its fields become labels,
 * after the root labels (hostname, MetricExtraLabels); a field wins over a
 * root label of the same name. Types map as:
 *   counter                  -> counter
 *   int64 / double gauges    -> gauge (constants too)
 *   bool                     -> gauge, 1 or 0
 *   string                   -> gauge 1 with the string in label "value"
 *                               (the usual "info" metric)
 *   histogram                -> histogram (_bucket{le=...}, _sum, _count)
 */
#include "format-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mf_prom_name(const char *name, bool counter, char *buf, size_t size)
{
	size_t n = 0, len;

	while (*name == '/')
		name++;
	for (; *name && n + 2 < size; name++) {
		char c = *name;
		bool digit = c >= '0' && c <= '9';
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';

		if (n == 0 && digit)
			buf[n++] = '_';
		buf[n++] = alpha || digit ? c : '_';
	}
	if (n == 0)
		buf[n++] = '_';
	buf[n] = '\0';
	len = strlen(buf);
	if (counter && (len < 6 || strcmp(buf + len - 6, "_total") != 0))
		snprintf(buf + len, size - len, "_total");
}

static void put_escaped(mf_buf *b, const char *s, bool quotes)
{
	for (; *s; s++) {
		if (*s == '\\')
			mf_buf_puts(b, "\\\\");
		else if (*s == '\n')
			mf_buf_puts(b, "\\n");
		else if (*s == '"' && quotes)
			mf_buf_puts(b, "\\\"");
		else
			mf_buf_append(b, s, 1);
	}
}

typedef struct prom_sample {
	const Santa__MetricSet *set;
	const Santa__Metric *m;
	const Santa__MetricValue *v;
	const char *extra_name;      /* "le" or "value", or NULL */
	const char *extra_value;
} prom_sample;

static bool label_is_field(const Santa__Metric *m, const char *label)
{
	char name[MF_PROM_NAME_MAX];

	for (size_t i = 0; i < m->n_field_names; i++) {
		mf_prom_name(m->field_names[i], false, name, sizeof(name));
		if (strcmp(name, label) == 0)
			return true;
	}
	return false;
}

static void put_label(mf_buf *b, bool *first, const char *name, const char *value)
{
	char pname[MF_PROM_NAME_MAX];

	mf_prom_name(name, false, pname, sizeof(pname));
	mf_buf_printf(b, "%s%s=\"", *first ? "{" : ",", pname);
	put_escaped(b, value, true);
	mf_buf_puts(b, "\"");
	*first = false;
}

static void put_labels(mf_buf *b, const prom_sample *s)
{
	char pname[MF_PROM_NAME_MAX];
	bool first = true;

	for (size_t i = 0; i < s->set->n_root_labels; i++) {
		const Santa__RootLabel *l = s->set->root_labels[i];

		mf_prom_name(l->key, false, pname, sizeof(pname));
		if (!label_is_field(s->m, pname))
			put_label(b, &first, l->key, l->value);
	}
	for (size_t i = 0; i < s->m->n_field_names; i++)
		put_label(b, &first, s->m->field_names[i], s->v->field_values[i]);
	if (s->extra_name)
		put_label(b, &first, s->extra_name, s->extra_value);
	if (!first)
		mf_buf_puts(b, "}");
}

static void put_sample(mf_buf *b, const char *name, const char *suffix,
		       const prom_sample *s, const char *value)
{
	mf_buf_printf(b, "%s%s", name, suffix);
	put_labels(b, s);
	mf_buf_printf(b, " %s\n", value);
}

static void put_histogram(mf_buf *b, const char *name, prom_sample *s)
{
	const Santa__Histogram *h = s->v->histogram;
	uint64_t cumulative = 0;
	char num[40], le[40];

	for (size_t i = 0; i < h->n_counts; i++) {
		cumulative += h->counts[i];
		if (i < h->n_bounds)
			mf_format_double(h->bounds[i], le, sizeof(le));
		else
			snprintf(le, sizeof(le), "+Inf");
		s->extra_name = "le";
		s->extra_value = le;
		snprintf(num, sizeof(num), "%" PRIu64, cumulative);
		put_sample(b, name, "_bucket", s, num);
	}
	s->extra_name = NULL;
	mf_format_double(h->sum, num, sizeof(num));
	put_sample(b, name, "_sum", s, num);
	snprintf(num, sizeof(num), "%" PRIu64, cumulative);
	put_sample(b, name, "_count", s, num);
}

static void put_value(mf_buf *b, const char *name, prom_sample *s)
{
	const Santa__MetricValue *v = s->v;
	char num[40];

	switch (v->data_case) {
	case SANTA__METRIC_VALUE__DATA_BOOL_VALUE:
		put_sample(b, name, "", s, v->bool_value ? "1" : "0");
		break;
	case SANTA__METRIC_VALUE__DATA_STRING_VALUE:
		s->extra_name = "value";
		s->extra_value = v->string_value;
		put_sample(b, name, "", s, "1");
		break;
	case SANTA__METRIC_VALUE__DATA_INT64_VALUE:
		snprintf(num, sizeof(num), "%" PRId64, v->int64_value);
		put_sample(b, name, "", s, num);
		break;
	case SANTA__METRIC_VALUE__DATA_DOUBLE_VALUE:
		mf_format_double(v->double_value, num, sizeof(num));
		put_sample(b, name, "", s, num);
		break;
	case SANTA__METRIC_VALUE__DATA_HISTOGRAM:
		put_histogram(b, name, s);
		break;
	default:
		break;
	}
}

static const char *prom_type(int type)
{
	switch (type) {
	case SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER:
		return "counter";
	case SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM:
		return "histogram";
	default:
		return "gauge";
	}
}

static void put_metric(mf_buf *b, const Santa__MetricSet *set, const Santa__Metric *m)
{
	char name[MF_PROM_NAME_MAX];

	mf_prom_name(m->name, m->type == SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER,
		     name, sizeof(name));
	mf_buf_printf(b, "# HELP %s ", name);
	put_escaped(b, m->description, false);
	mf_buf_printf(b, "\n# TYPE %s %s\n", name, prom_type(m->type));
	for (size_t i = 0; i < m->n_values; i++) {
		prom_sample s = { .set = set, .m = m, .v = m->values[i] };

		put_value(b, name, &s);
	}
}

int mf_render_prometheus(const Santa__MetricSet *set, char **ret_text,
			 size_t *ret_len)
{
	mf_buf b = { 0 };

	for (size_t i = 0; i < set->n_metrics; i++)
		put_metric(&b, set, set->metrics[i]);
	return mf_buf_finish(&b, ret_text, ret_len);
}
