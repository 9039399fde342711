# SPDX-License-Identifier: Apache-2.0
"""A foreign client of a SOCK_SEQPACKET socket: connect, maybe send one
frame, and read what the server says until it hangs up or time runs out.

proclib imports seqpacket_try from here; proclib.foreign_try runs this
file's text in a separate python3 (as another user), which is why it
imports nothing of the tests:

    python3 -c "$(cat seqpacket_client.py)" PATH SEND-HEX TIMEOUT

prints {"frames": [hex...], "closed": bool, "denied": bool}, denied when
the socket's mode kept it from connecting at all.
"""
import json
import socket
import sys
import time


def seqpacket_try(path, timeout=3.0, send=None):
    """Connect to PATH as this (foreign) python process, optionally send
    SEND, and read until the server closes or TIMEOUT. Returns (frames,
    closed): what the server sent, and whether it hung up."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    frames = []
    closed = False
    try:
        s.connect(path)
        if send is not None:
            try:
                s.send(send)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not data:
                closed = True
                break
            frames.append(data)
    finally:
        s.close()
    return frames, closed


def main(argv):
    path, send, timeout = argv[1], argv[2], float(argv[3])
    try:
        frames, closed = seqpacket_try(path, timeout, bytes.fromhex(send) if send else None)
    except PermissionError:
        print(json.dumps({"frames": [], "closed": True, "denied": True}))
        return 0
    print(json.dumps({"frames": [f.hex() for f in frames], "closed": closed,
                      "denied": False}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
