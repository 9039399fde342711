/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ipc-probe: a client of ours with whatever role its file name gives it,
 * for the process-model tests (tests/e2e/test_process_peers.py).
 *
 * proclib.py compiles this against the build tree and installs copies
 * named santactl, santagui, santametricservice, ... into a directory listed
 * in TrustedExecutables, so that the IPC layer sees each copy as that role.
 * The tests then try every pair: which connections are accepted, and which
 * calls run.
 *
 *   ipc-probe --config FILE SOCKET SERVICE [METHOD]
 *
 * SERVICE is a full service name (santa.Santad, santa.SyncService,
 * santa.MetricService, santa.BundleService). METHOD, if given, is called
 * with an empty request. One line per step on stdout:
 *   connect ok privileged=0|1 server=ROLE
 *   connect failed: REASON
 *   call ok
 *   call failed: REASON: MESSAGE
 * Exit status: 0 all done, 2 connect failed, 3 call failed, 1 usage.
 *
 * Two more modes, for santagui's endpoints (test_process_gui_endpoint.py):
 *
 *   ipc-probe --config FILE --serve SOCKET SERVICE HANDOFF...
 *     A stand-in server of the role this copy is named as, serving SERVICE
 *     on SOCKET until killed. Every call gets an empty reply; a descriptor
 *     that comes with one (santagui's endpoint) is handed to the command
 *     HANDOFF as its descriptor 3 (and waited for), or, when HANDOFF is
 *     "self", connected over by this process, as santad does. One line per
 *     endpoint: "handoff exited N", "endpoint ok", "endpoint failed: R".
 *   ipc-probe --config FILE --endpoint SERVICE
 *     Connect as a client of SERVICE over the endpoint at descriptor 3,
 *     as whoever received it, and print "connect ok" or "connect failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "bundle.pb-c.h"
#include "config.h"
#include "ipc.h"
#include "metric.pb-c.h"
#include "notifier.pb-c.h"
#include "santad.pb-c.h"
#include "sync.pb-c.h"

static const ProtobufCServiceDescriptor *const probe_services[] = {
	&santa__santad__descriptor,
	&santa__sync_service__descriptor,
	&santa__metric_service__descriptor,
	&santa__bundle_service__descriptor,
	&santa__notifier__descriptor,
};

static const ProtobufCServiceDescriptor *probe_find_service(const char *name)
{
	for (size_t i = 0; i < sizeof(probe_services) / sizeof(probe_services[0]); i++)
		if (strcmp(probe_services[i]->name, name) == 0)
			return probe_services[i];
	return NULL;
}

static int probe_call(ipc_client *cl, const ProtobufCServiceDescriptor *desc,
		      const char *method)
{
	const ProtobufCMethodDescriptor *md =
		protobuf_c_service_descriptor_get_method_by_name(desc, method);
	ProtobufCMessage *req, *reply = NULL;
	char *errmsg = NULL;
	int r;

	if (!md) {
		fprintf(stderr, "ipc-probe: %s has no method %s\n", desc->name, method);
		return 1;
	}
	req = calloc(1, md->input->sizeof_message);
	if (!req)
		return 1;
	protobuf_c_message_init(md->input, req);
	r = ipc_client_call(cl, (unsigned)(md - desc->methods), req, -1, 0, &reply,
			    &errmsg);
	free(req);
	if (r < 0) {
		printf("call failed: %s: %s\n", ipc_strerror(r), errmsg ? errmsg : "");
		free(errmsg);
		return 3;
	}
	printf("call ok\n");
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	return 0;
}

/* --- Stand-in server --- */

typedef struct serve_ctx {
	sd_event *ev;
	const ipc_trust *trust;
	char **handoff;
	ipc_conn *self_conn;
	ipc_call *pending;      /* answered once our own endpoint is ready */
} serve_ctx;

static void serve_self_ready(ipc_conn *c, int err, void *userdata)
{
	serve_ctx *s = userdata;

	/* A caller that hears back at once may be done before we connected
	 * (santagui --hash-bundle): answer only now, as a service would. */
	if (s->pending)
		ipc_call_reply(s->pending, NULL);
	s->pending = NULL;
	if (err < 0)
		printf("endpoint failed: %s\n", ipc_strerror(err));
	else
		printf("endpoint ok\n");
	fflush(stdout);
}

static void serve_self(serve_ctx *s, ipc_call *call, int fd)
{
	ipc_conn_opts opts = { .userdata = s };
	int r;

	if (s->pending)
		ipc_call_reply(s->pending, NULL);
	s->pending = call;

	s->self_conn = ipc_conn_unref(s->self_conn);
	r = ipc_endpoint_connect(s->ev, fd, ipc_call_peer(call), s->trust,
				 &santa__notifier__descriptor, &opts, serve_self_ready,
				 &s->self_conn);
	if (r < 0) {
		printf("endpoint failed: %s\n", ipc_strerror(r));
		fflush(stdout);
		s->pending = NULL;
		ipc_call_reply(call, NULL);
	}
}

static void serve_handoff(serve_ctx *s, int fd)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		if (fd != 3 && dup2(fd, 3) != 3)
			_exit(127);
		if (fd == 3)
			(void)fcntl(3, F_SETFD, 0);
		execv(s->handoff[0], s->handoff);
		_exit(127);
	}
	close(fd);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		status = -1;
	printf("handoff exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	fflush(stdout);
}

static void serve_handler(ipc_call *call, const ProtobufCMessage *req, void *userdata)
{
	serve_ctx *s = userdata;
	int fd = ipc_call_take_fd(call);

	if (fd >= 0 && strcmp(s->handoff[0], "self") == 0) {
		serve_self(s, call, fd);
		return;
	}
	if (fd >= 0)
		serve_handoff(s, fd);
	ipc_call_reply(call, NULL);
}

static int probe_serve(const ipc_trust *trust, const char *path,
		       const ProtobufCServiceDescriptor *desc, char **handoff)
{
	serve_ctx s = { .trust = trust, .handoff = handoff };
	ipc_method *methods = calloc(desc->n_methods, sizeof(*methods));
	ipc_service svc = { .desc = desc, .methods = methods, .userdata = &s };
	ipc_server *srv = NULL;
	int fd, r;

	if (!methods || sd_event_default(&s.ev) < 0)
		return 1;
	for (unsigned i = 0; i < desc->n_methods; i++)
		methods[i] = (ipc_method){ serve_handler, IPC_METHOD_ACCEPT_FD, 0 };
	fd = ipc_listen_socket(path, 0666, (uid_t)-1, (gid_t)-1);
	if (fd < 0 || ipc_server_new(s.ev, fd, trust, &svc, NULL, &srv) < 0) {
		fprintf(stderr, "ipc-probe: serving on %s failed\n", path);
		return 1;
	}
	printf("serving\n");
	fflush(stdout);
	r = sd_event_loop(s.ev);
	ipc_conn_unref(s.self_conn);
	ipc_server_free(srv);
	sd_event_unref(s.ev);
	free(methods);
	return r < 0 ? 1 : 0;
}

/* --- Client over a received endpoint --- */

static void endpoint_ready(ipc_conn *c, int err, void *userdata)
{
	int *result = userdata;

	*result = err < 0 ? err : 1;
}

static int probe_endpoint(const ipc_trust *trust, const ProtobufCServiceDescriptor *desc)
{
	ipc_peer from = { 0 };
	ipc_conn_opts opts = { 0 };
	struct ucred cr;
	socklen_t len = sizeof(cr);
	char link[64];
	struct stat st;
	ipc_conn *c = NULL;
	sd_event *ev = NULL;
	int result = 0, r;

	/* Whoever made the endpoint (its socketpair's creator) is who we
	 * believe we talk to, as a receiver of it over IPC would. */
	if (getsockopt(3, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return 1;
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)cr.pid);
	if (stat(link, &st) < 0 || readlink(link, from.exe, sizeof(from.exe) - 1) < 0)
		return 1;
	from.pid = cr.pid;
	from.uid = cr.uid;
	from.gid = cr.gid;
	from.exe_dev = st.st_dev;
	from.exe_ino = st.st_ino;
	if (sd_event_default(&ev) < 0)
		return 1;
	opts.userdata = &result;
	r = ipc_endpoint_connect(ev, 3, &from, trust, desc, &opts, endpoint_ready, &c);
	if (r < 0)
		result = r;
	for (time_t end = time(NULL) + 5; result == 0 && time(NULL) < end;)
		sd_event_run(ev, 100000);
	if (result == 1)
		printf("connect ok\n");
	else
		printf("connect failed: %s\n", result ? ipc_strerror(result) : "no answer");
	ipc_conn_unref(c);
	sd_event_unref(ev);
	return result == 1 ? 0 : 2;
}

int main(int argc, char **argv)
{
	const ProtobufCServiceDescriptor *desc;
	ipc_trust *trust = NULL;
	ipc_client *cl = NULL;
	santa_config cfg;
	char err[512];
	int r;

	bool serve = argc >= 7 && strcmp(argv[3], "--serve") == 0;
	bool endpoint = argc == 5 && strcmp(argv[3], "--endpoint") == 0;

	if (argc < 5 || (argc > 6 && !serve) || strcmp(argv[1], "--config") != 0) {
		fprintf(stderr, "usage: %s --config FILE SOCKET SERVICE [METHOD]\n"
			"       %s --config FILE --serve SOCKET SERVICE HANDOFF...\n"
			"       %s --config FILE --endpoint SERVICE\n", argv[0], argv[0], argv[0]);
		return 1;
	}
	desc = probe_find_service(argv[serve ? 5 : 4]);
	santa_config_init(&cfg);
	if (!desc || santa_config_load(argv[2], &cfg, err, sizeof(err)) < 0 ||
	    ipc_trust_new(&trust) < 0 ||
	    ipc_trust_add_defaults(trust, cfg.trusted_executables) < 0) {
		fprintf(stderr, "ipc-probe: bad service or config: %s\n", desc ? err : argv[4]);
		return 1;
	}

	if (serve) {
		r = probe_serve(trust, argv[4], desc, argv + 6);
		goto out;
	}
	if (endpoint) {
		r = probe_endpoint(trust, desc);
		goto out;
	}
	r = ipc_client_connect(argv[3], trust, desc, 0, 0, &cl);
	if (r < 0) {
		printf("connect failed: %s\n", ipc_strerror(r));
		r = 2;
		goto out;
	}
	printf("connect ok privileged=%d server=%s\n", ipc_client_is_privileged(cl),
	       ipc_role_name(ipc_client_peer(cl)->role));
	fflush(stdout);
	r = argc == 6 ? probe_call(cl, desc, argv[5]) : 0;
out:
	ipc_client_free(cl);
	ipc_trust_free(trust);
	santa_config_done(&cfg);
	return r;
}
