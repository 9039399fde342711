/* SPDX-License-Identifier: Apache-2.0 */
#include "metricset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Append PTR to the pointer array *ARR of *N entries. */
static int push(void ***arr, size_t *n, void *ptr)
{
	void **p = realloc(*arr, (*n + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	p[(*n)++] = ptr;
	*arr = p;
	return 0;
}

/* A NULL-terminated list copied into a protobuf-c repeated string. */
static int copy_strings(const char *const *list, char ***ret, size_t *ret_n)
{
	size_t n = 0;

	while (list && list[n])
		n++;
	*ret = NULL;
	*ret_n = 0;
	if (n == 0)
		return 0;
	*ret = calloc(n, sizeof(**ret));
	if (!*ret)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		(*ret)[i] = strdup(list[i]);
		if (!(*ret)[i])
			return -ENOMEM;
		(*ret_n)++;
	}
	return 0;
}

Santa__MetricSet *metric_set_new(int64_t export_time_usec)
{
	Santa__MetricSet *set = malloc(sizeof(*set));

	if (!set)
		return NULL;
	santa__metric_set__init(set);
	set->export_time_usec = export_time_usec;
	return set;
}

void metric_set_free(Santa__MetricSet *set)
{
	if (set)
		protobuf_c_message_free_unpacked(&set->base, NULL);
}

int metric_set_add_label(Santa__MetricSet *set, const char *key, const char *value)
{
	Santa__RootLabel *l = malloc(sizeof(*l));

	if (!l)
		return -ENOMEM;
	santa__root_label__init(l);
	l->key = strdup(key);
	l->value = strdup(value);
	if (!l->key || !l->value || push((void ***)&set->root_labels,
					 &set->n_root_labels, l) < 0) {
		protobuf_c_message_free_unpacked(&l->base, NULL);
		return -ENOMEM;
	}
	return 0;
}

Santa__Metric *metric_set_add_metric(Santa__MetricSet *set, const char *name,
				     Santa__MetricType type, const char *description,
				     const char *const *field_names)
{
	Santa__Metric *m = malloc(sizeof(*m));

	if (!m)
		return NULL;
	santa__metric__init(m);
	m->type = type;
	m->name = strdup(name);
	m->description = strdup(description);
	if (!m->name || !m->description ||
	    copy_strings(field_names, &m->field_names, &m->n_field_names) < 0 ||
	    push((void ***)&set->metrics, &set->n_metrics, m) < 0) {
		protobuf_c_message_free_unpacked(&m->base, NULL);
		return NULL;
	}
	return m;
}

Santa__MetricValue *metric_add_value(Santa__Metric *m, const char *const *field_values,
				     int64_t created_usec, int64_t last_updated_usec)
{
	Santa__MetricValue *v = malloc(sizeof(*v));

	if (!v)
		return NULL;
	santa__metric_value__init(v);
	v->created_usec = created_usec;
	v->last_updated_usec = last_updated_usec;
	if (copy_strings(field_values, &v->field_values, &v->n_field_values) < 0 ||
	    push((void ***)&m->values, &m->n_values, v) < 0) {
		protobuf_c_message_free_unpacked(&v->base, NULL);
		return NULL;
	}
	return v;
}

void metric_value_set_bool(Santa__MetricValue *v, bool b)
{
	v->data_case = SANTA__METRIC_VALUE__DATA_BOOL_VALUE;
	v->bool_value = b;
}

void metric_value_set_int64(Santa__MetricValue *v, int64_t i)
{
	v->data_case = SANTA__METRIC_VALUE__DATA_INT64_VALUE;
	v->int64_value = i;
}

void metric_value_set_double(Santa__MetricValue *v, double d)
{
	v->data_case = SANTA__METRIC_VALUE__DATA_DOUBLE_VALUE;
	v->double_value = d;
}

int metric_value_set_string(Santa__MetricValue *v, const char *s)
{
	char *copy = strdup(s);

	if (!copy)
		return -ENOMEM;
	v->data_case = SANTA__METRIC_VALUE__DATA_STRING_VALUE;
	v->string_value = copy;
	return 0;
}

int metric_value_set_histogram(Santa__MetricValue *v, const double *bounds,
			       size_t n_bounds, const uint64_t *counts, double sum)
{
	Santa__Histogram *h = malloc(sizeof(*h));

	if (!h)
		return -ENOMEM;
	santa__histogram__init(h);
	h->bounds = malloc((n_bounds ? n_bounds : 1) * sizeof(*h->bounds));
	h->counts = malloc((n_bounds + 1) * sizeof(*h->counts));
	if (!h->bounds || !h->counts) {
		free(h->bounds);
		free(h->counts);
		free(h);
		return -ENOMEM;
	}
	if (n_bounds)
		memcpy(h->bounds, bounds, n_bounds * sizeof(*bounds));
	memcpy(h->counts, counts, (n_bounds + 1) * sizeof(*counts));
	h->n_bounds = n_bounds;
	h->n_counts = n_bounds + 1;
	h->sum = sum;
	v->data_case = SANTA__METRIC_VALUE__DATA_HISTOGRAM;
	v->histogram = h;
	return 0;
}

/* --- The sample set --- */

#define SAMPLE_TIME 1631826454826000LL     /* 2021-09-16T21:07:34.826Z */

#define FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static Santa__MetricValue *sample_value(Santa__Metric *m, const char *const *fields)
{
	return m ? metric_add_value(m, fields, SAMPLE_TIME, SAMPLE_TIME) : NULL;
}

static int sample_constants(Santa__MetricSet *set)
{
	Santa__MetricValue *v;
	Santa__Metric *m;

	m = metric_set_add_metric(set, "/build/label",
				  SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_STRING,
				  "Software version running", NULL);
	v = sample_value(m, NULL);
	if (!v || metric_value_set_string(v, "20210809.0.1") < 0)
		return -ENOMEM;
	m = metric_set_add_metric(set, "/santa/using_endpoint_security_framework",
				  SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_BOOL,
				  "Is santad using the endpoint security framework", NULL);
	if (!(v = sample_value(m, NULL)))
		return -ENOMEM;
	metric_value_set_bool(v, true);
	m = metric_set_add_metric(set, "/proc/birth_timestamp",
				  SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_INT64,
				  "Start time of this santad instance, in microseconds since epoch",
				  NULL);
	if (!(v = sample_value(m, NULL)))
		return -ENOMEM;
	metric_value_set_int64(v, 0x12345668910LL);
	return 0;
}

static int sample_int64(Santa__MetricSet *set, const char *name, Santa__MetricType type,
			const char *desc, const char *const *fields,
			const char *const *const *values, const int64_t *data, size_t n)
{
	Santa__Metric *m = metric_set_add_metric(set, name, type, desc, fields);

	for (size_t i = 0; i < n; i++) {
		Santa__MetricValue *v = sample_value(m, values ? values[i] : NULL);

		if (!v)
			return -ENOMEM;
		metric_value_set_int64(v, data[i]);
	}
	return m ? 0 : -ENOMEM;
}

static int sample_counters(Santa__MetricSet *set)
{
	const char *const *const rule_types[] = { FIELDS("binary"),
						   FIELDS("certificate") };
	const char *const *const decisions[] = { FIELDS("ALLOW", "BINARY"),
							 FIELDS("DENY", "UNKNOWN") };
	int r = 0;

	r |= sample_int64(set, "/santa/events", SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER,
			  "Count of process exec events on the host", FIELDS("rule_type"),
			  rule_types, (const int64_t[]){ 1, 2 }, 2);
	r |= sample_int64(set, "/santa/rules", SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_INT64,
			  "Number of rules", FIELDS("rule_type"), rule_types,
			  (const int64_t[]){ 1, 3 }, 2);
	r |= sample_int64(set, "/proc/memory/virtual_size",
			  SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_INT64,
			  "The virtual memory size of this process", NULL, NULL,
			  (const int64_t[]){ 987654321 }, 1);
	r |= sample_int64(set, "/proc/memory/resident_size",
			  SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_INT64,
			  "The resident set size of this process", NULL, NULL,
			  (const int64_t[]){ 123456789 }, 1);
	r |= sample_int64(set, "/santa/executions", SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER,
			  "Executions authorized, by decision and reason",
			  FIELDS("decision", "reason"), decisions,
			  (const int64_t[]){ 40, 2 }, 2);
	return r ? -ENOMEM : 0;
}

static int sample_extras(Santa__MetricSet *set)
{
	static const double bounds[] = { 0.0001, 0.001, 0.01 };
	Santa__MetricValue *v;
	Santa__Metric *m;

	m = metric_set_add_metric(set, "/proc/cpu_usage",
				  SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_DOUBLE,
				  "CPU time used by this process, in seconds", FIELDS("mode"));
	if (!(v = sample_value(m, FIELDS("user"))))
		return -ENOMEM;
	metric_value_set_double(v, 1.25);
	m = metric_set_add_metric(set, "/santa/decision_time",
				  SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM,
				  "Time to answer an exec, in seconds", FIELDS("cache"));
	v = sample_value(m, FIELDS("hit"));
	if (!v || metric_value_set_histogram(v, bounds, 3, (const uint64_t[]){ 30, 5, 1, 0 },
					     0.0042) < 0)
		return -ENOMEM;
	v = sample_value(m, FIELDS("miss"));
	if (!v || metric_value_set_histogram(v, bounds, 3, (const uint64_t[]){ 0, 1, 3, 2 },
					     0.75) < 0)
		return -ENOMEM;
	return 0;
}

Santa__MetricSet *metric_set_sample(void)
{
	Santa__MetricSet *set = metric_set_new(SAMPLE_TIME);

	if (!set || metric_set_add_label(set, "hostname", "testHost") < 0 ||
	    metric_set_add_label(set, "username", "testUser") < 0 ||
	    sample_constants(set) < 0 || sample_counters(set) < 0 ||
	    sample_extras(set) < 0) {
		metric_set_free(set);
		return NULL;
	}
	return set;
}
