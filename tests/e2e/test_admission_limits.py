"""One admission policy for every transport, against the real binary: WebSocket clients and gRPC
peers (RelayCore.Attach, from Python's grpcio) share MAX_CONNECTIONS and MAX_CONNECTIONS_PER_IP, a
freed slot of either kind goes to the next client of either kind, and refusals of both transports
are counted under the same names in /stats "refused" and relay_upgrades_refused_total.

In the cluster topology every test keeps its clients on the first instance (one_instance): the
limits are each process's own, and so are its counts; the other instances run and share the
meshes, so each admission there is also a cluster registration."""

import asyncio

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

import rawws
from grpcpeer import GrpcPeer
from relayclient import connect_registered, poll, unique_mesh

# Run again on three instances (conftest.py).
SPREAD_OVER_CLUSTER = True


@pytest.fixture
def peers():
    made = []

    def make(relay):
        p = GrpcPeer(relay)
        made.append(p)
        return p

    yield make
    for p in made:
        p.shut()


def refused(relay):
    return relay.get_json("/stats")["refused"]


def open_sockets(relay):
    return relay.get_json("/stats")["open_sockets"]


def refused_metric(relay, reason):
    status, _, body = relay.http("GET", "/metrics")
    assert status == 200, body
    for family in text_string_to_metric_families(body.decode()):
        if family.name != "relay_upgrades_refused":
            continue
        for sample in family.samples:
            if sample.name == "relay_upgrades_refused_total" and sample.labels == {"reason": reason}:
                return sample.value
    raise AssertionError("no relay_upgrades_refused_total{reason=%r} in /metrics" % reason)


def ws_upgrade(relay, mesh, source=None):
    return rawws.try_upgrade(relay.host, relay.port, "/relay/" + mesh, source_address=source)


def assert_ws_refused(resp, error="too_many_connections", words=None):
    assert resp.status == 503, resp
    body = resp.json()
    assert body["error"] == error, body
    if words is not None:
        assert words in body["message"], body


async def assert_grpc_refused(peer, code=grpc.StatusCode.RESOURCE_EXHAUSTED, words=None):
    got, details = await asyncio.to_thread(peer.ended)
    assert got == code, (got, details)
    if words is not None:
        assert words in details, details


async def grpc_register(peer, mesh, node_id):
    await asyncio.to_thread(peer.register, mesh, node_id)


@pytest.mark.one_instance("MAX_CONNECTIONS bounds one process; counts its sockets and refusals on /stats")
async def test_websocket_and_grpc_peers_together_are_bounded_by_max_connections(relay_factory, peers):
    relay = relay_factory("--max-connections", "4")
    mesh = unique_mesh("slots")
    ws = [await connect_registered(relay, mesh, "ws-%d" % i) for i in range(2)]
    workers = [peers(relay) for _ in range(2)]
    for i, worker in enumerate(workers):
        await grpc_register(worker, mesh, "grpc-%d" % i)
    assert open_sockets(relay) == 4

    # The fifth connection is refused, whichever transport it uses.
    await assert_grpc_refused(peers(relay), words="connection limit")
    assert_ws_refused(await asyncio.to_thread(ws_upgrade, relay, mesh), words="connection limit")
    assert refused(relay)["too_many_connections"] == 2
    assert refused_metric(relay, "too_many_connections") == 2
    assert open_sockets(relay) == 4

    # A gRPC peer leaves: its slot goes to the next WebSocket client...
    workers[0].close()
    assert (await asyncio.to_thread(workers[0].ended))[0] == grpc.StatusCode.OK
    await poll(lambda: open_sockets(relay) == 3, what="the gRPC peer's slot to be freed")
    await connect_registered(relay, mesh, "ws-late")
    # ...and the relay is full again for both.
    await assert_grpc_refused(peers(relay))
    assert_ws_refused(await asyncio.to_thread(ws_upgrade, relay, mesh))

    # A WebSocket client leaves: its slot goes to the next gRPC peer.
    await ws[0].close()
    await poll(lambda: open_sockets(relay) == 3, what="the WebSocket client's slot to be freed")
    await grpc_register(peers(relay), mesh, "grpc-late")
    assert_ws_refused(await asyncio.to_thread(ws_upgrade, relay, mesh))

    assert refused(relay)["too_many_connections"] == 5
    assert refused_metric(relay, "too_many_connections") == 5
    assert open_sockets(relay) == 4


@pytest.mark.one_instance("MAX_CONNECTIONS_PER_IP bounds one process; counts its sockets and refusals on /stats")
async def test_the_per_ip_limit_counts_grpc_peers_and_websocket_clients_together(relay_factory, peers):
    relay = relay_factory("--max-connections-per-ip", "2")
    mesh = unique_mesh("per-ip")
    # Both from 127.0.0.1: one of each kind fills that IP's two slots.
    await connect_registered(relay, mesh, "phone")
    worker = peers(relay)
    await grpc_register(worker, mesh, "worker")

    await assert_grpc_refused(peers(relay), words="this IP address")
    assert_ws_refused(await asyncio.to_thread(ws_upgrade, relay, mesh), words="this IP address")
    assert refused(relay)["too_many_connections"] == 2
    assert refused_metric(relay, "too_many_connections") == 2

    # It is a per-IP bound, not a total: another client IP still gets in.
    other = await asyncio.to_thread(rawws.RawWS, relay.host, relay.port, "/relay/" + mesh,
                                    source_address=("127.0.0.2", 0))
    try:
        await asyncio.to_thread(other.register, "other")
    finally:
        other.close()

    # The gRPC peer's slot is given back to its IP when it leaves.
    worker.close()
    assert (await asyncio.to_thread(worker.ended))[0] == grpc.StatusCode.OK
    await poll(lambda: open_sockets(relay) == 1, what="the gRPC peer's slot to be freed")
    await grpc_register(peers(relay), mesh, "worker-again")
    assert refused(relay)["too_many_connections"] == 2


@pytest.mark.one_instance("drains one process with SIGTERM and reads its refusal counts")
async def test_refusals_while_draining_are_counted_alike_for_both_transports(relay_factory, peers):
    relay = relay_factory("--drain-grace-seconds", "30")
    mesh = unique_mesh("drain")
    # A client keeps the drain waiting for its grace (it ends once everyone left).
    stay = await connect_registered(relay, mesh, "stay")
    relay.proc.send_signal(15)
    await stay.expect("server_draining")

    await assert_grpc_refused(peers(relay), code=grpc.StatusCode.UNAVAILABLE, words="shutting down")
    assert_ws_refused(await asyncio.to_thread(ws_upgrade, relay, mesh), error="draining")
    assert refused(relay)["draining"] == 2
    assert refused(relay)["too_many_connections"] == 0
    assert refused_metric(relay, "draining") == 2

    await stay.close()
    assert await asyncio.to_thread(relay.proc.wait, 10) == 0
    relay.returncode = 0
