"""ALLOWED_ORIGINS and CORS against the real relay binary (docs/security.md "Browser origins",
docs/protocol.md "HTTP endpoints").

By default every origin may connect and read /, /health, /ready and /stats from a browser
(`Access-Control-Allow-Origin: *`): the relay authenticates by token, not cookies. With a list,
an upgrade whose Origin is not exactly on it gets HTTP 403 origin_not_allowed before the
upgrade, counted in /stats "refused" and relay_upgrades_refused_total{reason}; an upgrade without
Origin (not a browser) still works; the JSON endpoints echo an allowed origin with
`Vary: Origin` and answer OPTIONS preflights with 204; /metrics never carries CORS.
What a stranger's page or script would try: lookalike origins (case, trailing slash, default
port, suffix and prefix tricks, `null`, `*`), two Origin headers, an empty one.
"""

import asyncio
import subprocess

import pytest
import websockets

import rawws
from relayclient import Client, unique_mesh

APP = "https://app.example.com"
LOCAL = "http://localhost:3000"
ORIGINS = "%s, %s" % (APP, LOCAL)
JSON_PATHS = ("/", "/health", "/ready", "/stats")

# Each must be refused under ALLOWED_ORIGINS=https://app.example.com,http://localhost:3000.
LOOKALIKES = (
    "https://APP.example.com",           # browsers send lowercase: this is no browser's
    "HTTPS://app.example.com",
    "https://app.example.com/",          # trailing slash
    "https://app.example.com/x",
    "https://app.example.com:443",       # the default port written out
    "https://app.example.com.",          # trailing dot
    "https://app.example.com.evil.test", # suffix
    "https://evilapp.example.com",       # prefix
    "https://evil.test",
    "http://app.example.com",            # other scheme
    "https://app.example.com:8443",      # other port
    "http://localhost:30000",
    "http://localhost",
    "null",                              # sandboxed iframes, file: pages, redirects
    "*",
    "https://app.example.com https://evil.test",
)


def refused_counts(relay):
    stats = relay.get_json("/stats")["refused"]
    _, _, body = relay.http("GET", "/metrics")
    metric = None
    for line in body.decode().splitlines():
        if line.startswith('relay_upgrades_refused_total{reason="origin_not_allowed"} '):
            metric = int(float(line.rsplit(" ", 1)[1]))
    assert metric is not None, "relay_upgrades_refused_total has no origin_not_allowed series"
    return stats["origin_not_allowed"], metric


def upgrade(relay, origin_headers):
    return rawws.try_upgrade(relay.host, relay.port, "/relay/%s" % unique_mesh("origin"),
                             extra_headers=["Origin: %s" % o for o in origin_headers])


def assert_refused(resp, what):
    assert resp.status == 403, (what, resp)
    assert resp.headers.get("content-type", "").startswith("application/json"), (what, resp.headers)
    body = resp.json()
    assert body["error"] == "origin_not_allowed", (what, body)
    assert "ALLOWED_ORIGINS" in body["message"], body
    assert "sec-websocket-accept" not in resp.headers, (what, resp.headers)


async def talk(a, b):
    """a and b registered in one mesh see each other and a broadcast crosses."""
    mesh = unique_mesh("origin-talk")
    ca = await Client.connect(a[0], mesh, **a[1])
    await ca.register("page")
    cb = await Client.connect(b[0], mesh, **b[1])
    await cb.register("app")
    assert (await ca.expect("peer_joined"))["node_id"] == "app"
    await cb.send({"type": "broadcast", "payload": {"hi": 1}})
    got = await ca.expect("message")  # a broadcast arrives as "message" (protocol.md)
    assert got["from"] == "app" and got["payload"] == {"hi": 1}, got


# --- the default: any origin ------------------------------------------------------------------

async def test_default_policy_lets_every_origin_connect_and_read(relay):
    await talk((relay, {"origin": "https://anywhere.test"}), (relay, {}))
    resp = await asyncio.to_thread(upgrade, relay, ["null"])
    assert resp.status == 101, resp
    for path in JSON_PATHS:
        status, headers, _ = await asyncio.to_thread(relay.http, "GET", path, None, {"Origin": "https://x.test"})
        assert status == 200, path
        assert headers.get("access-control-allow-origin") == "*", (path, headers)
        assert "vary" not in headers, (path, headers)
        status, headers, body = await asyncio.to_thread(
            relay.http, "OPTIONS", path, None,
            {"Origin": "https://x.test", "Access-Control-Request-Method": "GET"})
        assert status == 204 and body == b"", (path, status, body)
        assert headers.get("access-control-allow-origin") == "*", (path, headers)
        assert headers.get("access-control-allow-methods") == "GET, HEAD", headers
    assert (await asyncio.to_thread(refused_counts, relay)) == (0, 0)


# --- a list -----------------------------------------------------------------------------------

async def test_listed_origins_and_clients_without_origin_connect(relay_factory):
    relay = relay_factory(env={"ALLOWED_ORIGINS": ORIGINS})
    # A browser page on a listed origin talks to a non-browser client (no Origin header).
    await talk((relay, {"origin": APP}), (relay, {}))
    await talk((relay, {"origin": LOCAL}), (relay, {"origin": APP}))
    for headers in ([APP], [LOCAL], [], [""]):  # an empty Origin is no Origin
        resp = await asyncio.to_thread(upgrade, relay, headers)
        assert resp.status == 101, (headers, resp)
    assert (await asyncio.to_thread(refused_counts, relay)) == (0, 0)


async def test_other_origins_get_403_before_the_upgrade_and_are_counted(relay_factory):
    relay = relay_factory("--allowed-origins", ORIGINS)
    before = await asyncio.to_thread(refused_counts, relay)
    assert before == (0, 0)
    for origin in LOOKALIKES:
        assert_refused(await asyncio.to_thread(upgrade, relay, [origin]), origin)
    # Two Origin headers, one of them listed: joined, they are no listed origin.
    assert_refused(await asyncio.to_thread(upgrade, relay, [APP, "https://evil.test"]), "two headers")
    assert_refused(await asyncio.to_thread(upgrade, relay, ["https://evil.test", APP]), "two headers")
    # Header names are case-insensitive (RFC 9110): a lowercase one is read, not missed.
    resp = await asyncio.to_thread(rawws.try_upgrade, relay.host, relay.port, "/relay/%s" % unique_mesh("origin"),
                                   extra_headers=["origin: https://evil.test"])
    assert_refused(resp, "lowercase header name")
    want = len(LOOKALIKES) + 3
    assert (await asyncio.to_thread(refused_counts, relay)) == (want, want)
    # The websockets library as a page's script would: refused with the status.
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as refused:
        await Client.connect(relay, unique_mesh("origin"), origin="https://evil.test")
    assert refused.value.status_code == 403
    # Nothing of the refused reached the core: no socket is left open, nothing registered.
    stats = await asyncio.to_thread(relay.get_json, "/stats")
    assert stats["open_sockets"] == 0 and stats["total_connections"] == 0, stats
    assert stats["refused"]["origin_not_allowed"] == want + 1, stats["refused"]
    # The relay still serves: a listed origin connects after the storm.
    await talk((relay, {"origin": APP}), (relay, {}))
    # Logged (first and every 100th), with the client's address and origin.
    assert "origin_not_allowed" in relay.stderr_text(), relay.stderr_text()


async def test_cors_headers_follow_the_list(relay_factory):
    relay = relay_factory(env={"ALLOWED_ORIGINS": ORIGINS})
    for path in JSON_PATHS:
        status, headers, _ = await asyncio.to_thread(relay.http, "GET", path, None, {"Origin": LOCAL})
        assert status == 200, path
        assert headers.get("access-control-allow-origin") == LOCAL, (path, headers)
        assert headers.get("vary") == "Origin", (path, headers)
        for origin in LOOKALIKES[:8] + ("null",):
            status, headers, _ = await asyncio.to_thread(relay.http, "GET", path, None, {"Origin": origin})
            assert status == 200, (path, origin)  # public data: only the browser's read is refused
            assert "access-control-allow-origin" not in headers, (path, origin, headers)
            assert headers.get("vary") == "Origin", (path, origin, headers)
        status, headers, _ = await asyncio.to_thread(relay.http, "GET", path)
        assert "access-control-allow-origin" not in headers and headers.get("vary") == "Origin", headers
        # HEAD too.
        status, headers, _ = await asyncio.to_thread(relay.http, "HEAD", path, None, {"Origin": APP})
        assert headers.get("access-control-allow-origin") == APP, (path, headers)


async def test_preflight_is_answered_204_for_listed_origins_only(relay_factory):
    relay = relay_factory(env={"ALLOWED_ORIGINS": ORIGINS})
    for path in JSON_PATHS:
        status, headers, body = await asyncio.to_thread(
            relay.http, "OPTIONS", path, None,
            {"Origin": APP, "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "cache-control"})
        assert status == 204, (path, status, body)
        assert body == b"" and headers.get("content-length", "0") == "0", (path, headers)
        assert headers.get("access-control-allow-origin") == APP, headers
        assert headers.get("access-control-allow-methods") == "GET, HEAD", headers
        assert "cache-control" in headers.get("access-control-allow-headers", "").lower(), headers
        assert headers.get("access-control-max-age") == "7200", headers
        assert headers.get("allow") == "GET, HEAD, OPTIONS", headers
        assert headers.get("vary") == "Origin", headers
        status, headers, _ = await asyncio.to_thread(
            relay.http, "OPTIONS", path, None, {"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"})
        assert status == 204, path
        assert "access-control-allow-origin" not in headers and "access-control-allow-methods" not in headers, headers
    # Other methods name what is allowed.
    status, headers, body = await asyncio.to_thread(relay.http, "POST", "/health", b"{}", {"Origin": APP})
    assert status == 405 and headers.get("allow") == "GET, HEAD, OPTIONS", (status, headers)
    assert rawws.HttpResponse(status, "", headers, body).json()["error"] == "method_not_allowed"
    # A preflight is not an upgrade: nothing refused.
    assert (await asyncio.to_thread(refused_counts, relay)) == (0, 0)


async def test_metrics_never_carries_cors(relay_factory):
    for relay in (relay_factory(), relay_factory(env={"ALLOWED_ORIGINS": ORIGINS})):
        status, headers, _ = await asyncio.to_thread(relay.http, "GET", "/metrics", None, {"Origin": APP})
        assert status == 200
        assert "access-control-allow-origin" not in headers, headers
        status, headers, _ = await asyncio.to_thread(
            relay.http, "OPTIONS", "/metrics", None, {"Origin": APP, "Access-Control-Request-Method": "GET"})
        assert status == 405 and headers.get("allow") == "GET, HEAD", (status, headers)
        assert "access-control-allow-origin" not in headers, headers


@pytest.mark.parametrize("value", ["https://app.example.com/", "null", "*,https://app.example.com",
                                   "https://*.example.com", "app.example.com"])
def test_a_bad_list_stops_the_relay_at_start_naming_the_setting(relay_bin, value):
    for args, env in ((["--allowed-origins", value], {}), ([], {"ALLOWED_ORIGINS": value})):
        p = subprocess.run([relay_bin, "--port", "0", "--grpc-port", "0", "--host", "127.0.0.1", *args],
                           env=dict(env, PATH="/usr/bin:/bin"), capture_output=True, text=True, timeout=20)
        assert p.returncode != 0, (value, p.stdout, p.stderr)
        assert "listening" not in p.stdout, p.stdout
        assert "allowed-origins" in p.stderr.lower() or "ALLOWED_ORIGINS" in p.stderr, p.stderr
        assert value.split(",")[-1] in p.stderr or "*" in p.stderr, p.stderr
