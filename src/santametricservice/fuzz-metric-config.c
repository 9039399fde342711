/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MetricFormat and MetricURL as an administrator (or a configuration
 * management tool) wrote them: checked, and when accepted turned into a
 * writer, which must name a file for file:// URLs. Nothing is written.
 *
 * Input: the format, a NUL byte, the URL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 2), *url, err[512] = "";
	metric_writer *w = NULL;
	metric_format f;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = text[size + 1] = '\0';
	url = text + strlen(text) + 1;
	if (metric_export_check(text, url, &f, err, sizeof(err)) < 0) {
		if (!err[0])
			abort();
	} else if (metric_writer_new(url, 1, &w, err, sizeof(err)) == 0) {
		if (strcmp(metric_writer_url(w), url) != 0)
			abort();
		metric_writer_free(w);
	} else if (!err[0]) {
		abort();
	}
	free(text);
	return 0;
}
