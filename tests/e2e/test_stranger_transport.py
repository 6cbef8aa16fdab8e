"""What a stranger who knows only the relay's address can do to its transport, against the real
binary: read mesh ids from the public HTTP endpoints, hold the relay's fds with idle TCP sockets
that never send an upgrade (per IP, in total, up to the process's fd limit), and poke the HTTP
edges (HEAD, upgrades without a WebSocket version, HTTP/1.0 probes without Host). Each attack
fails, and a bystander pair in another mesh keeps exchanging direct messages during and after it.

fds and CPU are read from /proc/PID; every socket the test opens is closed by the test.

In the cluster topology every attack goes to the first instance (relay.host/port are its), and
the bystander pair is on the second and third: a stranger's attack on one instance leaves the
peers of the others unharmed. The clients a test makes after an attack go round robin, so the
attacked instance must take new clients again."""

import asyncio
import contextlib
import json
import resource
import socket
import time

import rawws
from procstats import cpu_seconds, open_fds
from relayclient import connect_registered, instance, instances, mesh_of, poll, unique_mesh

# Run again on three instances (conftest.py), the attacks on the first.
SPREAD_OVER_CLUSTER = True

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def cpu_share(pid, seconds):
    """The fraction of one core the process used over `seconds` of wall time."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def refused(relay, reason="too_many_handshakes", source="127.0.0.250"):
    """From an address no attack in this file uses (the attacker's may be refused)."""
    status, _, body = raw_http(relay, b"GET /stats HTTP/1.1\r\nHost: relay\r\n\r\n", source=source)
    assert status == 200, (status, body)
    return json.loads(body)["refused"][reason]


async def direct(x, y, n):
    """x -> y -> x direct messages: the bystander pair is served."""
    await x.send({"type": "direct", "target": y.node_id, "payload": {"n": n}})
    assert await y.recv() == {"type": "message", "from": x.node_id, "payload": {"n": n}}
    await y.send({"type": "direct", "target": x.node_id, "payload": {"ack": n}})
    assert await x.recv() == {"type": "message", "from": y.node_id, "payload": {"ack": n}}


async def bystanders(relay):
    """A pair in a mesh of its own, on other instances than the attacked one in the cluster."""
    mesh = unique_mesh("bystander")
    x = await connect_registered(instance(relay, 1), mesh, "by-x")
    y = await connect_registered(instance(relay, 2), mesh, "by-y")
    assert (await x.expect("peer_joined"))["node_id"] == "by-y"
    return x, y


def open_idle(relay, count, source="127.0.0.1"):
    """`count` TCP connections from `source` that never send a byte."""
    socks = []
    try:
        for _ in range(count):
            socks.append(rawws.connect_tcp(relay.host, relay.port, timeout=5.0, source_address=(source, 0)))
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()
    socks.clear()


def closed_by_relay(sock, timeout):
    """True once the relay has closed `sock` (EOF or reset) within `timeout`; False if it stays open."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def split_closed(socks, timeout=0.3):
    """(closed by the relay, still open): each socket waited on for up to `timeout`."""
    closed = [s for s in socks if closed_by_relay(s, timeout)]
    return closed, [s for s in socks if s not in closed]


def wait_split(socks, want_closed, timeout=10.0):
    """split_closed, again until `want_closed` are closed (the relay accepts in its own time)."""
    deadline = time.monotonic() + timeout
    while True:
        closed, still_open = split_closed(socks, timeout=0.05)
        if len(closed) >= want_closed or time.monotonic() > deadline:
            return closed, still_open


def raw_http(relay, request, timeout=5.0, source="127.0.0.1"):
    """Sends raw bytes from `source` and reads until the relay closes: (status, headers, everything
    after the head). websocketpp closes after each HTTP answer, so the tail is exactly what it sent."""
    with rawws.connect_tcp(relay.host, relay.port, timeout=timeout, source_address=(source, 0)) as sock:
        sock.sendall(request)
        data = b""
        sock.settimeout(timeout)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, sep, tail = data.partition(b"\r\n\r\n")
    assert sep, "no complete HTTP head in %r" % data
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, tail


def upgrade(path="/relay/m", version="13", key="dGhlIHNhbXBsZSBub25jZQ=="):
    lines = ["GET %s HTTP/1.1" % path, "Host: relay", "Upgrade: websocket", "Connection: Upgrade"]
    if key is not None:
        lines.append("Sec-WebSocket-Key: " + key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: " + version)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_json_error(status, headers, body, want_status):
    assert status == want_status, (status, headers, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    obj = json.loads(body)
    assert isinstance(obj.get("error"), str) and isinstance(obj.get("message"), str), obj
    return obj


# ---------------------------------------------------------------------------
# 1. No public endpoint names a mesh or a node
# ---------------------------------------------------------------------------

async def test_public_endpoints_name_no_mesh_and_no_node(relay):
    secret_mesh = unique_mesh("family-7f3a9c2e")
    phone, mac = await mesh_of(relay, secret_mesh, [("phone-1x7", []), ("mac-9q2", ["llm"])])
    x, y = await bystanders(relay)
    await direct(phone, mac, 1)

    secrets = [secret_mesh, "phone-1x7", "mac-9q2", x.node_id, y.node_id]
    # Every instance of a cluster: those holding members of a mesh and those that do not.
    for r in instances(relay):
        bodies = {}
        for path in ("/", "/health", "/ready", "/stats", "/metrics", "/nope", "/relay/" + secret_mesh):
            status, headers, body = await asyncio.to_thread(
                raw_http, r, ("GET %s HTTP/1.1\r\nHost: relay\r\n\r\n" % path).encode())
            bodies[path] = body.decode("utf-8", "replace") + json.dumps(headers)
        # The upgrade errors a stranger can provoke.
        for request in (upgrade("/relay/a/b"), upgrade("/relay/%zz"), upgrade("/relay/" + secret_mesh, version=None)):
            _, headers, body = await asyncio.to_thread(raw_http, r, request)
            bodies[request[:40]] = body.decode("utf-8", "replace") + json.dumps(headers)
        for where, text in bodies.items():
            for secret in secrets:
                # /relay/<secret> echoes the requester's own path at most; it must not either.
                assert secret not in text, "%r shows %r: %s" % (where, secret, text[:300])
    stats = [r.get_json("/stats") for r in instances(relay)]
    assert all("meshes" not in s for s in stats), stats
    # What the bodies were checked against: the relay does hold the four peers and two meshes
    # (an instance counts the meshes it has members of: exactly 2 for a relay alone).
    assert sum(s["active_connections"] for s in stats) == 4, stats
    assert max(s["active_meshes"] for s in stats) <= 2 <= sum(s["active_meshes"] for s in stats), stats
    await direct(x, y, 2)


# ---------------------------------------------------------------------------
# 2. Idle sockets before the upgrade are bounded
# ---------------------------------------------------------------------------

async def test_idle_sockets_from_one_ip_past_its_bound_are_closed_at_once(relay_factory):
    bound = 8
    relay = relay_factory("--max-pending-handshakes-per-ip", str(bound), "--max-pending-handshakes", "1000",
                          "--handshake-timeout-seconds", "60")
    pid = relay.proc.pid
    x, y = await bystanders(relay)
    baseline = open_fds(pid)
    socks = []
    try:
        socks = await asyncio.to_thread(open_idle, relay, 5 * bound)
        # The relay accepts (and refuses) in its own time: the sanitizer build is slower.
        await poll(lambda: refused(relay) == 4 * bound, timeout=10, what="4 * bound refusals")
        closed, still_open = await asyncio.to_thread(split_closed, socks)
        await direct(x, y, 1)  # served during the attack
        fds = open_fds(pid)
        print("per-IP bound %d: %d idle sockets, %d closed by the relay, %d open; relay fds %d -> %d"
              % (bound, len(socks), len(closed), len(still_open), baseline, fds))
        assert len(still_open) == bound, (len(closed), len(still_open))
        assert fds <= baseline + bound + 4, (baseline, fds)
        assert refused(relay) == 4 * bound
        _, _, metrics = await asyncio.to_thread(
            raw_http, relay, b"GET /metrics HTTP/1.1\r\nHost: relay\r\n\r\n", source="127.0.0.250")
        assert ('relay_upgrades_refused_total{reason="too_many_handshakes"} %d' % (4 * bound)).encode() \
            in metrics.splitlines(), metrics
        # Another address is not affected by this one's bound.
        status, _, _ = await asyncio.to_thread(
            raw_http, relay, b"GET /health HTTP/1.1\r\nHost: relay\r\n\r\n", source="127.0.0.2")
        assert status == 200
        # ... nor is 127.0.0.1 once a handshake ends (an answered request leaves the count).
        close_all(still_open)
        await poll(lambda: open_fds(pid) <= baseline + 2, timeout=10, what="fds back to the baseline")
    finally:
        close_all(socks)
    await direct(x, y, 2)
    a, b = await mesh_of(relay, unique_mesh("after"), [("after-a", []), ("after-b", [])])
    await direct(a, b, 3)


async def test_idle_sockets_from_many_ips_past_the_total_bound_are_closed_at_once(relay_factory):
    total = 16
    relay = relay_factory("--max-pending-handshakes", str(total), "--max-pending-handshakes-per-ip", "100",
                          "--handshake-timeout-seconds", "60")
    pid = relay.proc.pid
    x, y = await bystanders(relay)
    baseline = open_fds(pid)
    socks = []
    try:
        for i in range(2, 10):  # 127.0.0.2 .. 127.0.0.9, 5 each: no per-IP bound is reached
            socks += await asyncio.to_thread(open_idle, relay, 5, "127.0.0.%d" % i)
        # No /stats now: while the total is full, that request would be refused too.
        closed, still_open = await asyncio.to_thread(wait_split, socks, 40 - total)
        await direct(x, y, 1)
        fds = open_fds(pid)
        print("total bound %d: %d idle sockets, %d closed, %d open; relay fds %d -> %d"
              % (total, len(socks), len(closed), len(still_open), baseline, fds))
        assert len(still_open) == total, (len(closed), len(still_open))
        assert fds <= baseline + total + 4, (baseline, fds)
        # While the total is full, new handshakes from anyone are refused: the pre-registered
        # bystanders are what keeps working. Then the attack ends.
        close_all(socks)
        await poll(lambda: open_fds(pid) <= baseline + 2, timeout=10, what="fds back to the baseline")
    finally:
        close_all(socks)
    assert refused(relay) == 40 - total
    await direct(x, y, 2)
    a, b = await mesh_of(relay, unique_mesh("after"), [("after-a", []), ("after-b", [])])
    await direct(a, b, 3)


async def test_trusted_proxy_is_exempt_from_the_per_ip_handshake_bound(relay_factory):
    relay = relay_factory("--max-pending-handshakes-per-ip", "4", "--trusted-proxies", "127.0.0.3",
                          "--handshake-timeout-seconds", "60")
    x, y = await bystanders(relay)
    proxy, stranger = [], []
    try:
        proxy = await asyncio.to_thread(open_idle, relay, 12, "127.0.0.3")
        stranger = await asyncio.to_thread(open_idle, relay, 12, "127.0.0.4")
        await poll(lambda: refused(relay) == 8, timeout=10, what="8 refusals")
        _, proxy_open = await asyncio.to_thread(split_closed, proxy)
        _, stranger_open = await asyncio.to_thread(split_closed, stranger)
        assert (len(proxy_open), len(stranger_open)) == (12, 4)
        await direct(x, y, 1)
    finally:
        close_all(proxy)
        close_all(stranger)


async def test_idle_sockets_up_to_the_fd_limit_do_not_spin_the_relay(relay_factory):
    # The bounds are out of the way: this is about what happens at EMFILE itself.
    relay = relay_factory("--max-pending-handshakes", "0", "--max-pending-handshakes-per-ip", "0",
                          "--handshake-timeout-seconds", "60")
    pid = relay.proc.pid
    x, y = await bystanders(relay)
    # A pair on the instance that reaches its fd limit (the same relay when alone).
    u, v = await mesh_of(instance(relay, 0), unique_mesh("held"), [("held-u", []), ("held-v", [])])
    baseline = open_fds(pid)
    limit = baseline + 48
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
    socks = []
    try:
        # More than the relay can accept: the rest wait in its listen backlog.
        for i in range(2, 8):
            socks += await asyncio.to_thread(open_idle, relay, 15, "127.0.0.%d" % i)
        await poll(lambda: open_fds(pid) >= limit - 2, timeout=10, what="relay at its fd limit")
        share = await asyncio.to_thread(cpu_share, pid, 2.0)
        print("at EMFILE (limit %d, %d idle sockets, relay fds %d): relay CPU %.1f%% of a core"
              % (limit, len(socks), open_fds(pid), 100 * share))
        assert share < 0.25, "relay spins at its fd limit: %.0f%% of a core" % (100 * share)
        assert open_fds(pid) <= limit
        await direct(u, v, 1)  # open connections are served at the fd limit
        await direct(x, y, 1)
    finally:
        close_all(socks)
    # Once the idle sockets are gone (and with them the backlog), the relay accepts again.
    await poll(lambda: open_fds(pid) <= baseline + 4, timeout=15, what="fds freed")

    def health():
        status, _, body = raw_http(relay, b"GET /health HTTP/1.1\r\nHost: relay\r\n\r\n")
        return status == 200 and json.loads(body)["status"] == "ok"

    await poll(lambda: health(), timeout=10, what="/health answers again")
    a, b = await mesh_of(relay, unique_mesh("after"), [("after-a", []), ("after-b", [])])
    await direct(a, b, 2)
    await direct(x, y, 3)
    log = relay.stderr_text(limit=200000)
    # Once per episode, not per failed accept (the backlog drained after the sockets closed may
    # make a second short one).
    assert 1 <= log.count("accept_backoff") <= 3, log[-2000:]
    assert log.count("accept_resumed") == log.count("accept_backoff"), log[-2000:]


# ---------------------------------------------------------------------------
# 3. HTTP edges
# ---------------------------------------------------------------------------

async def test_head_answers_headers_only_on_every_route(relay):
    x, y = await bystanders(relay)
    for path, want in (("/", 200), ("/health", 200), ("/ready", 200), ("/stats", 200), ("/metrics", 200),
                       ("/nope", 404), ("/relay/m", 426)):
        status, headers, tail = await asyncio.to_thread(
            raw_http, relay, ("HEAD %s HTTP/1.1\r\nHost: relay\r\n\r\n" % path).encode())
        assert status == want, (path, status, headers)
        assert tail == b"", "HEAD %s sent a body: %r" % (path, tail[:100])
        assert int(headers["content-length"]) > 0, (path, headers)  # what GET would send
    status, headers, tail = await asyncio.to_thread(
        raw_http, relay, b"POST /health HTTP/1.1\r\nHost: relay\r\nContent-Length: 0\r\n\r\n")
    assert_json_error(status, headers, tail, 405)
    await direct(x, y, 1)


async def test_bad_upgrades_get_a_json_4xx_never_a_500(relay):
    x, y = await bystanders(relay)
    # No Sec-WebSocket-Version (websocketpp took it for draft 00 and answered an empty 500).
    for version in (None, "0", "8", "12", "x"):
        status, headers, body = await asyncio.to_thread(raw_http, relay, upgrade(version=version))
        obj = assert_json_error(status, headers, body, 426)
        assert headers.get("sec-websocket-version") == "13", (version, headers)
        assert obj["error"] == "unsupported_websocket_version", obj
    # No Sec-WebSocket-Key; a garbage request line; HTTP/1.1 without Host.
    for request in (upgrade(key=None), b"GARBAGE\r\n\r\n", b"GET /health HTTP/1.1\r\n\r\n"):
        status, headers, body = await asyncio.to_thread(raw_http, relay, request)
        assert 400 <= status < 500, (request[:40], status)
        assert_json_error(status, headers, body, status)
    await direct(x, y, 1)
    # A good upgrade still works.
    a, b = await mesh_of(relay, unique_mesh("after"), [("after-a", []), ("after-b", [])])
    await direct(a, b, 2)


def refused_counts(relay):
    """/stats "refused" and relay_upgrades_refused_total{reason}, read from another address."""
    status, _, body = raw_http(relay, b"GET /stats HTTP/1.1\r\nHost: relay\r\n\r\n", source="127.0.0.250")
    assert status == 200, (status, body)
    stats = json.loads(body)["refused"]
    status, _, body = raw_http(relay, b"GET /metrics HTTP/1.1\r\nHost: relay\r\n\r\n", source="127.0.0.250")
    assert status == 200, (status, body)
    metrics = {}
    for line in body.decode().splitlines():
        if line.startswith('relay_upgrades_refused_total{reason="'):
            reason = line.split('"')[1]
            metrics[reason] = int(float(line.rsplit(" ", 1)[1]))
    return stats, metrics


async def test_every_refused_upgrade_is_counted_under_its_name(relay):
    x, y = await bystanders(relay)
    before, before_metrics = await asyncio.to_thread(refused_counts, relay)
    assert before == before_metrics, (before, before_metrics)
    cases = (
        # (request, status, the refusal's name: the body's "error" when there is a body)
        (upgrade(path="/relay/"), 400, "bad_mesh_id"),
        (upgrade(path="/relay/%01"), 400, "bad_mesh_id"),
        (upgrade(path="/nope"), 404, "not_found"),
        (upgrade(version="8"), 426, "unsupported_websocket_version"),
        (upgrade(version=None), 426, "unsupported_websocket_version"),
        (upgrade(key=None), 400, "bad_request"),
        (upgrade().replace(b"Host: relay\r\n", b""), 400, "bad_request"),
    )
    want = dict(before)
    for request, want_status, name in cases:
        status, headers, body = await asyncio.to_thread(raw_http, relay, request)
        obj = assert_json_error(status, headers, body, want_status)
        assert obj["error"] == name, (request[:60], obj)
        want[name] += 1
    # Not upgrades, so not refusals: plain HTTP errors and garbage.
    for request in (b"GET /nope HTTP/1.1\r\nHost: relay\r\n\r\n", b"GET /relay/m HTTP/1.1\r\nHost: relay\r\n\r\n",
                    b"GARBAGE\r\n\r\n"):
        status, _, _ = await asyncio.to_thread(raw_http, relay, request)
        assert 400 <= status < 500, (request, status)

    after, after_metrics = await asyncio.to_thread(refused_counts, relay)

    assert after == want, (after, want)
    assert after_metrics == after, (after_metrics, after)
    await direct(x, y, 1)


async def test_http10_probe_without_host_is_served(relay):
    x, y = await bystanders(relay)
    for request in (b"GET /health HTTP/1.0\r\n\r\n", b"GET /health HTTP/1.0\r\nUser-Agent: lb\r\n\r\n",
                    b"GET /ready HTTP/1.0\r\n\r\n"):
        status, headers, body = await asyncio.to_thread(raw_http, relay, request)
        assert status == 200, (request, status, body)
        assert json.loads(body)["status"] in ("ok", "ready"), body
    status, _, tail = await asyncio.to_thread(raw_http, relay, b"HEAD /health HTTP/1.0\r\n\r\n")
    assert (status, tail) == (200, b"")
    await direct(x, y, 1)
