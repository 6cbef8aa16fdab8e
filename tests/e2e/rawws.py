"""A raw-socket WebSocket client (RFC 6455) for what the websockets library won't send.

Invalid UTF-8 in text frames, oversized frames, arbitrary binary frames, fragmented
messages, custom HTTP upgrade requests, and clients that vanish without a close frame
or stop answering pings. Client frames are masked as RFC 6455 section 5.3 requires.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import threading
import time

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HttpResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # dict, lower-case names
        self.body = body  # bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "HttpResponse(%d %s, %r, %r)" % (self.status, self.reason, self.headers, self.body[:200])


class Closed(Exception):
    """The peer ended the connection. code is None when TCP closed without a close frame."""

    def __init__(self, code=None, reason=""):
        super().__init__("connection closed: code=%r reason=%r" % (code, reason))
        self.code = code
        self.reason = reason


def _read_http_head(sock, deadline):
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed during HTTP response: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, reason, headers, rest


def _read_http_body(sock, headers, rest, deadline):
    body = rest
    if "content-length" in headers:
        want = int(headers["content-length"])
        while len(body) < want:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return body[:want]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        # Rare for this server; decode simply.
        while not body.endswith(b"0\r\n\r\n"):
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        out = b""
        data = body
        while data:
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out += data[:size]
            data = data[size + 2:]
        return out
    # Read until close.
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        body += chunk
    return body


def http_request(host, port, raw_request, timeout=5.0):
    """Sends raw_request (bytes) and returns an HttpResponse (status, headers, body)."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(raw_request)
        status, reason, headers, rest = _read_http_head(sock, deadline)
        body = _read_http_body(sock, headers, rest, deadline)
        return HttpResponse(status, reason, headers, body)


def upgrade_request(host, port, path, key=None, extra_headers=()):
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET %s HTTP/1.1" % path,
        "Host: %s:%d" % (host, port),
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: %s" % key,
        "Sec-WebSocket-Version: 13",
    ]
    lines.extend(extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


def connect_tcp(host, port, timeout=5.0, source_address=None, rcvbuf=None):
    """A TCP connection, optionally from source_address (e.g. ("127.0.0.2", 0)) and with a
    receive buffer of rcvbuf bytes set before connecting (so the window stays small)."""
    if source_address is None and rcvbuf is None:
        return socket.create_connection((host, port), timeout=timeout)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source_address is not None:
            sock.bind(source_address)
        sock.settimeout(timeout)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def try_upgrade(host, port, path, timeout=5.0, source_address=None, extra_headers=()):
    """Sends a WebSocket upgrade request for path (already percent-encoded, as bytes or str).

    Returns the HttpResponse; for a 101 the body is empty and the socket is closed.
    """
    if isinstance(path, bytes):
        path = path.decode("latin-1")
    req, _ = upgrade_request(host, port, path, extra_headers=extra_headers)
    deadline = time.monotonic() + timeout
    with connect_tcp(host, port, timeout, source_address) as sock:
        sock.sendall(req)
        status, reason, headers, rest = _read_http_head(sock, deadline)
        if status == 101:
            return HttpResponse(status, reason, headers, b"")
        body = _read_http_body(sock, headers, rest, deadline)
        return HttpResponse(status, reason, headers, body)


def encode_frame(opcode, payload, fin=True, mask=True, mask_key=None):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        header = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        header = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        header = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return header + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return header + key + apply_mask(payload, key)


def apply_mask(payload, key):
    if not payload:
        return b""
    # XOR with the 4-byte key repeated, fast via big integers.
    n = len(payload)
    full = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(full, "big")).to_bytes(n, "big")


class RawWS:
    """A WebSocket client on a plain socket. Blocking API with timeouts."""

    def __init__(self, host, port, path, timeout=5.0, auto_pong=True, source_address=None,
                 extra_headers=(), rcvbuf=None, ssl_context=None):
        self.host = host
        self.port = port
        self.auto_pong = auto_pong
        self.sock = connect_tcp(host, port, timeout, source_address, rcvbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:  # wss://
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname=host)
        req, key = upgrade_request(host, port, path, extra_headers=extra_headers)
        self.sock.sendall(req)
        deadline = time.monotonic() + timeout
        status, reason, headers, rest = _read_http_head(self.sock, deadline)
        if status != 101:
            body = _read_http_body(self.sock, headers, rest, deadline)
            self.sock.close()
            raise ConnectionError("upgrade refused: %d %s %r" % (status, reason, body))
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise ConnectionError("bad Sec-WebSocket-Accept: %r" % headers)
        self.buf = rest
        self.send_lock = threading.Lock()
        self.pings_received = 0

    # ---- sending ----
    def send_frame(self, opcode, payload, fin=True):
        data = encode_frame(opcode, payload, fin=fin)
        with self.send_lock:
            self.sock.sendall(data)

    def send_text(self, text):
        """text: str (UTF-8 encoded) or raw bytes (sent as is, even if not UTF-8)."""
        self.send_frame(OP_TEXT, text)

    def send_binary(self, data):
        self.send_frame(OP_BINARY, data)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_close(self, code=1000, reason=""):
        self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode())

    # ---- receiving ----
    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("timed out waiting for data")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(max(65536, n - len(self.buf)))
            except ConnectionResetError:
                raise Closed(None, "connection reset")
            if not chunk:
                raise Closed(None, "EOF without close frame")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=5.0):
        """Returns (fin, opcode, payload) of the next frame. Server frames must be unmasked."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._read_exact(2, deadline)
        fin = bool(b0 & 0x80)
        opcode = b0 & 0x0F
        if b1 & 0x80:
            raise AssertionError("server frame is masked (RFC 6455 forbids it)")
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read_exact(2, deadline))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read_exact(8, deadline))
        payload = self._read_exact(n, deadline)
        return fin, opcode, payload

    def recv_message(self, timeout=5.0):
        """Returns (opcode, payload bytes) of the next data message; answers pings.

        Raises Closed(code, reason) on a close frame (after echoing it) or on EOF.
        """
        deadline = time.monotonic() + timeout
        parts = []
        first_op = None
        while True:
            fin, op, payload = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if op == OP_PING:
                self.pings_received += 1
                if self.auto_pong:
                    self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                reason = payload[2:].decode("utf-8", "replace")
                try:
                    self.send_frame(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                raise Closed(code, reason)
            if op == OP_CONT:
                parts.append(payload)
            else:
                first_op = op
                parts = [payload]
            if fin:
                return first_op, b"".join(parts)

    def recv_text(self, timeout=5.0):
        op, payload = self.recv_message(timeout)
        assert op == OP_TEXT, "expected a text frame, got opcode %d" % op
        return payload.decode("utf-8")

    def recv_json(self, timeout=5.0):
        op, payload = self.recv_message(timeout)
        return json.loads(payload.decode("utf-8"))

    def wait_closed(self, timeout=5.0):
        """Reads until the server closes; returns Closed (code None = no close frame)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.recv_message(max(0.001, deadline - time.monotonic()))
            except Closed as c:
                return c

    def register(self, node_id, capabilities=(), **extra):
        msg = {"type": "register", "node_id": node_id, "capabilities": list(capabilities)}
        msg.update(extra)
        self.send_json(msg)
        joined = self.recv_json()
        assert joined["type"] == "joined", joined
        peers = self.recv_json()
        assert peers["type"] == "peers", peers
        return joined, peers

    # ---- ending ----
    def vanish(self):
        """Closes TCP without a close frame (FIN)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
