"""What an operator sees of the relay process itself, against the real binaries: `--version` on
relay and relayctl (the version and the git commit baked in at build time); the listening lines
(IPv6 in brackets); the Server header (the service's name, no library, no version); LOG_FORMAT=json
making every line the relay prints, on stdout and stderr, a JSON log event."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import websockets

from relayclient import REPO, Client, RelayProcess, parse_listening, unique_mesh

VERSION_RE = re.compile(r"^(relay|relayctl) (\d+\.\d+\.\d+) \(commit ([A-Za-z0-9._+-]+)\)\n$")


def run(*args, timeout=10, env=None):
    full_env = dict(os.environ)
    for name in ("RELAY_ADMIN_ADDR", "RELAY_ADMIN_TOKEN", "RELAY_ADMIN_CA", "LOG_FORMAT", "LOG_LEVEL"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=full_env,
                          stdin=subprocess.DEVNULL)


def git(*args):
    return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, timeout=10)


def test_version_of_both_binaries_names_the_same_build_and_commit(relay_bin, relayctl_bin):
    seen = {}
    for binary in (relay_bin, relayctl_bin):
        r = run(binary, "--version")
        assert r.returncode == 0, r
        assert r.stderr == "", r.stderr
        m = VERSION_RE.match(r.stdout)
        assert m, r.stdout
        seen[m.group(1)] = (m.group(2), m.group(3))
    assert seen["relay"] == seen["relayctl"], seen
    version, commit = seen["relay"]
    cmake = open(os.path.join(REPO, "CMakeLists.txt")).read()
    assert re.search(r"project\(atmosphere_relay VERSION %s\b" % re.escape(version), cmake), version
    if git("rev-parse", "--git-dir").returncode != 0:
        assert commit == "unknown", commit  # built from a tarball
        return
    # Built from this checkout: a commit of it (the binary may be older than HEAD), with -dirty
    # when tracked files had changes at build time.
    assert commit != "unknown", commit
    abbrev = re.match(r"^(?:.*-g)?([0-9a-f]{12})(?:-dirty)?$", commit)
    assert abbrev, commit
    assert git("cat-file", "-e", abbrev.group(1) + "^{commit}").returncode == 0, commit


def test_version_wins_over_every_other_flag_and_starts_nothing(relay_bin, relayctl_bin):
    r = run(relay_bin, "--port", "0", "--grpc-port", "0", "--version")
    assert r.returncode == 0 and VERSION_RE.match(r.stdout), r
    assert "listening" not in r.stdout
    # relayctl needs no command, and reaches no relay (nothing listens on port 1).
    r = run(relayctl_bin, "--addr", "127.0.0.1:1", "--version")
    assert r.returncode == 0 and VERSION_RE.match(r.stdout), r


def test_version_answers_when_the_environment_holds_a_bad_setting(relay_bin, relayctl_bin):
    # An operator reaches for --version precisely when something is misconfigured.
    bad = {"PORT": "abc", "LOG_LEVEL": "loud", "RELAY_DATA_DIR": "", "MAX_CONNECTIONS": "-1"}
    r = run(relay_bin, "--version", env=bad)
    assert r.returncode == 0 and VERSION_RE.match(r.stdout), r
    assert r.stderr == "", r.stderr
    r = run(relay_bin, "--help", env=bad)
    assert r.returncode == 0 and "--version" in r.stdout, r
    r = run(relay_bin, env=bad)  # without it, the bad setting is still refused
    assert r.returncode == 2 and "PORT" in r.stderr, r
    r = run(relayctl_bin, "--version", env={"RELAY_ADMIN_ADDR": "not an address", "RELAY_ADMIN_TIMEOUT": "x"})
    assert r.returncode == 0 and VERSION_RE.match(r.stdout), r


def test_relayctl_version_json(relay_bin, relayctl_bin):
    r = run(relayctl_bin, "--json", "--version")
    assert r.returncode == 0, r
    data = json.loads(r.stdout)
    assert sorted(data) == ["commit", "version"], data
    text = VERSION_RE.match(run(relay_bin, "--version").stdout)
    assert (data["version"], data["commit"]) == (text.group(2), text.group(3))


def test_relay_logs_its_version_and_commit_when_it_starts(relay):
    version = VERSION_RE.match(run(relay.binary, "--version").stdout)
    line = "relay %s (commit %s) starting: " % (version.group(2), version.group(3))
    assert line in relay.stderr_text(limit=100000), relay.stderr_text()


# ---------------------------------------------------------------------------
# Listening lines, Server header
# ---------------------------------------------------------------------------

def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_ipv6_listening_lines_put_the_address_in_brackets(relay_bin):
    if not ipv6_loopback():
        pytest.skip("this kernel has no IPv6 loopback to bind")  # a host property, not a missing tool
    relay = RelayProcess(relay_bin, ["--host", "::1", "--grpc-host", "::1"])
    try:
        lines = [ln for ln in relay.stdout_lines if "listening" in ln]
        assert lines == ["relay: listening ws on [::1]:%d" % relay.port,
                         "relay: listening grpc on [::1]:%d" % relay.grpc_port], lines
        # Printed as bound: the ports really take connections on ::1.
        for port in (relay.port, relay.grpc_port):
            socket.create_connection(("::1", port), timeout=5).close()
    finally:
        assert relay.stop() == 0


def test_ipv6_port_conflicts_name_the_address_in_brackets(relay_bin):
    if not ipv6_loopback():
        pytest.skip("this kernel has no IPv6 loopback to bind")
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as taken:
        taken.bind(("::1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = run(relay_bin, "--host", "::1", "--port", str(port), "--grpc-host", "::1", "--grpc-port", "0")
        assert r.returncode == 1 and "cannot listen on [::1]:%d: " % port in r.stderr, r
        r = run(relay_bin, "--host", "::1", "--port", "0", "--grpc-host", "::1", "--grpc-port", str(port))
        assert r.returncode == 1 and "cannot listen for gRPC on [::1]:%d " % port in r.stderr, r


async def test_server_header_names_the_service_without_library_or_version(relay):
    for path in ("/", "/health", "/stats", "/metrics", "/nowhere", "/relay/"):
        _, headers, _ = relay.http("GET", path)
        assert headers.get("server") == "atmosphere-relay", (path, headers)
    # A refused upgrade and an accepted one say the same.
    status, headers, _ = relay.http("GET", "/relay/%00", headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert status == 400 and headers.get("server") == "atmosphere-relay", (status, headers)
    async with websockets.connect(relay.ws_url(unique_mesh("hdr"))) as ws:
        assert ws.response_headers["Server"] == "atmosphere-relay", dict(ws.response_headers)


# ---------------------------------------------------------------------------
# LOG_FORMAT=json: every line a JSON log event
# ---------------------------------------------------------------------------

def json_lines(text, where):
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            raise AssertionError("a plain line on %s with LOG_FORMAT=json: %r" % (where, line)) from None
        assert isinstance(event, dict) and "ts" in event and "level" in event, (where, line)
        assert ("event" in event) != ("msg" in event), (where, line)
        events.append(event)
    return events


def stderr_all(relay):
    return relay.stderr_text(limit=10 ** 7)


async def test_json_log_format_makes_every_line_json_listening_lines_included(relay_bin, relayctl_bin):
    relay = RelayProcess(relay_bin, env={"LOG_FORMAT": "json"})
    try:
        out = json_lines("\n".join(relay.stdout_lines), "stdout")
        assert [(e["event"], e["transport"]) for e in out] == [("listening", "ws"), ("listening", "grpc")], out
        assert out[0]["address"] == "127.0.0.1:%d" % relay.port and out[0]["level"] == "info", out
        # Traffic and an admin action: all logged as JSON.
        c = await Client.connect(relay, unique_mesh("json"))
        await c.register("n1")
        changed = await asyncio.to_thread(run, relayctl_bin, "--addr", relay.grpc_addr, "log-level", "debug")
        assert changed.returncode == 0, changed
        await c.close()
    finally:
        assert relay.stop() == 0
    out = json_lines("\n".join(relay.stdout_lines), "stdout")
    assert len(out) == 2, out
    err = json_lines(stderr_all(relay), "stderr")
    names = [e.get("event") for e in err]
    for name in ("register", "leave", "admin_log_level", "drain"):
        assert name in names, (name, names)


def test_json_log_format_with_a_log_level_off_still_prints_the_listening_events(relay_bin):
    relay = RelayProcess(relay_bin, ["--log-level", "off", "--log-format", "json"])
    try:
        assert [parse_listening(ln)[0] for ln in relay.stdout_lines] == ["ws", "grpc"], relay.stdout_lines
    finally:
        assert relay.stop() == 0
    assert stderr_all(relay) == ""


def test_json_log_format_a_taken_grpc_port_logs_json_only(relay, relay_bin):
    r = run(relay_bin, "--host", "127.0.0.1", "--port", "0", "--grpc-port", str(relay.grpc_port),
            "--log-format", "json")
    assert r.returncode == 1 and r.stdout == "", r
    err = json_lines(r.stderr, "stderr")
    assert any("cannot listen for gRPC on 127.0.0.1:%d" % relay.grpc_port in e.get("msg", "") for e in err), err
    # gRPC's own complaint ("Failed to add port") is a grpc_log event, not a plain E-line.
    assert any(e.get("event") == "grpc_log" and e["level"] == "error" for e in err), err


@pytest.mark.parametrize("how", ["env", "flag"])
def test_json_log_format_a_bad_setting_is_one_json_event(relay_bin, how):
    if how == "env":
        r = run(relay_bin, "--port", "eighty", env={"LOG_FORMAT": "json"})
    else:
        r = run(relay_bin, "--log-format=json", "--port", "eighty")
    assert r.returncode == 2 and r.stdout == "", r
    (event,) = json_lines(r.stderr, "stderr")
    assert event["event"] == "config_invalid" and event["level"] == "error", event
    assert "--port" in event["why"] or "port" in event["why"], event
    # In text, the message and the usage, as before.
    r = run(relay_bin, "--port", "eighty")
    assert r.returncode == 2 and r.stderr.startswith("relay: ") and "usage: relay" in r.stderr, r


# ---------------------------------------------------------------------------
# Admin actions as named log events, with the operator's reason
# ---------------------------------------------------------------------------

def events_named(relay, name):
    return [e for e in json_lines(stderr_all(relay), "stderr") if e.get("event") == name]


async def test_admin_actions_are_logged_as_events_with_the_reason_and_the_caller(relay_bin, relayctl_bin):
    token = "t0ken-for-the-log-test"
    relay = RelayProcess(relay_bin, ["--admin-token", token, "--drain-grace-seconds", "5"],
                         env={"LOG_FORMAT": "json"})
    ctl_env = {"RELAY_ADMIN_TOKEN": token}
    try:
        def ctl(*args, env=ctl_env):
            return run(relayctl_bin, "--addr", relay.grpc_addr, *args, env=env)

        mesh = unique_mesh("audit")
        a = await Client.connect(relay, mesh)
        await a.register("a")
        b = await Client.connect(relay, mesh)
        await b.register("b")
        other = unique_mesh("audit2")
        c = await Client.connect(relay, other)
        await c.register("c")

        assert (await asyncio.to_thread(ctl, "peers", "kick", mesh, "a", "--reason", "lost phone")).returncode == 0
        assert (await asyncio.to_thread(ctl, "meshes", "close", other, "--reason", "abuse report")).returncode == 0
        assert (await asyncio.to_thread(ctl, "log-level", "debug", "--reason", "chasing #42")).returncode == 0
        # Without the token: refused, and logged without any secret.
        refused = await asyncio.to_thread(ctl, "meshes", "list", env={})
        assert refused.returncode == 1, refused
        assert (await asyncio.to_thread(ctl, "drain", "--grace", "1", "--reason", "kernel upgrade")).returncode == 0
        await asyncio.to_thread(relay.proc.wait, 15)
    finally:
        relay.stop()
    (kick,) = events_named(relay, "admin_kick")
    assert (kick["mesh"], kick["node"], kick["reason"], kick["level"]) == (mesh, "a", "lost phone", "warn"), kick
    assert kick["caller"].startswith("ipv4:127.0.0.1:"), kick
    (close,) = events_named(relay, "admin_close_mesh")
    assert (close["mesh"], close["reason"], close["closed"]) == (other, "abuse report", 1), close
    (level,) = events_named(relay, "admin_log_level")
    assert (level["previous"], level["level"], level["reason"]) == ("info", "debug", "chasing #42"), level
    (drain,) = events_named(relay, "admin_drain")
    assert (drain["grace_seconds"], drain["reason"]) == (1, "kernel upgrade"), drain
    (refusal,) = events_named(relay, "admin_refused")
    assert refusal["rpc"] == "ListMeshes" and refusal["caller"].startswith("ipv4:127.0.0.1:"), refusal
    assert token not in stderr_all(relay)


def test_an_admin_action_without_a_reason_logs_an_empty_one_in_text_format(relay, relayctl_bin):
    r = run(relayctl_bin, "--addr", relay.grpc_addr, "log-level", "info")
    assert r.returncode == 0, r
    lines = [ln for ln in stderr_all(relay).splitlines() if " admin_log_level " in ln]
    assert len(lines) == 1 and 'previous=info level=info reason="" caller=ipv4:127.0.0.1:' in lines[0], lines


# ---------------------------------------------------------------------------
# Ctrl-C: the first drains and says so, the second quits at once
# ---------------------------------------------------------------------------

async def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting for " + what
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_ctrl_c_says_it_drains_and_that_a_second_one_quits(relay_bin, log_format):
    relay = RelayProcess(relay_bin, ["--drain-grace-seconds", "30", "--log-format", log_format])
    try:
        c = await Client.connect(relay, unique_mesh("ctrlc"))
        await c.register("n")
        relay.proc.send_signal(signal.SIGINT)
        assert (await c.recv())["type"] == "server_draining"
        said = "SIGINT: draining, clients get up to 30 s to finish (1 connection); press Ctrl-C again " \
               "(or send another SIGTERM) to quit at once"
        await wait_for(lambda: said in stderr_all(relay), what="the Ctrl-C message")
        if log_format == "json":
            json_lines(stderr_all(relay), "stderr")
        assert relay.proc.poll() is None, "the first Ctrl-C drains, it does not exit"
        t0 = time.monotonic()
        relay.proc.send_signal(signal.SIGINT)
        rc = await asyncio.to_thread(relay.proc.wait, 10)
        assert rc == 1 and time.monotonic() - t0 < 3, rc
        assert "SIGINT again: exiting now, without waiting for the drain" in stderr_all(relay)
    finally:
        relay.kill()
