"""TLS against the real binary: wss:// and https:// on the WebSocket port with a certificate
from a throwaway CA made with the openssl CLI, the TLS policy (1.2 and 1.3 only, ECDHE + AEAD),
reloading the certificate on SIGHUP without dropping connections, and gRPC over TLS with
relayctl --tls --ca-file.

In the cluster topology every instance serves the same certificate: wss clients are spread over
them, and the slow TLS consumer (RawWS, on the first instance) is fed from another instance."""

import asyncio
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest
import websockets

import rawws
from relayclient import Client, assert_served_elsewhere, connect_registered, instance, mesh_of, poll, unique_mesh

# Run again on three instances (conftest.py).
SPREAD_OVER_CLUSTER = True


def openssl(*args, cwd=None, input=None):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=30, input=input)
    assert r.returncode == 0, "openssl %s failed: %s" % (" ".join(args), r.stderr.decode())
    return r


class Pki:
    """A throwaway CA in a temporary directory that issues server certificates for 127.0.0.1."""

    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.ca = os.path.join(self.dir, "ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=relay e2e CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        with open(os.path.join(self.dir, "server.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        live = os.path.join(self.dir, "live")
        os.mkdir(live)
        # The paths the relay is configured with; install() replaces what they hold.
        self.cert = os.path.join(live, "cert.pem")
        self.key = os.path.join(live, "key.pem")

    def issue(self, name, serial):
        """Returns (cert path, key path) of a new key pair signed by the CA with `serial`."""
        key, csr, cert = name + ".key", name + ".csr", name + ".pem"
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", csr, "-subj", "/CN=" + name, cwd=self.dir)
        openssl("x509", "-req", "-in", csr, "-CA", "ca.pem", "-CAkey", "ca.key",
                "-set_serial", str(serial), "-days", "2", "-out", cert, "-extfile", "server.ext",
                cwd=self.dir)
        return os.path.join(self.dir, cert), os.path.join(self.dir, key)

    def install(self, cert_src, key_src):
        """Atomically replaces the live key, then the live certificate (as certbot would)."""
        for src, dst in ((key_src, self.key), (cert_src, self.cert)):
            with open(src, "rb") as f:
                data = f.read()
            tmp = dst + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, dst)

    def client_context(self):
        return ssl.create_default_context(cafile=self.ca)


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path)


@pytest.fixture
def tls_relay(relay_factory, pki):
    pki.install(*pki.issue("first", 0x1001))
    relay = relay_factory("--tls-cert-file", pki.cert, "--tls-key-file", pki.key)
    assert relay.tls, relay.stdout_lines
    relay.ssl_context = pki.client_context()
    return relay


def served_serial(relay, context):
    """The serial number (int) of the certificate a new TLS connection is shown."""
    with socket.create_connection((relay.host, relay.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=relay.host) as tls:
            return int(tls.getpeercert()["serialNumber"], 16)


def s_client(relay, pki, *args):
    return subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (relay.host, relay.port),
                           "-CAfile", pki.ca, "-verify_return_error", *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


def negotiated(r):
    m = re.search(r"New, (TLSv[\d.]+), Cipher is (\S+)", r.stdout)
    return (m.group(1), m.group(2)) if m else (None, None)


def test_listening_line_says_wss(tls_relay):
    assert any(line.startswith("relay: listening wss on 127.0.0.1:") for line in tls_relay.stdout_lines)


async def test_wss_round_trip_with_python_websockets(tls_relay):
    a, b = await mesh_of(tls_relay, unique_mesh("tls"), [("a", []), ("b", ["llm"])])
    assert a.ws.transport.get_extra_info("ssl_object") is not None
    await a.send({"type": "direct", "target": "b", "payload": {"secret": 1}})
    assert await b.recv() == {"type": "message", "from": "a", "payload": {"secret": 1}}
    await b.send({"type": "broadcast", "payload": "hi"})
    assert await a.recv() == {"type": "message", "from": "b", "payload": "hi"}


def test_https_routes(tls_relay):
    assert tls_relay.get_json("/health") == {"status": "ok", "meshes": 0, "connections": 0}
    assert tls_relay.get_json("/stats")["refused"] == {
        "too_many_connections": 0, "draining": 0, "too_many_handshakes": 0, "bad_mesh_id": 0,
        "not_found": 0, "unsupported_websocket_version": 0, "bad_request": 0, "origin_not_allowed": 0}
    assert tls_relay.get_json("/ready") == {"status": "ready"}
    status, headers, _ = tls_relay.http("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")


def test_untrusted_certificate_is_rejected_by_the_client(tls_relay):
    with pytest.raises(ssl.SSLCertVerificationError):
        served_serial(tls_relay, ssl.create_default_context())


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_s_client_handshake_succeeds_with_tls_1_2_and_1_3(tls_relay, pki, version):
    r = s_client(tls_relay, pki, version)
    assert r.returncode == 0, r.stdout + r.stderr
    protocol, cipher = negotiated(r)
    assert protocol == {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[version], r.stdout
    assert "Verify return code: 0 (ok)" in r.stdout
    assert "Compression: NONE" in r.stdout
    if protocol == "TLSv1.2":
        assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher


@pytest.mark.parametrize("args", [["-tls1_1"], ["-tls1"], ["-tls1_2", "-cipher", "AES128-SHA"],
                                  ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA"]],
                         ids=["tls1.1", "tls1.0", "no-forward-secrecy", "cbc"])
def test_s_client_handshake_fails_with_old_protocols_and_ciphers(tls_relay, pki, args):
    r = s_client(tls_relay, pki, *args)
    assert r.returncode != 0, r.stdout
    assert negotiated(r)[1] in (None, "(NONE)"), r.stdout
    assert tls_relay.get_json("/health")["status"] == "ok"


@pytest.mark.one_instance("reloads one process's certificate with SIGHUP and counts its sockets on /stats")
async def test_sighup_reloads_the_certificate_without_dropping_connections(tls_relay, pki):
    context = pki.client_context()
    assert served_serial(tls_relay, context) == 0x1001
    a, b = await mesh_of(tls_relay, unique_mesh("reload"), [("a", []), ("b", [])])

    pki.install(*pki.issue("second", 0x2002))
    os.kill(tls_relay.proc.pid, signal.SIGHUP)
    await poll(lambda: served_serial(tls_relay, context) == 0x2002, timeout=5,
               what="new connections to see the new certificate")

    # The connections made before the reload keep working, both ways.
    await a.send({"type": "direct", "target": "b", "payload": 1})
    assert await b.recv() == {"type": "message", "from": "a", "payload": 1}
    await b.send({"type": "direct", "target": "a", "payload": 2})
    assert await a.recv() == {"type": "message", "from": "b", "payload": 2}
    c = await Client.connect(tls_relay, unique_mesh("after"))
    await c.register("c")

    # A bad new pair (key of another certificate, then garbage) is refused; the last good
    # one stays in use and nobody is dropped.
    third_cert, _ = pki.issue("third", 0x3003)
    _, second_key = pki.issue("unused", 0x4004)
    pki.install(third_cert, second_key)
    os.kill(tls_relay.proc.pid, signal.SIGHUP)
    await asyncio.sleep(0.5)
    assert served_serial(tls_relay, context) == 0x2002
    with open(pki.cert, "w") as f:
        f.write("not a certificate\n")
    os.kill(tls_relay.proc.pid, signal.SIGHUP)
    await asyncio.sleep(0.5)
    assert served_serial(tls_relay, context) == 0x2002
    assert tls_relay.proc.poll() is None
    assert "keeping the current TLS certificate" in tls_relay.stderr_text(limit=20000)
    await a.send({"type": "direct", "target": "b", "payload": 3})
    assert await b.recv() == {"type": "message", "from": "a", "payload": 3}
    assert tls_relay.get_json("/stats")["open_sockets"] == 3


async def test_slow_consumer_over_tls_is_closed_and_torn_down(relay_factory, pki):
    # The TLS close_notify to a peer that never reads cannot leave either: the relay must
    # still let go of the connection soon.
    pki.install(*pki.issue("first", 0x1001))
    relay = relay_factory("--tls-cert-file", pki.cert, "--tls-key-file", pki.key,
                          "--max-queued-bytes-per-connection", str(2 << 20))
    relay.ssl_context = pki.client_context()
    mesh = unique_mesh("tls-slow")
    producer = await connect_registered(instance(relay, 1), mesh, "producer")
    sockets = relay.get_json("/stats")["open_sockets"]
    slow = await asyncio.to_thread(rawws.RawWS, relay.host, relay.port, "/relay/" + mesh,
                                   rcvbuf=64 * 1024, ssl_context=pki.client_context())
    await asyncio.to_thread(slow.register, "slow")
    await producer.expect("peer_joined")
    frame = '{"type":"broadcast","payload":"%s"}' % ("z" * (256 * 1024))
    for _ in range(64):  # 16 MiB
        await producer.send_raw(frame)
    await poll(lambda: relay.get_json("/stats")["closes"]["slow_consumer"] == 1, timeout=10,
               what="closes.slow_consumer == 1")
    t0 = time.monotonic()
    await poll(lambda: relay.get_json("/stats")["open_sockets"] == sockets, timeout=10,
               what="the slow consumer's socket to be closed")
    assert time.monotonic() - t0 < 5
    assert await producer.recv() == {"type": "peer_left", "node_id": "slow"}
    await producer.ping_barrier()
    # And the consumer's TCP connection really ends (after what the kernel buffered).
    closed = await asyncio.to_thread(slow.wait_closed, 20)
    assert closed.code in (1013, None), closed
    slow.close()


async def test_flood_over_tls_sees_the_rate_limit_close(relay_factory, pki):
    # The flooding client is still writing when the relay closes it; over TLS too the close
    # frame must reach it (no reset that would drop it).
    pki.install(*pki.issue("first", 0x1001))
    relay = relay_factory("--tls-cert-file", pki.cert, "--tls-key-file", pki.key,
                          "--rate-limit-per-second", "10", "--rate-limit-burst", "20")
    relay.ssl_context = pki.client_context()
    c = await connect_registered(relay, unique_mesh("tls-flood"), "f")
    try:
        for _ in range(3000):
            await c.send({"type": "ping"})
    except websockets.ConnectionClosed:
        pass
    msgs, code, reason = await c.recv_until_closed()
    assert (code, reason) == (1008, "rate limited"), (code, reason)
    assert [m for m in msgs if m.get("type") == "error"], msgs
    await assert_served_elsewhere(relay)


def test_silent_tcp_connection_is_closed_by_the_tls_handshake_limit(tls_relay):
    # No ClientHello at all: websocketpp's own 5 s TLS handshake limit applies (before the
    # HTTP handshake timeout starts).
    with socket.create_connection((tls_relay.host, tls_relay.port), timeout=10) as sock:
        t0 = time.monotonic()
        sock.settimeout(10)
        try:
            data = sock.recv(1)
        except ConnectionResetError:
            data = b""
        waited = time.monotonic() - t0
    assert data == b"" and 4.0 <= waited < 8.0, (data, waited)


def run_relayctl(relayctl_bin, *args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_ADMIN_")}
    full_env.update(env or {})
    return subprocess.run([relayctl_bin, *args], capture_output=True, text=True, timeout=30,
                          env=full_env)


def test_grpc_over_tls_with_relayctl(tls_relay, pki, relayctl_bin):
    addr = tls_relay.grpc_addr
    r = run_relayctl(relayctl_bin, "--addr", addr, "--tls", "--ca-file", pki.ca, "health")
    assert r.returncode == 0 and r.stdout.strip() == "SERVING", r
    # RELAY_ADMIN_CA alone turns TLS on.
    r = run_relayctl(relayctl_bin, "--addr", addr, "stats", env={"RELAY_ADMIN_CA": pki.ca})
    assert r.returncode == 0, r
    # Plaintext is not served, and an unknown CA is not trusted: "cannot reach" (3), with a hint
    # of what to change, on one line (gRPC's own log lines are not shown).
    r = run_relayctl(relayctl_bin, "--addr", addr, "--timeout", "3", "health")
    assert r.returncode == 3, r
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert "use --tls (and --ca-file PEM for a private CA)" in r.stderr, r.stderr
    r = run_relayctl(relayctl_bin, "--addr", addr, "--timeout", "3", "--json", "stats")
    assert r.returncode == 3 and "use --tls" in json.loads(r.stdout)["error"]["message"], r
    other = Pki(os.path.join(pki.dir, "other"))
    r = run_relayctl(relayctl_bin, "--addr", addr, "--timeout", "3", "--ca-file", other.ca, "health")
    assert r.returncode == 3, r
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert "certificate is not trusted: give its CA with --ca-file" in r.stderr, r.stderr
    # The WebSocket port speaks TLS, not gRPC.
    r = run_relayctl(relayctl_bin, "--addr", "127.0.0.1:%d" % tls_relay.port, "--timeout", "3",
                     "--ca-file", pki.ca, "health")
    assert r.returncode == 3 and "is --addr the relay's GRPC_PORT?" in r.stderr, r.stderr
    # A CA file that cannot be read is a usage error.
    r = run_relayctl(relayctl_bin, "--addr", addr, "--ca-file", "/nonexistent/ca.pem", "health")
    assert r.returncode == 2 and "/nonexistent/ca.pem" in r.stderr, r


def test_tls_to_a_plaintext_relay_says_to_drop_tls(relay, relayctl_bin):
    r = run_relayctl(relayctl_bin, "--addr", "127.0.0.1:%d" % relay.grpc_port, "--timeout", "3", "--tls",
                     "health")
    assert r.returncode == 3, r
    assert r.stderr.endswith("; the relay does not speak TLS on this port: try without --tls\n"), r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr


def test_unreadable_certificate_exits_1_naming_it(relay_bin, pki, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("garbage\n")
    _, key = pki.issue("k", 5)
    r = subprocess.run([relay_bin, "--port", "0", "--grpc-port", "0", "--tls-cert-file", str(bad),
                        "--tls-key-file", key], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, r
    assert str(bad) in r.stderr, r.stderr
