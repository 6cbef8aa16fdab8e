"""A real three-node nats-server cluster with JetStream on loopback ports, for the cluster e2e
tests, and a relay cluster on top of it.

NatsCluster starts Debian's nats-server three times (routes between them, JetStream on each,
`max_payload: 2MB` as deploy/ sets it), waits until every node sees the other two and JetStream
has a leader, and stops them by PID. Nodes can be stopped, restarted on the same ports, paused
(SIGSTOP) and resumed, as outages do.

RelayCluster starts N relay instances (real binaries) on one NatsCluster under their own
RELAY_CLUSTER name, so tests sharing a NATS cluster stay independent. It looks like one
RelayProcess to the tests: every new client connects to the next instance, round robin, so the
peers of any test are spread over the instances; HTTP and gRPC go to the first instance.
"""

import itertools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
START_TIMEOUT = 20.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_cluster_names = itertools.count()


class NatsNode:
    def __init__(self, index, name, workdir):
        self.index = index
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.pick_ports()
        self.proc = None
        self.log_path = os.path.join(self.dir, "nats.log")

    def pick_ports(self):
        # Free when picked, but another test running in parallel may bind one before nats-server
        # does: NatsCluster.start picks again then.
        self.port = free_port()
        self.cluster_port = free_port()
        self.monitor_port = free_port()

    def lost_a_port(self):
        """True when this node exited because a port it was given was taken meanwhile."""
        return self.proc is not None and self.proc.poll() is not None and \
            "address already in use" in self.log_tail(20000)

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def write_config(self, routes):
        config = """
server_name: %(name)s
listen: 127.0.0.1:%(port)d
http: 127.0.0.1:%(monitor)d
max_payload: 2MB
jetstream { store_dir: "%(store)s" }
""" % {"name": self.name, "port": self.port, "monitor": self.monitor_port,
       "store": os.path.join(self.dir, "js")}
        if routes:  # a node alone runs JetStream unclustered
            config += """cluster {
  name: relay_e2e
  listen: 127.0.0.1:%d
  routes: [%s]
}
""" % (self.cluster_port, ", ".join(routes))
        path = os.path.join(self.dir, "nats.conf")
        with open(path, "w") as f:
            f.write(config)
        return path

    def start(self, routes):
        config = self.write_config(routes)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([NATS_SERVER, "-c", config], stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def monitor(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.monitor_port, path), timeout=2) as r:
            return json.loads(r.read())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def log_tail(self, limit=3000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-limit:].decode("utf-8", "replace")
        except OSError:
            return ""


class NatsCluster:
    def __init__(self, size=3):
        self.workdir = tempfile.mkdtemp(prefix="relay-e2e-nats-")
        self.nodes = [NatsNode(i, "n%d" % i, self.workdir) for i in range(size)]
        self.relay_cluster = "e2e%d_%d" % (os.getpid(), next(_cluster_names))

    def routes_for(self, node):
        return ["nats://127.0.0.1:%d" % n.cluster_port for n in self.nodes if n is not node]

    def start(self, attempts=3):
        for attempt in range(attempts):
            for node in self.nodes:
                node.start(self.routes_for(node))
            try:
                self.wait_ready()
                return self
            except RuntimeError:
                if attempt == attempts - 1 or not any(n.lost_a_port() for n in self.nodes):
                    self.stop()  # no fixture will: it never got the cluster
                    raise
            for node in self.nodes:  # all of them: the routes name every node's cluster port
                node.stop()
                node.pick_ports()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        """Every running node routes to every other running one, and JetStream answers."""
        deadline = time.monotonic() + timeout
        running = [n for n in self.nodes if n.proc is not None]
        last = None
        while time.monotonic() < deadline:
            exited = [n for n in running if n.proc.poll() is not None]
            if exited:  # it will not come up: say so now, with its log
                raise RuntimeError("nats-server %s exited with status %s\n%s" % (
                    exited[0].name, exited[0].proc.returncode, self.log_tail()))
            try:
                if all(n.monitor("/routez")["num_routes"] >= len(running) - 1 for n in running) and \
                        all(n.monitor("/healthz?js-enabled-only=true").get("status") == "ok" for n in running):
                    return
            except Exception as e:  # not up yet
                last = e
            time.sleep(0.1)
        raise RuntimeError("NATS cluster not ready in %.0f s (%r)\n%s" % (timeout, last, self.log_tail()))

    @property
    def url(self):
        return ",".join(n.url for n in self.nodes)

    def restart(self, index):
        node = self.nodes[index]
        node.stop()
        node.start(self.routes_for(node))

    def stop(self):
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self):
        return "\n".join("--- %s ---\n%s" % (n.name, n.log_tail()) for n in self.nodes)


class RelayCluster:
    """N relay instances sharing every mesh through `nats`; see the module doc."""

    def __init__(self, factory, nats, size=3, extra_args=(), env=None, ready_timeout=START_TIMEOUT,
                 pinned=False):
        # One RELAY_CLUSTER per NATS cluster, so its KV buckets are made once per module; the
        # tests stay apart by their unique mesh ids and each RelayCluster's own instance ids.
        self.name = nats.relay_cluster
        prefix = "%s-%d" % (self.name, next(_cluster_names))
        base = {"NATS_URL": nats.url, "RELAY_CLUSTER": self.name, "NATS_KV_REPLICAS": "3",
                "RELAY_DATA_DIR": ""}
        base.update(env or {})
        self.name = base["RELAY_CLUSTER"]  # a test may ask for a cluster of its own
        self.env = base
        self.instance_ids = []
        self.instances = []
        for i in range(size):
            instance_env = dict(base)
            instance_env.setdefault("RELAY_INSTANCE_ID", "%s-i%d" % (prefix, i))
            if "RELAY_INSTANCE_ID" in (env or {}):
                instance_env["RELAY_INSTANCE_ID"] = "%s-%d" % (env["RELAY_INSTANCE_ID"], i)
            self.instance_ids.append(instance_env["RELAY_INSTANCE_ID"])
            self.instances.append(factory(*extra_args, env=instance_env))
        # pinned: every client on the first instance (tests of one process's own counts and
        # signals), the others still running and sharing the meshes.
        self.pinned = pinned
        self._next = itertools.cycle([0] if pinned else range(size))
        self.wait_ready(ready_timeout)

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        for r in self.instances:
            while True:
                status, _, body = self._probe(r)
                if status == 200:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("relay %s not ready: %s\n%s" % (r.args, body, r.stderr_text()))
                time.sleep(0.05)

    @staticmethod
    def _probe(r):
        """GET /ready; over TLS before the test set what trusts the certificate, without checking
        it (readiness only: the test's own requests do check it)."""
        if not r.tls or r.ssl_context is not None:
            return r.http("GET", "/ready")
        r.ssl_context = ssl._create_unverified_context()
        try:
            return r.http("GET", "/ready")
        finally:
            r.ssl_context = None

    # What tests use of a RelayProcess. A client's connection goes to the next instance.
    def ws_url(self, mesh, quote=True):
        return self.instances[next(self._next)].ws_url(mesh, quote=quote)

    def next_instance(self):
        return self.instances[next(self._next)]

    @property
    def ssl_context(self):
        return self.instances[0].ssl_context

    @ssl_context.setter
    def ssl_context(self, context):  # what trusts the certificate every instance serves
        for r in self.instances:
            r.ssl_context = context

    @property
    def returncode(self):  # a test that ends the first instance itself records its exit here
        return self.instances[0].returncode

    @returncode.setter
    def returncode(self, value):
        self.instances[0].returncode = value

    def __getattr__(self, name):
        # host, port, grpc_addr, http, get_json, proc, ...: the first instance's.
        return getattr(self.instances[0], name)
