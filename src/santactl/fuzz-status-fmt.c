/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl status` prints whatever santad's StatusReply holds: any
 * decodable reply gives a text report and a --json report that parses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "status_fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	Santa__StatusReply *st;
	json_object *obj;
	char *json;

	if (!null && !(null = fopen("/dev/null", "we")))
		abort();
	st = santa__status_reply__unpack(NULL, size, data);
	if (!st)
		return 0;
	santactl_status_print(null, st);
	json = santactl_status_json(st);
	if (!json)
		abort();
	obj = json_tokener_parse(json);
	if (!obj)
		abort();
	json_object_put(obj);
	free(json);
	santa__status_reply__free_unpacked(st, NULL);
	return 0;
}
