/* SPDX-License-Identifier: Apache-2.0 */
#include "status_fmt.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#define ROW "  %-25s | "

void santactl_format_time(int64_t secs, char *buf, size_t size)
{
	time_t t = (time_t)secs;
	struct tm tm;

	if (secs <= 0 || !localtime_r(&t, &tm) ||
	    strftime(buf, size, "%Y/%m/%d %H:%M:%S %z", &tm) == 0)
		snprintf(buf, size, "Never");
}

static const char *status_mode_name(int mode)
{
	switch (mode) {
	case SANTA__CLIENT_MODE__MONITOR:
		return "Monitor";
	case SANTA__CLIENT_MODE__LOCKDOWN:
		return "Lockdown";
	default:
		return "Unknown";
	}
}

static const char *yes_no(bool b)
{
	return b ? "Yes" : "No";
}

static void status_print_watch_paths(FILE *f, const Santa__StatusReply *st)
{
	fprintf(f, ROW, "Watched Paths");
	if (st->n_watch_paths == 0)
		fprintf(f, "(none)");
	for (size_t i = 0; i < st->n_watch_paths; i++)
		fprintf(f, "%s%s", i ? ", " : "", st->watch_paths[i]);
	fputc('\n', f);
}

static void status_print_daemon(FILE *f, const Santa__StatusReply *st)
{
	fprintf(f, ">>> Daemon Info\n");
	fprintf(f, ROW "%s\n", "Mode", status_mode_name(st->mode));
	if (st->transitive_rules)
		fprintf(f, ROW "%s\n", "Transitive Rules", "Yes");
	fprintf(f, ROW "%s\n", "Log Type", st->log_type);
	fprintf(f, ROW "%s\n", "File Logging", yes_no(st->file_logging));
	fprintf(f, ROW "%s\n", "Watching", yes_no(st->driver_connected));
	status_print_watch_paths(f, st);
	fprintf(f, ROW "%s\n", "Fail Closed", yes_no(st->fail_closed));
}

static void status_print_counts(FILE *f, const Santa__StatusReply *st)
{
	fprintf(f, ">>> Cache Info\n");
	fprintf(f, ROW "%llu\n", "Root cache count",
		(unsigned long long)st->root_cache_count);
	fprintf(f, ROW "%llu\n", "Non-root cache count",
		(unsigned long long)st->non_root_cache_count);

	fprintf(f, ">>> Database Info\n");
	fprintf(f, ROW "%llu\n", "Binary Rules", (unsigned long long)st->binary_rules);
	fprintf(f, ROW "%llu\n", "Certificate Rules",
		(unsigned long long)st->certificate_rules);
	fprintf(f, ROW "%llu\n", "TeamID Rules", (unsigned long long)st->teamid_rules);
	fprintf(f, ROW "%llu\n", "SigningID Rules",
		(unsigned long long)st->signingid_rules);
	fprintf(f, ROW "%llu\n", "CDHash Rules", (unsigned long long)st->cdhash_rules);
	fprintf(f, ROW "%llu\n", "Compiler Rules",
		(unsigned long long)st->compiler_rules);
	fprintf(f, ROW "%llu\n", "Transitive Rules",
		(unsigned long long)st->transitive_rule_count);
	fprintf(f, ROW "%llu\n", "Events Pending Upload",
		(unsigned long long)st->events_pending_upload);

	if (st->static_rule_count) {
		fprintf(f, ">>> Static Rules\n");
		fprintf(f, ROW "%llu\n", "Rules",
			(unsigned long long)st->static_rule_count);
	}
}

/* santad's word on a service it asked while answering, or NULL. */
static const char *status_service_state(const Santa__StatusReply *st, const char *name)
{
	for (size_t i = 0; i < st->n_services; i++)
		if (st->services[i] && st->services[i]->name &&
		    strcmp(st->services[i]->name, name) == 0)
			return st->services[i]->state;
	return NULL;
}

static void status_print_sync(FILE *f, const Santa__StatusReply *st)
{
	const char *service = status_service_state(st, "santasyncservice");
	char full[64], rule[64];

	santactl_format_time(st->last_successful_full, full, sizeof(full));
	if (st->last_successful_rule)
		santactl_format_time(st->last_successful_rule, rule, sizeof(rule));
	else
		memcpy(rule, full, sizeof(rule));

	fprintf(f, ">>> Sync Info\n");
	fprintf(f, ROW "%s\n", "Sync Server", st->sync_server);
	fprintf(f, ROW "%s\n", "Clean Sync Required", yes_no(st->clean_required));
	fprintf(f, ROW "%s\n", "Last Successful Full Sync", full);
	fprintf(f, ROW "%s\n", "Last Successful Rule Sync", rule);
	fprintf(f, ROW "%s\n", "Push Notifications",
		st->push_notifications ? "Connected" : "Disconnected");
	fprintf(f, ROW "%s\n", "Bundle Scanning", yes_no(st->bundle_scanning));
	if (service)
		fprintf(f, ROW "%s\n", "Sync Service", service);
}

static void status_print_metrics(FILE *f, const Santa__StatusReply *st)
{
	fprintf(f, ">>> Metrics Info\n");
	fprintf(f, ROW "%s\n", "Metrics Server", st->metric_url);
	fprintf(f, ROW "%u\n", "Export Interval (seconds)", st->metric_export_interval);
	if (st->metric_error && *st->metric_error)
		fprintf(f, ROW "%s\n", "Export Error", st->metric_error);
}

void santactl_status_print(FILE *f, const Santa__StatusReply *st)
{
	status_print_daemon(f, st);
	status_print_counts(f, st);
	if (st->sync_server && *st->sync_server)
		status_print_sync(f, st);
	if (st->metric_url && *st->metric_url)
		status_print_metrics(f, st);
}

/* --- JSON --- */

/* Adders that keep going after a failure and remember it, so that the
 * builders below read as the list of keys they are. */
typedef struct status_json {
	json_object *obj;
	bool failed;
} status_json;

static void put(status_json *j, const char *key, json_object *v)
{
	if (!v || !j->obj || json_object_object_add(j->obj, key, v) < 0) {
		json_object_put(v);
		j->failed = true;
	}
}

static void put_str(status_json *j, const char *key, const char *s)
{
	put(j, key, json_object_new_string(s ? s : ""));
}

static void put_bool(status_json *j, const char *key, bool b)
{
	put(j, key, json_object_new_boolean(b));
}

static void put_u64(status_json *j, const char *key, uint64_t v)
{
	put(j, key, json_object_new_uint64(v));
}

/* The object built, or NULL (and nothing leaked) if any key failed. */
static json_object *finish(status_json *j)
{
	if (j->failed) {
		json_object_put(j->obj);
		return NULL;
	}
	return j->obj;
}

static json_object *status_json_watch_paths(const Santa__StatusReply *st)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; arr && i < st->n_watch_paths; i++) {
		json_object *s = json_object_new_string(st->watch_paths[i]);

		if (!s || json_object_array_add(arr, s) < 0) {
			json_object_put(s);
			json_object_put(arr);
			return NULL;
		}
	}
	return arr;
}

static json_object *status_json_daemon(const Santa__StatusReply *st)
{
	status_json j = { json_object_new_object(), false };

	put_bool(&j, "driver_connected", st->driver_connected);
	put_str(&j, "mode", status_mode_name(st->mode));
	put_bool(&j, "transitive_rules", st->transitive_rules);
	put_str(&j, "log_type", st->log_type);
	put_bool(&j, "file_logging", st->file_logging);
	/* The original's watchdog and USB keys, kept so that scripts written
	 * for it keep parsing; santad has neither feature (see the docs). */
	put_u64(&j, "watchdog_cpu_events", 0);
	put_u64(&j, "watchdog_ram_events", 0);
	put(&j, "watchdog_cpu_peak", json_object_new_double(0));
	put(&j, "watchdog_ram_peak", json_object_new_double(0));
	put_bool(&j, "block_usb", false);
	put_str(&j, "remount_usb_mode", "");
	put_str(&j, "on_start_usb_options", "None");
	put_bool(&j, "fail_closed", st->fail_closed);
	put(&j, "watch_paths", status_json_watch_paths(st));
	return finish(&j);
}

static json_object *status_json_database(const Santa__StatusReply *st)
{
	status_json j = { json_object_new_object(), false };

	put_u64(&j, "binary_rules", st->binary_rules);
	put_u64(&j, "certificate_rules", st->certificate_rules);
	put_u64(&j, "teamid_rules", st->teamid_rules);
	put_u64(&j, "signingid_rules", st->signingid_rules);
	put_u64(&j, "cdhash_rules", st->cdhash_rules);
	put_u64(&j, "compiler_rules", st->compiler_rules);
	put_u64(&j, "transitive_rules", st->transitive_rule_count);
	put_u64(&j, "events_pending_upload", st->events_pending_upload);
	return finish(&j);
}

static json_object *status_json_sync(const Santa__StatusReply *st)
{
	status_json j = { json_object_new_object(), false };
	char full[64], rule[64];

	santactl_format_time(st->last_successful_full, full, sizeof(full));
	if (st->last_successful_rule)
		santactl_format_time(st->last_successful_rule, rule, sizeof(rule));
	else
		memcpy(rule, full, sizeof(rule));

	/* "null" as a string when unset is what the original prints. */
	put_str(&j, "server", st->sync_server && *st->sync_server ?
		st->sync_server : "null");
	put_bool(&j, "clean_required", st->clean_required);
	put_str(&j, "last_successful_full", full);
	put_str(&j, "last_successful_rule", rule);
	put_str(&j, "push_notifications",
		st->push_notifications ? "Connected" : "Disconnected");
	put_bool(&j, "bundle_scanning", st->bundle_scanning);
	/* Not in the original (its sync service is XPC's to start): how
	 * santasyncservice answered santad just now, when a server is set. */
	if (status_service_state(st, "santasyncservice"))
		put_str(&j, "service", status_service_state(st, "santasyncservice"));
	return finish(&j);
}

static json_object *status_json_static_rules(const Santa__StatusReply *st)
{
	status_json j = { json_object_new_object(), false };

	put_u64(&j, "rule_count", st->static_rule_count);
	return finish(&j);
}

/* File-access watch items are a macOS feature santad does not have. */
static json_object *status_json_watch_items(const Santa__StatusReply *st)
{
	status_json j = { json_object_new_object(), false };

	put_bool(&j, "enabled", false);
	return finish(&j);
}

static json_object *status_json_cache(const Santa__StatusReply *st)
{
	status_json j = { json_object_new_object(), false };

	put_u64(&j, "root_cache_count", st->root_cache_count);
	put_u64(&j, "non_root_cache_count", st->non_root_cache_count);
	return finish(&j);
}

char *santactl_status_json(const Santa__StatusReply *st)
{
	status_json j = { json_object_new_object(), false };
	char *text = NULL;

	put(&j, "daemon", status_json_daemon(st));
	put(&j, "database", status_json_database(st));
	put(&j, "static_rules", status_json_static_rules(st));
	put(&j, "sync", status_json_sync(st));
	put(&j, "watch_items", status_json_watch_items(st));
	put(&j, "cache", status_json_cache(st));
	if (!j.failed)
		text = strdup(json_object_to_json_string_ext(j.obj,
			JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
			JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j.obj);
	return text;
}
