/* SPDX-License-Identifier: Apache-2.0 */
#include "exporter.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "writer.h"

struct exporter {
	metric_format format;
	metric_writer *writer;

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;                 /* under LOCK */
	char *pending;             /* under LOCK: the next export to write */
	size_t pending_len;
	uint64_t replaced;         /* under LOCK: in the current streak */

	/* Only the worker thread touches these. */
	uint64_t failures;         /* in the current streak */
	uint64_t written;
};

static void exporter_report(exporter *e, int r, const char *err)
{
	const char *url = metric_writer_url(e->writer);

	if (r < 0) {
		if (e->failures++ == 0)
			log_warning("Exporting metrics to \"%s\" failed, ignoring until it "
				    "works again: %s", url, err);
		return;
	}
	if (e->failures > 0)
		log_notice("Exporting metrics to \"%s\" works again, after %llu failed "
			   "export(s)", url, (unsigned long long)e->failures);
	else if (e->written == 0)
		log_info("Exported metrics to \"%s\"", url);
	e->failures = 0;
	e->written++;
}

static void *exporter_main(void *arg)
{
	exporter *e = arg;

	pthread_mutex_lock(&e->lock);
	for (;;) {
		char err[512] = "", *text;
		size_t len;
		int r;

		while (!e->stop && !e->pending)
			pthread_cond_wait(&e->cond, &e->lock);
		if (e->stop)
			break;
		text = e->pending;
		len = e->pending_len;
		e->pending = NULL;
		pthread_mutex_unlock(&e->lock);

		r = metric_writer_write(e->writer, metric_format_content_type(e->format),
					text, len, err, sizeof(err));
		free(text);
		exporter_report(e, r, err);

		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

int exporter_new(metric_format format, const char *url, unsigned timeout_sec,
		 exporter **ret, char *errbuf, size_t errsize)
{
	exporter *e;
	int r;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->format = format;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	r = metric_writer_new(url, timeout_sec, &e->writer, errbuf, errsize);
	if (r < 0) {
		exporter_free(e);
		return r;
	}
	r = -pthread_create(&e->thread, NULL, exporter_main, e);
	if (r < 0) {
		snprintf(errbuf, errsize, "starting the export thread failed: %s",
			 strerror(-r));
		exporter_free(e);
		return r;
	}
	e->thread_started = true;
	*ret = e;
	return 0;
}

exporter *exporter_free(exporter *e)
{
	if (!e)
		return NULL;
	if (e->thread_started) {
		pthread_mutex_lock(&e->lock);
		e->stop = true;
		pthread_cond_signal(&e->cond);
		pthread_mutex_unlock(&e->lock);
		pthread_join(e->thread, NULL);
	}
	free(e->pending);
	metric_writer_free(e->writer);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
	return NULL;
}

void exporter_submit(exporter *e, char *text, size_t len)
{
	uint64_t replaced;

	pthread_mutex_lock(&e->lock);
	if (e->pending)
		e->replaced++;
	else
		e->replaced = 0;
	replaced = e->replaced;
	free(e->pending);
	e->pending = text;
	e->pending_len = len;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
	/* Once per streak of exports that found the writer still busy. */
	if (replaced == 1)
		log_notice("Exporting metrics to \"%s\" is slower than santad sends them; "
			   "exports waiting to be written are replaced by newer ones",
			   metric_writer_url(e->writer));
}

metric_format exporter_format(const exporter *e)
{
	return e->format;
}
