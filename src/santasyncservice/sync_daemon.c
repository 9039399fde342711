/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "santad.pb-c.h"
#include "sync_daemon.h"

/* Applying a large staged rule set can take santad a while; the original
 * waits five minutes for it. */
#define SYNC_DAEMON_TIMEOUT_USEC (30ULL * 1000000)
#define SYNC_DAEMON_ADD_RULES_TIMEOUT_USEC (300ULL * 1000000)
/* A short wait: the end of a sync only feeds santad's metrics. */
#define SYNC_DAEMON_FINISHED_TIMEOUT_USEC (2ULL * 1000000)

/* The index of santad's method NAME, looked up by name so that the order
 * of methods in santad.proto can change. */
static unsigned sync_daemon_method(const char *name)
{
	const ProtobufCMethodDescriptor *m =
		protobuf_c_service_descriptor_get_method_by_name(&santa__santad__descriptor, name);

	return m ? (unsigned)(m - santa__santad__descriptor.methods) : UINT32_MAX;
}

/* The engine reports errors with strerror(): give it errno values, and log
 * santad's own reason here, where it is known. */
static int sync_daemon_errno(int err)
{
	switch (err) {
	case IPC_E_DISCONNECTED:
		return -ENOTCONN;
	case IPC_E_TIMEOUT:
		return -ETIMEDOUT;
	case IPC_E_NOT_PERMITTED:
		return -EPERM;
	case IPC_E_INVALID:
		return -EINVAL;
	case IPC_E_PEER:
		return -EREMOTEIO;
	case IPC_E_LIMIT:
		return -ENOBUFS;
	default:
		return err;
	}
}

static int sync_daemon_call(void *ud, const char *name, const ProtobufCMessage *req,
			    uint64_t timeout, ProtobufCMessage **ret)
{
	ProtobufCMessage *reply = NULL;
	char *errmsg = NULL;
	unsigned m = sync_daemon_method(name);
	int r;

	if (m == UINT32_MAX)
		return -ENOSYS;
	r = ipc_client_call(ud, m, req, -1, timeout, &reply, &errmsg);
	if (r < 0) {
		log_warning("santad's %s failed: %s%s%s", name, ipc_strerror(r),
			    errmsg ? ": " : "", errmsg ? errmsg : "");
		free(errmsg);
		return sync_daemon_errno(r);
	}
	free(errmsg);
	if (ret)
		*ret = reply;
	else if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	return 0;
}

static int sync_daemon_status(void *ud, Santa__StatusReply **ret)
{
	Santa__Empty req = SANTA__EMPTY__INIT;

	return sync_daemon_call(ud, "Status", &req.base, SYNC_DAEMON_TIMEOUT_USEC,
				(ProtobufCMessage **)ret);
}

static int sync_daemon_get_settings(void *ud, Santa__SyncSettings **ret)
{
	Santa__Empty req = SANTA__EMPTY__INIT;

	return sync_daemon_call(ud, "GetSyncSettings", &req.base, SYNC_DAEMON_TIMEOUT_USEC,
				(ProtobufCMessage **)ret);
}

static int sync_daemon_events_pending(void *ud, uint32_t limit, int64_t after_id,
				      Santa__EventList **ret)
{
	Santa__EventsRequest req = SANTA__EVENTS_REQUEST__INIT;

	req.limit = limit;
	req.after_id = after_id;
	return sync_daemon_call(ud, "EventsPending", &req.base, SYNC_DAEMON_TIMEOUT_USEC,
				(ProtobufCMessage **)ret);
}

static int sync_daemon_remove_events(void *ud, const int64_t *ids, size_t n)
{
	Santa__RemoveEventsRequest req = SANTA__REMOVE_EVENTS_REQUEST__INIT;

	req.ids = (int64_t *)ids;
	req.n_ids = n;
	return sync_daemon_call(ud, "RemoveEvents", &req.base, SYNC_DAEMON_TIMEOUT_USEC,
				NULL);
}

static int sync_daemon_add_rules(void *ud, const Santa__AddRulesRequest *req)
{
	return sync_daemon_call(ud, "AddRules", &req->base,
				req->final ? SYNC_DAEMON_ADD_RULES_TIMEOUT_USEC :
					     SYNC_DAEMON_TIMEOUT_USEC, NULL);
}

static int sync_daemon_update_settings(void *ud, const Santa__SyncSettings *s)
{
	return sync_daemon_call(ud, "UpdateSyncSettings", &s->base,
				SYNC_DAEMON_TIMEOUT_USEC, NULL);
}

static int sync_daemon_sync_finished(void *ud, Santa__SyncStatus status)
{
	Santa__SyncFinishedRequest req = SANTA__SYNC_FINISHED_REQUEST__INIT;

	req.status = (uint32_t)status;
	return sync_daemon_call(ud, "SyncFinished", &req.base,
				SYNC_DAEMON_FINISHED_TIMEOUT_USEC, NULL);
}

static int sync_daemon_post_notification(void *ud, const char *message)
{
	Santa__NotificationMessage req = SANTA__NOTIFICATION_MESSAGE__INIT;

	req.message = (char *)message;
	return sync_daemon_call(ud, "PostRuleSyncNotification", &req.base,
				SYNC_DAEMON_TIMEOUT_USEC, NULL);
}

const sync_daemon_ops sync_daemon_ipc_ops = {
	.status = sync_daemon_status,
	.get_settings = sync_daemon_get_settings,
	.events_pending = sync_daemon_events_pending,
	.remove_events = sync_daemon_remove_events,
	.add_rules = sync_daemon_add_rules,
	.update_settings = sync_daemon_update_settings,
	.sync_finished = sync_daemon_sync_finished,
	.post_notification = sync_daemon_post_notification,
};

int sync_daemon_connect(const char *path, const ipc_trust *trust, ipc_client **ret)
{
	return ipc_client_connect(path, trust, &santa__santad__descriptor,
				  IPC_ROLE_BIT(IPC_ROLE_SANTAD), 0, ret);
}
