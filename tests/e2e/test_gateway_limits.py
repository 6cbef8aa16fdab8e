"""The gateway's transport limits against the real binary: the per-connection send buffer
(slow consumers are closed with 1013 and the relay's memory stays bounded), connections in
total and per client IP (HTTP 503 too_many_connections, X-Forwarded-For from trusted proxies
only), the HTTP handshake timeout (slowloris), and the validation of these settings.

In the cluster topology the slow consumer and the slowloris are on the first instance (RawWS and
raw sockets connect to relay.host/port), the producer and the witness pair on the others: a slow
consumer fed through the backplane is closed alike, and the peers of the other instances are
unharmed. The connection limits are each process's own (one_instance)."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

import rawws
from procstats import rss_bytes
from relayclient import Client, connect_registered, instance, instances, mesh_of, poll, unique_mesh

MIB = 1 << 20

# Run again on three instances (conftest.py).
SPREAD_OVER_CLUSTER = True


class RssSampler:
    """Samples the relay's resident memory every few milliseconds in a thread."""

    def __init__(self, pid, interval=0.005):
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (OSError, AssertionError):
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


async def round_trip(x, y, n):
    """x -> y -> x direct messages; returns the seconds it took."""
    t0 = time.monotonic()
    await x.send({"type": "direct", "target": y.node_id, "payload": {"n": n}})
    assert await y.recv() == {"type": "message", "from": x.node_id, "payload": {"n": n}}
    await y.send({"type": "direct", "target": x.node_id, "payload": {"ack": n}})
    assert await x.recv() == {"type": "message", "from": y.node_id, "payload": {"ack": n}}
    return time.monotonic() - t0


async def witnesses(relay):
    """A pair in a mesh of its own, on other instances than the first in the cluster."""
    mesh = unique_mesh("witness")
    wx = await connect_registered(instance(relay, 1), mesh, "wx")
    wy = await connect_registered(instance(relay, 2), mesh, "wy")
    assert (await wx.expect("peer_joined"))["node_id"] == "wy"
    return wx, wy


def closes(relay):
    return relay.get_json("/stats")["closes"]


def open_sockets(relay):
    return relay.get_json("/stats")["open_sockets"]


def refused(relay):
    return relay.get_json("/stats")["refused"]["too_many_connections"]


def assert_too_many(resp):
    assert resp.status == 503, resp
    assert resp.headers.get("content-type", "").startswith("application/json"), resp
    body = resp.json()
    assert body["error"] == "too_many_connections", body
    assert isinstance(body["message"], str) and body["message"], body


# ---------------------------------------------------------------------------
# Slow consumer
# ---------------------------------------------------------------------------

BOUND = 4 * MIB


async def test_slow_consumer_is_closed_1013_and_memory_stays_bounded(relay_factory):
    relay = relay_factory("--max-queued-bytes-per-connection", str(BOUND),
                          "--rate-limit-bytes-per-second", "0")  # 32 MiB offered at once
    wx, wy = await witnesses(relay)
    await round_trip(wx, wy, 0)

    mesh = unique_mesh("slow")
    producer = await connect_registered(instance(relay, 1), mesh, "producer")
    sockets = open_sockets(relay)
    # The slow consumer registers, then never reads again. A small receive window keeps the
    # kernel from absorbing much of what the relay sends it.
    slow = await asyncio.to_thread(rawws.RawWS, relay.host, relay.port, "/relay/" + mesh,
                                   rcvbuf=64 * 1024)
    await asyncio.to_thread(slow.register, "slow")
    await producer.expect("peer_joined")
    assert closes(relay)["slow_consumer"] == 0

    await asyncio.sleep(0.2)
    baseline = rss_bytes(relay.proc.pid)
    payload = "x" * (512 * 1024)
    frame = json.dumps({"type": "broadcast", "payload": payload})
    sent = 0
    worst_round_trip = 0.0
    with RssSampler(relay.proc.pid) as rss:
        # 64 x 512 KiB = 32 MiB offered to a consumer allowed 4 MiB, with round trips of
        # another mesh's peers in between.
        for i in range(64):
            await producer.send_raw(frame)
            sent += len(frame)
            if i % 8 == 0:
                worst_round_trip = max(worst_round_trip, await round_trip(wx, wy, i + 1))
        await poll(lambda: closes(relay)["slow_consumer"] == 1, timeout=10,
                   what="closes.slow_consumer == 1")
        worst_round_trip = max(worst_round_trip, await round_trip(wx, wy, 1000))
        # Its TCP connection is gone soon after (close handshake timeout), not left open.
        await poll(lambda: open_sockets(relay) == sockets, timeout=10,
                   what="the slow consumer's socket to be closed")
    growth = rss.peak - baseline
    print("slow consumer: offered %.1f MiB, bound %.1f MiB, RSS baseline %.1f MiB, peak %.1f MiB "
          "(+%.1f MiB), worst witness round trip %.0f ms"
          % (sent / MIB, BOUND / MIB, baseline / MIB, rss.peak / MIB, growth / MIB,
             worst_round_trip * 1000))
    assert growth < 3 * BOUND, "RSS grew by %.1f MiB (bound %.1f MiB)" % (growth / MIB, BOUND / MIB)
    assert worst_round_trip < 1.0, "witness round trip took %.3f s" % worst_round_trip

    # The consumer sees the data the kernel held, then the 1013 close or a cut connection.
    closed = await asyncio.to_thread(slow.wait_closed, 20)
    assert closed.code in (1013, None), closed
    if closed.code == 1013:
        assert closed.reason == "slow consumer", closed
    slow.close()

    # Everyone else keeps working, the producer included; it saw the consumer leave.
    assert await producer.recv() == {"type": "peer_left", "node_id": "slow"}
    await producer.ping_barrier()
    await round_trip(wx, wy, 2000)
    assert closes(relay)["slow_consumer"] == 1


async def test_reader_within_the_bound_is_not_closed(relay_factory):
    relay = relay_factory("--max-queued-bytes-per-connection", str(2 * MIB))
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", [])])
    payload = "y" * (256 * 1024)
    for i in range(40):  # 10 MiB in total, but b reads as it goes
        await a.send({"type": "broadcast", "payload": payload})
        msg = await b.recv()
        assert msg["from"] == "a" and len(msg["payload"]) == len(payload)
    assert [closes(r)["slow_consumer"] for r in instances(relay)] == [0] * len(instances(relay))


# ---------------------------------------------------------------------------
# Connection limits
# ---------------------------------------------------------------------------

@pytest.mark.one_instance("MAX_CONNECTIONS bounds one process; counts its sockets and refusals on /stats")
async def test_too_many_connections_in_total_is_503_and_counted(relay_factory):
    relay = relay_factory("--max-connections", "3")
    mesh = unique_mesh()
    clients = [await Client.connect(relay, mesh) for _ in range(3)]
    resp = await asyncio.to_thread(rawws.try_upgrade, relay.host, relay.port, "/relay/" + mesh)
    assert_too_many(resp)
    assert refused(relay) == 1
    # Plain HTTP is never refused: probes keep working at the limit.
    assert relay.get_json("/health")["status"] == "ok"
    # The refused client got no WebSocket connection; the others are untouched.
    assert relay.get_json("/stats")["open_sockets"] == 3
    await clients[0].register("c0")

    # A freed slot is usable again.
    await clients[2].close()
    await poll(lambda: relay.get_json("/stats")["open_sockets"] == 2, what="a slot to be freed")
    c = await Client.connect(relay, mesh)
    await c.register("c3")
    resp = await asyncio.to_thread(rawws.try_upgrade, relay.host, relay.port, "/relay/" + mesh)
    assert_too_many(resp)
    assert refused(relay) == 2


@pytest.mark.one_instance("MAX_CONNECTIONS_PER_IP bounds one process; counts its refusals on /stats")
async def test_too_many_connections_per_ip_is_503_others_still_connect(relay_factory):
    relay = relay_factory("--max-connections-per-ip", "2")
    mesh = unique_mesh()
    local = [await Client.connect(relay, mesh) for _ in range(2)]
    resp = await asyncio.to_thread(rawws.try_upgrade, relay.host, relay.port, "/relay/" + mesh)
    assert_too_many(resp)
    # Another client IP (127.0.0.2 is loopback too) still gets in.
    other = await asyncio.to_thread(rawws.RawWS, relay.host, relay.port, "/relay/" + mesh,
                                    source_address=("127.0.0.2", 0))
    await asyncio.to_thread(other.register, "other")
    await local[0].register("local0")
    other.close()
    assert refused(relay) == 1


@pytest.mark.one_instance("MAX_CONNECTIONS bounds one process; counts its sockets on /stats")
async def test_connections_that_vanish_after_the_upgrade_free_their_slot(relay_factory):
    relay = relay_factory("--max-connections", "1")
    mesh = unique_mesh()
    # A 101 whose client vanishes at once, several times over: the slot comes back each time.
    for _ in range(5):
        resp = await asyncio.to_thread(rawws.try_upgrade, relay.host, relay.port, "/relay/" + mesh)
        assert resp.status in (101, 503), resp
        await poll(lambda: relay.get_json("/stats")["open_sockets"] == 0, what="slot freed")
    c = await Client.connect(relay, mesh)
    await c.register("only")


async def test_x_forwarded_for_is_believed_from_trusted_proxies_only(relay_factory, relayctl_bin):
    # 127.0.0.1 plays the load balancer; 127.0.0.2 is a client that is not one.
    relay = relay_factory("--trusted-proxies", "127.0.0.1/32, 10.0.0.0/8",
                          "--max-connections-per-ip", "1")
    mesh = unique_mesh("xff")

    def upgrade(xff=None, source=None):
        headers = () if xff is None else ("X-Forwarded-For: %s" % xff,)
        return rawws.try_upgrade(relay.host, relay.port, "/relay/" + mesh,
                                 source_address=source, extra_headers=headers)

    def open_ws(xff, source=None):
        return rawws.RawWS(relay.host, relay.port, "/relay/" + mesh, source_address=source,
                           extra_headers=("X-Forwarded-For: %s" % xff,))

    # Through the proxy, each forwarded client has its own limit of 1.
    first = await asyncio.to_thread(open_ws, "198.51.100.7, 203.0.113.1")
    assert_too_many(await asyncio.to_thread(upgrade, "203.0.113.1"))
    # A spoofed left-hand hop changes nothing: the proxy's own hop (the last) counts.
    assert_too_many(await asyncio.to_thread(upgrade, "192.0.2.99, 203.0.113.1"))
    second = await asyncio.to_thread(open_ws, "203.0.113.2")
    # A chain of trusted proxies is walked back to the client.
    assert_too_many(await asyncio.to_thread(upgrade, "203.0.113.2, 10.1.2.3"))

    # From an untrusted peer the header is ignored: its own IP counts.
    untrusted = await asyncio.to_thread(open_ws, "203.0.113.3", ("127.0.0.2", 0))
    assert_too_many(await asyncio.to_thread(upgrade, "203.0.113.4", ("127.0.0.2", 0)))
    assert refused(relay) == 4

    # The core reports the forwarded client as the peer's remote address.
    await asyncio.to_thread(first.register, "behind-proxy")
    await asyncio.to_thread(untrusted.register, "direct")
    r = await asyncio.to_thread(subprocess.run,
                                [relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes",
                                 "show", mesh], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r
    peers = {p["node_id"]: p for p in json.loads(r.stdout)["peers"]}
    assert peers["behind-proxy"]["remote_address"] == "203.0.113.1", peers
    assert peers["direct"]["remote_address"].startswith("127.0.0.2:"), peers
    for ws in (first, second, untrusted):
        ws.close()


# ---------------------------------------------------------------------------
# Handshake timeout (slowloris)
# ---------------------------------------------------------------------------

def wait_for_eof(sock, timeout):
    """Reads until the peer closes; returns (seconds waited, bytes received)."""
    t0 = time.monotonic()
    data = b""
    sock.settimeout(timeout)
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError("connection still open after %.1f s (got %r)" % (timeout, data))
    return time.monotonic() - t0, data


async def test_half_sent_request_is_closed_after_the_handshake_timeout(relay_factory):
    relay = relay_factory("--handshake-timeout-seconds", "1")
    wx, wy = await witnesses(relay)
    sockets = open_sockets(relay)

    def slowloris():
        with socket.create_connection((relay.host, relay.port), timeout=5) as sock:
            sock.sendall(b"GET /relay/m HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
            return wait_for_eof(sock, 5)

    def silent():
        with socket.create_connection((relay.host, relay.port), timeout=5) as sock:
            return wait_for_eof(sock, 5)

    (waited, data), (waited_silent, _) = await asyncio.gather(
        asyncio.to_thread(slowloris), asyncio.to_thread(silent))
    # No answer: the relay just hangs up, after about 1 s.
    assert data == b"", data
    assert 0.7 <= waited < 3.0, (waited, data)
    assert 0.7 <= waited_silent < 3.0, waited_silent
    await round_trip(wx, wy, 1)
    assert open_sockets(relay) == sockets


async def test_default_handshake_timeout_is_not_1s(relay):
    # The same half request is still open after 2 s with the 10 s default.
    def half():
        with socket.create_connection((relay.host, relay.port), timeout=5) as sock:
            sock.sendall(b"GET /relay/m HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sock.settimeout(2.0)
            try:
                return sock.recv(1)
            except socket.timeout:
                return None

    assert await asyncio.to_thread(half) is None


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args,env,named", [
    (["--trusted-proxies", "10.0.0.0/8,proxy.internal"], {}, "proxy.internal"),
    ([], {"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"),
    (["--max-connections", "0"], {}, "max-connections"),
    ([], {"MAX_CONNECTIONS_PER_IP": "-1"}, "MAX_CONNECTIONS_PER_IP"),
    (["--handshake-timeout-seconds", "0"], {}, "handshake-timeout-seconds"),
    (["--max-queued-bytes-per-connection", "1000"], {}, "max-queued-bytes-per-connection"),
    (["--tls-cert-file", "/nonexistent.pem"], {}, "tls-key-file"),
], ids=["proxy-name", "bad-cidr-env", "zero-connections", "negative-per-ip", "zero-handshake",
        "queue-below-message", "cert-without-key"])
def test_bad_limit_settings_exit_2_naming_them(relay_bin, args, env, named):
    full_env = dict(os.environ)
    full_env.update(env)
    r = subprocess.run([relay_bin, "--port", "0", "--grpc-port", "0", *args], capture_output=True,
                       text=True, timeout=20, env=full_env)
    assert r.returncode == 2, r
    assert named in r.stderr, r.stderr


def test_usage_lists_the_limit_settings(relay_bin):
    r = subprocess.run([relay_bin, "--help"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0
    for item in ("--max-queued-bytes-per-connection", "MAX_QUEUED_BYTES_PER_CONNECTION",
                 "--max-connections", "MAX_CONNECTIONS", "--max-connections-per-ip",
                 "MAX_CONNECTIONS_PER_IP", "--trusted-proxies", "TRUSTED_PROXIES",
                 "--handshake-timeout-seconds", "HANDSHAKE_TIMEOUT_SECONDS", "--tls-cert-file",
                 "TLS_CERT_FILE", "--tls-key-file", "TLS_KEY_FILE"):
        assert item in r.stdout, item


async def test_sighup_without_tls_is_harmless(relay):
    os.kill(relay.proc.pid, signal.SIGHUP)
    await asyncio.sleep(0.3)
    assert relay.proc.poll() is None
    assert relay.get_json("/health")["status"] == "ok"
