"""The operator's cluster-wide views, end to end: three real relay instances on a real
three-node NATS cluster (natscluster.py), peers spread over them, and `relayctl meshes
list/show --json` asked of ONE instance, which must show every peer with the instance that
holds it. And the attack side: a stranger without the admin token gets nothing from the
Admin API, and the public /stats names no mesh and no node."""

import asyncio
import json
import os
import subprocess
import uuid

from relayclient import Client, poll

TOKEN = "views-admin-token"


def run_ctl(relayctl_bin, *args, token=TOKEN, timeout=20):
    env = dict(os.environ)
    for name in ("RELAY_ADMIN_ADDR", "RELAY_ADMIN_TOKEN", "RELAY_ADMIN_CA"):
        env.pop(name, None)
    if token is not None:
        env["RELAY_ADMIN_TOKEN"] = token
    return subprocess.run([relayctl_bin, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def ctl_json(result):
    assert result.returncode == 0, result
    return json.loads(result.stdout)


async def spread(rc, mesh, nodes):
    """Node i registers on instance i % 3; returns the clients once the first saw them all."""
    clients = []
    for i, node in enumerate(nodes):
        c = await Client.connect(rc.instances[i % len(rc.instances)], mesh)
        await c.register(node)
        clients.append(c)
    for later in clients[1:]:
        msg = await clients[0].expect("peer_joined", timeout=10)
        assert msg["node_id"] in nodes, msg
    return clients


def test_one_instance_shows_every_peer_with_its_instance(cluster, relayctl_bin):
    rc = cluster(env={"ADMIN_TOKEN": TOKEN})
    mesh_a = "views-a-" + uuid.uuid4().hex[:8]
    mesh_b = "views-b-" + uuid.uuid4().hex[:8]

    async def scenario():
        a = await spread(rc, mesh_a, ["a0", "a1", "a2", "a3"])  # instances 0, 1, 2, 0
        # mesh_b has no member on instance 0, the one asked.
        b1 = await Client.connect(rc.instances[1], mesh_b)
        await b1.register("b1")
        b2 = await Client.connect(rc.instances[2], mesh_b)
        await b2.register("b2")
        await b1.expect("peer_joined", timeout=10)

        addr = rc.instances[0].grpc_addr
        listed = await asyncio.to_thread(run_ctl, relayctl_bin, "--addr", addr, "--json",
                                         "meshes", "list")
        meshes = {m["mesh_id"]: m for m in ctl_json(listed)["meshes"]}
        assert meshes[mesh_a]["peer_count"] == 4, meshes
        assert meshes[mesh_b]["peer_count"] == 2, meshes

        ids = rc.instance_ids
        for mesh, want in ((mesh_a, {"a0": ids[0], "a1": ids[1], "a2": ids[2], "a3": ids[0]}),
                           (mesh_b, {"b1": ids[1], "b2": ids[2]})):
            shown = ctl_json(await asyncio.to_thread(run_ctl, relayctl_bin, "--addr", addr,
                                                     "--json", "meshes", "show", mesh))
            assert {p["node_id"]: p["instance"] for p in shown["peers"]} == want, shown
            assert shown["mesh"]["peer_count"] == len(want)
            for p in shown["peers"]:
                # Connection details only where the connection is.
                assert (p["remote_address"] != "") == (p["instance"] == ids[0]), p

        # A peer that leaves is gone from the view of the instance that never held it.
        await a[1].close()
        await poll(lambda: "a1" not in {
            p["node_id"] for p in ctl_json(run_ctl(relayctl_bin, "--addr", addr, "--json",
                                                   "meshes", "show", mesh_a))["peers"]},
            timeout=10)
        for c in a + [b1, b2]:
            await c.close()

    asyncio.run(scenario())


def test_a_stranger_gets_no_mesh_or_node_id(cluster, relayctl_bin):
    rc = cluster(env={"ADMIN_TOKEN": TOKEN})
    mesh = "views-secret-" + uuid.uuid4().hex[:8]

    async def scenario():
        clients = await spread(rc, mesh, ["secret-node-0", "secret-node-1", "secret-node-2"])
        for r in rc.instances:
            for args in (("meshes", "list"), ("meshes", "show", mesh), ("stats",)):
                for token in (None, "wrong-token"):
                    result = await asyncio.to_thread(run_ctl, relayctl_bin, "--addr", r.grpc_addr,
                                                     "--json", *args, token=token)
                    assert result.returncode != 0, result
                    assert mesh not in result.stdout + result.stderr
                    assert "secret-node" not in result.stdout + result.stderr
            status, _, body = r.http("GET", "/stats")
            assert status == 200
            text = body.decode() if isinstance(body, bytes) else body
            assert mesh not in text and "secret-node" not in text, text
        for c in clients:
            await c.close()

    asyncio.run(scenario())


def test_stats_show_this_instance_and_the_clusters_totals(cluster, relayctl_bin):
    rc = cluster(env={"ADMIN_TOKEN": TOKEN})
    mesh = "views-stats-" + uuid.uuid4().hex[:8]
    ids = rc.instance_ids

    async def scenario():
        clients = await spread(rc, mesh, ["s0", "s1", "s2", "s3", "s4"])  # 2, 2, 1 per instance
        want_peers = {ids[0]: 2, ids[1]: 2, ids[2]: 1}

        def cluster_stats():
            stats = ctl_json(run_ctl(relayctl_bin, "--addr", rc.instances[1].grpc_addr, "--json",
                                     "stats"))
            # /stats' names (active_connections), relayctl 1.0's (registered_peers) as aliases.
            return stats if {i["instance_id"]: i["active_connections"]
                             for i in stats.get("cluster", {}).get("instances", [])} == want_peers \
                else None

        # Leases carry each instance's counts, rewritten every second.
        stats = await poll(lambda: cluster_stats(), timeout=10, what="every lease's counts")
        assert stats["instance_id"] == ids[1], stats
        totals = stats["cluster"]
        assert totals["active_connections"] == 5 and totals["registered_peers"] == 5, totals
        for field in ("open_sockets", "active_connections", "total_messages_relayed"):
            assert totals[field] == sum(i[field] for i in totals["instances"]), totals
        # The instance's own figure agrees with its lease.
        assert stats["active_connections"] == 2 and stats["registered_peers"] == 2, stats

        text = (await asyncio.to_thread(run_ctl, relayctl_bin, "--addr", rc.instances[1].grpc_addr,
                                        "stats")).stdout
        assert "cluster.active_connections" in text and ids[2] in text, text

        # The public /stats: which instance answered, and nothing of the others.
        for i, r in enumerate(rc.instances):
            body = r.get_json("/stats")
            assert body["instance_id"] == ids[i], body
            assert "cluster" not in body, body
        for c in clients:
            await c.close()

    asyncio.run(scenario())
