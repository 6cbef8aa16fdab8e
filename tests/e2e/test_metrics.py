"""GET /metrics, read with the Prometheus project's own parser (Debian python3-prometheus-client):
every family parses with its type, and the counters move as traffic flows."""

import asyncio
import subprocess

import pytest

from prometheus_client.parser import text_string_to_metric_families

from grpcpeer import GrpcPeer, pb
from relayclient import Client, connect_registered, mesh_of, unique_mesh

SPREAD_OVER_CLUSTER = True


def scrape(relay):
    status, headers, body = relay.http("GET", "/metrics")
    assert status == 200, body
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8", headers
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    return families


def value(families, family, sample=None, **labels):
    """The value of one sample (`sample` defaults to the family's own name, e.g. with _total)."""
    f = families[family]
    name = sample or (family + "_total" if f.type == "counter" else family)
    for s in f.samples:
        if s.name == name and s.labels == labels:
            return s.value
    raise AssertionError("no sample %s%r in %r" % (name, labels, [(s.name, s.labels) for s in f.samples]))


EXPECTED_TYPES = {
    "relay_build_info": "gauge", "relay_connections_open": "gauge", "relay_peers_registered": "gauge",
    "relay_meshes_active": "gauge", "relay_draining": "gauge", "relay_auth_records": "gauge",
    "relay_limit_hits": "counter",
    "relay_connections": "counter", "relay_disconnections": "counter", "relay_upgrades_refused": "counter",
    "relay_slow_consumer_closes": "counter", "relay_messages_received": "counter",
    "relay_messages_relayed": "counter", "relay_deliveries_dropped": "counter",
    "relay_relayed_payload_bytes": "counter",
    "relay_received_bytes": "counter", "relay_sent_bytes": "counter", "relay_errors": "counter",
    "relay_auth_failures": "counter", "relay_rate_limited": "counter", "relay_llm_requests": "counter",
    "relay_unrouted_messages": "counter", "relay_connections_max": "gauge", "relay_auth_records_max": "gauge",
    "relay_resume_sessions": "gauge", "relay_resume_sessions_suspended": "gauge",
    "relay_resume_buffered_bytes": "gauge", "relay_resumes": "counter",
    "relay_resume_replayed_frames": "counter", "relay_resume_duplicate_frames": "counter",
    "relay_resume_sessions_ended": "counter",
    "relay_latency_seconds": "histogram", "relay_llm_round_trip_seconds": "histogram",
    "process_resident_memory_bytes": "gauge", "process_open_fds": "gauge", "process_cpu_seconds": "counter",
}


def test_every_family_parses_with_its_type(relay):
    families = scrape(relay)
    for name, kind in EXPECTED_TYPES.items():
        assert name in families, "missing %s in %s" % (name, sorted(families))
        assert families[name].type == kind, (name, families[name].type)
    assert value(families, "relay_connections_open") == 0
    assert value(families, "relay_draining") == 0
    build = families["relay_build_info"].samples
    assert len(build) == 1 and build[0].value == 1, build
    version_line = subprocess.run([relay.binary, "--version"], capture_output=True, text=True, check=True).stdout
    assert version_line.strip() == "relay %s (commit %s)" % (build[0].labels["version"], build[0].labels["commit"])
    assert value(families, "process_resident_memory_bytes") > 1 << 20
    assert value(families, "process_open_fds") > 3
    for reason in ("client_closed", "slow_consumer", "rate_limited", "auth_failed", "kicked"):
        assert value(families, "relay_disconnections", reason=reason) == 0
    for reason in ("closing", "slow_consumer", "unreachable"):
        assert value(families, "relay_deliveries_dropped", reason=reason) == 0
    for outcome in ("answered", "no_llm_peer", "peer_left"):
        assert value(families, "relay_llm_requests", outcome=outcome) == 0
    for type_ in ("gossip", "intent", "route_request", "route_response"):
        assert value(families, "relay_unrouted_messages", type=type_) == 0
    for limit in ("message_rate", "byte_rate", "request_id_bytes", "pending_llm_bytes", "nonce_bytes",
                  "token_lifetime", "auth_records", "auth_records_per_ip"):
        assert value(families, "relay_limit_hits", limit=limit) == 0
    assert value(families, "relay_auth_records") == 0
    assert value(families, "relay_connections_max") == 10000  # MAX_CONNECTIONS' default
    assert value(families, "relay_auth_records_max") == 100000


def test_limit_gauges_follow_the_settings(relay_factory):
    relay = relay_factory("--max-connections", "777", "--max-auth-records", "4242")
    families = scrape(relay)
    assert value(families, "relay_connections_max") == 777
    assert value(families, "relay_auth_records_max") == 4242


async def test_limit_hits_and_auth_records_move_when_a_bound_refuses(relay):
    mesh = unique_mesh("bound")
    owner = await connect_registered(relay, mesh, "owner", token="secret")
    await owner.send({"type": "llm_request", "request_id": "x" * 300, "prompt": "hi"})
    await owner.expect_error("bad_message")
    families = scrape(relay)
    assert value(families, "relay_limit_hits", limit="request_id_bytes") == 1
    assert value(families, "relay_auth_records") == 1  # the mesh's token binding


@pytest.mark.one_instance("counts one process's connections and messages on its /metrics")
async def test_counters_move_as_messages_flow(relay):
    before = scrape(relay)
    mesh = unique_mesh("metrics")
    a, b, c = await mesh_of(relay, mesh, [("a", []), ("b", []), ("mac", ["llm"])])
    for i in range(5):
        await a.send({"type": "broadcast", "payload": {"i": i}})
    for r in (b, c):
        for _ in range(5):
            await r.expect("message")
    await a.send({"type": "direct", "target": "b", "payload": "x" * 100})
    await b.expect("message")
    await a.send({"type": "direct", "target": "ghost", "payload": 1})
    await a.expect_error("unknown_target")
    await a.send({"type": "llm_request", "request_id": 1, "prompt": "hi"})
    await c.expect("llm_request")
    await asyncio.sleep(0.05)
    await c.send({"type": "llm_response", "target": "a", "request_id": 1, "response": "yo"})
    await a.expect("llm_response")
    for _ in range(2):
        await a.send({"type": "gossip", "payload": {}})
    await a.send({"type": "intent", "request_id": "i", "intent": "x"})
    await a.expect_error("unknown_type")
    bad = await Client.connect(relay, mesh)
    await bad.send({"type": "register", "node_id": "a", "token": "nope"})
    await bad.expect_error("node_id_in_use")
    await bad.close()
    # a gRPC peer's bytes count under its transport
    g = GrpcPeer(relay)
    try:
        await asyncio.to_thread(g.register, unique_mesh("g"), "g")
        g.send(ping=pb.Ping())
        await asyncio.to_thread(g.expect, "pong")
    finally:
        g.shut()

    after = scrape(relay)

    def delta(family, **labels):
        return value(after, family, **labels) - value(before, family, **labels)

    assert value(after, "relay_connections_open") >= 3
    assert value(after, "relay_peers_registered") >= 3
    assert value(after, "relay_meshes_active") >= 1
    assert delta("relay_messages_relayed", type="broadcast") == 10
    assert delta("relay_messages_relayed", type="direct") == 1
    assert delta("relay_messages_relayed", type="llm_request") == 1
    assert delta("relay_messages_relayed", type="llm_response") == 1
    assert delta("relay_relayed_payload_bytes", type="direct") == 102  # the JSON string, quotes included
    assert delta("relay_errors", code="unknown_target") == 1
    assert delta("relay_errors", code="node_id_in_use") == 1
    assert delta("relay_llm_requests", outcome="answered") == 1
    assert delta("relay_unrouted_messages", type="gossip") == 2
    assert delta("relay_unrouted_messages", type="intent") == 1
    assert delta("relay_unrouted_messages", type="route_request") == 0
    assert delta("relay_errors", code="unknown_type") == 1
    assert delta("relay_received_bytes", transport="ws") > 500
    assert delta("relay_sent_bytes", transport="ws") > 1000
    assert delta("relay_received_bytes", transport="grpc") > 0
    assert delta("relay_sent_bytes", transport="grpc") > 0
    # 5 broadcasts, 2 directs, 1 llm_request, 1 llm_response observed
    assert value(after, "relay_latency_seconds", "relay_latency_seconds_count") - \
        value(before, "relay_latency_seconds", "relay_latency_seconds_count") == 9
    assert value(after, "relay_llm_round_trip_seconds", "relay_llm_round_trip_seconds_count") == 1
    assert value(after, "relay_llm_round_trip_seconds", "relay_llm_round_trip_seconds_sum") >= 0.05
    le_1s = value(after, "relay_llm_round_trip_seconds", "relay_llm_round_trip_seconds_bucket", le="1")
    assert le_1s == 1


async def test_limits_show_in_metrics(relay_factory):
    relay = relay_factory("--rate-limit-per-second", "1", "--rate-limit-burst", "2")
    c = await connect_registered(relay, unique_mesh("rl"), "c")
    for _ in range(5):
        await c.send({"type": "ping"})
    families_seen = None
    for _ in range(50):
        families_seen = scrape(relay)
        if value(families_seen, "relay_rate_limited") >= 1:
            break
        await asyncio.sleep(0.05)
    assert value(families_seen, "relay_rate_limited") >= 1
    assert value(families_seen, "relay_errors", code="rate_limited") == value(families_seen, "relay_rate_limited")
