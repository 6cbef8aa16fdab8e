"""Shared helpers for the e2e suite: the relay process, an asyncio client, HTTP calls."""

import asyncio
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

DEFAULT_TIMEOUT = 5.0

ERROR_CODES = [
    "bad_json", "bad_message", "unknown_type", "not_registered", "already_registered",
    "node_id_in_use", "unknown_target", "no_llm_peer", "llm_peer_left", "too_many_requests",
    "auth_failed", "rate_limited", "mesh_full", "kicked", "mesh_closed", "auth_unavailable",
    "cluster_unavailable", "seq_required",
]


def is_sanitized(pid):
    """The sanitizer build (scripts/test-sanitize.sh) runs the same relay several times slower, and
    its freed memory sits in ASan's quarantine (RSS bounds do not hold there)."""
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    return "libasan" in maps or "libubsan" in maps or "libtsan" in maps


def unique_mesh(prefix="mesh"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


# ---------------------------------------------------------------------------
# The relay process
# ---------------------------------------------------------------------------

_LISTEN_RE = re.compile(r"^relay: listening (ws|wss|grpc) on (\S+):(\d+)\s*$")


def parse_listening(line):
    """(transport, host, port) of a listening line, text or LOG_FORMAT=json's `listening` event
    (an IPv6 host keeps its brackets: "[::1]"); None for any other line."""
    m = _LISTEN_RE.match(line)
    if m:
        return m.group(1), m.group(2), int(m.group(3))
    if line.startswith("{"):
        try:
            event = json.loads(line)
        except ValueError:
            return None
        if isinstance(event, dict) and event.get("event") == "listening":
            host, _, port = event["address"].rpartition(":")
            return event["transport"], host, int(port)
    return None


class RelayProcess:
    """The real relay binary on 127.0.0.1 with --port 0 --grpc-port 0 --drain-grace-seconds 1."""

    def __init__(self, binary, extra_args=(), env=None, start_timeout=10.0):
        self.binary = binary
        # A short drain grace: a SIGTERM at teardown must not wait the default 20 s for clients a
        # test left open. Tests of the drain pass their own (the last flag wins).
        self.args = [binary, "--port", "0", "--grpc-port", "0", "--host", "127.0.0.1",
                     "--drain-grace-seconds", "1", *extra_args]
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.stderr_file = tempfile.TemporaryFile()
        self.stdout_lines = []
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=self.stderr_file, stdin=subprocess.DEVNULL,
            env=full_env)
        self.returncode = None
        self._lines = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self.host = None
        self.port = None
        self.grpc_host = None
        self.grpc_port = None
        self.tls = False  # "listening wss": then set ssl_context to one that trusts the relay
        self.ssl_context = None
        deadline = time.monotonic() + start_timeout
        while self.port is None or self.grpc_port is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise AssertionError("relay did not print both listening lines within %.0f s; stdout=%r stderr=%s"
                                     % (start_timeout, self.stdout_lines, self.stderr_text()))
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                rc = self.proc.wait()
                raise AssertionError("relay exited (rc=%s) before listening; stdout=%r stderr=%s"
                                     % (rc, self.stdout_lines, self.stderr_text()))
            listening = parse_listening(line)
            if listening is None:
                continue
            transport, host, port = listening
            if transport in ("ws", "wss"):
                self.host, self.port = host, port
                self.tls = transport == "wss"
            else:
                self.grpc_host, self.grpc_port = host, port
        assert self.port != 0 and self.grpc_port != 0, "relay printed port 0: %r" % self.stdout_lines

    def _read_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def stderr_text(self, limit=4000):
        try:
            self.stderr_file.seek(0)
            data = self.stderr_file.read()
        except (OSError, ValueError):
            return "<unavailable>"
        return data[-limit:].decode("utf-8", "replace")

    # ---- addresses ----
    def ws_url(self, mesh, quote=True):
        seg = urllib.parse.quote(mesh, safe="") if quote else mesh
        return "%s://%s:%d/relay/%s" % ("wss" if self.tls else "ws", self.host, self.port, seg)

    @property
    def http_base(self):
        return "%s://%s:%d" % ("https" if self.tls else "http", self.host, self.port)

    @property
    def grpc_addr(self):
        return "%s:%d" % (self.grpc_host, self.grpc_port)

    # ---- HTTP ----
    def http(self, method, path, body=None, headers=None, timeout=DEFAULT_TIMEOUT):
        if self.tls:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def get_json(self, path):
        status, headers, data = self.http("GET", path)
        assert status == 200, "GET %s -> %d %r" % (path, status, data)
        assert headers.get("content-type", "").startswith("application/json"), headers
        return json.loads(data)

    # ---- lifecycle ----
    def stop(self, timeout=10.0):
        """SIGTERM by PID; returns the exit code (None if it had to be killed)."""
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.returncode = None
        return self.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------
# asyncio client (the websockets library, as a real Python client would use it)
# ---------------------------------------------------------------------------

_open_clients = []


class Client:
    def __init__(self, ws, label):
        self.ws = ws
        self.label = label
        self.node_id = None
        self.last_raw = None

    @classmethod
    async def connect(cls, relay, mesh, label=None, quote=True, **kwargs):
        kwargs.setdefault("ping_interval", None)
        kwargs.setdefault("max_size", None)
        kwargs.setdefault("max_queue", None)
        kwargs.setdefault("open_timeout", DEFAULT_TIMEOUT)
        if relay.tls:
            kwargs.setdefault("ssl", relay.ssl_context)
        ws = await websockets.connect(relay.ws_url(mesh, quote=quote), **kwargs)
        c = cls(ws, label or mesh)
        _open_clients.append(c)
        return c

    async def send(self, obj):
        await self.ws.send(json.dumps(obj))

    async def send_raw(self, data):
        await self.ws.send(data)

    async def recv_raw(self, timeout=DEFAULT_TIMEOUT):
        try:
            data = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("%s: no message within %.1f s" % (self.who(), timeout)) from None
        self.last_raw = data
        return data

    async def recv(self, timeout=DEFAULT_TIMEOUT):
        data = await self.recv_raw(timeout)
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        msg = json.loads(data)
        assert isinstance(msg, dict), "%s: server sent a non-object: %r" % (self.who(), data)
        return msg

    async def expect(self, type_, timeout=DEFAULT_TIMEOUT):
        msg = await self.recv(timeout)
        assert msg.get("type") == type_, "%s: expected %r, got %r" % (self.who(), type_, msg)
        return msg

    async def expect_error(self, code, timeout=DEFAULT_TIMEOUT):
        msg = await self.expect("error", timeout)
        assert_error(msg, code)
        return msg

    async def register(self, node_id, capabilities=(), name=None, token=None, type="register", **extra):
        msg = {"type": type, "node_id": node_id, "capabilities": list(capabilities)}
        if name is not None:
            msg["name"] = name
        if token is not None:
            msg["token"] = token
        msg.update(extra)
        await self.send(msg)
        joined = await self.expect("joined")
        peers = await self.expect("peers")
        self.node_id = node_id
        self.label = node_id
        return joined, peers

    async def ping_barrier(self):
        """ping -> the very next message must be pong: nothing else was pending for us
        from our own earlier messages (the relay keeps per-connection order)."""
        await self.send({"type": "ping"})
        msg = await self.recv()
        assert msg.get("type") == "pong", "%s: expected pong (nothing else), got %r" % (self.who(), msg)
        return msg

    async def expect_closed(self, timeout=DEFAULT_TIMEOUT):
        """Waits for the server to close; returns (code, reason). Unread messages are discarded."""
        try:
            await asyncio.wait_for(self.ws.wait_closed(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("%s: connection not closed within %.1f s" % (self.who(), timeout)) from None
        return self.ws.close_code, self.ws.close_reason

    async def recv_until_closed(self, timeout=DEFAULT_TIMEOUT):
        """Returns (messages received before the close, code, reason)."""
        msgs = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("%s: not closed within %.1f s; got %r" % (self.who(), timeout, msgs))
            try:
                data = await asyncio.wait_for(self.ws.recv(), remaining)
            except websockets.ConnectionClosed:
                return msgs, self.ws.close_code, self.ws.close_reason
            except asyncio.TimeoutError:
                continue
            msgs.append(json.loads(data))

    async def close(self):
        await self.ws.close()

    def who(self):
        return self.label


async def close_all_clients():
    clients = list(_open_clients)
    _open_clients.clear()
    for c in clients:
        try:
            await asyncio.wait_for(c.ws.close(), 2)
        except Exception:
            pass


async def connect_registered(relay, mesh, node_id, capabilities=(), **kw):
    c = await Client.connect(relay, mesh)
    await c.register(node_id, capabilities, **kw)
    return c


async def mesh_of(relay, mesh, specs):
    """specs: list of (node_id, capabilities). Registers them in order; every earlier
    peer consumes the peer_joined of each later one. Returns the clients."""
    clients = []
    for node_id, caps in specs:
        c = await connect_registered(relay, mesh, node_id, caps)
        for other in clients:
            pj = await other.expect("peer_joined")
            assert pj["node_id"] == node_id, pj
        clients.append(c)
    return clients


async def marker_barrier(sender, receivers, tag=None):
    """sender broadcasts a marker; the next message of every receiver must be that marker.
    Proves nothing else from sender is queued for them (per-pair order is preserved)."""
    tag = tag or uuid.uuid4().hex
    await sender.send({"type": "broadcast", "payload": {"marker": tag}})
    for r in receivers:
        msg = await r.recv()
        assert msg == {"type": "message", "from": sender.node_id, "payload": {"marker": tag}}, \
            "%s: expected only the marker from %s next, got %r" % (r.who(), sender.node_id, msg)


def assert_error(msg, code, request_id=None, has_request_id=None):
    assert msg.get("type") == "error", msg
    assert msg.get("code") == code, "expected error %r, got %r" % (code, msg)
    assert isinstance(msg.get("code"), str), msg
    assert isinstance(msg.get("message"), str) and msg["message"], "error needs a message: %r" % msg
    if request_id is not None:
        assert "request_id" in msg and msg["request_id"] == request_id and \
            type(msg["request_id"]) is type(request_id), "expected request_id %r in %r" % (request_id, msg)


def instance(relay, i):
    """In the cluster topology, instance i (modulo their number) of the RelayCluster, so a test can
    say where a client goes: a bad client on one instance, its bystanders on others. Clients of a
    RelayProcess all go to that instance. A relay alone is every instance, and so is the first
    instance of a test marked one_instance."""
    instances = getattr(relay, "instances", None)
    if not instances:
        return relay
    return instances[0] if relay.pinned else instances[i % len(instances)]


def instances(relay):
    """Every process of the relay: the RelayCluster's instances, or the one RelayProcess."""
    return list(getattr(relay, "instances", None) or [relay])


def drain_close(relay):
    """(code, reason) a drain closes clients with: 1012 "service restart" on a cluster instance
    (ADR 0009: reconnect, the balancer picks another instance), 1001 "server shutting down" on a
    relay alone."""
    if hasattr(relay, "instances"):
        return (1012, "service restart")
    return (1001, "server shutting down")


async def poll(predicate, timeout=DEFAULT_TIMEOUT, interval=0.05, what="condition"):
    """Polls a cheap synchronous check (e.g. /health) until true."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError("timed out waiting for %s (last=%r)" % (what, last))


async def expect_refused(client, code="auth_failed", close_code=1008, close_reason="auth failed", timeout=DEFAULT_TIMEOUT):
    """The server answers exactly one `error` with code, then closes with close_code/close_reason."""
    msgs, got_code, got_reason = await client.recv_until_closed(timeout)
    assert len(msgs) == 1, "%s: expected only error %r before the close, got %r" % (client.who(), code, msgs)
    assert_error(msgs[0], code)
    assert (got_code, got_reason) == (close_code, close_reason), \
        "%s: expected close %r %r, got %r %r" % (client.who(), close_code, close_reason, got_code, got_reason)
    return msgs[0]


async def assert_served_elsewhere(relay):
    """A new client in a fresh mesh registers, gets pong, and its broadcast reaches a second peer."""
    mesh = unique_mesh("bystander")
    a, b = await mesh_of(relay, mesh, [("by-a", []), ("by-b", [])])
    await a.ping_barrier()
    await marker_barrier(a, [b])
    await a.close()
    await b.close()
