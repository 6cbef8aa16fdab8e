"""Dropped deliveries against the real binary: what the relay could not hand to a connection is
counted by reason in /stats "drops" and relay_deliveries_dropped_total{reason}. A peer that
closes while broadcasts to it are still coming counts them as "closing"; a peer that stops
reading is closed as a slow consumer (MAX_QUEUED_BYTES_PER_CONNECTION) and counts
"slow_consumer" once.

In the cluster topology the producer is on the second instance and the peer that closes or stops
reading on the first (RawWS connects to relay.host/port): the deliveries reach it through the
backplane, and the first instance, which holds the connection, counts the drops."""

import asyncio
import json
import subprocess

from prometheus_client.parser import text_string_to_metric_families

import rawws
from relayclient import connect_registered, instance, poll, unique_mesh

MIB = 1 << 20
REASONS = ("closing", "slow_consumer", "unreachable", "resume_overflow")

# Run again on three instances (conftest.py).
SPREAD_OVER_CLUSTER = True


def stats(relay):
    return relay.get_json("/stats")


def relayed_or_dropped(s):
    """Deliveries a relay made or dropped as closing, from one /stats."""
    return s["total_messages_relayed"] + s["drops"]["closing"]


def dropped_metrics(relay):
    """{reason: value} of relay_deliveries_dropped_total."""
    status, _, body = relay.http("GET", "/metrics")
    assert status == 200, body
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "relay_deliveries_dropped":
            assert family.type == "counter", family
            return {s.labels["reason"]: s.value for s in family.samples
                    if s.name == "relay_deliveries_dropped_total"}
    raise AssertionError("no relay_deliveries_dropped_total in /metrics")


def assert_metrics_agree(relay):
    drops = stats(relay)["drops"]
    assert sorted(drops) == sorted(REASONS), drops
    assert dropped_metrics(relay) == {r: float(drops[r]) for r in REASONS}
    return drops


def queued_bytes(relayctl_bin, relay, mesh, node_id):
    r = subprocess.run([relayctl_bin, "--addr", relay.grpc_addr, "--json", "meshes", "show", mesh],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r
    for peer in json.loads(r.stdout)["peers"]:
        if peer["node_id"] == node_id:
            return int(peer["queued_bytes"])
    raise AssertionError("%s not in mesh %s: %s" % (node_id, mesh, r.stdout))


async def test_broadcasts_to_a_peer_that_is_closing_count_as_dropped_closing(relay_factory, relayctl_bin):
    relay = relay_factory("--max-queued-bytes-per-connection", str(16 * MIB),
                          "--rate-limit-bytes-per-second", "0")
    mesh = unique_mesh("closing")
    producer = await connect_registered(instance(relay, 1), mesh, "producer")
    # The leaver reads nothing after it registered; a small receive window keeps the kernel from
    # taking much of what the relay sends it.
    leaver = await asyncio.to_thread(rawws.RawWS, relay.host, relay.port, "/relay/" + mesh,
                                     rcvbuf=64 * 1024)
    try:
        await asyncio.to_thread(leaver.register, "leaver")
        await producer.expect("peer_joined")

        # 6 MiB for the leaver: more than the kernel buffers hold, so part of it waits in the
        # relay, and the answer to the leaver's close frame waits behind it.
        frame = json.dumps({"type": "broadcast", "payload": "x" * (512 * 1024)})
        for _ in range(12):
            await producer.send_raw(frame)
        await producer.ping_barrier()
        # The leaver's relay has them all (from the producer's instance, in the cluster).
        await poll(lambda: stats(relay)["total_messages_relayed"] == 12, timeout=10,
                   what="the 12 broadcasts queued for the leaver")
        queued = await asyncio.to_thread(queued_bytes, relayctl_bin, relay, mesh, "leaver")
        assert queued > 0, "nothing waits in the relay for the leaver: the test proves nothing"
        assert assert_metrics_agree(relay) == {"closing": 0, "slow_consumer": 0, "unreachable": 0,
                                                "resume_overflow": 0}

        # The leaver closes; broadcasts keep coming while its connection is closing.
        await asyncio.to_thread(leaver.send_close, 1000, "bye")
        burst = 50
        for i in range(burst):
            await producer.send({"type": "broadcast", "payload": {"n": i}})
        await producer.ping_barrier()
        # Each of them was either queued for the leaver or dropped, by the leaver's relay.
        await poll(lambda: relayed_or_dropped(stats(relay)) == 12 + burst, timeout=10,
                   what="every broadcast relayed or dropped")

        drops = assert_metrics_agree(relay)
        assert 1 <= drops["closing"] <= burst, drops
        assert drops["slow_consumer"] == 0 and drops["unreachable"] == 0, drops
        # Dropped deliveries are not relayed ones: 12 big broadcasts queued, the rest not all.
        assert stats(relay)["total_messages_relayed"] == 12 + burst - drops["closing"]

        # The leaver is gone soon after (its close handshake times out) and told nobody but the
        # producer; once it is, broadcasts have no recipient and nothing more is dropped.
        assert await producer.recv(timeout=10) == {"type": "peer_left", "node_id": "leaver"}
        # A newcomer on the leaver's relay gets that broadcast: that relay has handled it.
        late = await connect_registered(instance(relay, 0), mesh, "late")
        assert (await producer.expect("peer_joined"))["node_id"] == "late"
        await producer.send({"type": "broadcast", "payload": {"n": "after"}})
        assert await late.recv() == {"type": "message", "from": "producer", "payload": {"n": "after"}}
        assert assert_metrics_agree(relay) == drops
        # Nor did the producer's relay drop any (in the cluster, one that forwards to the leaver's).
        assert assert_metrics_agree(instance(relay, 1))["unreachable"] == 0
    finally:
        leaver.close()


async def test_a_slow_consumer_is_closed_and_counted_as_dropped_slow_consumer_once(relay_factory):
    relay = relay_factory("--max-queued-bytes-per-connection", str(MIB),
                          "--rate-limit-bytes-per-second", "0")
    mesh = unique_mesh("slow")
    producer = await connect_registered(instance(relay, 1), mesh, "producer")
    slow = await asyncio.to_thread(rawws.RawWS, relay.host, relay.port, "/relay/" + mesh,
                                   rcvbuf=64 * 1024)
    try:
        await asyncio.to_thread(slow.register, "slow")
        await producer.expect("peer_joined")
        assert assert_metrics_agree(relay)["slow_consumer"] == 0

        # 10 MiB offered to a consumer that reads nothing, allowed 1 MiB waiting in the relay.
        frame = json.dumps({"type": "broadcast", "payload": "y" * (256 * 1024)})
        for _ in range(40):
            await producer.send_raw(frame)
        await producer.ping_barrier()
        await poll(lambda: stats(relay)["closes"]["slow_consumer"] == 1, timeout=10,
                   what="closes.slow_consumer == 1")

        # The delivery that would have gone past the bound is the one slow_consumer drop; what
        # came after it found the connection closing.
        drops = assert_metrics_agree(relay)
        assert drops["slow_consumer"] == 1, drops
        assert drops["unreachable"] == 0, drops
        assert drops["closing"] <= 40 - 1, drops

        # The consumer gets what the kernel held, then the slow-consumer close (or, when it read
        # too late for the close handshake, a cut connection).
        closed = await asyncio.to_thread(slow.wait_closed, 20)
        assert closed.code in (1013, None), closed
        if closed.code == 1013:
            assert closed.reason == "slow consumer", closed
        assert await producer.recv(timeout=10) == {"type": "peer_left", "node_id": "slow"}
        await producer.ping_barrier()
        assert assert_metrics_agree(relay)["slow_consumer"] == 1
        assert assert_metrics_agree(instance(relay, 1))["unreachable"] == 0
    finally:
        slow.close()
