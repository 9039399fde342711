/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What santagui shows comes from santad's notifications, and their detail
 * URL template and messages from the sync server or the configuration:
 * any decodable BlockNotification gives a notice (or ENOMEM), and the
 * text helpers take any string. The first byte picks the notification
 * kind; the rest is the message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "notice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_notice(int r, notice *n)
{
	/* Out of memory, or a detail URL past its bound. */
	if (r == -ENOMEM || r == -E2BIG)
		return;
	if (r < 0 || !n->summary || !n->body)
		abort();
	notice_done(n);
}

static void text_helpers(const uint8_t *data, size_t size)
{
	notice_url_values v = { .file_sha = "ab", .username = "u&<>%20", .hostname = "h" };
	char *s = malloc(size + 1), *out;

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	free(notice_plain_text(s));
	free(notice_markup_escape(s));
	if (notice_expand_url(s, &v, &out) == 0)
		free(out);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	notice n;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0: {
		Santa__BlockNotification *b =
			santa__block_notification__unpack(NULL, size - 1, data + 1);

		if (b) {
			check_notice(notice_block(b, &n), &n);
			santa__block_notification__free_unpacked(b, NULL);
		}
		break;
	}
	case 1: {
		Santa__ClientModeNotification *m =
			santa__client_mode_notification__unpack(NULL, size - 1, data + 1);

		if (m) {
			check_notice(notice_mode(m, &n), &n);
			santa__client_mode_notification__free_unpacked(m, NULL);
		}
		break;
	}
	case 2: {
		Santa__RuleSyncNotification *s =
			santa__rule_sync_notification__unpack(NULL, size - 1, data + 1);

		if (s) {
			check_notice(notice_rule_sync(s, &n), &n);
			santa__rule_sync_notification__free_unpacked(s, NULL);
		}
		break;
	}
	default:
		text_helpers(data + 1, size - 1);
		break;
	}
	return 0;
}
