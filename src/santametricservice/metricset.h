/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Building a MetricSet (proto/metric.proto) in memory: santad's snapshot,
 * the tests' sample set. Everything is malloc'd the way protobuf-c's
 * unpacker allocates, so a built set and a received one are both freed by
 * metric_set_free(). Adders return NULL or -ENOMEM when out of memory and
 * leave the set whole.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metric.pb-c.h"

Santa__MetricSet *metric_set_new(int64_t export_time_usec);
void metric_set_free(Santa__MetricSet *set);

int metric_set_add_label(Santa__MetricSet *set, const char *key, const char *value);

/* FIELD_NAMES is NULL-terminated (NULL for none). */
Santa__Metric *metric_set_add_metric(Santa__MetricSet *set, const char *name,
				     Santa__MetricType type, const char *description,
				     const char *const *field_names);

/* A value with one field value per field name of M (FIELD_VALUES is
 * NULL-terminated, NULL for none). Set its data with one of the setters. */
Santa__MetricValue *metric_add_value(Santa__Metric *m, const char *const *field_values,
				     int64_t created_usec, int64_t last_updated_usec);

void metric_value_set_bool(Santa__MetricValue *v, bool b);
void metric_value_set_int64(Santa__MetricValue *v, int64_t i);
void metric_value_set_double(Santa__MetricValue *v, double d);
int metric_value_set_string(Santa__MetricValue *v, const char *s);
/* N_BOUNDS ascending upper bounds, N_BOUNDS + 1 per-bucket counts. */
int metric_value_set_histogram(Santa__MetricValue *v, const double *bounds,
			       size_t n_bounds, const uint64_t *counts, double sum);

/* The sample set the format tests and their golden files use: the metrics
 * of the original's format test (fixed at 2021-09-16T21:07:34.826Z) plus a
 * two-field counter, a double gauge and a histogram. */
Santa__MetricSet *metric_set_sample(void);
