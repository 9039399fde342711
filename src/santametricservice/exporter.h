/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The export worker: a thread that hands rendered exports to the writer,
 * so that a slow or hung collector (an HTTP POST may take up to
 * MetricExportTimeout) never stalls the service's event loop, and with it
 * santad's connection.
 *
 * At most one export waits while another is being written; a newer one
 * replaces it, since each export is a complete snapshot. A writer that
 * fails logs once per failure streak, and once more when it works again.
 */
#pragma once

#include <stddef.h>

#include "format.h"

typedef struct exporter exporter;

/* URL and FORMAT passed metric_export_check(). Starts the thread. */
int exporter_new(metric_format format, const char *url, unsigned timeout_sec,
		 exporter **ret, char *errbuf, size_t errsize);
/* Stop after the write in progress (unwritten exports are dropped) and
 * join the thread. Accepts NULL. */
exporter *exporter_free(exporter *e);

/* Queue TEXT (malloc'd; taken) for writing. */
void exporter_submit(exporter *e, char *text, size_t len);

metric_format exporter_format(const exporter *e);
