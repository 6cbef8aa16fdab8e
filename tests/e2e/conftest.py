"""Fixtures for the e2e suite: the real relay binary, started fresh for each test.

Binaries: --relay-bin / RELAY_BIN and --relayctl-bin / RELAYCTL_BIN (default build/bin/...).
`async def` tests are run with asyncio.run (no pytest-asyncio needed), each under a hard
timeout; clients left open are closed afterwards.
"""

import asyncio
import inspect
import os

import pytest

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


@pytest.fixture
def relay_factory(relay_bin):
    """relay_factory(*extra_args, env={...}) -> a started RelayProcess. Each one is stopped with
    SIGTERM (by PID) at teardown and must exit 0 within 10 s."""
    started = []

    def start(*extra_args, env=None):
        r = RelayProcess(relay_bin, extra_args, env=env)
        started.append(r)
        return r

    yield start

    failures = []
    for r in started:
        already = r.returncode is not None
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
