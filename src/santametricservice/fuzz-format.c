/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A MetricSet as it comes off the wire: decoded, checked, and when the check
 * passes rendered in every format. The JSON formats must parse back, and
 * every check failure must come with a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "format.h"
#include "metricset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void render_all(const Santa__MetricSet *set)
{
	for (int f = 0; f < METRIC_FORMAT_MAX; f++) {
		size_t len = 0;
		char *text;

		if (metric_format_render(f, set, &text, &len) < 0)
			abort();
		if (strlen(text) != len)
			abort();
		if (f != METRIC_FORMAT_PROMETHEUS) {
			json_object *obj = json_tokener_parse(text);

			if (!obj)
				abort();
			json_object_put(obj);
		}
		free(text);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Santa__MetricSet *set;
	char err[512] = "";

	set = santa__metric_set__unpack(NULL, size, data);
	if (!set)
		return 0;
	if (metric_set_check(set, err, sizeof(err)) == 0)
		render_all(set);
	else if (!err[0])
		abort();
	metric_set_free(set);
	return 0;
}
