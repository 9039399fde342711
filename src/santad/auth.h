/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The authorizer: fanotify exec permission events in, answers out.
 *
 * Two fanotify groups. The permission group (FAN_CLASS_CONTENT) has
 * FAN_OPEN_EXEC_PERM on the watched mounts, and the reader thread reads
 * it at once, since each of its events is an exec that waits. The
 * notification group has FAN_OPEN_EXEC on the same mounts: one event per
 * exec that happened, cached or not, from which the ALLOW lines are made;
 * the recorder's thread reads it in batches (nothing waits for it), and
 * closes each event's descriptor once the line's record has what it needs
 * (recorder.h). A permission event for a file in the decision cache is
 * answered at once. Otherwise the file (the event's own descriptor, never a
 * path opened again) goes to a pool of hash workers; concurrent execs of
 * the same file wait for the same hash. Files only root may write are
 * hashed in a lane of their own that users' files cannot fill; users'
 * files take turns by owner, and one hashed for longer than
 * DecisionTimeoutMs gives its worker up to another owner's (auth.c). Each event has a deadline
 * (DecisionTimeoutMs): when it passes, the event is
 * answered by FailClosed (deny only in LOCKDOWN) and the hash finishes into
 * the cache for the next exec. A file that cannot be read gets the same
 * answer. Nothing on this path waits for a log write, a database, the main
 * loop or another process: the rules and the policy are immutable snapshots
 * in memory, and the lock below is only ever held for memory operations
 * and non-blocking system calls.
 *
 * An allowed, cacheable file also gets a fanotify ignore mark for
 * FAN_OPEN_EXEC_PERM, so the kernel allows its next execs by itself; the
 * kernel drops that mark when the file is written. A write through a
 * shared mapping does not count as one, so the same inode mark also asks
 * for FAN_CLOSE_WRITE, and santad drops its cache entry and the ignore
 * mark when the file is closed after writing. Denials are never cached in
 * the kernel. A policy change that could turn an allow into a deny empties
 * the cache and flushes every inode mark (FAN_MARK_FLUSH) under the same
 * lock that publishing a decision takes, so that no stale allow survives.
 *
 * Descriptors. An event's descriptor is read-only and is closed once the
 * event is answered (a permission event) or its record made (a
 * notification); only a hash job keeps its own duplicate, for as long as
 * the hash runs. None of them keeps a writer out: ETXTBSY comes from the
 * write lock the kernel holds on the image of a running program, for as
 * long as that program's address space lives, never from a plain
 * descriptor. What santad must not do is keep a finished program's address
 * space alive, which reading some /proc files of a process that exits
 * meanwhile does (procinfo.h). A file rewritten while it is being hashed is
 * legitimately racy: the hash is thrown away when the file's identity
 * (size, mtime, ctime) changed meanwhile, and the file is read again; after
 * AUTH_HASH_ATTEMPTS readings the waiting execs are denied in LOCKDOWN
 * whatever FailClosed says; nothing is cached, and the next exec is hashed
 * again. A rewrite that keeps the size and both
 * times (within one tick of a filesystem's coarse clock) cannot be told
 * from the file itself; the FAN_CLOSE_WRITE mark covers the writes that
 * come after an allow.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "recorder.h"
#include "santad.h"

#define AUTH_MAX_PENDING 8192u   /* unanswered permission events */
#define AUTH_MAX_JOBS 4096u      /* files being hashed or queued */
#define AUTH_READ_BUF (64 * 1024)  /* bytes of events read at once, per group */
#define AUTH_HASH_ATTEMPTS 3u    /* readings of a file that changes while hashed */

typedef struct authorizer authorizer;

typedef enum auth_flush {
	AUTH_FLUSH_NONE,
	AUTH_FLUSH_DENIES,       /* only santad's cached denials */
	AUTH_FLUSH_ALL,          /* the cache and the kernel's allows */
} auth_flush;

/* Create the fanotify group. POL and RS are referenced. */
int auth_new(santad_counters *counters, recorder *rec, unsigned hash_threads,
	     policy *pol, ruleset *rs, authorizer **ret);
/* Stop (if started) and free. */
authorizer *auth_free(authorizer *a);
/* Called (on a decision thread, so it must never block) with every answer
 * given to the kernel: its decision and reason, whether the cache gave it,
 * and the microseconds from reading the event to answering it. Set before
 * auth_start. */
typedef void (*auth_answer_hook)(santad_decision decision, santad_reason reason, bool cached,
				 uint64_t usec);
void auth_set_answer_hook(authorizer *a, auth_answer_hook hook);
int auth_start(authorizer *a);
/* Answer every pending permission event (by FailClosed) and stop the
 * threads. After this, marks remain but nobody answers: close soon. */
void auth_stop(authorizer *a);

/* Mark what PATH is on: its mount, or with FILESYSTEM its whole
 * filesystem. -errno from fanotify_mark. */
int auth_mark(authorizer *a, const char *path, bool filesystem);
int auth_unmark(authorizer *a, const char *path, bool filesystem);

/* Publish new snapshots (referenced; NULL keeps the current one) and flush
 * what they require, atomically with respect to decisions. */
void auth_publish(authorizer *a, policy *pol, ruleset *rs, auth_flush flush);
/* References to the snapshots in use. */
policy *auth_policy(authorizer *a);
ruleset *auth_rules(authorizer *a);

size_t auth_cache_count(authorizer *a);
size_t auth_cache_count_dev(authorizer *a, uint64_t dev);
/* The cached decision for the file behind FD (NONE if not cached). */
int auth_cache_check_fd(authorizer *a, int fd, santad_decision *ret);
