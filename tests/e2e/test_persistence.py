"""Persistence (auth_spec.md): with --data-dir / RELAY_DATA_DIR the relay keeps signed meshes,
token bindings and used nonces in DATA_DIR/relay.db (SQLite, WAL) across a restart; without it a
restart forgets them. Each relay is stopped with SIGTERM and must exit 0."""

import asyncio
import os
import shutil
import sqlite3
import time

from relayclient import Client, assert_served_elsewhere, connect_registered, unique_mesh
from signing import (Key, found, join, make_token, refused, reg, register_mesh_msg, wait_auth_counts,
                     wait_mesh_gone)


def stop_ok(relay):
    rc = relay.stop(timeout=10.0)
    assert rc == 0, "relay exit code %r after SIGTERM; stderr:\n%s" % (rc, relay.stderr_text())


class State:
    """What the first relay is given: a signed mesh with a used nonce, a token-bound mesh whose peer
    left before the stop, and one whose peer is still connected when the relay stops."""

    def __init__(self):
        self.key = Key()
        self.signed = "signé-" + unique_mesh("persist")
        self.shared_token = make_token(self.key, self.signed, node_id=None, nonce="nonce-persist-1")
        self.bound_left = unique_mesh("bound-left")
        self.bound_live = unique_mesh("bound-live")

    async def populate(self, relay):
        f, _ = await found(relay, self.signed, self.key)
        alice, _, _ = await join(relay, self.signed, "alice", self.shared_token)
        await f.expect("peer_joined")
        left = await connect_registered(relay, self.bound_left, "a", token="tb-left")
        await left.close()
        await wait_mesh_gone(relay, self.bound_left)
        live = await connect_registered(relay, self.bound_live, "a", token="tb-live")
        return [f, alice, live]


async def check_kept(relay, st):
    """After a restart with the same data dir: everything is still enforced."""
    n = 0
    for msg in [reg("bob", make_token(Key(), st.signed, node_id="bob"), type="join"),  # non-mesh key
                reg("bob"),                                                           # no token
                register_mesh_msg(st.signed, Key(), "founder"),                        # another key
                reg("bob", st.shared_token, type="join")]:                            # nonce replay
        await refused(relay, st.signed, msg)
        n += 1
    for mesh in (st.bound_left, st.bound_live):
        for msg in [reg("x", "other"), reg("x"), register_mesh_msg(mesh, Key(), "x")]:
            await refused(relay, mesh, msg)
            n += 1
    await wait_auth_counts(relay, n)
    # the legitimate ones get in
    f, joined = await found(relay, st.signed, st.key)
    assert joined["node_count"] == 1
    alice, joined, _ = await join(relay, st.signed, "alice", st.shared_token)  # same node, same nonce
    assert joined["node_count"] == 2
    assert (await f.expect("peer_joined"))["node_id"] == "alice"
    bob, joined, _ = await join(relay, st.signed, "bob", make_token(st.key, st.signed, node_id="bob"))
    assert joined["node_count"] == 3
    for mesh, tok in ((st.bound_left, "tb-left"), (st.bound_live, "tb-live")):
        c, joined, peers = await join(relay, mesh, "a", tok, type="register")
        assert joined["node_count"] == 1 and peers["peers"] == []
        await c.ping_barrier()
    await assert_served_elsewhere(relay)


async def test_restart_with_data_dir_keeps_signed_mesh_bindings_and_nonces(relay_factory, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    st = State()
    r1 = relay_factory("--data-dir", str(data))
    clients = await st.populate(r1)
    stop_ok(r1)
    for c in clients:
        assert await c.expect_closed() == (1001, "server shutting down")
    db = data / "relay.db"
    assert db.is_file(), "no relay.db in the data dir: %r" % os.listdir(data)
    # it is an SQLite database in WAL mode (checked on a copy, the relay's files stay untouched)
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in os.listdir(data):
        if name.startswith("relay.db"):
            shutil.copy(data / name, copy / name)
    con = sqlite3.connect(str(copy / "relay.db"))
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        con.close()

    r2 = relay_factory("--data-dir", str(data))
    await check_kept(r2, st)


async def test_restart_with_relay_data_dir_env_keeps_state(relay_factory, tmp_path):
    data = tmp_path / "env-data"
    data.mkdir()
    st = State()
    r1 = relay_factory(env={"RELAY_DATA_DIR": str(data)})
    clients = await st.populate(r1)
    stop_ok(r1)
    for c in clients:
        await c.expect_closed()
    assert (data / "relay.db").is_file()
    r2 = relay_factory(env={"RELAY_DATA_DIR": str(data)})
    await check_kept(r2, st)


async def test_two_restarts_keep_state(relay_factory, tmp_path):
    """A restart that changes nothing must not lose what the one before stored."""
    data = tmp_path / "data"
    data.mkdir()
    st = State()
    r1 = relay_factory("--data-dir", str(data))
    await st.populate(r1)
    stop_ok(r1)
    r2 = relay_factory("--data-dir", str(data))
    await assert_served_elsewhere(r2)
    stop_ok(r2)
    r3 = relay_factory("--data-dir", str(data))
    await check_kept(r3, st)


async def test_restart_without_data_dir_forgets(relay_factory):
    st = State()
    r1 = relay_factory()
    await st.populate(r1)
    stop_ok(r1)
    r2 = relay_factory()
    # bindings are gone: another token binds the mesh anew
    for mesh in (st.bound_left, st.bound_live):
        c, joined, _ = await join(r2, mesh, "x", "brand-new", type="register")
        assert joined["node_count"] == 1
    # the signed mesh is gone: another key can found it
    f, joined = await found(r2, st.signed, Key())
    assert joined["node_count"] == 1
    # and the old mesh key's tokens are now foreign to it
    await refused(r2, st.signed, reg("alice", st.shared_token, type="join"))


async def test_restart_forgets_signed_mesh_so_plain_register_opens_it(relay_factory):
    st = State()
    r1 = relay_factory()
    await st.populate(r1)
    stop_ok(r1)
    r2 = relay_factory()
    c = await connect_registered(r2, st.signed, "plain")
    await c.ping_barrier()
    # a token object to a mesh that is not signed (any more): auth_failed
    await refused(r2, st.signed, reg("alice", st.shared_token, type="join"))
    await c.ping_barrier()


async def test_binding_grace_runs_out_across_restart(relay_factory, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    args = ("--data-dir", str(data), "--mesh-binding-grace-seconds", "1")
    r1 = relay_factory(*args)
    mesh = unique_mesh("grace")
    a = await connect_registered(r1, mesh, "a", token="old")
    t0 = time.monotonic()
    await a.close()
    await wait_mesh_gone(r1, mesh)
    stop_ok(r1)
    r2 = relay_factory(*args)
    deadline = t0 + 15
    while True:
        assert time.monotonic() < deadline, "binding still enforced 15 s after the mesh emptied (grace 1 s)"
        c = await Client.connect(r2, mesh)
        await c.send(reg("b", "new"))
        msg = await c.recv()
        if msg["type"] == "joined":
            break
        assert msg["type"] == "error" and msg["code"] == "auth_failed", msg
        await c.expect_closed()
        await asyncio.sleep(0.05)  # polling interval between attempts
    assert time.monotonic() - t0 >= 0.9
    await c.expect("peers")
    await refused(r2, mesh, reg("z", "old"))
