/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "sync_http.h"

#define SYNC_XSRF_MAX 4096
#define SYNC_DEFAULT_XSRF_HEADER "X-XSRF-TOKEN"

struct sync_http {
	sync_http_opts opts;
	CURL *curl;
	/* The XSRF token. As the original, a sync fetches one at most once
	 * (on its first 403); the next sync may fetch again, so that a server
	 * that rotates or forgets its tokens is not refused until a restart. */
	char *xsrf_token;
	char *xsrf_header;
	bool xsrf_fetched;
};

/* What a response carried, gathered by curl's callbacks. */
typedef struct sync_http_resp {
	char *data;
	size_t len;
	size_t cap;
	bool too_large;
	char *xsrf_token;
	char *xsrf_header;
} sync_http_resp;

static void sync_http_resp_done(sync_http_resp *r)
{
	free(r->data);
	free(r->xsrf_token);
	free(r->xsrf_header);
	memset(r, 0, sizeof(*r));
}

static size_t sync_http_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	sync_http_resp *r = ud;
	size_t n = size * nmemb, cap;
	char *grown;

	if (n > SYNC_MAX_RESPONSE_BYTES - r->len) {
		r->too_large = true;
		return 0;
	}
	if (r->len + n + 1 > r->cap) {
		cap = r->cap ? r->cap : 16384;
		while (cap < r->len + n + 1)
			cap *= 2;
		grown = realloc(r->data, cap);
		if (!grown)
			return 0;
		r->data = grown;
		r->cap = cap;
	}
	memcpy(r->data + r->len, ptr, n);
	r->len += n;
	r->data[r->len] = '\0';
	return n;
}

/* The value of header NAME in LINE ("Name: value\r\n"), or NULL. */
static char *sync_http_header_value(const char *line, size_t len, const char *name)
{
	size_t nlen = strlen(name), vlen;
	const char *v;

	if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return NULL;
	v = line + nlen + 1;
	vlen = len - nlen - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && isspace((unsigned char)v[vlen - 1]))
		vlen--;
	if (vlen == 0 || vlen > SYNC_XSRF_MAX)
		return NULL;
	return strndup(v, vlen);
}

static size_t sync_http_header(char *line, size_t size, size_t nmemb, void *ud)
{
	sync_http_resp *r = ud;
	size_t n = size * nmemb;
	char *v;

	/* The longer name first: X-XSRF-TOKEN-HEADER also starts with the
	 * shorter one, but not followed by ':'. */
	v = sync_http_header_value(line, n, "X-XSRF-TOKEN-HEADER");
	if (v) {
		free(r->xsrf_header);
		r->xsrf_header = v;
	}
	v = sync_http_header_value(line, n, SYNC_DEFAULT_XSRF_HEADER);
	if (v) {
		free(r->xsrf_token);
		r->xsrf_token = v;
	}
	return n;
}

static int sync_http_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
			      curl_off_t ultotal, curl_off_t ulnow)
{
	const sync_http *h = ud;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return h->opts.cancel && atomic_load(h->opts.cancel) ? 1 : 0;
}

bool sync_http_header_allowed(const char *header)
{
	static const char *const refused[] = {
		"Content-Encoding", "Content-Length", "Content-Type", "Connection",
		"Host", "Proxy-Authenticate", "Proxy-Authorization", "WWW-Authenticate",
		"Transfer-Encoding", "Expect",
	};
	const char *colon = header ? strchr(header, ':') : NULL;
	size_t nlen;

	if (!colon || colon == header || strpbrk(header, "\r\n"))
		return false;
	nlen = (size_t)(colon - header);
	for (const char *p = header; p < colon; p++)
		if (!isgraph((unsigned char)*p))
			return false;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (strlen(refused[i]) == nlen && strncasecmp(header, refused[i], nlen) == 0)
			return false;
	return true;
}

static int sync_http_setup(sync_http *h)
{
	CURL *c = h->curl;
	CURLcode rc = CURLE_OK;

	/* Redirects are refused, as the original refuses them. */
	rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	rc |= curl_easy_setopt(c, CURLOPT_USERAGENT, h->opts.user_agent);
	rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->opts.timeout_ms);
	rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->opts.timeout_ms);
	rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	rc |= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
			       (curl_off_t)SYNC_MAX_RESPONSE_BYTES);
	rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sync_http_write);
	rc |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sync_http_header);
	rc |= curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, sync_http_progress);
	rc |= curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	rc |= curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if (h->opts.ca_file)
		rc |= curl_easy_setopt(c, CURLOPT_CAINFO, h->opts.ca_file);
	if (h->opts.cert_file) {
		rc |= curl_easy_setopt(c, CURLOPT_SSLCERT, h->opts.cert_file);
		rc |= curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (h->opts.key_file) {
		rc |= curl_easy_setopt(c, CURLOPT_SSLKEY, h->opts.key_file);
		rc |= curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	}
	return rc == CURLE_OK ? 0 : -EINVAL;
}

int sync_http_new(const sync_http_opts *opts, sync_http **ret)
{
	sync_http *h;
	int r;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->opts = *opts;
	if (!h->opts.attempts)
		h->opts.attempts = SYNC_HTTP_DEFAULT_ATTEMPTS;
	if (!h->opts.backoff_ms)
		h->opts.backoff_ms = SYNC_HTTP_DEFAULT_BACKOFF_MS;
	if (!h->opts.timeout_ms)
		h->opts.timeout_ms = SYNC_HTTP_DEFAULT_TIMEOUT_MS;
	if (!h->opts.user_agent)
		h->opts.user_agent = "santactl-sync/";
	h->curl = curl_easy_init();
	if (!h->curl) {
		free(h);
		return -ENOMEM;
	}
	r = sync_http_setup(h);
	if (r < 0) {
		sync_http_free(h);
		return r;
	}
	*ret = h;
	return 0;
}

sync_http *sync_http_free(sync_http *h)
{
	if (!h)
		return NULL;
	curl_easy_cleanup(h->curl);
	free(h->xsrf_token);
	free(h->xsrf_header);
	free(h);
	return NULL;
}

static struct curl_slist *sync_http_append(struct curl_slist *l, const char *s, bool *oom)
{
	struct curl_slist *n = curl_slist_append(l, s);

	if (!n)
		*oom = true;
	return n ? n : l;
}

/* The request's headers: ours, the XSRF token, then the allowed extras. */
static struct curl_slist *sync_http_headers(const sync_http *h, bool compressed,
					    bool *oom)
{
	struct curl_slist *l = NULL;
	const char *enc = sync_encoding_header(h->opts.encoding);
	char line[SYNC_XSRF_MAX + 256];

	l = sync_http_append(l, "Content-Type: application/json", oom);
	l = sync_http_append(l, "Expect:", oom);
	if (compressed && enc) {
		snprintf(line, sizeof(line), "Content-Encoding: %s", enc);
		l = sync_http_append(l, line, oom);
	}
	if (h->xsrf_token) {
		snprintf(line, sizeof(line), "%s: %s",
			 h->xsrf_header ? h->xsrf_header : SYNC_DEFAULT_XSRF_HEADER,
			 h->xsrf_token);
		l = sync_http_append(l, line, oom);
	}
	for (char *const *x = h->opts.extra_headers; x && *x; x++)
		if (sync_http_header_allowed(*x))
			l = sync_http_append(l, *x, oom);
	return l;
}

/* One POST; *RET_STATUS is the HTTP status, 0 when none came. */
static CURLcode sync_http_perform(sync_http *h, const char *url, const uint8_t *body,
				  size_t len, bool compressed, sync_http_resp *resp,
				  long *ret_status)
{
	struct curl_slist *headers;
	bool oom = false;
	CURLcode rc;

	*ret_status = 0;
	headers = sync_http_headers(h, compressed, &oom);
	if (oom) {
		curl_slist_free_all(headers);
		return CURLE_OUT_OF_MEMORY;
	}
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, len ? (const char *)body : "");
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, resp);
	rc = curl_easy_perform(h->curl);
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, ret_status);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	return rc;
}

/* POST /xsrf/<id> with no body and keep the token it returns. */
static void sync_http_fetch_xsrf(sync_http *h)
{
	sync_http_resp resp = { 0 };
	char *url = NULL;
	long status;

	h->xsrf_fetched = true;
	if (sync_url_for_stage(h->opts.base_url, "xsrf", h->opts.machine_id, &url) < 0)
		return;
	if (sync_http_perform(h, url, NULL, 0, false, &resp, &status) == CURLE_OK &&
	    status == 200 && resp.xsrf_token) {
		free(h->xsrf_token);
		free(h->xsrf_header);
		h->xsrf_token = resp.xsrf_token;
		h->xsrf_header = resp.xsrf_header;
		resp.xsrf_token = NULL;
		resp.xsrf_header = NULL;
	}
	free(url);
	sync_http_resp_done(&resp);
}

/* Sleep MS milliseconds, waking early if the transport is cancelled. */
static bool sync_http_sleep(const sync_http *h, uint64_t ms)
{
	struct timespec slice = { .tv_sec = 0, .tv_nsec = 50 * 1000000L };

	for (uint64_t waited = 0; waited < ms; waited += 50) {
		if (h->opts.cancel && atomic_load(h->opts.cancel))
			return false;
		nanosleep(&slice, NULL);
	}
	return !(h->opts.cancel && atomic_load(h->opts.cancel));
}

static bool sync_http_retryable(CURLcode rc, long status)
{
	if (rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_OUT_OF_MEMORY ||
	    rc == CURLE_FILESIZE_EXCEEDED || rc == CURLE_WRITE_ERROR)
		return false;
	if (rc != CURLE_OK)
		return true;
	/* A redirect (refused) or a 4xx will not change by asking again,
	 * except these two. */
	return status >= 500 || status == 408 || status == 429;
}

static void sync_http_describe(CURLcode rc, long status, const sync_http_resp *resp,
			       const char *url, uint32_t attempts, char *errbuf,
			       size_t errsize)
{
	if (resp->too_large || rc == CURLE_FILESIZE_EXCEEDED)
		snprintf(errbuf, errsize, "the response from %s is larger than %u bytes",
			 url, SYNC_MAX_RESPONSE_BYTES);
	else if (rc == CURLE_ABORTED_BY_CALLBACK)
		snprintf(errbuf, errsize, "request to %s cancelled", url);
	else if (rc != CURLE_OK)
		snprintf(errbuf, errsize, "%s: %s (after %u attempts)", url,
			 curl_easy_strerror(rc), attempts);
	else
		snprintf(errbuf, errsize, "%s answered HTTP %ld (after %u attempts)", url,
			 status, attempts);
}

static int sync_http_post(void *ud, const char *stage, const char *body, size_t len,
			  sync_buf *ret, char *errbuf, size_t errsize)
{
	sync_http *h = ud;
	sync_http_resp resp = { 0 };
	uint8_t *wire = NULL;
	size_t wire_len = 0;
	bool compressed;
	char *url = NULL;
	CURLcode rc = CURLE_OK;
	long status = 0;
	uint32_t attempt;
	int r;

	r = sync_url_for_stage(h->opts.base_url, stage, h->opts.machine_id, &url);
	if (r < 0) {
		snprintf(errbuf, errsize, "SyncBaseURL \"%s\" is not an http(s) URL",
			 h->opts.base_url);
		return r;
	}
	r = sync_compress(h->opts.encoding, body, len, &wire, &wire_len, &compressed);
	if (r < 0) {
		free(url);
		snprintf(errbuf, errsize, "compressing the %s request: %s", stage, strerror(-r));
		return r;
	}

	for (attempt = 1; attempt <= h->opts.attempts; attempt++) {
		/* Exponential backoff, the original's 2^n seconds by default. */
		if (attempt > 1 && status != 403 &&
		    !sync_http_sleep(h, (uint64_t)h->opts.backoff_ms << attempt))
			break;
		sync_http_resp_done(&resp);
		rc = sync_http_perform(h, url, wire, wire_len, compressed, &resp, &status);
		if (rc == CURLE_OK && status == 200)
			break;
		if (rc == CURLE_OK && status == 403 && !h->xsrf_fetched) {
			sync_http_fetch_xsrf(h);
			continue;
		}
		if (!sync_http_retryable(rc, status))
			break;
	}

	if (rc == CURLE_OK && status == 200) {
		ret->data = resp.data ? resp.data : strdup("");
		ret->len = resp.len;
		resp.data = NULL;
		r = ret->data ? 0 : -ENOMEM;
	} else {
		sync_http_describe(rc, status, &resp, url,
				   attempt > h->opts.attempts ? h->opts.attempts : attempt,
				   errbuf, errsize);
		r = rc == CURLE_OK ? -EPROTO : -EIO;
	}
	sync_http_resp_done(&resp);
	free(wire);
	free(url);
	return r;
}

static void sync_http_begin_sync(void *ud)
{
	sync_http *h = ud;

	h->xsrf_fetched = false;
}

const sync_transport_ops sync_http_transport = {
	.post = sync_http_post,
	.begin_sync = sync_http_begin_sync,
};
