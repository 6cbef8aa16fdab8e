"""What the dashboards and alert rules in deploy/ ask Prometheus for, read from their files.

queries(source_dir) -> [(where, expr)]: every PromQL expression of deploy/grafana/*.json (each
panel target's `expr`, each query variable's query, with Grafana's variables replaced so the result
is plain PromQL) and of deploy/prometheus/*-alerts.yml (each rule's `expr`).

metric_names(expr) -> set of the metric names an expression selects, and equality_matchers(expr)
-> [(metric, label, value)] for its `name{label="value"}` selectors, and grouping_labels(expr) ->
the labels named in its by/without/on/ignoring/group_left/group_right clauses. A small reader of
PromQL's lexical structure, not a full parser: strings, label matchers and ranges are taken out
first, so what is left of an identifier not followed by "(" and not a keyword is a metric name.
self_test() holds it to known answers (a reader that found nothing would pass every check).
"""

import glob
import json
import os
import re

import yaml

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "offset", "bool", "inf", "nan", "atan2", "start", "end"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^{}]*)\}')
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")')
_GROUPING = re.compile(r'\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)')
_IDENT = re.compile(r'(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?')

# Grafana's variables as a query would see them once expanded.
GRAFANA_VARS = [("$__rate_interval", "5m"), ("$__interval", "1m"), ("$__range", "1h")]


def expand_grafana(expr):
    for var, value in GRAFANA_VARS:
        expr = expr.replace(var, value)
    # $job, ${instance}: only inside label values here ("$job" -> ".*", every value).
    return re.sub(r'\$\{?[A-Za-z_][A-Za-z0-9_]*\}?', ".*", expr)


def _unquote(literal):
    return json.loads(literal) if literal.startswith('"') else literal[1:-1]


def equality_matchers(expr):
    out = []
    for m in _SELECTOR.finditer(expr):
        name = m.group(1)
        for label, op, value in _MATCHER.findall(m.group(2)):
            if label == "__name__" and op == "=":
                name = _unquote(value)
        if name is None or name in KEYWORDS:
            continue
        for label, op, value in _MATCHER.findall(m.group(2)):
            if op == "=" and label != "__name__":
                out.append((name, label, _unquote(value)))
    return out


def grouping_labels(expr):
    labels = set()
    for _, inside in _GROUPING.findall(_STRING.sub('""', expr)):
        labels.update(l.strip() for l in inside.split(",") if l.strip())
    return labels


def metric_names(expr):
    names = set()
    for m in _SELECTOR.finditer(expr):  # {__name__="x"}
        for label, op, value in _MATCHER.findall(m.group(2)):
            if label == "__name__":
                if op != "=":
                    raise ValueError("a regex on __name__ cannot be checked: %s" % expr)
                names.add(_unquote(value))
    rest = _STRING.sub('""', expr)
    rest = re.sub(r'\{[^{}]*\}', " ", rest)
    rest = re.sub(r'\[[^\[\]]*\]', " ", rest)
    rest = _GROUPING.sub(" ", rest)
    for m in _IDENT.finditer(rest):
        ident, call = m.group(1), m.group(2)
        if call or ident.lower() in KEYWORDS:
            continue
        names.add(ident)
    return names


def queries(source_dir):
    out = []
    for path in sorted(glob.glob(os.path.join(source_dir, "deploy", "grafana", "*.json"))):
        rel = os.path.relpath(path, source_dir)
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)

        def walk(panels):
            for p in panels:
                for t in p.get("targets", []):
                    if "expr" in t:
                        out.append(("%s: panel %r %s" % (rel, p.get("title"), t.get("refId")),
                                    expand_grafana(t["expr"])))
                walk(p.get("panels", []))

        walk(dash.get("panels", []))
        for v in dash.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r'\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*', q)
            if not m:
                raise ValueError("%s: variable %s: only label_values(selector, label) is read: %r"
                                 % (rel, v.get("name"), q))
            out.append(("%s: variable %s" % (rel, v["name"]), expand_grafana(m.group(1))))
    for path in sorted(glob.glob(os.path.join(source_dir, "deploy", "prometheus", "*-alerts.yml"))):
        rel = os.path.relpath(path, source_dir)
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for group in doc["groups"]:
            for rule in group["rules"]:
                what = rule.get("alert") or rule.get("record")
                out.append(("%s: %s" % (rel, what), rule["expr"]))
    return out


def self_test():
    cases = {
        'histogram_quantile(0.99, sum by (job, instance, le) (rate(relay_latency_seconds_bucket[5m]))) > 0.005':
            {"relay_latency_seconds_bucket"},
        'process_max_fds > 0 and process_open_fds / process_max_fds > 0.9': {"process_max_fds", "process_open_fds"},
        'sum by (reason) (rate(relay_disconnections_total{job=~".*",reason="slow_consumer"}[5m]))':
            {"relay_disconnections_total"},
        'time() - process_start_time_seconds{instance=~".*"}': {"process_start_time_seconds"},
        'count by (version) (relay_build_info)': {"relay_build_info"},
        'a_total offset 5m + on (instance) group_left (version) b_info * 1e3': {"a_total", "b_info"},
        '{__name__="relay_x", job="y"} or up{job="atmosphere-relay"} == bool 0': {"relay_x", "up"},
    }
    for expr, want in cases.items():
        got = metric_names(expr)
        assert got == want, "metric_names(%r) = %r, want %r" % (expr, got, want)
    got = equality_matchers('rate(relay_errors_total{job=~"$job",code="cluster_unavailable"}[5m])')
    assert got == [("relay_errors_total", "code", "cluster_unavailable")], got
    got = grouping_labels('sum by (le, instance) (x) / on(job) y')
    assert got == {"le", "instance", "job"}, got
    assert expand_grafana('rate(x{job=~"$job"}[$__rate_interval])') == 'rate(x{job=~".*"}[5m])'
