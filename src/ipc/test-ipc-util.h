/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared pieces of the IPC tests: an Echo server on an sd_event loop in the
 * test process, and helpers to run forked peers. The test binary trusts
 * itself (as IPC_ROLE_TEST), so a forked child is a trusted peer; foreign
 * executables are run with exec.
 *
 * Children must not use cmocka's assertions (they would unwind into the
 * parent's copy of the test state): they check with CHILD_CHECK and exit.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc-internal.h"
#include "ipc.h"
#include "ipc_test.pb-c.h"

#define CHILD_CHECK(cond)                                                            \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "child %d: %s:%d: check failed: %s\n",      \
				(int)getpid(), __FILE__, __LINE__, #cond);           \
			_exit(1);                                                    \
		}                                                                    \
	} while (0)

enum { M_ECHO = 0, M_PRIVILEGED = 1, M_NOTIFY = 2 };

typedef struct test_server {
	sd_event *ev;
	ipc_trust *trust;
	ipc_server *server;
	ipc_service service;
	ipc_server_opts opts;
	char dir[64];
	char path[128];

	int n_connect;
	int n_close;
	int last_err;
	char last_reason[512];
	int privileged_ran;
	int notify_count;
	int echo_count;

	/* Calls held back until this many are pending (0 = answer at once). */
	int hold_until;
	struct held_call {
		ipc_call *call;
		const Santa__Ipctest__Blob *req;
	} *held;
	int n_held;
	int max_held;

	/* Optional hook for Notify (one-way, may carry a descriptor). */
	void (*on_notify)(struct test_server *ts, ipc_call *call, const Santa__Ipctest__Blob *b);
	void *hook_data;
} test_server;

extern const ipc_method test_echo_methods[3];

const char *test_self_exe(void);
ipc_trust *test_trust(void);
/* A server in a fresh 0755 directory, socket mode 0666. */
void test_server_start(test_server *ts, const ipc_limits *limits);
void test_server_stop(test_server *ts);
/* Run EV until CHILD exits; returns its exit status (or 128 + signal). */
int test_run_until_exit(sd_event *ev, pid_t child, uint64_t timeout_usec);
/* Run EV until *FLAG is non-zero or the timeout passes. */
bool test_run_until(sd_event *ev, const int *flag, uint64_t timeout_usec);
uint64_t test_now_usec(void);
/* fork(); the child gets default handlers for crash signals, so that a
 * crash ends it instead of unwinding into cmocka's copy of the test. */
pid_t test_fork(void);
/* Run the tests whose name matches $IPC_TEST_FILTER, or all. */
void test_filter_from_env(void);
/* Handler for Echo that child processes serve over their own loops. */
void test_echo_handler(ipc_call *call, const ProtobufCMessage *req, void *userdata);
