"""Core limits (auth_spec.md): the per-connection rate limit (token bucket, RATE_LIMIT_PER_SECOND /
RATE_LIMIT_BURST, defaults 1000 and 20000; `rate_limited` errors, then after min(RATE_LIMIT_BURST, 100)
refusals in a row close 1008 "rate limited") and MAX_PEERS_PER_MESH
(`mesh_full`, the connection stays open and unregistered). Other clients keep being served."""

import asyncio
import json
import subprocess
import time

import pytest
import websockets

import grpcpeer
from relayclient import (Client, assert_error, assert_served_elsewhere, connect_registered, instance, marker_barrier,
                         mesh_of, poll, unique_mesh)


def stats(relay):
    return relay.get_json("/stats")


async def send_flood(client, messages):
    """Sends as fast as possible; stops quietly when the relay has closed. Returns how many went out."""
    sent = 0
    try:
        for m in messages:
            await client.send(m)
            sent += 1
    except websockets.ConnectionClosed:
        pass
    return sent


async def ping_until_rate_closed(client, first_burst, limit, accepted=("pong",), timeout=10.0):
    """Sends first_burst pings at once, then one more each time every ping so far has its answer
    (and fewer than `limit` in a row were refused), until the relay closes. Nothing is left unread at the relay when it closes, so its close frame
    must arrive. Returns (answers, unanswered, close code, close reason); an answer is "ok" (pong,
    or the error code in `accepted`) or "refused" (rate_limited)."""
    sent = 0
    answers = []
    deadline = time.monotonic() + timeout
    try:
        for _ in range(first_burst):
            await client.send({"type": "ping"})
            sent += 1
        while True:
            if len(answers) == sent and trailing_refused(answers) < limit:
                await client.send({"type": "ping"})
                sent += 1
            remaining = deadline - time.monotonic()
            assert remaining > 0, "not closed after %d pings; answers %r" % (sent, answers)
            msg = json.loads(await asyncio.wait_for(client.ws.recv(), remaining))
            kind = msg["type"] if msg["type"] != "error" else msg["code"]
            if kind == "rate_limited":
                assert_error(msg, "rate_limited")
                answers.append("refused")
            else:
                assert kind in accepted, msg
                answers.append("ok")
    except websockets.ConnectionClosed:
        pass
    return answers, sent - len(answers), client.ws.close_code, client.ws.close_reason


def trailing_refused(answers):
    n = 0
    for a in reversed(answers):
        if a != "refused":
            break
        n += 1
    return n


def assert_closed_after_burst_refusals(answers, unanswered, code, reason, limit):
    """limit = min(RATE_LIMIT_BURST, 100) refusals in a row close the connection."""
    assert (code, reason) == (1008, "rate limited"), (code, reason, answers)
    streak = trailing_refused(answers)
    # the last refused one answered, or the connection closed on it
    assert (streak, unanswered) in ((limit, 0), (limit - 1, 1)), \
        "closed after a streak of %d refused (+%d unanswered), expected %d: %r" % (streak, unanswered, limit, answers)


def test_help_lists_new_flags(relay_bin):
    out = subprocess.run([relay_bin, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    text = out.stdout + out.stderr
    for flag in ("--data-dir", "--mesh-binding-grace-seconds", "--rate-limit-per-second", "--rate-limit-burst",
                 "--max-peers-per-mesh"):
        assert flag in text, flag


# ---------------------------------------------------------------------------
# Rate limit
# ---------------------------------------------------------------------------

SPREAD_OVER_CLUSTER = True

RATE_ARGS = {"flags": (("--rate-limit-per-second", "10", "--rate-limit-burst", "20"), None),
             "env": ((), {"RATE_LIMIT_PER_SECOND": "10", "RATE_LIMIT_BURST": "20"})}


@pytest.mark.parametrize("how", list(RATE_ARGS))
async def test_flood_gets_rate_limited_then_closed_while_others_are_served(relay_factory, how):
    args, env = RATE_ARGS[how]
    relay = relay_factory(*args, env=env)
    # a bystander mesh, registered before the flood; in the cluster the flooder is on the first
    # instance (whose /stats is read), the bystanders and its receiver on the others
    bystanders = unique_mesh("bystander")
    b1 = await connect_registered(instance(relay, 1), bystanders, "b1")
    b2 = await connect_registered(instance(relay, 2), bystanders, "b2")
    assert (await b1.expect("peer_joined"))["node_id"] == "b2"
    mesh = unique_mesh("flood")
    rx = await connect_registered(instance(relay, 1), mesh, "rx")
    fl = await connect_registered(instance(relay, 0), mesh, "fl")
    assert (await rx.expect("peer_joined"))["node_id"] == "fl"

    async def bystander():
        # 5 rounds = 10 messages + 1 register: well inside b1's own burst of 20
        for _ in range(5):
            await b1.ping_barrier()
            await marker_barrier(b1, [b2])
            await asyncio.sleep(0)

    t0 = time.monotonic()
    sent, _ = await asyncio.gather(send_flood(fl, [{"type": "broadcast", "payload": {"i": i}} for i in range(300)]),
                                   bystander())
    msgs, code, reason = await fl.recv_until_closed()
    elapsed = time.monotonic() - t0
    assert (code, reason) == (1008, "rate limited"), (code, reason, msgs)
    for m in msgs:
        assert_error(m, "rate_limited")
    refused = len(msgs)
    assert refused >= 19, "closed after only %d rate_limited errors (burst 20)" % refused

    # what was not refused was relayed, in order, and nothing else
    got = []
    while True:
        m = await rx.recv()
        if m == {"type": "peer_left", "node_id": "fl"}:
            break
        assert m["type"] == "message" and m["from"] == "fl", m
        got.append(m["payload"]["i"])
    assert got == sorted(got) and len(set(got)) == len(got), got
    assert got[:15] == list(range(15)), "the burst was not honoured: %r" % got[:20]
    assert len(got) <= 19 + 10 * elapsed + 2, "%d relayed in %.2f s at 10/s, burst 20" % (len(got), elapsed)
    assert len(got) + refused < 300, "the connection was not closed before the flood ended"

    await poll(lambda: stats(relay)["closes"]["rate_limited"] == 1, what="closes.rate_limited == 1")
    s = stats(relay)
    assert s["errors"]["rate_limited"] == refused, s["errors"]
    # the others were never limited and are still served
    await b1.ping_barrier()
    await marker_barrier(b2, [b1])
    await rx.ping_barrier()
    late = await connect_registered(relay, mesh, "late")
    assert (await rx.recv())["type"] == "peer_joined"
    await marker_barrier(late, [rx])
    await assert_served_elsewhere(relay)


@pytest.mark.one_instance("reads the pinger's rate_limited counts on one process's /stats")
@pytest.mark.parametrize("how", list(RATE_ARGS))
async def test_refusal_streak_of_burst_closes_1008_while_others_are_served(relay_factory, how):
    args, env = RATE_ARGS[how]
    relay = relay_factory(*args, env=env)
    b1, b2 = await mesh_of(relay, unique_mesh("bystander"), [("b1", []), ("b2", [])])
    c = await connect_registered(relay, unique_mesh("pinger"), "p")

    async def bystander():
        for _ in range(5):
            await b1.ping_barrier()
            await marker_barrier(b1, [b2])
            await asyncio.sleep(0)

    (answers, unanswered, code, reason), _ = await asyncio.gather(ping_until_rate_closed(c, 39, 20), bystander())
    assert answers[:15] == ["ok"] * 15, "the burst of 20 was not honoured: %r" % answers
    assert_closed_after_burst_refusals(answers, unanswered, code, reason, 20)
    await poll(lambda: stats(relay)["closes"]["rate_limited"] == 1, what="closes.rate_limited == 1")
    assert stats(relay)["errors"]["rate_limited"] == answers.count("refused")
    await b1.ping_barrier()
    await marker_barrier(b2, [b1])
    await assert_served_elsewhere(relay)


async def test_unregistered_socket_is_rate_limited_too(relay_factory):
    relay = relay_factory("--rate-limit-per-second", "10", "--rate-limit-burst", "20")
    c = await Client.connect(relay, unique_mesh("pinger"))
    answers, unanswered, code, reason = await ping_until_rate_closed(c, 40, 20, accepted=("not_registered",))
    assert answers[:15] == ["ok"] * 15, answers
    assert_closed_after_burst_refusals(answers, unanswered, code, reason, 20)
    await assert_served_elsewhere(relay)


async def test_paced_client_under_the_rate_is_never_limited(relay_factory):
    relay = relay_factory("--rate-limit-per-second", "50", "--rate-limit-burst", "5")
    c = await connect_registered(relay, unique_mesh("paced"), "p")
    # 5 messages per batch (the burst), then wait until the bucket has refilled
    for _ in range(6):
        for _ in range(4):
            await c.send({"type": "ping"})
        for _ in range(4):
            await c.expect("pong")
        await asyncio.sleep(0.2)  # pacing the client: 0.2 s refills 10 tokens at 50/s
    assert stats(relay)["errors"]["rate_limited"] == 0


async def test_rate_limit_zero_disables(relay_factory):
    relay = relay_factory("--rate-limit-per-second", "0", "--rate-limit-burst", "5")
    c = await connect_registered(relay, unique_mesh("nolimit"), "n")
    n = 500
    assert await send_flood(c, [{"type": "ping"}] * n) == n
    for _ in range(n):
        await c.expect("pong")
    await c.ping_barrier()
    s = stats(relay)
    assert s["errors"]["rate_limited"] == 0 and s["closes"]["rate_limited"] == 0


async def test_default_rate_limit_lets_2000_back_to_back_through(relay):
    """Defaults: 1000/s, burst 20000: a device pushing 2000 messages back to back is not limited."""
    c = await connect_registered(relay, unique_mesh("default"), "n")
    n = 2000
    assert await send_flood(c, [{"type": "ping"}] * n) == n
    for _ in range(n):
        await c.expect("pong", timeout=20)
    s = stats(relay)
    assert s["errors"]["rate_limited"] == 0 and s["closes"]["rate_limited"] == 0


async def test_close_after_100_refusals_when_burst_is_larger(relay_factory):
    """Closed after min(RATE_LIMIT_BURST, 100) refusals in a row: burst 300 -> 100."""
    relay = relay_factory("--rate-limit-per-second", "1", "--rate-limit-burst", "300")
    c = await connect_registered(relay, unique_mesh("pinger"), "p")
    answers, unanswered, code, reason = await ping_until_rate_closed(c, 299 + 100, 100)
    assert answers[:290] == ["ok"] * 290, "the burst of 300 was not honoured: %r" % answers
    assert_closed_after_burst_refusals(answers, unanswered, code, reason, 100)
    await assert_served_elsewhere(relay)


# ---------------------------------------------------------------------------
# Max peers per mesh
# ---------------------------------------------------------------------------

@pytest.mark.one_instance("counts one process's connections on /health and mesh_full on /stats")
async def test_mesh_full_refuses_third_peer_and_keeps_it_open(relay_factory):
    relay = relay_factory("--max-peers-per-mesh", "2")
    mesh = unique_mesh("full")
    a, b = await mesh_of(relay, mesh, [("a", []), ("b", [])])
    c = await Client.connect(relay, mesh)
    for type_ in ("register", "join"):
        await c.send({"type": type_, "node_id": "c", "capabilities": []})
        await c.expect_error("mesh_full")
        await c.send({"type": "ping"})
        await c.expect_error("not_registered")
    await assert_served_elsewhere(relay)
    # the members saw nothing
    await marker_barrier(a, [b])
    await a.ping_barrier()
    await b.ping_barrier()
    assert relay.get_json("/health")["connections"] == 2
    s = stats(relay)
    assert s["errors"]["mesh_full"] == 2
    assert [n for m, n in grpcpeer.admin_meshes(relay) if m == mesh] == [2]
    # another mesh has its own limit
    x, y = await mesh_of(relay, unique_mesh("other"), [("x", []), ("y", [])])
    await marker_barrier(x, [y])
    # once a slot frees, the same connection registers
    await a.close()
    assert await b.recv() == {"type": "peer_left", "node_id": "a"}
    await c.send({"type": "register", "node_id": "c", "capabilities": []})
    assert await c.recv() == {"type": "joined", "mesh_id": mesh, "node_count": 2}
    await c.expect("peers")
    await b.expect("peer_joined")
    c.node_id = "c"
    await marker_barrier(c, [b])


async def test_takeover_in_a_full_mesh_is_not_mesh_full(relay_factory):
    relay = relay_factory("--max-peers-per-mesh", "2")
    mesh = unique_mesh("full")
    a = await connect_registered(relay, mesh, "a", token="family")
    b = await connect_registered(relay, mesh, "b", token="family")
    await a.expect("peer_joined")
    new = await Client.connect(relay, mesh)
    joined, _ = await new.register("b", token="family")
    assert joined["node_count"] == 2
    assert await b.expect_closed() == (1000, "replaced")
    assert (await a.recv())["type"] == "peer_joined"
    await marker_barrier(new, [a])


async def test_max_peers_from_env_and_flag_wins(relay_factory):
    r_env = relay_factory(env={"MAX_PEERS_PER_MESH": "1"})
    mesh = unique_mesh("env")
    await connect_registered(r_env, mesh, "a")
    c = await Client.connect(r_env, mesh)
    await c.send({"type": "register", "node_id": "b"})
    await c.expect_error("mesh_full")

    r_both = relay_factory("--max-peers-per-mesh", "2", env={"MAX_PEERS_PER_MESH": "1"})
    await mesh_of(r_both, mesh, [("a", []), ("b", [])])
    c = await Client.connect(r_both, mesh)
    await c.send({"type": "register", "node_id": "c"})
    await c.expect_error("mesh_full")
