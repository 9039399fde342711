/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sync server over HTTP(S) with libcurl: the transport the engine's
 * sync_transport_ops expects.
 *
 * Every request is a POST of JSON to <base><stage>/<machine id>, compressed
 * as configured, with the original client's headers; redirects are not
 * followed. A request that fails is tried again (up to ATTEMPTS in all)
 * after BACKOFF_MS * 2^n milliseconds (4, 8, 16, 32 s with the defaults),
 * when it failed in transport or with a 5xx, 408 or 429; other answers
 * (a refused redirect, any other 4xx) would not change by asking again.
 * A 403 first fetches an XSRF token (once per sync, as the original) and
 * resends; the token is kept for later requests and syncs.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sync_engine.h"
#include "sync_protocol.h"

#define SYNC_HTTP_DEFAULT_ATTEMPTS 5
#define SYNC_HTTP_DEFAULT_BACKOFF_MS 1000
#define SYNC_HTTP_DEFAULT_TIMEOUT_MS 30000

typedef struct sync_http_opts {
	const char *base_url;
	const char *machine_id;
	sync_encoding encoding;
	const char *ca_file;                 /* ServerAuthRootsFile, or NULL */
	const char *cert_file;               /* ClientAuthCertificateFile (PEM) */
	const char *key_file;                /* ClientAuthKeyFile (PEM) */
	char *const *extra_headers;          /* "Name: value", NULL-terminated */
	const char *user_agent;              /* santactl-sync/<version> */
	uint32_t attempts;                   /* 0 = 5 */
	uint32_t backoff_ms;                 /* 0 = 1000 */
	uint32_t timeout_ms;                 /* 0 = 30000, per attempt */
	/* Set (to non-zero) from another thread to abandon what is running. */
	const atomic_int *cancel;
} sync_http_opts;

typedef struct sync_http sync_http;

/* OPTS' strings must outlive the transport. */
int sync_http_new(const sync_http_opts *opts, sync_http **ret);
sync_http *sync_http_free(sync_http *h);

/* The engine's transport: pass the sync_http as its userdata. */
extern const sync_transport_ops sync_http_transport;

/* Whether a SyncExtraHeaders entry may be sent: well-formed, and not one of
 * the headers the original refuses to let configuration override. */
bool sync_http_header_allowed(const char *header);
