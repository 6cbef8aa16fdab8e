"""The relay protocol end to end: every row of the seed README's message tables and every
rule of the spec, against the real binary, each test on its own fresh relay, and again on three
relay instances sharing a NATS cluster with the peers spread over them (conftest.py)."""

import asyncio
import json
import signal
import subprocess
import time

import pytest

import grpcpeer
import rawws
from relayclient import (ERROR_CODES, Client, assert_error, connect_registered, marker_barrier, mesh_of, poll,
                         unique_mesh)

SPREAD_OVER_CLUSTER = True


def keys(msg):
    return list(msg.keys())


# ---------------------------------------------------------------------------
# register / join, peers, peer_joined, peer_left
# ---------------------------------------------------------------------------

async def test_register_sends_joined_then_peers(relay):
    mesh = unique_mesh()
    a = await Client.connect(relay, mesh)
    await a.send({"type": "register", "node_id": "node-a", "capabilities": ["llm"], "name": "Alpha"})
    joined = await a.recv()
    assert joined == {"type": "joined", "mesh_id": mesh, "node_count": 1}
    peers = await a.recv()
    assert peers == {"type": "peers", "peers": []}

    b = await Client.connect(relay, mesh)
    before = time.time()
    await b.send({"type": "register", "node_id": "node-b", "capabilities": [], "name": "Beta"})
    joined = await b.recv()
    assert joined == {"type": "joined", "mesh_id": mesh, "node_count": 2}
    peers = await b.recv()
    assert peers["type"] == "peers"
    assert len(peers["peers"]) == 1
    p = peers["peers"][0]
    assert {k: p[k] for k in ("node_id", "name", "capabilities")} == \
        {"node_id": "node-a", "name": "Alpha", "capabilities": ["llm"]}
    assert isinstance(p["joined_at"], float)
    assert before - 10 <= p["joined_at"] <= time.time() + 1


async def test_peers_lists_others_in_join_order(relay):
    mesh = unique_mesh()
    await mesh_of(relay, mesh, [("n1", ["llm"]), ("n2", []), ("n3", ["chat"])])
    d = await Client.connect(relay, mesh)
    joined, peers = await d.register("n4", ["x"], name="Four")
    assert joined["node_count"] == 4
    assert [p["node_id"] for p in peers["peers"]] == ["n1", "n2", "n3"]
    assert [p["capabilities"] for p in peers["peers"]] == [["llm"], [], ["chat"]]
    times = [p["joined_at"] for p in peers["peers"]]
    assert times == sorted(times)


async def test_server_message_field_order(relay):
    """Spec: server->client fields in the order written."""
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "a", ["llm"])
    b = await Client.connect(relay, mesh)
    await b.send({"type": "register", "node_id": "b", "capabilities": []})
    assert keys(await b.recv()) == ["type", "mesh_id", "node_count"]
    peers = await b.recv()
    assert keys(peers) == ["type", "peers"]
    assert keys(peers["peers"][0]) == ["node_id", "name", "capabilities", "joined_at"]
    assert keys(await a.recv()) == ["type", "node_id", "name", "capabilities"]  # peer_joined
    await b.send({"type": "broadcast", "payload": 1})
    assert keys(await a.recv()) == ["type", "from", "payload"]
    await b.send({"type": "ping"})
    assert keys(await b.recv()) == ["type", "timestamp"]
    await b.send({"type": "direct", "target": "zz", "payload": 1})
    assert keys(await b.recv())[:3] == ["type", "code", "message"]
    await a.send({"type": "capabilities_update", "capabilities": ["llm", "x"]})
    assert keys(await b.recv()) == ["type", "node_id", "capabilities"]
    await b.close()
    assert keys(await a.recv()) == ["type", "node_id"]  # peer_left


async def test_default_name_is_first_8_characters_of_node_id(relay):
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "watcher")
    b = await Client.connect(relay, mesh)
    await b.register("abcdefghijklmnop")
    pj = await a.expect("peer_joined")
    assert pj["name"] == "abcdefgh"
    # characters, not bytes
    c = await Client.connect(relay, mesh)
    await c.register("ñódé-ünïcode-node")
    pj = await a.expect("peer_joined")
    assert pj["name"] == "ñódé-ünï"
    # shorter than 8: the whole node_id
    d = await Client.connect(relay, mesh)
    await d.register("abc")
    assert (await a.expect("peer_joined"))["name"] == "abc"


async def test_join_with_node_name(relay):
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "a")
    b = await Client.connect(relay, mesh)
    await b.send({"type": "join", "node_id": "phone-1", "node_name": "Phone", "capabilities": ["chat"]})
    joined = await b.expect("joined")
    assert joined == {"type": "joined", "mesh_id": mesh, "node_count": 2}
    peers = await b.expect("peers")
    assert [p["node_id"] for p in peers["peers"]] == ["a"]
    pj = await a.expect("peer_joined")
    assert pj == {"type": "peer_joined", "node_id": "phone-1", "name": "Phone", "capabilities": ["chat"]}


async def test_join_with_name_field(relay):
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "a")
    b = await Client.connect(relay, mesh)
    await b.register("tab-1", [], name="Tablet", type="join")
    assert (await a.expect("peer_joined"))["name"] == "Tablet"


async def test_register_capabilities_default_empty_and_token_null_accepted(relay):
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "a")
    b = await Client.connect(relay, mesh)
    await b.send({"type": "register", "node_id": "bare", "token": None})
    await b.expect("joined")
    await b.expect("peers")
    pj = await a.expect("peer_joined")
    assert pj == {"type": "peer_joined", "node_id": "bare", "name": "bare", "capabilities": []}


async def test_peer_joined_sent_to_every_other_peer_not_newcomer(relay):
    mesh = unique_mesh()
    a, b = await mesh_of(relay, mesh, [("a", []), ("b", ["llm"])])
    c = await Client.connect(relay, mesh)
    await c.register("c", ["llm", "chat"], name="Charlie")
    expected = {"type": "peer_joined", "node_id": "c", "name": "Charlie", "capabilities": ["llm", "chat"]}
    assert await a.recv() == expected
    assert await b.recv() == expected
    await c.ping_barrier()  # the newcomer got nothing about itself


async def test_peer_left_on_clean_close(relay):
    mesh = unique_mesh()
    a, b, c = await mesh_of(relay, mesh, [("a", []), ("b", []), ("c", [])])
    await b.close()
    assert await a.recv() == {"type": "peer_left", "node_id": "b"}
    assert await c.recv() == {"type": "peer_left", "node_id": "b"}


async def test_unregistered_close_announces_nothing(relay):
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "a")
    lurker = await Client.connect(relay, mesh)
    await lurker.close()
    b = await connect_registered(relay, mesh, "b")
    # a's next message is b's peer_joined: no peer_left for the unregistered socket
    assert (await a.recv())["type"] == "peer_joined"
    await b.close()
    assert await a.recv() == {"type": "peer_left", "node_id": "b"}


# ---------------------------------------------------------------------------
# broadcast / direct
# ---------------------------------------------------------------------------

async def test_broadcast_reaches_all_others_not_sender(relay):
    mesh = unique_mesh()
    a, b, c = await mesh_of(relay, mesh, [("a", []), ("b", []), ("c", [])])
    await a.send({"type": "broadcast", "payload": {"message": "Hello everyone!"}})
    expected = {"type": "message", "from": "a", "payload": {"message": "Hello everyone!"}}
    assert await b.recv() == expected
    assert await c.recv() == expected
    await a.ping_barrier()  # no echo, no error


async def test_broadcast_alone_in_mesh_is_no_error(relay):
    a = await connect_registered(relay, unique_mesh(), "solo")
    await a.send({"type": "broadcast", "payload": "anyone?"})
    await a.ping_barrier()


async def test_broadcast_without_payload_delivers_null(relay):
    mesh = unique_mesh()
    a, b = await mesh_of(relay, mesh, [("a", []), ("b", [])])
    await a.send({"type": "broadcast"})
    msg = await b.recv()
    assert msg == {"type": "message", "from": "a", "payload": None}


async def test_direct_only_to_target(relay):
    mesh = unique_mesh()
    a, b, c = await mesh_of(relay, mesh, [("a", []), ("b", []), ("c", [])])
    await a.send({"type": "direct", "target": "b", "payload": {"message": "Hello specific peer!"}})
    assert await b.recv() == {"type": "message", "from": "a", "payload": {"message": "Hello specific peer!"}}
    await marker_barrier(a, [b, c])  # c's next message is the marker, not the direct
    await a.ping_barrier()


async def test_direct_without_payload_delivers_null(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", [])])
    await a.send({"type": "direct", "target": "b"})
    assert await b.recv() == {"type": "message", "from": "a", "payload": None}


async def test_direct_to_self_is_delivered(relay):
    a = await connect_registered(relay, unique_mesh(), "me")
    await a.send({"type": "direct", "target": "me", "payload": [1, 2]})
    assert await a.recv() == {"type": "message", "from": "me", "payload": [1, 2]}


async def test_direct_unknown_target(relay):
    mesh = unique_mesh()
    a, b = await mesh_of(relay, mesh, [("a", []), ("b", [])])
    await a.send({"type": "direct", "target": "ghost", "payload": "boo"})
    await a.expect_error("unknown_target")
    await marker_barrier(a, [b])


async def test_direct_to_peer_that_left_is_unknown_target(relay):
    mesh = unique_mesh()
    a, b = await mesh_of(relay, mesh, [("a", []), ("b", [])])
    await b.close()
    await a.expect("peer_left")
    await a.send({"type": "direct", "target": "b", "payload": 1})
    await a.expect_error("unknown_target")


# ---------------------------------------------------------------------------
# llm_request / chat_request / llm_response
# ---------------------------------------------------------------------------

async def test_llm_request_routed_to_one_capable_peer_with_messages_added(relay):
    mesh = unique_mesh()
    a, b, c = await mesh_of(relay, mesh, [("asker", []), ("llm-box", ["llm"]), ("seer", ["vision"])])
    await a.send({"type": "llm_request", "request_id": "req-123", "prompt": "What is the meaning of life?",
                  "model": "llama3.2"})
    got = await b.recv()
    assert got == {"type": "llm_request", "from": "asker", "request_id": "req-123",
                   "prompt": "What is the meaning of life?", "model": "llama3.2",
                   "messages": [{"role": "user", "content": "What is the meaning of life?"}]}
    assert keys(got) == ["type", "from", "request_id", "prompt", "model", "messages"]
    await marker_barrier(a, [b, c])  # seer (no llm capability) got nothing
    await a.ping_barrier()  # the requester got nothing back


async def test_llm_request_keeps_extra_fields_in_order(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", ["llm"])])
    raw = ('{"type":"llm_request","model":"m1","request_id":"r1","temperature":0.25,'
           '"options":{"num_ctx":4096,"stop":["\\n"]},"prompt":"hi","stream":false}')
    await a.send_raw(raw)
    got = await b.recv()
    assert keys(got) == ["type", "from", "request_id", "model", "temperature", "options", "prompt", "stream",
                         "messages"]
    assert got["options"] == {"num_ctx": 4096, "stop": ["\n"]}
    assert got["temperature"] == 0.25 and got["stream"] is False
    assert '"options":{"num_ctx":4096,"stop":["\\n"]}' in b.last_raw


async def test_llm_request_with_messages_forwarded_untouched(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", ["llm"])])
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    await a.send({"type": "llm_request", "request_id": "r2", "prompt": "ignored?", "messages": msgs})
    got = await b.recv()
    assert got["messages"] == msgs
    assert got["prompt"] == "ignored?"
    assert b.last_raw.count('"messages"') == 1


async def test_llm_request_without_prompt_gets_no_messages(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", ["llm"])])
    await a.send({"type": "llm_request", "request_id": "r3", "model": "x"})
    got = await b.recv()
    assert got == {"type": "llm_request", "from": "a", "request_id": "r3", "model": "x"}


async def test_llm_request_numeric_request_id_round_trip(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", ["llm"])])
    await a.send({"type": "llm_request", "request_id": 42, "prompt": "n"})
    got = await b.recv()
    assert got["request_id"] == 42 and isinstance(got["request_id"], int)
    await b.send({"type": "llm_response", "target": "a", "request_id": 42, "response": "ok"})
    resp = await a.recv()
    assert resp == {"type": "llm_response", "from": "b", "request_id": 42, "response": "ok"}


async def test_chat_request_keeps_its_type(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", ["llm"])])
    await a.send({"type": "chat_request", "request_id": "c1", "prompt": "yo", "model": "m"})
    got = await b.recv()
    assert got == {"type": "chat_request", "from": "a", "request_id": "c1", "prompt": "yo", "model": "m",
                   "messages": [{"role": "user", "content": "yo"}]}
    await b.send({"type": "llm_response", "target": "a", "request_id": "c1", "response": "hey"})
    assert await a.recv() == {"type": "llm_response", "from": "b", "request_id": "c1", "response": "hey"}


async def test_no_llm_peer(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", ["embeddings", "chatty", "LlamaFarm"])])
    await a.send({"type": "llm_request", "request_id": "lonely", "prompt": "anyone?"})
    err = await a.recv()
    assert_error(err, "no_llm_peer", request_id="lonely")
    await marker_barrier(a, [b])


# The shipped macOS server (llama-farm/atmosphere, atmosphere/api/server.py) joins as a non-founder
# with its router's capability names or a LlamaFarm project's; only a founder adds "llm". The default
# LLM_CAPABILITIES (llm,chat,*llamafarm*) serves it, as the reference Python relay does.
@pytest.mark.parametrize("mac_capabilities", [["chat", "embeddings", "completions"],
                                              ["embeddings", "llamafarm-recipes"]])
async def test_the_shipped_macs_capability_names_serve_llm_requests(relay, mac_capabilities):
    phone, mac = await mesh_of(relay, unique_mesh(), [("android-1", []), ("mac-1", mac_capabilities)])
    await phone.send({"type": "llm_request", "request_id": "q1", "prompt": "hello", "model": "llama3.2"})
    got = await mac.recv()
    assert got["type"] == "llm_request" and got["from"] == "android-1" and got["request_id"] == "q1"
    await mac.send({"type": "llm_response", "target": "android-1", "request_id": "q1", "response": "hi"})
    assert await phone.recv() == {"type": "llm_response", "from": "mac-1", "request_id": "q1", "response": "hi"}


# The shipped Android app (llama-farm/atmosphere-android, MeshConnection.kt) sends `gossip` without a
# request_id and `intent` with one; shipped clients also send route_request and route_response. No relay
# routes them. The app shows every error as its last error, so those without a request_id get silence;
# one with a request_id gets unknown_type with it, so the callback waiting for it fails at once.
async def test_the_shipped_apps_unrouted_types_are_silent_unless_they_wait_for_an_answer(relay):
    phone, mac = await mesh_of(relay, unique_mesh(), [("android-1", []), ("mac-1", ["llm"])])
    await phone.send({"type": "gossip", "from": "android-1", "payload": {"peers": ["mac-1"], "ttl": 3}})
    await phone.send({"type": "route_response", "request_id": None, "route": []})
    await phone.send({"type": "intent", "request_id": "i-1", "intent": "summarize", "args": {}})
    err = await phone.recv()  # the first answer: nothing came for the gossip or the route_response
    assert_error(err, "unknown_type", request_id="i-1")
    assert "intent" in err["message"], err
    await phone.send({"type": "route_request", "request_id": 9})
    assert_error(await phone.recv(), "unknown_type", request_id=9)
    await marker_barrier(phone, [mac])  # none of them reached the other peer
    await phone.send({"type": "teleport"})  # other unknown types keep their error
    assert_error(await phone.recv(), "unknown_type")


async def test_capabilities_update_makes_a_peer_serve_llm_requests_by_its_names(relay):
    phone, mac = await mesh_of(relay, unique_mesh(), [("phone", []), ("mac", ["embeddings"])])
    await phone.send({"type": "llm_request", "request_id": "before", "prompt": "x"})
    assert_error(await phone.recv(), "no_llm_peer", request_id="before")
    await mac.send({"type": "capabilities_update", "capabilities": ["embeddings", "my-llamafarm-app"]})
    await phone.expect("peer_updated")
    await phone.send({"type": "llm_request", "request_id": "after", "prompt": "x"})
    assert (await mac.recv())["request_id"] == "after"


async def test_llm_capabilities_setting_decides_who_serves(relay_factory):
    relay = relay_factory(env={"LLM_CAPABILITIES": "gpu-*,inference"})
    phone, plain, gpu = await mesh_of(relay, unique_mesh(), [("phone", []), ("plain", ["llm", "chat"]),
                                                             ("gpu", ["gpu-a100"])])
    for i in range(3):
        await phone.send({"type": "llm_request", "request_id": i, "prompt": "x"})
        assert (await gpu.recv())["request_id"] == i
        await gpu.send({"type": "llm_response", "target": "phone", "request_id": i, "response": "ok"})
        assert (await phone.recv())["request_id"] == i
    await marker_barrier(phone, [plain])  # "llm" and "chat" serve nothing under this list
    await gpu.close()
    await phone.expect("peer_left")
    await phone.send({"type": "llm_request", "request_id": "none", "prompt": "x"})
    assert_error(await phone.recv(), "no_llm_peer", request_id="none")


async def test_no_llm_peer_numeric_request_id(relay):
    a = await connect_registered(relay, unique_mesh(), "a")
    await a.send({"type": "chat_request", "request_id": 7, "prompt": "x"})
    assert_error(await a.recv(), "no_llm_peer", request_id=7)


async def test_llm_request_never_routed_to_requester_itself(relay):
    a = await connect_registered(relay, unique_mesh(), "selfish", ["llm"])
    await a.send({"type": "llm_request", "request_id": "r", "prompt": "me?"})
    assert_error(await a.recv(), "no_llm_peer", request_id="r")


async def _collect_until_marker(client, sender_id, tag):
    got = []
    while True:
        msg = await client.recv()
        if msg.get("type") == "message" and msg.get("from") == sender_id and msg.get("payload") == {"marker": tag}:
            return got
        got.append(msg)


async def test_llm_fairness_two_each_fewest_outstanding_round_robin(relay):
    mesh = unique_mesh()
    a, p1, p2, p3 = await mesh_of(relay, mesh, [("asker", []), ("p1", ["llm"]), ("p2", ["llm"]),
                                                 ("p3", ["llm", "chat"])])
    for i in range(6):
        await a.send({"type": "llm_request", "request_id": "q%d" % i, "prompt": "p%d" % i})
    await a.send({"type": "broadcast", "payload": {"marker": "end"}})
    got = {}
    for p in (p1, p2, p3):
        msgs = await _collect_until_marker(p, "asker", "end")
        assert all(m["type"] == "llm_request" and m["from"] == "asker" for m in msgs), msgs
        got[p.node_id] = [m["request_id"] for m in msgs]
    assert sorted(len(v) for v in got.values()) == [2, 2, 2], got
    # fewest outstanding first: the first three requests go to three different peers,
    # the next three again to three different peers
    owner = {rid: node for node, rids in got.items() for rid in rids}
    assert len({owner["q0"], owner["q1"], owner["q2"]}) == 3, got
    assert len({owner["q3"], owner["q4"], owner["q5"]}) == 3, got
    # round robin in join order on ties
    assert [owner["q%d" % i] for i in range(6)] == ["p1", "p2", "p3", "p1", "p2", "p3"], got


async def test_llm_routing_prefers_fewest_outstanding(relay):
    mesh = unique_mesh()
    a, p1, p2, p3 = await mesh_of(relay, mesh, [("asker", []), ("p1", ["llm"]), ("p2", ["llm"]),
                                                 ("p3", ["llm"])])
    peers = {"p1": p1, "p2": p2, "p3": p3}
    owner = {}
    for i in range(3):
        await a.send({"type": "llm_request", "request_id": "r%d" % i, "prompt": "x"})
    for name, p in peers.items():
        m = await p.expect("llm_request")
        owner[m["request_id"]] = name
    assert len(set(owner.values())) == 3
    # the owner of r1 answers: it now has 0 outstanding, the two others 1 each
    answerer = peers[owner["r1"]]
    await answerer.send({"type": "llm_response", "target": "asker", "request_id": "r1", "response": "done"})
    assert (await a.expect("llm_response"))["request_id"] == "r1"
    await a.send({"type": "llm_request", "request_id": "r3", "prompt": "next"})
    m = await answerer.expect("llm_request")
    assert m["request_id"] == "r3"
    await marker_barrier(a, [p for p in peers.values() if p is not answerer])


async def test_llm_response_with_extra_fields_delivered(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("android-1", []), ("mac-1", ["llm"])])
    await a.send({"type": "llm_request", "request_id": "x1", "prompt": "Hi"})
    await b.expect("llm_request")
    raw = ('{"type":"llm_response","target":"android-1","request_id":"x1","response":"Hello!",'
           '"routing":{"backend":"ollama","latency_ms":12.5},"backend":"ollama","error":null,'
           '"usage":{"tokens":3},"from":"spoofer"}')
    await b.send_raw(raw)
    got = await a.recv()
    assert got == {"type": "llm_response", "from": "mac-1", "request_id": "x1", "response": "Hello!",
                   "routing": {"backend": "ollama", "latency_ms": 12.5}, "backend": "ollama", "error": None,
                   "usage": {"tokens": 3}}
    assert keys(got) == ["type", "from", "request_id", "response", "routing", "backend", "error", "usage"]
    assert "spoofer" not in a.last_raw and "target" not in a.last_raw
    await marker_barrier(b, [a])


async def test_llm_response_error_field_delivered(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", ["llm"])])
    await a.send({"type": "llm_request", "request_id": "e1", "prompt": "Hi"})
    await b.expect("llm_request")
    await b.send({"type": "llm_response", "target": "a", "request_id": "e1",
                  "error": "model not loaded"})
    got = await a.recv()
    assert got == {"type": "llm_response", "from": "b", "request_id": "e1", "error": "model not loaded"}


async def test_llm_response_unknown_target_has_request_id(relay):
    b = await connect_registered(relay, unique_mesh(), "b", ["llm"])
    await b.send({"type": "llm_response", "target": "gone", "request_id": "zz", "response": "late"})
    assert_error(await b.recv(), "unknown_target", request_id="zz")


async def test_llm_response_without_request_id_is_delivered(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", ["llm"])])
    await b.send({"type": "llm_response", "target": "a", "response": "unsolicited"})
    got = await a.recv()
    assert got["type"] == "llm_response" and got["from"] == "b" and got["response"] == "unsolicited"


async def test_llm_peer_left_for_each_held_request(relay):
    mesh = unique_mesh()
    a, c, b = await mesh_of(relay, mesh, [("a", []), ("c", []), ("worker", ["llm"])])
    await a.send({"type": "llm_request", "request_id": "a1", "prompt": "1"})
    await a.send({"type": "llm_request", "request_id": 2, "prompt": "2"})
    await c.send({"type": "chat_request", "request_id": "c1", "prompt": "3"})
    got = [await b.recv() for _ in range(3)]
    assert sorted(str(m["request_id"]) for m in got) == ["2", "a1", "c1"]
    await b.close()
    a_msgs = [await a.recv() for _ in range(3)]
    c_msgs = [await c.recv() for _ in range(2)]
    assert {"type": "peer_left", "node_id": "worker"} in a_msgs
    assert {"type": "peer_left", "node_id": "worker"} in c_msgs
    a_errs = [m for m in a_msgs if m["type"] == "error"]
    c_errs = [m for m in c_msgs if m["type"] == "error"]
    for e in a_errs + c_errs:
        assert_error(e, "llm_peer_left")
    assert sorted(str(e["request_id"]) for e in a_errs) == ["2", "a1"]
    assert [e["request_id"] for e in a_errs if not isinstance(e["request_id"], str)] == [2]
    assert [e["request_id"] for e in c_errs] == ["c1"]


async def test_llm_peer_left_only_for_unanswered_requests(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("worker", ["llm"])])
    await a.send({"type": "llm_request", "request_id": "done", "prompt": "1"})
    await a.send({"type": "llm_request", "request_id": "pending", "prompt": "2"})
    await b.expect("llm_request")
    await b.expect("llm_request")
    await b.send({"type": "llm_response", "target": "a", "request_id": "done", "response": "ok"})
    assert (await a.expect("llm_response"))["request_id"] == "done"
    await b.close()
    msgs = [await a.recv() for _ in range(2)]
    errs = [m for m in msgs if m["type"] == "error"]
    assert len(errs) == 1, msgs
    assert_error(errs[0], "llm_peer_left", request_id="pending")
    assert {"type": "peer_left", "node_id": "worker"} in msgs
    await a.ping_barrier()


async def test_too_many_requests_beyond_1024_outstanding(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("greedy", []), ("worker", ["llm"])])
    for i in range(1025):
        await a.send({"type": "llm_request", "request_id": "r%d" % i})
    assert_error(await a.recv(timeout=15), "too_many_requests", request_id="r1024")
    for i in range(1024):
        assert (await b.recv(timeout=15))["request_id"] == "r%d" % i
    # settle one: the next request is routed again
    await b.send({"type": "llm_response", "target": "greedy", "request_id": "r0", "response": "."})
    assert (await a.expect("llm_response"))["request_id"] == "r0"
    await a.send({"type": "llm_request", "request_id": "again"})
    assert (await b.expect("llm_request"))["request_id"] == "again"


# ---------------------------------------------------------------------------
# ping, capabilities_update, from, payload fidelity
# ---------------------------------------------------------------------------

async def test_ping_pong_timestamp(relay):
    a = await connect_registered(relay, unique_mesh(), "a")
    await a.send({"type": "ping"})
    pong = await a.recv()
    now = time.time()
    assert pong["type"] == "pong"
    assert isinstance(pong["timestamp"], float), a.last_raw
    assert abs(pong["timestamp"] - now) < 5


async def test_capabilities_update_announced_and_used_for_routing(relay):
    mesh = unique_mesh()
    a, b, c = await mesh_of(relay, mesh, [("a", []), ("b", []), ("c", [])])
    await b.send({"type": "capabilities_update", "capabilities": ["llm", "vision"]})
    expected = {"type": "peer_updated", "node_id": "b", "capabilities": ["llm", "vision"]}
    assert await a.recv() == expected
    assert await c.recv() == expected
    await b.ping_barrier()  # not sent back to b
    await a.send({"type": "llm_request", "request_id": "u1", "prompt": "now?"})
    assert (await b.expect("llm_request"))["request_id"] == "u1"
    # and removing it stops routing
    await b.send({"type": "capabilities_update", "capabilities": []})
    assert await a.recv() == {"type": "peer_updated", "node_id": "b", "capabilities": []}
    await a.send({"type": "llm_request", "request_id": "u2", "prompt": "still?"})
    assert_error(await a.recv(), "no_llm_peer", request_id="u2")


async def test_capabilities_update_used_by_very_next_routing_decision(relay):
    """b updates then immediately (same connection order) a third party's request must see it."""
    mesh = unique_mesh()
    b, a = await mesh_of(relay, mesh, [("b", []), ("a", [])])
    await b.send({"type": "capabilities_update", "capabilities": ["llm"]})
    await a.expect("peer_updated")
    await a.send({"type": "chat_request", "request_id": 1, "prompt": "x"})
    assert (await b.expect("chat_request"))["from"] == "a"


async def test_capabilities_update_visible_to_newcomers(relay):
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "a", ["old"])
    await a.send({"type": "capabilities_update", "capabilities": ["new"]})
    await a.ping_barrier()
    b = await Client.connect(relay, mesh)
    _, peers = await b.register("b")
    assert peers["peers"][0]["capabilities"] == ["new"]


async def test_spoofed_from_is_overwritten(relay):
    mesh = unique_mesh()
    a, b = await mesh_of(relay, mesh, [("honest", []), ("b", ["llm"])])
    await a.send({"type": "broadcast", "from": "evil", "payload": 1})
    assert await b.recv() == {"type": "message", "from": "honest", "payload": 1}
    assert "evil" not in b.last_raw
    await a.send({"type": "direct", "target": "b", "from": "evil", "payload": 2})
    assert await b.recv() == {"type": "message", "from": "honest", "payload": 2}
    assert "evil" not in b.last_raw
    await a.send({"from": "evil", "type": "llm_request", "request_id": "s", "prompt": "p"})
    got = await b.recv()
    assert got["from"] == "honest" and "evil" not in b.last_raw
    assert b.last_raw.count('"from"') == 1
    await b.send({"type": "llm_response", "from": "evil", "target": "honest", "request_id": "s",
                  "response": "r"})
    got = await a.recv()
    assert got["from"] == "b" and "evil" not in a.last_raw and a.last_raw.count('"from"') == 1


PAYLOAD_TEXTS = [
    '{"ü":"日本語 \\u00e9 😀","big":12345678901234567890,"huge":1.0e400,"neg":-0.0,"exp":1E-7}',
    '{ "spaced" : [ 1 , 2 ,\n\t3 ] , "nested" : { "a" : { "b" : null } } }',
    '"\\ud83d\\ude00 escaped surrogate pair and \\"quotes\\" \\/ \\\\"',
    '12345678901234567890123456789012345678901234567890',
    '[true,false,null,0,-1,3.14159265358979323846264338327950288]',
    # Not '{"dup":1,"dup":2}': duplicate names are refused as bad_json (test_bad_input.py).
    '{"same":1,"names":{"same":2}}',
]


@pytest.mark.parametrize("payload_text", PAYLOAD_TEXTS, ids=range(len(PAYLOAD_TEXTS)))
async def test_payload_byte_for_byte_and_unknown_fields_ignored(relay, payload_text):
    mesh = unique_mesh()
    a, b = await mesh_of(relay, mesh, [("a", []), ("b", [])])
    raw = ('{"type":"broadcast","x_unknown":{"deep":[1,2,3]},"payload":' + payload_text +
           ',"another_unknown":"zzz"}')
    await a.send_raw(raw)
    got_raw = await b.recv_raw()
    assert isinstance(got_raw, str)
    assert payload_text in got_raw, "payload not byte-identical:\nsent %r\ngot  %r" % (payload_text, got_raw)
    assert "x_unknown" not in got_raw and "another_unknown" not in got_raw
    msg = json.loads(got_raw)
    assert msg["type"] == "message" and msg["from"] == "a"
    # direct as well
    await a.send_raw('{"payload":' + payload_text + ',"target":"b","type":"direct","extra":1}')
    got_raw = await b.recv_raw()
    assert payload_text in got_raw
    assert '"extra"' not in got_raw


async def test_llm_request_fields_byte_for_byte(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", ["llm"])])
    fields = '"prompt":"caf\\u00e9 ☕","n":1.0e400,"big":98765432109876543210,"opts":{ "k" : [ ] }'
    await a.send_raw('{"type":"llm_request","request_id":"bb",' + fields + '}')
    await b.recv()
    assert fields in b.last_raw, b.last_raw
    assert json.loads(b.last_raw)["messages"] == [{"role": "user", "content": "café ☕"}]


async def test_unknown_fields_ignored_on_register_and_ping(relay):
    mesh = unique_mesh()
    a = await Client.connect(relay, mesh)
    await a.send({"type": "register", "node_id": "a", "capabilities": [], "version": "2.0", "platform": {"os": 1}})
    await a.expect("joined")
    await a.expect("peers")
    await a.send({"type": "ping", "seq": 5, "anything": [1]})
    await a.expect("pong")


# ---------------------------------------------------------------------------
# registration rules
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("msg", [
    {"type": "broadcast", "payload": 1},
    {"type": "direct", "target": "a", "payload": 1},
    {"type": "llm_request", "request_id": "nr", "prompt": "x"},
    {"type": "chat_request", "request_id": "nr", "prompt": "x"},
    {"type": "llm_response", "target": "a", "request_id": "nr", "response": "x"},
    {"type": "ping"},
    {"type": "capabilities_update", "capabilities": ["llm"]},
], ids=lambda m: m["type"])
async def test_not_registered_before_register(relay, msg):
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "a", ["llm"])
    u = await Client.connect(relay, mesh)
    await u.send(msg)
    err = await u.recv()
    assert_error(err, "not_registered")
    if "request_id" in msg and "request_id" in err:
        assert err["request_id"] == "nr"
    # nothing relayed: a's next message is u's peer_joined once u registers
    await u.register("u")
    assert (await a.recv())["type"] == "peer_joined"


async def test_already_registered(relay):
    mesh = unique_mesh()
    a, b = await mesh_of(relay, mesh, [("a", []), ("b", [])])
    await b.send({"type": "register", "node_id": "b2", "capabilities": []})
    await b.expect_error("already_registered")
    await b.send({"type": "join", "node_id": "b", "capabilities": []})
    await b.expect_error("already_registered")
    # still registered as b, nothing announced
    await marker_barrier(b, [a])
    await a.send({"type": "direct", "target": "b2", "payload": 0})
    await a.expect_error("unknown_target")


async def test_takeover_same_token(relay):
    mesh = unique_mesh()
    old = await connect_registered(relay, mesh, "laptop", ["llm"], token="secret")
    # The first token binds the mesh: every member presents it.
    other = await connect_registered(relay, mesh, "other", token="secret")
    assert (await old.expect("peer_joined"))["node_id"] == "other"
    new = await Client.connect(relay, mesh)
    joined, peers = await new.register("laptop", ["llm", "chat"], name="Laptop2", token="secret")
    assert joined == {"type": "joined", "mesh_id": mesh, "node_count": 2}
    assert [p["node_id"] for p in peers["peers"]] == ["other"]
    code, reason = await old.expect_closed()
    assert code == 1000 and reason == "replaced"
    assert await other.recv() == {"type": "peer_joined", "node_id": "laptop", "name": "Laptop2",
                                  "capabilities": ["llm", "chat"]}
    await marker_barrier(new, [other])  # no peer_left in between
    await other.send({"type": "direct", "target": "laptop", "payload": "to the new one"})
    assert (await new.recv())["payload"] == "to the new one"
    await other.ping_barrier()  # and still no late peer_left
    # The old connection is gone: two open, on whichever instances they are.
    instances = getattr(relay, "instances", [relay])
    assert sum(r.get_json("/health")["connections"] for r in instances) == 2


async def test_takeover_without_tokens(relay):
    # In an open mesh the id moves only once its holder is gone: here the old socket stopped
    # reading (a phone that left Wi-Fi) and never answers the relay's probe.
    mesh = unique_mesh()
    other = await connect_registered(relay, mesh, "o")
    old = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh, auto_pong=False)
    old.register("n")
    assert (await other.recv())["node_id"] == "n"
    new = await Client.connect(relay, mesh)
    await new.send({"type": "register", "node_id": "n", "capabilities": []})
    await new.expect("joined", timeout=10)
    await new.expect("peers")
    new.node_id = "n"
    closed = old.wait_closed()
    assert (closed.code, closed.reason) == (1000, "replaced"), closed
    assert (await other.recv())["type"] == "peer_joined"
    await marker_barrier(new, [other])


async def test_takeover_of_a_live_holder_without_tokens_is_node_id_in_use(relay):
    mesh = unique_mesh()
    old, other = await mesh_of(relay, mesh, [("n", []), ("o", [])])
    new = await Client.connect(relay, mesh)
    await new.send({"type": "register", "node_id": "n", "capabilities": []})
    await new.expect_error("node_id_in_use", timeout=10)
    await old.ping_barrier()
    await other.ping_barrier()


async def test_takeover_fails_held_requests_with_llm_peer_left(relay):
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "asker", token="secret")
    old = await connect_registered(relay, mesh, "gpu", ["llm"], token="secret")
    await a.expect("peer_joined")
    await a.send({"type": "llm_request", "request_id": "held", "prompt": "x"})
    await old.expect("llm_request")
    new = await Client.connect(relay, mesh)
    await new.register("gpu", ["llm"], token="secret")
    msgs = [await a.recv(), await a.recv()]
    errs = [m for m in msgs if m["type"] == "error"]
    assert len(errs) == 1, msgs
    assert_error(errs[0], "llm_peer_left", request_id="held")
    assert any(m["type"] == "peer_joined" and m["node_id"] == "gpu" for m in msgs), msgs
    assert not any(m["type"] == "peer_left" for m in msgs), msgs


@pytest.mark.parametrize("old_token,new_token", [("t1", "t2"), ("t1", None), (None, "t2")])
async def test_node_id_in_use_with_different_token(relay, old_token, new_token):
    # An open mesh (its first registrant sent no token), where tokens only
    # tell connections apart on takeover; token-bound meshes: test_auth.py.
    mesh = unique_mesh()
    opener = await connect_registered(relay, mesh, "opener")
    holder = await connect_registered(relay, mesh, "n", token=old_token)
    await opener.expect("peer_joined")
    intruder = await Client.connect(relay, mesh)
    msg = {"type": "register", "node_id": "n", "capabilities": []}
    if new_token is not None:
        msg["token"] = new_token
    await intruder.send(msg)
    await intruder.expect_error("node_id_in_use")
    # the intruder stays unregistered
    await intruder.send({"type": "broadcast", "payload": 1})
    await intruder.expect_error("not_registered")
    # the holder is untouched and heard nothing
    await holder.ping_barrier()
    # the intruder may register with another node_id
    joined, peers = await intruder.register("n-2")
    assert joined["node_count"] == 3
    assert [p["node_id"] for p in peers["peers"]] == ["opener", "n"]
    assert (await holder.recv())["node_id"] == "n-2"


async def test_node_id_reusable_after_leave(relay):
    mesh = unique_mesh()
    a, b = await mesh_of(relay, mesh, [("a", []), ("b", [])])
    await b.close()
    await a.expect("peer_left")
    c = await Client.connect(relay, mesh)
    joined, _ = await c.register("b", token="whatever")
    assert joined["node_count"] == 2


async def test_registration_timeout_closes_1008(relay_factory):
    relay = relay_factory("--registration-timeout-seconds", "1")
    mesh = unique_mesh()
    member = await connect_registered(relay, mesh, "member")
    t0 = time.monotonic()
    idle = await Client.connect(relay, mesh)
    code, reason = await idle.expect_closed(timeout=6)
    elapsed = time.monotonic() - t0
    assert code == 1008 and reason == "registration timeout"
    assert elapsed >= 0.5, "closed after %.2f s, before the 1 s timeout" % elapsed
    # registered peers are not affected (member has been connected longer than the timeout)
    await member.ping_barrier()


async def test_registration_timeout_from_env(relay_factory):
    relay = relay_factory(env={"REGISTRATION_TIMEOUT_SECONDS": "1"})
    idle = await Client.connect(relay, unique_mesh())
    code, reason = await idle.expect_closed(timeout=6)
    assert code == 1008


async def test_registration_timeout_default_not_short(relay):
    """Default is 30 s: an idle socket is still open after 2 s and can register."""
    mesh = unique_mesh()
    idle = await Client.connect(relay, mesh)
    done, _ = await asyncio.wait([asyncio.ensure_future(idle.ws.wait_closed())], timeout=2)
    assert not done, "closed early: %r" % ((idle.ws.close_code, idle.ws.close_reason),)
    await idle.register("late")


async def test_keepalive_drops_peer_that_stops_answering_pings(relay_factory):
    relay = relay_factory("--keepalive-seconds", "1")
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "alive")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh, auto_pong=False)
    try:
        r.register("silent")
        await a.expect("peer_joined")
        t0 = time.monotonic()
        # r never reads again: the server's pings go unanswered
        msg = await a.recv(timeout=6)
        elapsed = time.monotonic() - t0
        assert msg == {"type": "peer_left", "node_id": "silent"}
        assert elapsed >= 1.0, "dropped after %.2f s, before 2 missed pings" % elapsed
        # the websockets client answers pings: still served
        await a.ping_barrier()
        assert relay.get_json("/health")["connections"] == 1
    finally:
        r.close()


async def test_keepalive_pings_are_sent_and_answering_keeps_connection(relay_factory):
    relay = relay_factory("--keepalive-seconds", "1")
    mesh = unique_mesh()
    watcher = await connect_registered(relay, mesh, "watcher")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh, auto_pong=True)
    try:
        r.register("raw")
        await watcher.expect("peer_joined")

        def read_for(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    r.recv_message(timeout=max(0.05, end - time.monotonic()))
                except OSError:  # socket.timeout
                    pass
        await asyncio.to_thread(read_for, 3.5)
        assert r.pings_received >= 2, "server sent %d pings in 3.5 s" % r.pings_received
        await watcher.ping_barrier()  # no peer_left for the answering raw client
        r.send_json({"type": "direct", "target": "watcher", "payload": "still here"})
        assert (await watcher.recv())["payload"] == "still here"
    finally:
        r.close()


# ---------------------------------------------------------------------------
# meshes, mesh ids
# ---------------------------------------------------------------------------

async def test_meshes_are_isolated(relay):
    m1, m2 = unique_mesh("iso1"), unique_mesh("iso2")
    a1, b1 = await mesh_of(relay, m1, [("a", []), ("b", ["llm"])])
    a2 = await Client.connect(relay, m2)
    joined, peers = await a2.register("a")  # same node_id, other mesh: no conflict
    assert joined == {"type": "joined", "mesh_id": m2, "node_count": 1}
    assert peers["peers"] == []
    await a2.send({"type": "broadcast", "payload": "m2 only"})
    await a2.send({"type": "direct", "target": "b", "payload": 1})
    await a2.expect_error("unknown_target")
    await a2.send({"type": "llm_request", "request_id": "i", "prompt": "x"})
    assert_error(await a2.recv(), "no_llm_peer", request_id="i")
    await marker_barrier(a1, [b1])  # nothing from m2 reached m1
    await a2.close()
    await marker_barrier(a1, [b1])  # and no peer_left crossed over


@pytest.mark.one_instance("counts one process's meshes on /health")
async def test_empty_mesh_is_removed(relay):
    mesh = unique_mesh()
    assert relay.get_json("/health") == {"status": "ok", "meshes": 0, "connections": 0}
    a, b = await mesh_of(relay, mesh, [("a", []), ("b", [])])
    assert relay.get_json("/health") == {"status": "ok", "meshes": 1, "connections": 2}
    assert grpcpeer.admin_meshes(relay) == [(mesh, 2)]
    assert "meshes" not in relay.get_json("/stats")
    await a.close()
    await b.expect("peer_left")
    assert relay.get_json("/health") == {"status": "ok", "meshes": 1, "connections": 1}
    await b.close()

    def health_empty():
        h = relay.get_json("/health")
        return h if h["meshes"] == 0 else None
    h = await poll(health_empty, what="mesh removed from /health")
    assert h == {"status": "ok", "meshes": 0, "connections": 0}
    st = relay.get_json("/stats")
    assert st["active_meshes"] == 0 and grpcpeer.admin_meshes(relay) == []


@pytest.mark.one_instance("counts one process's connections on /health")
async def test_health_counts_registered_peers_only(relay):
    mesh = unique_mesh()
    await Client.connect(relay, mesh)  # unregistered
    await Client.connect(relay, unique_mesh())  # unregistered, other mesh
    await connect_registered(relay, mesh, "reg")
    assert relay.get_json("/health") == {"status": "ok", "meshes": 1, "connections": 1}
    st = relay.get_json("/stats")
    assert st["active_connections"] == 1
    assert st["open_sockets"] == 3


@pytest.mark.parametrize("path_segment,mesh_id", [
    ("my%20mesh", "my mesh"),
    ("%C3%A9t%C3%A9", "été"),
    ("a%2Fb", "a/b"),
    ("plain-mesh_1.2~x", "plain-mesh_1.2~x"),
    ("with%3Fquery%23hash", "with?query#hash"),
])
async def test_mesh_id_percent_decoded(relay, path_segment, mesh_id):
    c = await Client.connect(relay, path_segment, quote=False)
    joined, _ = await c.register("n")
    assert joined["mesh_id"] == mesh_id


async def test_percent_encoded_and_plain_mesh_are_the_same_mesh(relay):
    a = await Client.connect(relay, "shared%20room", quote=False)
    await a.register("a")
    b = await Client.connect(relay, "shared room")  # the library encodes the space itself
    joined, peers = await b.register("b")
    assert joined == {"type": "joined", "mesh_id": "shared room", "node_count": 2}


async def test_query_string_ignored(relay):
    a = await Client.connect(relay, "qmesh?token=abc&x=1", quote=False)
    joined, _ = await a.register("a")
    assert joined["mesh_id"] == "qmesh"
    b = await Client.connect(relay, "qmesh", quote=False)
    joined, _ = await b.register("b")
    assert joined["node_count"] == 2


async def test_mesh_id_of_256_bytes_accepted(relay):
    mesh = "é" * 128  # 256 bytes of UTF-8
    c = await Client.connect(relay, mesh)
    joined, _ = await c.register("n")
    assert joined["mesh_id"] == mesh


@pytest.mark.parametrize("path", [
    "/relay/",
    "/relay/" + "m" * 300,
    "/relay/" + "m" * 257,
    "/relay/" + "%C3%A9" * 128 + "x",
    "/relay/bad%FFutf8",
    "/relay/%C3",
    "/relay/ctl%01char",
    "/relay/tab%09",
    "/relay/nl%0A",
], ids=["empty", "300-bytes", "257-bytes", "257-bytes-utf8", "invalid-utf8", "truncated-utf8", "ctl-01",
        "tab", "newline"])
def test_bad_mesh_id_is_http_400_before_upgrade(relay, path):
    resp = rawws.try_upgrade(relay.host, relay.port, path)
    assert resp.status == 400, resp
    assert resp.headers.get("content-type", "").startswith("application/json"), resp
    body = resp.json()
    assert body["error"] == "bad_mesh_id"
    assert isinstance(body["message"], str) and body["message"]


def test_upgrade_on_other_path_is_404(relay):
    for path in ("/nope", "/relay", "/relay/a/b", "/health/x"):
        resp = rawws.try_upgrade(relay.host, relay.port, path)
        assert resp.status == 404, (path, resp)


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

def test_http_root(relay):
    body = relay.get_json("/")
    assert body == {"service": "atmosphere-relay", "version": body["version"], "status": "running",
                    "endpoints": {"health": "/health", "ready": "/ready", "stats": "/stats",
                                  "metrics": "/metrics", "relay": "/relay/{mesh_id}"}}
    assert isinstance(body["version"], str) and body["version"]


def test_http_health(relay):
    status, headers, data = relay.http("GET", "/health")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert json.loads(data) == {"status": "ok", "meshes": 0, "connections": 0}
    assert list(json.loads(data).keys()) == ["status", "meshes", "connections"]


def test_http_query_string_ignored(relay):
    assert relay.get_json("/health?verbose=1")["status"] == "ok"


@pytest.mark.one_instance("reads one process's /stats counters")
async def test_http_stats_fields(relay):
    mesh = unique_mesh()
    st0 = relay.get_json("/stats")
    for k in ("uptime_seconds", "version", "active_meshes", "active_connections", "open_sockets",
              "total_connections", "total_messages_received", "total_messages_relayed", "total_llm_requests",
              "errors", "closes", "refused"):
        assert k in st0, k
    assert "meshes" not in st0  # public: no mesh ids (the Admin API lists them)
    assert isinstance(st0["uptime_seconds"], (int, float)) and st0["uptime_seconds"] >= 0
    assert st0["version"] == relay.get_json("/")["version"]
    assert sorted(st0["errors"].keys()) == sorted(ERROR_CODES)
    assert all(v == 0 for v in st0["errors"].values())
    assert st0["active_meshes"] == 0 and st0["total_connections"] == 0

    a, b, c = await mesh_of(relay, mesh, [("a", []), ("b", ["llm"]), ("c", [])])
    st1 = relay.get_json("/stats")
    await a.send({"type": "broadcast", "payload": 1})
    await b.recv()
    await c.recv()
    await a.send({"type": "llm_request", "request_id": "s", "prompt": "x"})
    await b.expect("llm_request")
    await a.send_raw("{not json")
    await a.expect_error("bad_json")
    st = relay.get_json("/stats")
    assert st["active_meshes"] == 1 and st["active_connections"] == 3 and st["open_sockets"] == 3
    assert st["total_connections"] == 3
    assert st["total_messages_received"] - st1["total_messages_received"] >= 2
    assert st["total_messages_relayed"] - st1["total_messages_relayed"] == 3  # 2 broadcast + 1 llm_request
    assert st["total_llm_requests"] == 1
    assert st["errors"]["bad_json"] == 1
    assert sum(st["errors"].values()) == 1
    assert mesh not in json.dumps(st)
    assert grpcpeer.admin_meshes(relay) == [(mesh, 3)]


@pytest.mark.parametrize("path", ["/nope", "/healthz", "/relay", "/stats/x"])
def test_http_404(relay, path):
    status, headers, data = relay.http("GET", path)
    assert status == 404
    assert headers.get("content-type", "").startswith("application/json")
    assert json.loads(data)["error"] == "not_found"


@pytest.mark.parametrize("method,path", [("POST", "/health"), ("PUT", "/stats"), ("DELETE", "/")])
def test_http_non_get_is_405(relay, method, path):
    status, headers, data = relay.http(method, path, body=b"{}")
    assert status == 405, (status, data)


def test_http_get_relay_without_upgrade_is_not_200(relay):
    status, _, _ = relay.http("GET", "/relay/some-mesh")
    assert 400 <= status < 500


# ---------------------------------------------------------------------------
# frames, volume, shutdown
# ---------------------------------------------------------------------------

async def test_binary_frames_accepted_as_json(relay):
    mesh = unique_mesh()
    b = await connect_registered(relay, mesh, "b")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh)
    try:
        r.send_binary(json.dumps({"type": "register", "node_id": "bin", "capabilities": []}).encode())
        assert r.recv_json() == {"type": "joined", "mesh_id": mesh, "node_count": 2}
        assert r.recv_json()["type"] == "peers"
        assert (await b.recv())["node_id"] == "bin"
        r.send_binary(b'{"type":"broadcast","payload":{"bin":"\xc3\xa9"}}')
        assert await b.recv() == {"type": "message", "from": "bin", "payload": {"bin": "é"}}
        r.send_binary(b'{"type":"ping"}')
        assert r.recv_json()["type"] == "pong"
    finally:
        r.close()


async def test_websockets_library_binary_message(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", [])])
    await a.send_raw(b'{"type":"direct","target":"b","payload":"bytes"}')
    assert await b.recv() == {"type": "message", "from": "a", "payload": "bytes"}


async def test_fragmented_message_reassembled(relay):
    mesh = unique_mesh()
    b = await connect_registered(relay, mesh, "b")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh)
    try:
        r.register("frag")
        await b.expect("peer_joined")
        text = '{"type":"direct","target":"b","payload":"h\xe9llo w\xf6rld"}'.encode("utf-8")
        # split inside a multi-byte character on purpose
        cut = text.index(b"\xc3") + 1
        r.send_frame(rawws.OP_TEXT, text[:10], fin=False)
        r.send_frame(rawws.OP_PING, b"interleaved control frame")
        r.send_frame(rawws.OP_CONT, text[10:cut], fin=False)
        r.send_frame(rawws.OP_CONT, text[cut:], fin=True)
        assert await b.recv() == {"type": "message", "from": "frag", "payload": "h\xe9llo w\xf6rld"}
    finally:
        r.close()


async def test_ten_thousand_messages_in_order(relay):
    mesh = unique_mesh()
    a, b, c = await mesh_of(relay, mesh, [("a", []), ("b", []), ("c", [])])
    n = 10000

    async def receive(client, count):
        out = []
        for _ in range(count):
            out.append(await client.recv(timeout=20))
        return out

    rb = asyncio.ensure_future(receive(b, n + 1))
    rc = asyncio.ensure_future(receive(c, 1))
    for i in range(n):
        await a.send_raw('{"type":"direct","target":"b","payload":%d}' % i)
    await a.send({"type": "broadcast", "payload": "done"})
    got_b = await rb
    got_c = await rc
    assert [m["payload"] for m in got_b[:n]] == list(range(n))
    assert all(m["type"] == "message" and m["from"] == "a" for m in got_b)
    assert got_b[n]["payload"] == "done"
    assert got_c == [{"type": "message", "from": "a", "payload": "done"}]


async def test_large_message_under_limit_relayed(relay):
    a, b = await mesh_of(relay, unique_mesh(), [("a", []), ("b", [])])
    head = '{"type":"broadcast","payload":"'
    tail = '"}'
    body = "x" * (1048576 - len(head) - len(tail))
    raw = head + body + tail
    assert len(raw.encode()) == 1048576
    await a.send_raw(raw)
    got = await b.recv(timeout=10)
    assert got["payload"] == body
    await a.ping_barrier()


async def test_max_message_bytes_flag(relay_factory):
    relay = relay_factory("--max-message-bytes", "2000")
    mesh = unique_mesh()
    a, b = await mesh_of(relay, mesh, [("a", []), ("b", [])])
    ok = '{"type":"broadcast","payload":"%s"}' % ("y" * (2000 - 33))
    assert len(ok) == 2000
    await a.send_raw(ok)
    assert len((await b.recv())["payload"]) == 2000 - 33
    big = '{"type":"broadcast","payload":"%s"}' % ("y" * (2001 - 33))
    await a.send_raw(big)
    msgs, code, _ = await a.recv_until_closed()
    assert code == 1009 and msgs == []
    assert await b.recv() == {"type": "peer_left", "node_id": "a"}


async def test_flag_wins_over_env(relay_factory):
    relay = relay_factory("--max-message-bytes", "2000", env={"MAX_MESSAGE_BYTES": "100000"})
    a = await connect_registered(relay, unique_mesh(), "a")
    await a.send_raw('{"type":"broadcast","payload":"%s"}' % ("z" * 3000))
    _, code, _ = await a.recv_until_closed()
    assert code == 1009


@pytest.mark.one_instance("signals one process")
async def test_sigterm_closes_clients_1001_and_exits_0(relay):
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "a")
    u = await Client.connect(relay, mesh)  # unregistered
    relay.proc.send_signal(signal.SIGTERM)
    # A relay alone goes away (1001); an instance of a cluster tells its clients the service
    # restarts (1012): reconnect now, another instance takes them.
    expected = (1012, "service restart") if hasattr(relay, "instances") else (1001, "server shutting down")
    code, reason = await a.expect_closed(timeout=10)
    assert (code, reason) == expected
    code, reason = await u.expect_closed(timeout=10)
    assert (code, reason) == expected
    rc = await asyncio.to_thread(relay.proc.wait, 10)
    relay.returncode = rc
    assert rc == 0


def test_sigterm_right_after_listening_exits_0(relay_bin):
    """A supervisor may stop the relay as soon as it reports listening: SIGTERM must never
    find the default action (killed by signal) once the listening lines are out."""
    from relayclient import RelayProcess
    results = []
    for _ in range(20):
        r = RelayProcess(relay_bin)
        results.append(r.stop(timeout=10))
    assert results == [0] * 20, "exit codes after an immediate SIGTERM: %r" % results


def test_sigint_exits_0(relay):
    relay.proc.send_signal(signal.SIGINT)
    rc = relay.proc.wait(10)
    relay.returncode = rc
    assert rc == 0


def test_help_lists_flags(relay_bin):
    out = subprocess.run([relay_bin, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    text = out.stdout + out.stderr
    for flag in ("--port", "--host", "--grpc-port", "--grpc-host", "--log-level", "--registration-timeout-seconds",
                 "--max-message-bytes", "--keepalive-seconds"):
        assert flag in text, flag


def test_port_from_env_is_overridden_by_flag(relay_factory):
    # PORT env would ask for a fixed port; the fixture's --port 0 must win.
    relay = relay_factory(env={"PORT": "1", "GRPC_PORT": "1"})
    assert relay.port != 1 and relay.grpc_port != 1
    assert relay.get_json("/health")["status"] == "ok"
