/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The frame decoder and the bounded unpacking on their own, without
 * sockets: every way a frame may be wrong is refused with its reason, and
 * fragments reassemble exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipc-internal.h"
#include "ipc_test.pb-c.h"
#include "santad.pb-c.h"

static size_t mk(uint8_t *buf, uint8_t kind, uint16_t flags, uint64_t id, const void *payload,
		 uint32_t len, uint32_t total)
{
	struct ipc_frame_hdr h = {
		.magic = IPC_FRAME_MAGIC, .kind = kind, .flags = flags, .method = 1, .id = id,
		.len = len, .total = total,
	};

	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	return sizeof(h) + len;
}

static int feed(struct ipc_rx *rx, const uint8_t *buf, size_t n, struct ipc_msg *m, char *why)
{
	return ipc_rx_feed(rx, buf, n, m, why, 256);
}

static void test_single_frame(void **state)
{
	uint8_t buf[128];
	struct ipc_rx rx;
	struct ipc_msg m;
	char why[256];
	size_t n = mk(buf, IPC_K_CALL, 0, 42, "abc", 3, 3);

	ipc_rx_init(&rx, 1024);
	assert_int_equal(feed(&rx, buf, n, &m, why), 1);
	assert_int_equal(m.kind, IPC_K_CALL);
	assert_int_equal(m.method, 1);
	assert_int_equal(m.id, 42);
	assert_int_equal(m.len, 3);
	assert_memory_equal(m.data, "abc", 3);
	assert_false(m.fragmented);
	ipc_rx_reset(&rx);
}

static void test_fragments(void **state)
{
	uint8_t buf[128];
	struct ipc_rx rx;
	struct ipc_msg m;
	char why[256];

	ipc_rx_init(&rx, 1024);
	assert_int_equal(feed(&rx, buf, mk(buf, IPC_K_REPLY, IPC_F_MORE, 7, "abcd", 4, 10), &m,
			      why), 0);
	assert_int_equal(feed(&rx, buf, mk(buf, IPC_K_REPLY, IPC_F_MORE | IPC_F_CONT, 7, "efg",
					   3, 10), &m, why), 0);
	assert_int_equal(feed(&rx, buf, mk(buf, IPC_K_REPLY, IPC_F_CONT, 7, "hij", 3, 10), &m,
			      why), 1);
	assert_int_equal(m.len, 10);
	assert_memory_equal(m.data, "abcdefghij", 10);
	assert_true(m.fragmented);
	/* The next message starts afresh. */
	assert_int_equal(feed(&rx, buf, mk(buf, IPC_K_CALL, 0, 8, "z", 1, 1), &m, why), 1);
	assert_int_equal(m.id, 8);
	ipc_rx_reset(&rx);
}

struct bad {
	const char *what;
	int err;
	const char *reason;
};

static void expect_bad(struct ipc_rx *rx, const uint8_t *buf, size_t n, const struct bad *b)
{
	struct ipc_msg m;
	char why[256] = "";
	int r = feed(rx, buf, n, &m, why);

	if (r != b->err || !strstr(why, b->reason))
		fail_msg("%s: got %d '%s'", b->what, r, why);
}

static void test_bad_frames(void **state)
{
	uint8_t buf[128];
	struct ipc_rx rx;
	struct ipc_msg m;
	char why[256];
	size_t n;

	ipc_rx_init(&rx, 64);
	n = mk(buf, IPC_K_CALL, 0, 1, "abc", 3, 3);
	expect_bad(&rx, buf, 5, &(struct bad){ "short", IPC_E_INVALID, "truncated frame (5" });
	expect_bad(&rx, buf, n - 1, &(struct bad){ "cut", IPC_E_INVALID, "header says 3" });
	buf[0] = 0;
	expect_bad(&rx, buf, n, &(struct bad){ "magic", IPC_E_INVALID, "bad magic" });
	mk(buf, 0, 0, 1, "abc", 3, 3);
	expect_bad(&rx, buf, n, &(struct bad){ "kind 0", IPC_E_INVALID, "unknown frame kind" });
	mk(buf, IPC_K_MAX, 0, 1, "abc", 3, 3);
	expect_bad(&rx, buf, n, &(struct bad){ "kind max", IPC_E_INVALID, "unknown frame kind" });
	mk(buf, IPC_K_CALL, 0x80, 1, "abc", 3, 3);
	expect_bad(&rx, buf, n, &(struct bad){ "flags", IPC_E_INVALID, "unknown frame flags" });
	mk(buf, IPC_K_CALL, 0, 1, "abc", 3, 65);
	expect_bad(&rx, buf, n, &(struct bad){ "limit", IPC_E_LIMIT, "oversized message" });
	mk(buf, IPC_K_CALL, 0, 1, "abc", 3, 9);
	expect_bad(&rx, buf, n, &(struct bad){ "short msg", IPC_E_INVALID, "truncated message" });
	mk(buf, IPC_K_CALL, IPC_F_CONT, 1, "abc", 3, 9);
	expect_bad(&rx, buf, n, &(struct bad){ "cont", IPC_E_INVALID, "without a first" });
	mk(buf, IPC_K_CALL, IPC_F_MORE, 1, "", 0, 9);
	expect_bad(&rx, buf, sizeof(struct ipc_frame_hdr),
		   &(struct bad){ "empty", IPC_E_INVALID, "bad first fragment" });
	mk(buf, IPC_K_CALL, IPC_F_MORE, 1, "abc", 3, 2);
	expect_bad(&rx, buf, n, &(struct bad){ "len>total", IPC_E_INVALID, "frame of 3 bytes" });

	/* Fragments that do not add up. */
	assert_int_equal(feed(&rx, buf, mk(buf, IPC_K_CALL, IPC_F_MORE, 1, "abc", 3, 5), &m, why),
			 0);
	n = mk(buf, IPC_K_CALL, IPC_F_CONT, 1, "abc", 3, 5);
	expect_bad(&rx, buf, n, &(struct bad){ "overrun", IPC_E_INVALID, "bad fragment" });
	ipc_rx_reset(&rx);
	assert_int_equal(feed(&rx, buf, mk(buf, IPC_K_CALL, IPC_F_MORE, 1, "abc", 3, 5), &m, why),
			 0);
	n = mk(buf, IPC_K_CALL, IPC_F_CONT, 2, "ab", 2, 5);
	expect_bad(&rx, buf, n, &(struct bad){ "other id", IPC_E_INVALID, "interleaved" });
	ipc_rx_reset(&rx);
}

/* A small message that would decode into a huge structure is refused. */
static void test_unpack_budget(void **state)
{
	size_t count = 100000, len = count * 2;
	uint8_t *buf = malloc(len);
	ProtobufCMessage *m = NULL;
	Santa__Ipctest__Blob b = SANTA__IPCTEST__BLOB__INIT;
	uint8_t small[64];

	assert_non_null(buf);
	/* AddRulesRequest.rules: 100000 empty Rule messages, 2 bytes each. */
	for (size_t i = 0; i < count; i++) {
		buf[2 * i] = 0x0a;
		buf[2 * i + 1] = 0x00;
	}
	assert_int_equal(ipc_unpack(&santa__add_rules_request__descriptor, buf, len, &m),
			 IPC_E_INVALID);
	/* A few are fine. */
	assert_int_equal(ipc_unpack(&santa__add_rules_request__descriptor, buf, 200, &m), 0);
	assert_int_equal(((Santa__AddRulesRequest *)m)->n_rules, 100);
	protobuf_c_message_free_unpacked(m, NULL);
	free(buf);

	b.seq = 5;
	len = protobuf_c_message_pack(&b.base, small);
	assert_int_equal(ipc_unpack(&santa__ipctest__blob__descriptor, small, len, &m), 0);
	assert_int_equal(((Santa__Ipctest__Blob *)m)->seq, 5);
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(ipc_unpack(&santa__ipctest__blob__descriptor, (const uint8_t *)"\xff", 1,
				    &m), IPC_E_INVALID);
}

static void test_errors_and_roles(void **state)
{
	assert_int_equal(ipc_error_from_wire(10003), IPC_E_NOT_PERMITTED);
	assert_int_equal(ipc_error_from_wire(10001), IPC_E_PEER);   /* not the peer's to say */
	assert_int_equal(ipc_error_from_wire(2), IPC_E_PEER);
	assert_int_equal(ipc_error_to_wire(-2), 10005u);
	assert_string_equal(ipc_strerror(IPC_E_TIMEOUT), "timed out");
	assert_string_equal(ipc_role_name(ipc_role_from_name("santactl")), "santactl");
	assert_int_equal(ipc_role_from_name("bash"), IPC_ROLE_NONE);
	assert_false(ipc_role_allowed(IPC_ROLE_NONE, 0));
	assert_true(ipc_role_allowed(IPC_ROLE_GUI, 0));
	assert_false(ipc_role_allowed(IPC_ROLE_GUI, IPC_ROLE_BIT(IPC_ROLE_SANTAD)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_frame),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_unpack_budget),
		cmocka_unit_test(test_errors_and_roles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
