"""Graceful drain (SIGTERM; `relayctl drain` is in test_relayctl.py): readiness goes false on every
probe, new connections are refused, every client is told (server_draining) and keeps working for
the grace period (an llm request in flight completes), then is closed 1001, and the relay exits 0."""

import asyncio
import json
import signal
import time

import pytest
import websockets

from grpcpeer import NOT_SERVING, SERVING, health_status
from relayclient import Client, connect_registered, drain_close, mesh_of, unique_mesh

SPREAD_OVER_CLUSTER = True
# A drain is of one process: its clients are on it (the other instances keep running).
pytestmark = pytest.mark.one_instance("drains one process with SIGTERM")

UPGRADE_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def ready_status(relay):
    status, _, body = relay.http("GET", "/ready")
    return status, json.loads(body)


async def wait_exit(relay, timeout=15):
    rc = await asyncio.to_thread(relay.proc.wait, timeout)
    relay.returncode = rc
    return rc


async def test_sigterm_drains_with_an_llm_request_in_flight(relay_factory):
    relay = relay_factory("--drain-grace-seconds", "3")
    assert ready_status(relay) == (200, {"status": "ready"})
    assert health_status(relay, "relay.v1.RelayCore") == SERVING
    mesh = unique_mesh("drain")
    asker, mac = await mesh_of(relay, mesh, [("asker", []), ("mac", ["llm"])])
    await asker.send({"type": "llm_request", "request_id": "r1", "prompt": "slow question"})
    assert (await mac.expect("llm_request"))["request_id"] == "r1"

    t0 = time.monotonic()
    relay.proc.send_signal(signal.SIGTERM)
    for c in (asker, mac):
        msg = await c.recv()
        assert msg["type"] == "server_draining" and msg["grace_seconds"] == 3, msg
        assert isinstance(msg["reconnect_after_ms"], int) and 0 <= msg["reconnect_after_ms"] < 5000, msg
        assert set(msg) == {"type", "grace_seconds", "reconnect_after_ms"}, msg

    # not ready anywhere, still alive
    assert ready_status(relay) == (503, {"status": "draining"})
    assert relay.get_json("/health")["status"] == "ok"
    assert health_status(relay, "") == NOT_SERVING
    assert health_status(relay, "relay.v1.RelayCore") == NOT_SERVING
    # no new WebSocket connections
    with pytest.raises(websockets.InvalidStatusCode) as refused:
        await Client.connect(relay, unique_mesh("late"))
    assert refused.value.status_code == 503
    status, headers, body = relay.http("GET", "/relay/late", headers=UPGRADE_HEADERS)
    assert status == 503 and json.loads(body)["error"] == "draining", (status, body)
    assert headers.get("retry-after") == "5"

    # the request in flight completes within the grace
    await mac.send({"type": "llm_response", "target": "asker", "request_id": "r1", "response": "done"})
    assert await asker.recv() == {"type": "llm_response", "from": "mac", "request_id": "r1", "response": "done"}
    # and messages still flow
    await asker.send({"type": "direct", "target": "mac", "payload": "bye"})
    assert await mac.recv() == {"type": "message", "from": "asker", "payload": "bye"}

    for c in (asker, mac):
        assert await c.expect_closed(timeout=10) == drain_close(relay)
    elapsed = time.monotonic() - t0
    assert 2.5 <= elapsed < 8, "closed %.1f s after SIGTERM with a 3 s grace" % elapsed
    assert await wait_exit(relay) == 0


async def test_drain_ends_early_once_every_client_left(relay_factory):
    relay = relay_factory("--drain-grace-seconds", "60")
    a, b = await mesh_of(relay, unique_mesh("early"), [("a", []), ("b", [])])
    relay.proc.send_signal(signal.SIGTERM)
    for c in (a, b):
        assert (await c.recv())["type"] == "server_draining"
        await c.close()
    t0 = time.monotonic()
    assert await wait_exit(relay, 10) == 0
    assert time.monotonic() - t0 < 5


async def test_second_sigterm_exits_at_once(relay_factory):
    relay = relay_factory("--drain-grace-seconds", "60")
    a = await connect_registered(relay, unique_mesh("twice"), "a")
    relay.proc.send_signal(signal.SIGTERM)
    assert (await a.recv())["type"] == "server_draining"
    relay.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    rc = await wait_exit(relay, 10)
    assert rc != 0 and time.monotonic() - t0 < 3
    relay.returncode = 0  # expected: the fixture must not report it


async def test_unregistered_connections_are_told_too(relay_factory):
    relay = relay_factory("--drain-grace-seconds", "1")
    u = await Client.connect(relay, unique_mesh("u"))
    relay.proc.send_signal(signal.SIGTERM)
    assert (await u.recv())["type"] == "server_draining"
    closed = await u.expect_closed(timeout=10)
    rc = await wait_exit(relay)
    assert closed == drain_close(relay)
    assert rc == 0
