/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The recorder: everything that happens after the kernel has its answer.
 * The decision threads hand it records through a bounded queue and go on;
 * its own thread reads the exec notifications, reads /proc, writes the
 * event log (file, syslog, json or nothing), writes block messages on
 * terminals, and builds the events the sync server gets, which the main
 * loop stores.
 *
 * Bounds: allow records are dropped (and counted) once the queue holds
 * RECORDER_ALLOW_LIMIT records; denial records are admitted up to the larger
 * RECORDER_QUEUE_LIMIT, so that every denial is logged, every time, unless
 * the log itself cannot keep up for that long. Pushing never blocks. Exec
 * notifications not read yet wait in the kernel's queue of the
 * notification group (16384 events), whatever holds the thread up (a log
 * nobody reads); beyond that the kernel drops them and queues an overflow
 * event instead, counted with the fanotify overflows.
 *
 * ALLOW lines come from the FAN_OPEN_EXEC notification, which the kernel
 * queues for every exec, also for those it allowed by itself from an ignore
 * mark (a cached exec); so every exec is logged, with the decision cached
 * for its file. That notification is sent while the exec is still going
 * on: until the new image replaces the old one, /proc/PID/cmdline shows the
 * old program's arguments. The recorder therefore reads args= only once
 * /proc/PID/exe is the executed file, retrying for RECORDER_ARGS_WAIT_USEC,
 * and otherwise logs the line without args= rather than with someone
 * else's. A denied exec never runs, so DENY lines have no args.
 *
 * The recorder's own thread reads the notifications (recorder_set_source)
 * and reads the ids (uid, gid, ppid; from a pidfd, procinfo.h) as soon as
 * it sees one. When execs come fast it reads them in batches, at most one
 * batch per RECORDER_BATCH_PAUSE_USEC, since every wake-up costs more than
 * all it does for an exec; so a process that has exited and been reaped
 * by then (a program that runs for less than a millisecond, in a storm of
 * execs) is logged with uid=-1 and empty names: fanotify says nothing but
 * the pid. Such a record
 * is marked proc_gone, and the recorder reads nothing more about its pid
 * (which may be another process's by then). Denied processes cannot exit
 * first: their ids are read before the answer.
 *
 * It takes the file's path and, for a script, its #! interpreter from the
 * event's descriptor and closes it at once (exec_record_set_file): records
 * waiting for their exec to complete hold no open files.
 *
 * A dynamic program's exec also opens its ELF interpreter (ld-linux) for
 * exec, and a script's exec opens the script and then its interpreter;
 * each is authorized on its own (so `./script.sh` needs both allowed,
 * while `sh script.sh` is an exec of sh alone, which reads the script as a
 * plain file). The ELF interpreter is not logged (it would double every
 * line, or stand in for the program when the program's own line cannot be
 * read): exec_record_set_file resolves the interpreter an ELF program
 * names (PT_INTERP, from the process's root) to a device and inode, and
 * the next record of the same pid, if it is that file and follows within
 * RECORDER_LOADER_WINDOW_USEC, is dropped. This needs nothing of the
 * process, so it holds when the process is gone before its records are
 * read, and a program that another one execs in the same process (env,
 * exec in a shell) is never taken for an interpreter. The loader run as a
 * program (`ld.so PROG`) is the first exec of its process's new image, so
 * it is logged, with PROG among its args. A script is logged with its
 * interpreter's command line as its args.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "eventlog.h"
#include "policy.h"
#include "procinfo.h"
#include "santad.h"
#include "sha256.h"

#define RECORDER_QUEUE_LIMIT 65536u
#define RECORDER_ALLOW_LIMIT 8192u
#define RECORDER_ARGS_WAIT_USEC (20 * 1000u)
#define RECORDER_EVENT_LIMIT 4096u
#define RECORDER_ARGS_MAX 8192u
#define RECORDER_LINE_FIELDS_MAX 16u
/* A program's and its ELF interpreter's notifications are queued within
 * microseconds of each other, in one execve. */
#define RECORDER_LOADER_WINDOW_USEC (200 * 1000u)
/* The pause after a batch, taken when the recorder is busy: the batch had
 * RECORDER_BURST records or more (a dynamic program's exec brings two
 * notifications, its own and its ELF interpreter's; a script's three), or
 * the previous wake-up was less than RECORDER_BUSY_GAP_USEC before. */
#define RECORDER_BATCH_PAUSE_USEC 1000u
/* Records waiting for their exec to complete (to read args=) are looked at
 * this often for their first RECORDER_CHASE_FOR_USEC (recorder.c). */
#define RECORDER_CHASE_USEC 500u
#define RECORDER_CHASE_FOR_USEC 2000u
#define RECORDER_BURST 4u
#define RECORDER_BUSY_GAP_USEC 500u
/* How long, once santad stops, the recorder waits for a log reader that
 * does not read before it drops what is left. */
#define RECORDER_STOP_WAIT_USEC (1000 * 1000u)

typedef enum record_kind {
	RECORD_EXEC_ALLOWED,    /* an exec that happened: ALLOW line */
	RECORD_EXEC_DENIED,     /* DENY line, terminal message, maybe event */
	RECORD_EVENT,           /* a first-sight allow worth a sync event */
	RECORD_LINE,            /* another action's line (recorder_log_line) */
} record_kind;

typedef struct exec_record {
	struct exec_record *next;
	record_kind kind;
	pid_t pid;
	char *interp;           /* a script's #! interpreter (set_file), owned */
	bool has_loader;        /* an ELF program naming an interpreter (set_file): */
	uint64_t loader_dev;    /* that file, as the process finds it */
	uint64_t loader_ino;
	uint64_t dev;
	uint64_t ino;
	struct timespec when;   /* CLOCK_REALTIME of the event */
	uint64_t mono_usec;     /* CLOCK_MONOTONIC of the event */
	santad_decision decision;
	santad_reason reason;
	bool silent;
	bool has_sha256;
	uint8_t sha256[SANTA_SHA256_LEN];
	const char *explain;    /* static, or NULL */
	char *path;             /* NULL: unknown */
	char *custom_msg;       /* the deciding rule's, owned */
	char *custom_url;
	bool store_event;       /* also an event for the sync server */
	int rule_policy;        /* the deciding rule's, 0 when none */
	int rule_type;
	bool has_proc;          /* PROC read early (denials, notifications) */
	bool proc_gone;         /* the process was gone when PROC was read */
	proc_info proc;
	policy *pol;            /* the policy that decided (a reference) */
	char *fields;           /* RECORD_LINE: key\0value\0..., owned */
	size_t n_fields;
} exec_record;

/* A record with every field empty, times now; NULL when OOM. */
exec_record *exec_record_new(record_kind kind, pid_t pid);
void exec_record_free(exec_record *rec);
/* Take REC's path and, unless NO_INTERP says the file is known to name no
 * interpreter (exec_file_names_interp), a script's #! interpreter or an
 * ELF program's loader from FD (the file executed), so that FD can be
 * closed now. -errno when FD has no path. */
int exec_record_set_file(exec_record *rec, int fd, bool no_interp);
/* Whether the file behind FD names an interpreter its exec also opens: a
 * #! line, or an ELF PT_INTERP. For the decision cache, so that a cached
 * static program's line reads nothing of its file. */
bool exec_file_names_interp(int fd);

typedef struct recorder recorder;

int recorder_new(santad_counters *counters, recorder **ret);
recorder *recorder_free(recorder *r);
/* Where lines go. Applied by the recorder thread before its next line;
 * -errno when the log file cannot be opened (nothing changes then). */
int recorder_configure(recorder *r, santa_log_type type, const char *path);
int recorder_start(recorder *r);
/* Write what is queued, waiting at most RECORDER_STOP_WAIT_USEC for a log
 * that does not take it, then stop the thread. */
void recorder_stop(recorder *r);

/* Hand REC over (any thread). False when it was dropped: the caller still
 * owns it then. */
bool recorder_push(recorder *r, exec_record *rec);
/* Log a line of another action than EXEC (action=BUNDLE, ...), made of
 * FIELDS (at most RECORDER_LINE_FIELDS_MAX, copied) and stamped now: it
 * goes through the same queue as every other line, so it is written in
 * order with them, in the log's type and file of the moment. Admitted as
 * denials are (RECORDER_QUEUE_LIMIT); never blocks. False when dropped
 * (counted with the dropped lines). Any thread. */
bool recorder_log_line(recorder *r, const eventlog_field *fields, size_t n);
/* Where denials are shown to the user (gui.h); NULL: nowhere. Any time;
 * the gui must outlive the recorder's thread (recorder_stop). */
struct gui;
void recorder_set_gui(recorder *r, struct gui *g);
/* Reopen the log file (SIGHUP after logrotate moved it). */
void recorder_reopen(recorder *r);
/* Have the recorder's thread call READ(CTX) whenever FD is readable, and
 * once per batch, before it takes the records queued: READ reads what FD
 * has and pushes records (recorder_push). The authorizer's exec
 * notifications come this way, so that one thread, woken once per batch,
 * both reads them and logs them. FD -1: none. Once this returns, the
 * thread no longer calls the previous READ. Any thread. */
typedef void (*recorder_source_fn)(void *ctx);
void recorder_set_source(recorder *r, int fd, recorder_source_fn read, void *ctx);

/* Sync events built by the recorder, for the main loop to store: an
 * eventfd that becomes readable when some wait, and the queue itself. */
int recorder_event_fd(const recorder *r);
size_t recorder_take_events(recorder *r, Santa__Event **out, size_t max);
/* Free an event built by the recorder (not one unpacked by protobuf-c). */
void recorder_event_free(Santa__Event *ev);
