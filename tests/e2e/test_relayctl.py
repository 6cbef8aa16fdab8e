"""relayctl against a live relay with two registered clients in mesh "test-mesh"."""

import asyncio
import json
import re
import socket
import subprocess

import pytest

from relayclient import mesh_of


def run_ctl(relayctl_bin, *args, env=None, timeout=20):
    import os
    full_env = dict(os.environ)
    full_env.pop("RELAY_ADMIN_ADDR", None)
    full_env.update(env or {})
    return subprocess.run([relayctl_bin, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


async def actl(relayctl_bin, *args, env=None):
    # off the event loop: the websockets clients keep being served meanwhile
    return await asyncio.to_thread(run_ctl, relayctl_bin, *args, env=env)


async def two_clients(relay):
    return await mesh_of(relay, "test-mesh", [("mac-1", ["llm", "chat"]), ("android-1", [])])


def table_rows(stdout):
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    return [re.split(r"\s{2,}|\t", ln.strip()) for ln in lines]


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


async def test_meshes_list_table(relay, relayctl_bin):
    await two_clients(relay)
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "list")
    assert r.returncode == 0, r
    header = r.stdout.splitlines()[0].split()
    assert header[:4] == ["MESH", "PEERS", "AGE", "MESSAGES"], r.stdout
    rows = [row for row in (ln.split() for ln in r.stdout.splitlines()[1:]) if row]
    assert len(rows) == 1, r.stdout
    assert rows[0][0] == "test-mesh" and rows[0][1] == "2", r.stdout


async def test_meshes_list_json(relay, relayctl_bin):
    await two_clients(relay)
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "list")
    assert r.returncode == 0, r
    data = json.loads(r.stdout)
    found = find_dicts(data, lambda d: d.get("mesh_id", d.get("meshId")) == "test-mesh")
    assert len(found) == 1, data
    assert int(found[0].get("peer_count", found[0].get("peerCount"))) == 2


async def test_meshes_list_empty(relay, relayctl_bin):
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "list")
    assert r.returncode == 0, r
    assert "test-mesh" not in r.stdout


async def test_meshes_show(relay, relayctl_bin):
    await two_clients(relay)
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", "test-mesh")
    assert r.returncode == 0, r
    out = r.stdout
    assert "test-mesh" in out.splitlines()[0], out
    header_idx = next(i for i, ln in enumerate(out.splitlines()) if ln.split()[:1] == ["NODE"])
    header = out.splitlines()[header_idx].split()
    assert header == ["NODE", "NAME", "CAPABILITIES", "JOINED", "REMOTE"], out
    body = [ln for ln in out.splitlines()[header_idx + 1:] if ln.strip()]
    assert [ln.split()[0] for ln in body] == ["mac-1", "android-1"], out
    mac_line = body[0]
    assert "llm" in mac_line and "chat" in mac_line
    assert "127.0.0.1:" in mac_line and "127.0.0.1:" in body[1]


async def test_meshes_show_json(relay, relayctl_bin):
    await two_clients(relay)
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "show", "test-mesh")
    assert r.returncode == 0, r
    data = json.loads(r.stdout)
    nodes = find_dicts(data, lambda d: "node_id" in d or "nodeId" in d)
    ids = [d.get("node_id", d.get("nodeId")) for d in nodes]
    assert ids == ["mac-1", "android-1"], data
    assert nodes[0]["capabilities"] == ["llm", "chat"]


async def test_meshes_show_percent_decoded_mesh(relay, relayctl_bin):
    await mesh_of(relay, "my mesh", [("a", [])])  # sent as /relay/my%20mesh, decoded by the relay
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", "my mesh")
    assert r.returncode == 0, r
    assert "a" in [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]


def test_meshes_show_unknown_exits_1(relay, relayctl_bin):
    r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", "nope")
    assert r.returncode == 1, r
    assert "nope" in (r.stderr + r.stdout)


async def test_meshes_show_after_mesh_emptied_exits_1(relay, relayctl_bin):
    a, b = await two_clients(relay)
    await a.close()
    await b.expect("peer_left")
    await b.close()

    def gone():
        return relay.get_json("/health")["meshes"] == 0
    from relayclient import poll
    await poll(gone, what="mesh removed")
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "meshes", "show", "test-mesh")
    assert r.returncode == 1, r


def parse_kv(stdout):
    kv = {}
    for ln in stdout.splitlines():
        if not ln.strip():
            continue
        m = re.match(r"^\s*([^:]+?)\s*:\s*(.*)$", ln)
        assert m, "not a key: value line: %r" % ln
        kv[m.group(1)] = m.group(2).strip()
    return kv


async def test_stats(relay, relayctl_bin):
    a, b = await two_clients(relay)
    await a.send({"type": "broadcast", "payload": 1})
    await b.recv()
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "stats")
    assert r.returncode == 0, r
    kv = parse_kv(r.stdout)
    mesh_keys = [k for k in kv if "mesh" in k.lower()]
    assert mesh_keys and any(kv[k] == "1" for k in mesh_keys), kv
    assert any(v == "2" for k, v in kv.items() if "peer" in k.lower() or "connection" in k.lower()), kv
    assert any("uptime" in k.lower() for k in kv), kv
    assert any("version" in k.lower() for k in kv), kv


async def test_stats_json(relay, relayctl_bin):
    await two_clients(relay)
    r = await actl(relayctl_bin, "--addr", relay.grpc_addr, "--json", "stats")
    assert r.returncode == 0, r
    data = json.loads(r.stdout)
    assert int(data.get("active_meshes", data.get("activeMeshes"))) == 1, data
    assert int(data.get("registered_peers", data.get("registeredPeers"))) == 2, data


def test_health_serving(relay, relayctl_bin):
    r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "health")
    assert r.returncode == 0, r
    assert r.stdout.strip().splitlines()[-1].strip() == "SERVING" or "SERVING" in r.stdout.split(), r.stdout
    assert "NOT_SERVING" not in r.stdout


def test_addr_from_env(relay, relayctl_bin):
    r = run_ctl(relayctl_bin, "health", env={"RELAY_ADMIN_ADDR": relay.grpc_addr})
    assert r.returncode == 0, r
    assert "SERVING" in r.stdout


def test_addr_flag_wins_over_env(relay, relayctl_bin):
    r = run_ctl(relayctl_bin, "--addr", relay.grpc_addr, "health", env={"RELAY_ADMIN_ADDR": "127.0.0.1:1"})
    assert r.returncode == 0, r


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("cmd", [["health"], ["stats"], ["meshes", "list"], ["meshes", "show", "x"]])
def test_unreachable_exits_3(relayctl_bin, cmd):
    r = run_ctl(relayctl_bin, "--addr", "127.0.0.1:%d" % free_port(), "--timeout", "2", *cmd)
    assert r.returncode == 3, r
    assert r.stderr.strip(), "expected a message on stderr"


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
], ids=["none", "unknown-command", "meshes-no-sub", "meshes-bad-sub", "show-no-id", "addr-no-value",
        "bad-timeout", "unknown-flag", "extra-arg"])
def test_bad_usage_exits_2(relayctl_bin, args):
    r = run_ctl(relayctl_bin, "--addr", "127.0.0.1:%d" % free_port(), *args) if args[:1] != ["--addr"] \
        else run_ctl(relayctl_bin, *args)
    assert r.returncode == 2, r
    assert r.stderr.strip(), "expected a usage message on stderr"
