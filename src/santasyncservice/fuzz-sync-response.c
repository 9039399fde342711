/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every sync server response goes through one of these parsers. The first
 * byte picks the parser, the rest is the response body.
 */
#include <stddef.h>
#include <stdint.h>

#include "sync_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sync_preflight_response pre;
	sync_rule_page page;
	const char *body;
	size_t len, bundles;
	char err[256];

	if (size < 1)
		return 0;
	body = (const char *)data + 1;
	len = size - 1;
	switch (data[0] % 3) {
	case 0:
		if (sync_preflight_response_parse(body, len, &pre, err, sizeof(err)) == 0) {
			(void)sync_resolve_type(SANTA__SYNC_TYPE__SYNC_TYPE_CLEAN_ALL, &pre);
			sync_preflight_response_done(&pre);
		}
		break;
	case 1:
		if (sync_rule_page_parse(body, len, 1000, &page, err, sizeof(err)) == 0)
			sync_rule_page_done(&page);
		break;
	default:
		(void)sync_eventupload_response_parse(body, len, &bundles, err, sizeof(err));
		break;
	}
	return 0;
}
