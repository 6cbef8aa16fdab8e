"""REUSE_PORT (SO_REUSEPORT on the WebSocket + HTTP listener): relays that set it share one PORT, each
with its own GRPC_PORT, and the kernel spreads new connections over them; each relay is watched
through its own gRPC port (HTTP /health, /stats share the WebSocket port, so they answer from
whichever relay the kernel picks). Without a backplane each holds its own meshes: one mesh is split.

Off (the default) a second relay on a taken PORT exits 1 naming the port, and so does one on a taken
GRPC_PORT whatever REUSE_PORT says (gRPC's own SO_REUSEPORT is turned off)."""

import asyncio
import json
import os
import subprocess

import pytest

from relayclient import Client, unique_mesh

CONNECTIONS = 20


def run_ctl(relayctl_bin, relay, *args):
    env = dict(os.environ)
    for name in ("RELAY_ADMIN_ADDR", "RELAY_ADMIN_TOKEN", "RELAY_ADMIN_CA"):
        env.pop(name, None)
    return subprocess.run([relayctl_bin, "--addr", relay.grpc_addr, *args], capture_output=True,
                          text=True, timeout=20, env=env)


async def ctl_json(relayctl_bin, relay, *args):
    r = await asyncio.to_thread(run_ctl, relayctl_bin, relay, "--json", *args)
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def start_fails(relay_bin, *args, env=None):
    """Runs a relay that must not start: exit code 1 within 15 s. Returns its stderr."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        r = subprocess.run([relay_bin, "--host", "127.0.0.1", "--port", "0", "--grpc-port", "0",
                            "--drain-grace-seconds", "1", *args],
                           capture_output=True, text=True, timeout=15, env=full_env,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:  # run() killed it
        raise AssertionError("relay %r started instead of failing; stdout=%r" % (args, e.stdout)) from None
    assert r.returncode == 1, "relay %r: exit %d, expected 1; stdout=%r stderr=%s" % (
        args, r.returncode, r.stdout, r.stderr)
    assert "listening" not in r.stdout, r.stdout
    return r.stderr


async def test_two_relays_with_reuse_port_share_the_port_and_split_the_connections(relay_factory, relayctl_bin):
    first = relay_factory("--reuse-port", "1")
    second = relay_factory("--port", str(first.port), env={"REUSE_PORT": "1"})
    assert second.port == first.port
    assert second.grpc_port != first.grpc_port

    mesh = unique_mesh("shared")
    clients = []
    known = {}  # node_id -> the peers it was told of (its own relay's), itself included
    for i in range(CONNECTIONS):
        # Each a new TCP connection from a new source port: the kernel hashes it onto one listener.
        c = await Client.connect(first, mesh)
        node_id = "peer-%02d" % i
        _, peers = await c.register(node_id)
        known[node_id] = {node_id} | {p["node_id"] for p in peers["peers"]}
        clients.append(c)

    stats = [await ctl_json(relayctl_bin, r, "stats") for r in (first, second)]
    sockets = [s["open_sockets"] for s in stats]
    assert sum(sockets) == CONNECTIONS, sockets
    assert min(sockets) > 0, "all %d connections on one relay: %r" % (CONNECTIONS, sockets)
    assert [s["registered_peers"] for s in stats] == sockets, stats

    # No backplane: the one mesh is two, each relay knowing only its own peers, and so do the peers.
    shown = [await ctl_json(relayctl_bin, r, "meshes", "show", mesh) for r in (first, second)]
    on_relay = [{p["node_id"] for p in s["peers"]} for s in shown]
    assert [len(ids) for ids in on_relay] == sockets, shown
    assert on_relay[0] | on_relay[1] == set(known) and not on_relay[0] & on_relay[1], on_relay
    for c in clients:
        await c.send({"type": "ping"})
        while (msg := await c.recv())["type"] != "pong":
            assert msg["type"] == "peer_joined", msg
            known[c.node_id].add(msg["node_id"])
    for node_id, peers in known.items():
        assert peers in on_relay, "%s sees %r, not one relay's peers %r" % (node_id, peers, on_relay)

    # Both keep serving; the shared port answers HTTP from one of them.
    assert first.get_json("/health")["status"] == "ok"
    for r in (first, second):
        assert run_ctl(relayctl_bin, r, "health").stdout == "SERVING\n"


async def test_the_port_stays_served_when_one_of_two_relays_stops(relay_factory, relayctl_bin):
    first = relay_factory("--reuse-port", "1")
    second = relay_factory("--reuse-port", "1", "--port", str(first.port))
    assert first.stop() == 0

    for _ in range(5):
        c = await Client.connect(second, unique_mesh("after"))
        await c.register("alone")
    assert (await ctl_json(relayctl_bin, second, "stats"))["open_sockets"] == 5


def test_without_reuse_port_a_second_relay_on_the_same_port_fails_naming_it(relay_factory, relay_bin,
                                                                             relayctl_bin):
    first = relay_factory()
    stderr = start_fails(relay_bin, "--port", str(first.port))
    assert "cannot listen on 127.0.0.1:%d: Address already in use" % first.port in stderr, stderr
    assert run_ctl(relayctl_bin, first, "health").stdout == "SERVING\n"


@pytest.mark.parametrize("first_args, second_args", [
    ((), ("--reuse-port", "1")),
    (("--reuse-port", "1"), ()),
], ids=["only-the-second-sets-it", "only-the-first-sets-it"])
def test_reuse_port_shares_only_with_relays_that_set_it_too(relay_factory, relay_bin, first_args, second_args):
    first = relay_factory(*first_args)
    stderr = start_fails(relay_bin, "--port", str(first.port), *second_args)
    assert "cannot listen on 127.0.0.1:%d: Address already in use" % first.port in stderr, stderr


@pytest.mark.parametrize("reuse_port", ["0", "1"])
def test_a_second_relay_on_the_same_grpc_port_fails_naming_it(relay_factory, relay_bin, relayctl_bin, reuse_port):
    first = relay_factory("--reuse-port", reuse_port)
    # Its own WebSocket port, or the shared one: either way the gRPC port is not shared.
    ws_port = str(first.port) if reuse_port == "1" else "0"
    stderr = start_fails(relay_bin, "--reuse-port", reuse_port, "--port", ws_port,
                         "--grpc-port", str(first.grpc_port))
    assert "cannot listen for gRPC on 127.0.0.1:%d" % first.grpc_port in stderr, stderr
    assert run_ctl(relayctl_bin, first, "health").stdout == "SERVING\n"
