"""Bad input from one client: the right error or close code, and afterwards a client pair in
ANOTHER mesh is still served (a direct round trip), and where the spec says so the bad
client's own connection stays usable.

In the cluster topology the bad client is on the first instance (RawWS connects to
relay.host/port, which is the first instance's), its mesh's `peer` on the second, and the
Witness pair on the second and third: the bystanders are never on the bad client's instance,
and what the bad client does reaches its peer through the backplane."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import rawws
from procstats import cpu_seconds
from relayclient import Client, assert_error, connect_registered, instance, is_sanitized, marker_barrier, unique_mesh

HERE = os.path.dirname(os.path.abspath(__file__))

# Run again on three instances, the bystanders on other instances than the bad client.
SPREAD_OVER_CLUSTER = True


def bad_side(relay):
    """Where bad clients connect: the first instance, as RawWS (relay.host/port) does."""
    return instance(relay, 0)


def peer_side(relay):
    """Where the bad client's mesh peers connect: another instance than the bad client's."""
    return instance(relay, 1)


class Witness:
    """Two clients in their own mesh; round_trip() proves the relay still serves others. In the
    cluster topology they are on the second and third instances, never on bad_side's."""

    def __init__(self, relay):
        self.relay = relay
        self.x = self.y = None
        self.n = 0

    async def start(self):
        mesh = unique_mesh("witness")
        self.x = await connect_registered(instance(self.relay, 1), mesh, "wx")
        self.y = await connect_registered(instance(self.relay, 2), mesh, "wy")
        pj = await self.x.expect("peer_joined")
        assert pj["node_id"] == "wy", pj
        return self

    async def round_trip(self):
        self.n += 1
        await self.x.send({"type": "direct", "target": "wy", "payload": {"n": self.n}})
        assert await self.y.recv() == {"type": "message", "from": "wx", "payload": {"n": self.n}}
        await self.y.send({"type": "direct", "target": "wx", "payload": {"ack": self.n}})
        assert await self.x.recv() == {"type": "message", "from": "wy", "payload": {"ack": self.n}}
        st, _, _ = self.relay.http("GET", "/health")
        assert st == 200


async def setup_mesh(relay):
    w = await Witness(relay).start()
    mesh = unique_mesh("bad")
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    bad = await Client.connect(bad_side(relay), mesh)
    await bad.register("bad")
    await peer.expect("peer_joined")
    return w, peer, bad, mesh


async def still_usable(bad, peer):
    await bad.ping_barrier()
    await bad.send({"type": "direct", "target": "peer", "payload": "ok"})
    assert await peer.recv() == {"type": "message", "from": "bad", "payload": "ok"}


@pytest.mark.parametrize("text", [
    "{not json",
    '{"type":"broadcast",',
    "",
    "   ",
    '{"type":"ping"} trailing',
    '{"type":"ping"}{"type":"ping"}',
    "{'type':'ping'}",
    '{"type":"ping",}',
    "NaN",
    '{"type":"broadcast","payload":Infinity}',
    '{"type":"broadcast","payload":"unterminated}',
    '{"type":"broadcast","payload":"bad \\x escape"}',
], ids=["garbage", "truncated", "empty", "spaces", "trailing", "two-objects", "single-quotes", "trailing-comma",
        "nan", "infinity", "unterminated-string", "bad-escape"])
async def test_malformed_json_is_bad_json(relay, text):
    w, peer, bad, _ = await setup_mesh(relay)
    await bad.send_raw(text)
    await bad.expect_error("bad_json")
    await w.round_trip()
    await still_usable(bad, peer)


@pytest.mark.parametrize("text", ["[1,2,3]", "[]", "42", "-1.5", '"hello"', "null", "true", "false"])
async def test_json_non_object_is_bad_message(relay, text):
    w, peer, bad, _ = await setup_mesh(relay)
    await bad.send_raw(text)
    await bad.expect_error("bad_message")
    await w.round_trip()
    await still_usable(bad, peer)


@pytest.mark.parametrize("text", ['{}', '{"payload":1}', '{"type":5}', '{"type":null}', '{"type":["ping"]}',
                                  '{"type":{"t":"ping"}}'],
                         ids=["empty-object", "missing-type", "type-number", "type-null", "type-array",
                              "type-object"])
async def test_missing_or_non_string_type_is_bad_message(relay, text):
    w, peer, bad, _ = await setup_mesh(relay)
    await bad.send_raw(text)
    await bad.expect_error("bad_message")
    await w.round_trip()
    await still_usable(bad, peer)


@pytest.mark.parametrize("type_", ["teleport", "", "PING", "Broadcast", "message", "pong", "joined", "error"])
async def test_unknown_type(relay, type_):
    w, peer, bad, _ = await setup_mesh(relay)
    await bad.send({"type": type_, "payload": 1})
    await bad.expect_error("unknown_type")
    await w.round_trip()
    await still_usable(bad, peer)


async def test_unknown_type_before_register_is_unknown_type_or_not_registered(relay):
    """Either answer tells the client what is wrong; the socket stays and may register."""
    w = await Witness(relay).start()
    u = await Client.connect(bad_side(relay), unique_mesh())
    await u.send({"type": "teleport"})
    err = await u.expect("error")
    assert err["code"] in ("unknown_type", "not_registered"), err
    await u.register("u")
    await w.round_trip()


@pytest.mark.parametrize("msg,request_id", [
    ({"type": "direct", "target": 5, "payload": 1}, None),
    ({"type": "direct", "payload": 1}, None),
    ({"type": "direct", "target": None, "payload": 1}, None),
    ({"type": "direct", "target": ["peer"], "payload": 1}, None),
    ({"type": "llm_request", "prompt": "no id"}, None),
    ({"type": "llm_request", "request_id": {"id": 1}, "prompt": "x"}, None),
    ({"type": "llm_request", "request_id": None, "prompt": "x"}, None),
    ({"type": "llm_request", "request_id": True, "prompt": "x"}, None),
    ({"type": "chat_request", "request_id": [1]}, None),
    ({"type": "llm_response", "request_id": "r9", "response": "no target"}, "r9"),
    ({"type": "llm_response", "target": 3, "request_id": 99, "response": "x"}, 99),
    ({"type": "capabilities_update"}, None),
    ({"type": "capabilities_update", "capabilities": "llm"}, None),
    ({"type": "capabilities_update", "capabilities": [1, 2]}, None),
    ({"type": "capabilities_update", "capabilities": ["c"] * 65}, None),
    ({"type": "capabilities_update", "capabilities": ["x" * 129]}, None),
], ids=["target-number", "target-missing", "target-null", "target-array", "request-id-missing",
        "request-id-object", "request-id-null", "request-id-bool", "chat-request-id-array",
        "response-target-missing", "response-target-number", "caps-missing", "caps-string", "caps-numbers",
        "caps-65", "caps-129-bytes"])
async def test_wrong_field_is_bad_message(relay, msg, request_id):
    w, peer, bad, _ = await setup_mesh(relay)
    await bad.send(msg)
    err = await bad.recv()
    assert_error(err, "bad_message", request_id=request_id)
    await w.round_trip()
    await still_usable(bad, peer)


async def test_bad_capabilities_update_changes_nothing(relay):
    w, peer, bad, _ = await setup_mesh(relay)
    await bad.send({"type": "capabilities_update", "capabilities": ["llm", 5]})
    await bad.expect_error("bad_message")
    await still_usable(bad, peer)  # peer got no peer_updated before the direct
    await peer.send({"type": "llm_request", "request_id": "q", "prompt": "x"})
    assert_error(await peer.recv(), "no_llm_peer", request_id="q")
    await w.round_trip()


async def test_limits_at_boundary_accepted(relay):
    mesh = unique_mesh()
    a = await connect_registered(relay, mesh, "a")
    b = await Client.connect(relay, mesh)
    caps = ["c%d" % i for i in range(63)] + ["x" * 128]
    joined, _ = await b.register("n" * 256, caps)
    assert joined["node_count"] == 2
    pj = await a.expect("peer_joined")
    assert pj["node_id"] == "n" * 256 and pj["capabilities"] == caps


@pytest.mark.parametrize("msg", [
    {"type": "register", "capabilities": []},
    {"type": "register", "node_id": "", "capabilities": []},
    {"type": "register", "node_id": "n" * 257},
    {"type": "register", "node_id": 12},
    {"type": "register", "node_id": None},
    {"type": "register", "node_id": "ok", "capabilities": "llm"},
    {"type": "register", "node_id": "ok", "capabilities": [None]},
    {"type": "register", "node_id": "ok", "capabilities": ["c"] * 65},
    {"type": "register", "node_id": "ok", "capabilities": ["x" * 129]},
    {"type": "register", "node_id": "ok", "name": 5},
    {"type": "register", "node_id": "ok", "token": 5},
    {"type": "join", "node_id": "ok", "node_name": ["x"]},
], ids=["no-node-id", "empty-node-id", "257-byte-node-id", "number-node-id", "null-node-id", "caps-string",
        "caps-null-entry", "caps-65", "caps-129-bytes", "name-number", "token-number", "node-name-array"])
async def test_bad_register_is_bad_message_and_stays_unregistered(relay, msg):
    w = await Witness(relay).start()
    mesh = unique_mesh()
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    u = await Client.connect(bad_side(relay), mesh)
    await u.send(msg)
    await u.expect_error("bad_message")
    await w.round_trip()
    # not registered: nothing was announced, and a correct register now works
    joined, _ = await u.register("ok")
    assert joined["node_count"] == 2
    assert (await peer.recv())["type"] == "peer_joined"


async def test_invalid_utf8_in_text_frame_closes_1007(relay):
    w = await Witness(relay).start()
    mesh = unique_mesh()
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh)
    try:
        r.register("raw")
        await peer.expect("peer_joined")
        r.send_text(b'{"type":"broadcast","payload":"\xff\xfe bad"}')
        closed = r.wait_closed()
        assert closed.code == 1007, closed
        assert await peer.recv() == {"type": "peer_left", "node_id": "raw"}
    finally:
        r.close()
    await w.round_trip()


async def test_invalid_utf8_split_across_fragments_closes_1007(relay):
    w = await Witness(relay).start()
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + unique_mesh())
    try:
        r.register("raw")
        r.send_frame(rawws.OP_TEXT, b'{"type":"broadcast","payload":"\xc3', fin=False)
        r.send_frame(rawws.OP_CONT, b'("}', fin=True)  # 0xC3 0x28 is invalid
        closed = r.wait_closed()
        assert closed.code == 1007, closed
    finally:
        r.close()
    await w.round_trip()


async def test_invalid_utf8_after_long_ascii_run_closes_1007(relay):
    # The relay checks UTF-8 eight bytes at a time over ASCII runs: a bad byte
    # at any offset after such a run must still be caught.
    w = await Witness(relay).start()
    for offset in range(9):
        r = rawws.RawWS(relay.host, relay.port, "/relay/" + unique_mesh())
        try:
            r.register("raw")
            text = b'{"type":"broadcast","payload":"' + b"a" * (40 + offset) + b'\x80 bad"}'
            r.send_text(text)
            closed = r.wait_closed()
            assert closed.code == 1007, (offset, closed)
        finally:
            r.close()
    await w.round_trip()


async def test_characters_split_across_fragments_are_relayed(relay):
    # A multi-byte character cut between two fragments is valid UTF-8 and
    # reaches the peer intact, as do characters right after long ASCII runs.
    mesh = unique_mesh()
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh)
    try:
        r.register("raw")
        await peer.expect("peer_joined")
        text = "a" * 37 + "\u00e9" + "b" * 11 + "\U0001F600" + "c" * 5
        frame = ('{"type":"broadcast","payload":"' + text + '"}').encode()
        for cut in (frame.index(b"\xc3") + 1, frame.index(b"\xf0") + 2):
            r.send_frame(rawws.OP_TEXT, frame[:cut], fin=False)
            r.send_frame(rawws.OP_CONT, frame[cut:], fin=True)
            got = await peer.expect("message")
            assert got["payload"] == text
    finally:
        r.close()


async def test_invalid_utf8_in_binary_frame_is_bad_json(relay):
    w = await Witness(relay).start()
    mesh = unique_mesh()
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh)
    try:
        r.register("raw")
        await peer.expect("peer_joined")
        r.send_binary(b'{"type":"broadcast","payload":"\xff\xfe bad"}')
        err = r.recv_json()
        assert_error(err, "bad_json")
        await w.round_trip()
        # the connection stays
        r.send_binary(b'{"type":"direct","target":"peer","payload":"after"}')
        assert await peer.recv() == {"type": "message", "from": "raw", "payload": "after"}
        r.send_json({"type": "ping"})
        assert r.recv_json()["type"] == "pong"
    finally:
        r.close()


def _send_in_background(r, data):
    def run():
        try:
            r.sock.settimeout(10)
            r.sock.sendall(data)
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("opcode", [rawws.OP_TEXT, rawws.OP_BINARY], ids=["text", "binary"])
async def test_two_mib_frame_closes_1009(relay, opcode):
    w = await Witness(relay).start()
    mesh = unique_mesh()
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh)
    try:
        r.register("big")
        await peer.expect("peer_joined")
        body = b'{"type":"broadcast","payload":"' + b"a" * (2 * 1024 * 1024) + b'"}'
        t = _send_in_background(r, rawws.encode_frame(opcode, body))
        closed = await asyncio.to_thread(r.wait_closed, 10)
        assert closed.code == 1009, closed
        assert await peer.recv() == {"type": "peer_left", "node_id": "big"}
        t.join(10)
    finally:
        r.close()
    await w.round_trip()


async def test_two_mib_fragmented_message_closes_1009(relay):
    w = await Witness(relay).start()
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + unique_mesh())
    try:
        r.register("frag-big")
        chunk = b"b" * (256 * 1024)
        data = rawws.encode_frame(rawws.OP_TEXT, b'{"type":"broadcast","payload":"', fin=False)
        for _ in range(8):
            data += rawws.encode_frame(rawws.OP_CONT, chunk, fin=False)
        data += rawws.encode_frame(rawws.OP_CONT, b'"}', fin=True)
        t = _send_in_background(r, data)
        closed = await asyncio.to_thread(r.wait_closed, 10)
        assert closed.code == 1009, closed
        t.join(10)
    finally:
        r.close()
    await w.round_trip()


async def test_two_mib_before_register_closes_1009(relay):
    w = await Witness(relay).start()
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + unique_mesh())
    try:
        t = _send_in_background(r, rawws.encode_frame(rawws.OP_TEXT, b"[" + b" " * (2 * 1024 * 1024) + b"]"))
        closed = await asyncio.to_thread(r.wait_closed, 10)
        assert closed.code == 1009, closed
        t.join(10)
    finally:
        r.close()
    await w.round_trip()


async def test_deeply_nested_json_is_bad_json_and_connection_stays(relay):
    w, peer, bad, _ = await setup_mesh(relay)
    await bad.send_raw("[" * 100000)
    await bad.expect_error("bad_json")
    await w.round_trip()
    await bad.send_raw('{"type":"broadcast","payload":' + "[" * 100000 + "]" * 100000 + "}")
    await bad.expect_error("bad_json")
    await bad.send_raw('{"type":"broadcast","payload":' + '{"a":' * 50000 + "1" + "}" * 50000 + "}")
    await bad.expect_error("bad_json")
    await w.round_trip()
    await still_usable(bad, peer)


async def test_nesting_over_64_levels_is_bad_json(relay):
    w, peer, bad, _ = await setup_mesh(relay)
    await bad.send_raw('{"type":"broadcast","payload":' + "[" * 70 + "]" * 70 + "}")
    await bad.expect_error("bad_json")
    await still_usable(bad, peer)
    # moderate nesting is relayed byte-for-byte
    payload = "[" * 30 + '{"k":"v"}' + "]" * 30
    await bad.send_raw('{"type":"broadcast","payload":' + payload + "}")
    await peer.recv()
    assert payload in peer.last_raw
    await w.round_trip()


async def test_vanished_client_without_close_frame_gives_peer_left(relay):
    w = await Witness(relay).start()
    mesh = unique_mesh()
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh)
    r.register("ghost")
    await peer.expect("peer_joined")
    r.vanish()  # TCP FIN, no close frame
    assert await peer.recv(timeout=5) == {"type": "peer_left", "node_id": "ghost"}
    await w.round_trip()


async def test_vanished_client_with_reset_gives_peer_left(relay):
    import socket
    import struct
    w = await Witness(relay).start()
    mesh = unique_mesh()
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh)
    r.register("reset")
    await peer.expect("peer_joined")
    r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    r.sock.close()  # RST
    assert await peer.recv(timeout=5) == {"type": "peer_left", "node_id": "reset"}
    await w.round_trip()


KILLED_CLIENT = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import rawws, time
    r = rawws.RawWS(sys.argv[2], int(sys.argv[3]), "/relay/" + sys.argv[4])
    r.register("doomed", ["llm"])
    print("ready", flush=True)
    time.sleep(60)
""")


async def test_killed_client_process_gives_peer_left_and_llm_peer_left(relay):
    w = await Witness(relay).start()
    mesh = unique_mesh()
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, HERE, relay.host, str(relay.port), mesh],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 10)
        assert line.strip() == "ready"
        await peer.expect("peer_joined")
        await peer.send({"type": "llm_request", "request_id": "dead", "prompt": "x"})
        await peer.ping_barrier()  # the request was routed (no no_llm_peer error)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
    t0 = time.monotonic()
    msgs = [await peer.recv(timeout=5), await peer.recv(timeout=5)]
    assert time.monotonic() - t0 < 5
    assert {"type": "peer_left", "node_id": "doomed"} in msgs, msgs
    errs = [m for m in msgs if m["type"] == "error"]
    assert len(errs) == 1
    assert_error(errs[0], "llm_peer_left", request_id="dead")
    await w.round_trip()


async def test_close_frame_with_odd_payload_is_handled(relay):
    """A close frame with a reserved code: the relay closes the connection and keeps serving."""
    w = await Witness(relay).start()
    mesh = unique_mesh()
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh)
    try:
        r.register("odd")
        await peer.expect("peer_joined")
        r.send_close(1005)  # must not appear on the wire (RFC 6455 7.4.1)
        r.wait_closed()
        assert await peer.recv() == {"type": "peer_left", "node_id": "odd"}
    finally:
        r.close()
    await w.round_trip()


async def test_unmasked_client_frame_is_rejected(relay):
    w = await Witness(relay).start()
    mesh = unique_mesh()
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh)
    try:
        r.register("nomask")
        await peer.expect("peer_joined")
        r.sock.sendall(rawws.encode_frame(rawws.OP_TEXT, b'{"type":"broadcast","payload":1}', mask=False))
        r.wait_closed()  # RFC 6455 5.1: the server must close the connection
        assert await peer.recv() == {"type": "peer_left", "node_id": "nomask"}
    finally:
        r.close()
    await w.round_trip()


async def test_every_error_has_string_code_and_message(relay):
    w, peer, bad, mesh = await setup_mesh(relay)
    u = await Client.connect(bad_side(relay), mesh)
    cases = [
        (bad, "{", "bad_json"),
        (bad, "[]", "bad_message"),
        (bad, '{"type":"nope"}', "unknown_type"),
        (u, '{"type":"broadcast"}', "not_registered"),
        (bad, '{"type":"register","node_id":"again"}', "already_registered"),
        (u, '{"type":"register","node_id":"peer","token":"other"}', "node_id_in_use"),
        (bad, '{"type":"direct","target":"nobody"}', "unknown_target"),
        (bad, '{"type":"llm_request","request_id":"x"}', "no_llm_peer"),
    ]
    for client, text, code in cases:
        await client.send_raw(text)
        err = await client.recv()
        assert list(err.keys())[:3] == ["type", "code", "message"], err
        assert_error(err, code)
    await w.round_trip()


# ---------------------------------------------------------------------------
# Duplicate member names and members per object (issue 10: a stranger's frames)
# ---------------------------------------------------------------------------

async def test_duplicate_prompt_is_bad_json_and_never_reaches_the_llm_peer(relay):
    """The attack: two "prompt"s, so the relay and an LLM peer whose parser keeps the first read
    different requests. Refused whole: the LLM peer gets nothing, the requester bad_json."""
    w = await Witness(relay).start()
    mesh = unique_mesh("dup")
    llm = await connect_registered(peer_side(relay), mesh, "llm", ["llm"])
    asker = await connect_registered(bad_side(relay), mesh, "asker")
    await llm.expect("peer_joined")
    for frame in [
        '{"type":"llm_request","request_id":"1","prompt":"A","prompt":"B"}',
        '{"type":"llm_request","request_id":"2","prompt":"A","\\u0070rompt":"B"}',
        '{"type":"chat_request","request_id":"3","messages":[{"role":"user","content":"A","content":"B"}]}',
        '{"type":"direct","target":"llm","payload":{"cmd":"safe","cmd":"rm"}}',
        '{"type":"broadcast","payload":{"n":1},"payload":{"n":2}}',
    ]:
        await asker.send_raw(frame)
        msg = await asker.expect_error("bad_json")
        assert "duplicate member name" in msg["message"], msg
    # Nothing was forwarded: the LLM peer's next message is this marker.
    await marker_barrier(asker, [llm])
    # The requester's connection keeps working, and a clean request still goes through.
    await asker.send({"type": "llm_request", "request_id": "4", "prompt": "A"})
    req = await llm.expect("llm_request")
    assert req["request_id"] == "4" and req["prompt"] == "A", req
    await w.round_trip()


def _tiny_members_frame(nested, size=1000 * 1000):
    """~1 MB of "<n>":0 members, at the top level or in the payload."""
    parts, total, i = [], 0, 0
    while total < size:
        part = '"%d":0' % i
        parts.append(part)
        total += len(part) + 1
        i += 1
    members = ",".join(parts)
    if nested:
        return '{"type":"broadcast","payload":{' + members + '}}'
    return '{"type":"broadcast",' + members + '}'


def _stream_frames(r, frames, n_frames, batch=10):
    """Sends n_frames of the pre-encoded `frames` (in turn), `batch` at a time back to back as a
    fast client would, and returns every answer."""
    answers = []
    for start in range(0, n_frames, batch):
        count = min(batch, n_frames - start)
        r.sock.sendall(b"".join(frames[i % len(frames)] for i in range(start, start + count)))
        for _ in range(count):
            answers.append(r.recv_json(timeout=60))
    return answers


async def test_megabyte_frames_of_tiny_members_are_bad_message_and_cheap(relay_factory):
    """The attack: one client streams 1 MB frames holding ~100,000 tiny members. Each used to
    cost the event loop ~7 ms of CPU (a core at 100% for a fast client); past 1,024 members
    per object the frame is refused with bad_message as soon as the bound is crossed, the
    connection stays usable, and a bystander in another mesh is answered promptly meanwhile.

    The relay's CPU is read from /proc/PID/stat. What any 1 MB frame costs to receive
    (unmasking, UTF-8 check: no JSON work) is measured first, with a frame of one long string,
    and the attack may cost little more than that. The byte-rate limit is off here: it would
    refuse most of these frames before their parse (test_trust.py covers it), and the point is
    what the parser costs."""
    relay = relay_factory("--rate-limit-bytes-per-second", "0")
    w = await Witness(relay).start()
    mesh = unique_mesh("members")
    peer = await connect_registered(peer_side(relay), mesh, "peer")
    r = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh)
    try:
        r.register("bad")
        await peer.expect("peer_joined")
        floor = [rawws.encode_frame(rawws.OP_TEXT, '{"type":"nope","x":"' + "a" * (1000 * 1000) + '"}')]
        attack = [rawws.encode_frame(rawws.OP_TEXT, _tiny_members_frame(nested)) for nested in (False, True)]
        assert all(990 * 1000 < len(f) < 1024 * 1024 for f in floor + attack)

        pid = relay.proc.pid
        sanitized = is_sanitized(pid)
        slowdown = 10 if sanitized else 1
        n_floor, n_attack = 30, 60

        cpu = cpu_seconds(pid)
        answers = await asyncio.to_thread(_stream_frames, r, floor, n_floor)
        floor_per_frame = (cpu_seconds(pid) - cpu) / n_floor
        assert {a.get("code") for a in answers} == {"unknown_type"}, answers[:3]

        latencies = []
        done = threading.Event()

        async def bystander():
            while not done.is_set():
                t = time.monotonic()
                await w.round_trip()
                latencies.append(time.monotonic() - t)
                await asyncio.sleep(0.01)

        def attack_then_done():
            try:
                return _stream_frames(r, attack, n_attack)
            finally:
                done.set()

        cpu = cpu_seconds(pid)
        wall = time.monotonic()
        answers, _ = await asyncio.gather(asyncio.to_thread(attack_then_done), bystander())
        wall = time.monotonic() - wall
        attack_per_frame = (cpu_seconds(pid) - cpu) / n_attack
        print("\nrelay CPU per 1 MB frame: %.2f ms attacking, %.2f ms for one long string "
              "(sanitized: %s); %d attacking frames in %.2f s; bystander: %d round trips, slowest %.1f ms"
              % (attack_per_frame * 1e3, floor_per_frame * 1e3, sanitized, n_attack, wall, len(latencies),
                 max(latencies) * 1e3))
        for a in answers:
            assert_error(a, "bad_message")
            assert "more than 1024 members" in a["message"], a
        # A full read of such a frame was ~7 ms on top of receiving it.
        assert attack_per_frame < 0.007 * slowdown, attack_per_frame
        assert attack_per_frame < 1.5 * floor_per_frame + 0.001 * slowdown, (attack_per_frame, floor_per_frame)
        assert latencies and max(latencies) < 0.25 * slowdown, latencies

        # The connection stays usable.
        r.send_json({"type": "direct", "target": "peer", "payload": "ok"})
        assert await peer.recv() == {"type": "message", "from": "bad", "payload": "ok"}
    finally:
        r.close()
    await w.round_trip()
