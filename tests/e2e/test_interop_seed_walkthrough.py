"""The seed README, followed literally: its "Manual Test with wscat" walkthrough and its
JavaScript protocol samples, sent as the exact JSON text a shipped client sends.

Driven by the `websockets` asyncio client (v10.4 has no sync client), and once more by a
plain blocking RFC 6455 client (rawws), as wscat would.
"""

import json
import time

import pytest

import grpcpeer
import rawws
from relayclient import Client

SPREAD_OVER_CLUSTER = True


@pytest.mark.one_instance("ends on one process's /stats totals (llm requests, meshes, connections)")
async def test_wscat_walkthrough_asyncio_client(relay):
    # Terminal 2: first client (Mac)
    mac = await Client.connect(relay, "test-mesh")
    await mac.send_raw('{"type":"register","node_id":"mac-1","capabilities":["llm"]}')
    assert await mac.recv() == {"type": "joined", "mesh_id": "test-mesh", "node_count": 1}
    assert await mac.recv() == {"type": "peers", "peers": []}

    # Terminal 3: second client (Android)
    android = await Client.connect(relay, "test-mesh")
    await android.send_raw('{"type":"register","node_id":"android-1","capabilities":[]}')
    assert await android.recv() == {"type": "joined", "mesh_id": "test-mesh", "node_count": 2}
    peers = await android.recv()
    assert peers["type"] == "peers"
    assert [(p["node_id"], p["capabilities"]) for p in peers["peers"]] == [("mac-1", ["llm"])]
    assert await mac.recv() == {"type": "peer_joined", "node_id": "android-1", "name": "android-",
                                "capabilities": []}

    await android.send_raw('{"type":"llm_request","request_id":"1","prompt":"Hello!"}')

    # Back to Terminal 2 - you should see the llm_request
    req = await mac.recv()
    assert req == {"type": "llm_request", "from": "android-1", "request_id": "1", "prompt": "Hello!",
                   "messages": [{"role": "user", "content": "Hello!"}]}
    await mac.send_raw('{"type":"llm_response","target":"android-1","request_id":"1","response":"Hi there!"}')

    # Terminal 3 should receive the response
    resp = await android.recv()
    assert resp == {"type": "llm_response", "from": "mac-1", "request_id": "1", "response": "Hi there!"}

    # Check Stats
    stats = relay.get_json("/stats")
    assert stats["total_llm_requests"] == 1
    assert stats["active_meshes"] == 1 and stats["active_connections"] == 2
    # The per-mesh list is the operator's (Admin API), not the public's.
    assert "meshes" not in stats
    assert grpcpeer.admin_meshes(relay) == [("test-mesh", 2)]


def test_wscat_walkthrough_blocking_client(relay):
    path = "/relay/test-mesh"
    mac = rawws.RawWS(relay.host, relay.port, path)
    android = rawws.RawWS(relay.host, relay.port, path)
    try:
        mac.send_text('{"type":"register","node_id":"mac-1","capabilities":["llm"]}')
        assert mac.recv_json() == {"type": "joined", "mesh_id": "test-mesh", "node_count": 1}
        assert mac.recv_json() == {"type": "peers", "peers": []}
        android.send_text('{"type":"register","node_id":"android-1","capabilities":[]}')
        assert android.recv_json()["type"] == "joined"
        assert android.recv_json()["type"] == "peers"
        assert mac.recv_json()["type"] == "peer_joined"
        android.send_text('{"type":"llm_request","request_id":"1","prompt":"Hello!"}')
        req = mac.recv_json()
        assert (req["type"], req["from"], req["request_id"], req["prompt"]) == \
            ("llm_request", "android-1", "1", "Hello!")
        mac.send_text('{"type":"llm_response","target":"android-1","request_id":"1","response":"Hi there!"}')
        assert android.recv_json() == {"type": "llm_response", "from": "mac-1", "request_id": "1",
                                       "response": "Hi there!"}
        # a clean close announces peer_left
        android.send_close(1000)
        assert android.wait_closed().code == 1000
        assert mac.recv_json() == {"type": "peer_left", "node_id": "android-1"}
    finally:
        mac.close()
        android.close()


async def test_readme_javascript_samples(relay):
    """Sections 1-4 of the README's Protocol chapter, with its exact messages."""
    # 1. Connect & Register (a node with ["llm","chat"]) and a second device
    device = await Client.connect(relay, "my-mesh-id")
    await device.send_raw(json.dumps({
        "type": "register", "node_id": "my-unique-node-id", "token": "mesh-auth-token",
        "capabilities": ["llm", "chat"], "name": "My Device"}))
    assert (await device.recv())["type"] == "joined"
    # 2. Receive Peer List
    assert await device.recv() == {"type": "peers", "peers": []}

    other = await Client.connect(relay, "my-mesh-id")
    await other.send_raw(json.dumps({"type": "register", "node_id": "other-node-id", "token": "mesh-auth-token",
                                     "capabilities": [], "name": "Other"}))
    await other.expect("joined")
    peers = await other.expect("peers")
    (p,) = peers["peers"]
    assert (p["node_id"], p["name"], p["capabilities"]) == ("my-unique-node-id", "My Device", ["llm", "chat"])
    assert await device.recv() == {"type": "peer_joined", "node_id": "other-node-id", "name": "Other",
                                   "capabilities": []}

    # 3. Send Messages
    await device.send_raw(json.dumps({"type": "broadcast", "payload": {"message": "Hello everyone!"}}))
    assert await other.recv() == {"type": "message", "from": "my-unique-node-id",
                                  "payload": {"message": "Hello everyone!"}}
    await device.send_raw(json.dumps({"type": "direct", "target": "other-node-id",
                                      "payload": {"message": "Hello specific peer!"}}))
    assert await other.recv() == {"type": "message", "from": "my-unique-node-id",
                                  "payload": {"message": "Hello specific peer!"}}
    await other.send_raw(json.dumps({"type": "llm_request", "request_id": "req-123",
                                     "prompt": "What is the meaning of life?", "model": "llama3.2"}))

    # 4. Receive Messages: the capable device processes and answers to msg.from
    msg = await device.recv()
    assert msg["type"] == "llm_request" and msg["from"] == "other-node-id"
    assert (msg["request_id"], msg["prompt"], msg["model"]) == ("req-123", "What is the meaning of life?",
                                                                "llama3.2")
    await device.send_raw(json.dumps({"type": "llm_response", "target": msg["from"],
                                      "request_id": msg["request_id"], "response": "42"}))
    got = await other.recv()
    assert got == {"type": "llm_response", "from": "my-unique-node-id", "request_id": "req-123", "response": "42"}

    # Keepalive row of the table
    await other.send_raw('{"type":"ping"}')
    pong = await other.recv()
    assert pong["type"] == "pong" and abs(pong["timestamp"] - time.time()) < 5

    # capabilities_update row
    await other.send_raw('{"type":"capabilities_update","capabilities":["llm"]}')
    upd = await device.recv()
    assert upd == {"type": "peer_updated", "node_id": "other-node-id", "capabilities": ["llm"]}

    # peer_left row
    await other.close()
    assert await device.recv() == {"type": "peer_left", "node_id": "other-node-id"}


def test_readme_curl_health(relay):
    # curl http://localhost:8765/health -> {"status": "ok", "meshes": 0, "connections": 0}
    assert relay.get_json("/health") == {"status": "ok", "meshes": 0, "connections": 0}
