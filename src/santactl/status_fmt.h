/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `santactl status` output, text and JSON, from santad's StatusReply.
 * Pure code, unit-tested in test-status-fmt.c; every JSON key is
 * documented in docs/santactl-status.md.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "santad.pb-c.h"

/* The text report: ">>> Daemon Info" and the other sections, with rows
 * "  %-25s | %s" as the original prints them. */
void santactl_status_print(FILE *f, const Santa__StatusReply *st);

/* The --json report, pretty-printed, without a final newline; malloc'd,
 * NULL on ENOMEM. */
char *santactl_status_json(const Santa__StatusReply *st);

/* SECS since the epoch as "2024/05/11 02:41:38 +0000" in local time, or
 * "Never" for 0. */
void santactl_format_time(int64_t secs, char *buf, size_t size);
