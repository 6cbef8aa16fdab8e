"""gRPC peers (RelayCore.Attach) and WebSocket peers in one mesh: the same protocol over both
transports, in both directions. The gRPC side is Python's grpcio (grpcpeer.py), the WebSocket side
Python's websockets; neither was written by this project."""

import asyncio
import json

import grpc
import pytest

from grpcpeer import NOT_SERVING, SERVING, GrpcPeer, StreamEnded, health_status, pb, reflected_services
from relayclient import Client, assert_error, assert_served_elsewhere, connect_registered, drain_close, poll, unique_mesh

SPREAD_OVER_CLUSTER = True


async def grecv(peer, kind=None, timeout=10.0):
    if kind is None:
        return await asyncio.to_thread(peer.recv, timeout)
    return await asyncio.to_thread(peer.expect, kind, timeout)


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


async def test_ws_and_grpc_peers_see_each_other_and_talk_both_ways(relay, peers):
    mesh = unique_mesh("mixed")
    phone = await connect_registered(relay, mesh, "phone")
    worker = peers(relay)
    joined, listed = await asyncio.to_thread(worker.register, mesh, "worker", ["llm"], name="GPU box")
    assert (joined.mesh_id, joined.node_count) == (mesh, 2)
    assert [p.node_id for p in listed.peers] == ["phone"]
    assert await phone.recv() == {"type": "peer_joined", "node_id": "worker", "name": "GPU box",
                                  "capabilities": ["llm"]}

    # WebSocket -> gRPC: broadcast and direct, payload bytes as the phone wrote them
    await phone.send_raw('{"type":"broadcast","payload":{"n":1,"s":"h\\u00e9"}}')
    msg = await grecv(worker, "message")
    assert getattr(msg, "from") == "phone"
    assert json.loads(msg.payload) == {"n": 1, "s": "hé"} and msg.broadcast
    await phone.send({"type": "direct", "target": "worker", "payload": [1, 2]})
    msg = await grecv(worker, "message")
    assert json.loads(msg.payload) == [1, 2] and not msg.broadcast

    # gRPC -> WebSocket
    worker.send(broadcast=pb.Broadcast(payload=b'{"from_grpc":true}'))
    assert await phone.recv() == {"type": "message", "from": "worker", "payload": {"from_grpc": True}}
    worker.send(direct=pb.Direct(target="phone", payload=b'"hi"'))
    assert await phone.recv() == {"type": "message", "from": "worker", "payload": "hi"}
    worker.send(broadcast=pb.Broadcast())  # no payload: null, as for a WebSocket client
    assert await phone.recv() == {"type": "message", "from": "worker", "payload": None}

    # llm: WebSocket requester, gRPC responder
    await phone.send({"type": "llm_request", "request_id": "r1", "prompt": "Hello!"})
    delivery = await grecv(worker, "llm_request")
    assert getattr(delivery, "from") == "phone"
    assert json.loads(delivery.request.request_id) == "r1"
    assert json.loads("{" + delivery.request.members.decode() + "}") == {"prompt": "Hello!"}
    assert delivery.request.add_messages and delivery.request.prompt_for_messages == "Hello!"
    worker.send(llm_response=pb.LlmResponse(target="phone", request_id=b'"r1"', members=b'"response":"Hi there!"'))
    assert await phone.recv() == {"type": "llm_response", "from": "worker", "request_id": "r1",
                                  "response": "Hi there!"}

    # llm: gRPC requester, WebSocket responder (the phone gains the capability)
    await phone.send({"type": "capabilities_update", "capabilities": ["llm"]})
    updated = await grecv(worker, "peer_updated")
    assert (updated.node_id, list(updated.capabilities)) == ("phone", ["llm"])
    worker.send(llm_request=pb.LlmRequest(request_id=b"7", members=b'"prompt":"2+2?","model":"m"'))
    got = await phone.recv()
    assert got == {"type": "llm_request", "from": "worker", "request_id": 7, "prompt": "2+2?", "model": "m",
                   "messages": [{"role": "user", "content": "2+2?"}]}
    await phone.send({"type": "llm_response", "target": "worker", "request_id": 7, "response": "4"})
    resp = await grecv(worker, "llm_response")
    assert getattr(resp, "from") == "phone" and resp.response.request_id == b"7"
    assert json.loads("{" + resp.response.members.decode() + "}") == {"response": "4"}

    # ping over gRPC
    worker.send(ping=pb.Ping())
    assert (await grecv(worker, "pong")).timestamp > 0

    # the gRPC peer leaves: the phone is told
    worker.close()
    assert await phone.recv() == {"type": "peer_left", "node_id": "worker"}
    code, _ = await asyncio.to_thread(worker.ended)
    assert code == grpc.StatusCode.OK


async def test_grpc_peer_sees_ws_peers_come_and_go(relay, peers):
    mesh = unique_mesh("mixed")
    worker = peers(relay)
    await asyncio.to_thread(worker.register, mesh, "worker")
    phone = await connect_registered(relay, mesh, "phone", ["chat"])
    joined = await grecv(worker, "peer_joined")
    assert (joined.peer.node_id, list(joined.peer.capabilities)) == ("phone", ["chat"])
    await phone.close()
    assert (await grecv(worker, "peer_left")).node_id == "phone"


async def test_grpc_peer_gets_the_websocket_errors(relay, peers):
    mesh = unique_mesh("errors")
    worker = peers(relay)
    worker.send(ping=pb.Ping())
    await asyncio.to_thread(worker.expect_error, "not_registered")
    worker.send()  # an empty ClientEvent
    await asyncio.to_thread(worker.expect_error, "unknown_type")
    worker.send(register=pb.Register(mesh_id="", node_id="w"))
    await asyncio.to_thread(worker.expect_error, "bad_message")
    await asyncio.to_thread(worker.register, mesh, "worker")
    worker.send(register=pb.Register(mesh_id=mesh, node_id="again"))
    await asyncio.to_thread(worker.expect_error, "already_registered")
    # invalid JSON where the relay forwards raw JSON: refused, never relayed
    for bad in (b"{", b"1 2", b"\xff", b'1,"x":2', b'"a"}'):
        worker.send(broadcast=pb.Broadcast(payload=bad))
        await asyncio.to_thread(worker.expect_error, "bad_json")
    worker.send(llm_request=pb.LlmRequest(request_id=b'"r"', members=b'"prompt":'))
    await asyncio.to_thread(worker.expect_error, "bad_json")
    worker.send(llm_request=pb.LlmRequest(members=b'"prompt":"x"'))  # no request_id
    await asyncio.to_thread(worker.expect_error, "bad_message")
    worker.send(direct=pb.Direct(target="nobody", payload=b"1"))
    await asyncio.to_thread(worker.expect_error, "unknown_target")
    worker.send(llm_request=pb.LlmRequest(request_id=b'"q"', members=b'"prompt":"x"'))
    err = await asyncio.to_thread(worker.expect_error, "no_llm_peer")
    assert err.request_id == b'"q"'
    # still served
    worker.send(ping=pb.Ping())
    await grecv(worker, "pong")
    await assert_served_elsewhere(relay)


async def test_grpc_peer_cannot_forge_signed_token_fields(relay, peers):
    worker = peers(relay)
    worker.send(register=pb.Register(mesh_id=unique_mesh(), node_id="w",
                                     signed_token=pb.SignedJoinToken(present=True, canonical=b"{}")))
    err = await asyncio.to_thread(worker.expect_error, "bad_message")
    assert "token_json" in err.message


async def test_node_ownership_across_transports(relay, peers):
    mesh = unique_mesh("own")
    holder = peers(relay)
    await asyncio.to_thread(holder.register, mesh, "n1", token="t0k")
    # a WebSocket client with the same node_id but another token: refused, holder unaffected
    other = await Client.connect(relay, mesh)
    await other.send({"type": "register", "node_id": "n1", "token": "other"})
    await other.expect_error("auth_failed")
    # the same credentials over WebSocket take the node over: the gRPC stream ends ABORTED "replaced"
    ws = await Client.connect(relay, mesh)
    await ws.send({"type": "register", "node_id": "n1", "token": "t0k"})
    await ws.expect("joined")
    code, details = await asyncio.to_thread(holder.ended)
    assert (code, details) == (grpc.StatusCode.ABORTED, "replaced")


async def test_open_mesh_grpc_holder_keeps_its_id_against_a_stranger(relay, peers):
    # An open mesh: equal (absent) credentials prove nothing, so the relay checks that the holder
    # is gone first. A gRPC stream its keepalive has not broken is alive: the stranger is refused.
    mesh = unique_mesh("own-open")
    holder = peers(relay)
    await asyncio.to_thread(holder.register, mesh, "n1")
    stranger = await Client.connect(relay, mesh)
    await stranger.send({"type": "register", "node_id": "n1"})
    await stranger.expect_error("node_id_in_use")
    mac = await connect_registered(relay, mesh, "mac")
    await asyncio.to_thread(holder.expect, "peer_joined")
    await mac.send({"type": "direct", "target": "n1", "payload": "still yours"})
    msg = await asyncio.to_thread(holder.expect, "message")
    assert json.loads(msg.payload) == "still yours", msg


async def test_grpc_peer_that_vanishes_is_reported_peer_left(relay, peers):
    mesh = unique_mesh("vanish")
    phone = await connect_registered(relay, mesh, "phone")
    worker = peers(relay)
    await asyncio.to_thread(worker.register, mesh, "worker")
    await phone.expect("peer_joined")
    worker.cancel()
    assert await phone.recv() == {"type": "peer_left", "node_id": "worker"}
    await poll(lambda: relay.get_json("/stats")["open_sockets"] == 1, what="the stream to be gone")


async def test_admin_shows_grpc_transport(relay, peers, relayctl_bin):
    mesh = unique_mesh("show")
    worker = peers(relay)
    await asyncio.to_thread(worker.register, mesh, "worker")
    out = await asyncio.create_subprocess_exec(
        relayctl_bin, "--addr", "%s:%d" % (relay.grpc_host, relay.grpc_port), "--json", "meshes", "show", mesh,
        stdout=asyncio.subprocess.PIPE)
    stdout, _ = await out.communicate()
    assert out.returncode == 0
    shown = json.loads(stdout)
    peers_shown = shown["peers"]
    assert [p["node_id"] for p in peers_shown] == ["worker"]
    assert peers_shown[0]["transport"] == "grpc"
    assert peers_shown[0]["remote_address"].startswith("127.0.0.1:")


async def test_grpc_peers_are_told_of_a_drain_and_end_unavailable(relay_factory, peers):
    relay = relay_factory("--drain-grace-seconds", "1")
    worker = peers(relay)
    await asyncio.to_thread(worker.register, unique_mesh("drain"), "worker")
    relay.proc.send_signal(15)
    draining = await grecv(worker, "server_draining")
    assert draining.grace_seconds == 1 and 0 <= draining.reconnect_after_ms < 5000
    # new streams are refused meanwhile
    late = peers(relay)
    code, _ = await asyncio.to_thread(late.ended)
    assert code == grpc.StatusCode.UNAVAILABLE
    code, details = await asyncio.to_thread(worker.ended)
    assert await asyncio.to_thread(relay.proc.wait, 10) == 0
    relay.returncode = 0
    assert (code, details) == (grpc.StatusCode.UNAVAILABLE, drain_close(relay)[1])


def test_health_and_reflection_from_grpcio(relay):
    assert health_status(relay, "") == SERVING
    assert health_status(relay, "relay.v1.RelayCore") == SERVING
    with pytest.raises(grpc.RpcError) as unknown:
        health_status(relay, "no.such.Service")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    listed = reflected_services(relay)
    for name in (b"relay.v1.Admin", b"relay.v1.RelayCore", b"grpc.health.v1.Health"):
        assert name in listed, listed
