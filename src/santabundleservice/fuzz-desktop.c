/* SPDX-License-Identifier: Apache-2.0 */
/* The .desktop Name= reader: the file sits in a directory a user may
 * control, and root reads it. */
#include <stddef.h>
#include <stdint.h>

#include "bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[256];

	bundle_desktop_name((const char *)data, size, out, sizeof(out));
	bundle_desktop_name((const char *)data, size, out, 1);
	return 0;
}
