#!/usr/bin/python3
"""Runs print_sample_exposition (argv[1]) and reads its output back with
prometheus_client's own parser (Debian python3-prometheus-client): families,
types, help, labels and values must come back as written."""
import math
import subprocess
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit("metrics_exposition_parses: needs python3-prometheus-client "
             "(scripts/install-deps.sh --test)")

RELAY_BOUNDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
LLM_BOUNDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]


def samples(family):
    """{(sample name, frozenset(labels)): value}"""
    return {(s.name, frozenset(s.labels.items())): s.value for s in family.samples}


def check_histogram(family, labels, bounds, observations):
    got = samples(family)
    previous = 0
    for bound in bounds:
        key = (family.name + "_bucket", frozenset(dict(labels, le=le_text(got, family, labels, bound)).items()))
        expected = sum(1 for v in observations if v <= bound)
        assert got[key] == expected, (bound, got[key], expected)
        assert got[key] >= previous
        previous = got[key]
    inf = got[(family.name + "_bucket", frozenset(dict(labels, le="+Inf").items()))]
    assert inf == len(observations)
    assert got[(family.name + "_count", frozenset(labels.items()))] == len(observations)
    assert math.isclose(got[(family.name + "_sum", frozenset(labels.items()))], sum(observations))
    n_buckets = sum(1 for s in family.samples if s.name.endswith("_bucket") and
                    all(s.labels.get(k) == v for k, v in labels.items()))
    assert n_buckets == len(bounds) + 1, n_buckets


def le_text(got, family, labels, bound):
    """The le label written for `bound`: whatever text parses back to it."""
    for name, label_set in got:
        d = dict(label_set)
        if name == family.name + "_bucket" and d.get("le") not in (None, "+Inf") and \
                float(d["le"]) == bound and all(d.get(k) == v for k, v in labels.items()):
            return d["le"]
    raise AssertionError("no bucket with le == %r" % bound)


def main():
    run = subprocess.run([sys.argv[1]], stdout=subprocess.PIPE, timeout=30)
    assert run.returncode == 0, "print_sample_exposition exited %d" % run.returncode
    text = run.stdout.decode("utf-8")
    families = list(text_string_to_metric_families(text))
    names = [f.name for f in families]
    # client_python drops a counter's _total from the family name.
    assert names == [
        "relay_connections_open", "relay_disconnections", "relay_messages_relayed",
        "relay_test_special_values", "relay_latency_seconds", "relay_llm_duration_seconds",
        "process_cpu_seconds", "process_open_fds", "process_max_fds",
        "process_virtual_memory_bytes", "process_resident_memory_bytes",
        "process_start_time_seconds",
    ], names
    by_name = {f.name: f for f in families}
    types = {f.name: f.type for f in families}
    assert types == {
        "relay_connections_open": "gauge", "relay_disconnections": "counter",
        "relay_messages_relayed": "counter", "relay_test_special_values": "gauge",
        "relay_latency_seconds": "histogram", "relay_llm_duration_seconds": "histogram",
        "process_cpu_seconds": "counter", "process_open_fds": "gauge", "process_max_fds": "gauge",
        "process_virtual_memory_bytes": "gauge", "process_resident_memory_bytes": "gauge",
        "process_start_time_seconds": "gauge",
    }, types

    assert samples(by_name["relay_connections_open"]) == {("relay_connections_open", frozenset()): 3}

    disc = by_name["relay_disconnections"]
    assert disc.documentation == "Closed connections by reason.\nSee docs\\close-reasons.md.", \
        repr(disc.documentation)
    assert samples(disc) == {
        ("relay_disconnections_total", frozenset({("reason", "client_closed")})): 12,
        ("relay_disconnections_total", frozenset({("reason", "slow_consumer")})): float(2**64 - 1),
        ("relay_disconnections_total", frozenset({("reason", 'we"ird\\va\nlue')})): 0.5,
    }, samples(disc)

    assert samples(by_name["relay_messages_relayed"]) == {
        ("relay_messages_relayed_total",
         frozenset({("type", "broadcast"), ("mesh_kind", "h\u00e9")})): 7,
    }

    special = {dict(s.labels)["v"]: s.value for s in by_name["relay_test_special_values"].samples}
    assert math.isnan(special["nan"]), special
    assert special["inf"] == math.inf and special["ninf"] == -math.inf, special
    assert special["negative"] == -2.5 and special["small"] == 1.5e-7, special

    check_histogram(by_name["relay_latency_seconds"], {}, RELAY_BOUNDS,
                    [0.00002, 0.00005, 0.0003, 0.002, 0.002, 0.7, 42.0])
    llm = by_name["relay_llm_duration_seconds"]
    check_histogram(llm, {"outcome": "ok"}, LLM_BOUNDS, [1.5, 0.2])
    check_histogram(llm, {"outcome": "timeout"}, LLM_BOUNDS, [300])

    def value(name):
        (sample,) = by_name[name].samples
        return sample.value
    assert value("process_resident_memory_bytes") > 0
    assert value("process_open_fds") >= 1
    assert value("process_cpu_seconds") >= 0
    assert value("process_start_time_seconds") > 1.6e9
    print("metrics_exposition_parses: %d families, %d samples OK"
          % (len(families), sum(len(f.samples) for f in families)))


if __name__ == "__main__":
    main()
