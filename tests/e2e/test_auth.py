"""Mesh authentication (auth_spec.md): open meshes, token-bound meshes with a binding grace,
signed meshes (register_mesh + Ed25519 join tokens), takeover per level, and the auth counters
in /stats. Signatures are made with Python's `cryptography` (signing.py), never the relay's code.
After every rejection another client in another mesh must still be served."""

import asyncio
import json
import time
import urllib.parse
import uuid

import pytest
import websockets

import rawws
import signing
from relayclient import (Client, assert_error, assert_served_elsewhere, connect_registered, expect_refused,
                         marker_barrier, mesh_of, unique_mesh)
from signing import (ABSENT, FAR_FUTURE, NOW, SOON, Key, b64, found, join, make_token, refused, reg, register_mesh_msg,
                     stats, mesh_ids, wait_auth_counts, wait_mesh_gone)

SPREAD_OVER_CLUSTER = True

# ---------------------------------------------------------------------------
# The test's own signer (no relay): pinned to the spec's bytes and to RFC 8032
# ---------------------------------------------------------------------------

def test_signing_helper_canonical_bytes_and_rfc8032_vector():
    got = signing.canonical_bytes("café", "nœud", 1764120000.5, 4102444800, ["llm", "chat"], "émetteur-😀", "n1")
    assert got == (b'{"capabilities":["chat","llm"],"expires_at":4102444800,"issued_at":1764120000.5,'
                   b'"issuer_id":"\\u00e9metteur-\\ud83d\\ude00","mesh_id":"caf\\u00e9","node_id":"n\\u0153ud",'
                   b'"nonce":"n1"}')
    # RFC 8032 section 7.1, TEST 1 (empty message)
    k = Key(seed=bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    assert k.public_bytes.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert k.sign(b"").hex() == ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                                 "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


# ---------------------------------------------------------------------------
# Fresh relay: the new counters exist
# ---------------------------------------------------------------------------

def test_stats_list_new_error_codes_and_close_reasons(relay):
    s = stats(relay)
    for code in ("auth_failed", "rate_limited", "mesh_full"):
        assert s["errors"].get(code) == 0, s["errors"]
    for reason in ("auth_failed", "rate_limited"):
        assert s["closes"].get(reason) == 0, s["closes"]


# ---------------------------------------------------------------------------
# Open meshes
# ---------------------------------------------------------------------------

async def test_open_mesh_seed_wscat_flow_unchanged(relay):
    mesh = unique_mesh("test-mesh")
    mac = await Client.connect(relay, mesh)
    await mac.send_raw('{"type":"register","node_id":"mac-1","capabilities":["llm"]}')
    assert await mac.recv() == {"type": "joined", "mesh_id": mesh, "node_count": 1}
    assert await mac.recv() == {"type": "peers", "peers": []}
    android = await Client.connect(relay, mesh)
    await android.send_raw('{"type":"register","node_id":"android-1","capabilities":[]}')
    assert await android.recv() == {"type": "joined", "mesh_id": mesh, "node_count": 2}
    assert (await android.expect("peers"))["peers"][0]["node_id"] == "mac-1"
    assert await mac.recv() == {"type": "peer_joined", "node_id": "android-1", "name": "android-",
                                "capabilities": []}
    await android.send_raw('{"type":"llm_request","request_id":"1","prompt":"Hello!"}')
    assert await mac.recv() == {"type": "llm_request", "from": "android-1", "request_id": "1", "prompt": "Hello!",
                                "messages": [{"role": "user", "content": "Hello!"}]}
    await mac.send_raw('{"type":"llm_response","target":"android-1","request_id":"1","response":"Hi there!"}')
    assert await android.recv() == {"type": "llm_response", "from": "mac-1", "request_id": "1",
                                    "response": "Hi there!"}
    s = stats(relay)
    assert s["errors"]["auth_failed"] == 0 and s["closes"]["auth_failed"] == 0


@pytest.mark.parametrize("first_token", [ABSENT, None, ""], ids=["absent", "null", "empty"])
async def test_open_mesh_ignores_later_string_tokens(relay, first_token):
    mesh = unique_mesh("open")
    first = await Client.connect(relay, mesh)
    await first.send(reg("first", token=first_token))
    await first.expect("joined")
    await first.expect("peers")
    first.node_id = "first"
    later = []
    for i, tok in enumerate(["abc", "xyz", None, ""]):
        c, joined, _ = await join(relay, mesh, "later-%d" % i, tok, type="register")
        assert joined["node_count"] == 2 + i
        for earlier in [first] + later:
            assert (await earlier.expect("peer_joined"))["node_id"] == "later-%d" % i
        later.append(c)
    # the mesh stays open while it lives, even when only token senders are left
    await first.close()
    for c in later:
        assert await c.recv() == {"type": "peer_left", "node_id": "first"}
    c, joined, _ = await join(relay, mesh, "late-no-token", ABSENT, type="register")
    assert joined["node_count"] == 5
    for earlier in later:
        await earlier.expect("peer_joined")
    c2, joined, _ = await join(relay, mesh, "late-other-token", "something-else")
    assert joined["node_count"] == 6
    for earlier in later + [c]:
        await earlier.expect("peer_joined")
    await marker_barrier(c2, later + [c])
    s = stats(relay)
    assert s["errors"]["auth_failed"] == 0 and s["closes"]["auth_failed"] == 0


async def test_emptied_open_mesh_leaves_no_binding(relay):
    mesh = unique_mesh("open")
    a = await connect_registered(relay, mesh, "a")
    await a.close()
    await wait_mesh_gone(relay, mesh)
    # free again: a token now binds it
    b, joined, _ = await join(relay, mesh, "b", "bind-now", type="register")
    assert joined["node_count"] == 1
    await refused(relay, mesh, reg("c"))
    await b.ping_barrier()


@pytest.mark.one_instance("reads one process's /stats auth_failed counters (signing.wait_auth_counts)")
async def test_token_object_on_unsigned_mesh_refused(relay):
    key = Key()
    # mesh that does not exist
    mesh = unique_mesh("nosuch")
    await refused(relay, mesh, reg("n", make_token(key, mesh), type="join"))
    # an open mesh with a live peer
    mesh2 = unique_mesh("open")
    live = await connect_registered(relay, mesh2, "live")
    await refused(relay, mesh2, reg("n", make_token(key, mesh2, node_id="n"), type="join"))
    await live.ping_barrier()  # saw nothing (no peer_joined / peer_left)
    # a token-bound mesh
    mesh3 = unique_mesh("bound")
    bound = await connect_registered(relay, mesh3, "b", token="tb")
    await refused(relay, mesh3, reg("n", make_token(key, mesh3), type="join"))
    await bound.ping_barrier()
    await wait_auth_counts(relay, 3)


# ---------------------------------------------------------------------------
# Token-bound meshes
# ---------------------------------------------------------------------------

@pytest.mark.one_instance("counts one process's connections on /health")
async def test_token_bound_mesh_same_token_joins_others_refused(relay):
    mesh = unique_mesh("bound")
    a = await connect_registered(relay, mesh, "a", ["llm"], token="s3cret")
    b, joined, peers = await join(relay, mesh, "b", "s3cret", node_name="Bee")
    assert joined == {"type": "joined", "mesh_id": mesh, "node_count": 2}
    assert [p["node_id"] for p in peers["peers"]] == ["a"]
    assert await a.recv() == {"type": "peer_joined", "node_id": "b", "name": "Bee", "capabilities": ["chat"]}

    bad = [reg("c", "other"), reg("c", "s3cret "), reg("c", "S3CRET"), reg("c"), reg("c", None), reg("c", ""),
           reg("c", "other", type="join")]
    for msg in bad:
        err = await refused(relay, mesh, msg)
        assert "s3cret" not in err["message"]
    # the members saw none of it
    await marker_barrier(a, [b])
    await a.ping_barrier()
    await b.ping_barrier()
    assert relay.get_json("/health")["connections"] == 2
    await wait_auth_counts(relay, len(bad))


async def test_messages_pipelined_behind_a_checked_registration_all_arrive_in_order(relay):
    """A client joining a token-bound mesh writes its messages right behind the register, without
    waiting for `joined`. However long the relay takes to check the token (with a cluster's shared
    store, a NATS round trip), every message is handled after the join, in order, and none is
    refused: the relay stops reading the client meanwhile instead of refusing the excess."""
    mesh = unique_mesh("bound")
    a = await connect_registered(relay, mesh, "a", token="s3cret")
    c = await Client.connect(relay, mesh, label="pipeliner")
    await c.send(reg("c", "s3cret"))
    count = 600
    for i in range(count):
        await c.send_raw(json.dumps({"type": "direct", "target": "a", "payload": {"i": i, "pad": "p" * 60}}))
    assert (await c.recv())["type"] == "joined"
    assert (await c.recv())["type"] == "peers"
    await a.expect("peer_joined")
    got = [(await a.expect("message"))["payload"]["i"] for _ in range(count)]
    assert got == list(range(count))
    await c.ping_barrier()  # nothing else came to c: no error for any of them
    await assert_served_elsewhere(relay)


async def test_refused_client_still_writing_gets_the_error_and_the_close(relay):
    """A client that pipelines messages behind a refused register is still writing when the relay
    closes it: the close must arrive as 1008, not as a connection reset that drops the error."""
    mesh = unique_mesh("bound")
    a = await connect_registered(relay, mesh, "a", token="s3cret")
    flood = [json.dumps({"type": "broadcast", "payload": "x" * 1000})] * 2000
    for attempt in range(5):
        c = await Client.connect(relay, mesh, label="pipelined-%d" % attempt)
        await c.send(reg("c", "wrong"))
        try:
            for m in flood:
                await c.send_raw(m)
        except websockets.ConnectionClosed:
            pass
        await expect_refused(c, "auth_failed")
    # a saw none of it
    await a.ping_barrier()
    await wait_auth_counts(relay, 5)
    await assert_served_elsewhere(relay)


@pytest.mark.one_instance("reads one process's /stats auth_failed counters (signing.wait_auth_counts)")
async def test_token_binding_outlives_last_peer(relay):
    mesh = unique_mesh("bound")
    a = await connect_registered(relay, mesh, "a", token="keep-me")
    await a.close()
    await wait_mesh_gone(relay, mesh)
    key = Key()
    for msg in [reg("x", "other"), reg("x"), reg("x", None), reg("a", "other"),
                register_mesh_msg(mesh, key, "x"), reg("x", make_token(key, mesh), type="join")]:
        await refused(relay, mesh, msg)
    # the same token re-creates the mesh
    c, joined, peers = await join(relay, mesh, "c", "keep-me", type="register")
    assert joined == {"type": "joined", "mesh_id": mesh, "node_count": 1} and peers["peers"] == []
    d, joined, _ = await join(relay, mesh, "d", "keep-me")
    assert joined["node_count"] == 2
    await c.expect("peer_joined")
    await refused(relay, mesh, reg("e", "nope"))
    await marker_barrier(d, [c])
    await wait_auth_counts(relay, 7)


async def test_register_mesh_on_live_token_bound_mesh_refused(relay):
    mesh = unique_mesh("bound")
    a = await connect_registered(relay, mesh, "a", token="tb")
    await refused(relay, mesh, register_mesh_msg(mesh, Key(), "f"))
    await a.ping_barrier()
    b, joined, _ = await join(relay, mesh, "b", "tb")
    assert joined["node_count"] == 2


async def test_short_binding_grace_frees_mesh_id(relay_factory):
    relay = relay_factory("--mesh-binding-grace-seconds", "1")
    mesh = unique_mesh("grace")
    a = await connect_registered(relay, mesh, "a", token="old")
    t0 = time.monotonic()
    await a.close()
    await wait_mesh_gone(relay, mesh)
    refusals = 0
    deadline = t0 + 15
    while True:
        assert time.monotonic() < deadline, "binding not freed 15 s after the last peer left (grace 1 s)"
        c = await Client.connect(relay, mesh)
        await c.send(reg("b", "new"))
        msg = await c.recv()
        if msg["type"] == "joined":
            break
        assert_error(msg, "auth_failed")
        assert await c.expect_closed() == (1008, "auth failed")
        refusals += 1
        await asyncio.sleep(0.05)  # polling interval between attempts
    elapsed = time.monotonic() - t0
    assert refusals >= 1, "a registrant with another token was accepted right after the mesh emptied"
    assert elapsed >= 0.9, "binding freed after %.2f s, grace is 1 s" % elapsed
    assert msg == {"type": "joined", "mesh_id": mesh, "node_count": 1}
    await c.expect("peers")
    # now bound to the new token
    await refused(relay, mesh, reg("z", "old"))
    d, joined, _ = await join(relay, mesh, "d", "new")
    assert joined["node_count"] == 2


# ---------------------------------------------------------------------------
# Signed meshes: register_mesh
# ---------------------------------------------------------------------------

async def test_register_mesh_then_member_joins(relay):
    mesh = "café-メッシュ-" + uuid.uuid4().hex[:8]  # non-ASCII: proof over UTF-8, \\u escapes in the token
    key = Key()
    f, joined = await found(relay, mesh, key, capabilities=["llm"], name="Founder")
    assert joined == {"type": "joined", "mesh_id": mesh, "node_count": 1}
    tok = make_token(key, mesh, node_id="nœud-ü", issued_at=NOW + 0.5, expires_at=SOON,
                     capabilities=["llm", "chat", "admin"], issuer_id="émetteur-東京")
    m, joined, peers = await join(relay, mesh, "nœud-ü", tok, capabilities=["chat"], node_name="Member")
    assert joined == {"type": "joined", "mesh_id": mesh, "node_count": 2}
    # ("name" in register_mesh may name the mesh, as in the seed server: the founder's display name is not checked)
    assert [(p["node_id"], p["capabilities"]) for p in peers["peers"]] == [("founder", ["llm"])]
    assert await f.recv() == {"type": "peer_joined", "node_id": "nœud-ü", "name": "Member", "capabilities": ["chat"]}
    await marker_barrier(m, [f])
    await m.send({"type": "llm_request", "request_id": 7, "prompt": "hi"})
    assert (await f.expect("llm_request"))["from"] == "nœud-ü"
    assert mesh in mesh_ids(relay)
    # a signed mesh refuses plain registrants
    await refused(relay, mesh, reg("plain"))
    await f.ping_barrier()
    await m.ping_barrier()


TOKEN_SHAPES = {
    "float_issued_int_expires": dict(issued_at=NOW + 0.5, expires_at=SOON),
    "int_issued_float_expires": dict(issued_at=NOW, expires_at=SOON + 0.25),
    "time_time_floats": dict(issued_at=NOW + 0.123456, expires_at=SOON + 0.654321),
    "integral_float": dict(issued_at=float(NOW), expires_at=float(SOON)),
    "issued_at_null": dict(issued_at=None),
    "node_id_null": dict(node_id=None),
    "no_capabilities_member": dict(omit_capabilities=True),
    "empty_capabilities": dict(capabilities=[]),
    "unsorted_capabilities": dict(capabilities=["zeta", "llm", "chat", "Alpha"]),
    "non_ascii_capabilities": dict(capabilities=["zeta", "äpfel", "Zeta", "émoji-😀", "a"]),
    "duplicate_capabilities": dict(capabilities=["llm", "chat", "llm"]),
    "non_ascii_ids": dict(issuer_id="émetteur-東京", nonce="nonce-ß-" + uuid.uuid4().hex),
    "astral_ids": dict(issuer_id="issuer-😀", nonce="😀" + uuid.uuid4().hex),
    "escape_quote_backslash_slash": dict(issuer_id='q"b\\s/<>&\''),
    "escape_short_forms": dict(issuer_id="t\tn\nr\rb\bf\f"),
    "escape_control_u0001": dict(issuer_id="c\x01\x1f"),
    "escape_del_u007f": dict(issuer_id="d\x7f"),
    "escape_u2028": dict(nonce="n\u2028" + uuid.uuid4().hex),
}


@pytest.mark.parametrize("shape", list(TOKEN_SHAPES))
@pytest.mark.parametrize("msg_type", ["join", "register"])
async def test_valid_token_shapes_join(relay, shape, msg_type):
    mesh = unique_mesh("signed")
    key = Key()
    f, _ = await found(relay, mesh, key)
    node_id = "nœud-Ünï-😀" if shape in ("non_ascii_ids", "astral_ids") else "member"
    kw = dict(TOKEN_SHAPES[shape])
    kw.setdefault("node_id", node_id)
    tok = make_token(key, mesh, **kw)
    m, joined, _ = await join(relay, mesh, node_id, tok, type=msg_type, capabilities=["chat"])
    assert joined["node_count"] == 2
    pj = await f.expect("peer_joined")
    assert pj["node_id"] == node_id
    await marker_barrier(f, [m])
    assert stats(relay)["errors"]["auth_failed"] == 0


@pytest.mark.parametrize("case", ["missing_mesh_public_key", "missing_founder_proof", "missing_mesh_id",
                                  "missing_node_id", "mesh_public_key_number", "founder_proof_null",
                                  "founder_proof_array", "mesh_id_number", "node_public_key_number",
                                  "capabilities_string"])
async def test_register_mesh_malformed_is_bad_message(relay, case):
    mesh = unique_mesh("signed")
    key = Key()
    overrides = {
        "missing_mesh_public_key": {"mesh_public_key": ABSENT},
        "missing_founder_proof": {"founder_proof": ABSENT},
        "missing_mesh_id": {"mesh_id": ABSENT},
        "missing_node_id": {"node_id": ABSENT},
        "mesh_public_key_number": {"mesh_public_key": 12345},
        "founder_proof_null": {"founder_proof": None},
        "founder_proof_array": {"founder_proof": ["x"]},
        "mesh_id_number": {"mesh_id": 7},
        "node_public_key_number": {"node_public_key": 7},
        "capabilities_string": {"capabilities": "llm"},
    }[case]
    c = await Client.connect(relay, mesh)
    await c.send(register_mesh_msg(mesh, key, "f", after=overrides))
    await c.expect_error("bad_message")
    # still open and unregistered
    await c.send({"type": "ping"})
    await c.expect_error("not_registered")
    await assert_served_elsewhere(relay)
    # the same connection may then found the mesh properly
    await c.send(register_mesh_msg(mesh, key, "f"))
    assert await c.recv() == {"type": "mesh_registered", "mesh_id": mesh, "success": True}
    await c.expect("joined")
    await c.expect("peers")
    assert stats(relay)["errors"]["auth_failed"] == 0


def _bad_register_mesh(case, mesh, key):
    other = Key()
    node = Key()
    if case == "proof_over_other_bytes":
        return register_mesh_msg(mesh, key, "f", founder_proof=key.sign_b64((mesh + "x").encode()))
    if case == "proof_over_percent_encoded_id":
        return register_mesh_msg(mesh, key, "f",
                                 founder_proof=key.sign_b64(urllib.parse.quote(mesh, safe="").encode()))
    if case == "proof_by_other_key":
        return register_mesh_msg(mesh, key, "f", proof_key=other)
    if case == "proof_bad_base64":
        return register_mesh_msg(mesh, key, "f", founder_proof="!!not*base64!!")
    if case == "proof_wrong_length":
        return register_mesh_msg(mesh, key, "f", founder_proof=b64(key.sign(mesh.encode())[:63]))
    if case == "proof_empty":
        return register_mesh_msg(mesh, key, "f", founder_proof="")
    if case == "mesh_key_bad_base64":
        return register_mesh_msg(mesh, key, "f", mesh_public_key="%%%")
    if case == "mesh_key_31_bytes":
        return register_mesh_msg(mesh, key, "f", mesh_public_key=b64(key.public_bytes[:31]))
    if case == "mesh_key_33_bytes":
        return register_mesh_msg(mesh, key, "f", mesh_public_key=b64(key.public_bytes + b"\0"))
    if case == "node_key_given_proof_by_mesh_key":
        return register_mesh_msg(mesh, key, "f", proof_key=key, node_public_key=node.public_b64)
    if case == "node_key_wrong_length":
        return register_mesh_msg(mesh, key, "f", proof_key=node, node_public_key=b64(node.public_bytes[:16]))
    raise AssertionError(case)


BAD_REGISTER_MESH = ["proof_over_other_bytes", "proof_over_percent_encoded_id", "proof_by_other_key",
                     "proof_bad_base64", "proof_wrong_length", "proof_empty", "mesh_key_bad_base64",
                     "mesh_key_31_bytes", "mesh_key_33_bytes", "node_key_given_proof_by_mesh_key",
                     "node_key_wrong_length"]


@pytest.mark.parametrize("case", BAD_REGISTER_MESH)
async def test_register_mesh_bad_founder_proof_refused(relay, case):
    mesh = "signé-" + uuid.uuid4().hex[:8]
    key = Key()
    await refused(relay, mesh, _bad_register_mesh(case, mesh, key))
    await wait_auth_counts(relay, 1)
    # nothing was stored: the mesh is not signed, a real founder (with any key) can take it
    f, joined = await found(relay, mesh, Key())
    assert joined["node_count"] == 1


async def test_register_mesh_with_node_public_key(relay):
    mesh = unique_mesh("signed")
    key, node = Key(), Key()
    f, _ = await found(relay, mesh, key, node_key=node)
    # tokens are still signed by the MESH key; the founder's node key is not a mesh key
    m, joined, _ = await join(relay, mesh, "m", make_token(key, mesh, node_id="m"))
    assert joined["node_count"] == 2
    await f.expect("peer_joined")
    await refused(relay, mesh, reg("x", make_token(node, mesh, node_id="x"), type="join"))
    await marker_barrier(m, [f])


async def test_register_mesh_for_other_mesh_than_url_refused(relay):
    url_mesh, other_mesh = unique_mesh("url"), unique_mesh("other")
    key = Key()
    await refused(relay, url_mesh, register_mesh_msg(other_mesh, key, "f"))
    await wait_auth_counts(relay, 1)
    # neither mesh became signed: plain registrants open them
    for mesh in (url_mesh, other_mesh):
        c = await connect_registered(relay, mesh, "plain")
        await c.ping_barrier()


@pytest.mark.one_instance("reads one process's /stats auth_failed counters (signing.wait_auth_counts)")
async def test_founder_rejoin_same_key_ok_other_key_refused(relay):
    mesh = unique_mesh("signed")
    key = Key()
    f, _ = await found(relay, mesh, key)
    await f.close()
    await wait_mesh_gone(relay, mesh)
    # the signed mesh outlives its peers: another key is refused, and so is a bare node_id
    other = Key()
    await refused(relay, mesh, register_mesh_msg(mesh, other, "founder"))
    await refused(relay, mesh, register_mesh_msg(mesh, other, "someone"))
    await refused(relay, mesh, reg("founder"))
    await refused(relay, mesh, reg("founder", type="join", token="founder"))
    # same mesh key, proof by another key
    await refused(relay, mesh, register_mesh_msg(mesh, key, "founder", proof_key=other))
    # the founder proving the same key again
    f2, joined = await found(relay, mesh, key)
    assert joined["node_count"] == 1
    # while it is live, another key is still refused
    await refused(relay, mesh, register_mesh_msg(mesh, other, "intruder"))
    await f2.ping_barrier()
    await wait_auth_counts(relay, 6)


@pytest.mark.one_instance("reads one process's /stats auth_failed counters (signing.wait_auth_counts)")
async def test_unknown_node_key_cannot_reprove_a_signed_mesh(relay):
    """The mesh public key is public: proving with an arbitrary node key of one's own (node_public_key)
    must not pass as the founder proving the mesh key again."""
    mesh = unique_mesh("signed")
    key, node = Key(), Key()
    f, _ = await found(relay, mesh, key, node_key=node)
    attacker = Key()
    await refused(relay, mesh, register_mesh_msg(mesh, key, "founder", node_key=attacker))
    await refused(relay, mesh, register_mesh_msg(mesh, key, "intruder", node_key=attacker))
    await f.ping_barrier()
    await wait_auth_counts(relay, 2)


async def test_register_mesh_on_a_live_open_mesh_is_refused(relay):
    # A stranger who learnt the id must not lock the family out under the stranger's own key.
    mesh = unique_mesh("open")
    p1, p2 = await mesh_of(relay, mesh, [("p1", []), ("p2", ["llm"])])
    key = Key()
    err = await refused(relay, mesh, register_mesh_msg(mesh, key, "founder"))
    assert "live and open" in err["message"], err
    # still open: plain registrants join, live peers saw nothing
    await marker_barrier(p1, [p2])
    p3 = await connect_registered(relay, mesh, "p3")
    for p in (p1, p2):
        assert (await p.expect("peer_joined"))["node_id"] == "p3"
    # once empty the id is free, and may be signed
    for p in (p1, p2, p3):
        await p.close()
    await wait_mesh_gone(relay, mesh)
    f, joined = await found(relay, mesh, key)
    assert joined["node_count"] == 1


async def test_signed_mesh_outlives_peers_member_joins_without_founder(relay):
    mesh = unique_mesh("signed")
    key = Key()
    f, _ = await found(relay, mesh, key)
    await f.close()
    await wait_mesh_gone(relay, mesh)
    m, joined, peers = await join(relay, mesh, "m", make_token(key, mesh))
    assert joined["node_count"] == 1 and peers["peers"] == []
    await refused(relay, mesh, reg("plain"))
    await m.ping_barrier()


# ---------------------------------------------------------------------------
# Signed meshes: join tokens that must be refused
# ---------------------------------------------------------------------------

def _tampered(key, mesh, node, **after):
    tok = make_token(key, mesh, node_id=node, capabilities=["chat"])
    tok.update(after)
    return tok


BAD_JOINS = {
    "expired_int": lambda k, m, n: make_token(k, m, node_id=n, expires_at=int(time.time()) - 5),
    "expired_float": lambda k, m, n: make_token(k, m, node_id=n, expires_at=time.time() - 2.5),
    "tampered_capabilities": lambda k, m, n: _tampered(k, m, n, capabilities=["chat", "llm"]),
    "tampered_expires_at": lambda k, m, n: _tampered(k, m, n, expires_at=SOON + 60),
    "tampered_issued_at": lambda k, m, n: _tampered(k, m, n, issued_at=1.5),
    "tampered_issuer_id": lambda k, m, n: _tampered(k, m, n, issuer_id="issuer-2"),
    "tampered_nonce": lambda k, m, n: _tampered(k, m, n, nonce="other-nonce"),
    "tampered_node_id_null": lambda k, m, n: _tampered(k, m, n, node_id=None),
    "wrong_node_binding": lambda k, m, n: make_token(k, m, node_id=n + "-other"),
    "token_for_other_mesh_same_key": lambda k, m, n: make_token(k, m + "-other", node_id=n),
    "signed_by_non_mesh_key": lambda k, m, n: make_token(Key(), m, node_id=n),
    "signature_over_unsorted_caps": lambda k, m, n: dict(
        make_token(k, m, node_id=n, capabilities=["b", "a"]),
        signature=k.sign_b64(json.dumps({"capabilities": ["b", "a"], "expires_at": SOON, "issued_at": NOW,
                                         "issuer_id": "i", "mesh_id": m, "node_id": n, "nonce": "nn"},
                                        sort_keys=True, separators=(",", ":")).encode()),
        expires_at=SOON, issued_at=NOW, issuer_id="i", nonce="nn"),
    "signature_bad_base64": lambda k, m, n: make_token(k, m, node_id=n, signature="@@not base64@@"),
    "signature_63_bytes": lambda k, m, n: dict(make_token(k, m, node_id=n), signature=b64(b"\1" * 63)),
    "signature_empty": lambda k, m, n: make_token(k, m, node_id=n, signature=""),
    # Bounded state (issue 10): a nonce of 129 bytes, a token valid until 2100 or for 31 days.
    "nonce_over_128_bytes": lambda k, m, n: make_token(k, m, node_id=n, nonce="n" * 129),
    "nonce_900_kb": lambda k, m, n: make_token(k, m, node_id=n, nonce="n" * 900_000),
    "expires_in_2100": lambda k, m, n: make_token(k, m, node_id=n, expires_at=FAR_FUTURE),
    "lifetime_31_days_from_issue": lambda k, m, n: make_token(k, m, node_id=n, issued_at=NOW + 86400,
                                                              expires_at=NOW + 32 * 86400),
    "missing_mesh_id": lambda k, m, n: make_token(k, m, node_id=n, after={"mesh_id": ABSENT}),
    "missing_nonce": lambda k, m, n: make_token(k, m, node_id=n, after={"nonce": ABSENT}),
    "missing_signature": lambda k, m, n: make_token(k, m, node_id=n, signature=ABSENT),
    "missing_issuer_id": lambda k, m, n: make_token(k, m, node_id=n, after={"issuer_id": ABSENT}),
    "empty_token_object": lambda k, m, n: {},
    "string_token": lambda k, m, n: "some-string-token",
    "null_token": lambda k, m, n: None,
    "empty_string_token": lambda k, m, n: "",
    "no_token": lambda k, m, n: ABSENT,
}


@pytest.mark.one_instance("reads one process's /stats auth_failed counters (signing.wait_auth_counts)")
@pytest.mark.parametrize("case", list(BAD_JOINS))
async def test_signed_mesh_refuses_bad_join(relay, case):
    mesh = "signé-" + uuid.uuid4().hex[:8]
    key = Key()
    f, _ = await found(relay, mesh, key)
    node = "joiner"
    tok = BAD_JOINS[case](key, mesh, node)
    await refused(relay, mesh, reg(node, tok, type="join", capabilities=["chat"]))
    await f.ping_barrier()  # no peer_joined / peer_left leaked to the members
    await wait_auth_counts(relay, 1)
    # a good token still works afterwards
    m, joined, _ = await join(relay, mesh, node, make_token(key, mesh, node_id=node))
    assert joined["node_count"] == 2
    await f.expect("peer_joined")


async def test_token_of_another_signed_mesh_refused(relay):
    mesh, mesh2 = unique_mesh("signed"), unique_mesh("signed2")
    key, key2 = Key(), Key()
    f, _ = await found(relay, mesh, key)
    f2, _ = await found(relay, mesh2, key2)
    tok2 = make_token(key2, mesh2, node_id="j")
    await refused(relay, mesh, reg("j", tok2, type="join"))
    # the same token is fine where it belongs (its nonce was not consumed by the refusal)
    j, joined, _ = await join(relay, mesh2, "j", tok2)
    assert joined["node_count"] == 2
    await f2.expect("peer_joined")
    await f.ping_barrier()


@pytest.mark.one_instance("reads one process's /stats auth_failed counters (signing.wait_auth_counts)")
async def test_nonce_replay_by_other_node_refused_same_node_reconnect_ok(relay):
    mesh = unique_mesh("signed")
    key = Key()
    f, _ = await found(relay, mesh, key)
    shared = make_token(key, mesh, node_id=None, nonce="nonce-1")
    alice, _, _ = await join(relay, mesh, "alice", shared)
    await f.expect("peer_joined")
    # another node replaying the token, or a new token reusing the nonce
    await refused(relay, mesh, reg("bob", shared, type="join"))
    await refused(relay, mesh, reg("bob", make_token(key, mesh, node_id="bob", nonce="nonce-1"), type="join"))
    await f.ping_barrier()
    await alice.ping_barrier()
    # alice reconnects with the same token (after leaving): accepted
    await alice.close()
    assert await f.recv() == {"type": "peer_left", "node_id": "alice"}
    alice2, joined, _ = await join(relay, mesh, "alice", shared)
    assert joined["node_count"] == 2
    assert (await f.expect("peer_joined"))["node_id"] == "alice"
    # a node-bound token: the same node reconnecting with it is fine
    carol_tok = make_token(key, mesh, node_id="carol", nonce="nonce-3")
    carol, _, _ = await join(relay, mesh, "carol", carol_tok)
    await f.expect("peer_joined")
    await alice2.expect("peer_joined")
    await carol.close()
    await f.expect("peer_left")
    await alice2.expect("peer_left")
    carol2, joined, _ = await join(relay, mesh, "carol", carol_tok)
    assert joined["node_count"] == 3
    # bob with a fresh nonce is fine
    bob, joined, _ = await join(relay, mesh, "bob", make_token(key, mesh, node_id="bob"))
    assert joined["node_count"] == 4
    await wait_auth_counts(relay, 2)


# ---------------------------------------------------------------------------
# node_id takeover per level
# ---------------------------------------------------------------------------

async def test_takeover_open_mesh(relay):
    # An open mesh's credentials prove nothing: the id moves only when its holder is gone (here
    # a socket that stopped reading, so it never answers the relay's probe).
    mesh = unique_mesh("open")
    other = await connect_registered(relay, mesh, "o")
    old = rawws.RawWS(relay.host, relay.port, "/relay/" + mesh, auto_pong=False)
    old.register("n")
    assert (await other.recv())["node_id"] == "n"
    new = await Client.connect(relay, mesh)
    await new.send(reg("n"))
    assert (await new.expect("joined", timeout=10))["node_count"] == 2
    await new.expect("peers")
    new.node_id = "n"
    assert (await other.recv())["type"] == "peer_joined"
    await marker_barrier(new, [other])
    closed = old.wait_closed()
    assert (closed.code, closed.reason) == (1000, "replaced"), closed
    # a live holder keeps its id: the same (empty) credentials prove nothing
    intruder = await Client.connect(relay, mesh)
    await intruder.send(reg("n"))
    await intruder.expect_error("node_id_in_use", timeout=10)
    # with a token while the holder had none: node_id_in_use at once
    await intruder.send(reg("n", "tok"))
    await intruder.expect_error("node_id_in_use")
    await intruder.send({"type": "ping"})
    await intruder.expect_error("not_registered")
    await marker_barrier(new, [other])
    await assert_served_elsewhere(relay)


async def test_takeover_token_bound_mesh(relay):
    mesh = unique_mesh("bound")
    old = await connect_registered(relay, mesh, "n", token="tb")
    other = await connect_registered(relay, mesh, "o", token="tb")
    await old.expect("peer_joined")
    new = await Client.connect(relay, mesh)
    await new.register("n", token="tb")
    assert await old.expect_closed() == (1000, "replaced")
    assert (await other.recv())["type"] == "peer_joined"
    await marker_barrier(new, [other])
    # another token cannot even try: auth_failed, and the holder keeps working
    await refused(relay, mesh, reg("n", "other"))
    await marker_barrier(new, [other])


async def test_takeover_signed_mesh_with_node_bound_token(relay):
    mesh = unique_mesh("signed")
    key = Key()
    f, _ = await found(relay, mesh, key)
    tok = make_token(key, mesh, node_id="n")
    old, _, _ = await join(relay, mesh, "n", tok)
    await f.expect("peer_joined")
    # the same token again (a reconnect before the old socket timed out)
    new, _, _ = await join(relay, mesh, "n", tok)
    assert await old.expect_closed() == (1000, "replaced")
    assert (await f.recv())["type"] == "peer_joined"
    await marker_barrier(new, [f])
    # a fresh token bound to n also takes over
    new2, _, _ = await join(relay, mesh, "n", make_token(key, mesh, node_id="n"))
    assert await new.expect_closed() == (1000, "replaced")
    assert (await f.recv())["type"] == "peer_joined"
    await marker_barrier(new2, [f])


async def test_takeover_signed_mesh_unbound_token_is_node_id_in_use(relay):
    mesh = unique_mesh("signed")
    key = Key()
    f, _ = await found(relay, mesh, key)
    tok = make_token(key, mesh, node_id=None)
    holder, _, _ = await join(relay, mesh, "n", tok)
    await f.expect("peer_joined")
    for t in (tok, make_token(key, mesh, node_id=None)):
        c = await Client.connect(relay, mesh)
        await c.send(reg("n", t, type="join"))
        await c.expect_error("node_id_in_use")
        await c.send({"type": "ping"})
        await c.expect_error("not_registered")
        await marker_barrier(holder, [f])
        await assert_served_elsewhere(relay)


async def test_takeover_signed_mesh_founder_reproves(relay):
    mesh = unique_mesh("signed")
    key = Key()
    f, _ = await found(relay, mesh, key)
    m, _, _ = await join(relay, mesh, "m", make_token(key, mesh, node_id="m"))
    await f.expect("peer_joined")
    f2, joined = await found(relay, mesh, key, expect_peers=["m"])
    assert joined["node_count"] == 2
    assert await f.expect_closed() == (1000, "replaced")
    assert (await m.recv())["node_id"] == "founder"
    await marker_barrier(f2, [m])
    # the founder's node_id with a member token not bound to it: node_id_in_use
    c = await Client.connect(relay, mesh)
    await c.send(reg("founder", make_token(key, mesh, node_id=None), type="join"))
    await c.expect_error("node_id_in_use")
    await marker_barrier(f2, [m])


# ---------------------------------------------------------------------------
# /stats counts auth failures
# ---------------------------------------------------------------------------

@pytest.mark.one_instance("reads one process's /stats counters")
async def test_stats_count_every_auth_failure(relay):
    key = Key()
    bound = unique_mesh("bound")
    signed = unique_mesh("signed")
    keep = await connect_registered(relay, bound, "a", token="t")
    f, _ = await found(relay, signed, key)
    await refused(relay, bound, reg("b", "u"))
    await refused(relay, bound, reg("b"))
    await refused(relay, signed, reg("b"))
    await refused(relay, signed, reg("b", make_token(Key(), signed), type="join"))
    await refused(relay, signed, register_mesh_msg(signed, Key(), "x"))
    await refused(relay, unique_mesh("x"), register_mesh_msg("not-the-url", key, "x"))
    await wait_auth_counts(relay, 6)
    s = stats(relay)
    assert s["errors"]["rate_limited"] == 0 and s["errors"]["mesh_full"] == 0
    assert s["closes"]["rate_limited"] == 0
    await keep.ping_barrier()
    await f.ping_barrier()
