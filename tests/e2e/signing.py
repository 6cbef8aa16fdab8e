"""Ed25519 signing for the signed-mesh tests, done by Python's `cryptography` package
(Debian python3-cryptography), never by the relay's own code.

Canonical token bytes are exactly what auth_spec.md prescribes:
    json.dumps({"capabilities": sorted(caps), "expires_at", "issued_at", "issuer_id", "mesh_id",
                "node_id", "nonce"}, sort_keys=True, separators=(",", ":")).encode()
(ensure_ascii default: non-ASCII as \\uXXXX, astral characters as surrogate pairs; ints stay ints,
floats are written as Python's repr).
"""

import base64
import json
import time
import uuid

from relayclient import Client, assert_served_elsewhere, expect_refused, poll

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_ABSENT = object()


def b64(data):
    return base64.b64encode(data).decode("ascii")


class Key:
    """An Ed25519 key pair. Key() is random; Key(seed=32 bytes) is deterministic."""

    def __init__(self, seed=None):
        self.private = Ed25519PrivateKey.from_private_bytes(seed) if seed is not None \
            else Ed25519PrivateKey.generate()
        self.public_bytes = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def public_b64(self):
        return b64(self.public_bytes)

    def sign(self, data):
        return self.private.sign(data)

    def sign_b64(self, data):
        return b64(self.sign(data))


def founder_proof(key, mesh_id):
    """B64 signature of the UTF-8 bytes of mesh_id."""
    return key.sign_b64(mesh_id.encode("utf-8"))


def register_mesh_msg(mesh_id, mesh_key, node_id, proof_key=None, node_key=None, capabilities=(), name=None,
                      after=None, **overrides):
    """A register_mesh message. The proof is signed by proof_key (default: node_key if given, else
    mesh_key); node_key adds node_public_key. overrides (keywords) and then `after` (a dict, for names
    that collide with the parameters) replace/add fields; the value ABSENT drops a field."""
    proof_key = proof_key or node_key or mesh_key
    msg = {"type": "register_mesh", "mesh_id": mesh_id, "mesh_public_key": mesh_key.public_b64,
           "founder_proof": founder_proof(proof_key, mesh_id), "node_id": node_id,
           "capabilities": list(capabilities)}
    if node_key is not None:
        msg["node_public_key"] = node_key.public_b64
    if name is not None:
        msg["name"] = name
    return _apply(_apply(msg, overrides), after or {})


ABSENT = _ABSENT


def _apply(msg, overrides):
    for k, v in overrides.items():
        if v is _ABSENT:
            msg.pop(k, None)
        else:
            msg[k] = v
    return msg


def canonical_bytes(mesh_id, node_id, issued_at, expires_at, capabilities, issuer_id, nonce):
    obj = {"capabilities": sorted(capabilities), "expires_at": expires_at, "issued_at": issued_at,
           "issuer_id": issuer_id, "mesh_id": mesh_id, "node_id": node_id, "nonce": nonce}
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def make_token(mesh_key, mesh_id, node_id=None, expires_at=None, issued_at=_ABSENT, capabilities=("chat",),
               issuer_id="issuer-1", nonce=None, omit_capabilities=False, after=None, **overrides):
    """A join token signed by mesh_key. Defaults: expires in an hour, issued now (float), a fresh
    nonce. capabilities are sent in the given (unsorted) order; the signature covers them sorted.
    omit_capabilities: the token has no "capabilities" member (signed as []).
    overrides (keywords) and `after` (a dict, for names that collide with the parameters) are applied
    AFTER signing, to tamper with or drop fields (the value ABSENT drops one)."""
    now = time.time()
    if expires_at is None:
        expires_at = int(now) + 3600
    if issued_at is _ABSENT:
        issued_at = now
    if nonce is None:
        nonce = uuid.uuid4().hex
    caps = [] if omit_capabilities else list(capabilities)
    sig = mesh_key.sign_b64(canonical_bytes(mesh_id, node_id, issued_at, expires_at, caps, issuer_id, nonce))
    token = {"mesh_id": mesh_id, "node_id": node_id, "issued_at": issued_at, "expires_at": expires_at,
             "issuer_id": issuer_id, "nonce": nonce, "signature": sig}
    if not omit_capabilities:
        token["capabilities"] = caps
    return _apply(_apply(token, overrides), after or {})


# ---------------------------------------------------------------------------
# Client steps for the auth tests (relayclient based)
# ---------------------------------------------------------------------------

FAR_FUTURE = 4102444800  # 2100-01-01, an int: past the relay's 30-day token lifetime, refused
# Integral "now" and a week from it, for tokens the relay accepts (MAX_JOIN_TOKEN_LIFETIME_SECONDS
# is 30 days by default, counted from issued_at and from now).
NOW = int(time.time())
SOON = NOW + 7 * 86400


def stats(relay):
    return relay.get_json("/stats")


def mesh_ids(relay):
    """Live mesh ids, from the Admin API (the public /stats names none)."""
    import grpcpeer  # compiles relay.proto for Python on first use
    return [mesh_id for mesh_id, _ in grpcpeer.admin_meshes(relay)]


async def wait_mesh_gone(relay, mesh):
    await poll(lambda: mesh not in mesh_ids(relay), what="mesh %r removed" % mesh)


def auth_failed_counts(relay):
    """(errors.auth_failed, closes.auth_failed) of /stats, summed over a cluster's instances (a
    refused client may have reached any of them)."""
    errors = closes = 0
    for instance in getattr(relay, "instances", [relay]):
        s = stats(instance)
        errors += s["errors"].get("auth_failed", 0)
        closes += s["closes"].get("auth_failed", 0)
    return errors, closes


async def wait_auth_counts(relay, n):
    """errors.auth_failed and closes.auth_failed both reach n (and no more)."""
    await poll(lambda: auth_failed_counts(relay) == (n, n), what="auth_failed counters == %d" % n)
    assert auth_failed_counts(relay) == (n, n), auth_failed_counts(relay)


async def refused(relay, mesh, msg, code="auth_failed"):
    """A fresh connection sends msg (dict or raw text) and is refused with auth_failed + close 1008."""
    c = await Client.connect(relay, mesh, label="refused:%s" % (msg.get("node_id") if isinstance(msg, dict) else msg))
    if isinstance(msg, dict):
        await c.send(msg)
    else:
        await c.send_raw(msg)
    err = await expect_refused(c, code)
    await assert_served_elsewhere(relay)
    return err


def reg(node_id, token=ABSENT, type="register", capabilities=(), **extra):
    msg = {"type": type, "node_id": node_id, "capabilities": list(capabilities)}
    if token is not ABSENT:
        msg["token"] = token
    msg.update(extra)
    return msg


async def found(relay, mesh, key, node_id="founder", node_key=None, capabilities=("llm",), name=None,
                expect_peers=(), **overrides):
    """register_mesh -> exactly mesh_registered{type,mesh_id,success:true}, then joined and peers."""
    c = await Client.connect(relay, mesh, label=node_id)
    await c.send(register_mesh_msg(mesh, key, node_id, node_key=node_key, capabilities=capabilities, name=name,
                                   **overrides))
    raw = await c.recv_raw()
    pairs = json.loads(raw, object_pairs_hook=list)
    assert [list(p) for p in pairs] == [["type", "mesh_registered"], ["mesh_id", mesh], ["success", True]], raw
    joined = await c.expect("joined")
    assert joined["mesh_id"] == mesh, joined
    peers = await c.expect("peers")
    assert [p["node_id"] for p in peers["peers"]] == list(expect_peers), peers
    c.node_id = node_id
    return c, joined


async def join(relay, mesh, node_id, token, type="join", capabilities=("chat",), **extra):
    c = await Client.connect(relay, mesh, label=node_id)
    if token is ABSENT or token is None:  # Client.register omits a None token
        joined, peers = await c.register(node_id, capabilities, type=type, **extra)
    else:
        joined, peers = await c.register(node_id, capabilities, token=token, type=type, **extra)
    return c, joined, peers
