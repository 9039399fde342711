/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One sync, stage by stage: preflight, event upload, rule download,
 * postflight, then the server's settings. The engine does not know how it
 * reaches santad or the server: both come as tables of operations, so that
 * the service plugs in its IPC client and libcurl, and tests plug in fakes.
 *
 * What a failed sync leaves behind: events the server accepted (200) are
 * removed from santad's store; nothing else changes. Rules are handed to
 * santad only after the last page arrived, in one staged set that santad
 * applies in one transaction; settings only after postflight succeeded.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "santa.pb-c.h"
#include "santad.pb-c.h"
#include "sync.pb-c.h"
#include "sync_protocol.h"

/* santad's side of a sync. Each returns 0 or a negative error; replies are
 * freed with protobuf_c_message_free_unpacked(m, NULL). */
typedef struct sync_daemon_ops {
	int (*status)(void *ud, Santa__StatusReply **ret);
	int (*get_settings)(void *ud, Santa__SyncSettings **ret);
	int (*events_pending)(void *ud, uint32_t limit, int64_t after_id,
			      Santa__EventList **ret);
	int (*remove_events)(void *ud, const int64_t *ids, size_t n);
	int (*add_rules)(void *ud, const Santa__AddRulesRequest *req);
	int (*update_settings)(void *ud, const Santa__SyncSettings *settings);
	/* How the sync ended, for santad's metrics; NULL: not told. */
	int (*sync_finished)(void *ud, Santa__SyncStatus status);
	/* A message for the user's santagui (PostRuleSyncNotification);
	 * NULL: none is shown. */
	int (*post_notification)(void *ud, const char *message);
} sync_daemon_ops;

/* A response body, decoded from its Content-Encoding. */
typedef struct sync_buf {
	char *data;
	size_t len;
} sync_buf;

void sync_buf_done(sync_buf *b);

/* The server's side: POST BODY to STAGE ("preflight", ...); 0 only for an
 * HTTP 200, with the body in *RET; otherwise a negative error and a reason
 * in ERRBUF ("HTTP 500", "connection refused", ...). */
typedef struct sync_transport_ops {
	int (*post)(void *ud, const char *stage, const char *body, size_t len,
		    sync_buf *ret, char *errbuf, size_t errsize);
	/* A sync starts (optional): what the transport learnt for one sync
	 * only, such as having fetched an XSRF token, starts over. */
	void (*begin_sync)(void *ud);
} sync_transport_ops;

/* Where a line of the sync's log goes (and to `santactl sync`). */
typedef void (*sync_log_fn)(void *ud, int level, const char *line);

/*
 * Blocked executions this machine uploaded, by hash, so that the sync that
 * brings their allow rules can tell the user "NAME can now be run". The
 * original learns these names from its sync server's push notifications,
 * which this client does not receive; here they come from the blocked
 * events the engine itself uploaded. As the original's, they live in
 * memory only: the caller keeps one across syncs (zeroed to start, no
 * clean-up), touched only by the thread that runs syncs and uploads.
 */
#define SYNC_UNBLOCK_MAX 64          /* files remembered; the oldest go first */
#define SYNC_UNBLOCK_NAME_MAX 256    /* bytes of a name, with its NUL */

typedef struct sync_unblock_entry {
	char hash[65];                   /* file SHA-256, or bundle hash; "" free */
	char name[SYNC_UNBLOCK_NAME_MAX];
	/* Allow rules still to come: -1 before the first (a bundle's first
	 * rule says how many it has), 0 once the notice is due. */
	int64_t remaining;
	uint64_t age;
} sync_unblock_entry;

typedef struct sync_unblock {
	sync_unblock_entry entries[SYNC_UNBLOCK_MAX];
	uint64_t clock;
} sync_unblock;

/* Facts about this machine for preflight (see sync_sysinfo.h). */
typedef struct sync_host {
	const char *serial_num;
	const char *hostname;
	const char *os_version;
	const char *os_build;
	const char *model_identifier;
	const char *primary_user;
	const char *santa_version;
} sync_host;

typedef struct sync_engine {
	const sync_daemon_ops *daemon;
	void *daemon_ud;
	const sync_transport_ops *transport;
	void *transport_ud;
	sync_log_fn log;
	void *log_ud;

	const char *sync_base_url;
	const char *machine_id;
	sync_host host;

	/* Bounds on what one sync accepts from a server; 0 = defaults. */
	uint32_t max_rule_pages;          /* 10000 */
	uint64_t max_rules;               /* 2000000 */
	uint32_t rules_per_call;          /* rules per AddRules call: 5000 */

	/* Uploaded blocks waiting for their allow rules; NULL: no notices. */
	sync_unblock *unblock;

	/* Seconds since the epoch, for the sync timestamps (tests fix it). */
	int64_t (*now)(void);
	/* Non-zero once the service is stopping: a sync that ends then is
	 * not reported to santad, which may be stopping too. NULL: never. */
	const atomic_int *cancel;
} sync_engine;

typedef struct sync_result {
	Santa__SyncStatus status;
	int sync_type;                    /* the type performed */
	/* Seconds until the next full sync as the server set it: this sync's
	 * answer once the sync succeeded, else what santad saved from an
	 * earlier one; 0 when no server ever said (FullSyncInterval holds). */
	uint32_t full_sync_interval;
	uint32_t batch_size;
	uint64_t events_uploaded;
	uint64_t rules_received;
	uint64_t rules_processed;
} sync_result;

/* Run one full sync. REQUESTED is the type a caller asked for (santactl
 * --clean / --clean-all); it is recorded in santad first so that it holds
 * until a clean sync succeeds, as the original does. Once a sync has
 * started (SyncBaseURL and machine id are set), santad is told how it
 * ended, whatever the end. A sync that succeeded then posts "NAME can now
 * be run" for each remembered block whose allow rules have all been
 * applied (see sync_unblock); a notice that cannot be posted is logged and
 * dropped, never a reason to fail the sync. */
Santa__SyncStatus sync_engine_run(const sync_engine *e, int requested,
				  sync_result *ret);

/* Upload EVENTS now (a blocked execution), outside of a full sync, and
 * remove those with an id from santad's store once the server took them.
 * Blocked ones are remembered in E->unblock, as a full sync's are. */
int sync_engine_post_events(const sync_engine *e, Santa__Event *const *events,
			    size_t n);
