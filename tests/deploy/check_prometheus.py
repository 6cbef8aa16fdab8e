#!/usr/bin/env python3
"""Checks deploy/prometheus/ and deploy/grafana/ (CTest: deploy_prometheus_check).

  tests/deploy/check_prometheus.py SOURCE_DIR

1. promtool (Debian's prometheus package): `check rules` on relay-alerts.yml, `test rules` on its
   unit tests relay-alerts.test.yml (each alert firing on its series and quiet on its neighbours),
   `check config` on the example prometheus.yml (which loads the rules). Every alert has a test
   case there, a severity label and a summary and description, and is named in
   docs/operations.md's Alerts section.
2. The dashboard deploy/grafana/*.json: importable JSON with a datasource variable every panel and
   every query uses (no datasource uid of one Grafana installation), job and instance variables
   every selector applies, unique panel ids, a grid that fits 24 columns without overlaps, and
   every query valid PromQL: promtool parses each one, written as a recording rule.
Whether the metric names are really exported is check_metric_names.py's, against a live relay.

promtool missing: skipped (exit 77) unless CI is set in the environment, where it fails.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import promql  # noqa: E402

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
failures = []


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    failures.append(msg)


def ok(msg):
    print("ok: " + msg)


def in_ci():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def promtool(*args, cwd):
    p = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).strip()


def check_rules(source_dir):
    prom_dir = os.path.join(source_dir, "deploy", "prometheus")
    for args in (("check", "rules", "relay-alerts.yml"), ("test", "rules", "relay-alerts.test.yml"),
                 ("check", "config", "prometheus.yml")):
        rc, out = promtool(*args, cwd=prom_dir)
        if rc != 0:
            fail("promtool %s:\n%s" % (" ".join(args), out))
        else:
            ok("promtool %s" % " ".join(args))
    with open(os.path.join(prom_dir, "relay-alerts.yml"), encoding="utf-8") as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
    with open(os.path.join(prom_dir, "relay-alerts.test.yml"), encoding="utf-8") as f:
        tests = yaml.safe_load(f)
    tested = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", [])
              if t.get("exp_alerts")}
    with open(os.path.join(source_dir, "docs", "operations.md"), encoding="utf-8") as f:
        ops = f.read()
    alerts_section = re.search(r"^### Alerts\n(.*?)(?=^#)", ops, re.M | re.S)
    if not alerts_section:
        fail("docs/operations.md has no '### Alerts' section")
    alerts = [r["alert"] for r in rules if "alert" in r]
    for r in rules:
        name = r.get("alert")
        if not name:
            continue
        if name not in tested:
            fail("alert %s: no test in relay-alerts.test.yml expects it to fire" % name)
        if r.get("labels", {}).get("severity") not in ("warning", "critical"):
            fail("alert %s: severity label is not warning or critical" % name)
        for a in ("summary", "description"):
            if not r.get("annotations", {}).get(a):
                fail("alert %s: no %s annotation" % (name, a))
        if alerts_section and "`%s`" % name not in alerts_section.group(1):
            fail("alert %s is not named in docs/operations.md's Alerts section" % name)
    if len(set(alerts)) != len(alerts):
        fail("alert names repeat: %r" % alerts)
    ok("%d alerts: each tested, labelled, annotated and documented" % len(alerts))


def overlaps(a, b):
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and
            a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def check_dashboard(source_dir, path):
    rel = os.path.relpath(path, source_dir)
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except ValueError as e:
        return fail("%s: not JSON: %s" % (rel, e))
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in dash:
            fail("%s: no %r" % (rel, key))
    if dash.get("id") is not None:
        fail("%s: has an id (one Grafana's database row): imports must not carry it" % rel)
    if "__inputs" in dash:
        fail("%s: has __inputs: the datasource variable picks the data source instead" % rel)
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        fail("%s: no datasource variable of type datasource over prometheus" % rel)
    for name in ("job", "instance"):
        v = variables.get(name)
        if not v or v.get("type") != "query" or v.get("datasource") != DATASOURCE:
            fail("%s: no %s query variable on the datasource variable" % (rel, name))
        elif not (v.get("includeAll") and v.get("allValue") == ".*"):
            fail("%s: variable %s must offer All as .*" % (rel, name))

    ids, grids, exprs = set(), [], []

    def walk(panels):
        for p in panels:
            title = p.get("title")
            if p.get("id") in ids:
                fail("%s: panel id %r repeats" % (rel, p.get("id")))
            ids.add(p.get("id"))
            g = p.get("gridPos", {})
            if not all(isinstance(g.get(k), int) for k in "xywh") or g["x"] < 0 or g["w"] < 1 or \
                    g["x"] + g["w"] > 24 or g["h"] < 1:
                fail("%s: panel %r: gridPos %r outside the 24 columns" % (rel, title, g))
            else:
                for other_title, other in grids:
                    if overlaps(g, other):
                        fail("%s: panels %r and %r overlap" % (rel, title, other_title))
                grids.append((title, g))
            if p.get("type") == "row":
                walk(p.get("panels", []))
                continue
            if p.get("datasource") != DATASOURCE:
                fail("%s: panel %r: datasource %r, not the datasource variable" % (rel, title, p.get("datasource")))
            targets = p.get("targets") or []
            if not targets:
                fail("%s: panel %r has no query" % (rel, title))
            for t in targets:
                if t.get("datasource") != DATASOURCE:
                    fail("%s: panel %r %s: datasource is not the datasource variable" % (rel, title, t.get("refId")))
                expr = t.get("expr", "")
                if not expr.strip():
                    fail("%s: panel %r %s: empty expr" % (rel, title, t.get("refId")))
                    continue
                exprs.append(("%s %s" % (title, t.get("refId")), expr))
                # Every selector filters by the job and instance variables.
                for name in promql.metric_names(promql.expand_grafana(expr)):
                    for m in re.finditer(r'(?<![\w:])%s(\{[^{}]*\})?' % re.escape(name), expr):
                        sel = m.group(1) or ""
                        if 'job=~"$job"' not in sel or 'instance=~"$instance"' not in sel:
                            fail("%s: panel %r %s: %s is not filtered by $job and $instance"
                                 % (rel, title, t.get("refId"), name))

    walk(dash.get("panels", []))
    ok("%s: %d panels, %d queries, datasource variable, grid" % (rel, len(ids), len(exprs)))

    # promtool parses every query as the expression of a recording rule.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": "dashboard:query_%d" % i, "expr": promql.expand_grafana(e)} for i, (_, e) in enumerate(exprs)]}]}
    with tempfile.TemporaryDirectory() as tmp:
        rules_path = os.path.join(tmp, "dashboard-queries.yml")
        with open(rules_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(rules, f)
        rc, out = promtool("check", "rules", rules_path, cwd=tmp)
    if rc != 0:
        fail("%s: promtool does not parse its queries (dashboard:query_N is the Nth of %r):\n%s"
             % (rel, [w for w, _ in exprs], out))
    else:
        ok("%s: promtool parses all %d queries" % (rel, len(exprs)))


def main():
    source_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                                 os.path.join(os.path.dirname(__file__), "..", ".."))
    promql.self_test()
    if shutil.which("promtool") is None:
        msg = "promtool not found (Debian package prometheus; scripts/install-deps.sh --test)"
        if in_ci():
            print("FAIL: %s; CI is set, so this is not a skip" % msg, file=sys.stderr)
            return 1
        print("SKIP: " + msg)
        return 77
    check_rules(source_dir)
    dashboards = sorted(os.path.join(source_dir, "deploy", "grafana", f)
                        for f in os.listdir(os.path.join(source_dir, "deploy", "grafana")) if f.endswith(".json"))
    if not dashboards:
        fail("no dashboard in deploy/grafana/")
    for path in dashboards:
        check_dashboard(source_dir, path)
    if failures:
        print("check_prometheus: %d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("check_prometheus: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
