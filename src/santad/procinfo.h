/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the event log and the sync events say about the process that
 * executed: read from /proc after the kernel has been answered, on the
 * recorder thread, never on the decision path (reading another process's
 * command line takes its memory map lock, which a stuck process can hold).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct proc_info {
	pid_t ppid;
	long uid;                 /* real uid/gid; -1 when the process is gone */
	long gid;
	char user[64];            /* "" when unknown */
	char group[64];
	char comm[32];
	char parent_comm[32];
	uint32_t tty_nr;          /* controlling terminal, 0 = none */
} proc_info;

/* Read PID's ids and parent (a pidfd's PIDFD_GET_INFO; /proc/PID/status
 * before Linux 6.13), and with PARENT also its terminal and name (stat)
 * and its parent's name. -ESRCH when it is gone, reaped (INFO then holds
 * uid/gid -1 and empty names). No user or group names: those may need NSS
 * (a network directory), see procinfo_names. Safe to call while PID is
 * blocked in an exec we are deciding: neither takes its memory map lock
 * nor its exec lock. stat (and status) hold a reference to PID's address
 * space while they are read (see procinfo_args), so PARENT is only asked
 * for a process held in its exec (a denial) or for a sync event. */
int procinfo_read_ids(pid_t pid, proc_info *info, bool parent);
/* Fill INFO's user and group names from its ids. */
void procinfo_names(proc_info *info);
/* Both. */
int procinfo_read(pid_t pid, proc_info *info);

/* PID's command line, arguments joined by spaces, at most MAX bytes (then
 * cut). *RET is malloc'd; NULL with 0 when it has none (a kernel thread, a
 * zombie). The kernel reads it from PID's memory, holding a reference to
 * its address space for the read: a PID that exits meanwhile keeps its
 * executable write-locked until the read ends (a writer that opens it then
 * sees ETXTBSY for those microseconds), as with ps or any reader of
 * /proc/PID/cmdline. There is no other way to the arguments; the recorder
 * reads them once per exec, and procinfo_read_ids never takes such a
 * reference. */
int procinfo_args(pid_t pid, size_t max, char **ret);

/* The path of our own descriptor FD (malloc'd), NULL when it has none. */
char *procinfo_fd_path(int fd);

/* Does PID execute the file DEV/INO now? 1 yes, 0 no, -errno when it
 * cannot be told (gone: -ESRCH/-ENOENT). */
int procinfo_exe_is(pid_t pid, uint64_t dev, uint64_t ino);

/* The names of uid/gid, cached for a minute (NSS may be slow). */
void procinfo_user_name(long uid, char *buf, size_t size);
void procinfo_group_name(long gid, char *buf, size_t size);

/* Logged-in users and their sessions ("user@pts/0") from utmp, each list
 * NULL-terminated, malloc'd, at most 64 entries. */
int procinfo_sessions(char ***ret_users, char ***ret_sessions);
void procinfo_strv_free(char **v);
