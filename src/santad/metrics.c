/* SPDX-License-Identifier: Apache-2.0 */
/*
 * santad's metric registry, its snapshot as a MetricSet, and the export to
 * santametricservice. See metrics.h.
 *
 * The counters the decision path bumps are fixed arrays of atomics, indexed
 * by decision, reason and histogram bucket: no allocation, no lock, no
 * clock read. Everything with a name, a time or a string is made on the
 * main loop when a snapshot is taken. The original stamps each value with
 * its creation and last update; here a value is "created" at the first
 * snapshot that sees it (counters that were never bumped are left out, as
 * the original creates a cell on first use) and "updated" at the first
 * snapshot that sees it changed, so the decision path never reads a clock
 * for them.
 */
#include "metrics.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "log.h"
#include "metric.pb-c.h"
#include "metricset.h"
#include "santa-build.h"

#define N_DECISIONS 3                          /* santad_decision */
#define N_REASONS (SANTAD_REASON_NOTRUNNING + 1)

/* Upper bounds of the decision time histogram, in microseconds: from a
 * cache hit (a few µs) to a large file hashed near the deadline. */
static const uint64_t time_bounds_usec[] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
	100000, 250000, 500000, 1000000, 2500000, 5000000,
};
#define N_BOUNDS (sizeof(time_bounds_usec) / sizeof(time_bounds_usec[0]))

typedef struct histogram {
	_Atomic uint64_t buckets[N_BOUNDS + 1];
	_Atomic uint64_t sum_usec;
} histogram;

/* Bumped from any thread. */
static struct {
	_Atomic uint64_t execs[N_DECISIONS][N_REASONS];
	histogram decision_time[2];                   /* [cached] */
	_Atomic uint64_t gui_clients;
	_Atomic uint64_t syncs[2];                    /* [success] */
} hot;

void metrics_exec(santad_decision decision, santad_reason reason, bool cached,
		  uint64_t usec)
{
	histogram *h = &hot.decision_time[cached ? 1 : 0];
	size_t b = 0;

	if ((unsigned)decision < N_DECISIONS && (unsigned)reason < N_REASONS)
		atomic_fetch_add_explicit(&hot.execs[decision][reason], 1,
					  memory_order_relaxed);
	while (b < N_BOUNDS && usec > time_bounds_usec[b])
		b++;
	atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_usec, usec, memory_order_relaxed);
}

void metrics_set_gui_clients(uint64_t n)
{
	atomic_store_explicit(&hot.gui_clients, n, memory_order_relaxed);
}

void metrics_sync_result(bool success)
{
	atomic_fetch_add_explicit(&hot.syncs[success ? 1 : 0], 1, memory_order_relaxed);
}

static uint64_t load(const _Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

/* --- The main loop's state --- */

/* When a value was first seen, and when it last changed. */
typedef struct tracked {
	char *key;                /* metric name, '\x1f', field values */
	uint64_t fingerprint;
	int64_t created_usec;
	int64_t updated_usec;
} tracked;

static struct {
	bool started;
	santad *d;
	sd_event *ev;
	const ipc_trust *trust;
	char *path;                 /* the metric service's socket */
	bool exporting;             /* configured, and started */
	char error[512];            /* why not, when MetricURL is set */
	uint64_t interval_usec;

	ipc_conn *conn;
	bool ready;
	bool owed;                  /* an export could not be sent yet */
	bool lost;                  /* was connected once, then lost it */
	unsigned connect_failures;  /* in the current streak */
	uint64_t retry_usec;
	sd_event_source *tick, *retry;

	tracked *tracked;
	size_t n_tracked;
	int64_t boot_usec;          /* /proc/stat btime, for start times */
} M;

static int64_t wall_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Created/updated times of the value KEY, whose content is FINGERPRINT. */
static int track(const char *key, uint64_t fingerprint, int64_t now,
		 int64_t *ret_created, int64_t *ret_updated)
{
	tracked *t;

	for (size_t i = 0; i < M.n_tracked; i++) {
		t = &M.tracked[i];
		if (strcmp(t->key, key) != 0)
			continue;
		if (t->fingerprint != fingerprint) {
			t->fingerprint = fingerprint;
			t->updated_usec = now;
		}
		*ret_created = t->created_usec;
		*ret_updated = t->updated_usec;
		return 0;
	}
	t = realloc(M.tracked, (M.n_tracked + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	M.tracked = t;
	t = &M.tracked[M.n_tracked];
	t->key = strdup(key);
	if (!t->key)
		return -ENOMEM;
	M.n_tracked++;
	t->fingerprint = fingerprint;
	t->created_usec = t->updated_usec = now;
	*ret_created = *ret_updated = now;
	return 0;
}

/* --- Building a snapshot --- */

typedef struct snap {
	Santa__MetricSet *set;
	int64_t now;
	int err;
} snap;

#define FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static Santa__Metric *snap_metric(snap *s, const char *name, Santa__MetricType type,
				  const char *description, const char *const *fields)
{
	Santa__Metric *m = metric_set_add_metric(s->set, name, type, description, fields);

	if (!m)
		s->err = -ENOMEM;
	return m;
}

static Santa__MetricValue *snap_value(snap *s, Santa__Metric *m,
				      const char *const *fields, uint64_t fingerprint)
{
	int64_t created = s->now, updated = s->now;
	Santa__MetricValue *v;
	char key[512];
	size_t n;

	if (!m)
		return NULL;
	n = (size_t)snprintf(key, sizeof(key), "%s", m->name);
	for (size_t i = 0; fields && fields[i] && n < sizeof(key); i++)
		n += (size_t)snprintf(key + n, sizeof(key) - n, "\x1f%s", fields[i]);
	if (track(key, fingerprint, s->now, &created, &updated) < 0)
		s->err = -ENOMEM;
	v = metric_add_value(m, fields, created, updated);
	if (!v)
		s->err = -ENOMEM;
	return v;
}

static void snap_int64(snap *s, Santa__Metric *m, const char *const *fields, int64_t i)
{
	Santa__MetricValue *v = snap_value(s, m, fields, (uint64_t)i);

	if (v)
		metric_value_set_int64(v, i);
}

static void snap_double(snap *s, Santa__Metric *m, const char *const *fields, double d)
{
	uint64_t bits;
	Santa__MetricValue *v;

	memcpy(&bits, &d, sizeof(bits));
	v = snap_value(s, m, fields, bits);
	if (v)
		metric_value_set_double(v, d);
}

static void snap_string(snap *s, Santa__Metric *m, const char *str)
{
	uint64_t fp = 1469598103934665603ULL;          /* FNV-1a */
	Santa__MetricValue *v;

	for (const char *p = str; *p; p++)
		fp = (fp ^ (unsigned char)*p) * 1099511628211ULL;
	v = snap_value(s, m, NULL, fp);
	if (v && metric_value_set_string(v, str) < 0)
		s->err = -ENOMEM;
}

static void snap_constants(snap *s)
{
	const santa_config *cfg = santad_config(M.d);
	Santa__Metric *m;

	m = snap_metric(s, "/build/label", SANTA__METRIC_TYPE__METRIC_TYPE_CONSTANT_STRING,
			"Software version running", NULL);
	snap_string(s, m, SANTA_VERSION);
	m = snap_metric(s, "/santa/mode", SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_STRING,
			"Operating mode of Santa", NULL);
	snap_string(s, m, santa_client_mode_name(santad_client_mode(M.d)));
	m = snap_metric(s, "/santa/log_type", SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_STRING,
			"Where santad writes its event log", NULL);
	snap_string(s, m, santa_log_type_name(cfg->event_log_type));
}

static void snap_execs(snap *s)
{
	Santa__Metric *m;

	m = snap_metric(s, "/santa/executions", SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER,
			"Executions santad answered, by decision and reason",
			FIELDS("decision", "reason"));
	for (int d = SANTAD_DECISION_ALLOW; d < N_DECISIONS; d++) {
		for (int r = 0; r < N_REASONS; r++) {
			uint64_t n = load(&hot.execs[d][r]);

			if (n)
				snap_int64(s, m, FIELDS(santad_decision_name(d),
							santad_reason_name(r)), (int64_t)n);
		}
	}
}

static void snap_decision_time(snap *s)
{
	static const char *const cache_names[] = { "miss", "hit" };
	double bounds[N_BOUNDS];
	Santa__MetricValue *v;
	Santa__Metric *m;

	for (size_t b = 0; b < N_BOUNDS; b++)
		bounds[b] = (double)time_bounds_usec[b] / 1e6;
	m = snap_metric(s, "/santa/decision_time", SANTA__METRIC_TYPE__METRIC_TYPE_HISTOGRAM,
			"Time from an exec permission event to its answer, in seconds, "
			"answered from the decision cache (hit) or not (miss)",
			FIELDS("cache"));
	for (int c = 0; c < 2; c++) {
		histogram *h = &hot.decision_time[c];
		uint64_t counts[N_BOUNDS + 1], total = 0;

		for (size_t b = 0; b <= N_BOUNDS; b++)
			total += counts[b] = load(&h->buckets[b]);
		if (total == 0)
			continue;
		v = snap_value(s, m, FIELDS(cache_names[c]), total);
		if (v && metric_value_set_histogram(v, bounds, N_BOUNDS, counts,
						    (double)load(&h->sum_usec) / 1e6) < 0)
			s->err = -ENOMEM;
	}
}

/* A counter with one field, from (value name, count) pairs; zero counts
 * are left out. */
static void snap_counter1(snap *s, const char *name, const char *desc, const char *field,
			  const char *const *values, const uint64_t *counts, size_t n)
{
	Santa__Metric *m = snap_metric(s, name, SANTA__METRIC_TYPE__METRIC_TYPE_COUNTER, desc,
				       FIELDS(field));

	for (size_t i = 0; i < n; i++)
		if (counts[i])
			snap_int64(s, m, FIELDS(values[i]), (int64_t)counts[i]);
}

static void snap_gauge(snap *s, const char *name, const char *desc, uint64_t value)
{
	Santa__Metric *m = snap_metric(s, name, SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_INT64,
				       desc, NULL);

	snap_int64(s, m, NULL, (int64_t)value);
}

static void snap_counters(snap *s)
{
	const santad_counters *c = santad_get_counters(M.d);
	uint64_t events = load(&c->exec_events);
	uint64_t hits = load(&c->exec_cache_hits);
	uint64_t n;

	snap_counter1(s, "/santa/cache_lookups",
		      "Exec permission events looked up in the decision cache", "result",
		      (const char *const[]){ "hit", "miss" },
		      (const uint64_t[]){ hits, events > hits ? events - hits : 0 }, 2);
	snap_counter1(s, "/santa/fallback_decisions",
		      "Execs answered without a policy decision, as FailClosed says: "
		      "the deadline passed, or the file could not be read", "cause",
		      (const char *const[]){ "timeout", "unreadable" },
		      (const uint64_t[]){ load(&c->exec_timeouts),
					  load(&c->exec_unreadable) }, 2);
	n = load(&c->log_dropped);
	snap_counter1(s, "/santa/log_lines_dropped",
		      "Event log lines dropped because the log writer fell behind", "log",
		      (const char *const[]){ "event" }, &n, 1);
	n = load(&c->queue_overflows);
	snap_counter1(s, "/santa/fanotify_overflows",
		      "Times the kernel's fanotify queue overflowed", "queue",
		      (const char *const[]){ "fanotify" }, &n, 1);
	snap_counter1(s, "/santa/syncs", "Syncs with the sync server, by result", "result",
		      (const char *const[]){ "failure", "success" },
		      (const uint64_t[]){ load(&hot.syncs[0]), load(&hot.syncs[1]) }, 2);
}

static void snap_rules(snap *s)
{
	santad_rule_counts rc = { 0 };
	Santa__Metric *m;
	int r;

	r = santad_rules_count(M.d, &rc);
	if (r < 0)
		log_debug("Counting rules for the metrics failed: %s", strerror(-r));
	m = snap_metric(s, "/santa/rules", SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_INT64,
			"Rules in the database, by type", FIELDS("rule_type"));
	if (r == 0) {
		snap_int64(s, m, FIELDS("binary"), (int64_t)rc.binary);
		snap_int64(s, m, FIELDS("certificate"), (int64_t)rc.certificate);
		snap_int64(s, m, FIELDS("teamid"), (int64_t)rc.teamid);
		snap_int64(s, m, FIELDS("signingid"), (int64_t)rc.signingid);
		snap_int64(s, m, FIELDS("cdhash"), (int64_t)rc.cdhash);
		snap_int64(s, m, FIELDS("compiler"), (int64_t)rc.compiler);
		snap_int64(s, m, FIELDS("transitive"), (int64_t)rc.transitive);
	}
	snap_gauge(s, "/santa/static_rules", "Rules from the StaticRules setting",
		   santad_static_rule_count(M.d));
}

static void snap_state(snap *s)
{
	uint64_t events = 0;

	snap_gauge(s, "/santa/cache_size", "Decisions in santad's decision cache",
		   santad_cache_count(M.d));
	if (santad_events_count(M.d, &events) < 0)
		events = 0;
	snap_gauge(s, "/santa/events_pending_upload",
		   "Events stored for the sync server, not yet uploaded", events);
	snap_gauge(s, "/santa/gui_clients", "santagui processes connected to santad",
		   load(&hot.gui_clients));
}

/* --- Processes --- */

typedef struct proc_sample {
	uint64_t vsize;
	uint64_t rss;
	double utime, stime;        /* seconds */
	int64_t start_usec;         /* since the epoch */
} proc_sample;

static int64_t boot_time_usec(void)
{
	char line[256];
	long long btime = 0;
	FILE *f;

	if (M.boot_usec)
		return M.boot_usec;
	f = fopen("/proc/stat", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lld", &btime) == 1)
			break;
	fclose(f);
	M.boot_usec = btime * 1000000;
	return M.boot_usec;
}

static int proc_read(pid_t pid, proc_sample *ret)
{
	unsigned long long utime, stime, start, vsize;
	long long rss;
	char path[64], buf[1024], *p;
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: the
	 * fields we want come after its last ')'. */
	p = strrchr(buf, ')');
	if (!p || tick <= 0 || page <= 0 ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d "
		   "%*d %*d %*d %*d %llu %llu %lld", &utime, &stime, &start, &vsize, &rss) != 5)
		return -EINVAL;
	ret->utime = (double)utime / (double)tick;
	ret->stime = (double)stime / (double)tick;
	ret->start_usec = boot_time_usec() +
			  (int64_t)(start * 1000000ULL / (unsigned long long)tick);
	ret->vsize = vsize;
	ret->rss = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
	return 0;
}

static void snap_procs(snap *s)
{
	struct proc_id { const char *name; pid_t pid; } procs[2] = { { "santad", getpid() } };
	Santa__Metric *vsz, *rss, *cpu, *birth;
	size_t n = 1;

	if (M.ready && M.conn)
		procs[n++] = (struct proc_id){ "santametricservice", ipc_conn_peer(M.conn)->pid };
	vsz = snap_metric(s, "/proc/memory/virtual_size",
			  SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_INT64,
			  "The virtual memory size of the process, in bytes", FIELDS("process"));
	rss = snap_metric(s, "/proc/memory/resident_size",
			  SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_INT64,
			  "The resident set size of the process, in bytes", FIELDS("process"));
	cpu = snap_metric(s, "/proc/cpu_usage", SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_DOUBLE,
			  "CPU time the process used, in seconds", FIELDS("process", "mode"));
	birth = snap_metric(s, "/proc/birth_timestamp",
			    SANTA__METRIC_TYPE__METRIC_TYPE_GAUGE_INT64,
			    "Start time of the process, in microseconds since the epoch",
			    FIELDS("process"));
	for (size_t i = 0; i < n; i++) {
		proc_sample ps = { 0 };

		if (proc_read(procs[i].pid, &ps) < 0)
			continue;
		snap_int64(s, vsz, FIELDS(procs[i].name), (int64_t)ps.vsize);
		snap_int64(s, rss, FIELDS(procs[i].name), (int64_t)ps.rss);
		snap_double(s, cpu, FIELDS(procs[i].name, "user"), ps.utime);
		snap_double(s, cpu, FIELDS(procs[i].name, "system"), ps.stime);
		snap_int64(s, birth, FIELDS(procs[i].name), ps.start_usec);
	}
}

/* hostname and username, as the original's root labels, then
 * MetricExtraLabels ("key=value"; an empty value removes the label). */
static void snap_labels(snap *s)
{
	const santa_config *cfg = M.started ? santad_config(M.d) : NULL;
	struct passwd *pw = getpwuid(geteuid());
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	if (metric_set_add_label(s->set, "hostname", host) < 0 ||
	    metric_set_add_label(s->set, "username", pw ? pw->pw_name : "root") < 0)
		s->err = -ENOMEM;
	for (size_t i = 0; cfg && cfg->metric_extra_labels && cfg->metric_extra_labels[i]; i++) {
		const char *kv = cfg->metric_extra_labels[i], *eq = strchr(kv, '=');
		Santa__MetricSet *set = s->set;
		size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);

		for (size_t j = 0; j < set->n_root_labels; j++) {
			if (strlen(set->root_labels[j]->key) != klen ||
			    strncmp(set->root_labels[j]->key, kv, klen) != 0)
				continue;
			protobuf_c_message_free_unpacked(&set->root_labels[j]->base, NULL);
			memmove(&set->root_labels[j], &set->root_labels[j + 1],
				(set->n_root_labels - j - 1) * sizeof(*set->root_labels));
			set->n_root_labels--;
			break;
		}
		if (eq && eq[1]) {
			char key[256];

			snprintf(key, sizeof(key), "%.*s", (int)klen, kv);
			if (metric_set_add_label(set, key, eq + 1) < 0)
				s->err = -ENOMEM;
		}
	}
}

static int snapshot(Santa__MetricSet **ret)
{
	snap s = { .now = wall_usec() };

	s.set = metric_set_new(s.now);
	if (!s.set)
		return -ENOMEM;
	snap_labels(&s);
	if (M.started) {
		snap_constants(&s);
		snap_execs(&s);
		snap_decision_time(&s);
		snap_counters(&s);
		snap_rules(&s);
		snap_state(&s);
	}
	snap_procs(&s);
	if (s.err < 0) {
		metric_set_free(s.set);
		return s.err;
	}
	*ret = s.set;
	return 0;
}

int metrics_rawjson(char **ret_text)
{
	Santa__MetricSet *set;
	char err[512] = "";
	int r;

	r = snapshot(&set);
	if (r < 0)
		return r;
	/* Our own set, but a bad name or label (MetricExtraLabels) must not
	 * produce text the formats promise never to write. */
	r = metric_set_check(set, err, sizeof(err));
	if (r < 0)
		log_warning("The metric set is not valid, not sent: %s", err);
	else
		r = metric_format_render(METRIC_FORMAT_RAWJSON, set, ret_text, NULL);
	metric_set_free(set);
	return r;
}

/* --- Export --- */

#define RETRY_FIRST_USEC (500 * 1000ULL)
#define RETRY_MAX_USEC (10 * 1000000ULL)

static void export_connect(void);

static int retry_fired(sd_event_source *src, uint64_t usec, void *userdata)
{
	export_connect();
	return 0;
}

static void schedule_retry(void)
{
	uint64_t now;

	if (!M.exporting)
		return;
	M.retry_usec = M.retry_usec ? M.retry_usec * 2 : RETRY_FIRST_USEC;
	if (M.retry_usec > RETRY_MAX_USEC)
		M.retry_usec = RETRY_MAX_USEC;
	sd_event_now(M.ev, CLOCK_MONOTONIC, &now);
	if (M.retry) {
		sd_event_source_set_time(M.retry, now + M.retry_usec);
		sd_event_source_set_enabled(M.retry, SD_EVENT_ONESHOT);
		return;
	}
	if (sd_event_add_time(M.ev, &M.retry, CLOCK_MONOTONIC, now + M.retry_usec, 0,
			      retry_fired, NULL) < 0)
		log_warning("Scheduling a reconnect to santametricservice failed; the "
			    "next export tries again");
}

static void connect_failed(const char *why)
{
	if (M.connect_failures++ == 0)
		log_warning("Connecting to santametricservice at \"%s\" failed, retrying "
			    "quietly: %s", M.path, why);
	schedule_retry();
}

/* Send a snapshot; on failure close the connection (which reconnects) and
 * owe the export to the next connection. */
static void export_send(void)
{
	Santa__MetricSet *set;
	char err[512] = "";
	int r;

	r = snapshot(&set);
	if (r < 0) {
		log_warning_errno(r, "Taking a metric snapshot failed, skipping this export");
		return;
	}
	r = metric_set_check(set, err, sizeof(err));
	if (r < 0) {
		log_warning("The metric set is not valid, not sent: %s", err);
		metric_set_free(set);
		return;
	}
	r = ipc_send_oneway(M.conn, 0, &set->base, -1);
	metric_set_free(set);
	if (r < 0) {
		log_warning("Sending metrics to santametricservice failed: %s; reconnecting",
			    ipc_strerror(r));
		M.owed = true;
		ipc_conn_close(M.conn);
		return;
	}
	M.owed = false;
}

static void conn_ready(ipc_conn *c, int err, void *userdata)
{
	if (err < 0)
		return;     /* conn_closed follows with the reason */
	if (M.lost || M.connect_failures > 0)
		log_notice("Connected to santametricservice again, after %u failed attempt(s)",
			   M.connect_failures);
	else
		log_info("Connected to santametricservice at \"%s\"", M.path);
	M.ready = true;
	M.connect_failures = 0;
	M.retry_usec = 0;
	if (M.owed)
		export_send();
}

static void conn_closed(ipc_conn *c, int err, const char *reason, void *userdata)
{
	bool was_ready = M.ready;

	if (c != M.conn)
		return;
	M.conn = NULL;
	M.ready = false;
	ipc_conn_unref(c);
	if (!M.exporting)
		return;
	if (was_ready) {
		log_warning("Lost the connection to santametricservice: %s; reconnecting",
			    reason ? reason : ipc_strerror(err));
		M.lost = true;
		M.owed = true;
		schedule_retry();
		return;
	}
	connect_failed(reason ? reason : ipc_strerror(err));
}

static void export_connect(void)
{
	ipc_conn_opts opts = {
		.accept_roles = IPC_ROLE_BIT(IPC_ROLE_METRICSERVICE),
		.on_close = conn_closed,
	};
	int r;

	if (M.conn || !M.exporting)
		return;
	r = ipc_connect(M.ev, M.path, M.trust, &santa__metric_service__descriptor, &opts,
			conn_ready, &M.conn);
	if (r < 0) {
		M.conn = NULL;
		connect_failed(ipc_strerror(r));
	}
}

static int tick_fired(sd_event_source *src, uint64_t usec, void *userdata)
{
	sd_event_source_set_time(src, usec + M.interval_usec);
	if (M.ready) {
		export_send();
		return 0;
	}
	M.owed = true;
	/* Reconnect now rather than wait for the backoff, if none is under
	 * way: the service may be back. */
	if (!M.conn && !(M.retry && sd_event_source_get_enabled(M.retry, NULL) > 0))
		export_connect();
	return 0;
}

static int export_check(const santa_config *cfg, const char *socket_path)
{
	int r;

	if (!cfg->metric_url || !*cfg->metric_url)
		return 0;
	r = metric_export_check(cfg->metric_format, cfg->metric_url, NULL, M.error,
				sizeof(M.error));
	if (r < 0) {
		/* The message starts with the key it is about: say where it is. */
		const char *key = strncmp(M.error, "MetricFormat", 12) ? "MetricURL" :
				  "MetricFormat";
		char where[PATH_MAX + 32], msg[sizeof(M.error)];

		snprintf(msg, sizeof(msg), "%s", M.error);
		snprintf(M.error, sizeof(M.error), "%s%s",
			 santa_config_where(cfg, key, where, sizeof(where)), msg);
		return r;
	}
	if (!socket_path) {
		snprintf(M.error, sizeof(M.error), "santametricservice is not available");
		return -ENOENT;
	}
	return 1;
}

int metrics_start(santad *d, sd_event *ev, const ipc_trust *trust,
		  const char *socket_path)
{
	const santa_config *cfg = santad_config(d);
	uint64_t now;
	int r;

	M.started = true;
	M.d = d;
	M.ev = sd_event_ref(ev);
	M.trust = trust;
	r = export_check(cfg, socket_path);
	if (r < 0) {
		log_error("Metrics will not be exported: %s", M.error);
		return 0;
	}
	if (r == 0)
		return 0;
	M.path = strdup(socket_path);
	if (!M.path)
		return -ENOMEM;
	M.interval_usec = (uint64_t)(cfg->metric_export_interval ? cfg->metric_export_interval
								   : 30) * 1000000ULL;
	sd_event_now(ev, CLOCK_MONOTONIC, &now);
	r = sd_event_add_time(ev, &M.tick, CLOCK_MONOTONIC, now + M.interval_usec, 0,
			      tick_fired, NULL);
	if (r < 0)
		return r;
	sd_event_source_set_enabled(M.tick, SD_EVENT_ON);
	M.exporting = true;
	log_info("Exporting metrics every %u s through santametricservice to \"%s\"",
		 (unsigned)(M.interval_usec / 1000000), cfg->metric_url);
	export_connect();
	return 0;
}

void metrics_stop(void)
{
	M.exporting = false;
	M.tick = sd_event_source_disable_unref(M.tick);
	M.retry = sd_event_source_disable_unref(M.retry);
	if (M.conn) {
		ipc_conn *c = M.conn;

		M.conn = NULL;
		ipc_conn_unref(c);
	}
	M.ready = false;
	for (size_t i = 0; i < M.n_tracked; i++)
		free(M.tracked[i].key);
	free(M.tracked);
	M.tracked = NULL;
	M.n_tracked = 0;
	free(M.path);
	M.path = NULL;
	M.ev = sd_event_unref(M.ev);
	M.d = NULL;
	M.error[0] = '\0';
	M.started = false;
}

const char *metrics_error(void)
{
	return M.error[0] ? M.error : NULL;
}

const char *metrics_export_state(void)
{
	if (M.error[0])
		return "misconfigured";
	if (!M.exporting)
		return "not exporting (no MetricURL)";
	if (M.ready)
		return "exporting";
	return M.connect_failures > 0 ? "not answering" : "connecting";
}
