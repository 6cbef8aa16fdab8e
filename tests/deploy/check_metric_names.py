#!/usr/bin/env python3
"""Every metric the dashboards and alerts in deploy/ ask for is one the relay really exports
(CTest: deploy_metric_names_check).

  tests/deploy/check_metric_names.py SOURCE_DIR RELAY_BIN

Starts the built relay on loopback (port 0), and a relay in cluster mode on a one-node NATS
server with JetStream (tests/e2e/natscluster.py), scrapes /metrics of both and reads every sample
name and its labels. Then, for every query of deploy/grafana/*.json and every expression of
deploy/prometheus/*-alerts.yml (promql.py reads them):
  - each metric name is exported (a histogram's _bucket, _sum and _count are its sample names;
    `up` is Prometheus's own series for each scrape);
  - each `name{label="value"}` matcher names a label and value some exported sample has
    (reason="slow_consumer" misspelt would select nothing, silently);
  - each by/on/without label is one the expression's metrics carry (job and instance are
    Prometheus's target labels).
The cluster series (relay_nats_*, relay_cluster_*, relay_backplane_*) exist only in cluster mode.
Without nats-server the cluster half is skipped (exit 77) unless CI is set, where it fails.
Processes are stopped by PID.
"""

import os
import re
import shutil
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import promql  # noqa: E402

PROMETHEUS_OWN = {"up"}
TARGET_LABELS = {"job", "instance"}
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+(\s+\S+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def in_ci():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def parse_exposition(text):
    """-> {sample name: set of (label, value)} from Prometheus text format."""
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError("not a sample line: %r" % line)
        labels = series.setdefault(m.group(1), set())
        for label, value in _LABEL.findall(m.group(3) or ""):
            labels.add((label, value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")))
    return series


def scrape(relay):
    url = "http://%s:%d/metrics" % (relay.host, relay.port)
    with urllib.request.urlopen(url, timeout=10) as resp:
        if resp.status != 200:
            raise RuntimeError("GET %s: %d" % (url, resp.status))
        return parse_exposition(resp.read().decode("utf-8"))


def check(queries, exported):
    """-> list of problems; exported is {name: {(label, value)}}."""
    problems = []
    for where, expr in queries:
        names = promql.metric_names(expr)
        if not names:
            problems.append("%s: no metric name found in %r" % (where, expr))
        carried = set(TARGET_LABELS)
        for name in sorted(names):
            if name in PROMETHEUS_OWN:
                continue
            if name not in exported:
                problems.append("%s: %s is not exported by the relay" % (where, name))
                continue
            carried.update(label for label, _ in exported[name])
        for name, label, value in promql.equality_matchers(expr):
            if name in PROMETHEUS_OWN or name not in exported or label in TARGET_LABELS:
                continue
            if (label, value) not in exported[name]:
                values = sorted(v for l, v in exported[name] if l == label)
                problems.append("%s: %s{%s=%r} selects nothing: the relay exports %s=%r"
                                % (where, name, label, value, label, values))
        for label in sorted(promql.grouping_labels(expr) - carried):
            problems.append("%s: groups by %r, which none of %s carries" % (where, label, sorted(names)))
    return problems


def self_test():
    exported = {"relay_x_total": {("reason", "a")}, "relay_h_bucket": {("le", "+Inf")}}
    assert check([("t", 'sum by (reason) (rate(relay_x_total{reason="a"}[5m]))')], exported) == []
    assert len(check([("t", 'rate(relay_y_total[5m])')], exported)) == 1
    assert len(check([("t", 'rate(relay_x_total{reason="b"}[5m])')], exported)) == 1
    assert len(check([("t", 'sum by (code) (rate(relay_x_total[5m]))')], exported)) == 1
    assert check([("t", 'histogram_quantile(0.9, sum by (le, instance) (rate(relay_h_bucket[5m])))')], exported) == []
    assert len(check([("t", 'rate(relay_h[5m])')], exported)) == 1  # a histogram's family name is no series
    assert parse_exposition('# HELP a b\nx_total{r="a\\"b"} 1\ny 2 1700000000\n') == \
        {"x_total": {("r", 'a"b')}, "y": set()}


def merge(into, series):
    for name, labels in series.items():
        into.setdefault(name, set()).update(labels)


def main():
    if len(sys.argv) != 3:
        print("usage: check_metric_names.py SOURCE_DIR RELAY_BIN", file=sys.stderr)
        return 2
    source_dir, relay_bin = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    promql.self_test()
    self_test()
    sys.path.insert(0, os.path.join(source_dir, "tests", "e2e"))
    import natscluster  # noqa: E402
    from relayclient import RelayProcess  # noqa: E402

    queries = promql.queries(source_dir)
    if not queries:
        print("FAIL: no query found in deploy/grafana or deploy/prometheus", file=sys.stderr)
        return 1
    exported = {}
    started = []
    nats = None
    skipped_cluster = None
    try:
        single = RelayProcess(relay_bin, env={"RELAY_DATA_DIR": ""})
        started.append(single)
        merge(exported, scrape(single))
        print("ok: single relay exports %d sample names" % len(exported))
        if not os.path.exists(natscluster.NATS_SERVER):
            skipped_cluster = "nats-server not found (%s)" % natscluster.NATS_SERVER
        else:
            nats = natscluster.NatsCluster(size=1).start()
            nats.wait_ready()
            clustered = RelayProcess(relay_bin, env={
                "NATS_URL": nats.url, "RELAY_CLUSTER": nats.relay_cluster, "NATS_KV_REPLICAS": "1",
                "RELAY_DATA_DIR": "", "RELAY_INSTANCE_ID": nats.relay_cluster + "-names"}, start_timeout=20)
            started.append(clustered)
            before = len(exported)
            cluster_series = scrape(clustered)
            if "relay_nats_connected" not in cluster_series:
                print("FAIL: a relay with NATS_URL exports no relay_nats_connected", file=sys.stderr)
                return 1
            merge(exported, cluster_series)
            print("ok: cluster relay adds %d sample names" % (len(exported) - before))
    finally:
        bad_exits = []
        for r in started:
            rc = r.stop(timeout=10)
            if rc != 0:
                bad_exits.append("relay %s: exit code %r after SIGTERM; stderr tail:\n%s"
                                 % (r.args, rc, r.stderr_text()))
        if nats is not None:
            nats.stop()
    if bad_exits:
        print("FAIL: " + "\n".join(bad_exits), file=sys.stderr)
        return 1

    problems = check(queries, exported)
    if skipped_cluster:
        cluster_only = [p for p in problems if re.search(r"\brelay_(nats|cluster|backplane)_", p)]
        problems = [p for p in problems if p not in cluster_only]
    for p in problems:
        print("FAIL: " + p, file=sys.stderr)
    if problems:
        print("check_metric_names: %d problem(s) in %d queries" % (len(problems), len(queries)), file=sys.stderr)
        return 1
    names = set().union(*(promql.metric_names(e) for _, e in queries))
    print("ok: %d queries over %d metric names, every one exported with the labels it selects"
          % (len(queries), len(names)))
    if skipped_cluster:
        if in_ci():
            print("FAIL: %s; CI is set, so this is not a skip" % skipped_cluster, file=sys.stderr)
            return 1
        print("SKIP: cluster series not checked: %s" % skipped_cluster)
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
