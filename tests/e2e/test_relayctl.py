"""relayctl against a live relay: every command, its output (tables and --json), its exit code
(0 ok, 1 remote error, 2 usage, 3 unreachable), and the admin token.

log-level: relayctl passes the level as typed and the relay judges it, so an unknown level exits 1
with the relay's INVALID_ARGUMENT message (a missing LEVEL is a usage error, exit 2).

In the cluster topology relayctl asks the first instance (relay.grpc_addr). `meshes list` and
`meshes show` show the cluster: every mesh and peer, wherever it is; the tests of what only the
asked instance knows (its traffic figures, a peer's connection details, its counters, its drain,
`meshes close`, which acts on its own peers) keep their clients there (one_instance), and a kick
is of a peer held by the asked instance, its mesh mates elsewhere (docs/operations.md)."""

import asyncio
import json
import os
import re
import socket
import subprocess
import time

import pytest

from relayclient import (Client, assert_error, connect_registered, drain_close, instance, instances, marker_barrier,
                         mesh_of, poll, unique_mesh)

TOKEN = "s3cret-admin-token"

# Run again on three instances (conftest.py).
SPREAD_OVER_CLUSTER = True

ONLY_ASKED = "AGE, MESSAGES and a peer's connection details are the asked instance's own figures"


def run_ctl(relayctl_bin, *args, env=None, timeout=20):
    full_env = dict(os.environ)
    # The caller's own relay settings must not leak into the test.
    for name in ("RELAY_ADMIN_ADDR", "RELAY_ADMIN_TOKEN", "RELAY_ADMIN_CA"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run([relayctl_bin, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


async def actl(relayctl_bin, *args, env=None):
    # off the event loop: the websockets clients keep being served meanwhile
    return await asyncio.to_thread(run_ctl, relayctl_bin, *args, env=env)


def ctl_json(result):
    """The one JSON document relayctl --json printed."""
    assert result.returncode == 0, result
    return json.loads(result.stdout)


def loopback_addr(relay):
    # A relay bound to 0.0.0.0 prints that; relayctl connects over loopback.
    return "127.0.0.1:%d" % relay.grpc_port


async def two_clients(relay):
    """mac-1, then android-1 on the instance relayctl asks (mac-1 on another in the cluster)."""
    mac = await connect_registered(instance(relay, 1), "test-mesh", "mac-1", ["llm", "chat"])
    android = await connect_registered(instance(relay, 0), "test-mesh", "android-1")
    assert (await mac.expect("peer_joined"))["node_id"] == "android-1"
    return mac, android


def table(stdout):
    """(header, rows) of a relayctl table: columns split on runs of 2+ spaces."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    split = [re.split(r"\s{2,}", ln.strip()) for ln in lines]
    return split[0], split[1:]


def find_dicts(obj, pred):
    out = []
    if isinstance(obj, dict):
        if pred(obj):
            out.append(obj)
        for v in obj.values():
            out.extend(find_dicts(v, pred))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(find_dicts(v, pred))
    return out


# ---------------------------------------------------------------------------
# meshes list
# ---------------------------------------------------------------------------

async def test_meshes_list_table(relay, relayctl_bin):
    await two_clients(relay)
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "list")
    assert r.returncode == 0, r
    header, rows = table(r.stdout)
    assert header == ["MESH", "PEERS", "AGE", "MESSAGES"], r.stdout
    assert len(rows) == 1, r.stdout
    assert rows[0][0] == "test-mesh" and rows[0][1] == "2", r.stdout
    assert r.stderr == "", "one page holds every mesh: no paging footer"


async def test_meshes_list_json(relay, relayctl_bin):
    await two_clients(relay)
    data = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "list"))
    assert data["total_meshes"] == 1 and data["next_page_token"] == "", data
    [mesh] = data["meshes"]
    assert mesh["mesh_id"] == "test-mesh" and mesh["peer_count"] == 2, data


async def test_meshes_list_empty(relay, relayctl_bin):
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "list")
    assert r.returncode == 0, r
    assert r.stdout.split() == ["MESH", "PEERS", "AGE", "MESSAGES"], r.stdout
    data = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "list"))
    assert data == {"meshes": [], "next_page_token": "", "total_meshes": 0}, data


# Peers and broadcasts per mesh: a broadcast reaches every other peer and each delivery counts,
# so messages_relayed = broadcasts * (peers - 1).
FIVE_MESHES = {
    #  mesh     peers  broadcasts  -> relayed
    "m-a": (2, 3),  # 3
    "m-b": (1, 0),  # 0
    "m-c": (3, 1),  # 2
    "m-d": (1, 0),  # 0
    "m-e": (2, 5),  # 5
}
BY_MESH = ["m-a", "m-b", "m-c", "m-d", "m-e"]
BY_PEERS = ["m-c", "m-a", "m-e", "m-b", "m-d"]    # most peers first, ties by mesh id
BY_TRAFFIC = ["m-e", "m-a", "m-c", "m-b", "m-d"]  # most messages relayed first, ties by mesh id


async def five_meshes(relay):
    for mesh, (peers, broadcasts) in FIVE_MESHES.items():
        clients = await mesh_of(relay, mesh, [("%s-%d" % (mesh, i), []) for i in range(peers)])
        for n in range(broadcasts):
            await clients[0].send({"type": "broadcast", "payload": n})
            for other in clients[1:]:
                await other.expect("message")


def list_ids(data):
    return [m["mesh_id"] for m in data["meshes"]]


@pytest.mark.one_instance(ONLY_ASKED)
async def test_meshes_list_sorted_by_peers_and_traffic(relay, relayctl_bin):
    await five_meshes(relay)
    addr = relay.grpc_addr
    by_id = ctl_json(await actl(relayctl_bin, "--addr", addr, "--json", "meshes", "list"))
    assert list_ids(by_id) == BY_MESH, by_id
    assert {m["mesh_id"]: m["peer_count"] for m in by_id["meshes"]} == \
        {mesh: peers for mesh, (peers, _) in FIVE_MESHES.items()}
    # uint64 as a JSON number (not proto3 JSON's string), so jq can sort and sum it
    assert {m["mesh_id"]: m["messages_relayed"] for m in by_id["meshes"]} == \
        {"m-a": 3, "m-b": 0, "m-c": 2, "m-d": 0, "m-e": 5}, by_id

    by_peers = ctl_json(await actl(relayctl_bin, "--addr", addr, "--json", "meshes", "list", "--sort", "peers"))
    assert list_ids(by_peers) == BY_PEERS, by_peers
    by_traffic = ctl_json(await actl(relayctl_bin, "--addr", addr, "meshes", "list", "--sort=traffic", "--json"))
    assert list_ids(by_traffic) == BY_TRAFFIC, by_traffic

    r = await actl(relayctl_bin, "--addr", addr, "meshes", "list", "--sort", "peers")
    assert r.returncode == 0, r
    assert [row[0] for row in table(r.stdout)[1]] == BY_PEERS, r.stdout


async def test_meshes_list_page_tokens_walk_every_mesh(relay, relayctl_bin):
    await five_meshes(relay)
    pages = []
    token = None
    while True:
        args = ["--addr", relay.grpc_addr, "--json", "meshes", "list", "--sort", "peers", "--page-size", "2"]
        if token:
            args += ["--page-token", token]
        page = ctl_json(await actl(relayctl_bin, *args))
        assert page["total_meshes"] == 5, page
        pages.append(list_ids(page))
        token = page["next_page_token"]
        if not token:
            break
        assert len(pages) < 5, "paging does not end: %r" % pages
    assert pages == [BY_PEERS[0:2], BY_PEERS[2:4], BY_PEERS[4:5]], pages


@pytest.mark.one_instance(ONLY_ASKED)
async def test_meshes_list_page_table_says_how_to_get_the_next_page(relay, relayctl_bin):
    await five_meshes(relay)
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "list", "--page-size", "2",
                   "--sort", "traffic")
    assert r.returncode == 0, r
    assert [row[0] for row in table(r.stdout)[1]] == BY_TRAFFIC[:2], r.stdout
    # The hint goes to stderr, so that a pipe gets the table alone; it is a command to copy.
    m = re.search(r"\(2 of 5 meshes\) next page: relayctl (meshes list .*--page-token \S+)", r.stderr)
    assert m, r.stderr
    follow = await actl(relayctl_bin, "--addr", relay.grpc_addr, *m.group(1).split())
    assert follow.returncode == 0, follow
    assert [row[0] for row in table(follow.stdout)[1]] == BY_TRAFFIC[2:4], follow.stdout


@pytest.mark.one_instance(ONLY_ASKED)
async def test_meshes_list_all_walks_every_page(relay, relayctl_bin):
    await five_meshes(relay)
    data = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "list", "--all",
                               "--page-size", "2", "--sort", "traffic"))
    assert list_ids(data) == BY_TRAFFIC, data
    assert data["next_page_token"] == "" and data["total_meshes"] == 5, data

    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "list", "--all", "--page-size", "2")
    assert r.returncode == 0, r
    assert [row[0] for row in table(r.stdout)[1]] == BY_MESH, r.stdout
    assert r.stderr == "", r.stderr


def test_meshes_list_bad_page_token_exits_1(relay, relayctl_bin):
    r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "list", "--page-token", "not-a-token")
    assert r.returncode == 1, r
    assert "INVALID_ARGUMENT" in r.stderr and r.stderr.startswith("relayctl: "), r.stderr


# ---------------------------------------------------------------------------
# meshes show
# ---------------------------------------------------------------------------

SHOW_HEADER = ["NODE", "NAME", "CAPABILITIES", "TRANSPORT", "REMOTE", "JOINED", "MSGS_IN", "MSGS_OUT",
               "BYTES_IN", "BYTES_OUT", "QUEUED"]


@pytest.mark.one_instance(ONLY_ASKED)
async def test_meshes_show(relay, relayctl_bin):
    a, b = await two_clients(relay)
    await a.send({"type": "broadcast", "payload": "x" * 3000})
    await b.expect("message")
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", "test-mesh")
    assert r.returncode == 0, r
    first, auth, rest = r.stdout.split("\n", 2)
    assert first.startswith("Mesh: test-mesh  Peers: 2  "), r.stdout
    assert auth == "Auth: open (no token bound it: anyone may join)", r.stdout
    header, rows = table(rest)
    # A cluster instance adds which instance holds each peer.
    clustered = hasattr(relay, "instance_ids")
    want = SHOW_HEADER[:1] + ["INSTANCE"] + SHOW_HEADER[1:] if clustered else SHOW_HEADER
    assert header == want, r.stdout
    assert [row[0] for row in rows] == ["mac-1", "android-1"], r.stdout
    col = {name: i for i, name in enumerate(want)}
    if clustered:
        assert [row[col["INSTANCE"]] for row in rows] == [relay.instance_ids[0]] * 2, r.stdout
    mac, android = rows
    assert mac[col["NAME"]] == "mac-1" and mac[col["CAPABILITIES"]] == "llm,chat", mac
    assert android[col["CAPABILITIES"]] == "-", android
    for row in rows:
        assert row[col["TRANSPORT"]] == "ws", row
        assert row[col["REMOTE"]].startswith("127.0.0.1:"), row
        assert re.fullmatch(r"\d+[smhd]", row[col["JOINED"]]), row
        for size in ("BYTES_IN", "BYTES_OUT", "QUEUED"):
            assert re.fullmatch(r"\d+B|\d+(\.\d)?[KMGTPE]iB", row[col[size]]), (size, row)
    # The 3000-byte broadcast: human-readable sizes in the table.
    assert mac[col["BYTES_IN"]].endswith("KiB"), mac
    assert android[col["BYTES_OUT"]].endswith("KiB"), android


@pytest.mark.one_instance(ONLY_ASKED)
async def test_meshes_show_json(relay, relayctl_bin):
    a, b = await two_clients(relay)
    await a.send({"type": "broadcast", "payload": "x" * 3000})
    await b.expect("message")
    data = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "show", "test-mesh"))
    assert data["mesh"]["mesh_id"] == "test-mesh" and data["mesh"]["peer_count"] == 2, data
    assert int(data["mesh"]["messages_relayed"]) == 1, data
    mac, android = data["peers"]
    assert (mac["node_id"], mac["name"], mac["capabilities"]) == ("mac-1", "mac-1", ["llm", "chat"]), mac
    assert (android["node_id"], android["capabilities"]) == ("android-1", []), android
    for peer in (mac, android):
        assert peer["transport"] == "ws", peer
        assert peer["remote_address"].startswith("127.0.0.1:"), peer
        assert abs(peer["joined_at"] - time.time()) < 60, peer
        # Raw numbers, uint64 as JSON numbers (never strings: jq sums and compares them):
        # the register frame in, joined/peers out at least.
        for key in ("bytes_in", "bytes_out", "messages_in", "messages_out", "queued_bytes"):
            assert type(peer[key]) is int, (key, peer)
        assert peer["bytes_in"] > 0 and peer["bytes_out"] > 0, peer
        assert peer["messages_in"] >= 1 and peer["messages_out"] >= 2, peer
        assert peer["queued_bytes"] >= 0, peer
    assert type(data["mesh"]["messages_relayed"]) is int, data
    assert mac["bytes_in"] > 3000 and android["bytes_out"] > 3000, data


async def test_meshes_show_percent_decoded_mesh(relay, relayctl_bin):
    await mesh_of(relay, "my mesh", [("a", [])])  # sent as /relay/my%20mesh, decoded by the relay
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", "my mesh")
    assert r.returncode == 0, r
    assert "a" in [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]


def test_meshes_show_unknown_exits_1(relay, relayctl_bin):
    r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", "nope")
    assert r.returncode == 1, r
    assert r.stdout == "" and r.stderr == 'relayctl: no live mesh "nope", and no binding holds it\n', r


def json_error(result, exit_code, code):
    """The one JSON error object a failing relayctl --json printed on stdout."""
    assert result.returncode == exit_code, result
    assert len(result.stdout.splitlines()) == 1, result.stdout
    data = json.loads(result.stdout)
    assert list(data) == ["error"] and data["error"]["code"] == code, data
    assert isinstance(data["error"]["message"], str) and data["error"]["message"], data
    # The same sentence on stderr, for a person.
    assert result.stderr == "relayctl: %s\n" % data["error"]["message"], result.stderr
    return data["error"]


def test_failing_commands_under_json_print_an_error_object(relay, relayctl_bin):
    err = json_error(run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "show", "nope"),
                     1, "not_found")
    assert err == {"code": "not_found", "message": 'no live mesh "nope", and no binding holds it',
                   "rpc": "GetMesh"}, err
    err = json_error(run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "peers", "kick", "nope", "x"),
                     1, "not_found")
    assert err["rpc"] == "KickPeer", err
    err = json_error(run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "log-level", "loud"),
                     1, "invalid_argument")
    assert "loud" in err["message"], err


def test_unreachable_under_json_prints_an_error_object(relayctl_bin):
    r = run_ctl(relayctl_bin, "--addr", "127.0.0.1:%d" % free_port(), "--timeout", "2", "--json", "stats")
    err = json_error(r, 3, "unavailable")
    assert err["rpc"] == "GetStats" and "cannot reach the relay" in err["message"], err


def test_usage_error_under_json_prints_an_error_object(relayctl_bin):
    r = run_ctl(relayctl_bin, "--json", "meshes", "show")
    assert r.returncode == 2, r
    assert json.loads(r.stdout) == {"error": {"code": "usage", "message": "meshes show: missing MESH_ID"}}, r
    assert "Usage: relayctl" in r.stderr


async def test_meshes_show_after_mesh_emptied_exits_1(relay, relayctl_bin):
    a, b = await two_clients(relay)
    await a.close()
    await b.expect("peer_left")
    await b.close()
    await poll(lambda: all(r.get_json("/health")["meshes"] == 0 for r in instances(relay)), what="mesh removed")
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", "test-mesh")
    assert r.returncode == 1, r


# ---------------------------------------------------------------------------
# meshes show (how a mesh admits), meshes unbind
# ---------------------------------------------------------------------------

async def mesh_gone_everywhere(relay):
    await poll(lambda: all(r.get_json("/health")["meshes"] == 0 for r in instances(relay)), what="mesh removed")


async def test_a_squatted_mesh_is_shown_bound_and_unbind_lets_the_family_in(relay, relayctl_bin):
    # A stranger who knows only the relay's address binds the family's mesh id first, then leaves:
    # the family is locked out for the grace. The operator sees it and releases it.
    mesh = unique_mesh("family")
    squatter = await connect_registered(instance(relay, 1), mesh, "squatter", token="mine-now")
    shown = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", mesh)
    assert shown.returncode == 0, shown
    assert "Auth: token-bound, since " in shown.stdout and "held while it has peers" in shown.stdout, shown.stdout
    live = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "unbind", mesh)
    assert live.returncode == 1 and "has peers" in live.stderr and "FAILED_PRECONDITION" in live.stderr, live
    await squatter.close()
    await mesh_gone_everywhere(relay)

    mum = await Client.connect(instance(relay, 2), mesh)
    await mum.send({"type": "register", "node_id": "mum", "token": "family-secret"})
    assert_error(await mum.recv(), "auth_failed")

    empty = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", mesh)
    assert empty.returncode == 0, empty
    assert empty.stdout.startswith("Mesh: %s  Peers: 0  " % mesh), empty.stdout
    assert re.search(r"empty, forgotten in 2[34]h unless its token rejoins", empty.stdout), empty.stdout
    assert empty.stdout.endswith("(no peers)\n"), empty.stdout
    data = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "show", mesh))
    assert data["auth"]["level"] == "LEVEL_TOKEN", data
    assert 86000 < data["auth"]["grace_left_seconds"] <= 86400, data
    assert abs(data["auth"]["bound_at"] - time.time()) < 60, data
    for shown_text in (shown.stdout, empty.stdout, json.dumps(data)):
        assert "mine-now" not in shown_text  # never the token

    unbound = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "unbind", mesh, "--reason", "squatted")
    assert unbound.returncode == 0, unbound
    assert unbound.stdout == "unbound mesh %s: its next registrant binds it anew (or leaves it open)\n" % mesh
    gone = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", mesh)
    assert gone.returncode == 1 and "no binding holds it" in gone.stderr, gone

    # The family comes in, on any instance, and binds it with its own token.
    mum = await connect_registered(instance(relay, 2), mesh, "mum", token="family-secret")
    dad = await connect_registered(instance(relay, 0), mesh, "dad", token="family-secret")
    assert (await mum.expect("peer_joined"))["node_id"] == "dad"
    again = await Client.connect(instance(relay, 1), mesh)
    await again.send({"type": "register", "node_id": "squatter", "token": "mine-now"})
    assert_error(await again.recv(), "auth_failed")


async def test_unbind_refuses_what_it_must_not_release(relay, relayctl_bin):
    open_mesh = unique_mesh("open")
    await connect_registered(instance(relay, 1), open_mesh, "a")
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "unbind", open_mesh)
    assert json_error(r, 1, "failed_precondition")["rpc"] == "UnbindMesh"
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "unbind", unique_mesh("nowhere"))
    err = json_error(r, 1, "not_found")
    assert "not bound to a token" in err["message"], err


# ---------------------------------------------------------------------------
# peers kick, meshes close
# ---------------------------------------------------------------------------

async def test_peers_kick(relay, relayctl_bin):
    # b on the instance asked, a and c on the others in the cluster.
    a = await connect_registered(instance(relay, 1), "test-mesh", "a")
    b = await connect_registered(instance(relay, 0), "test-mesh", "b")
    c = await connect_registered(instance(relay, 2), "test-mesh", "c")
    for joined in ("b", "c"):
        assert (await a.expect("peer_joined"))["node_id"] == joined
    assert (await b.expect("peer_joined"))["node_id"] == "c"
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "peers", "kick", "test-mesh", "b",
                   "--reason", "spamming the mesh")
    assert r.returncode == 0, r
    assert r.stdout == "kicked b from test-mesh\n", r.stdout

    msgs, code, reason = await b.recv_until_closed()
    assert len(msgs) == 1, msgs
    assert_error(msgs[0], "kicked")
    assert "spamming the mesh" in msgs[0]["message"], msgs
    assert (code, reason) == (1008, "kicked")
    for other in (a, c):
        left = await other.expect("peer_left")
        assert left["node_id"] == "b", left
    await marker_barrier(a, [c])  # the rest of the mesh keeps working
    stats = await actl(relayctl_bin, "--addr", relay.grpc_addr, "stats")
    assert parse_kv(stats.stdout)["closes.kicked"] == "1", stats.stdout

    # b is gone now (the others saw peer_left): kicking it again is NOT_FOUND.
    again = await actl(relayctl_bin, "--addr", relay.grpc_addr, "peers", "kick", "test-mesh", "b")
    assert again.returncode == 1, again
    assert again.stdout == "", again
    assert again.stderr.startswith("relayctl: KickPeer failed: ") and "(NOT_FOUND)" in again.stderr, again


async def test_peers_kick_json(relay, relayctl_bin):
    a, b = await two_clients(relay)
    data = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "peers", "kick", "test-mesh",
                               "android-1"))
    assert data == {"mesh_id": "test-mesh", "node_id": "android-1"}, data
    msgs, code, reason = await b.recv_until_closed()
    assert [m["code"] for m in msgs] == ["kicked"] and (code, reason) == (1008, "kicked"), (msgs, code, reason)


@pytest.mark.parametrize("mesh,node", [("test-mesh", "ghost"), ("no-such-mesh", "mac-1")])
async def test_peers_kick_unknown_exits_1(relay, relayctl_bin, mesh, node):
    a, b = await two_clients(relay)
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "peers", "kick", mesh, node)
    assert r.returncode == 1, r
    assert r.stdout == "" and "(NOT_FOUND)" in r.stderr and len(r.stderr.splitlines()) == 1, r
    await a.ping_barrier()
    await b.ping_barrier()


@pytest.mark.one_instance("meshes close acts on the asked instance's peers only")
async def test_meshes_close(relay, relayctl_bin):
    closing = await mesh_of(relay, "doomed", [("d1", []), ("d2", []), ("d3", [])])
    kept = await mesh_of(relay, "kept", [("k1", []), ("k2", [])])
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "close", "doomed", "--reason", "maintenance")
    assert r.returncode == 0, r
    assert r.stdout == "closed mesh doomed: 3 peers closed\n", r.stdout

    for client in closing:
        msgs, code, reason = await client.recv_until_closed()
        assert len(msgs) == 1, (client.who(), msgs)
        assert_error(msgs[0], "mesh_closed")
        assert "maintenance" in msgs[0]["message"], msgs
        assert (code, reason) == (1008, "mesh closed"), (client.who(), code, reason)

    # The other mesh saw nothing and keeps working.
    for client in kept:
        await client.ping_barrier()
    await marker_barrier(kept[0], [kept[1]])

    await poll(lambda: relay.get_json("/health")["meshes"] == 1, what="closed mesh removed")
    gone = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "close", "doomed")
    assert gone.returncode == 1 and "(NOT_FOUND)" in gone.stderr, gone
    listed = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "list"))
    assert list_ids(listed) == ["kept"], listed


@pytest.mark.one_instance("meshes close acts on the asked instance's peers only")
async def test_meshes_close_json(relay, relayctl_bin):
    clients = await two_clients(relay)
    data = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "close", "test-mesh"))
    assert data == {"mesh_id": "test-mesh", "closed_peers": 2}, data
    for client in clients:
        _, code, reason = await client.recv_until_closed()
        assert (code, reason) == (1008, "mesh closed")


# ---------------------------------------------------------------------------
# stats, health
# ---------------------------------------------------------------------------

def parse_kv(stdout):
    kv = {}
    for ln in stdout.splitlines():
        if not ln.strip():
            continue
        m = re.match(r"^\s*([^:]+?)\s*:\s*(.*)$", ln)
        assert m, "not a key: value line: %r" % ln
        kv[m.group(1)] = m.group(2).strip()
    return kv


@pytest.mark.one_instance("reads one process's counters")
async def test_stats(relay, relayctl_bin):
    a, b = await two_clients(relay)
    await a.send({"type": "broadcast", "payload": 1})
    await b.recv()
    # One refusal by a per-client bound: a request_id over 256 bytes.
    await a.send({"type": "llm_request", "request_id": "r" * 300, "prompt": "hi"})
    assert_error(await a.recv(), "bad_message")
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "stats")
    assert r.returncode == 0, r
    kv = parse_kv(r.stdout)
    # GET /stats' names.
    assert kv["active_meshes"] == "1" and kv["active_connections"] == "2", kv
    assert kv["total_messages_relayed"] == "1", kv
    assert "uptime_seconds" in kv and "version" in kv, kv
    assert {k for k in kv if k.startswith("refused.")} == {
        "refused." + reason for reason in relay.get_json("/stats")["refused"]}, kv
    # What an operator checks when clients say they were cut off: every
    # bound's refusals and every drop reason, listed even at 0.
    assert kv["limits.request_id_bytes"] == "1", kv
    assert kv["limits.message_rate"] == "0", kv
    assert {k for k in kv if k.startswith("drops.")} == {
        "drops.closing", "drops.slow_consumer", "drops.unreachable", "drops.resume_overflow"}, kv
    assert kv["auth_records"] == "0", kv


@pytest.mark.one_instance(ONLY_ASKED)
async def test_mesh_age_survives_a_takeover_and_restarts_once_the_mesh_empties(relay, relayctl_bin):
    # A phone that reconnects with its token takes its node id over: for the
    # mesh nothing emptied, so relayctl shows the same age and traffic. Once
    # its last member is gone, the mesh that fills again is a new one.
    async def show():
        r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "show", "age-mesh")
        return ctl_json(r)["mesh"]

    phone = await connect_registered(relay, "age-mesh", "phone", token="s3cret")
    mac = await connect_registered(relay, "age-mesh", "mac", token="s3cret")
    await phone.expect("peer_joined")
    await phone.send({"type": "direct", "target": "mac", "payload": 1})
    await mac.expect("message")
    first = await show()
    assert int(first["messages_relayed"]) == 1, first

    phone_again = await connect_registered(relay, "age-mesh", "phone", token="s3cret")
    _, code, reason = await phone.recv_until_closed()
    assert (code, reason) == (1000, "replaced")
    after_takeover = await show()
    assert after_takeover["created_at"] == first["created_at"], (first, after_takeover)
    assert int(after_takeover["messages_relayed"]) == 1, after_takeover

    await phone_again.close()
    await mac.close()

    async def gone():
        # Still shown while its token binding holds it, with no peers and no age.
        return (await show()).get("peer_count", 0) == 0

    deadline = time.monotonic() + 5
    while not await gone():
        assert time.monotonic() < deadline, "the emptied mesh is still shown with peers"
        await asyncio.sleep(0.05)
    tablet = await connect_registered(relay, "age-mesh", "tablet", token="s3cret")
    renewed = await show()
    assert renewed["created_at"] > first["created_at"], (first, renewed)
    assert int(renewed.get("messages_relayed", 0)) == 0, renewed
    await tablet.close()


@pytest.mark.one_instance("reads one process's counters")
async def test_stats_json(relay, relayctl_bin):
    await two_clients(relay)
    data = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "stats"))
    assert data["active_meshes"] == 1 and data["registered_peers"] == 2, data
    # 64-bit counters are JSON numbers, as the 32-bit ones.
    assert type(data["total_connections"]) is int and data["total_connections"] >= 2, data
    assert type(data["total_messages_received"]) is int, data


@pytest.mark.one_instance("compares one process's /stats with its own Admin API")
async def test_stats_json_has_the_names_and_shapes_of_http_stats(relay, relayctl_bin):
    a, b = await two_clients(relay)
    await a.send({"type": "broadcast", "payload": 1})
    await b.expect("message")
    await a.send({"type": "direct", "target": "nobody", "payload": 1})
    assert_error(await a.recv(), "unknown_target")
    # A refusal before the upgrade (HTTP 404): counted by the gateway, not the core.
    status, _, _ = relay.http("GET", "/nowhere", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                          "Sec-WebSocket-Version": "13",
                                                          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert status == 404, status
    http_stats = relay.get_json("/stats")
    data = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "stats"))
    http_stats.pop("uptime_seconds")
    uptime = data.pop("uptime_seconds")
    assert isinstance(uptime, (int, float)) and uptime >= 0, uptime
    # Every /stats key with its value and shape (errors, closes, refused... as objects).
    assert {k: data[k] for k in http_stats} == http_stats, (data, http_stats)
    assert data["refused"]["not_found"] >= 1 and data["errors"]["unknown_target"] == 1, data
    # Beyond /stats: only relayctl 1.0's names, as aliases with the same values.
    aliases = {"registered_peers": "active_connections", "messages_received": "total_messages_received",
               "messages_relayed": "total_messages_relayed", "llm_requests": "total_llm_requests"}
    # In cluster mode also "cluster": every instance's lease counts (Admin API only).
    extra = set(aliases) | ({"cluster"} if "instance_id" in http_stats else set())
    assert set(data) - set(http_stats) == extra, set(data) - set(http_stats)
    for old, new in aliases.items():
        assert data[old] == data[new], (old, data)


def test_health_serving(relay, relayctl_bin):
    r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "health")
    assert r.returncode == 0, r
    assert r.stdout == "SERVING\n", r.stdout
    data = ctl_json(run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "health"))
    assert data == {"status": "SERVING"}, data


def test_addr_from_env(relay, relayctl_bin):
    r = run_ctl(relayctl_bin, "health", env={"RELAY_ADMIN_ADDR": relay.grpc_addr})
    assert r.returncode == 0, r
    assert "SERVING" in r.stdout


def test_addr_flag_wins_over_env(relay, relayctl_bin):
    r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "health", env={"RELAY_ADMIN_ADDR": "127.0.0.1:1"})
    assert r.returncode == 0, r


# ---------------------------------------------------------------------------
# log-level
# ---------------------------------------------------------------------------

def test_log_level(relay, relayctl_bin):
    r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "log-level", "debug")
    assert r.returncode == 0, r
    assert r.stdout == "log level: info -> debug\n", r.stdout
    data = ctl_json(run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "log-level", "warn"))
    assert data == {"previous": "debug", "level": "warn"}, data
    # The relay logs the change itself (at warn, so that it shows at any level).
    assert " admin_log_level previous=info level=debug " in relay.stderr_text(20000), relay.stderr_text()


def test_log_level_unknown_exits_1_with_the_relays_message(relay, relayctl_bin):
    r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "log-level", "loud")
    assert r.returncode == 1, r
    assert r.stdout == "", r
    assert r.stderr.startswith("relayctl: SetLogLevel failed: ") and "loud" in r.stderr, r.stderr
    assert "(INVALID_ARGUMENT)" in r.stderr, r.stderr
    unchanged = ctl_json(run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "log-level", "info"))
    assert unchanged["previous"] == "info", unchanged


# ---------------------------------------------------------------------------
# drain
# ---------------------------------------------------------------------------

async def wait_exit(relay, timeout=10.0):
    rc = await asyncio.to_thread(relay.proc.wait, timeout)
    relay.returncode = rc
    return rc


@pytest.mark.one_instance("drains one process")
async def test_drain(relay_factory, relayctl_bin):
    relay = relay_factory("--drain-grace-seconds", "2")
    a, b = await two_clients(relay)
    started = time.monotonic()
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "drain")
    assert r.returncode == 0, r
    assert re.fullmatch(r"draining: 2 connections told .*; closed in 2s .*\n", r.stdout), r.stdout

    for client in (a, b):
        msg = await client.expect("server_draining")
        assert set(msg) == {"type", "grace_seconds", "reconnect_after_ms"}, msg
        assert msg["grace_seconds"] == 2, msg
        assert isinstance(msg["reconnect_after_ms"], int) and msg["reconnect_after_ms"] >= 0, msg

    # During the grace: not ready, health NOT_SERVING, a second drain refused, clients still served.
    status, _, body = await asyncio.to_thread(relay.http, "GET", "/ready")
    assert status == 503, (status, body)
    health = await actl(relayctl_bin, "--addr", relay.grpc_addr, "health")
    assert health.returncode == 1 and health.stdout == "NOT_SERVING\n", health
    again = await actl(relayctl_bin, "--addr", relay.grpc_addr, "drain")
    assert again.returncode == 1, again
    assert again.stderr.startswith("relayctl: Drain failed: ") and "(FAILED_PRECONDITION)" in again.stderr, again
    await marker_barrier(a, [b])
    assert time.monotonic() - started < 2, "the checks above must run inside the grace"

    for client in (a, b):
        msgs, code, reason = await client.recv_until_closed(timeout=10)
        assert msgs == [] and (code, reason) == drain_close(relay), (client.who(), msgs, code, reason)
    assert time.monotonic() - started >= 1.5, "closed before the grace"
    assert await wait_exit(relay) == 0, relay.stderr_text()


@pytest.mark.one_instance("drains one process")
async def test_drain_grace_flag_json(relay_factory, relayctl_bin):
    relay = relay_factory("--drain-grace-seconds", "30")
    a = (await mesh_of(relay, "m", [("solo", [])]))[0]
    data = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "drain", "--grace", "1"))
    assert data == {"grace_seconds": 1, "connections": 1}, data
    msg = await a.expect("server_draining")
    assert msg["grace_seconds"] == 1, msg
    _, code, _ = await a.recv_until_closed(timeout=10)
    assert code == drain_close(relay)[0]
    assert await wait_exit(relay) == 0, relay.stderr_text()


@pytest.mark.one_instance("drains one process")
async def test_drain_ends_early_once_everyone_left(relay_factory, relayctl_bin):
    relay = relay_factory("--drain-grace-seconds", "60")
    a, b = await two_clients(relay)
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "drain")
    assert r.returncode == 0, r
    for client in (a, b):
        await client.expect("server_draining")
        await client.close()
    assert await wait_exit(relay, timeout=15) == 0, relay.stderr_text()


# ---------------------------------------------------------------------------
# The admin token
# ---------------------------------------------------------------------------

ADMIN_COMMANDS = [
    ["stats"],
    ["meshes", "list"],
    ["meshes", "show", "test-mesh"],
    ["meshes", "close", "test-mesh"],
    ["meshes", "unbind", "test-mesh"],
    ["peers", "kick", "test-mesh", "mac-1"],
    ["drain"],
    ["log-level", "debug"],
]


async def test_every_admin_command_needs_the_token(relay_factory, relayctl_bin):
    relay = relay_factory("--admin-token", TOKEN, "--grpc-host", "127.0.0.1")
    a, b = await two_clients(relay)
    for cmd in ADMIN_COMMANDS:
        r = await actl(relayctl_bin, "--addr", relay.grpc_addr, *cmd)
        assert r.returncode == 1, (cmd, r)
        assert r.stdout == "", (cmd, r)
        [line] = r.stderr.splitlines()
        assert line.startswith("relayctl: ") and "UNAUTHENTICATED" in line, (cmd, line)
        assert "--token" in line and "RELAY_ADMIN_TOKEN" in line, (cmd, line)
    # Nothing happened: both peers are still there, and the relay is not draining.
    await a.ping_barrier()
    await b.ping_barrier()
    health = await actl(relayctl_bin, "--addr", relay.grpc_addr, "health")
    assert health.returncode == 0 and health.stdout == "SERVING\n", health


@pytest.mark.one_instance("reads one process's registered_peers")
async def test_token_from_flag_or_env(relay_factory, relayctl_bin):
    relay = relay_factory("--admin-token", TOKEN, "--grpc-host", "127.0.0.1")
    await two_clients(relay)
    by_flag = ctl_json(await actl(relayctl_bin, "--addr", relay.grpc_addr, "--token", TOKEN, "--json", "stats"))
    assert by_flag["registered_peers"] == 2, by_flag
    by_env = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", "test-mesh",
                        env={"RELAY_ADMIN_TOKEN": TOKEN})
    assert by_env.returncode == 0 and "mac-1" in by_env.stdout, by_env
    level = await actl(relayctl_bin, "--addr", relay.grpc_addr, "log-level", "debug",
                       env={"RELAY_ADMIN_TOKEN": TOKEN})
    assert level.returncode == 0, level


def test_wrong_token_is_refused_and_never_printed(relay_factory, relayctl_bin):
    relay = relay_factory("--admin-token", TOKEN, "--grpc-host", "127.0.0.1")
    for args, env in [(["--token", "guessed-wrong"], None), ([], {"RELAY_ADMIN_TOKEN": "guessed-wrong"})]:
        r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, *args, "stats", env=env)
        assert r.returncode == 1, r
        assert "UNAUTHENTICATED" in r.stderr and "refused" in r.stderr, r.stderr
        assert "guessed-wrong" not in r.stdout + r.stderr, r
    # A good token is never echoed either, whatever happens.
    r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "--token", TOKEN, "meshes", "show", "nope")
    assert r.returncode == 1 and TOKEN not in r.stdout + r.stderr, r


def test_health_needs_no_token(relay_factory, relayctl_bin):
    relay = relay_factory("--admin-token", TOKEN, "--grpc-host", "127.0.0.1")
    r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "health")
    assert r.returncode == 0 and r.stdout == "SERVING\n", r


def test_off_loopback_without_token_refuses_to_start(relay_bin):
    env = dict(os.environ)
    env.pop("ADMIN_TOKEN", None)
    r = subprocess.run([relay_bin, "--port", "0", "--grpc-port", "0", "--host", "127.0.0.1",
                        "--grpc-host", "0.0.0.0"], capture_output=True, text=True, timeout=15,
                       stdin=subprocess.DEVNULL, env=env)
    assert r.returncode == 2, r
    assert "admin-token" in r.stderr, r.stderr
    assert "listening" not in r.stdout, r.stdout


async def test_off_loopback_with_token_serves_admin_only_with_it(relay_factory, relayctl_bin):
    relay = relay_factory("--grpc-host", "0.0.0.0", "--admin-token", TOKEN)
    assert relay.grpc_host == "0.0.0.0", relay.stdout_lines
    await two_clients(relay)
    addr = loopback_addr(relay)
    refused = await actl(relayctl_bin, "--addr", addr, "meshes", "list")
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr, refused
    data = ctl_json(await actl(relayctl_bin, "--addr", addr, "--json", "meshes", "list", env={"RELAY_ADMIN_TOKEN": TOKEN}))
    assert list_ids(data) == ["test-mesh"], data
    health = await actl(relayctl_bin, "--addr", addr, "health")
    assert health.returncode == 0, health


# ---------------------------------------------------------------------------
# Unreachable relay, usage errors
# ---------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("cmd", [["health"], ["stats"], ["meshes", "list"], ["meshes", "show", "x"],
                                 ["meshes", "close", "x"], ["peers", "kick", "x", "y"], ["drain"],
                                 ["log-level", "info"]])
def test_unreachable_exits_3(relayctl_bin, cmd):
    r = run_ctl(relayctl_bin, "--addr", "127.0.0.1:%d" % free_port(), "--timeout", "2", *cmd)
    assert r.returncode == 3, r
    assert r.stderr.startswith("relayctl: ") and len(r.stderr.splitlines()) == 1, r.stderr


def test_relay_stopped_exits_3(relay, relayctl_bin):
    addr = relay.grpc_addr
    assert relay.stop() == 0
    r = run_ctl(relayctl_bin, "--addr", addr, "--timeout", "2", "health")
    assert r.returncode == 3, r


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["meshes"],
    ["meshes", "explode"],
    ["meshes", "show"],
    ["--addr"],
    ["--timeout", "abc", "health"],
    ["--no-such-flag", "health"],
    ["health", "extra-arg"],
    ["peers", "kick", "m"],
    ["meshes", "close"],
    ["log-level"],
    ["drain", "--grace", "0"],
    ["meshes", "list", "--page-size", "0"],
    ["meshes", "list", "--sort", "age"],
    ["meshes", "list", "--all", "--page-token", "2"],
    ["stats", "--grace", "5"],
    ["stats", "--token="],
], ids=["none", "unknown-command", "meshes-no-sub", "meshes-bad-sub", "show-no-id", "addr-no-value",
        "bad-timeout", "unknown-flag", "extra-arg", "kick-no-node", "close-no-mesh", "log-level-no-level",
        "grace-zero", "page-size-zero", "bad-sort", "all-and-page-token", "grace-on-stats", "empty-token"])
def test_bad_usage_exits_2(relayctl_bin, args):
    r = run_ctl(relayctl_bin, "--addr", "127.0.0.1:%d" % free_port(), *args) if args[:1] != ["--addr"] \
        else run_ctl(relayctl_bin, *args)
    assert r.returncode == 2, r
    assert r.stderr.startswith("relayctl: "), "expected a usage message on stderr"
    assert "Usage: relayctl" in r.stderr


def test_help_exits_0(relayctl_bin):
    r = run_ctl(relayctl_bin, "--help")
    assert r.returncode == 0 and r.stdout.startswith("Usage: relayctl"), r
    for command in ("meshes list", "meshes show", "meshes close", "peers kick", "stats", "health", "drain",
                    "log-level", "--token"):
        assert command in r.stdout, command
