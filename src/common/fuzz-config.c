/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz the configuration reader: any bytes give a config or an error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/santa-fuzz-config-XXXXXX";
	char err[512];
	santa_config cfg;
	int fd = mkstemp(path);

	if (fd < 0)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (santa_config_load(path, &cfg, err, sizeof(err)) == 0)
		santa_config_done(&cfg);
	unlink(path);
	return 0;
}
