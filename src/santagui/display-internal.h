/* SPDX-License-Identifier: Apache-2.0 */
/* The displays behind display.h: each fills a display_ops. */
#pragma once

#include "display.h"

typedef struct display_ops {
	int (*show)(display *d, const notice *n, uint64_t id);
	void (*progress)(display *d, uint64_t id, const Santa__BundleProgress *p);
	void (*done)(display *d, uint64_t id, int err, const char *hash, unsigned count);
	void (*free)(display *d);
} display_ops;

struct display {
	const display_ops *ops;
	uint64_t next_id;
	void *impl;
};
