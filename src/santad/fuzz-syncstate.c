/* SPDX-License-Identifier: Apache-2.0 */
/*
 * StateDirectory/sync-state.json, which holds what the sync server set:
 * a damaged or hand-edited file gives settings or an error naming it,
 * never a crash, and whatever loaded can be written back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "syncstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/santa-fuzz-syncstate-XXXXXX";
	char err[512] = "";
	syncstate st;
	int fd = mkstemp(path);

	if (fd < 0)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (syncstate_load(&st, path, err, sizeof(err)) < 0) {
		if (!strstr(err, path))
			abort();
	} else {
		Santa__SyncSettings none = SANTA__SYNC_SETTINGS__INIT;
		syncstate again;

		/* Written back as loaded, it loads again. */
		if (syncstate_update(&st, &none, err, sizeof(err)) < 0)
			abort();
		if (syncstate_load(&again, path, err, sizeof(err)) < 0)
			abort();
		syncstate_done(&again);
	}
	syncstate_done(&st);
	unlink(path);
	return 0;
}
