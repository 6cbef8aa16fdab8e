"""Loss-free reconnect against the real binary (docs/protocol.md "Resume").

A phone whose connection drops (abruptly, or half-open) resumes its session on a new connection
and gets every frame exactly once, in order; what it sent into the dead connection is sent again
and handled once; the others never see it leave. Past the window, or past its buffer, the session
ends cleanly, and a session is never anyone else's to take.
"""

import asyncio
import json
import random
import time

import pytest

from relayclient import Client, assert_error, close_all_clients, poll, unique_mesh
from resumeclient import ResumeClient


async def settle(*clients):
    for c in clients:
        await c.send_ack()


def presence(msgs):
    return [m for m in msgs if m.get("type") in ("peer_left", "peer_joined")]


async def expect_past_acks(client, type_):
    """The next frame but the relay's acks (they come when its timer says)."""
    while True:
        msg = await client.recv()
        if msg.get("type") != "ack":
            assert msg.get("type") == type_, msg
            return msg


async def drain_plain(client, quiet=0.3):
    """Every message a plain client receives until it is quiet for `quiet` seconds."""
    got = []
    while True:
        try:
            got.append(await client.recv(timeout=quiet))
        except AssertionError:
            return got


@pytest.mark.parametrize("seed", [1, 2])
async def test_a_phone_cut_three_times_gets_every_frame_once_in_order(relay, seed):
    rng = random.Random(seed)
    mesh = unique_mesh("resume")
    bystander = await Client.connect(relay, mesh)
    await bystander.register("tablet")
    phone = ResumeClient(relay, mesh, "phone")
    await phone.open()
    await bystander.expect("peer_joined")
    mac = ResumeClient(relay, mesh, "mac")
    await mac.open()
    await bystander.expect("peer_joined")
    await phone.wait_for(lambda inbox: any(m["type"] == "peer_joined" for m in inbox))

    total = 500
    phone_cuts = sorted(rng.sample(range(20, total - 40), 3))
    modes = ["abort", "half_open", rng.choice(["abort", "half_open"])]
    mac_cut = rng.randrange(20, total - 40)
    half_open_sockets = []
    pending_phone_resume = None
    pending_mac_resume = None
    for i in range(total):
        if i in phone_cuts:
            old = await phone.cut(modes[phone_cuts.index(i)])
            if modes[phone_cuts.index(i)] == "half_open":
                half_open_sockets.append(old)
            pending_phone_resume = i + rng.randrange(3, 25)
        if i == mac_cut:
            await mac.cut("abort")
            pending_mac_resume = i + rng.randrange(3, 25)
        if i == pending_phone_resume:
            answer = await phone.resume()
            assert answer["type"] == "resumed", answer
            pending_phone_resume = None
        if i == pending_mac_resume:
            answer = await mac.resume()
            assert answer["type"] == "resumed", answer
            pending_mac_resume = None
        if i % 2 == 0:
            await mac.send({"type": "broadcast", "payload": {"n": i}})
        else:
            await mac.send({"type": "direct", "target": "phone", "payload": {"n": i}})
        if i % 50 == 0:
            await asyncio.sleep(0.01)  # interleave with the relay's acks
    if pending_phone_resume is not None:
        assert (await phone.resume())["type"] == "resumed"
    if pending_mac_resume is not None:
        assert (await mac.resume())["type"] == "resumed"
    await mac.send({"type": "broadcast", "payload": {"done": True}})
    await phone.wait_for(
        lambda inbox: any(m.get("payload") == {"done": True} for m in inbox), timeout=15,
        what="the last broadcast")

    got = [p["n"] for f, p in phone.messages() if f == "mac" and "n" in p]
    assert got == list(range(total)), "phone: missing %s, extra %s" % (
        sorted(set(range(total)) - set(got)), len(got) - len(set(got)))
    assert phone.gaps == [] and phone.duplicates == [], (phone.gaps, phone.duplicates[:3])
    # The mac's own arrival only: no one left or came back.
    assert [(m["type"], m["node_id"]) for m in presence(phone.inbox)] == [("peer_joined", "mac")]
    assert [a["type"] for a in phone.resumes] == ["resumed"] * 3

    # The bystander got every broadcast once (the mac's resends were handled once) and never saw
    # the phone or the mac leave or come back.
    seen = await drain_plain(bystander)
    broadcasts = [m["payload"]["n"] for m in seen if m["type"] == "message" and "n" in m["payload"]]
    assert broadcasts == list(range(0, total, 2))
    assert presence(seen) == [], presence(seen)

    # The mac's frames were all acknowledged: nothing is left for it to send again.
    await asyncio.sleep(0.3)
    assert mac.unacked == {}, sorted(mac.unacked)[:5]

    # Each half-open connection was closed by the relay: 1000 "resumed".
    for old in half_open_sockets:
        old.transport.resume_reading()
        await asyncio.wait_for(old.wait_closed(), 5)
        assert (old.close_code, old.close_reason) == (1000, "resumed")

    stats = relay.get_json("/stats")["resume"]
    assert stats["resumed"] == 4, stats
    assert stats["resume_refused"] == 0, stats
    assert stats["ended"] == {"expired": 0, "overflow": 0, "closed": 0, "replaced": 0}, stats
    await phone.close()
    await mac.close()


async def test_past_the_window_the_others_see_peer_left_and_resume_starts_over(relay_factory):
    relay = relay_factory("--resume-window-seconds", "2")
    mesh = unique_mesh("expiry")
    bystander = await Client.connect(relay, mesh)
    await bystander.register("tablet")
    phone = ResumeClient(relay, mesh, "phone")
    joined = await phone.open()
    assert joined["session"]["window_seconds"] == 2
    await bystander.expect("peer_joined")
    old_id = phone.session["id"]
    await bystander.send({"type": "direct", "target": "phone", "payload": "before"})
    await phone.wait_for(lambda inbox: any(m.get("payload") == "before" for m in inbox))

    await phone.cut("abort")
    cut_at = time.monotonic()
    # Meanwhile it is still there: a direct to it is kept, not refused.
    await bystander.send({"type": "direct", "target": "phone", "payload": "during"})
    left = await bystander.expect("peer_left", timeout=6)
    waited = time.monotonic() - cut_at
    assert left["node_id"] == "phone"
    assert 1.5 <= waited <= 3.5, waited

    answer = await phone.resume()
    assert answer["type"] == "joined" and answer["resumed"] is False, answer
    assert answer["session"]["id"] != old_id
    # A fresh stream: numbered from 1 again.
    await phone.wait_for(lambda inbox: inbox[-1]["type"] == "peers" and inbox[-1]["seq"] == 1)
    await bystander.expect("peer_joined")
    stats = relay.get_json("/stats")["resume"]
    assert stats["ended"]["expired"] == 1 and stats["resume_refused"] == 1, stats
    await phone.close()


async def test_a_suspended_session_past_its_buffer_ends_cleanly(relay_factory):
    relay = relay_factory("--resume-buffer-frames", "50", "--resume-window-seconds", "30")
    mesh = unique_mesh("overflow")
    bystander = await Client.connect(relay, mesh)
    await bystander.register("tablet")
    phone = ResumeClient(relay, mesh, "phone")
    await phone.open()
    await bystander.expect("peer_joined")
    await phone.cut("abort")
    await poll(lambda: relay.get_json("/stats")["resume"]["suspended"] == 1, what="suspended")

    for i in range(60):
        await bystander.send({"type": "direct", "target": "phone", "payload": i})
    # The session ended at its bound, long before its 30 s window: the others see it go...
    left = await bystander.expect("peer_left", timeout=5)
    assert left["node_id"] == "phone"
    # ...and a direct to it now is refused as for any absent peer, never silently kept.
    await bystander.send({"type": "direct", "target": "phone", "payload": "late"})
    assert_error(await bystander.expect("error"), "unknown_target")

    stats = relay.get_json("/stats")
    assert stats["resume"]["ended"]["overflow"] == 1, stats["resume"]
    assert stats["resume"]["sessions"] == 0 and stats["resume"]["buffered_bytes"] == 0, stats
    assert stats["drops"]["resume_overflow"] >= 1, stats["drops"]
    answer = await phone.resume()
    assert answer["type"] == "joined" and answer["resumed"] is False, answer
    await phone.close()


async def test_a_live_client_that_never_acks_is_closed_at_its_bound(relay_factory):
    relay = relay_factory("--resume-buffer-frames", "40")
    mesh = unique_mesh("noack")
    bystander = await Client.connect(relay, mesh)
    await bystander.register("tablet")
    # A raw client that opens a session and never acknowledges anything.
    lazy = await Client.connect(relay, mesh)
    await lazy.send({"type": "register", "node_id": "lazy", "resume": True})
    await lazy.expect("joined")
    await bystander.expect("peer_joined")
    for i in range(100):
        await bystander.send({"type": "direct", "target": "lazy", "payload": i})
    msgs, code, reason = await lazy.recv_until_closed(timeout=5)
    assert (code, reason) == (1008, "resume overflow")
    numbered = [m for m in msgs if "seq" in m]
    assert [m["seq"] for m in numbered] == list(range(1, len(numbered) + 1))
    assert (await bystander.expect("peer_left", timeout=5))["node_id"] == "lazy"
    assert relay.get_json("/stats")["resume"]["ended"]["overflow"] == 1


async def test_a_session_is_never_anyone_elses(relay_factory):
    relay = relay_factory()
    mesh = unique_mesh("trust")
    other_mesh = unique_mesh("trust-other")
    bystander = await Client.connect(relay, mesh)
    await bystander.register("tablet")
    phone = ResumeClient(relay, mesh, "phone")
    await phone.open()
    await bystander.expect("peer_joined")
    stolen = phone.session["id"]
    await phone.cut("abort")
    await bystander.send({"type": "direct", "target": "phone", "payload": "secret"})

    async def attempt(mesh_id, node_id, session, token=None):
        c = await Client.connect(relay, mesh_id)
        msg = {"type": "register", "node_id": node_id,
               "resume": {"session": session, "last_seq": 0}}
        if token is not None:
            msg["token"] = token
        await c.send(msg)
        first = await c.recv()
        rest = await drain_plain(c)
        await c.close()
        return first, rest

    # Another node presenting the phone's session id: a fresh session of its own.
    first, rest = await attempt(mesh, "eve", stolen)
    assert first["type"] == "joined" and first["resumed"] is False, first
    assert first["session"]["id"] != stolen
    assert all(m.get("payload") != "secret" for m in rest), rest
    # The phone's node_id in another mesh with its session id: nothing of the phone's.
    first, rest = await attempt(other_mesh, "phone", stolen)
    assert first["type"] == "joined" and first["resumed"] is False, first
    assert all(m.get("payload") != "secret" for m in rest), rest
    # Guessed ids, well-formed or not: nothing.
    for guess in ("0" * 32, stolen[:-1] + ("0" if stolen[-1] != "0" else "1"), "x", "a" * 5000):
        first, rest = await attempt(mesh, "phone" + str(len(guess)), guess)
        assert first["type"] == "joined" and first["resumed"] is False, (guess[:40], first)

    # The phone itself still resumes, and gets what was kept for it, once.
    answer = await phone.resume()
    assert answer["type"] == "resumed", answer
    await phone.wait_for(lambda inbox: any(m.get("payload") == "secret" for m in inbox))
    assert sum(1 for m in phone.inbox if m.get("payload") == "secret") == 1
    await phone.close()
    await close_all_clients()
    # Session ids are secrets: never in the logs.
    assert stolen not in relay.stderr_text(limit=10**7)


async def test_other_credentials_never_resume_a_token_bound_session(relay_factory):
    relay = relay_factory()
    mesh = unique_mesh("bound")
    phone = ResumeClient(relay, mesh, "phone", token="family-secret")
    await phone.open()
    await phone.cut("abort")
    thief = await Client.connect(relay, mesh)
    await thief.send({"type": "register", "node_id": "phone", "token": "guess",
                      "resume": {"session": phone.session["id"], "last_seq": 0}})
    await thief.expect_error("auth_failed")
    assert (await phone.resume())["type"] == "resumed"
    await phone.close()


async def test_resume_rules_a_client_must_follow(relay):
    mesh = unique_mesh("rules")
    c = await Client.connect(relay, mesh)
    await c.send({"type": "register", "node_id": "phone", "resume": True})
    joined = await c.expect("joined")
    assert set(joined["session"]) == {"id", "window_seconds"}
    assert joined["session"]["window_seconds"] == 60
    assert len(joined["session"]["id"]) == 32
    peers = await c.expect("peers")
    assert peers["seq"] == 1
    # A frame without seq is refused, clearly, in the stream.
    await c.send({"type": "ping"})
    err = await c.expect("error")
    assert_error(err, "seq_required")
    assert err["seq"] == 2
    for bad in ("1", 1.5, -1, 0, 2 ** 53, None, True):
        await c.send({"type": "ping", "seq": bad})
        assert_error(await c.expect("error"), "seq_required")
    await c.send({"type": "ping", "seq": 1})
    assert (await c.expect("pong"))["seq"] == 10
    # A resend of seq 1 is dropped, and acknowledged.
    await c.send({"type": "ping", "seq": 1})
    assert await c.expect("ack") == {"type": "ack", "seq": 1}
    # An ack of frames never sent is refused.
    await c.send({"type": "ack", "seq": 99})
    assert_error(await expect_past_acks(c, "error"), "bad_message")
    await c.send({"type": "ack", "seq": "x"})
    assert_error(await expect_past_acks(c, "error"), "bad_message")
    # Bad resume requests are refused before anything else.
    for bad in ("yes", 1, {"last_seq": 1}, {"session": 5}, {"session": "a", "last_seq": -1}):
        d = await Client.connect(relay, mesh)
        await d.send({"type": "register", "node_id": "x", "resume": bad})
        assert_error(await d.expect("error"), "bad_message")
        await d.close()


async def test_a_client_that_says_goodbye_leaves_at_once(relay):
    mesh = unique_mesh("bye")
    bystander = await Client.connect(relay, mesh)
    await bystander.register("tablet")
    phone = ResumeClient(relay, mesh, "phone")
    await phone.open()
    await bystander.expect("peer_joined")
    await phone.close()  # a close frame: a goodbye
    assert (await bystander.expect("peer_left", timeout=2))["node_id"] == "phone"
    assert relay.get_json("/stats")["resume"]["ended"]["closed"] == 1


async def test_clients_without_resume_see_no_seq(relay):
    mesh = unique_mesh("plain")
    a = await Client.connect(relay, mesh)
    joined, peers = await a.register("a")
    assert "session" not in joined and "seq" not in joined and "seq" not in peers
    b = await Client.connect(relay, mesh)
    await b.register("b")
    await a.expect("peer_joined")
    # A "seq" member of an old client's message is not its business: ignored, never forwarded.
    await b.send({"type": "broadcast", "payload": 1, "seq": "whatever"})
    assert await a.recv() == {"type": "message", "from": "b", "payload": 1}
    await b.send({"type": "ack", "seq": 1})
    assert_error(await b.expect("error"), "unknown_type")


async def test_a_suspended_llm_peer_gets_requests_only_when_no_one_else_can(relay):
    mesh = unique_mesh("llm")
    asker = await Client.connect(relay, mesh)
    await asker.register("asker")
    mac = ResumeClient(relay, mesh, "mac", capabilities=["llm"])
    await mac.open()
    await asker.expect("peer_joined")
    await mac.cut("abort")
    await poll(lambda: relay.get_json("/stats")["resume"]["suspended"] == 1, what="suspended")
    # Only the suspended mac can answer: the request waits for it.
    await asker.send({"type": "llm_request", "request_id": "r1", "prompt": "hi"})
    other = await Client.connect(relay, mesh)
    await other.register("pi", ["llm"])
    await asker.expect("peer_joined")
    # Now a connected peer can: it gets the next one.
    await asker.send({"type": "llm_request", "request_id": "r2", "prompt": "hi"})
    got = await other.expect("llm_request")
    assert got["request_id"] == "r2"
    assert (await mac.resume())["type"] == "resumed"
    await mac.wait_for(lambda inbox: any(m.get("type") == "llm_request" for m in inbox))
    req = mac.of_type("llm_request")[0]
    assert req["request_id"] == "r1"
    await mac.send({"type": "llm_response", "target": "asker", "request_id": "r1", "text": "ok"})
    resp = await asker.expect("llm_response")
    assert resp["request_id"] == "r1" and resp["from"] == "mac" and "seq" not in resp
    await mac.close()


async def test_in_cluster_mode_a_resume_continues_on_its_instance_and_starts_fresh_on_another(cluster):
    rc = cluster()
    home, other = rc.instances[0], rc.instances[1]
    mesh = unique_mesh("cluster-resume")
    bystander = await Client.connect(other, mesh)
    await bystander.register("tablet")
    phone = ResumeClient(home, mesh, "phone")
    await phone.open()
    await bystander.expect("peer_joined")

    # Back on the instance that holds the session: resumed, with what was sent across meanwhile.
    await phone.cut("abort")
    await poll(lambda: home.get_json("/stats")["resume"]["suspended"] == 1, what="suspended")
    await bystander.send({"type": "direct", "target": "phone", "payload": "kept"})
    assert (await phone.resume())["type"] == "resumed"
    await phone.wait_for(lambda inbox: any(m.get("payload") == "kept" for m in inbox))

    # On another instance: a fresh session (moving sessions is not built), the node taken over
    # without anyone seeing it leave, and reachable at once.
    await phone.cut("abort")
    await poll(lambda: home.get_json("/stats")["resume"]["suspended"] == 1, what="suspended")
    answer = await phone.resume(relay=other)
    assert answer["type"] == "joined" and answer["resumed"] is False, answer
    await poll(lambda: home.get_json("/stats")["resume"]["ended"]["replaced"] == 1, what="replaced")
    await bystander.send({"type": "direct", "target": "phone", "payload": "here"})
    await phone.wait_for(lambda inbox: any(m.get("payload") == "here" for m in inbox))
    seen = await drain_plain(bystander)
    assert not [m for m in seen if m["type"] == "peer_left"], seen
    await phone.close()
