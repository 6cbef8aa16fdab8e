"""Fixtures for the e2e suite: the real relay binary, started fresh for each test.

Binaries: --relay-bin / RELAY_BIN and --relayctl-bin / RELAYCTL_BIN (default build/bin/...).
`async def` tests are run with asyncio.run (no pytest-asyncio needed), each under a hard
timeout; clients left open are closed afterwards.

Cluster mode: a module that sets `SPREAD_OVER_CLUSTER = True` runs every test twice, against one
relay ("single") and against three relay instances sharing a real three-node NATS cluster
("cluster"), with each new client connecting to the next instance in turn (natscluster.py). The
tests are the same; `relay` and `relay_factory` hand out a RelayCluster instead of a
RelayProcess. One NATS cluster and one RELAY_CLUSTER name serve a whole module (a second relay
cluster started within one test gets a name of its own, as a second relay would be separate in
the single topology). A test's relays are stopped before the next test starts, so node entries
and leases they leave are those of dead instances, which the next relays ignore; but what they
wrote to the shared auth buckets (token bindings, signed meshes, used nonces) stays for the
module's later tests, so a test that protects a mesh uses a mesh id no other test of its module
uses.
"""

import asyncio
import inspect
import os
import signal
import subprocess

import pytest

import natscluster
import relayclient
from relayclient import REPO, RelayProcess

TEST_TIMEOUT = 60.0


def pytest_addoption(parser):
    parser.addoption("--relay-bin", default=None, help="path to the relay binary (env RELAY_BIN)")
    parser.addoption("--relayctl-bin", default=None, help="path to relayctl (env RELAYCTL_BIN)")


def _binary(config, option, env, name):
    path = config.getoption(option) or os.environ.get(env) or os.path.join(REPO, "build", "bin", name)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("%s binary not found at %s (set %s or %s)" % (name, path, env, option.replace("_", "-")),
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def relay_bin(pytestconfig):
    return _binary(pytestconfig, "relay_bin", "RELAY_BIN", "relay")


@pytest.fixture(scope="session")
def relayctl_bin(pytestconfig):
    return _binary(pytestconfig, "relayctl_bin", "RELAYCTL_BIN", "relayctl")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "cluster_gap(reason): a behaviour cluster mode does not have yet; in the cluster "
        "topology the test is expected to fail (strict xfail), with the reason")
    config.addinivalue_line(
        "markers", "one_instance(reason): in the cluster topology, every client of the test connects "
        "to the first instance, since the test asserts what one process counts or does (its /health, "
        "/stats, its own SIGTERM); the other instances still run and share the meshes")
    config.addinivalue_line(
        "markers", "single_only(reason): the test cannot run in the cluster topology at all (it needs "
        "--data-dir, which cluster mode refuses, or restarts the one relay); skipped there, with the reason")


def pytest_collection_modifyitems(config, items):
    # A known gap of cluster mode, written as the test a user would run: it must fail there
    # (strict), so closing the gap shows up as an XPASS to remove the mark.
    for item in items:
        gap = item.get_closest_marker("cluster_gap")
        callspec = getattr(item, "callspec", None)
        only = item.get_closest_marker("single_only")
        if only is not None and callspec is not None and callspec.params.get("topology") == "cluster":
            item.add_marker(pytest.mark.skip(reason="single topology only: " + only.args[0]))
        if gap is not None and callspec is not None and callspec.params.get("topology") == "cluster":
            item.add_marker(pytest.mark.xfail(reason=gap.args[0], strict=True))


def pytest_generate_tests(metafunc):
    if getattr(metafunc.module, "SPREAD_OVER_CLUSTER", False) and \
            ("relay" in metafunc.fixturenames or "relay_factory" in metafunc.fixturenames):
        # RELAY_E2E_TOPOLOGIES narrows it (the sanitizer run keeps "single": its relays are
        # several times slower, and test_cluster.py still runs cluster mode under it).
        topologies = os.environ.get("RELAY_E2E_TOPOLOGIES", "single,cluster").split(",")
        metafunc.parametrize("topology", [t for t in ("single", "cluster") if t in topologies],
                             scope="function")


@pytest.fixture
def topology():
    return "single"


@pytest.fixture(scope="module")
def nats_cluster():
    """A three-node NATS cluster with JetStream for the whole module (started on first use)."""
    cluster = natscluster.NatsCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster(relay_bin, nats_cluster):
    """cluster(**kw) -> a RelayCluster (natscluster.py) on the module's NATS cluster, for tests
    of cluster mode itself; its instances are stopped (SIGTERM, then SIGKILL after 15 s) at
    teardown, whatever state the test left them in."""
    nats_cluster.wait_ready()
    started = []

    def start_process(*args, env=None):
        r = RelayProcess(relay_bin, args, env=env)
        started.append(r)
        return r

    def make(**kw):
        return natscluster.RelayCluster(start_process, nats_cluster, **kw)

    yield make
    for r in started:
        if r.proc.poll() is None:
            r.proc.terminate()
    for r in started:
        try:
            r.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            r.kill()


@pytest.fixture
def relay_factory(relay_bin, topology, request):
    """relay_factory(*extra_args, env={...}) -> a started RelayProcess (or, in the "cluster"
    topology, a RelayCluster of three). Each process is stopped with SIGTERM (by PID) at teardown
    and must exit 0 within 10 s."""
    started = []

    def start_process(*extra_args, env=None):
        r = RelayProcess(relay_bin, extra_args, env=env)
        started.append(r)
        return r

    clusters = []

    def start(*extra_args, env=None):
        if topology == "cluster":
            pinned = request.node.get_closest_marker("one_instance") is not None
            if clusters and "RELAY_CLUSTER" not in (env or {}):
                # A second relay of one test is a separate relay in the single topology: its
                # cluster must not share the first one's meshes.
                env = dict(env or {}, RELAY_CLUSTER="%s_%d" % (
                    request.getfixturevalue("nats_cluster").relay_cluster, len(clusters)))
            clusters.append(True)
            return natscluster.RelayCluster(start_process, request.getfixturevalue("nats_cluster"),
                                            extra_args=extra_args, env=env, pinned=pinned)
        return start_process(*extra_args, env=env)

    yield start

    failures = []
    signalled = []
    for r in started:  # SIGTERM to all first: cluster instances stop together
        if r.returncode is None and r.proc.poll() is None:
            r.proc.send_signal(signal.SIGTERM)  # once: a second one exits at once, non-zero
            signalled.append(r)
    for r in started:
        already = r.returncode is not None
        if r in signalled:
            try:
                r.returncode = r.proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                r.kill()
                r.returncode = None
            rc = r.returncode
        else:
            rc = r.stop(timeout=10.0)
        if not already and rc != 0:
            failures.append("relay %s: exit code %r after SIGTERM (expected 0 within 10 s); stderr tail:\n%s"
                            % (r.args, rc, r.stderr_text()))
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.fixture
def relay(relay_factory):
    return relay_factory()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def run():
        try:
            await asyncio.wait_for(func(**args), TEST_TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError("test timed out after %.0f s" % TEST_TIMEOUT) from None
        finally:
            await relayclient.close_all_clients()

    asyncio.run(run())
    return True
