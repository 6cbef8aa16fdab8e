#!/usr/bin/env python3
"""Checks the deployment kit's manifests (CTest: deploy_manifests_check).

    tests/deploy/check_manifests.py [SOURCE_DIR [BIN_DIR]]

SOURCE_DIR defaults to the repository root, BIN_DIR to SOURCE_DIR/build/bin.
No cluster, no Fly or Railway account: each file is parsed with the parser its
platform's format needs (PyYAML, tomllib, json) and then held to the relay's
operational contract:

  - deploy/kubernetes/*.yaml: every document parses and has apiVersion, kind and
    a name; kustomization.yaml lists every other file; exactly one replica with
    strategy Recreate (meshes live in one process); Service and
    PodDisruptionBudget select the pod's labels; the native gRPC probes hit the
    container's gRPC port with the services the relay registers (readiness:
    relay.v1.RelayCore); the gRPC listener is off loopback only with ADMIN_TOKEN
    from a Secret and without TLS (kubelet gRPC probes cannot speak TLS);
    terminationGracePeriodSeconds and the liveness failure window exceed
    DRAIN_GRACE_SECONDS; no preStop hook (SIGTERM is the drain); the data
    directory is a mounted PersistentVolumeClaim; the pod runs as the
    Dockerfile's uid, non-root.
  - deploy/fly/fly.toml: SIGTERM with kill_timeout above the drain grace; the
    Dockerfile and build target exist; the HTTP service checks /ready on PORT,
    never auto-stops, and a volume is mounted at RELAY_DATA_DIR.
  - deploy/railway/railway.json: Dockerfile builder with an existing path, one
    replica, /ready health check, drainingSeconds (a JSON number, as Railway's
    parser wants) above the drain grace, no overlap.
  - every environment variable any of these files, deploy/docker-compose.yml or
    deploy/systemd/ sets is one the relay or relayctl reads (`--help`), so a
    typo such as TRUSTED_PROXY fails here instead of being ignored in
    production.

Every failure is printed; the exit status is 1 when any check failed.
"""

import json
import pathlib
import re
import subprocess
import sys
import tomllib

import yaml

# The drain grace the relay uses when DRAIN_GRACE_SECONDS is not set.
DEFAULT_DRAIN_GRACE_SECONDS = 20
# Settings of the operations contract (Operations plane issue) that a build may
# not list in --help yet; remove each once `relay --help` / `relayctl --help`
# prints it.
CONTRACT_ENV_NAMES = {"DRAIN_GRACE_SECONDS", "ADMIN_TOKEN", "LOG_FORMAT", "RELAY_ADMIN_TOKEN"}
# What grpc.health.v1 answers for (the relay registers both).
HEALTH_SERVICES = {"", "relay.v1.RelayCore"}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}

failures = []


def fail(where, message):
    failures.append(f"{where}: {message}")


def ok(message):
    print(f"ok: {message}")


def known_env_names(bin_dir):
    """Environment variables the built relay and relayctl document in --help."""
    names = set(CONTRACT_ENV_NAMES)
    for binary, pattern in (("relay", r"\(([A-Z][A-Z0-9_]*)\)"), ("relayctl", r"\$([A-Z][A-Z0-9_]*)")):
        path = bin_dir / binary
        if not path.is_file():
            fail(str(path), "not built; needed to know which settings exist")
            continue
        help_text = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=10)
        found = set(re.findall(pattern, help_text.stdout + help_text.stderr))
        if not found:
            fail(str(path), "--help names no environment variables")
        names |= found
    return names


def check_env_names(where, names, known):
    unknown = sorted(set(names) - known)
    if unknown:
        fail(where, f"sets environment variables the relay does not read: {', '.join(unknown)}")


def seconds(value, where, field):
    """An int, or a duration string such as "30s" / "1m30s", in seconds."""
    if isinstance(value, bool):
        fail(where, f"{field} is not a duration: {value!r}")
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(value).strip())
    if not match or not any(match.groups()):
        fail(where, f"{field} is not a duration: {value!r}")
        return None
    return int(match.group(1) or 0) * 60.0 + int(match.group(2) or 0)


def drain_grace(env, where):
    value = env.get("DRAIN_GRACE_SECONDS", DEFAULT_DRAIN_GRACE_SECONDS)
    try:
        return float(value)
    except ValueError:
        fail(where, f"DRAIN_GRACE_SECONDS is not a number: {value!r}")
        return float(DEFAULT_DRAIN_GRACE_SECONDS)


def dockerfile_stages(dockerfile):
    """Stage names and the uid:gid of the default (last) stage's USER."""
    text = dockerfile.read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?\s*$", text, re.MULTILINE | re.IGNORECASE)
    last_stage = re.split(r"^FROM\s", text, flags=re.MULTILINE)[-1]
    users = re.findall(r"^USER\s+(\S+)\s*$", last_stage, re.MULTILINE)
    return {s for s in stages if s}, (users[-1] if users else None)


# --- Kubernetes -----------------------------------------------------------------

def check_kubernetes(kube_dir, known, image_user):
    docs = {}  # kind -> list of (file, object)
    files = sorted(p for p in kube_dir.iterdir() if p.suffix in (".yaml", ".yml"))
    if not files:
        fail(str(kube_dir), "no manifests")
        return
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
    ok(f"{len(files)} Kubernetes files parse")

    missing = False
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "PersistentVolumeClaim", "Kustomization"):
        if len(docs.get(kind, [])) != 1:
            fail(str(kube_dir), f"expected exactly one {kind}, found {len(docs.get(kind, []))}")
            missing = True
    if missing:
        return

    _, kustomization = docs["Kustomization"][0]
    listed = set(kustomization.get("resources") or [])
    others = {p.name for p in files if p.name != "kustomization.yaml"}
    if listed != others:
        fail("kustomization.yaml", f"resources {sorted(listed)} != manifests {sorted(others)}")

    dep_file, dep = docs["Deployment"][0]
    spec = dep.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    pod_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}

    def selects(selector, where):
        if not selector or not isinstance(selector, dict):
            fail(where, "empty selector")
        elif any(pod_labels.get(k) != v for k, v in selector.items()):
            fail(where, f"selector {selector} does not match the pod labels {pod_labels}")

    if spec.get("replicas") != 1:
        fail(dep_file, f"replicas is {spec.get('replicas')!r}, must be 1 (meshes live in one process)")
    if (spec.get("strategy") or {}).get("type") != "Recreate":
        fail(dep_file, "strategy is not Recreate (a surge pod would split meshes)")
    selects((spec.get("selector") or {}).get("matchLabels"), f"{dep_file}: spec.selector")

    containers = pod.get("containers") or []
    relay = next((c for c in containers if c.get("name") == "relay"), None)
    if relay is None:
        fail(dep_file, "no container named relay")
        return
    if not relay.get("image"):
        fail(dep_file, "relay container has no image")
    env = {}
    for item in relay.get("env") or []:
        env[item.get("name")] = item
    check_env_names(dep_file, env.keys(), known)
    values = {k: str(v.get("value")) for k, v in env.items() if "value" in v}

    ports = {p.get("name"): p.get("containerPort") for p in relay.get("ports") or []}
    ws_port = int(values.get("PORT", 8765))
    grpc_port = int(values.get("GRPC_PORT", 50051))
    if ports.get("ws") != ws_port:
        fail(dep_file, f"container port ws is {ports.get('ws')}, PORT is {ws_port}")
    if ports.get("grpc") != grpc_port:
        fail(dep_file, f"container port grpc is {ports.get('grpc')}, GRPC_PORT is {grpc_port}")

    grpc_host = values.get("GRPC_HOST", "127.0.0.1")
    if grpc_host in LOOPBACK:
        fail(dep_file, "GRPC_HOST is loopback: the kubelet's gRPC probes reach the pod IP, not 127.0.0.1")
    token = (env.get("ADMIN_TOKEN") or {}).get("valueFrom", {}).get("secretKeyRef")
    if not token or not token.get("name") or not token.get("key"):
        fail(dep_file, "GRPC_HOST is off loopback but ADMIN_TOKEN does not come from a Secret (the relay refuses to start)")
    if "TLS_CERT_FILE" in env:
        fail(dep_file, "TLS_CERT_FILE makes gRPC speak TLS, which kubelet gRPC probes cannot: terminate TLS in front")

    grace = drain_grace(values, dep_file)
    termination = pod.get("terminationGracePeriodSeconds")
    if not isinstance(termination, int) or termination < grace + 5:
        fail(dep_file, f"terminationGracePeriodSeconds {termination!r} must exceed DRAIN_GRACE_SECONDS {grace:g} by at least 5 s")
    if (relay.get("lifecycle") or {}).get("preStop"):
        fail(dep_file, "preStop hook present: SIGTERM is the drain (see the comment in deployment.yaml)")

    for probe_name in ("readinessProbe", "livenessProbe"):
        probe = relay.get(probe_name)
        if not probe:
            fail(dep_file, f"no {probe_name}")
            continue
        grpc = probe.get("grpc")
        if not grpc or any(k in probe for k in ("httpGet", "exec", "tcpSocket")):
            fail(dep_file, f"{probe_name} is not a native grpc probe")
            continue
        if grpc.get("port") != grpc_port:
            fail(dep_file, f"{probe_name}.grpc.port {grpc.get('port')!r} is not the gRPC port {grpc_port}")
        service = grpc.get("service", "")
        if service not in HEALTH_SERVICES:
            fail(dep_file, f"{probe_name}.grpc.service {service!r} is not one the relay registers {sorted(HEALTH_SERVICES)}")
    readiness = (relay.get("readinessProbe") or {}).get("grpc") or {}
    if readiness.get("service") != "relay.v1.RelayCore":
        fail(dep_file, "readinessProbe should ask for relay.v1.RelayCore")
    liveness = relay.get("livenessProbe") or {}
    window = liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
    if window <= grace:
        fail(dep_file, f"liveness fails after {window} s, within a {grace:g} s drain (NOT_SERVING while draining)")

    data_dir = values.get("RELAY_DATA_DIR")
    claims = {v.get("name"): (v.get("persistentVolumeClaim") or {}).get("claimName") for v in pod.get("volumes") or []}
    mounts = {m.get("mountPath"): m.get("name") for m in relay.get("volumeMounts") or []}
    _, pvc = docs["PersistentVolumeClaim"][0]
    if not data_dir:
        fail(dep_file, "RELAY_DATA_DIR is not set: signed meshes would not survive a restart")
    elif claims.get(mounts.get(data_dir)) != pvc["metadata"]["name"]:
        fail(dep_file, f"RELAY_DATA_DIR {data_dir} is not a mount of the PersistentVolumeClaim {pvc['metadata']['name']}")

    security = pod.get("securityContext") or {}
    if security.get("runAsNonRoot") is not True:
        fail(dep_file, "pod securityContext.runAsNonRoot is not true")
    if image_user and f"{security.get('runAsUser')}:{security.get('runAsGroup')}" != image_user:
        fail(dep_file, f"runAsUser:runAsGroup {security.get('runAsUser')}:{security.get('runAsGroup')} is not the image's USER {image_user}")

    svc_file, svc = docs["Service"][0]
    selects((svc.get("spec") or {}).get("selector"), f"{svc_file}: spec.selector")
    for port in (svc.get("spec") or {}).get("ports") or []:
        if port.get("targetPort") not in ports and port.get("targetPort") not in ports.values():
            fail(svc_file, f"targetPort {port.get('targetPort')!r} is not a container port")

    pdb_file, pdb = docs["PodDisruptionBudget"][0]
    selects(((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels"), f"{pdb_file}: spec.selector")
    if "maxUnavailable" not in (pdb.get("spec") or {}) and "minAvailable" not in (pdb.get("spec") or {}):
        fail(pdb_file, "neither maxUnavailable nor minAvailable")
    ok("Kubernetes objects agree (replicas, probes, ports, grace, selectors, volume, user)")


# --- Fly.io ---------------------------------------------------------------------

def check_fly(path, source_dir, known, stages):
    try:
        with path.open("rb") as f:
            fly = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        fail(path.name, f"does not parse as TOML: {e}")
        return
    ok("fly.toml parses")
    env = {k: str(v) for k, v in (fly.get("env") or {}).items()}
    check_env_names(path.name, env.keys(), known)
    grace = drain_grace(env, path.name)
    if not fly.get("app"):
        fail(path.name, "no app name")
    if fly.get("kill_signal") != "SIGTERM":
        fail(path.name, "kill_signal is not SIGTERM (Fly's default is SIGINT)")
    timeout = seconds(fly.get("kill_timeout", 5), path.name, "kill_timeout")
    if timeout is not None and timeout < grace + 5:
        fail(path.name, f"kill_timeout {timeout:g} s must exceed DRAIN_GRACE_SECONDS {grace:g} by at least 5 s")

    build = fly.get("build") or {}
    dockerfile = (path.parent / build.get("dockerfile", "Dockerfile")).resolve()
    if dockerfile != (source_dir / "deploy" / "Dockerfile").resolve():
        fail(path.name, f"build.dockerfile resolves to {dockerfile}, not deploy/Dockerfile")
    target = build.get("build-target")
    if target is not None and target not in stages:
        fail(path.name, f"build-target {target!r} is not a stage of deploy/Dockerfile {sorted(stages)}")

    http = fly.get("http_service") or {}
    if http.get("internal_port") != int(env.get("PORT", 8765)):
        fail(path.name, f"http_service.internal_port {http.get('internal_port')!r} is not PORT")
    if http.get("auto_stop_machines") not in (False, "off"):
        fail(path.name, "http_service.auto_stop_machines must be off: meshes live in the running Machine")
    if not http.get("min_machines_running"):
        fail(path.name, "http_service.min_machines_running must be at least 1")
    if (http.get("concurrency") or {}).get("type") != "connections":
        fail(path.name, "http_service.concurrency.type must be connections (WebSockets)")
    if not any(c.get("path") == "/ready" for c in http.get("checks") or []):
        fail(path.name, "no http_service check on /ready")

    mounts = fly.get("mounts") or []
    mounts = [mounts] if isinstance(mounts, dict) else mounts
    data_dir = env.get("RELAY_DATA_DIR")
    if not data_dir or not any(m.get("destination") == data_dir and m.get("source") for m in mounts):
        fail(path.name, f"no volume mounted at RELAY_DATA_DIR ({data_dir!r})")
    ok("fly.toml agrees (signal, timeout, Dockerfile, checks, volume)")


# --- Railway --------------------------------------------------------------------

def check_railway(path, source_dir):
    try:
        railway = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        fail(path.name, f"does not parse as JSON: {e}")
        return
    ok("railway.json parses")
    build = railway.get("build") or {}
    deploy = railway.get("deploy") or {}
    if build.get("builder") != "DOCKERFILE":
        fail(path.name, "build.builder is not DOCKERFILE")
    if not (source_dir / build.get("dockerfilePath", "")).is_file():
        fail(path.name, f"build.dockerfilePath {build.get('dockerfilePath')!r} is not a file from the repository root")
    if deploy.get("numReplicas") != 1:
        fail(path.name, "deploy.numReplicas must be 1 (meshes live in one process)")
    if deploy.get("healthcheckPath") != "/ready":
        fail(path.name, "deploy.healthcheckPath is not /ready")
    for field in ("drainingSeconds", "overlapSeconds", "healthcheckTimeout"):
        if field in deploy and (isinstance(deploy[field], bool) or not isinstance(deploy[field], int)):
            fail(path.name, f"deploy.{field} must be a JSON number")
    draining = deploy.get("drainingSeconds")
    if not isinstance(draining, int) or draining < DEFAULT_DRAIN_GRACE_SECONDS + 5:
        fail(path.name, f"deploy.drainingSeconds {draining!r} must exceed the drain grace ({DEFAULT_DRAIN_GRACE_SECONDS} s) by at least 5 s")
    if deploy.get("overlapSeconds", 0) != 0:
        fail(path.name, "deploy.overlapSeconds must be 0: two live deployments would split meshes")
    ok("railway.json agrees (Dockerfile, replicas, health check, draining)")


# --- environment variables elsewhere -------------------------------------------

def check_other_env_names(source_dir, known):
    compose = source_dir / "deploy" / "docker-compose.yml"
    try:
        doc = yaml.safe_load(compose.read_text(encoding="utf-8")) or {}
        for name, service in (doc.get("services") or {}).items():
            env = service.get("environment") or {}
            names = env.keys() if isinstance(env, dict) else [str(e).split("=")[0] for e in env]
            check_env_names(f"docker-compose.yml services.{name}", names, known)
    except (OSError, yaml.YAMLError, AttributeError) as e:
        fail(compose.name, f"cannot read its environment: {e}")

    unit = source_dir / "deploy" / "systemd" / "atmosphere-relay.service"
    names = []
    for line in unit.read_text(encoding="utf-8").splitlines():
        if line.startswith("Environment="):
            names += [item.split("=")[0] for item in line[len("Environment="):].split()]
    if not names:
        fail(unit.name, "sets no Environment=")
    check_env_names(unit.name, names, known)

    env_file = source_dir / "deploy" / "systemd" / "relay.env.example"
    # Set and commented-out settings alike: both are what an operator will use.
    names = re.findall(r"^#?([A-Z][A-Z0-9_]*)=", env_file.read_text(encoding="utf-8"), re.MULTILINE)
    if not names:
        fail(env_file.name, "names no settings")
    check_env_names(env_file.name, names, known)
    ok("docker-compose.yml and deploy/systemd/ set only settings the relay reads")


def main():
    source_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parents[2]).resolve()
    bin_dir = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else source_dir / "build" / "bin"
    known = known_env_names(bin_dir)
    stages, image_user = dockerfile_stages(source_dir / "deploy" / "Dockerfile")
    check_kubernetes(source_dir / "deploy" / "kubernetes", known, image_user)
    check_fly(source_dir / "deploy" / "fly" / "fly.toml", source_dir, known, stages)
    check_railway(source_dir / "deploy" / "railway" / "railway.json", source_dir)
    check_other_env_names(source_dir, known)
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    if failures:
        print(f"check_manifests: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("check_manifests: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
