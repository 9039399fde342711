"""A sync server for the tests: speaks Santa's sync protocol, checks every
request against what the original client sends, records what it got, and
misbehaves when told to.

Stdlib only. Use it from a test:

    with SyncServer() as srv:
        srv.preflight = {"client_mode": "LOCKDOWN"}
        srv.rules = [rule(HASH, "BLOCKLIST")]
        ... point SyncBaseURL at srv.base_url, sync ...
        assert srv.errors == []

or by hand: python3 sync_server.py --port 8080 --rules rules.json

Checks follow the original client and the servers that depend on its quirks:
POST only; Content-Type exactly application/json (Rudolph rejects anything
else); bodies compressed as Content-Encoding says (deflate must be a zlib
stream, which Moroz decodes unconditionally); empty bodies never
compressed; every key the original sends, with its JSON type (integers as
numbers, never strings; serial_num; santa_version as YYYY.N); the machine
id in the URL and in the body; ruledownload cursors echoed back exactly.
A request that fails a check is answered 400 and its reason kept in
.errors, which every test asserts is empty.
"""

import argparse
import gzip
import json
import re
import ssl
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BASE_PATH = "/v1/santa/"          # Moroz's, to exercise URL resolution
XSSI = b")]}'\n"
STAGES = ("preflight", "eventupload", "ruledownload", "postflight", "xsrf")
DECISIONS = {
    f"{a}_{b}" for a in ("ALLOW", "BLOCK")
    for b in ("UNKNOWN", "BINARY", "CERTIFICATE", "SCOPE", "TEAMID", "SIGNINGID", "CDHASH")
} | {"BUNDLE_BINARY"}
HEX64 = re.compile(r"^[0-9a-f]{64}$")

PREFLIGHT_KEYS = {
    "serial_num": str, "hostname": str, "os_version": str, "os_build": str,
    "model_identifier": str, "santa_version": str, "primary_user": str,
    "machine_id": str, "client_mode": str, "request_clean_sync": bool,
    "binary_rule_count": int, "certificate_rule_count": int,
    "compiler_rule_count": int, "transitive_rule_count": int,
    "teamid_rule_count": int, "signingid_rule_count": int,
    "cdhash_rule_count": int,
}
EVENT_KEYS = {
    "file_sha256": str, "file_path": str, "file_name": str,
    "executing_user": str, "logged_in_users": list, "current_sessions": list,
    "decision": str, "pid": int, "ppid": int, "parent_name": str,
}
EVENT_OPTIONAL = {
    "execution_time": (int, float), "file_bundle_id": str, "file_bundle_path": str,
    "file_bundle_executable_rel_path": str, "file_bundle_name": str,
    "file_bundle_version": str, "file_bundle_version_string": str,
    "file_bundle_hash": str, "file_bundle_hash_millis": (int, float),
    "file_bundle_binary_count": int, "team_id": str, "signing_id": str,
    "cdhash": str, "signing_chain": list,
}
POSTFLIGHT_KEYS = {"rules_received": int, "rules_processed": int, "machine_id": str}


def rule(identifier, policy, rule_type="BINARY", **extra):
    """A rule object as servers send it."""
    return dict(identifier=identifier, policy=policy, rule_type=rule_type, **extra)


def _is_type(value, want):
    # bool is an int in Python, but JSON true is never a count.
    if isinstance(value, bool):
        return want is bool
    return isinstance(value, want)


class SyncServer:
    """The server and its state. Attributes tests set:

    preflight     dict sent as the preflight response
    rules         list of rule dicts served by ruledownload
    page_size     rules per page (0: all in one page)
    empty_pages   put an empty page (with a cursor) before each page
    xssi          prefix responses with the ")]}'\\n" guard (or, if it is a
                  bytes value, with that)
    gzip_responses  compress responses (Content-Encoding: gzip); "deflate"
                  sends zlib streams (Content-Encoding: deflate) instead
    require_xsrf  answer 403 until the client fetched /xsrf/<id> and sends
                  the token back
    faults        {stage: fault} where fault is one of
                  ("status", code[, times])  answer CODE (times: how often, default always)
                  ("slow", seconds)          wait before answering
                  ("truncate",)              cut the JSON body in half
                  ("garbage",)               answer 200 with an HTML page
                  ("close",)                 close the connection, no answer
                  ("redirect", url)          answer 302 to URL
    lose_page     index of a rule page answered 500 every time
    endless_cursor  always send another cursor
    """

    def __init__(self, machine_id=None, host="127.0.0.1", port=0, tls=None):
        """TLS, if given, is {"cert": PEM, "key": PEM[, "client_ca": PEM]}:
        serve https, and with client_ca require a client certificate."""
        self.machine_id = machine_id
        self.preflight = {"client_mode": "MONITOR", "batch_size": 50}
        self.rules = []
        self.page_size = 0
        self.empty_pages = False
        self.xssi = False
        self.gzip_responses = False
        self.require_xsrf = False
        self.faults = {}
        self.lose_page = None
        self.endless_cursor = False
        self.eventupload_response = {}

        self.lock = threading.Lock()
        self.requests = []        # (stage, headers dict, decoded body)
        self.events = []
        self.postflights = []
        self.errors = []
        self.xsrf_token = "tok-" + str(id(self))
        self._xsrf_given = False
        self._fault_counts = {}
        self._last_cursor = None

        handler = type("Handler", (_Handler,), {"server_state": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread = None
        self.scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls["cert"], tls["key"])
            if tls.get("client_ca"):
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(tls["client_ca"])
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def base_url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}{BASE_PATH}"

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stages(self):
        """The stages requested so far, in order."""
        with self.lock:
            return [r[0] for r in self.requests]

    def bodies(self, stage):
        with self.lock:
            return [r[2] for r in self.requests if r[0] == stage]

    def reset_log(self):
        with self.lock:
            self.requests.clear()
            self.events.clear()
            self.postflights.clear()
            self.errors.clear()

    # --- what each stage answers -------------------------------------

    def _rule_page(self, cursor):
        """(rules, next cursor) for the page CURSOR names."""
        pages = []
        size = self.page_size or max(len(self.rules), 1)
        for i in range(0, max(len(self.rules), 1), size):
            if self.empty_pages:
                pages.append([])
            pages.append(self.rules[i:i + size])
        index = int(cursor.split("-")[1]) if cursor else 0
        if self.endless_cursor:
            return [], f"page-{index + 1}", index
        rules = pages[index] if index < len(pages) else []
        nxt = f"page-{index + 1}" if index + 1 < len(pages) else None
        return rules, nxt, index

    def answer(self, stage, body):
        """The JSON response for STAGE, or (status, None)."""
        if stage == "preflight":
            return 200, self.preflight
        if stage == "eventupload":
            with self.lock:
                self.events.extend(body.get("events", []))
            return 200, self.eventupload_response
        if stage == "ruledownload":
            rules, nxt, index = self._rule_page(body.get("cursor"))
            if self.lose_page is not None and index == self.lose_page:
                return 500, None
            self._last_cursor = nxt
            resp = {"rules": rules}
            if nxt:
                resp["cursor"] = nxt
            return 200, resp
        if stage == "postflight":
            with self.lock:
                self.postflights.append(body)
            return 200, {}
        return 404, None

    # --- checks ---------------------------------------------------------

    def check(self, stage, machine_id, headers, raw, body):
        """Reasons this request is not what the original client sends."""
        errs = []
        if machine_id != (self.machine_id or machine_id):
            errs.append(f"machine id {machine_id!r} in the URL, expected {self.machine_id!r}")
        if not headers.get("user-agent", "").startswith("santactl-sync/"):
            errs.append(f"User-Agent {headers.get('user-agent')!r}")
        if stage == "xsrf":
            return errs
        if headers.get("content-type") != "application/json":
            errs.append(f"Content-Type {headers.get('content-type')!r}")
        if not isinstance(body, dict):
            return errs + [f"body is not a JSON object: {body!r:.80}"]
        if body.get("machine_id") != machine_id:
            errs.append(f"machine_id {body.get('machine_id')!r} differs from the URL's")
        checker = getattr(self, "_check_" + stage)
        return errs + checker(body)

    @staticmethod
    def _check_keys(obj, required, optional, where):
        errs = []
        for key, want in required.items():
            if key not in obj:
                errs.append(f"{where}: missing {key}")
            elif not _is_type(obj[key], want):
                errs.append(f"{where}: {key} is {obj[key]!r}, not {want}")
        for key, value in obj.items():
            if key in required:
                continue
            if key not in optional:
                errs.append(f"{where}: unexpected key {key}")
            elif not _is_type(value, optional[key]):
                errs.append(f"{where}: {key} is {value!r}")
        return errs

    def _check_preflight(self, b):
        errs = self._check_keys(b, PREFLIGHT_KEYS, {}, "preflight")
        if not re.fullmatch(r"\d{4}\.\d+", str(b.get("santa_version"))):
            errs.append(f"santa_version {b.get('santa_version')!r} is not YYYY.N")
        if b.get("client_mode") not in ("MONITOR", "LOCKDOWN"):
            errs.append(f"client_mode {b.get('client_mode')!r}")
        for key, value in b.items():
            if key.endswith("_count") and isinstance(value, int) and value < 0:
                errs.append(f"{key} is negative")
        if not b.get("serial_num"):
            errs.append("serial_num is empty")
        return errs

    def _check_eventupload(self, b):
        errs = self._check_keys(b, {"events": list, "machine_id": str}, {}, "eventupload")
        for i, ev in enumerate(b.get("events") or []):
            where = f"event {i}"
            if not isinstance(ev, dict):
                errs.append(f"{where} is not an object")
                continue
            errs += self._check_keys(ev, EVENT_KEYS, EVENT_OPTIONAL, where)
            if not HEX64.match(str(ev.get("file_sha256"))):
                errs.append(f"{where}: file_sha256 {ev.get('file_sha256')!r}")
            if ev.get("decision") not in DECISIONS:
                errs.append(f"{where}: decision {ev.get('decision')!r}")
            if "/" in str(ev.get("file_name")) or not ev.get("file_name"):
                errs.append(f"{where}: file_name {ev.get('file_name')!r} is not a name")
            if not str(ev.get("file_path")).startswith("/"):
                errs.append(f"{where}: file_path {ev.get('file_path')!r} is not a directory")
            if (ev.get("decision") == "BUNDLE_BINARY") == ("execution_time" in ev):
                errs.append(f"{where}: execution_time present iff not BUNDLE_BINARY")
        return errs

    def _check_ruledownload(self, b):
        errs = self._check_keys(b, {"machine_id": str}, {"cursor": str}, "ruledownload")
        if b.get("cursor") != self._last_cursor and "cursor" in b:
            errs.append(f"cursor {b.get('cursor')!r}, last sent {self._last_cursor!r}")
        if "cursor" not in b:
            self._last_cursor = None
        return errs

    def _check_postflight(self, b):
        return self._check_keys(b, POSTFLIGHT_KEYS, {"syncType": str}, "postflight")


def decode_body(headers, raw):
    """The request's JSON after undoing Content-Encoding, or raise ValueError."""
    enc = headers.get("content-encoding")
    if not raw:
        if enc:
            raise ValueError(f"empty body sent with Content-Encoding {enc}")
        return None
    if enc == "deflate":
        if raw[0] != 0x78:
            raise ValueError("deflate body is not a zlib stream (RFC 1950)")
        raw = zlib.decompress(raw)
    elif enc == "gzip":
        raw = gzip.decompress(raw)
    elif enc is not None:
        raise ValueError(f"unknown Content-Encoding {enc}")
    return json.loads(raw)


class _Handler(BaseHTTPRequestHandler):
    server_state = None
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._reply(405, None)

    do_PUT = do_GET

    def do_POST(self):
        st = self.server_state
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self.rfile.read(int(headers.get("content-length", 0)))
        m = re.fullmatch(re.escape(BASE_PATH) + r"([a-z]+)/([^/?]+)", self.path)
        if not m or m.group(1) not in STAGES:
            with st.lock:
                st.errors.append(f"request to {self.path}")
            return self._reply(404, None)
        stage, machine_id = m.groups()
        try:
            body = decode_body(headers, raw)
        except ValueError as e:
            body, errs = None, [f"{stage}: {e}"]
        else:
            errs = st.check(stage, machine_id, headers, raw, body if stage != "xsrf" else {})
        with st.lock:
            st.requests.append((stage, headers, body))
            st.errors.extend(errs)
        if errs:
            return self._reply(400, {"error": errs})
        if stage == "xsrf":
            st._xsrf_given = True
            return self._reply(200, {}, {"X-XSRF-TOKEN": st.xsrf_token})
        if st.require_xsrf and headers.get("x-xsrf-token") != st.xsrf_token:
            return self._reply(403, None)
        if self._fault(stage):
            return
        self._reply(*st.answer(stage, body or {}))

    def _fault(self, stage):
        """Misbehave for STAGE if told to; True when the answer was given."""
        st = self.server_state
        fault = st.faults.get(stage)
        if not fault:
            return False
        kind = fault[0]
        if kind == "status":
            times = fault[2] if len(fault) > 2 else None
            n = st._fault_counts.get(stage, 0)
            if times is not None and n >= times:
                return False
            st._fault_counts[stage] = n + 1
            self._reply(fault[1], None)
        elif kind == "slow":
            time.sleep(min(fault[1], 60))
            return False
        elif kind == "truncate":
            code, obj = st.answer(stage, {})
            data = json.dumps(obj).encode()
            self._send(code, data[:len(data) // 2])
        elif kind == "garbage":
            self._send(200, b"<html><body>Service Unavailable</body></html>")
        elif kind == "redirect":
            self.send_response(302)
            self.send_header("Location", fault[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif kind == "close":
            self.close_connection = True
            self.connection.close()
        return True

    def _reply(self, code, obj, extra_headers=None):
        data = b"" if obj is None else json.dumps(obj).encode()
        xssi = self.server_state.xssi
        if obj is not None and xssi:
            data = (xssi if isinstance(xssi, bytes) else XSSI) + data
        self._send(code, data, extra_headers)

    def _send(self, code, data, extra_headers=None):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        enc = self.server_state.gzip_responses
        if enc and data:
            if enc == "deflate":
                data = zlib.compress(data)
                self.send_header("Content-Encoding", "deflate")
            else:
                data = gzip.compress(data)
                self.send_header("Content-Encoding", "gzip")
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--rules", help="JSON file: a list of rule objects")
    ap.add_argument("--mode", default="MONITOR")
    args = ap.parse_args()
    srv = SyncServer(port=args.port)
    srv.preflight = {"client_mode": args.mode}
    if args.rules:
        with open(args.rules) as f:
            srv.rules = json.load(f)
    print(f"serving {srv.base_url}", flush=True)
    srv.httpd.serve_forever()


if __name__ == "__main__":
    main()
