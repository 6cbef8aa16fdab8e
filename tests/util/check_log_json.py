#!/usr/bin/python3
"""Runs print_sample_logs (argv[1]) and checks every stderr line is one JSON
object that Python's json module reads back to the values logged."""
import json
import math
import re
import subprocess
import sys

EXPECTED_SAMPLES = {
    "plain": "family",
    "quote_backslash": 'a"b\\c/d',
    "controls": "\x00\x01\x1f\x7f\n\r\t\b\f",
    "invalid_byte": "x\ufffd",
    "truncated": "ab\ufffd\ufffd",
    "overlong": "\ufffd\ufffd",
    "surrogate": "\ufffd\ufffd\ufffd",
    "too_large": "\ufffd\ufffd\ufffd\ufffd",
    "emoji": "\U0001F600",
    "accents": "h\u00e9llo",
    "separators": "\u2028\u2029",
    "bidi": "\u202e",
    "long": "z" * 10000,
}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def main():
    run = subprocess.run([sys.argv[1]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert run.returncode == 0, "print_sample_logs exited %d" % run.returncode
    assert run.stderr.endswith(b"\n"), "last line is not terminated"
    lines = run.stderr.split(b"\n")[:-1]
    objects = []
    for n, raw in enumerate(lines, 1):
        # Strict: the bytes must be UTF-8, and JSON must not need repairs.
        text = raw.decode("utf-8")
        obj = json.loads(text)
        assert isinstance(obj, dict), "line %d is not an object" % n
        assert list(obj)[:2] == ["ts", "level"], "line %d starts %r" % (n, list(obj)[:2])
        assert TS.match(obj["ts"]), obj["ts"]
        objects.append(obj)

    samples = {o["case"]: o["value"] for o in objects if o.get("event") == "sample"}
    assert samples == EXPECTED_SAMPLES, {k: v for k, v in samples.items() if EXPECTED_SAMPLES.get(k) != v}
    for o in objects:
        if o.get("event") == "sample":
            assert o["level"] == "info"

    numbers = next(o for o in objects if o.get("event") == "numbers")
    assert numbers["level"] == "warn"
    assert numbers["int"] == -5 and type(numbers["int"]) is int
    assert numbers["uint"] == 2**64 - 1 and type(numbers["uint"]) is int
    assert numbers["double"] == 0.1
    assert numbers["nan"] == "NaN" and numbers["inf"] == "+Inf"
    assert math.isclose(numbers["seconds"], 0.0015)
    assert numbers["bool"] is True

    evil = next(o for o in objects if o.get("event") == 'ev"il\n')
    assert evil["level"] == "debug" and evil['k"ey'] == "v"

    free = [o for o in objects if "msg" in o]
    assert [(o["level"], o["msg"]) for o in free] == [
        ("trace", 'free text\nwith "quotes" and \ufffd'),
        ("error", "error line"),
    ], free
    assert len(objects) == len(EXPECTED_SAMPLES) + 4, len(objects)
    print("log_json_lines_parse: %d JSON lines OK" % len(objects))


if __name__ == "__main__":
    main()
