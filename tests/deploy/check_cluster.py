#!/usr/bin/env python3
"""Checks the cluster-mode deployment kit (CTest: deploy_cluster_check).

    tests/deploy/check_cluster.py [SOURCE_DIR]

SOURCE_DIR defaults to the repository root. No Docker engine, no cluster, no
built relay: cluster mode is being landed in issue 12 and the relay's --help
does not list its settings yet, so the names and defaults of the settings are
read from the table in cmd/relay/relay_config.cc (and relayctl's from
admin-cli/args.h), plus the cluster settings of ADR 0009 below. Each file is
parsed with the parser its format needs (PyYAML; nats-server's configuration
with `nats-server -t`, Debian's nats-server 2.9, plus a small reader for the
values checked) and held to the contract of docs/deployment.md "Cluster mode":

  - deploy/cluster/nats/nats.conf and the ConfigMap in deploy/kubernetes/cluster/:
    nats-server -t accepts them; JetStream with a store_dir; max_payload at
    least 2 MiB and at least MAX_MESSAGE_BYTES + 64 KiB; a named cluster
    listening on a port, with a route to every node; lame duck grace and
    duration; server_name from an environment variable that every node sets.
  - deploy/cluster/docker-compose.yml: 3 NATS services (nats:2.9 images,
    the checked-in config, store_dir on a named volume, stop by SIGUSR2 with a
    stop_grace_period above lame duck mode), 3 relays built from
    deploy/Dockerfile at the repository root (NATS_URL naming all 3 NATS
    services, unique RELAY_INSTANCE_ID, RELAY_DATA_DIR emptied and no data
    volume, RELAY_CLUSTER and NATS_KV_REPLICAS valid, stop_grace_period above
    the drain, a health check on /ready) and 1 nginx load balancer whose
    upstream is exactly the 3 relays on PORT.
  - deploy/kubernetes/cluster/: every document parses; kustomization.yaml
    lists every other file; the relay Deployment has 3 replicas, RollingUpdate
    with maxUnavailable 0 and maxSurge 1, a gRPC readinessProbe on the gRPC
    port (relay.v1.RelayCore), an httpGet /health livenessProbe on the
    WebSocket port, RELAY_INSTANCE_ID from metadata.name, NATS_URL naming
    every NATS pod through the headless Service, no RELAY_DATA_DIR and no
    volume claim, a preStop sleep, terminationGracePeriodSeconds above preStop
    + DRAIN_GRACE_SECONDS + the final close + a sidecar allowance, ADMIN_TOKEN
    from a Secret; PodDisruptionBudget minAvailable 2; NATS as a StatefulSet of
    3 with Parallel pod management, a headless Service publishing not-ready
    addresses, volumeClaimTemplates mounted at store_dir, the ConfigMap
    mounted at the --config path, a lame duck preStop and a grace period above
    it; a NATS PodDisruptionBudget maxUnavailable 1; every Service port has a
    name `<protocol>[-<suffix>]` and an appProtocol that Istio recognises and
    that agree, and a targetPort that is a container port; every selector
    matches its pods.
  - every environment variable any of these files sets for the relay is a
    setting of cmd/relay/relay_config.cc, relayctl's, or a cluster setting.

Every failure is printed; the exit status is 1 when any check failed.
"""

import os
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

# The cluster-mode settings of docs/adr/0009-cluster-on-nats.md (issue 12). The
# relay's settings table does not have them yet; remove each from here once
# cmd/relay/relay_config.cc has its row.
CLUSTER_NAME_RE = re.compile(r"[a-z0-9_-]{1,32}")
INSTANCE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# ADR 0009: the adapter stays not ready unless max_payload >= MAX_MESSAGE_BYTES + 64 KiB.
ENVELOPE_ALLOWANCE_BYTES = 64 * 1024
# The brief of issue 12 item 7 and docs/deployment.md: max_payload 2MB.
MIN_MAX_PAYLOAD = 2 * 1024 * 1024
# server/limits.h kDrainCloseTimeout: the final close may take this long after the grace.
DRAIN_CLOSE_SECONDS = 5
# What a sidecar proxy's exit and the lease's tombstone write may take on top.
SIDECAR_ALLOWANCE_SECONDS = 5
# Protocols Istio takes from a Service port's appProtocol or name prefix
# (https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/).
ISTIO_PROTOCOLS = {"http", "http2", "https", "tcp", "tls", "grpc", "grpc-web", "mongo", "mysql", "redis", "udp"}
HEALTH_SERVICES = {"", "relay.v1.RelayCore"}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
NATS_CLIENT_PORT = 4222

failures = []


def fail(where, message):
    failures.append(f"{where}: {message}")


def ok(message):
    print(f"ok: {message}")


# --- the relay's settings ------------------------------------------------------------

def relay_settings(source_dir):
    """{ENV_NAME: default} from the settings table of cmd/relay/relay_config.cc."""
    path = source_dir / "cmd" / "relay" / "relay_config.cc"
    text = path.read_text(encoding="utf-8")
    # A row opens with {{"name", "flag", "ENV", "unit", "default",
    rows = re.findall(r'\{\{"[a-z_]+",\s*"[a-z-]+",\s*"([A-Z][A-Z0-9_]*)",\s*"[^"]*",\s*"([^"]*)"', text)
    if len(rows) < 20:
        fail(str(path), f"found only {len(rows)} settings rows; has the table's layout changed?")
    return dict(rows)


def relayctl_env_names(source_dir):
    path = source_dir / "admin-cli" / "args.h"
    names = set(re.findall(r'k\w+EnvVar\[\]\s*=\s*"([A-Z][A-Z0-9_]*)"', path.read_text(encoding="utf-8")))
    if not names:
        fail(str(path), "names no environment variables (kXxxEnvVar)")
    return names


def check_env_names(where, names, known):
    unknown = sorted(set(names) - known)
    if unknown:
        fail(where, f"sets environment variables the relay does not read: {', '.join(unknown)}")


def duration_seconds(value):
    """30, "30s", "1m30s", "2m" -> seconds; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", str(value).strip())
    if not match or not any(match.groups()):
        return None
    h, m, s = (int(g or 0) for g in match.groups())
    return h * 3600.0 + m * 60.0 + s


def check_relay_env(where, env, defaults):
    """The cluster settings one relay gets; returns (drain grace, max message bytes)."""
    if not env.get("NATS_URL"):
        fail(where, "NATS_URL is not set: this is not cluster mode")
    if env.get("RELAY_DATA_DIR", None) not in ("", None):
        fail(where, f"RELAY_DATA_DIR is {env['RELAY_DATA_DIR']!r}: the relay refuses it with NATS_URL (KV is the truth)")
    cluster = env.get("RELAY_CLUSTER", "atmosphere")
    if not CLUSTER_NAME_RE.fullmatch(str(cluster)):
        fail(where, f"RELAY_CLUSTER {cluster!r} does not match [a-z0-9_-]{{1,32}}")
    try:
        grace = float(env.get("DRAIN_GRACE_SECONDS", defaults.get("DRAIN_GRACE_SECONDS", "20")))
    except ValueError:
        fail(where, f"DRAIN_GRACE_SECONDS is not a number: {env['DRAIN_GRACE_SECONDS']!r}")
        grace = float(defaults.get("DRAIN_GRACE_SECONDS", "20"))
    max_message = max_message_bytes(env, defaults)
    if not str(env.get("MAX_MESSAGE_BYTES", "0")).isdigit():
        fail(where, f"MAX_MESSAGE_BYTES is not a number: {env['MAX_MESSAGE_BYTES']!r}")
    if env.get("REUSE_PORT", "0") not in ("0", "1"):
        fail(where, f"REUSE_PORT is {env['REUSE_PORT']!r}, not 0 or 1")
    return grace, max_message


def max_message_bytes(env, defaults):
    """MAX_MESSAGE_BYTES as set, else the table's default (a bad value: the default)."""
    default = int(defaults.get("MAX_MESSAGE_BYTES", "1048576"))
    value = str(env.get("MAX_MESSAGE_BYTES", default))
    return int(value) if value.isdigit() else default


def nats_urls(value, where):
    """host:port of every entry of NATS_URL."""
    out = []
    for url in str(value or "").split(","):
        url = url.strip()
        match = re.fullmatch(r"(?:nats|tls)://(?:[^@/]*@)?([A-Za-z0-9.-]+):(\d+)/?", url)
        if not match:
            fail(where, f"NATS_URL entry {url!r} is not nats://host:port or tls://host:port")
            continue
        out.append((match.group(1), int(match.group(2))))
    return out


# --- nats-server configuration ---------------------------------------------------------

class NatsConf:
    """A reader for the subset of nats-server's configuration format these files
    use: `key: value`, `key = value`, `key value`, blocks, arrays, quoted and bare
    strings, # and // comments. nats-server -t is what proves the file valid; this
    only reads the values the checks compare."""

    def __init__(self, text):
        self.s = text
        self.i = 0

    def parse(self):
        out = self._map(top=True)
        return out

    def _skip(self, newlines=True):
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c in "\n,;"):
                self.i += 1
            elif c == "#" or self.s.startswith("//", self.i):
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            else:
                break

    def _map(self, top=False):
        out = {}
        while True:
            self._skip()
            if self.i >= len(self.s):
                if not top:
                    raise ValueError("unterminated block")
                return out
            if self.s[self.i] == "}":
                if top:
                    raise ValueError("unexpected }")
                self.i += 1
                return out
            start = self.i
            while self.i < len(self.s) and self.s[self.i] not in " \t\r\n:={[":
                self.i += 1
            key = self.s[start:self.i].strip('"').lower()
            self._skip(newlines=False)
            if self.i < len(self.s) and self.s[self.i] in ":=":
                self.i += 1
            self._skip(newlines=False)
            out[key] = self._value()

    def _value(self):
        c = self.s[self.i] if self.i < len(self.s) else ""
        if c == "{":
            self.i += 1
            return self._map()
        if c == "[":
            self.i += 1
            items = []
            while True:
                self._skip()
                if self.i >= len(self.s):
                    raise ValueError("unterminated array")
                if self.s[self.i] == "]":
                    self.i += 1
                    return items
                items.append(self._value())
        if c in "\"'":
            end = self.s.index(c, self.i + 1)
            value = self.s[self.i + 1:end]
            self.i = end + 1
            return value
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in "\n,;]}#":
            self.i += 1
        return self.s[start:self.i].strip()


def nats_size(value):
    """A nats-server size: 1048576, "2MB" (MB, MiB: powers of 1024; M: of 1000)."""
    match = re.fullmatch(r"(\d+)\s*([A-Za-z]*)", str(value).strip())
    if not match:
        return None
    units = {"": 1, "k": 1000, "kb": 1024, "ki": 1024, "kib": 1024,
             "m": 1000 ** 2, "mb": 1024 ** 2, "mi": 1024 ** 2, "mib": 1024 ** 2,
             "g": 1000 ** 3, "gb": 1024 ** 3, "gi": 1024 ** 3, "gib": 1024 ** 3}
    unit = match.group(2).lower()
    return int(match.group(1)) * units[unit] if unit in units else None


def nats_server_test(where, text, env_names):
    """nats-server -t on the text, with every $VARIABLE it references set."""
    server = "/usr/sbin/nats-server" if os.access("/usr/sbin/nats-server", os.X_OK) else None
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if server is None and os.access(os.path.join(d, "nats-server"), os.X_OK):
            server = os.path.join(d, "nats-server")
    if server is None:
        fail(where, "nats-server not found (scripts/install-deps.sh --test installs Debian's nats-server)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        conf = pathlib.Path(tmp) / "nats.conf"
        conf.write_text(text, encoding="utf-8")
        env = dict(os.environ)
        env.update({name: "check-node" for name in env_names})
        result = subprocess.run([server, "-t", "-c", str(conf)], cwd=tmp, env=env,
                                capture_output=True, text=True, timeout=20)
        if result.returncode != 0:
            fail(where, f"nats-server -t rejects it: {(result.stderr + result.stdout).strip()}")


def check_nats_conf(where, text, node_names, cluster_port, max_message_bytes, name_env):
    """The values the relay's cluster mode needs. node_names: the host of every
    node, as the routes must name them. Returns the parsed config or None."""
    variables = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", re.sub(r"#[^\n]*", "", text)))
    nats_server_test(where, text, variables)
    try:
        conf = NatsConf(text).parse()
    except (ValueError, IndexError) as e:
        fail(where, f"cannot read it: {e}")
        return None
    missing = variables - set(name_env)
    if missing:
        fail(where, f"references {', '.join(sorted(missing))}, which the nodes do not set")
    server_name = str(conf.get("server_name", ""))
    if not server_name.startswith("$"):
        fail(where, "server_name is not taken from the environment: JetStream needs a unique name per node")

    payload = nats_size(conf.get("max_payload", 1048576))
    needed = max(MIN_MAX_PAYLOAD, max_message_bytes + ENVELOPE_ALLOWANCE_BYTES)
    if payload is None:
        fail(where, f"max_payload {conf.get('max_payload')!r} is not a size")
    elif payload < needed:
        fail(where, f"max_payload is {payload} bytes; needs at least {needed} (2 MiB, and MAX_MESSAGE_BYTES {max_message_bytes} + 64 KiB)")
    elif payload > 8 * 1024 * 1024:
        fail(where, f"max_payload {payload} is above 8 MB, which nats-server warns against")

    js = conf.get("jetstream")
    if not isinstance(js, dict) or not js.get("store_dir"):
        fail(where, "no jetstream { store_dir } block: the relay's KV buckets need JetStream file storage")
    cluster = conf.get("cluster")
    if not isinstance(cluster, dict):
        fail(where, "no cluster block")
    else:
        if not cluster.get("name"):
            fail(where, "cluster has no name (JetStream clusters need one)")
        listen = str(cluster.get("listen", cluster.get("port", "")))
        if not listen.endswith(f":{cluster_port}") and listen != str(cluster_port):
            fail(where, f"cluster does not listen on port {cluster_port} (listen {listen!r})")
        routes = cluster.get("routes") or []
        hosts = set()
        for route in routes:
            match = re.fullmatch(r"nats(?:-route)?://([A-Za-z0-9.-]+):(\d+)", str(route))
            if not match or int(match.group(2)) != cluster_port:
                fail(where, f"route {route!r} is not nats://host:{cluster_port}")
            else:
                hosts.add(match.group(1))
        if hosts != set(node_names):
            fail(where, f"routes name {sorted(hosts)}, the nodes are {sorted(node_names)}")
    grace = duration_seconds(conf.get("lame_duck_grace_period", "10s"))
    duration = duration_seconds(conf.get("lame_duck_duration", "2m"))
    if grace is None or duration is None:
        fail(where, "lame_duck_grace_period or lame_duck_duration is not a duration")
    elif duration < 30:
        fail(where, "lame_duck_duration is below 30 s, which nats-server refuses")
    return conf


def lame_duck_seconds(conf):
    return (duration_seconds((conf or {}).get("lame_duck_grace_period", "10s")) or 10) + \
        (duration_seconds((conf or {}).get("lame_duck_duration", "2m")) or 120)


# --- docker compose ----------------------------------------------------------------------

def compose_env(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(str(e).partition("=")[::2] for e in env)
    return {str(k): ("" if v is None else str(v)) for k, v in env.items()}


def check_compose(source_dir, known, defaults):
    path = source_dir / "deploy" / "cluster" / "docker-compose.yml"
    where = "deploy/cluster/docker-compose.yml"
    failed_before = len(failures)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        fail(where, f"does not parse as YAML: {e}")
        return
    ok(f"{where} parses")
    services = doc.get("services") or {}
    named_volumes = set((doc.get("volumes") or {}).keys())
    nats = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("nats:")}
    relays = {n: s for n, s in services.items() if (s.get("build") or {}).get("dockerfile") == "deploy/Dockerfile"}
    lbs = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("nginx:")}
    if len(nats) != 3 or len(relays) != 3 or len(lbs) != 1:
        fail(where, f"expected 3 NATS, 3 relays and 1 nginx load balancer, found {len(nats)}, {len(relays)}, {len(lbs)}")
    others = set(services) - set(nats) - set(relays) - set(lbs)
    if others:
        fail(where, f"services that are none of NATS, relay, load balancer: {sorted(others)}")

    def mounts(service):
        out = {}
        for v in service.get("volumes") or []:
            parts = str(v).split(":")
            if len(parts) >= 2:
                out[parts[1]] = parts[0]
        return out

    # NATS
    nats_conf = None
    conf_files = set()
    for name, svc in sorted(nats.items()):
        w = f"{where} services.{name}"
        if not re.fullmatch(r"nats:2\.9(\.\d+)?(-[a-z0-9.]+)?", str(svc.get("image"))):
            fail(w, f"image {svc.get('image')!r} is not nats:2.9 (what ADR 0009 was checked against)")
        command = [str(c) for c in svc.get("command") or []]
        config_path = next((command[i + 1] for i, c in enumerate(command[:-1]) if c in ("-c", "--config")), None)
        if config_path is None:
            fail(w, "command does not pass --config")
            continue
        source = mounts(svc).get(config_path)
        if source is None or source in named_volumes:
            fail(w, f"the config {config_path} is not a file mounted from the repository")
            continue
        conf_files.add((path.parent / source).resolve())
        if svc.get("stop_signal") != "SIGUSR2":
            fail(w, "stop_signal is not SIGUSR2 (lame duck mode)")
    nats_env = {name: compose_env(svc) for name, svc in nats.items()}
    if len(conf_files) != 1:
        fail(where, f"the NATS services should share one checked-in config, found {sorted(map(str, conf_files))}")
    relay_max_message = max((max_message_bytes(compose_env(s), defaults) for s in relays.values()), default=1048576)
    if conf_files:
        conf_path = next(iter(conf_files))
        expected_dir = (source_dir / "deploy" / "cluster" / "nats").resolve()
        if conf_path.parent != expected_dir:
            fail(where, f"the NATS config {conf_path} is not under deploy/cluster/nats/")
        try:
            text = conf_path.read_text(encoding="utf-8")
        except OSError as e:
            fail(where, f"cannot read the NATS config: {e}")
            text = None
        if text is not None:
            env_names = set.intersection(*(set(e) for e in nats_env.values())) if nats_env else set()
            nats_conf = check_nats_conf(str(conf_path.relative_to(source_dir)), text, set(nats), 6222,
                                        relay_max_message, env_names)
            for var in re.findall(r"^\s*server_name:\s*\$(\w+)", text, re.MULTILINE):
                values = [e.get(var) for e in nats_env.values()]
                if len(set(values)) != len(values) or None in values:
                    fail(where, f"the NATS services do not each set a unique {var} (server_name)")
    store_dir = str(((nats_conf or {}).get("jetstream") or {}).get("store_dir", ""))
    for name, svc in sorted(nats.items()):
        w = f"{where} services.{name}"
        if store_dir and mounts(svc).get(store_dir) not in named_volumes:
            fail(w, f"jetstream store_dir {store_dir} is not on a named volume")
        stop = duration_seconds(svc.get("stop_grace_period", "10s")) or 0
        if stop < lame_duck_seconds(nats_conf) + 5:
            fail(w, f"stop_grace_period {svc.get('stop_grace_period')!r} does not outlast lame duck mode ({lame_duck_seconds(nats_conf):g} s)")
    if nats_conf is not None:
        ok("deploy/cluster/nats/nats.conf: nats-server -t, JetStream, max_payload, routes to all 3, lame duck")

    # Relays
    ids = []
    port = None
    for name, svc in sorted(relays.items()):
        w = f"{where} services.{name}"
        build = svc.get("build") or {}
        context = (path.parent / build.get("context", ".")).resolve()
        if context != source_dir.resolve():
            fail(w, f"build.context is {context}, not the repository root")
        env = compose_env(svc)
        check_env_names(w, env.keys(), known)
        grace, _ = check_relay_env(w, env, defaults)
        if "RELAY_DATA_DIR" not in env:
            fail(w, "RELAY_DATA_DIR is not emptied: the image sets it, and the relay refuses it with NATS_URL")
        if any(t.startswith("/var/lib/relay") for t in mounts(svc)):
            fail(w, "mounts a data volume: cluster mode keeps no local state")
        hosts = {h for h, p in nats_urls(env.get("NATS_URL"), w) if p == NATS_CLIENT_PORT}
        if hosts != set(nats):
            fail(w, f"NATS_URL names {sorted(hosts)} on port {NATS_CLIENT_PORT}, the NATS services are {sorted(nats)}")
        replicas = env.get("NATS_KV_REPLICAS", "3")
        if not replicas.isdigit() or not 1 <= int(replicas) <= len(nats):
            fail(w, f"NATS_KV_REPLICAS {replicas!r} is not between 1 and the {len(nats)} NATS servers")
        ids.append(env.get("RELAY_INSTANCE_ID"))
        if env.get("RELAY_INSTANCE_ID") and not INSTANCE_ID_RE.fullmatch(env["RELAY_INSTANCE_ID"]):
            fail(w, f"RELAY_INSTANCE_ID {env['RELAY_INSTANCE_ID']!r} does not match [A-Za-z0-9_-]{{1,64}}")
        stop = duration_seconds(svc.get("stop_grace_period", "10s")) or 0
        if stop < grace + DRAIN_CLOSE_SECONDS:
            fail(w, f"stop_grace_period {svc.get('stop_grace_period')!r} must exceed DRAIN_GRACE_SECONDS {grace:g} by at least {DRAIN_CLOSE_SECONDS} s")
        if svc.get("stop_signal", "SIGTERM") != "SIGTERM":
            fail(w, "stop_signal is not SIGTERM (the drain)")
        test = " ".join(str(t) for t in (svc.get("healthcheck") or {}).get("test") or [])
        if "/ready" not in test:
            fail(w, "no health check on /ready")
        if svc.get("ports"):
            fail(w, "publishes ports: clients should come in through the load balancer")
        port = port or env.get("PORT", "8765")
    set_ids = [i for i in ids if i]
    if len(set(set_ids)) != len(set_ids):
        fail(where, f"relays share a RELAY_INSTANCE_ID: {ids} (the second would refuse to start)")

    # Load balancer
    for name, svc in lbs.items():
        w = f"{where} services.{name}"
        confs = [(target, src) for target, src in mounts(svc).items() if target.startswith("/etc/nginx/conf.d/")]
        if len(confs) != 1:
            fail(w, "does not mount one site config into /etc/nginx/conf.d/")
            continue
        lb_conf = (path.parent / confs[0][1]).resolve()
        if not lb_conf.is_file():
            fail(w, f"{confs[0][1]} is not a file")
            continue
        text = re.sub(r"#[^\n]*", "", lb_conf.read_text(encoding="utf-8"))
        upstream = re.search(r"upstream\s+\w+\s*\{([^}]*)\}", text)
        servers = set(re.findall(r"^\s*server\s+([A-Za-z0-9.-]+):(\d+)", upstream.group(1), re.MULTILINE)) if upstream else set()
        if servers != {(r, str(port or "8765")) for r in relays}:
            fail(w, f"upstream servers {sorted(servers)} are not the relays {sorted(relays)} on port {port}")
        if not svc.get("ports"):
            fail(w, "publishes no port")
        depends = svc.get("depends_on") or []
        if set(depends) != set(relays):
            fail(w, f"depends_on {sorted(depends)} is not the relays (nginx resolves upstream names at start)")
        trusted = {r: compose_env(s).get("TRUSTED_PROXIES", "") for r, s in relays.items()}
        address = next(iter(((svc.get("networks") or {}) if isinstance(svc.get("networks"), dict) else {}).values()), {}) or {}
        ip = address.get("ipv4_address")
        if not ip or any(ip not in t.split(",") for t in trusted.values()):
            fail(w, "has no fixed address listed in every relay's TRUSTED_PROXIES (every client would count as its IP)")
    if len(failures) == failed_before:
        ok("deploy/cluster/docker-compose.yml: 3 NATS, 3 relays in cluster mode, 1 load balancer, and they agree")


# --- Kubernetes ---------------------------------------------------------------------------

def container_env(container):
    return {item.get("name"): item for item in container.get("env") or []}


def env_values(env):
    return {k: str(v.get("value")) for k, v in env.items() if "value" in v}


def check_service_ports(where, svc, pods):
    """Names and appProtocol every Service port needs for Istio and Linkerd; the
    targetPort a container port of the pods it selects."""
    spec = svc.get("spec") or {}
    container_ports = {}
    for c in ((pods.get("spec") or {}).get("containers") or []):
        for p in c.get("ports") or []:
            container_ports[p.get("name")] = p.get("containerPort")
    for port in spec.get("ports") or []:
        name = str(port.get("name", ""))
        app = port.get("appProtocol")
        prefix = "grpc-web" if name.lower().startswith("grpc-web") else name.split("-")[0].lower()
        if prefix not in ISTIO_PROTOCOLS:
            fail(where, f"port {name!r} is not named <protocol>[-<suffix>] with a protocol Istio knows ({', '.join(sorted(ISTIO_PROTOCOLS))})")
        if not app:
            fail(where, f"port {name!r} has no appProtocol")
        elif app not in ISTIO_PROTOCOLS:
            fail(where, f"port {name!r} appProtocol {app!r} is not one Istio knows (it would sniff, and appProtocol wins over the name)")
        elif app != prefix:
            fail(where, f"port {name!r} says {prefix} by name and {app} by appProtocol")
        target = port.get("targetPort")
        if target not in container_ports and target not in container_ports.values():
            fail(where, f"port {name!r} targetPort {target!r} is not a container port {sorted(map(str, container_ports))}")


def selects(selector, labels, where):
    if not selector or not isinstance(selector, dict):
        fail(where, "empty selector")
    elif any(labels.get(k) != v for k, v in selector.items()):
        fail(where, f"selector {selector} does not match the pod labels {labels}")


def check_kubernetes(source_dir, known, defaults):
    kube_dir = source_dir / "deploy" / "kubernetes" / "cluster"
    failed_before = len(failures)
    files = sorted(p for p in kube_dir.iterdir() if p.suffix in (".yaml", ".yml")) if kube_dir.is_dir() else []
    if not files:
        fail(str(kube_dir), "no manifests")
        return
    docs = {}
    for path in files:
        try:
            objects = [o for o in yaml.safe_load_all(path.read_text(encoding="utf-8")) if o is not None]
        except yaml.YAMLError as e:
            fail(path.name, f"does not parse as YAML: {e}")
            continue
        if not objects:
            fail(path.name, "holds no object")
        for obj in objects:
            if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind"):
                fail(path.name, "an object without apiVersion or kind")
                continue
            if obj["kind"] != "Kustomization" and not (obj.get("metadata") or {}).get("name"):
                fail(path.name, f"{obj['kind']} without metadata.name")
            docs.setdefault(obj["kind"], []).append((path.name, obj))
    ok(f"{len(files)} files of deploy/kubernetes/cluster parse")

    expected = {"Kustomization": 1, "Deployment": 1, "StatefulSet": 1, "Service": 2, "PodDisruptionBudget": 2, "ConfigMap": 1}
    for kind, count in expected.items():
        if len(docs.get(kind, [])) != count:
            fail(str(kube_dir), f"expected {count} {kind}, found {len(docs.get(kind, []))}")
    if any(len(docs.get(kind, [])) != count for kind, count in expected.items()):
        return
    if docs.get("PersistentVolumeClaim"):
        fail(str(kube_dir), "a PersistentVolumeClaim: cluster-mode relays keep no local state")

    _, kustomization = docs["Kustomization"][0]
    listed = set(kustomization.get("resources") or [])
    others = {p.name for p in files if p.name != "kustomization.yaml"}
    if listed != others:
        fail("kustomization.yaml", f"resources {sorted(listed)} != manifests {sorted(others)}")

    # --- NATS ---
    sts_file, sts = docs["StatefulSet"][0]
    sspec = sts.get("spec") or {}
    stpl = sspec.get("template") or {}
    spod = stpl.get("spec") or {}
    nats_labels = (stpl.get("metadata") or {}).get("labels") or {}
    nats_name = (sts.get("metadata") or {}).get("name")
    replicas = sspec.get("replicas")
    if replicas != 3:
        fail(sts_file, f"replicas is {replicas!r}, must be 3 (JetStream R3)")
    replicas = replicas if isinstance(replicas, int) else 3
    if sspec.get("podManagementPolicy") != "Parallel":
        fail(sts_file, "podManagementPolicy is not Parallel: a new cluster's first pod cannot be ready alone")
    if (sspec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
        fail(sts_file, "updateStrategy is not RollingUpdate (one node at a time)")
    selects((sspec.get("selector") or {}).get("matchLabels"), nats_labels, f"{sts_file}: spec.selector")
    services = {(s.get("metadata") or {}).get("name"): (f, s) for f, s in docs["Service"]}
    headless = services.get(sspec.get("serviceName"))
    if headless is None:
        fail(sts_file, f"serviceName {sspec.get('serviceName')!r} is not a Service here")
    else:
        hfile, hsvc = headless
        hspec = hsvc.get("spec") or {}
        if hspec.get("clusterIP") != "None":
            fail(hfile, "the StatefulSet's Service is not headless (clusterIP: None)")
        if hspec.get("publishNotReadyAddresses") is not True:
            fail(hfile, "publishNotReadyAddresses is not true: routes could not resolve before the pods are ready")
        selects(hspec.get("selector"), nats_labels, f"{hfile}: spec.selector")
        check_service_ports(hfile, hsvc, stpl)
    nats_container = next((c for c in spod.get("containers") or [] if c.get("name") == "nats"), None)
    claims = sspec.get("volumeClaimTemplates") or []
    if not claims:
        fail(sts_file, "no volumeClaimTemplates: JetStream's file storage would not survive a restart")
    nats_conf = None
    if nats_container is None:
        fail(sts_file, "no container named nats")
    else:
        image = str(nats_container.get("image"))
        if not re.fullmatch(r"nats:2\.9(\.\d+)?(-[a-z0-9.]+)?", image):
            fail(sts_file, f"image {image!r} is not nats:2.9")
        args = [str(a) for a in (nats_container.get("command") or []) + (nats_container.get("args") or [])]
        config_path = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c", "--config")), None)
        mounts = {m.get("mountPath"): m.get("name") for m in nats_container.get("volumeMounts") or []}
        volumes = {v.get("name"): v for v in spod.get("volumes") or []}
        cm_file, cm = docs["ConfigMap"][0]
        cm_name = (cm.get("metadata") or {}).get("name")
        if config_path is None:
            fail(sts_file, "the nats container does not pass --config")
        else:
            directory, filename = os.path.split(config_path)
            volume = volumes.get(mounts.get(directory)) or {}
            if (volume.get("configMap") or {}).get("name") != cm_name or filename not in (cm.get("data") or {}):
                fail(sts_file, f"--config {config_path} is not key {filename} of the ConfigMap {cm_name} mounted at {directory}")
            else:
                nenv = container_env(nats_container)
                pods = [f"{nats_name}-{i}.{sspec.get('serviceName')}" for i in range(replicas)]
                relay_env = {}
                for _, dep in docs["Deployment"]:
                    for c in ((dep.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
                        relay_env = env_values(container_env(c)) if c.get("name") == "relay" else relay_env
                max_message = max_message_bytes(relay_env, defaults)
                nats_conf = check_nats_conf(f"{cm_file} data.{filename}", cm["data"][filename], pods, 6222,
                                            max_message, set(nenv))
                name_ref = re.search(r"^\s*server_name:\s*\$(\w+)", cm["data"][filename], re.MULTILINE)
                if name_ref and ((nenv.get(name_ref.group(1)) or {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
                    fail(sts_file, f"{name_ref.group(1)} (server_name) is not the pod name from metadata.name")
        store_dir = str(((nats_conf or {}).get("jetstream") or {}).get("store_dir", ""))
        claim_names = {(c.get("metadata") or {}).get("name") for c in claims}
        if store_dir and mounts.get(store_dir) not in claim_names:
            fail(sts_file, f"jetstream store_dir {store_dir} is not a mount of a volumeClaimTemplate {sorted(claim_names)}")
        pre_stop = " ".join(str(c) for c in ((((nats_container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []))
        if "ldm" not in pre_stop:
            fail(sts_file, "no preStop hook entering lame duck mode (nats-server --signal ldm=PIDFILE)")
        else:
            pid_file = str((nats_conf or {}).get("pid_file", ""))
            if pid_file and f"ldm={pid_file}" not in pre_stop.replace(" ", "=").replace("==", "="):
                fail(sts_file, f"the preStop hook does not signal the pid_file {pid_file}")
            elif not pid_file:
                fail(sts_file, "nats.conf has no pid_file for the lame duck preStop hook")
        termination = spod.get("terminationGracePeriodSeconds", 30)
        if not isinstance(termination, int) or termination < lame_duck_seconds(nats_conf) + 5:
            fail(sts_file, f"terminationGracePeriodSeconds {termination!r} does not outlast lame duck mode ({lame_duck_seconds(nats_conf):g} s)")
        for probe in ("readinessProbe", "livenessProbe"):
            get = (nats_container.get(probe) or {}).get("httpGet") or {}
            if not str(get.get("path", "")).startswith("/healthz"):
                fail(sts_file, f"{probe} is not an httpGet of /healthz")
    if nats_conf is not None:
        ok("NATS StatefulSet: 3 replicas, Parallel, headless Service, volumeClaimTemplates at store_dir, ConfigMap config, lame duck")

    # --- relays ---
    dep_file, dep = docs["Deployment"][0]
    spec = dep.get("spec") or {}
    tpl = spec.get("template") or {}
    pod = tpl.get("spec") or {}
    pod_labels = (tpl.get("metadata") or {}).get("labels") or {}
    if spec.get("replicas") != 3:
        fail(dep_file, f"replicas is {spec.get('replicas')!r}, must be 3")
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    if strategy.get("type") != "RollingUpdate" or rolling.get("maxUnavailable") != 0 or rolling.get("maxSurge") != 1:
        fail(dep_file, "strategy is not RollingUpdate with maxUnavailable 0 and maxSurge 1")
    selects((spec.get("selector") or {}).get("matchLabels"), pod_labels, f"{dep_file}: spec.selector")
    relay = next((c for c in pod.get("containers") or [] if c.get("name") == "relay"), None)
    if relay is None:
        fail(dep_file, "no container named relay")
        return
    env = container_env(relay)
    check_env_names(dep_file, env.keys(), known)
    values = env_values(env)
    grace, _ = check_relay_env(dep_file, values, defaults)
    if "RELAY_DATA_DIR" in env and "value" not in env["RELAY_DATA_DIR"]:
        fail(dep_file, "RELAY_DATA_DIR comes from elsewhere: it must be empty in cluster mode")
    if "RELAY_DATA_DIR" not in env:
        fail(dep_file, "RELAY_DATA_DIR is not emptied: the image sets it, and the relay refuses it with NATS_URL")
    field = (((env.get("RELAY_INSTANCE_ID") or {}).get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
    if field != "metadata.name":
        fail(dep_file, "RELAY_INSTANCE_ID is not the pod name (valueFrom.fieldRef.fieldPath: metadata.name)")
    if nats_name:
        hosts = {h for h, p in nats_urls(values.get("NATS_URL"), dep_file) if p == NATS_CLIENT_PORT}
        want = {f"{nats_name}-{i}.{sspec.get('serviceName')}" for i in range(replicas)}
        if hosts != want:
            fail(dep_file, f"NATS_URL names {sorted(hosts)}, the NATS pods are {sorted(want)} on port {NATS_CLIENT_PORT}")
    kv = values.get("NATS_KV_REPLICAS", "3")
    if not kv.isdigit() or not 1 <= int(kv) <= replicas:
        fail(dep_file, f"NATS_KV_REPLICAS {kv!r} is not between 1 and the {replicas} NATS servers")
    if any(v.get("persistentVolumeClaim") for v in pod.get("volumes") or []):
        fail(dep_file, "mounts a PersistentVolumeClaim: cluster-mode relays keep no local state")

    ports = {p.get("name"): p.get("containerPort") for p in relay.get("ports") or []}
    ws_port = int(values.get("PORT", 8765))
    grpc_port = int(values.get("GRPC_PORT", 50051))
    if ports.get("ws") != ws_port or ports.get("grpc") != grpc_port:
        fail(dep_file, f"container ports {ports} are not ws={ws_port} (PORT) and grpc={grpc_port} (GRPC_PORT)")
    if values.get("GRPC_HOST", "127.0.0.1") in LOOPBACK:
        fail(dep_file, "GRPC_HOST is loopback: the kubelet's gRPC probe reaches the pod IP")
    token = ((env.get("ADMIN_TOKEN") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if not token.get("name") or not token.get("key"):
        fail(dep_file, "GRPC_HOST is off loopback but ADMIN_TOKEN does not come from a Secret (the relay refuses to start)")
    if "TLS_CERT_FILE" in env:
        fail(dep_file, "TLS_CERT_FILE makes gRPC speak TLS, which kubelet gRPC probes cannot")

    readiness = relay.get("readinessProbe") or {}
    if not readiness.get("grpc") or any(k in readiness for k in ("httpGet", "exec", "tcpSocket")):
        fail(dep_file, "readinessProbe is not a native grpc probe")
    else:
        if readiness["grpc"].get("port") not in (grpc_port, "grpc"):
            fail(dep_file, f"readinessProbe.grpc.port {readiness['grpc'].get('port')!r} is not the gRPC port {grpc_port}")
        if readiness["grpc"].get("service") != "relay.v1.RelayCore":
            fail(dep_file, "readinessProbe should ask for relay.v1.RelayCore")
    liveness = relay.get("livenessProbe") or {}
    get = liveness.get("httpGet") or {}
    if get.get("path") != "/health" or get.get("port") not in (ws_port, "ws"):
        fail(dep_file, "livenessProbe is not an httpGet of /health on the WebSocket port (it must ignore NATS)")

    pre_stop = (((relay.get("lifecycle") or {}).get("preStop") or {}))
    command = [str(c) for c in ((pre_stop.get("exec") or {}).get("command") or [])]
    sleep = None
    if pre_stop.get("sleep"):
        sleep = float((pre_stop["sleep"] or {}).get("seconds", 0))
    elif len(command) == 2 and os.path.basename(command[0]) == "sleep" and command[1].isdigit():
        sleep = float(command[1])
    if sleep is None:
        fail(dep_file, "no preStop sleep (endpoint removal must reach proxies before the drain starts)")
        sleep = 0.0
    if any(word in " ".join(command) for word in ("relayctl", "kill")):
        fail(dep_file, "the preStop hook signals or drains: the kubelet's SIGTERM after it would be the second signal")
    termination = pod.get("terminationGracePeriodSeconds", 30)
    needed = sleep + grace + DRAIN_CLOSE_SECONDS + SIDECAR_ALLOWANCE_SECONDS
    if not isinstance(termination, int) or termination < needed:
        fail(dep_file, f"terminationGracePeriodSeconds {termination!r} must cover preStop {sleep:g} + DRAIN_GRACE_SECONDS {grace:g} + close {DRAIN_CLOSE_SECONDS} + sidecar {SIDECAR_ALLOWANCE_SECONDS} s")
    annotations = (tpl.get("metadata") or {}).get("annotations") or {}
    istio = yaml.safe_load(annotations.get("proxy.istio.io/config", "") or "{}") or {}
    drain = duration_seconds(istio.get("terminationDrainDuration", "5s")) or 0
    linkerd = float(annotations.get("config.alpha.linkerd.io/proxy-wait-before-exit-seconds", 0) or 0)
    for mesh, seconds in (("Istio terminationDrainDuration", drain), ("Linkerd proxy-wait-before-exit-seconds", linkerd)):
        if seconds < sleep + grace + DRAIN_CLOSE_SECONDS:
            fail(dep_file, f"{mesh} {seconds:g} s: the proxy would exit before the relay drained ({sleep + grace + DRAIN_CLOSE_SECONDS:g} s)")
        elif seconds > termination:
            fail(dep_file, f"{mesh} {seconds:g} s is beyond terminationGracePeriodSeconds {termination}")

    security = pod.get("securityContext") or {}
    if security.get("runAsNonRoot") is not True:
        fail(dep_file, "pod securityContext.runAsNonRoot is not true")

    headless_name = sspec.get("serviceName")
    for svc_file, svc in docs["Service"]:
        if (svc.get("metadata") or {}).get("name") == headless_name:
            continue
        selects((svc.get("spec") or {}).get("selector"), pod_labels, f"{svc_file}: spec.selector")
        check_service_ports(svc_file, svc, tpl)
        names = {str(p.get("name")) for p in (svc.get("spec") or {}).get("ports") or []}
        if not any(n.startswith("http-") for n in names) or not any(n.startswith("grpc-") for n in names):
            fail(svc_file, f"ports {sorted(names)} should be an http-* WebSocket port and a grpc-* port")

    pdbs = {}
    for pdb_file, pdb in docs["PodDisruptionBudget"]:
        selector = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if selector and all(pod_labels.get(k) == v for k, v in selector.items()):
            pdbs["relay"] = (pdb_file, pdb)
        elif selector and all(nats_labels.get(k) == v for k, v in selector.items()):
            pdbs["nats"] = (pdb_file, pdb)
        else:
            fail(pdb_file, f"selector {selector} selects neither the relays nor NATS")
    if "relay" not in pdbs or (pdbs["relay"][1].get("spec") or {}).get("minAvailable") != 2:
        fail(str(kube_dir), "no relay PodDisruptionBudget with minAvailable 2")
    if "nats" not in pdbs or (pdbs["nats"][1].get("spec") or {}).get("maxUnavailable") != 1:
        fail(str(kube_dir), "no NATS PodDisruptionBudget with maxUnavailable 1")
    if len(failures) == failed_before:
        ok("relay Deployment, Services and PodDisruptionBudgets agree (replicas, rollout, probes, preStop, grace, ports)")


def main():
    source_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parents[2]).resolve()
    defaults = relay_settings(source_dir)
    known = set(defaults) | relayctl_env_names(source_dir)
    check_compose(source_dir, known, defaults)
    check_kubernetes(source_dir, known, defaults)
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    if failures:
        print(f"check_cluster: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("check_cluster: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
