/* SPDX-License-Identifier: Apache-2.0 */
#include "recorder.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "elfhead.h"
#include "eventlog.h"
#include "gui.h"
#include "log.h"
#include "procinfo.h"
#include "tty.h"

#define LOADER_SLOTS 1024u
#define WAITING_MAX 1024u

/* The ELF interpreter a pid's last exec record named: the file its next
 * record is, when that record is the interpreter's (recorder.h). */
typedef struct loader_slot {
	pid_t pid;
	bool armed;
	uint64_t dev, ino;
	uint64_t mono_usec;
} loader_slot;

struct recorder {
	santad_counters *counters;
	gui *_Atomic gui;
	pthread_t thread;
	bool started;
	atomic_bool stop_requested;     /* read without the lock by out_flush */

	/* The source of records the thread reads itself (recorder_set_source),
	 * guarded by its own lock, which the thread holds while it reads. */
	pthread_mutex_t source_lock;
	int source_fd;
	recorder_source_fn source_read;
	void *source_ctx;

	pthread_mutex_t lock;           /* guards everything below */
	int wake_fd;                    /* eventfd: written to wake the thread */
	bool sleeping;                  /* the thread waits in poll() */
	exec_record *head, *tail;
	size_t queued;
	bool stopping;
	bool reopen;
	bool reconfigure;
	santa_log_type new_type;
	char *new_path;
	Santa__Event *events[RECORDER_EVENT_LIMIT];
	size_t n_events;
	int event_fd;

	/* The recorder thread's own state. */
	santa_log_type type;
	char *path;
	int log_fd;
	bool syslog_open;
	exec_record *waiting[WAITING_MAX];
	size_t n_waiting;
	loader_slot loaders[LOADER_SLOTS];
	char *out;                      /* lines of the current batch */
	size_t out_len, out_cap;
	uint64_t write_errors;
};

static uint64_t now_usec(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

exec_record *exec_record_new(record_kind kind, pid_t pid)
{
	exec_record *rec = calloc(1, sizeof(*rec));

	if (!rec)
		return NULL;
	rec->kind = kind;
	rec->pid = pid;
	clock_gettime(CLOCK_REALTIME, &rec->when);
	rec->mono_usec = now_usec(CLOCK_MONOTONIC);
	return rec;
}

void exec_record_free(exec_record *rec)
{
	if (!rec)
		return;
	free(rec->path);
	free(rec->interp);
	free(rec->custom_msg);
	free(rec->custom_url);
	free(rec->fields);
	policy_unref(rec->pol);
	free(rec);
}

/* The interpreter a script names on its #! line (HEAD, N bytes read from
 * its start), or false when it is not a script. */
static bool script_interpreter(const char *head, size_t n, char *buf, size_t size)
{
	const char *p = head + 2, *end = head + n;
	size_t len;

	if (n < 2 || head[0] != '#' || head[1] != '!')
		return false;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	for (len = 0; p + len < end && !strchr(" \t\n", p[len]) && p[len]; len++)
		;
	if (len >= size)
		len = size - 1;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return true;
}

/* The device and inode of PATH as process PID finds it (its root may not
 * be ours: a container); our own when PID is gone. */
static bool stat_in_root_of(pid_t pid, const char *path, struct stat *st)
{
	char in_root[PATH_MAX + 32];

	if (snprintf(in_root, sizeof(in_root), "/proc/%d/root%s", (int)pid, path) <
	    (int)sizeof(in_root) && stat(in_root, st) == 0)
		return true;
	return stat(path, st) == 0;
}

bool exec_file_names_interp(int fd)
{
	uint8_t head[sizeof(Elf64_Ehdr)];
	ssize_t n = pread(fd, head, sizeof(head), 0);
	elf_info e;

	if (n >= 2 && head[0] == '#' && head[1] == '!')
		return true;
	return n > 0 && elf_parse_header(head, (size_t)n, &e) &&
	       elf_read_interp(fd, &e, NULL, 0) > 0;
}

int exec_record_set_file(exec_record *rec, int fd, bool no_interp)
{
	char head[256], buf[PATH_MAX];
	struct stat st;
	elf_info e;
	ssize_t n;

	free(rec->path);
	if (!(rec->path = procinfo_fd_path(fd)))
		return -ENOENT;
	if (no_interp || (n = pread(fd, head, sizeof(head), 0)) <= 0)
		return 0;
	if (script_interpreter(head, (size_t)n, buf, sizeof(buf)))
		return (rec->interp = strdup(buf)) ? 0 : -ENOMEM;
	if (elf_parse_header((const uint8_t *)head, (size_t)n, &e) &&
	    elf_read_interp(fd, &e, buf, sizeof(buf)) == 1 &&
	    stat_in_root_of(rec->pid, buf, &st)) {
		rec->has_loader = true;
		rec->loader_dev = st.st_dev;
		rec->loader_ino = st.st_ino;
	}
	return 0;
}

int recorder_new(santad_counters *counters, recorder **ret)
{
	recorder *r = calloc(1, sizeof(*r));

	*ret = NULL;
	if (!r)
		return -ENOMEM;
	r->counters = counters;
	r->log_fd = -1;
	r->type = SANTA_LOG_NULL;
	r->source_fd = -1;
	pthread_mutex_init(&r->source_lock, NULL);
	pthread_mutex_init(&r->lock, NULL);
	r->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->event_fd < 0 || r->wake_fd < 0) {
		int err = -errno;

		recorder_free(r);
		return err;
	}
	*ret = r;
	return 0;
}

recorder *recorder_free(recorder *r)
{
	if (!r)
		return NULL;
	recorder_stop(r);
	while (r->head) {
		exec_record *rec = r->head;

		r->head = rec->next;
		exec_record_free(rec);
	}
	for (size_t i = 0; i < r->n_waiting; i++)
		exec_record_free(r->waiting[i]);
	for (size_t i = 0; i < r->n_events; i++)
		recorder_event_free(r->events[i]);
	if (r->log_fd >= 0)
		close(r->log_fd);
	if (r->event_fd >= 0)
		close(r->event_fd);
	if (r->wake_fd >= 0)
		close(r->wake_fd);
	if (r->syslog_open)
		closelog();
	free(r->path);
	free(r->new_path);
	free(r->out);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->source_lock);
	free(r);
	return NULL;
}

/* Wake the thread if it waits (the lock held). */
static void wake_locked(recorder *r)
{
	if (r->sleeping) {
		(void)!eventfd_write(r->wake_fd, 1);
		r->sleeping = false;
	}
}

static int open_log(const char *path)
{
	/* O_NONBLOCK: a log that is a FIFO or a socket nobody reads must not
	 * hold the recorder when santad is asked to stop (out_flush). */
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		      0640);

	return fd < 0 ? -errno : fd;
}

int recorder_configure(recorder *r, santa_log_type type, const char *path)
{
	char *copy = NULL;

	/* Try the file here, so that a bad path is reported to whoever
	 * configured it rather than only logged later. */
	if (type == SANTA_LOG_FILE || type == SANTA_LOG_JSON) {
		int fd = open_log(path);

		if (fd < 0)
			return fd;
		close(fd);
	}
	if (path && !(copy = strdup(path)))
		return -ENOMEM;
	pthread_mutex_lock(&r->lock);
	free(r->new_path);
	r->new_path = copy;
	r->new_type = type;
	r->reconfigure = true;
	if (!r->started) {
		/* Not running yet: apply now, so the first line goes there. */
		r->reconfigure = false;
		free(r->path);
		r->path = r->new_path;
		r->new_path = NULL;
		r->type = type;
	}
	wake_locked(r);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

void recorder_set_gui(recorder *r, gui *g)
{
	atomic_store(&r->gui, g);
}

void recorder_reopen(recorder *r)
{
	pthread_mutex_lock(&r->lock);
	r->reopen = true;
	wake_locked(r);
	pthread_mutex_unlock(&r->lock);
}

void recorder_set_source(recorder *r, int fd, recorder_source_fn read, void *ctx)
{
	/* Taken only while the thread does not read the old source. */
	pthread_mutex_lock(&r->source_lock);
	r->source_fd = fd;
	r->source_read = read;
	r->source_ctx = ctx;
	pthread_mutex_unlock(&r->source_lock);
	/* Polled from now on (a thread in poll() on the old one comes back
	 * and polls the new one). */
	(void)!eventfd_write(r->wake_fd, 1);
}

bool recorder_push(recorder *r, exec_record *rec)
{
	bool denial = rec->kind == RECORD_EXEC_DENIED || rec->kind == RECORD_LINE;
	size_t limit = denial ? RECORDER_QUEUE_LIMIT : RECORDER_ALLOW_LIMIT;
	bool ok;

	pthread_mutex_lock(&r->lock);
	ok = r->queued < limit && !r->stopping;
	if (ok) {
		rec->next = NULL;
		if (r->tail)
			r->tail->next = rec;
		else
			r->head = rec;
		r->tail = rec;
		r->queued++;
		wake_locked(r);
	}
	pthread_mutex_unlock(&r->lock);
	if (!ok)
		atomic_fetch_add(&r->counters->log_dropped, 1);
	return ok;
}

bool recorder_log_line(recorder *r, const eventlog_field *fields, size_t n)
{
	exec_record *rec = exec_record_new(RECORD_LINE, 0);
	size_t size = 0;
	char *p;

	if (!rec || n > RECORDER_LINE_FIELDS_MAX)
		goto drop;
	for (size_t i = 0; i < n; i++)
		size += strlen(fields[i].key) + strlen(fields[i].value ? fields[i].value : "") + 2;
	rec->fields = p = malloc(size ? size : 1);
	if (!p)
		goto drop;
	for (size_t i = 0; i < n; i++) {
		p = stpcpy(p, fields[i].key) + 1;
		p = stpcpy(p, fields[i].value ? fields[i].value : "") + 1;
	}
	rec->n_fields = n;
	if (recorder_push(r, rec))
		return true;
	exec_record_free(rec);
	return false;
drop:
	exec_record_free(rec);
	atomic_fetch_add(&r->counters->log_dropped, 1);
	return false;
}

/* --- output --- */

static void out_append(recorder *r, const char *line)
{
	size_t n = strlen(line);

	if (r->out_len + n > r->out_cap) {
		size_t cap = r->out_cap ? r->out_cap : 65536;
		char *p;

		while (cap < r->out_len + n)
			cap *= 2;
		p = realloc(r->out, cap);
		if (!p) {
			atomic_fetch_add(&r->counters->log_dropped, 1);
			return;
		}
		r->out = p;
		r->out_cap = cap;
	}
	memcpy(r->out + r->out_len, line, n);
	r->out_len += n;
}

/* Wait until the log can take more, or give up: false when santad is
 * stopping and the reader has not moved for RECORDER_STOP_WAIT_USEC. */
static bool wait_writable(recorder *r, uint64_t *stuck_since)
{
	struct pollfd pfd = { .fd = r->log_fd, .events = POLLOUT };
	uint64_t now = now_usec(CLOCK_MONOTONIC);

	if (!*stuck_since)
		*stuck_since = now;
	if (atomic_load(&r->stop_requested) && now - *stuck_since >= RECORDER_STOP_WAIT_USEC)
		return false;
	(void)poll(&pfd, 1, 100);
	return true;
}

static void out_flush(recorder *r)
{
	uint64_t stuck_since = 0;
	size_t off = 0;

	while (off < r->out_len && r->log_fd >= 0) {
		ssize_t n = write(r->log_fd, r->out + off, r->out_len - off);

		if (n > 0) {
			off += (size_t)n;
			stuck_since = 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		/* A reader that does not read (a FIFO, a stuck collector):
		 * queued lines wait here, and the queue behind them fills,
		 * allows first; the decisions never wait for it. */
		if (n < 0 && errno == EAGAIN && wait_writable(r, &stuck_since))
			continue;
		/* A full disk (or a reader stuck while santad stops) must not
		 * stop the daemon; say so once in a while and go on without
		 * these lines. */
		if (r->write_errors++ % 1000 == 0)
			log_warning_errno(n < 0 ? -errno : -EIO,
					  "Writing the event log \"%s\" failed, dropping lines",
					  r->path);
		atomic_fetch_add(&r->counters->log_dropped, 1);
		break;
	}
	r->out_len = 0;
}

/* Write LINE (taken; NULL: it could not be made), already in the log's
 * format: a whole line for a file, the bare key=value pairs for syslog. */
static void emit_formatted(recorder *r, char *line)
{
	if (!line) {
		atomic_fetch_add(&r->counters->log_dropped, 1);
		return;
	}
	if (r->type == SANTA_LOG_SYSLOG)
		syslog(LOG_INFO, "%s", line);
	else
		out_append(r, line);
	free(line);
	atomic_fetch_add(&r->counters->log_lines, 1);
}

static void emit_line(recorder *r, const eventlog_exec *e)
{
	switch (r->type) {
	case SANTA_LOG_FILE:
		emit_formatted(r, eventlog_format_file_line(e));
		break;
	case SANTA_LOG_JSON:
		emit_formatted(r, eventlog_format_json_line(e));
		break;
	case SANTA_LOG_SYSLOG:
		emit_formatted(r, eventlog_format_kv(e));
		break;
	default:
		break;
	}
}

/* A RECORD_LINE's line, from the fields recorder_log_line packed. */
static void emit_fields(recorder *r, const exec_record *rec)
{
	eventlog_field f[RECORDER_LINE_FIELDS_MAX];
	const char *p = rec->fields;

	for (size_t i = 0; i < rec->n_fields; i++) {
		f[i].key = p;
		p += strlen(p) + 1;
		f[i].value = p;
		p += strlen(p) + 1;
	}
	switch (r->type) {
	case SANTA_LOG_FILE:
		emit_formatted(r, eventlog_format_fields_file_line(&rec->when, f, rec->n_fields));
		break;
	case SANTA_LOG_JSON:
		emit_formatted(r, eventlog_format_fields_json_line(&rec->when, f, rec->n_fields));
		break;
	case SANTA_LOG_SYSLOG:
		emit_formatted(r, eventlog_format_fields_kv(f, rec->n_fields));
		break;
	default:
		break;
	}
}

static void apply_config(recorder *r)
{
	int fd;

	if (r->reconfigure) {
		free(r->path);
		r->path = r->new_path;
		r->new_path = NULL;
		r->type = r->new_type;
		r->reconfigure = false;
		r->reopen = true;
	}
	if (!r->reopen)
		return;
	r->reopen = false;
	if (r->log_fd >= 0)
		close(r->log_fd);
	r->log_fd = -1;
	if (r->type == SANTA_LOG_SYSLOG && !r->syslog_open) {
		openlog("santad", LOG_NDELAY, LOG_DAEMON);
		r->syslog_open = true;
	}
	if (r->type != SANTA_LOG_FILE && r->type != SANTA_LOG_JSON)
		return;
	fd = open_log(r->path);
	if (fd < 0)
		log_error_errno(fd, "Opening the event log \"%s\" failed, lines are dropped "
				"until the next reload", r->path);
	r->log_fd = fd;
}

/* --- building lines --- */

static void fill_line(exec_record *rec, const proc_info *pi, char *sha_hex,
		      const char *args, eventlog_exec *e)
{
	memset(e, 0, sizeof(*e));
	e->when = rec->when;
	e->decision = rec->decision;
	e->reason = rec->reason;
	e->explain = rec->explain;
	if (rec->has_sha256) {
		santa_hex(rec->sha256, SANTA_SHA256_LEN, sha_hex);
		e->sha256 = sha_hex;
	}
	e->pid = rec->pid;
	e->ppid = pi->ppid;
	e->uid = pi->uid;
	e->user = pi->user;
	e->gid = pi->gid;
	e->group = pi->group;
	e->mode = rec->pol && rec->pol->mode == SANTA_MODE_LOCKDOWN ? 'L' : 'M';
	e->path = rec->path;
	e->args = args;
}

static void log_exec(recorder *r, exec_record *rec, const proc_info *pi, const char *args)
{
	char sha_hex[SANTA_SHA256_HEX_LEN + 1];
	eventlog_exec e;

	fill_line(rec, pi, sha_hex, args, &e);
	emit_line(r, &e);
}

/* --- sync events --- */

/* santa__event__init() points every string at protobuf-c's static empty
 * string: only what build_event allocated may be freed. */
static void free_str(char *s)
{
	if (s != protobuf_c_empty_string)
		free(s);
}

void recorder_event_free(Santa__Event *ev)
{
	if (!ev)
		return;
	free_str(ev->file_sha256);
	free_str(ev->file_path);
	free_str(ev->file_name);
	free_str(ev->executing_user);
	free_str(ev->decision);
	free_str(ev->parent_name);
	free_str(ev->custom_msg);
	free_str(ev->custom_url);
	procinfo_strv_free(ev->logged_in_users);
	procinfo_strv_free(ev->current_sessions);
	free(ev);
}

static char *xstrdup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static int event_fill_file(Santa__Event *ev, exec_record *rec)
{
	const char *path = rec->path;
	const char *slash = path ? strrchr(path, '/') : NULL;
	char hex[SANTA_SHA256_HEX_LEN + 1] = "";

	if (rec->has_sha256)
		santa_hex(rec->sha256, SANTA_SHA256_LEN, hex);
	ev->file_sha256 = strdup(hex);
	/* The sync protocol's file_path is the directory, file_name the rest. */
	ev->file_path = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) :
		       strdup("");
	ev->file_name = strdup(slash ? slash + 1 : path ? path : "");
	if (!ev->file_sha256 || !ev->file_path || !ev->file_name)
		return -ENOMEM;
	return 0;
}

static Santa__Event *build_event(exec_record *rec, const proc_info *pi)
{
	Santa__Event *ev = calloc(1, sizeof(*ev));
	verdict v = { .decision = rec->decision, .reason = rec->reason };
	char **users = NULL, **sessions = NULL;

	if (!ev)
		return NULL;
	santa__event__init(ev);
	ev->execution_time = (double)rec->when.tv_sec + (double)rec->when.tv_nsec / 1e9;
	ev->pid = rec->pid;
	ev->ppid = pi->ppid;
	if (event_fill_file(ev, rec) < 0 ||
	    !(ev->executing_user = xstrdup_or_empty(pi->user)) ||
	    !(ev->decision = strdup(policy_event_decision(&v))) ||
	    !(ev->parent_name = xstrdup_or_empty(pi->parent_comm)) ||
	    (rec->custom_msg && !(ev->custom_msg = strdup(rec->custom_msg))) ||
	    (rec->custom_url && !(ev->custom_url = strdup(rec->custom_url))))
		goto fail;
	if (procinfo_sessions(&users, &sessions) == 0) {
		ev->logged_in_users = users;
		ev->current_sessions = sessions;
		for (; users[ev->n_logged_in_users]; ev->n_logged_in_users++)
			;
		for (; sessions[ev->n_current_sessions]; ev->n_current_sessions++)
			;
	}
	return ev;
fail:
	recorder_event_free(ev);
	return NULL;
}

static void queue_event(recorder *r, exec_record *rec, const proc_info *pi)
{
	Santa__Event *ev = build_event(rec, pi);
	bool ok;

	if (!ev) {
		atomic_fetch_add(&r->counters->events_dropped, 1);
		return;
	}
	pthread_mutex_lock(&r->lock);
	ok = r->n_events < RECORDER_EVENT_LIMIT;
	if (ok)
		r->events[r->n_events++] = ev;
	pthread_mutex_unlock(&r->lock);
	if (!ok) {
		atomic_fetch_add(&r->counters->events_dropped, 1);
		recorder_event_free(ev);
		return;
	}
	(void)!eventfd_write(r->event_fd, 1);
}

int recorder_event_fd(const recorder *r)
{
	return r->event_fd;
}

size_t recorder_take_events(recorder *r, Santa__Event **out, size_t max)
{
	eventfd_t v;
	size_t n;

	(void)eventfd_read(r->event_fd, &v);
	pthread_mutex_lock(&r->lock);
	n = r->n_events < max ? r->n_events : max;
	memcpy(out, r->events, n * sizeof(*out));
	memmove(r->events, r->events + n, (r->n_events - n) * sizeof(*out));
	r->n_events -= n;
	if (r->n_events)
		(void)!eventfd_write(r->event_fd, 1);
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* --- processing --- */

/* Whether REC (an allowed exec) is the opening of the ELF interpreter that
 * the previous exec record of its pid named; else REC is remembered as
 * that pid's latest exec. In the order the notifications came. */
static bool is_loader_of_previous(recorder *r, const exec_record *rec)
{
	loader_slot *s = &r->loaders[(unsigned)rec->pid % LOADER_SLOTS];

	if (s->pid == rec->pid && s->armed && s->dev == rec->dev && s->ino == rec->ino &&
	    rec->mono_usec <= s->mono_usec + RECORDER_LOADER_WINDOW_USEC) {
		s->armed = false;       /* once per exec: `ld.so ld.so` is logged */
		return true;
	}
	*s = (loader_slot){ rec->pid, rec->has_loader, rec->loader_dev, rec->loader_ino,
			    rec->mono_usec };
	return false;
}

static bool exe_is_path(pid_t pid, const char *path)
{
	struct stat st;

	return *path && stat(path, &st) == 0 &&
	       procinfo_exe_is(pid, st.st_dev, st.st_ino) == 1;
}

/* Log REC with ARGS (taken; NULL: none, or read now when READ_ARGS). */
static void finish_allowed_args(recorder *r, exec_record *rec, char *args, bool read_args)
{
	proc_info pi;

	if (rec->has_proc) {
		pi = rec->proc;
		procinfo_names(&pi);
	} else if (rec->proc_gone) {
		pi = rec->proc;         /* uid and gid -1, no names */
	} else {
		(void)procinfo_read(rec->pid, &pi);
	}
	if (read_args && !args)
		(void)procinfo_args(rec->pid, RECORDER_ARGS_MAX, &args);
	log_exec(r, rec, &pi, args);
	free(args);
	exec_record_free(rec);
}

static void finish_allowed(recorder *r, exec_record *rec, bool with_args)
{
	finish_allowed_args(r, rec, NULL, with_args);
}

/* Try to log an allowed exec. False when it should wait for the exec to
 * complete (its process still runs the previous image). */
static bool try_allowed(recorder *r, exec_record *rec, uint64_t now)
{
	bool script = rec->interp != NULL;
	int is;

	if (rec->proc_gone) {
		/* Gone before its ids could be read: its pid may be another
		 * process's by now, so nothing more is read about it. */
		finish_allowed(r, rec, false);
		return true;
	}
	is = procinfo_exe_is(rec->pid, rec->dev, rec->ino);
	if (is < 0) {
		/* Gone already (or a kernel thread): what it ran is unknown. */
		finish_allowed(r, rec, false);
		return true;
	}
	/* The file itself now runs, or a script now run by its interpreter
	 * (whose command line is the script's, with its arguments). */
	if (is == 1 || (script && exe_is_path(rec->pid, rec->interp))) {
		char *args = NULL;

		/* The new image is in place, but its arguments are only set up
		 * a little later in the exec: until then cmdline reads empty. */
		(void)procinfo_args(rec->pid, RECORDER_ARGS_MAX, &args);
		if (!args && now < rec->mono_usec + RECORDER_ARGS_WAIT_USEC)
			return false;
		finish_allowed_args(r, rec, args, false);
		return true;
	}
	if (now >= rec->mono_usec + RECORDER_ARGS_WAIT_USEC) {
		finish_allowed(r, rec, false);
		return true;
	}
	return false;
}

static void show_block_in_gui(recorder *r, exec_record *rec, const proc_info *pi,
			      const char *sha_hex)
{
	gui_block_info b = {
		.path = rec->path,
		.sha256 = sha_hex,
		.reason = rec->reason,
		.custom_msg = rec->custom_msg,
		.custom_url = rec->custom_url,
		.rule_policy = rec->rule_policy,
		.rule_type = rec->rule_type,
		.rule_identifier = rec->rule_policy ? sha_hex : NULL,
		.user = pi->user,
		.uid = pi->uid,
		.parent_name = pi->parent_comm,
		.pid = rec->pid,
		.ppid = pi->ppid,
		.when = (double)rec->when.tv_sec + (double)rec->when.tv_nsec / 1e9,
	};

	gui *g = atomic_load(&r->gui);

	if (g && b.path)
		gui_post_block(g, &b);
}

static void handle_denied(recorder *r, exec_record *rec)
{
	const policy *p = rec->pol;
	char hex[SANTA_SHA256_HEX_LEN + 1];
	proc_info pi;
	int err;

	/* A denied process may exit at once (a shell prints an error and
	 * quits): its ids were read before it was answered. */
	if (rec->has_proc) {
		pi = rec->proc;
		procinfo_names(&pi);
	} else {
		(void)procinfo_read(rec->pid, &pi);
	}
	log_exec(r, rec, &pi, NULL);
	if (rec->store_event)
		queue_event(r, rec, &pi);
	if (rec->silent)
		return;
	if (rec->has_sha256)
		santa_hex(rec->sha256, SANTA_SHA256_LEN, hex);
	show_block_in_gui(r, rec, &pi, rec->has_sha256 ? hex : NULL);
	if (!p || p->silent_tty || !pi.tty_nr)
		return;
	tty_block_info info = {
		.path = rec->path,
		.sha256 = rec->has_sha256 ? hex : NULL,
		.parent_comm = pi.parent_comm,
		.ppid = pi.ppid,
		.by_rule = rec->reason != SANTAD_REASON_UNKNOWN,
		.custom_msg = rec->custom_msg,
		.custom_url = rec->custom_url,
		.unknown_message = p->unknown_block_message,
		.banned_message = p->banned_block_message,
		.detail_url = p->event_detail_url,
		.machine_id = p->machine_id,
		.user = pi.user,
	};
	char *msg = tty_block_message(&info);

	if (msg && (err = tty_write(pi.tty_nr, msg)) < 0)
		log_debug("Writing the block message to the terminal of pid %d failed: %s",
			  (int)rec->pid, strerror(-err));
	free(msg);
}

static void handle_record(recorder *r, exec_record *rec, uint64_t now)
{
	proc_info pi;

	switch (rec->kind) {
	case RECORD_EXEC_ALLOWED:
		if (is_loader_of_previous(r, rec)) {
			/* Not a line of its own, or every dynamic program would
			 * be logged twice. */
			log_debug("Not logging pid %d's exec of its ELF interpreter",
				  (int)rec->pid);
			break;
		}
		if (try_allowed(r, rec, now))
			return;
		if (r->n_waiting < WAITING_MAX) {
			r->waiting[r->n_waiting++] = rec;
			return;
		}
		finish_allowed(r, rec, false);
		return;
	case RECORD_EXEC_DENIED:
		handle_denied(r, rec);
		break;
	case RECORD_EVENT:
		(void)procinfo_read(rec->pid, &pi);
		queue_event(r, rec, &pi);
		break;
	case RECORD_LINE:
		emit_fields(r, rec);
		break;
	}
	exec_record_free(rec);
}

static void retry_waiting(recorder *r, uint64_t now, bool give_up)
{
	size_t kept = 0;

	for (size_t i = 0; i < r->n_waiting; i++) {
		exec_record *rec = r->waiting[i];

		if (give_up)
			finish_allowed(r, rec, false);
		else if (!try_allowed(r, rec, now))
			r->waiting[kept++] = rec;
	}
	r->n_waiting = kept;
}

/* How soon to look again at the records waiting for their exec to
 * complete (0: none waits). A short program's arguments can be read only
 * between the end of its exec and its exit, often well under a
 * millisecond: records are looked at every RECORDER_CHASE_USEC while the
 * youngest is new, every RECORDER_BATCH_PAUSE_USEC once it has waited
 * RECORDER_CHASE_FOR_USEC (an exec that ran another program at once, env,
 * never shows its own image). */
static uint64_t retry_usec(const recorder *r, uint64_t now)
{
	uint64_t youngest = 0;

	if (!r->n_waiting)
		return 0;
	for (size_t i = 0; i < r->n_waiting; i++)
		if (r->waiting[i]->mono_usec > youngest)
			youngest = r->waiting[i]->mono_usec;
	return now < youngest + RECORDER_CHASE_FOR_USEC ? RECORDER_CHASE_USEC :
							  RECORDER_BATCH_PAUSE_USEC;
}

/* The pause after a busy batch, RECORDER_BATCH_PAUSE_USEC, spent looking
 * at the waiting records as often as retry_usec says. */
static void batch_pause(recorder *r)
{
	uint64_t now = now_usec(CLOCK_MONOTONIC), end = now + RECORDER_BATCH_PAUSE_USEC;
	uint64_t step;

	while (now < end) {
		step = retry_usec(r, now);
		if (!step || step > end - now)
			step = end - now;
		nanosleep(&(struct timespec){ 0, (long)step * 1000 }, NULL);
		now = now_usec(CLOCK_MONOTONIC);
		if (r->n_waiting)
			retry_waiting(r, now, false);
	}
	/* Before the thread may sleep with nothing left to wake it. */
	out_flush(r);
}

/* Wait for records, or for the source to be readable; with some records
 * waiting for their exec to complete, only as long as retry_usec says.
 * Called and returns with the lock held. */
static void wait_for_work(recorder *r)
{
	uint64_t step = retry_usec(r, now_usec(CLOCK_MONOTONIC));
	const struct timespec retry = { 0, (long)step * 1000 };
	struct pollfd pfd[2] = { { .fd = r->wake_fd, .events = POLLIN } };
	eventfd_t v;
	nfds_t n = 1;

	if (r->head || r->stopping || r->reopen || r->reconfigure)
		return;
	r->sleeping = true;
	pthread_mutex_unlock(&r->lock);
	/* Read without the source lock: a source replaced meanwhile writes
	 * wake_fd, and poll() keeps its own reference to what it polls. */
	pthread_mutex_lock(&r->source_lock);
	if (r->source_fd >= 0)
		pfd[n++] = (struct pollfd){ .fd = r->source_fd, .events = POLLIN };
	pthread_mutex_unlock(&r->source_lock);
	(void)ppoll(pfd, n, step ? &retry : NULL, NULL);
	(void)eventfd_read(r->wake_fd, &v);
	pthread_mutex_lock(&r->lock);
	r->sleeping = false;
}

/* LIST in the order its records were made (stable): decision threads push
 * after they drop their lock, so two denials answered a moment apart can
 * arrive the other way round, and the log would show the later first. */
static exec_record *sort_by_time(exec_record *list)
{
	exec_record *a = NULL, *b = NULL, **tail;

	if (!list || !list->next)
		return list;
	/* Split into halves, keeping each half's order. */
	for (exec_record *slow = list, *fast = list->next; ; slow = slow->next) {
		if (!fast || !fast->next) {
			b = slow->next;
			slow->next = NULL;
			a = list;
			break;
		}
		fast = fast->next->next;
	}
	a = sort_by_time(a);
	b = sort_by_time(b);
	tail = &list;
	while (a && b) {
		exec_record **first = b->mono_usec < a->mono_usec ? &b : &a;

		*tail = *first;
		tail = &(*first)->next;
		*first = (*first)->next;
	}
	*tail = a ? a : b;
	return list;
}

/* Let the source hand over what it has (it pushes records). */
static void read_source(recorder *r)
{
	pthread_mutex_lock(&r->source_lock);
	if (r->source_fd >= 0 && r->source_read)
		r->source_read(r->source_ctx);
	pthread_mutex_unlock(&r->source_lock);
}

static void *recorder_main(void *arg)
{
	recorder *r = arg;
	uint64_t prev_wake = 0;
	size_t n_work;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		exec_record *batch;
		bool stopping;
		uint64_t now;

		wait_for_work(r);
		apply_config(r);
		pthread_mutex_unlock(&r->lock);
		read_source(r);
		pthread_mutex_lock(&r->lock);
		batch = r->head;
		r->head = r->tail = NULL;
		r->queued = 0;
		stopping = r->stopping;
		pthread_mutex_unlock(&r->lock);

		batch = sort_by_time(batch);
		now = now_usec(CLOCK_MONOTONIC);
		n_work = 0;
		while (batch) {
			exec_record *rec = batch;

			n_work++;
			batch = rec->next;
			handle_record(r, rec, now);
		}
		retry_waiting(r, now_usec(CLOCK_MONOTONIC), stopping);
		out_flush(r);
		/* When busy (a burst, or woken again soon after the last
		 * time), let records and notifications gather rather than be
		 * woken for each: pushing is then a lock and no wake-up, on
		 * the decision threads, and an exec does not wake us either.
		 * Otherwise the next one is read at once, while its process
		 * probably still runs. */
		if (n_work && !stopping &&
		    (n_work >= RECORDER_BURST || now - prev_wake < RECORDER_BUSY_GAP_USEC))
			batch_pause(r);
		prev_wake = now;

		pthread_mutex_lock(&r->lock);
		if (stopping && !r->head)
			break;
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int recorder_start(recorder *r)
{
	int err;

	pthread_mutex_lock(&r->lock);
	r->reopen = true;
	r->started = true;
	pthread_mutex_unlock(&r->lock);
	err = pthread_create(&r->thread, NULL, recorder_main, r);
	if (err) {
		r->started = false;
		return -err;
	}
	return 0;
}

void recorder_stop(recorder *r)
{
	if (!r || !r->started)
		return;
	atomic_store(&r->stop_requested, true);
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	(void)!eventfd_write(r->wake_fd, 1);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	r->started = false;
}
