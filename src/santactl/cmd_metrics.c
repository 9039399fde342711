/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl metrics [--json] [prefix...]`: santad's current metrics, in
 * the original's layout.
 *
 * santad answers Santad.Metrics with its metric set in rawjson (see
 * src/santametricservice/format.h). --json prints that object, filtered;
 * otherwise the export settings, the root labels and each metric as rows
 * of "  Name | value". Prefixes keep only the metrics whose name starts
 * with one of them.
 *
 * Unlike the original, which prints only "Metrics not configured" when
 * export is off, the metrics are shown either way: santad keeps them
 * whether or not it exports them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "args.h"
#include "santactl.h"
#include "santad.pb-c.h"

enum { METRICS_OPT_JSON = 1 };

static const santactl_opt metrics_opts[] = {
	{ "--json", NULL, false, METRICS_OPT_JSON },
	{ 0 },
};

#define METRICS_MAX_PREFIXES 64

typedef struct metrics_args {
	bool as_json;
	const char *prefixes[METRICS_MAX_PREFIXES];
	size_t n_prefixes;
} metrics_args;

/* The original's names of its metric types. */
static const char *metrics_type_name(int type)
{
	static const char *const names[] = {
		"SNTMetricTypeUnknown", "SNTMetricTypeConstantBool",
		"SNTMetricTypeConstantString", "SNTMetricTypeConstantInt64",
		"SNTMetricTypeConstantDouble", "SNTMetricTypeGaugeBool",
		"SNTMetricTypeGaugeString", "SNTMetricTypeGaugeInt64",
		"SNTMetricTypeGaugeDouble", "SNTMetricTypeCounter",
	};

	return type > 0 && (size_t)type < sizeof(names) / sizeof(names[0]) ? names[type]
									  : names[0];
}

static int metrics_parse_args(int argc, char **argv, metrics_args *ret)
{
	santactl_args a;
	const char *val;
	char err[256];
	int id;

	santactl_args_init(&a, argc, argv);
	while ((id = santactl_args_next(&a, metrics_opts, &val, err, sizeof(err)))) {
		if (id == SANTACTL_ARGS_POSITIONAL) {
			if (ret->n_prefixes == METRICS_MAX_PREFIXES)
				return santactl_usage_error(&santactl_cmd_metrics,
							    "At most %d prefixes",
							    METRICS_MAX_PREFIXES);
			ret->prefixes[ret->n_prefixes++] = val;
		} else if (id < 0) {
			return santactl_usage_error(&santactl_cmd_metrics, "%s", err);
		} else {
			ret->as_json = true;
		}
	}
	return 0;
}

/* santad's metric set, parsed. NULL after saying why. */
static json_object *metrics_fetch(santactl_ctx *ctx)
{
	Santa__Empty req = SANTA__EMPTY__INIT;
	ProtobufCMessage *reply;
	char *errmsg = NULL;
	json_object *obj;
	int r;

	r = santactl_call(ctx, "Metrics", &req.base, -1, false, &reply, &errmsg);
	if (r < 0) {
		santactl_report("Getting metrics from santad failed", r, errmsg);
		return NULL;
	}
	obj = json_tokener_parse(((Santa__MetricsReply *)reply)->rawjson);
	protobuf_c_message_free_unpacked(reply, NULL);
	if (!obj || !json_object_is_type(obj, json_type_object))
		fprintf(stderr, "santad's metrics are not a JSON object\n");
	return obj;
}

static bool metrics_wanted(const metrics_args *args, const char *name)
{
	if (args->n_prefixes == 0)
		return true;
	for (size_t i = 0; i < args->n_prefixes; i++)
		if (strncmp(name, args->prefixes[i], strlen(args->prefixes[i])) == 0)
			return true;
	return false;
}

/* Drop the metrics no prefix selects. */
static void metrics_filter(json_object *root, const metrics_args *args)
{
	json_object *metrics;
	char **drop;
	size_t n = 0;

	if (args->n_prefixes == 0 || !json_object_object_get_ex(root, "metrics", &metrics) ||
	    !json_object_is_type(metrics, json_type_object))
		return;
	drop = calloc((size_t)json_object_object_length(metrics) + 1, sizeof(*drop));
	if (!drop)
		return;
	json_object_object_foreach(metrics, name, val) {
		(void)val;
		if (!metrics_wanted(args, name))
			drop[n++] = name;
	}
	for (size_t i = 0; i < n; i++)
		json_object_object_del(metrics, drop[i]);
	free(drop);
}

static const char *str_of(json_object *obj, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

static void metrics_print_row(const char *name, const char *value)
{
	printf("  %-25s | %s\n", name, value);
}

static void metrics_print_info(santactl_ctx *ctx)
{
	const santa_config *cfg = &ctx->cfg;
	char interval[32];

	if (santactl_load_config(ctx) < 0 || !cfg->metric_url || !*cfg->metric_url) {
		printf("Metrics not configured\n\n");
		return;
	}
	printf(">>> Metrics Info\n");
	metrics_print_row("Metrics Server", cfg->metric_url);
	metrics_print_row("Metrics Format", cfg->metric_format && *cfg->metric_format
					    ? cfg->metric_format : "rawjson");
	snprintf(interval, sizeof(interval), "%u", cfg->metric_export_interval);
	metrics_print_row("Export Interval (seconds)", interval);
	printf("\n");
}

/* "decision=ALLOW,reason=BINARY" from "decision,reason" and "ALLOW,BINARY". */
static void metrics_print_field(const char *names, const char *values)
{
	char line[2048];
	size_t n = 0;

	if (!*names)
		return;
	while (*names && n < sizeof(line) - 1) {
		size_t nl = strcspn(names, ","), vl = strcspn(values, ",");

		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%.*s=%.*s", n ? "," : "",
				      (int)nl, names, (int)vl, values);
		names += nl + (names[nl] == ',');
		values += vl + (values[vl] == ',');
	}
	metrics_print_row("Field", line);
}

static void metrics_print_data(json_object *data)
{
	char num[64];

	switch (json_object_get_type(data)) {
	case json_type_boolean:
		/* The original prints a boolean NSNumber: 1 or 0. */
		metrics_print_row("Data", json_object_get_boolean(data) ? "1" : "0");
		break;
	case json_type_int:
		snprintf(num, sizeof(num), "%lld", (long long)json_object_get_int64(data));
		metrics_print_row("Data", num);
		break;
	case json_type_double:
		snprintf(num, sizeof(num), "%.15g", json_object_get_double(data));
		metrics_print_row("Data", num);
		break;
	default:
		metrics_print_row("Data", json_object_get_string(data));
		break;
	}
}

static void metrics_print_metric(const char *name, json_object *metric)
{
	json_object *type, *fields, *data;

	metrics_print_row("Metric Name", name);
	metrics_print_row("Description", str_of(metric, "description"));
	json_object_object_get_ex(metric, "type", &type);
	metrics_print_row("Type", metrics_type_name(json_object_get_int(type)));
	if (json_object_object_get_ex(metric, "fields", &fields) &&
	    json_object_is_type(fields, json_type_object)) {
		json_object_object_foreach(fields, field, rows) {
			for (size_t i = 0; json_object_is_type(rows, json_type_array) &&
			     i < json_object_array_length(rows); i++) {
				json_object *row = json_object_array_get_idx(rows, i);

				metrics_print_field(field, str_of(row, "value"));
				metrics_print_row("Created", str_of(row, "created"));
				metrics_print_row("Last Updated", str_of(row, "last_updated"));
				if (json_object_object_get_ex(row, "data", &data))
					metrics_print_data(data);
			}
		}
	}
	printf("\n");
}

static void metrics_print_text(santactl_ctx *ctx, json_object *root)
{
	json_object *labels, *metrics;

	metrics_print_info(ctx);
	printf(">>> Root Labels\n");
	if (json_object_object_get_ex(root, "root_labels", &labels) &&
	    json_object_is_type(labels, json_type_object)) {
		json_object_object_foreach(labels, key, val)
			metrics_print_row(key, json_object_get_string(val));
	}
	printf("\n>>> Metrics\n");
	if (json_object_object_get_ex(root, "metrics", &metrics) &&
	    json_object_is_type(metrics, json_type_object)) {
		json_object_object_foreach(metrics, name, metric)
			metrics_print_metric(name, metric);
	}
}

static int metrics_run(santactl_ctx *ctx, int argc, char **argv)
{
	metrics_args args = { 0 };
	json_object *root;
	int r;

	r = metrics_parse_args(argc, argv, &args);
	if (r != 0)
		return r;
	root = metrics_fetch(ctx);
	if (!root || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return 1;
	}
	metrics_filter(root, &args);
	if (args.as_json)
		printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
			JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		metrics_print_text(ctx, root);
	json_object_put(root);
	return 0;
}

const santactl_cmd santactl_cmd_metrics = {
	.name = "metrics",
	.short_help = "Show Santa metric information.",
	.long_help =
		"Provides metrics about Santa's operation while it's running.\n"
		"  Pass prefixes to filter list of metrics, if desired.\n"
		"  Use --json to output in JSON format\n",
	.run = metrics_run,
};
