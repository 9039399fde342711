/* SPDX-License-Identifier: Apache-2.0 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "sha256.h"

typedef struct job job;

/* The two lanes files are hashed in: those only root may write (the
 * system's own programs), and the others. A user lane job never takes the
 * last idle worker, and user lane files have at most half of the pending
 * events and jobs, so that a user whose files hash slowly (terabytes of
 * holes) never delays a program of the system's. Within the user lane,
 * files of an owner other than the last one served go first, and a file
 * hashed for longer than DecisionTimeoutMs gives its worker up to another
 * owner's waiting file (yield_overdue), so that such a user delays other
 * users' first sights by a DecisionTimeoutMs at most. */
enum { LANE_SYSTEM, LANE_USER, LANE_COUNT };

/* A permission event waiting for its file's hash. */
typedef struct perm_req {
	struct perm_req *prev, *next;   /* the deadline FIFO */
	struct perm_req *next_waiter;   /* in job->waiters */
	job *job;
	int fd;
	pid_t pid;
	uint64_t start_usec;
	uint64_t deadline_usec;
} perm_req;

/* A file being hashed, with everyone waiting for its decision. */
struct job {
	job *next_queued;
	job *prev, *next;               /* the in-flight list */
	unsigned lane;
	uid_t owner;                    /* the file's, when its job started */
	bool running;                   /* taken by a worker */
	uint64_t taken_usec;            /* when */
	atomic_bool cancel;             /* hashing gives up (santad stops, or
					 * it yields: yield_overdue) */
	file_key key;
	int fd;                         /* our own dup of the first event's */
	bool has_interp;                /* exec_file_names_interp */
	bool timed_out;                 /* an exec waiting on it was answered */
	perm_req *waiters;
	exec_record *notifs;            /* ALLOW lines waiting for the hash */
};

struct authorizer {
	int fan_fd;                     /* permission events, FAN_CLOSE_WRITE */
	int notify_fd;                  /* FAN_OPEN_EXEC notifications */
	int attr_fd;                    /* FAN_ATTRIB of ignore-marked files */
	int stop_fd;
	pid_t self;
	santad_counters *counters;
	recorder *rec;
	unsigned n_workers;
	pthread_t *workers;
	unsigned n_started;
	pthread_t reader;
	bool reader_started;
	char *notify_buf;               /* read by the recorder's thread */
	bool source_set;
	auth_answer_hook answer_hook;

	pthread_mutex_t lock;           /* guards everything below */
	pthread_cond_t work_cond;
	bool stopping;
	policy *pol;
	ruleset *rs;
	cache *cache;
	perm_req *fifo_head, *fifo_tail;
	size_t n_pending;
	size_t n_pending_lane[LANE_COUNT];
	job *queue_head[LANE_COUNT], *queue_tail[LANE_COUNT];
	job *inflight;
	size_t n_jobs;
	size_t n_jobs_lane[LANE_COUNT];
	unsigned n_busy_user;           /* workers hashing user lane files */
	uid_t last_owner;               /* of the user lane job started last */
};

/* Records made under the lock, pushed to the recorder after it. */
typedef struct record_list {
	exec_record *head;
} record_list;

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void list_add(record_list *l, exec_record *rec)
{
	rec->next = l->head;
	l->head = rec;
}

static void list_push_all(authorizer *a, record_list *l)
{
	while (l->head) {
		exec_record *rec = l->head;

		l->head = rec->next;
		if (!recorder_push(a->rec, rec))
			exec_record_free(rec);
	}
}

static bool fail_allows(const policy *p)
{
	/* FailClosed only ever denies in LOCKDOWN: in MONITOR nothing santad
	 * fails to do may block an exec. */
	return !(p->fail_closed && p->mode == SANTA_MODE_LOCKDOWN);
}

/* --- answering (with the lock held) --- */

static void respond(authorizer *a, int fd, bool allow, santad_reason reason, bool cached,
		    uint64_t start_usec)
{
	struct fanotify_response resp = { .fd = fd, .response = allow ? FAN_ALLOW : FAN_DENY };
	uint64_t took = mono_usec() - start_usec, max;

	/* After auth_stop the group is closed and the kernel has allowed
	 * everything itself; never write to a descriptor number reused since. */
	if (a->fan_fd < 0)
		return;
	if (write(a->fan_fd, &resp, sizeof(resp)) != (ssize_t)sizeof(resp))
		log_debug("Answering permission event fd %d failed: %m", fd);
	atomic_fetch_add(allow ? &a->counters->exec_allowed : &a->counters->exec_denied, 1);
	atomic_fetch_add(&a->counters->decision_usec_total, took);
	max = atomic_load(&a->counters->decision_usec_max);
	while (took > max &&
	       !atomic_compare_exchange_weak(&a->counters->decision_usec_max, &max, took))
		;
	if (a->answer_hook)
		a->answer_hook(allow ? SANTAD_DECISION_ALLOW : SANTAD_DECISION_DENY, reason, cached,
			       took);
}

/* Whether nobody but root may write the file with stat ST. Only then may
 * the kernel allow its further execs by itself: a write through a shared
 * mapping changes the file without clearing an ignore mark (and, on tmpfs,
 * without changing its times), and santad hears of it only from the close,
 * which an exec right after it could beat. Without the mark, that exec's
 * permission event comes after the close in the same queue, and is decided
 * again. Such files are also hashed in the system lane. */
static bool only_root_writes(const struct stat *st)
{
	return st->st_uid == 0 && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

static unsigned lane_of(const struct stat *st)
{
	return only_root_writes(st) ? LANE_SYSTEM : LANE_USER;
}

/* After an allow: hear the file's close after a write (which drops its
 * cache entry), and where only_root_writes says so, let the kernel allow it
 * until then. False when the close cannot be heard: then the allow must
 * not be cached either. */
static bool mark_allowed(authorizer *a, int fd, bool ignore)
{
	if (a->fan_fd < 0)
		return false;
	if (fanotify_mark(a->fan_fd, FAN_MARK_ADD, FAN_CLOSE_WRITE, fd, NULL) < 0) {
		log_debug("Watching fd %d for FAN_CLOSE_WRITE failed: %m", fd);
		return false;
	}
	/* An ignore mark outlives a change of owner or mode (chown -R of a
	 * tree, chmod g+w, an ACL) that would let a user write the file
	 * through a mapping: hear those (handle_attrib) before trusting it. */
	if (!ignore || a->attr_fd < 0 ||
	    fanotify_mark(a->attr_fd, FAN_MARK_ADD, FAN_ATTRIB, fd, NULL) < 0)
		return true;
	/* Cleared by the kernel itself on a write() (FS_MODIFY). */
	if (fanotify_mark(a->fan_fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, FAN_OPEN_EXEC_PERM,
			  fd, NULL) < 0)
		log_debug("Adding an ignore mark on fd %d failed: %m", fd);
	return true;
}

static void unmark(authorizer *a, int fd)
{
	if (a->fan_fd < 0)
		return;
	(void)fanotify_mark(a->fan_fd, FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK,
			    FAN_OPEN_EXEC_PERM, fd, NULL);
	(void)fanotify_mark(a->fan_fd, FAN_MARK_REMOVE, FAN_CLOSE_WRITE, fd, NULL);
}

static void flush_kernel(authorizer *a)
{
	/* Without MOUNT or FILESYSTEM, FLUSH removes the inode marks only:
	 * every ignore mark, never the mounts we watch. */
	if (a->fan_fd >= 0 && fanotify_mark(a->fan_fd, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL) < 0)
		log_debug("Flushing the inode marks failed: %m");
	if (a->attr_fd >= 0)
		(void)fanotify_mark(a->attr_fd, FAN_MARK_FLUSH, 0, AT_FDCWD, NULL);
}

/* --- records --- */

static exec_record *denied_record(pid_t pid, int fd, const policy *pol)
{
	exec_record *rec = exec_record_new(RECORD_EXEC_DENIED, pid);

	if (!rec)
		return NULL;
	/* The path now, not the descriptor: a flood of denials queued for a
	 * slow log must not hold thousands of descriptors (the kernel denies
	 * an event it has no descriptor for, even in MONITOR). */
	rec->path = procinfo_fd_path(fd);
	rec->decision = SANTAD_DECISION_DENY;
	rec->pol = policy_ref((policy *)pol);
	/* Before the answer: once denied, the process may exit at once. */
	rec->has_proc = procinfo_read_ids(pid, &rec->proc, true) == 0;
	return rec;
}

static void record_verdict(exec_record *rec, const verdict *v, const uint8_t *sha,
			   const policy *pol)
{
	rec->reason = v->reason;
	rec->silent = v->silent;
	rec->explain = NULL;
	if (v->has_rule) {
		rec->rule_policy = v->rule_policy;
		rec->rule_type = v->rule_type;
	}
	if (sha) {
		rec->has_sha256 = true;
		memcpy(rec->sha256, sha, SANTA_SHA256_LEN);
	}
	if (v->custom_msg)
		rec->custom_msg = strdup(v->custom_msg);
	if (v->custom_url)
		rec->custom_url = strdup(v->custom_url);
	rec->store_event = policy_records_event(pol, v);
}

/* Deny FD, close it, and hand its record (made before the answer, see
 * denied_record; NULL when out of memory) to the recorder. */
static void deny(authorizer *a, int fd, exec_record *rec, santad_reason reason, bool cached,
		 uint64_t start, record_list *l)
{
	respond(a, fd, false, reason, cached, start);
	close(fd);
	if (rec)
		list_add(l, rec);
}

/* A denial answered without a decision (deadline, unreadable file). */
static void deny_by_failure(authorizer *a, int fd, pid_t pid, uint64_t start, const char *why,
			    record_list *l)
{
	exec_record *rec = denied_record(pid, fd, a->pol);

	if (rec) {
		rec->reason = SANTAD_REASON_UNKNOWN;
		rec->explain = why;
		rec->store_event = a->pol->store_events;
	}
	deny(a, fd, rec, SANTAD_REASON_UNKNOWN, false, start, l);
}

/* --- the FIFO of pending events, and jobs (with the lock held) --- */

static void fifo_append(authorizer *a, perm_req *r)
{
	r->prev = a->fifo_tail;
	r->next = NULL;
	if (a->fifo_tail)
		a->fifo_tail->next = r;
	else
		a->fifo_head = r;
	a->fifo_tail = r;
	a->n_pending++;
	a->n_pending_lane[r->job->lane]++;
}

static void fifo_remove(authorizer *a, perm_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		a->fifo_head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		a->fifo_tail = r->prev;
	a->n_pending--;
	a->n_pending_lane[r->job->lane]--;
}

static void job_remove_waiter(job *j, perm_req *r)
{
	for (perm_req **p = &j->waiters; *p; p = &(*p)->next_waiter) {
		if (*p == r) {
			*p = r->next_waiter;
			return;
		}
	}
}

static job *job_find(authorizer *a, const file_key *k)
{
	for (job *j = a->inflight; j; j = j->next)
		if (file_key_equal(&j->key, k))
			return j;
	return NULL;
}

/* Whether LANE has room for one more pending event or job, of which there
 * are TOTAL, OF_LANE[] in each lane, and at most LIMIT. */
static bool lane_has_room(unsigned lane, size_t total, const size_t *of_lane, size_t limit)
{
	return total < limit && (lane == LANE_SYSTEM || of_lane[LANE_USER] < limit / 2);
}

static job *job_start(authorizer *a, const file_key *k, const struct stat *st, int fd)
{
	unsigned lane = lane_of(st);
	job *j;

	if (!lane_has_room(lane, a->n_jobs, a->n_jobs_lane, AUTH_MAX_JOBS))
		return NULL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (j->fd < 0) {
		free(j);
		return NULL;
	}
	j->key = *k;
	j->lane = lane;
	j->owner = st->st_uid;
	j->next = a->inflight;
	if (a->inflight)
		a->inflight->prev = j;
	a->inflight = j;
	a->n_jobs++;
	a->n_jobs_lane[lane]++;
	if (a->queue_tail[lane])
		a->queue_tail[lane]->next_queued = j;
	else
		a->queue_head[lane] = j;
	a->queue_tail[lane] = j;
	pthread_cond_signal(&a->work_cond);
	return j;
}

/* Whether anyone still waits for J's result: an exec, or a log line. */
static bool job_awaited(const job *j)
{
	return j->waiters || j->notifs;
}

/* Whether a user lane job of an owner other than OWNER, awaited, is queued. */
static bool user_lane_wants(const authorizer *a, uid_t owner)
{
	for (const job *q = a->queue_head[LANE_USER]; q; q = q->next_queued)
		if (q->owner != owner && job_awaited(q))
			return true;
	return false;
}

/* A user lane file hashed for longer than DecisionTimeoutMs gives its
 * worker up when the lane has no worker free and another owner's file
 * waits: a file of terabytes of holes would hold it for an hour, however
 * often its owner runs it again. Whoever still waits for it is answered
 * as on a deadline, and it is hashed again when next run. Returns when
 * the next running file that keeps another owner's waiting becomes
 * overdue, or 0. */
static uint64_t yield_overdue(authorizer *a, uint64_t now)
{
	uint64_t limit = (uint64_t)a->pol->timeout_ms * 1000, next = 0;
	size_t free_workers = a->n_workers - 1 - a->n_busy_user, waiting = 0;

	if (!a->queue_head[LANE_USER])
		return 0;
	for (const job *q = a->queue_head[LANE_USER]; q; q = q->next_queued)
		waiting += job_awaited(q);
	if (waiting <= free_workers)
		return 0;
	waiting -= free_workers;
	for (job *j = a->inflight; j && waiting; j = j->next) {
		if (j->lane != LANE_USER || !j->running || atomic_load(&j->cancel) ||
		    !user_lane_wants(a, j->owner))
			continue;
		if (now >= j->taken_usec + limit) {
			atomic_store(&j->cancel, true);
			waiting--;
		} else if (!next || j->taken_usec + limit < next) {
			next = j->taken_usec + limit;
		}
	}
	return next;
}

/* How far back the user lane puts J: awaited files before the others,
 * then owners other than the one served last. */
static unsigned user_lane_rank(const authorizer *a, const job *j)
{
	return (job_awaited(j) ? 0 : 2) + (j->owner == a->last_owner ? 1 : 0);
}

/* Take J, after PREV (NULL: the head), off LANE's queue. */
static void queue_unlink(authorizer *a, unsigned lane, job *prev, job *j)
{
	if (prev)
		prev->next_queued = j->next_queued;
	else
		a->queue_head[lane] = j->next_queued;
	if (a->queue_tail[lane] == j)
		a->queue_tail[lane] = prev;
	j->next_queued = NULL;
}

/* The next job a worker may take: the system lane's first (in order),
 * else the user lane's best ranked (user_lane_rank, then in order) unless
 * that would leave no worker for the system lane. */
static job *job_take(authorizer *a)
{
	job *j = a->queue_head[LANE_SYSTEM], *best = NULL, *best_prev = NULL, *prev = NULL;

	if (j) {
		queue_unlink(a, LANE_SYSTEM, NULL, j);
		j->running = true;
		return j;
	}
	if (a->n_busy_user >= a->n_workers - 1)
		return NULL;
	for (j = a->queue_head[LANE_USER]; j; prev = j, j = j->next_queued) {
		if (!best || user_lane_rank(a, j) < user_lane_rank(a, best)) {
			best = j;
			best_prev = prev;
			if (user_lane_rank(a, j) == 0)
				break;
		}
	}
	if (!best)
		return NULL;
	queue_unlink(a, LANE_USER, best_prev, best);
	best->running = true;
	best->taken_usec = mono_usec();
	a->n_busy_user++;
	a->last_owner = best->owner;
	return best;
}

static void job_detach(authorizer *a, job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		a->inflight = j->next;
	if (j->next)
		j->next->prev = j->prev;
	a->n_jobs--;
	a->n_jobs_lane[j->lane]--;
}

static void job_free(job *j)
{
	while (j->notifs) {
		exec_record *rec = j->notifs;

		j->notifs = rec->next;
		exec_record_free(rec);
	}
	if (j->fd >= 0)
		close(j->fd);
	free(j);
}

/* --- events from the reader --- */

static void handle_cache_hit(authorizer *a, int fd, pid_t pid, const struct stat *st,
			     const cache_entry *ce, uint64_t start, record_list *l)
{
	exec_record *rec;
	verdict v;

	atomic_fetch_add(&a->counters->exec_cache_hits, 1);
	if (ce->decision == SANTAD_DECISION_ALLOW) {
		respond(a, fd, true, ce->reason, true, start);
		/* The kernel lost its mark (an earlier failure to add it): again.
		 * A file others may write comes here every time, by design. */
		if (only_root_writes(st))
			(void)mark_allowed(a, fd, true);
		close(fd);
		return;
	}
	rec = denied_record(pid, fd, a->pol);
	if (rec) {
		/* The cache keeps no messages: the snapshots that decided have
		 * them (a change that could differ would have flushed it). */
		policy_decide(a->pol, a->rs, ce->sha256, NULL, &v);
		record_verdict(rec, &v, ce->sha256, a->pol);
		/* Without the path a SCOPE denial decides differently here: the
		 * cache's reason stands, and a denial is always an event. */
		if (v.decision != SANTAD_DECISION_DENY)
			rec->rule_policy = rec->rule_type = 0;
		rec->reason = ce->reason;
		rec->silent = ce->silent;
		rec->store_event = a->pol->store_events;
	}
	deny(a, fd, rec, ce->reason, true, start, l);
}

static void answer_now_by_failure(authorizer *a, int fd, pid_t pid, uint64_t start,
				  const char *why, record_list *l)
{
	if (!fail_allows(a->pol)) {
		deny_by_failure(a, fd, pid, start, why, l);
		return;
	}
	respond(a, fd, true, SANTAD_REASON_UNKNOWN, false, start);
	close(fd);
}

static void enqueue_perm(authorizer *a, int fd, pid_t pid, const struct stat *st,
			 const file_key *k, uint64_t start, record_list *l)
{
	unsigned lane = lane_of(st);
	perm_req *r = NULL;
	job *j = NULL;

	if (lane_has_room(lane, a->n_pending, a->n_pending_lane, AUTH_MAX_PENDING) &&
	    (r = calloc(1, sizeof(*r))))
		j = job_find(a, k);
	/* A job that gave its worker up hashes nothing more: a new one. */
	if (j && atomic_load(&j->cancel))
		j = NULL;
	if (r && !j)
		j = job_start(a, k, st, fd);
	if (!j) {
		free(r);
		answer_now_by_failure(a, fd, pid, start, "too many pending decisions", l);
		return;
	}
	r->fd = fd;
	r->pid = pid;
	r->job = j;
	r->start_usec = start;
	r->deadline_usec = start + (uint64_t)a->pol->timeout_ms * 1000;
	r->next_waiter = j->waiters;
	j->waiters = r;
	fifo_append(a, r);
	if (j->lane == LANE_USER && !j->running)
		(void)yield_overdue(a, start);
}

static void handle_perm(authorizer *a, int fd, pid_t pid)
{
	uint64_t start = mono_usec();
	record_list l = { 0 };
	cache_entry ce;
	struct stat st;
	bool stat_ok;
	file_key k;

	atomic_fetch_add(&a->counters->exec_events, 1);
	stat_ok = pid != a->self && fstat(fd, &st) == 0;
	pthread_mutex_lock(&a->lock);
	if (pid == a->self) {
		/* Our own execs: deciding them could wait on ourselves. */
		respond(a, fd, true, SANTAD_REASON_UNKNOWN, false, start);
		close(fd);
	} else if (!stat_ok) {
		atomic_fetch_add(&a->counters->exec_unreadable, 1);
		answer_now_by_failure(a, fd, pid, start, "file could not be read", &l);
	} else {
		file_key_from_stat(&k, &st);
		if (cache_lookup(a->cache, &k, start, &ce))
			handle_cache_hit(a, fd, pid, &st, &ce, start, &l);
		else
			enqueue_perm(a, fd, pid, &st, &k, start, &l);
	}
	pthread_mutex_unlock(&a->lock);
	list_push_all(a, &l);
}

static void handle_exec_notification(authorizer *a, int fd, pid_t pid)
{
	exec_record *rec;
	bool cached;
	cache_entry ce;
	struct stat st;
	file_key k;
	job *j;
	int r;

	atomic_fetch_add(&a->counters->exec_notifications, 1);
	rec = pid != a->self && fstat(fd, &st) == 0 ?
	      exec_record_new(RECORD_EXEC_ALLOWED, pid) : NULL;
	if (!rec) {
		close(fd);
		return;
	}
	file_key_from_stat(&k, &st);
	rec->dev = k.dev;
	rec->ino = k.ino;
	rec->decision = SANTAD_DECISION_ALLOW;
	/* The ids first: a short process may be gone in a moment. A pidfd,
	 * which takes none of its locks and no reference to its memory. */
	r = procinfo_read_ids(pid, &rec->proc, false);
	rec->has_proc = r == 0;
	rec->proc_gone = r == -ESRCH;
	pthread_mutex_lock(&a->lock);
	cached = cache_lookup(a->cache, &k, mono_usec(), &ce) &&
		 ce.decision == SANTAD_DECISION_ALLOW;
	pthread_mutex_unlock(&a->lock);
	/* The path and the interpreter (unless the cache knows it names none),
	 * so that the descriptor is closed below: a record may wait for its
	 * exec to complete, or in a queue. */
	r = exec_record_set_file(rec, fd, cached && !ce.has_interp);
	if (r < 0)
		log_debug("Reading the path of a file pid %d executed failed: %s", (int)pid,
			  strerror(-r));
	pthread_mutex_lock(&a->lock);
	rec->pol = policy_ref(a->pol);
	if (cached) {
		rec->reason = ce.reason;
		rec->has_sha256 = true;
		memcpy(rec->sha256, ce.sha256, SANTA_SHA256_LEN);
	} else if ((j = job_find(a, &k)) && j->timed_out) {
		/* Allowed by FailClosed while its file is still being hashed,
		 * which may take hours: logged now, without a hash. */
		rec->reason = SANTAD_REASON_UNKNOWN;
		rec->explain = "decision timed out";
	} else if ((j && !atomic_load(&j->cancel)) || (j = job_start(a, &k, &st, fd))) {
		/* Hashing (or evicted from the cache): log once it is known. */
		rec->next = j->notifs;
		j->notifs = rec;
		rec = NULL;
		if (j->lane == LANE_USER && !j->running)
			(void)yield_overdue(a, mono_usec());
	}
	pthread_mutex_unlock(&a->lock);
	close(fd);
	if (rec && !recorder_push(a->rec, rec))
		exec_record_free(rec);
}

static void handle_close_write(authorizer *a, int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0) {
		pthread_mutex_lock(&a->lock);
		cache_remove_inode(a->cache, st.st_dev, st.st_ino);
		unmark(a, fd);
		pthread_mutex_unlock(&a->lock);
	}
	close(fd);
}

/* An event of the permission group: permission events and FAN_CLOSE_WRITE
 * of allowed files. */
static void handle_event(authorizer *a, const struct fanotify_event_metadata *m)
{
	if (m->mask & FAN_Q_OVERFLOW)
		atomic_fetch_add(&a->counters->queue_overflows, 1);
	if (m->fd < 0)
		return;
	if (m->mask & FAN_OPEN_EXEC_PERM)
		handle_perm(a, m->fd, m->pid);
	else if (m->mask & FAN_CLOSE_WRITE)
		handle_close_write(a, m->fd);
	else
		close(m->fd);
}

/* An event of the notification group. */
static void handle_notification(authorizer *a, const struct fanotify_event_metadata *m)
{
	if (m->mask & FAN_Q_OVERFLOW)
		atomic_fetch_add(&a->counters->queue_overflows, 1);
	if (m->fd < 0)
		return;
	if (m->mask & FAN_OPEN_EXEC)
		handle_exec_notification(a, m->fd, m->pid);
	else
		close(m->fd);
}

/* Answer the events whose deadline passed; returns the poll timeout (ms)
 * until the next one, or -1. */
static int expire_deadlines(authorizer *a)
{
	uint64_t now = mono_usec(), next;
	record_list l = { 0 };
	int timeout = -1;

	pthread_mutex_lock(&a->lock);
	/* Before the deadlines: a file whose waiter's deadline is now is
	 * still waited for, and may have a worker given up to it. */
	next = yield_overdue(a, now);
	while (a->fifo_head && a->fifo_head->deadline_usec <= now) {
		perm_req *r = a->fifo_head;

		fifo_remove(a, r);
		r->job->timed_out = true;
		job_remove_waiter(r->job, r);
		atomic_fetch_add(&a->counters->exec_timeouts, 1);
		answer_now_by_failure(a, r->fd, r->pid, r->start_usec, "decision timed out", &l);
		free(r);
	}
	if (a->fifo_head && (!next || a->fifo_head->deadline_usec < next))
		next = a->fifo_head->deadline_usec;
	if (next)
		timeout = (int)((next - now + 999) / 1000);
	pthread_mutex_unlock(&a->lock);
	list_push_all(a, &l);
	return timeout;
}

static void answer_all_pending(authorizer *a)
{
	record_list l = { 0 };

	pthread_mutex_lock(&a->lock);
	while (a->fifo_head) {
		perm_req *r = a->fifo_head;

		fifo_remove(a, r);
		job_remove_waiter(r->job, r);
		answer_now_by_failure(a, r->fd, r->pid, r->start_usec, "santad stopping", &l);
		free(r);
	}
	pthread_mutex_unlock(&a->lock);
	list_push_all(a, &l);
}

typedef void (*event_handler)(authorizer *a, const struct fanotify_event_metadata *m);

static ssize_t read_events(authorizer *a, int fd, char *buf, event_handler handle)
{
	const struct fanotify_event_metadata *m;
	ssize_t len = read(fd, buf, AUTH_READ_BUF), left = len;

	if (len <= 0)
		return len;
	/* FAN_EVENT_NEXT counts LEFT down to what is not parsed yet: the
	 * length read is LEN. */
	for (m = (const void *)buf; FAN_EVENT_OK(m, left); m = FAN_EVENT_NEXT(m, left)) {
		if (m->vers != FANOTIFY_METADATA_VERSION) {
			/* A kernel speaking another layout: nothing in this
			 * buffer can be trusted, not even the fd to answer. */
			log_error("fanotify metadata version %u, expected %u: ignoring events",
				  m->vers, FANOTIFY_METADATA_VERSION);
			return len;
		}
		handle(a, m);
	}
	return len;
}

/* The owner, mode, ACL, times or link count of a file the kernel allows
 * by itself changed. Which file is not worth decoding (the events carry
 * file handles): every kernel allow and cached decision goes, and each
 * program is decided again on its next exec. Rare: chown, chmod, touch,
 * or a package upgrade replacing a program. */
static void handle_attrib(authorizer *a, char *buf)
{
	while (read(a->attr_fd, buf, AUTH_READ_BUF) > 0)
		;
	pthread_mutex_lock(&a->lock);
	cache_clear(a->cache);
	flush_kernel(a);
	atomic_fetch_add(&a->counters->cache_flushes, 1);
	pthread_mutex_unlock(&a->lock);
	log_debug("An allowed program's owner, mode or links changed: decisions flushed");
}

static void *reader_main(void *arg)
{
	authorizer *a = arg;
	struct pollfd pfd[3] = {
		{ .fd = a->fan_fd, .events = POLLIN },
		{ .fd = a->stop_fd, .events = POLLIN },
		{ .fd = a->attr_fd, .events = POLLIN },
	};
	char *buf = aligned_alloc(8, AUTH_READ_BUF);
	int timeout = -1;

	/* Permission events only come for files not allowed yet (the others
	 * have an ignore mark): each is an exec that waits, so it is read at
	 * once. */
	while (buf) {
		if (poll(pfd, a->attr_fd >= 0 ? 3 : 2, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (pfd[2].revents & POLLIN)
			handle_attrib(a, buf);
		if (pfd[0].revents & POLLIN)
			(void)read_events(a, a->fan_fd, buf, handle_event);
		timeout = expire_deadlines(a);
	}
	if (!buf)
		log_error("Allocating the fanotify read buffer failed");
	answer_all_pending(a);
	free(buf);
	return NULL;
}

/* The recorder's source (recorder_set_source): on the recorder's thread,
 * whenever the notification group is readable and once per batch. Nothing
 * waits for these, so they are read in batches: the recorder pauses after
 * each, and an exec that finds nobody waiting wakes nobody. */
static void read_notifications(void *arg)
{
	authorizer *a = arg;

	(void)read_events(a, a->notify_fd, a->notify_buf, handle_notification);
}

/* --- hash workers --- */

/* Hash J's file into SHA, and set *KEY to the identity it kept while it
 * was read: 0; -ESTALE when it changed during each of AUTH_HASH_ATTEMPTS
 * readings (someone writes it, or touches it on purpose); -errno when it
 * cannot be read. */
static int hash_job(authorizer *a, job *j, uint8_t *sha, file_key *key)
{
	file_key before = j->key, after;
	struct stat st;
	int r;

	for (unsigned i = 0; i < AUTH_HASH_ATTEMPTS; i++) {
		if (i > 0) {
			if (fstat(j->fd, &st) < 0)
				return -errno;
			file_key_from_stat(&before, &st);
		}
		/* For the cache: a cached exec's line then need not look for
		 * an interpreter in the file. */
		j->has_interp = exec_file_names_interp(j->fd);
		r = santa_hash_fd_until(j->fd, sha, NULL, &j->cancel);
		atomic_fetch_add(&a->counters->exec_hashed, 1);
		if (r < 0)
			return r;
		if (fstat(j->fd, &st) < 0)
			return -errno;
		file_key_from_stat(&after, &st);
		if (file_key_equal(&after, &before)) {
			*key = after;
			return 0;
		}
	}
	return -ESTALE;
}

/* Whether an exec whose file could not be hashed (ERR) is allowed, and why
 * it was not decided. A file that kept changing while it was hashed is no
 * failure of santad's: whoever changes it may do so to be answered by
 * FailClosed, so it is denied in LOCKDOWN whatever FailClosed says. */
static bool failure_allows(const policy *p, int err)
{
	return err == -ESTALE ? p->mode != SANTA_MODE_LOCKDOWN : fail_allows(p);
}

static const char *failure_why(const authorizer *a, int err)
{
	if (err == -ECANCELED)
		return a->stopping ? "santad stopping" : "hashing gave way to other users' files";
	return err == -ESTALE ? "file kept changing while it was hashed" :
	       "file could not be read";
}

static void answer_waiters(authorizer *a, job *j, int hash_err, const verdict *v,
			   const uint8_t *sha, record_list *l)
{
	bool allow = hash_err == 0 ? v->decision == SANTAD_DECISION_ALLOW :
		     failure_allows(a->pol, hash_err);

	while (j->waiters) {
		perm_req *r = j->waiters;
		exec_record *rec;

		j->waiters = r->next_waiter;
		fifo_remove(a, r);
		if (allow) {
			respond(a, r->fd, true, hash_err ? SANTAD_REASON_UNKNOWN : v->reason, false,
				r->start_usec);
			close(r->fd);
		} else if (hash_err) {
			deny_by_failure(a, r->fd, r->pid, r->start_usec, failure_why(a, hash_err), l);
		} else {
			rec = denied_record(r->pid, r->fd, a->pol);
			if (rec)
				record_verdict(rec, v, sha, a->pol);
			deny(a, r->fd, rec, v->reason, false, r->start_usec, l);
		}
		free(r);
	}
}

static void release_notifs(authorizer *a, job *j, int hash_err, const verdict *v,
			   const uint8_t *sha, record_list *l)
{
	while (j->notifs) {
		exec_record *rec = j->notifs;

		j->notifs = rec->next;
		/* The exec happened, so it was allowed, whatever a decision
		 * made since would say. */
		if (hash_err == 0 && v->decision == SANTAD_DECISION_ALLOW) {
			rec->reason = v->reason;
		} else {
			rec->reason = SANTAD_REASON_UNKNOWN;
			rec->explain = hash_err ? failure_why(a, hash_err) : NULL;
		}
		if (hash_err == 0) {
			rec->has_sha256 = true;
			memcpy(rec->sha256, sha, SANTA_SHA256_LEN);
		}
		list_add(l, rec);
	}
}

static void add_event_record(authorizer *a, job *j, const verdict *v, const uint8_t *sha,
			     record_list *l)
{
	exec_record *rec;
	pid_t pid = j->waiters ? j->waiters->pid : j->notifs ? j->notifs->pid : 0;

	/* Denials become events through their DENY records; a first-sight
	 * allow (an unknown program in MONITOR) becomes one here. */
	if (v->decision != SANTAD_DECISION_ALLOW || !pid || !policy_records_event(a->pol, v))
		return;
	rec = exec_record_new(RECORD_EVENT, pid);
	if (!rec)
		return;
	rec->decision = v->decision;
	rec->path = procinfo_fd_path(j->fd);
	rec->pol = policy_ref(a->pol);
	record_verdict(rec, v, sha, a->pol);
	list_add(l, rec);
}

/* Publish J's result (the lock held, snapshots current). */
static void publish_job(authorizer *a, job *j, int hash_err, const verdict *v,
			const uint8_t *sha, record_list *l)
{
	if (hash_err == 0) {
		cache_entry ce = {
			.key = j->key,
			.decision = v->decision,
			.reason = v->reason,
			.silent = v->silent,
			.has_interp = j->has_interp,
			.stamp_usec = mono_usec(),
		};

		struct stat st;

		memcpy(ce.sha256, sha, SANTA_SHA256_LEN);
		(void)cache_insert(a->cache, &ce);
		if (v->decision == SANTAD_DECISION_ALLOW &&
		    !mark_allowed(a, j->fd, file_fstat_nosync(j->fd, &st) == 0 && only_root_writes(&st)))
			cache_remove_inode(a->cache, j->key.dev, j->key.ino);
		add_event_record(a, j, v, sha, l);
	}
	answer_waiters(a, j, hash_err, v, sha, l);
	release_notifs(a, j, hash_err, v, sha, l);
	job_detach(a, j);
}

/* The file may have been written between the hash and the ignore mark
 * (after the mark, the kernel itself drops the mark on a write). */
static void recheck_after_mark(authorizer *a, job *j)
{
	struct stat st;
	file_key now;

	if (fstat(j->fd, &st) == 0) {
		file_key_from_stat(&now, &st);
		if (file_key_equal(&now, &j->key))
			return;
	}
	pthread_mutex_lock(&a->lock);
	cache_remove_inode(a->cache, j->key.dev, j->key.ino);
	unmark(a, j->fd);
	pthread_mutex_unlock(&a->lock);
}

static void run_job(authorizer *a, job *j)
{
	uint8_t sha[SANTA_SHA256_LEN];
	file_key key;
	int err = hash_job(a, j, sha, &key);
	char *path = err ? NULL : procinfo_fd_path(j->fd);
	record_list l = { 0 };
	policy *pol;
	ruleset *rs;
	verdict v = { 0 };

	if (err && err != -ECANCELED)
		atomic_fetch_add(&a->counters->exec_unreadable, 1);
	pthread_mutex_lock(&a->lock);
	for (;;) {
		pol = policy_ref(a->pol);
		rs = ruleset_ref(a->rs);
		pthread_mutex_unlock(&a->lock);
		if (!err)
			policy_decide_file(pol, rs, sha, path, j->fd, &v);
		pthread_mutex_lock(&a->lock);
		/* Publish only what the snapshots in force decide. */
		if (pol == a->pol && rs == a->rs)
			break;
		policy_unref(pol);
		ruleset_unref(rs);
	}
	/* Cached under what was hashed: the file may have been touched since
	 * its first event (another event since then finds this job anyway
	 * only by the stamps it came with). */
	if (!err)
		j->key = key;
	publish_job(a, j, err, &v, sha, &l);
	pthread_mutex_unlock(&a->lock);

	if (!err && v.decision == SANTAD_DECISION_ALLOW)
		recheck_after_mark(a, j);
	list_push_all(a, &l);
	/* Snapshot references and the strings the verdict borrowed from
	 * them are released only after the records copied what they need. */
	policy_unref(pol);
	ruleset_unref(rs);
	free(path);
	job_free(j);
}

static void *worker_main(void *arg)
{
	authorizer *a = arg;

	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		job *j = job_take(a);
		unsigned lane;

		if (!j) {
			pthread_cond_wait(&a->work_cond, &a->lock);
			continue;
		}
		lane = j->lane;
		pthread_mutex_unlock(&a->lock);
		run_job(a, j);
		pthread_mutex_lock(&a->lock);
		/* A worker that waited for the user lane's turn may go on. */
		if (lane == LANE_USER) {
			a->n_busy_user--;
			if (a->queue_head[LANE_USER])
				pthread_cond_broadcast(&a->work_cond);
		}
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* --- life cycle --- */

int auth_new(santad_counters *counters, recorder *rec, unsigned hash_threads, policy *pol,
	     ruleset *rs, authorizer **ret)
{
	authorizer *a = calloc(1, sizeof(*a));
	int r;

	*ret = NULL;
	if (!a)
		return -ENOMEM;
	a->fan_fd = a->notify_fd = a->attr_fd = a->stop_fd = -1;
	a->counters = counters;
	a->rec = rec;
	a->self = getpid();
	/* One worker at least for each lane: with one only, a user's file
	 * could keep it from the system's programs. */
	a->n_workers = hash_threads > 2 ? hash_threads : 2;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->work_cond, NULL);
	a->pol = policy_ref(pol);
	a->rs = ruleset_ref(rs);
	r = cache_new(&a->cache);
	if (r < 0)
		goto fail;
	a->workers = calloc(a->n_workers, sizeof(*a->workers));
	a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!a->workers || a->stop_fd < 0) {
		r = a->workers ? -errno : -ENOMEM;
		goto fail;
	}
	/* Content class: permission events. Unlimited marks: one ignore mark
	 * per allowed executable on a whole machine exceeds the default. An
	 * unlimited queue: past the default limit the kernel would drop a
	 * permission event, which lets its exec run unasked, and a
	 * FAN_CLOSE_WRITE, which would leave a stale allow in the cache. */
	a->fan_fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK |
				  FAN_UNLIMITED_MARKS | FAN_UNLIMITED_QUEUE,
				  O_RDONLY | O_LARGEFILE | O_CLOEXEC | O_NOATIME);
	if (a->fan_fd < 0) {
		r = -errno;
		goto fail;
	}
	/* Exec notifications in a group of their own, so that the permission
	 * events are never read later for their sake, nor they sooner for
	 * the permission events'. */
	a->notify_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK,
				     O_RDONLY | O_LARGEFILE | O_CLOEXEC | O_NOATIME);
	if (a->notify_fd < 0) {
		r = -errno;
		goto fail;
	}
	/* FAN_ATTRIB needs a group that reports file handles. Without one
	 * (an old kernel), no ignore marks: every exec is asked. */
	a->attr_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_FID |
				   FAN_UNLIMITED_MARKS | FAN_UNLIMITED_QUEUE, O_RDONLY | O_CLOEXEC);
	if (a->attr_fd < 0)
		log_warning("fanotify cannot report attribute changes here (%m): every exec "
			    "will be asked about, none allowed by the kernel alone");
	a->notify_buf = aligned_alloc(8, AUTH_READ_BUF);
	if (!a->notify_buf) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = a;
	return 0;
fail:
	auth_free(a);
	return r;
}

void auth_set_answer_hook(authorizer *a, auth_answer_hook hook)
{
	a->answer_hook = hook;
}

int auth_start(authorizer *a)
{
	int err = pthread_create(&a->reader, NULL, reader_main, a);

	if (err)
		return -err;
	a->reader_started = true;
	if (a->rec) {
		recorder_set_source(a->rec, a->notify_fd, read_notifications, a);
		a->source_set = true;
	}
	for (; a->n_started < a->n_workers; a->n_started++) {
		err = pthread_create(&a->workers[a->n_started], NULL, worker_main, a);
		if (err)
			return -err;
	}
	return 0;
}

void auth_stop(authorizer *a)
{
	if (!a)
		return;
	if (a->source_set) {
		/* Before the group goes: the recorder reads it no more. */
		recorder_set_source(a->rec, -1, NULL, NULL);
		a->source_set = false;
	}
	if (a->reader_started) {
		(void)!eventfd_write(a->stop_fd, 1);
		pthread_join(a->reader, NULL);
		a->reader_started = false;
	}
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	/* A worker may be hashing terabytes of holes: not worth the wait. */
	for (job *j = a->inflight; j; j = j->next)
		atomic_store(&j->cancel, true);
	/* Closing the group lets the kernel allow whatever it still holds;
	 * from here on respond() writes nothing. */
	if (a->fan_fd >= 0)
		close(a->fan_fd);
	a->fan_fd = -1;
	if (a->notify_fd >= 0)
		close(a->notify_fd);
	a->notify_fd = -1;
	if (a->attr_fd >= 0)
		close(a->attr_fd);
	a->attr_fd = -1;
	pthread_cond_broadcast(&a->work_cond);
	pthread_mutex_unlock(&a->lock);
	for (unsigned i = 0; i < a->n_started; i++)
		pthread_join(a->workers[i], NULL);
	a->n_started = 0;
}

authorizer *auth_free(authorizer *a)
{
	if (!a)
		return NULL;
	auth_stop(a);
	for (unsigned lane = 0; lane < LANE_COUNT; lane++) {
		while (a->queue_head[lane]) {
			job *j = a->queue_head[lane];

			a->queue_head[lane] = j->next_queued;
			job_detach(a, j);
			job_free(j);
		}
	}
	if (a->stop_fd >= 0)
		close(a->stop_fd);
	cache_free(a->cache);
	free(a->notify_buf);
	policy_unref(a->pol);
	ruleset_unref(a->rs);
	free(a->workers);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->work_cond);
	free(a);
	return NULL;
}

static unsigned mark_flags(unsigned op, bool filesystem)
{
	return op | (filesystem ? FAN_MARK_FILESYSTEM : FAN_MARK_MOUNT);
}

int auth_mark(authorizer *a, const char *path, bool filesystem)
{
	int r;

	if (fanotify_mark(a->fan_fd, mark_flags(FAN_MARK_ADD, filesystem), FAN_OPEN_EXEC_PERM,
			  AT_FDCWD, path) < 0)
		return -errno;
	if (fanotify_mark(a->notify_fd, mark_flags(FAN_MARK_ADD, filesystem), FAN_OPEN_EXEC,
			  AT_FDCWD, path) < 0) {
		/* Both or neither: a mount whose execs would be decided but
		 * never logged counts as one that could not be marked. */
		r = -errno;
		(void)fanotify_mark(a->fan_fd, mark_flags(FAN_MARK_REMOVE, filesystem),
				    FAN_OPEN_EXEC_PERM, AT_FDCWD, path);
		return r;
	}
	return 0;
}

int auth_unmark(authorizer *a, const char *path, bool filesystem)
{
	int r = 0;

	if (fanotify_mark(a->fan_fd, mark_flags(FAN_MARK_REMOVE, filesystem), FAN_OPEN_EXEC_PERM,
			  AT_FDCWD, path) < 0)
		r = -errno;
	if (fanotify_mark(a->notify_fd, mark_flags(FAN_MARK_REMOVE, filesystem), FAN_OPEN_EXEC,
			  AT_FDCWD, path) < 0 && r == 0)
		r = -errno;
	return r;
}

void auth_publish(authorizer *a, policy *pol, ruleset *rs, auth_flush flush)
{
	policy *old_pol = NULL;
	ruleset *old_rs = NULL;

	pthread_mutex_lock(&a->lock);
	if (pol) {
		old_pol = a->pol;
		a->pol = policy_ref(pol);
	}
	if (rs) {
		old_rs = a->rs;
		a->rs = ruleset_ref(rs);
	}
	if (flush == AUTH_FLUSH_ALL) {
		cache_clear(a->cache);
		flush_kernel(a);
		atomic_fetch_add(&a->counters->cache_flushes, 1);
	} else if (flush == AUTH_FLUSH_DENIES) {
		cache_clear_denies(a->cache);
	}
	pthread_mutex_unlock(&a->lock);
	policy_unref(old_pol);
	ruleset_unref(old_rs);
}

policy *auth_policy(authorizer *a)
{
	policy *p;

	pthread_mutex_lock(&a->lock);
	p = policy_ref(a->pol);
	pthread_mutex_unlock(&a->lock);
	return p;
}

ruleset *auth_rules(authorizer *a)
{
	ruleset *rs;

	pthread_mutex_lock(&a->lock);
	rs = ruleset_ref(a->rs);
	pthread_mutex_unlock(&a->lock);
	return rs;
}

size_t auth_cache_count(authorizer *a)
{
	size_t n;

	pthread_mutex_lock(&a->lock);
	n = cache_count(a->cache);
	pthread_mutex_unlock(&a->lock);
	return n;
}

size_t auth_cache_count_dev(authorizer *a, uint64_t dev)
{
	size_t n;

	pthread_mutex_lock(&a->lock);
	n = cache_count_dev(a->cache, dev);
	pthread_mutex_unlock(&a->lock);
	return n;
}

int auth_cache_check_fd(authorizer *a, int fd, santad_decision *ret)
{
	cache_entry ce;
	struct stat st;
	file_key k;
	int r;

	*ret = SANTAD_DECISION_NONE;
	/* A client's file (checkcache), on santad's main loop. */
	r = file_fstat_nosync(fd, &st);
	if (r < 0)
		return r;
	file_key_from_stat(&k, &st);
	pthread_mutex_lock(&a->lock);
	if (cache_lookup(a->cache, &k, mono_usec(), &ce))
		*ret = ce.decision;
	pthread_mutex_unlock(&a->lock);
	return 0;
}
