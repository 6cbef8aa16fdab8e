"""What an operator sees of the relay process itself, against the real binaries: `--version` on
relay and relayctl (the version and the git commit baked in at build time)."""

import json
import os
import re
import subprocess

from relayclient import REPO

VERSION_RE = re.compile(r"^(relay|relayctl) (\d+\.\d+\.\d+) \(commit ([A-Za-z0-9._+-]+)\)\n$")


def run(*args, timeout=10):
    env = dict(os.environ)
    for name in ("RELAY_ADMIN_ADDR", "RELAY_ADMIN_TOKEN", "RELAY_ADMIN_CA"):
        env.pop(name, None)
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env,
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
