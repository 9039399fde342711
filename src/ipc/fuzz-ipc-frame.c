/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Everything a peer's bytes go through before a handler sees them: the
 * frame decoder and reassembly (ipc_rx_feed), then the bounded protobuf
 * decoding (ipc_unpack) of whatever message completes, with the schema the
 * receiver would use: the handshake messages, or a method's request or
 * reply in one of the project's services.
 *
 * Input: one byte choosing the service, then datagrams, each a 16-bit
 * little-endian length and that many bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ipc-internal.h"
#include "bundle.pb-c.h"
#include "ipc.pb-c.h"
#include "ipc_test.pb-c.h"
#include "metric.pb-c.h"
#include "notifier.pb-c.h"
#include "santad.pb-c.h"
#include "sync.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCServiceDescriptor *const services[] = {
	&santa__ipctest__echo__descriptor,
	&santa__santad__descriptor,
	&santa__sync_service__descriptor,
	&santa__sync_log_listener__descriptor,
	&santa__metric_service__descriptor,
	&santa__bundle_service__descriptor,
	&santa__notifier__descriptor,
};

static const ProtobufCMessageDescriptor *schema_of(const ProtobufCServiceDescriptor *svc,
						   const struct ipc_msg *m)
{
	const ProtobufCMethodDescriptor *md;

	switch (m->kind) {
	case IPC_K_CHALLENGE: return &santa__ipc__challenge__descriptor;
	case IPC_K_HELLO: return &santa__ipc__hello__descriptor;
	case IPC_K_HELLO_REPLY: return &santa__ipc__hello_reply__descriptor;
	case IPC_K_ERROR: return &santa__ipc__error__descriptor;
	default: break;
	}
	/* An unknown method closes the connection before decoding. */
	if (m->method >= svc->n_methods)
		return NULL;
	md = &svc->methods[m->method];
	return m->kind == IPC_K_REPLY ? md->output : md->input;
}

static void decode(const ProtobufCServiceDescriptor *svc, const struct ipc_msg *m)
{
	const ProtobufCMessageDescriptor *d = schema_of(svc, m);
	ProtobufCMessage *msg;

	if (d && ipc_unpack(d, m->data, m->len, &msg) == 0)
		protobuf_c_message_free_unpacked(msg, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCServiceDescriptor *svc;
	/* Frames are copied out so that reading past one is caught. */
	static uint8_t frame[IPC_FRAME_MAX];
	struct ipc_rx rx;
	char why[256];

	if (size < 1)
		return 0;
	svc = services[data[0] % (sizeof(services) / sizeof(services[0]))];
	ipc_rx_init(&rx, 256 * 1024);
	for (size_t off = 1; off + 2 <= size;) {
		size_t n = (size_t)data[off] | (size_t)data[off + 1] << 8;
		struct ipc_msg m;
		int r;

		off += 2;
		if (n > size - off)
			n = size - off;
		/* recvmsg() reports a larger datagram as MSG_TRUNC, which closes
		 * the connection before decoding. */
		if (n > sizeof(frame))
			break;
		memcpy(frame, data + off, n);
		off += n;
		r = ipc_rx_feed(&rx, frame, n, &m, why, sizeof(why));
		if (r < 0)
			break;          /* the connection would close here */
		if (r == 1)
			decode(svc, &m);
	}
	ipc_rx_reset(&rx);
	return 0;
}
