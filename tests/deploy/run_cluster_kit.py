#!/usr/bin/env python3
"""Runs deploy/cluster/ for real, without Docker, on loopback (CTest: deploy_cluster_run).

    tests/deploy/run_cluster_kit.py SOURCE_DIR RELAY_BIN

check_cluster.py and check_nginx.sh read the kit; this starts it. The kit's own files, changed
only where one host's loopback needs it, each change an explicit substitution that fails loudly
when the file no longer has what it replaces (so the test follows the kit, not a copy of it):

  1. three nats-server processes from deploy/cluster/nats/nats.conf (the file compose mounts at
     the services' --config path): 0.0.0.0:4222/8222/6222 -> free 127.0.0.1 ports, routes
     nats://nats-N:6222 -> those ports, store_dir /data (the named volume) -> a temp dir, and
     NATS_SERVER_NAME from each service's environment. Ready when every node routes to the other
     two and /healthz (the compose health check) says JetStream is current.
  2. three relays (the built binary) with the environment compose gives relay-1..3 on top of the
     image's ENV (deploy/Dockerfile): only PORT (free port), HOST and GRPC_PORT (three on one
     host), NATS_URL (nats-N:4222 -> loopback ports) and TRUSTED_PROXIES (the balancer's compose
     address -> 127.0.0.1) change. Ready when each /ready is 200.
  3. Debian's nginx as this user, a throwaway main config (pid, temp paths, logs in the temp dir,
     daemon off) whose http {} includes deploy/cluster/nginx/relay-lb.conf with its upstream's
     relay-N:8765 -> the relays' ports and its listen -> a free port.
  4. Through nginx only: three clients join one mesh and land on at least two relays (told by each
     relay's /stats open_sockets), see each other join, exchange a direct and a broadcast. Then
     SIGTERM to a relay holding a client: it gets server_draining, then close 1012 after the
     kit's DRAIN_GRACE_SECONDS; it reconnects through nginx, lands on another relay, registers
     again; the others see it leave and join; messages still cross; the drained relay exits 0.
  5. Everything started is stopped by PID, also on failure; the temp dir is deleted.

nginx or nats-server missing: skipped (exit 77) with a message, except when the environment
variable CI is set (non-empty, not 0/false), where it fails: CI installs both
(scripts/install-deps.sh --test). Any failure exits 1 with the reason and the logs' tails.
"""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import websockets
import yaml

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
NGINX = "/usr/sbin/nginx"
START_TIMEOUT = 20.0
STEP_TIMEOUT = 5.0


class Failure(Exception):
    pass


def in_ci():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def substitute(text, old, new, what, count=1):
    """`old` replaced by `new`; it must occur exactly `count` times in the kit's file."""
    found = text.count(old)
    if found != count:
        raise Failure(f"{what}: expected {count} occurrence(s) of {old!r}, found {found}: the kit "
                      "changed, update tests/deploy/run_cluster_kit.py with it")
    return text.replace(old, new)


def http_get(port, path, timeout=2.0):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def log_tail(path, limit=2500):
    try:
        with open(path, "rb") as f:
            return f.read()[-limit:].decode("utf-8", "replace")
    except OSError:
        return "<no log>"


class Kit:
    def __init__(self, source_dir, relay_bin):
        self.src = source_dir
        self.kit = os.path.join(source_dir, "deploy", "cluster")
        self.relay_bin = relay_bin
        self.tmp = tempfile.mkdtemp(prefix="relay-kit-")
        self.procs = []  # (name, Popen, log path)
        with open(os.path.join(self.kit, "docker-compose.yml"), encoding="utf-8") as f:
            self.compose = yaml.safe_load(f)
        self.services = self.compose["services"]
        self.nats = {}   # service -> dict(port, cluster, monitor)
        self.relays = {}  # service -> dict(port, grpc, proc, log)

    def start(self, name, argv, env=None, log=None):
        log = log or os.path.join(self.tmp, name + ".log")
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=self.tmp)
        self.procs.append((name, proc, log))
        return proc

    def tails(self):
        return "\n".join(f"--- {n} (pid {p.pid}, rc {p.poll()}) ---\n{log_tail(l)}" for n, p, l in self.procs)

    # --- 1. NATS ---------------------------------------------------------------------
    def start_nats(self):
        names = sorted(s for s in self.services if re.fullmatch(r"nats-\d+", s))
        if len(names) != 3:
            raise Failure(f"docker-compose.yml has NATS services {names}, expected nats-1..3")
        for n in names:
            self.nats[n] = {"port": free_port(), "cluster": free_port(), "monitor": free_port()}
        for n in names:
            svc = self.services[n]
            command = [str(c) for c in svc.get("command") or []]
            if "--config" not in command:
                raise Failure(f"{n}: command {command} has no --config")
            config_target = command[command.index("--config") + 1]
            mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in svc.get("volumes") or []}
            if config_target not in mounts or "/data" not in mounts:
                raise Failure(f"{n}: no volume at {config_target} and /data (volumes {svc.get('volumes')})")
            conf_path = os.path.normpath(os.path.join(self.kit, mounts[config_target]))
            with open(conf_path, encoding="utf-8") as f:
                text = f.read()
            what = os.path.relpath(conf_path, self.src)
            me = self.nats[n]
            store = os.path.join(self.tmp, n, "data")
            os.makedirs(store)
            text = substitute(text, "listen: 0.0.0.0:4222", f"listen: 127.0.0.1:{me['port']}", what)
            text = substitute(text, "http: 0.0.0.0:8222", f"http: 127.0.0.1:{me['monitor']}", what)
            text = substitute(text, "listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{me['cluster']}", what)
            text = substitute(text, "store_dir: /data", f'store_dir: "{store}"', what)
            for other in names:
                text = substitute(text, f"nats://{other}:6222", f"nats://127.0.0.1:{self.nats[other]['cluster']}", what)
            conf = os.path.join(self.tmp, n, "nats.conf")
            with open(conf, "w", encoding="utf-8") as f:
                f.write(text)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            env.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
            if "NATS_SERVER_NAME" not in env:
                raise Failure(f"{n}: the compose file sets no NATS_SERVER_NAME (server_name: $NATS_SERVER_NAME)")
            self.start(n, [NATS_SERVER, "--config", conf], env=env)
        # Ready: routes to the two others, and the compose health check's /healthz.
        health = " ".join(self.services[names[0]].get("healthcheck", {}).get("test", []))
        path = re.search(r"http://127\.0\.0\.1:8222(/\S*)", health)
        path = path.group(1) if path else "/healthz"
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while True:
            try:
                ok = True
                for n in names:
                    _, body = http_get(self.nats[n]["monitor"], "/routez")
                    status, hz = http_get(self.nats[n]["monitor"], path)
                    ok = ok and json.loads(body)["num_routes"] >= 2 and status == 200
                    last = f"{n}: {path} {status} {hz[:200]!r}"
                if ok:
                    break
            except (OSError, ValueError) as e:
                last = repr(e)
            if time.monotonic() > deadline:
                raise Failure(f"NATS not ready in {START_TIMEOUT:.0f} s ({last})")
            time.sleep(0.2)
        print(f"ok: 3 nats-server from deploy/cluster/nats/nats.conf, routed, {path} 200 "
              f"(client ports {[self.nats[n]['port'] for n in names]})")

    # --- 2. relays ---------------------------------------------------------------------
    def image_env(self):
        env = {}
        with open(os.path.join(self.src, "deploy", "Dockerfile"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("ENV "):
                    env.update(dict(kv.split("=", 1) for kv in line.split()[1:]))
        return env

    def start_relays(self):
        names = sorted(s for s in self.services if re.fullmatch(r"relay-\d+", s))
        if len(names) != 3:
            raise Failure(f"docker-compose.yml has relay services {names}, expected relay-1..3")
        lb_address = str(self.services["lb"]["networks"]["relay-net"]["ipv4_address"])
        for n in names:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            env.update(self.image_env())
            env.update({k: str(v) for k, v in (self.services[n].get("environment") or {}).items()})
            me = {"port": free_port(), "grpc": free_port()}
            what = f"docker-compose.yml {n}"
            url = env.get("NATS_URL", "")
            for nats in sorted(self.nats):
                url = substitute(url, f"nats://{nats}:4222", f"nats://127.0.0.1:{self.nats[nats]['port']}",
                                 f"{what} NATS_URL")
            if re.search(r"nats://(?!127\.0\.0\.1:)", url):
                raise Failure(f"{what}: NATS_URL names servers that are not the compose NATS services: {url}")
            env["NATS_URL"] = url
            env["TRUSTED_PROXIES"] = substitute(env.get("TRUSTED_PROXIES", ""), lb_address, "127.0.0.1",
                                                f"{what} TRUSTED_PROXIES (the lb's ipv4_address)")
            env["PORT"] = str(me["port"])
            env["HOST"] = "127.0.0.1"
            env["GRPC_PORT"] = str(me["grpc"])
            me["env"] = env
            me["proc"] = self.start(n, [self.relay_bin], env=env)
            self.relays[n] = me
        deadline = time.monotonic() + START_TIMEOUT
        for n in names:
            while True:
                if self.relays[n]["proc"].poll() is not None:
                    raise Failure(f"{n} exited with {self.relays[n]['proc'].returncode} before ready")
                try:
                    status, body = http_get(self.relays[n]["port"], "/ready")
                    if status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise Failure(f"{n} not ready in {START_TIMEOUT:.0f} s")
                time.sleep(0.1)
        e = self.relays[names[0]]["env"]
        print(f"ok: 3 relays with compose's environment (RELAY_CLUSTER={e.get('RELAY_CLUSTER')}, "
              f"NATS_KV_REPLICAS={e.get('NATS_KV_REPLICAS')}, DRAIN_GRACE_SECONDS={e.get('DRAIN_GRACE_SECONDS')}, "
              f"RELAY_DATA_DIR={e.get('RELAY_DATA_DIR')!r}), each /ready 200")

    # --- 3. nginx ------------------------------------------------------------------------
    def start_nginx(self):
        lb = self.services["lb"]
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in lb.get("volumes") or []}
        conf_src = next((os.path.normpath(os.path.join(self.kit, s)) for t, s in mounts.items()
                         if t.startswith("/etc/nginx/conf.d/")), None)
        if conf_src is None:
            raise Failure(f"lb mounts nothing into /etc/nginx/conf.d/ ({lb.get('volumes')})")
        what = os.path.relpath(conf_src, self.src)
        with open(conf_src, encoding="utf-8") as f:
            text = f.read()
        published = [str(p) for p in lb.get("ports") or []]
        if published != ["8765:8765"]:
            raise Failure(f"lb publishes {published}, expected 8765:8765")
        for n, r in sorted(self.relays.items()):
            text = substitute(text, f"server {n}:8765 ", f"server 127.0.0.1:{r['port']} ", what)
        self.lb_port = free_port()
        text = substitute(text, "listen 8765;", f"listen 127.0.0.1:{self.lb_port};", what)
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", self.lb_port))
            v6 = f"listen [::1]:{self.lb_port};"
        except OSError:
            v6 = "# listen [::]:8765; (no IPv6 loopback here)"
        text = substitute(text, "listen [::]:8765;", v6, what)
        d = os.path.join(self.tmp, "nginx")
        os.makedirs(os.path.join(d, "conf.d"))
        os.chmod(self.tmp, 0o755)
        os.chmod(d, 0o777)  # as root, nginx's workers run as nobody
        with open(os.path.join(d, "conf.d", os.path.basename(conf_src)), "w", encoding="utf-8") as f:
            f.write(text)
        with open(os.path.join(d, "nginx.conf"), "w", encoding="utf-8") as f:
            f.write(f"""# Throwaway main config, as the nginx image's: conf.d/*.conf inside http {{}}.
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format kit '$request_uri $status upstream=$upstream_addr upstream_status=$upstream_status';
    access_log {d}/access.log kit;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/conf.d/*.conf;
}}
""")
        self.nginx_dir = d
        self.start("nginx", [NGINX, "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "error.log")],
                   log=os.path.join(d, "error.log"))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if http_get(self.lb_port, "/ready")[0] == 200:
                    break
            except OSError:
                pass
            if self.procs[-1][1].poll() is not None or time.monotonic() > deadline:
                raise Failure("nginx did not answer /ready through relay-lb.conf")
            time.sleep(0.1)
        print(f"ok: {subprocess.run([NGINX, '-v'], capture_output=True, text=True).stderr.strip()} "
              f"with {what} on 127.0.0.1:{self.lb_port}, /ready 200 through it")

    def open_sockets(self):
        out = {}
        for n, r in self.relays.items():
            try:
                out[n] = json.loads(http_get(r["port"], "/stats")[1])["open_sockets"]
            except OSError:
                if not r.get("sigterm"):
                    raise
                # the drained relay: its listener is closed, it is exiting or gone
        return out

    def stop_all(self):
        for name, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc, _ in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- 4. clients through nginx ---------------------------------------------------------------
class Client:
    def __init__(self, ws, node_id):
        self.ws, self.node_id = ws, node_id

    async def recv(self, timeout=STEP_TIMEOUT):
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def expect(self, type_, timeout=STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"{self.node_id}: no {type_} within {timeout:.0f} s")
            try:
                msg = await self.recv(left)
            except asyncio.TimeoutError:
                continue
            if msg.get("type") == type_:
                return msg
            if msg.get("type") == "error":
                raise Failure(f"{self.node_id}: error while waiting for {type_}: {msg}")

    async def send(self, obj):
        await self.ws.send(json.dumps(obj))


async def join(kit, mesh, node_id):
    """Connects through nginx, registers; returns (client, the relay it landed on)."""
    before = await asyncio.to_thread(kit.open_sockets)
    ws = await websockets.connect(f"ws://127.0.0.1:{kit.lb_port}/relay/{mesh}", ping_interval=None,
                                  open_timeout=STEP_TIMEOUT)
    c = Client(ws, node_id)
    await c.send({"type": "register", "node_id": node_id, "capabilities": []})
    joined = await c.expect("joined")
    await c.expect("peers")
    after = await asyncio.to_thread(kit.open_sockets)
    grew = [n for n in after if after[n] > before.get(n, 0)]
    if len(grew) != 1:
        raise Failure(f"{node_id}: cannot tell its relay: open_sockets {before} -> {after}")
    print(f"ok: {node_id} joined through nginx (node_count {joined['node_count']}), on {grew[0]}")
    return c, grew[0]


async def scenario(kit):
    mesh = "kit-mesh-%d" % os.getpid()
    clients, where = {}, {}
    for node in ("a", "b", "c"):
        clients[node], where[node] = await join(kit, mesh, node)
        for earlier in list(clients)[:-1]:
            msg = await clients[earlier].expect("peer_joined")
            if msg["node_id"] != node:
                raise Failure(f"{earlier} saw {msg}, expected peer_joined of {node}")
    if len(set(where.values())) < 2:
        raise Failure(f"all three clients landed on one relay: {where}")
    print(f"ok: a, b, c on {where}; each saw the later ones join")
    a, b, c = clients["a"], clients["b"], clients["c"]
    await a.send({"type": "direct", "target": "c", "payload": "a->c"})
    msg = await c.expect("message")
    assert_msg(msg, "a", "a->c")
    await b.send({"type": "broadcast", "payload": "b->all"})
    for other in (a, c):
        assert_msg(await other.expect("message"), "b", "b->all")
    print("ok: direct a->c and broadcast from b crossed")

    # SIGTERM a relay holding a client, preferably one alone there.
    victim_node = next(n for n in ("b", "c", "a") if list(where.values()).count(where[n]) == 1)
    victim_relay = where[victim_node]
    r = kit.relays[victim_relay]
    grace = float(r["env"].get("DRAIN_GRACE_SECONDS", "20"))
    drained_at = time.monotonic()
    r["proc"].send_signal(signal.SIGTERM)
    r["sigterm"] = True
    v = clients[victim_node]
    hint = await v.expect("server_draining")
    print(f"ok: SIGTERM to {victim_relay}: {victim_node} got {hint}")
    try:
        while True:
            msg = await v.recv(timeout=grace + 10)
            if msg.get("type") == "error":
                raise Failure(f"{victim_node} during the drain: {msg}")
    except websockets.ConnectionClosed as e:
        code, reason = e.code, e.reason
    except asyncio.TimeoutError:
        raise Failure(f"{victim_node}: not closed within DRAIN_GRACE_SECONDS {grace:g} + 10 s")
    if code != 1012:
        raise Failure(f"{victim_node}: closed with {code} {reason!r}, expected 1012 (service restart)")
    print(f"ok: {victim_node} closed {code} {reason!r} after {time.monotonic() - drained_at:.1f} s "
          f"(DRAIN_GRACE_SECONDS {grace:g})")
    others = [n for n in ("a", "b", "c") if n != victim_node]
    for o in others:
        msg = await clients[o].expect("peer_left", timeout=10)
        if msg["node_id"] != victim_node:
            raise Failure(f"{o} saw {msg}, expected peer_left of {victim_node}")
    back, landed = await join(kit, mesh, victim_node)
    if landed == victim_relay:
        raise Failure(f"{victim_node} came back on the drained {victim_relay}")
    clients[victim_node] = back
    for o in others:
        msg = await clients[o].expect("peer_joined")
        if msg["node_id"] != victim_node:
            raise Failure(f"{o} saw {msg}, expected peer_joined of {victim_node}")
    print(f"ok: {others} saw {victim_node} leave and join again, now on {landed}")
    await clients[others[0]].send({"type": "direct", "target": victim_node, "payload": "after"})
    assert_msg(await back.expect("message"), others[0], "after")
    await back.send({"type": "broadcast", "payload": "back"})
    for o in others:
        assert_msg(await clients[o].expect("message"), victim_node, "back")
    print(f"ok: direct {others[0]}->{victim_node} and broadcast from {victim_node} crossed after the drain")
    try:
        rc = await asyncio.to_thread(r["proc"].wait, 10)
    except subprocess.TimeoutExpired:
        raise Failure(f"{victim_relay} still running 10 s after its last client left")
    if rc != 0:
        raise Failure(f"{victim_relay} exited {rc} after SIGTERM, expected 0")
    print(f"ok: {victim_relay} exited 0")
    for cl in clients.values():
        await cl.ws.close()


def assert_msg(msg, sender, payload):
    if msg.get("from") != sender or msg.get("payload") != payload:
        raise Failure(f"expected a message from {sender} with {payload!r}, got {msg}")


def main():
    if len(sys.argv) != 3:
        print("usage: run_cluster_kit.py SOURCE_DIR RELAY_BIN", file=sys.stderr)
        return 2
    source_dir, relay_bin = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    for tool, path in (("nginx", NGINX), ("nats-server", NATS_SERVER)):
        if not os.access(path, os.X_OK):
            msg = f"{tool} not found at {path} (scripts/install-deps.sh --test installs it)"
            if in_ci():
                print(f"FAIL: {msg}; CI is set, so this is not a skip", file=sys.stderr)
                return 1
            print(f"SKIP: {msg}")
            return 77
    if not os.access(relay_bin, os.X_OK):
        print(f"FAIL: relay binary {relay_bin} not found", file=sys.stderr)
        return 1
    started = time.monotonic()
    kit = Kit(source_dir, relay_bin)
    try:
        kit.start_nats()
        kit.start_relays()
        kit.start_nginx()
        asyncio.run(asyncio.wait_for(scenario(kit), 60))
    except (Failure, AssertionError, OSError, asyncio.TimeoutError, websockets.WebSocketException) as e:
        print(f"FAIL: {type(e).__name__}: {e}\n{kit.tails()}", file=sys.stderr)
        return 1
    finally:
        kit.stop_all()
    print(f"run_cluster_kit: the kit ran: 3 NATS, 3 relays, nginx, a drain survived, in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
