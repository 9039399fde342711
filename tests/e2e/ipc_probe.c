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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.pb-c.h"
#include "config.h"
#include "ipc.h"
#include "metric.pb-c.h"
#include "santad.pb-c.h"
#include "sync.pb-c.h"

static const ProtobufCServiceDescriptor *const probe_services[] = {
	&santa__santad__descriptor,
	&santa__sync_service__descriptor,
	&santa__metric_service__descriptor,
	&santa__bundle_service__descriptor,
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

int main(int argc, char **argv)
{
	const ProtobufCServiceDescriptor *desc;
	ipc_trust *trust = NULL;
	ipc_client *cl = NULL;
	santa_config cfg;
	char err[512];
	int r;

	if (argc < 5 || argc > 6 || strcmp(argv[1], "--config") != 0) {
		fprintf(stderr, "usage: %s --config FILE SOCKET SERVICE [METHOD]\n", argv[0]);
		return 1;
	}
	desc = probe_find_service(argv[4]);
	santa_config_init(&cfg);
	if (!desc || santa_config_load(argv[2], &cfg, err, sizeof(err)) < 0 ||
	    ipc_trust_new(&trust) < 0 ||
	    ipc_trust_add_defaults(trust, cfg.trusted_executables) < 0) {
		fprintf(stderr, "ipc-probe: bad service or config: %s\n", desc ? err : argv[4]);
		return 1;
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
