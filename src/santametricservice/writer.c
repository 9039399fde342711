/* SPDX-License-Identifier: Apache-2.0 */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "santa-build.h"

struct metric_writer {
	char *url;
	char *path;              /* file writer: the file replaced */
	CURL *curl;              /* http writer: kept for connection reuse */
	unsigned timeout_sec;
};

/* A reply body is read only to be thrown away; a bound keeps a
 * misbehaving server from making us read forever within the timeout. */
#define HTTP_MAX_REPLY (64 * 1024)

static size_t http_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	size_t *total = userdata;

	*total += size * nmemb;
	return *total > HTTP_MAX_REPLY ? 0 : size * nmemb;
}

static int file_path_from_url(const char *url, char **ret)
{
	char *path = NULL;
	CURLU *u = curl_url();
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK) {
		*ret = strdup(path);
		r = *ret ? 0 : -ENOMEM;
	}
	curl_free(path);
	curl_url_cleanup(u);
	return r;
}

int metric_writer_new(const char *url, unsigned timeout_sec, metric_writer **ret,
		      char *errbuf, size_t errsize)
{
	metric_writer *w;
	int r;

	w = calloc(1, sizeof(*w));
	if (!w || !(w->url = strdup(url))) {
		free(w);
		return -ENOMEM;
	}
	w->timeout_sec = timeout_sec ? timeout_sec : 30;
	if (strncmp(url, "file:", 5) == 0) {
		r = file_path_from_url(url, &w->path);
		if (r < 0) {
			snprintf(errbuf, errsize, "MetricURL \"%s\" names no file", url);
			metric_writer_free(w);
			return r;
		}
	} else {
		w->curl = curl_easy_init();
		if (!w->curl) {
			snprintf(errbuf, errsize, "making an HTTP client for \"%s\" failed",
				 url);
			metric_writer_free(w);
			return -ENOMEM;
		}
	}
	*ret = w;
	return 0;
}

metric_writer *metric_writer_free(metric_writer *w)
{
	if (!w)
		return NULL;
	if (w->curl)
		curl_easy_cleanup(w->curl);
	free(w->path);
	free(w->url);
	free(w);
	return NULL;
}

const char *metric_writer_url(const metric_writer *w)
{
	return w->url;
}

/* --- file:// --- */

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* "<dir>/.<name>.XXXXXX": in the same directory, so that rename() is
 * atomic, and hidden, so that a collector globbing *.prom skips it. */
static char *temp_template(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *tmpl;

	if (asprintf(&tmpl, "%.*s.%s.XXXXXX", (int)(slash - path + 1), path,
		     slash + 1) < 0)
		return NULL;
	return tmpl;
}

static int file_write(metric_writer *w, const char *data, size_t len,
		      char *errbuf, size_t errsize)
{
	const char *step = "creating a temporary file beside";
	char *tmp = temp_template(w->path);
	int fd, r;

	if (!tmp)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	step = "writing";
	r = write_all(fd, data, len);
	/* Readable by the collector, whichever user it runs as. */
	if (r == 0 && fchmod(fd, 0644) < 0)
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	step = "replacing";
	if (r == 0 && rename(tmp, w->path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
out:
	if (r < 0)
		snprintf(errbuf, errsize, "%s \"%s\" failed: %s", step, w->path,
			 strerror(-r));
	free(tmp);
	return r;
}

/* --- http:// and https:// --- */

static int http_setup(metric_writer *w, struct curl_slist *headers, const char *data,
		      size_t len, size_t *reply_bytes, char *curl_err)
{
	CURL *c = w->curl;
	CURLcode rc = CURLE_OK;

	curl_easy_reset(c);
	rc |= curl_easy_setopt(c, CURLOPT_URL, w->url);
	rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)w->timeout_sec);
	rc |= curl_easy_setopt(c, CURLOPT_USERAGENT, "santametricservice/" SANTA_VERSION);
	rc |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	rc |= curl_easy_setopt(c, CURLOPT_POST, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
	rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_discard);
	rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, reply_bytes);
	rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	return rc == CURLE_OK ? 0 : -EINVAL;
}

static int http_write(metric_writer *w, const char *content_type, const char *data,
		      size_t len, char *errbuf, size_t errsize)
{
	char curl_err[CURL_ERROR_SIZE] = "", ctype[128];
	struct curl_slist *headers = NULL, *h;
	size_t reply_bytes = 0;
	long status = 0;
	CURLcode rc;
	int r;

	snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
	/* No "Expect: 100-continue" round trip before the body. */
	h = curl_slist_append(headers, ctype);
	if (h)
		headers = h;
	h = h ? curl_slist_append(headers, "Expect:") : NULL;
	if (!h) {
		curl_slist_free_all(headers);
		return -ENOMEM;
	}
	r = http_setup(w, headers, data, len, &reply_bytes, curl_err);
	if (r < 0) {
		snprintf(errbuf, errsize, "setting up the POST to \"%s\" failed", w->url);
		goto out;
	}
	rc = curl_easy_perform(w->curl);
	if (rc != CURLE_OK && rc != CURLE_WRITE_ERROR) {
		snprintf(errbuf, errsize, "POST to \"%s\" failed: %s", w->url,
			 *curl_err ? curl_err : curl_easy_strerror(rc));
		r = -EIO;
		goto out;
	}
	curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		snprintf(errbuf, errsize, "POST to \"%s\" answered HTTP %ld", w->url, status);
		r = -EIO;
	}
out:
	curl_slist_free_all(headers);
	return r;
}

int metric_writer_write(metric_writer *w, const char *content_type,
			const char *data, size_t len, char *errbuf, size_t errsize)
{
	if (w->path)
		return file_write(w, data, len, errbuf, errsize);
	return http_write(w, content_type, data, len, errbuf, errsize);
}
