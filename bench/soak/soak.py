#!/usr/bin/python3
"""Soak test for the relay: connect/register/message/disconnect churn from many clients.

Not part of CI. Run with Debian's /usr/bin/python3 and python3-websockets (asyncio API):

    /usr/bin/python3 bench/soak/soak.py --relay-bin build/bin/relay --duration 600

Starts the relay itself on 127.0.0.1 (--port 0 --grpc-port 0) unless --url is given. Each of
--clients workers loops over sessions: two connections (A, and B with capability "llm") join a
random mesh, register, exchange verified traffic (broadcast, direct, ping, llm_request answered by
whichever llm peer the relay picks, malformed input), sometimes vanish abruptly (TCP closed with no
close frame), then disconnect. Every --sample seconds a line shows the relay's RSS and open fds,
the load rates and /health. At the end: totals, the flatness verdict, a post-load check (/health 0
connections, fds back near the idle baseline) and SIGTERM -> exit 0. See bench/soak/README.md.

Exit code: 0 when everything passed, 1 otherwise (FLAT=NO, a missed delivery, an unexpected error,
the post-load check, or the relay's exit code), 2 on usage / start-up errors.
"""

import argparse
import asyncio
import collections
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

LISTEN_RE = re.compile(r"^relay: listening (ws|wss|grpc) on (\S+):(\d+)\s*$")

RSS_TOLERANCE = 0.10  # last sample within +10% of the first post-warm-up one
FD_TOLERANCE = 20     # last sample within +20 fds of the first post-warm-up one
IDLE_FD_TOLERANCE = 20  # after the load: within +20 of the idle baseline


# ---------------------------------------------------------------------------
# Counters
# ---------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.c = collections.Counter()        # operations and events
        self.misses = collections.Counter()   # a verified delivery did not arrive in time
        self.wrong = collections.Counter()    # something arrived, but not what the protocol says
        self.errors = collections.Counter()   # error codes received, by code
        self.exceptions = collections.Counter()  # sessions that ended on an exception, by kind
        self.examples = []                    # first few problems, for the report

    def note(self, what):
        if len(self.examples) < 20:
            self.examples.append("%.1fs %s" % (time.monotonic() - START, what))

    def miss(self, kind, detail=""):
        self.misses[kind] += 1
        self.note("MISS %s %s" % (kind, detail))

    def bad(self, kind, detail=""):
        self.wrong[kind] += 1
        self.note("WRONG %s %s" % (kind, detail))


STATS = Stats()
START = time.monotonic()


# ---------------------------------------------------------------------------
# The relay process and /proc
# ---------------------------------------------------------------------------

class Relay:
    def __init__(self, binary, extra_args, start_timeout=15.0):
        self.args = [binary, "--host", "127.0.0.1", "--port", "0", "--grpc-port", "0", *extra_args]
        self.stderr_file = tempfile.NamedTemporaryFile(prefix="soak-relay-", suffix=".stderr",
                                                       delete=False)
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.stderr_file,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.stdout_lines = []
        self.host = self.port = None
        ready = threading.Event()

        def read():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stdout_lines.append(line)
                m = LISTEN_RE.match(line)
                if m and m.group(1) == "ws":
                    self.host, self.port = m.group(2), int(m.group(3))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(start_timeout) or self.port is None:
            self.kill()
            raise SystemExit("relay did not print 'relay: listening ws on ...' within %.0f s; "
                             "stdout=%r stderr in %s" % (start_timeout, self.stdout_lines,
                                                         self.stderr_file.name))

    def stop(self, timeout=15.0):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()


def proc_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def http_json(base, path, timeout=5.0):
    with urllib.request.urlopen(base + path, timeout=timeout) as resp:
        return json.loads(resp.read())


# ---------------------------------------------------------------------------
# One client connection with a reader task that routes what arrives
# ---------------------------------------------------------------------------

class Conn:
    def __init__(self, ws, node_id, llm):
        self.ws = ws
        self.node_id = node_id
        self.llm = llm
        self.answer_llm = True      # reply to llm_request while the session is live
        self.peers = set()          # node ids known to be in the mesh (others)
        self.waiting_tags = {}      # payload tag -> future (message expected here)
        self.waiting_llm = {}       # request_id -> future (llm_response or error for it)
        self.waiting_left = {}      # node_id -> future (peer_left expected)
        self.waiting_error = {}     # error code -> future (error without request_id expected)
        self.joined = asyncio.get_running_loop().create_future()
        self.peers_msg = asyncio.get_running_loop().create_future()
        self.pong = None
        self.reader = asyncio.ensure_future(self._read())

    async def send(self, obj):
        await self.ws.send(json.dumps(obj, separators=(",", ":")))
        STATS.c["msgs_sent"] += 1

    async def _read(self):
        try:
            async for data in self.ws:
                STATS.c["msgs_recv"] += 1
                try:
                    msg = json.loads(data)
                except ValueError:
                    STATS.bad("server_sent_bad_json", repr(data)[:200])
                    continue
                if not isinstance(msg, dict):
                    STATS.bad("server_sent_non_object", repr(data)[:200])
                    continue
                await self._route(msg)
        except websockets.ConnectionClosed:
            pass
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - counted, the soak goes on
            STATS.exceptions["reader:" + type(e).__name__] += 1

    async def _route(self, msg):
        t = msg.get("type")
        if t == "message":
            payload = msg.get("payload")
            tag = payload.get("tag") if isinstance(payload, dict) else None
            fut = self.waiting_tags.pop(tag, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif t == "llm_request":
            STATS.c["llm_requests_recv"] += 1
            if not self.llm:
                STATS.bad("llm_request_to_non_llm_peer", json.dumps(msg)[:200])
            if self.answer_llm and "from" in msg:
                try:
                    await self.send({"type": "llm_response", "target": msg["from"],
                                     "request_id": msg.get("request_id"),
                                     "response": "echo:%s" % msg.get("prompt")})
                    STATS.c["llm_responses_sent"] += 1
                except websockets.ConnectionClosed:
                    pass
        elif t == "llm_response":
            fut = self.waiting_llm.pop(msg.get("request_id"), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            else:
                STATS.c["llm_response_unsolicited"] += 1
        elif t == "pong":
            if self.pong is not None and not self.pong.done():
                self.pong.set_result(msg)
            else:
                STATS.bad("unexpected_pong")
        elif t == "error":
            code = msg.get("code")
            STATS.errors[code] += 1
            rid = msg.get("request_id")
            if rid is not None and rid in self.waiting_llm:
                fut = self.waiting_llm.pop(rid)
                if not fut.done():
                    fut.set_result(msg)
                return
            fut = self.waiting_error.pop(code, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
                return
            # unknown_target is an expected race: a direct / llm_response to a peer of another
            # worker that has just left. Everything else is unexpected.
            if code != "unknown_target":
                STATS.bad("unexpected_error_" + str(code), json.dumps(msg)[:200])
        elif t == "joined":
            if not self.joined.done():
                self.joined.set_result(msg)
        elif t == "peers":
            for p in msg.get("peers", []):
                self.peers.add(p.get("node_id"))
            if not self.peers_msg.done():
                self.peers_msg.set_result(msg)
        elif t == "peer_joined":
            self.peers.add(msg.get("node_id"))
        elif t == "peer_left":
            nid = msg.get("node_id")
            self.peers.discard(nid)
            fut = self.waiting_left.pop(nid, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif t == "peer_updated":
            pass
        else:
            STATS.bad("unknown_server_type", json.dumps(msg)[:200])

    def expect(self, table, key):
        fut = asyncio.get_running_loop().create_future()
        table[key] = fut
        return fut

    def abort(self):
        """Vanish: close the TCP socket without a close frame."""
        self.answer_llm = False
        transport = getattr(self.ws, "transport", None)
        if transport is not None:
            transport.abort()

    async def close(self, timeout):
        self.answer_llm = False
        try:
            await asyncio.wait_for(self.ws.close(), timeout)
        except Exception:  # noqa: BLE001
            self.abort()

    def finish(self):
        """Ends the reader; a connection still open here is aborted (never leaked)."""
        self.reader.cancel()
        if not self.ws.closed:
            self.abort()
        for table in (self.waiting_tags, self.waiting_llm, self.waiting_left, self.waiting_error):
            for fut in table.values():
                if not fut.done():
                    fut.cancel()
            table.clear()


# ---------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------

class Load:
    def __init__(self, args, ws_base):
        self.args = args
        self.ws_base = ws_base
        self.stop = False
        self.run_id = "%06x" % random.getrandbits(24)
        self.meshes = ["soak-%s-%03d" % (self.run_id, i) for i in range(args.meshes)]
        self.open_conns = set()

    async def connect(self, mesh, node_id, llm):
        url = "%s/relay/%s" % (self.ws_base, urllib.parse.quote(mesh, safe=""))
        ws = await websockets.connect(url, ping_interval=None, open_timeout=self.args.timeout,
                                      close_timeout=5, max_queue=None, max_size=None)
        STATS.c["connects"] += 1
        conn = Conn(ws, node_id, llm)
        self.open_conns.add(conn)
        return conn

    async def wait(self, fut, kind, detail=""):
        try:
            return await asyncio.wait_for(fut, self.args.timeout)
        except asyncio.TimeoutError:
            STATS.miss(kind, detail)
            return None

    async def register(self, conn):
        await conn.send({"type": "register", "node_id": conn.node_id,
                         "capabilities": ["llm"] if conn.llm else []})
        ok = await self.wait(conn.joined, "joined", conn.node_id)
        ok = ok and await self.wait(conn.peers_msg, "peers", conn.node_id)
        if ok:
            STATS.c["registers"] += 1
        return bool(ok)

    async def think(self):
        if self.args.think_ms > 0:
            await asyncio.sleep(random.uniform(0, self.args.think_ms) / 1000.0)

    # ---- operations; each verifies what it can ----
    async def op_broadcast(self, src, dst):
        tag = "b%x" % random.getrandbits(48)
        fut = dst.expect(dst.waiting_tags, tag)
        await src.send({"type": "broadcast", "payload": {"tag": tag, "n": random.randint(0, 1 << 30)}})
        STATS.c["broadcasts"] += 1
        msg = await self.wait(fut, "broadcast", tag)
        if msg is not None and msg.get("from") != src.node_id:
            STATS.bad("broadcast_from", json.dumps(msg)[:200])

    async def op_direct(self, src, dst):
        tag = "d%x" % random.getrandbits(48)
        fut = dst.expect(dst.waiting_tags, tag)
        await src.send({"type": "direct", "target": dst.node_id, "payload": {"tag": tag, "text": "x" * random.randint(0, 512)}})
        STATS.c["directs"] += 1
        msg = await self.wait(fut, "direct", tag)
        if msg is not None and msg.get("from") != src.node_id:
            STATS.bad("direct_from", json.dumps(msg)[:200])

    async def op_direct_other(self, src, partner):
        """To a peer of another worker: it may leave any moment, so only unknown_target or
        nothing comes back; not verified at the receiver."""
        others = list(src.peers - {partner.node_id, src.node_id})
        if not others:
            return
        await src.send({"type": "direct", "target": random.choice(others),
                        "payload": {"tag": "o%x" % random.getrandbits(48)}})
        STATS.c["directs_other"] += 1

    async def op_ping(self, conn):
        conn.pong = asyncio.get_running_loop().create_future()
        await conn.send({"type": "ping"})
        STATS.c["pings"] += 1
        await self.wait(conn.pong, "pong", conn.node_id)

    async def op_llm(self, requester):
        """Some llm peer of the mesh (our own B at least) answers; or, if the one holding it
        leaves first, the relay sends llm_peer_left. Anything else, or nothing, is a failure."""
        rid = random.choice(["r%x" % random.getrandbits(48), random.getrandbits(40)])
        fut = requester.expect(requester.waiting_llm, rid)
        prompt = "p%d" % random.randint(0, 1 << 20)
        await requester.send({"type": "llm_request", "request_id": rid, "prompt": prompt})
        STATS.c["llm_requests"] += 1
        msg = await self.wait(fut, "llm_response", str(rid))
        if msg is None:
            return
        if msg.get("type") == "llm_response":
            if msg.get("response") != "echo:%s" % prompt or type(msg.get("request_id")) is not type(rid):
                STATS.bad("llm_response_content", json.dumps(msg)[:200])
            else:
                STATS.c["llm_answered"] += 1
        elif msg.get("type") == "error" and msg.get("code") == "llm_peer_left":
            STATS.c["llm_peer_left"] += 1
        else:
            STATS.bad("llm_outcome", json.dumps(msg)[:200])

    async def op_bad_input(self, conn):
        kind = random.randrange(4)
        if kind == 0:
            data, code = '{"type":"broadcast","payload":', "bad_json"      # truncated JSON
        elif kind == 1:
            data, code = b"\xff\xfe{not utf-8", "bad_json"                # binary frame, bad UTF-8
        elif kind == 2:
            data, code = '{"type":"no_such_type"}', "unknown_type"
        else:
            data, code = '{"type":"direct","payload":1}', "bad_message"    # target missing
        fut = conn.expect(conn.waiting_error, code)
        await conn.ws.send(data)
        STATS.c["msgs_sent"] += 1
        STATS.c["bad_inputs"] += 1
        await self.wait(fut, "error_" + code, conn.node_id)

    async def unregistered_probe(self, mesh):
        """A connection that never registers: sends a message (not_registered) or just vanishes."""
        conn = await self.connect(mesh, "unregistered", False)
        try:
            if random.random() < 0.5:
                fut = conn.expect(conn.waiting_error, "not_registered")
                await conn.send({"type": "broadcast", "payload": {"tag": "u"}})
                await self.wait(fut, "error_not_registered")
            if random.random() < 0.5:
                conn.abort()
                STATS.c["aborts"] += 1
            else:
                await conn.close(self.args.timeout)
                STATS.c["closes"] += 1
        finally:
            conn.finish()
            self.open_conns.discard(conn)

    # ---- one session ----
    async def session(self, wid):
        mesh = random.choice(self.meshes)
        if random.random() < 0.1:
            await self.unregistered_probe(mesh)
        stem = "w%d-%x" % (wid, random.getrandbits(32))
        a = b = None
        try:
            a = await self.connect(mesh, stem + "-a", llm=False)
            b = await self.connect(mesh, stem + "-b", llm=True)
            if not await self.register(a) or not await self.register(b):
                return
            for _ in range(random.randint(3, 12)):
                if self.stop:
                    break
                await self.think()
                r = random.random()
                if r < 0.20:
                    src, dst = random.choice([(a, b), (b, a)])
                    await self.op_broadcast(src, dst)
                elif r < 0.45:
                    src, dst = random.choice([(a, b), (b, a)])
                    await self.op_direct(src, dst)
                elif r < 0.55:
                    await self.op_direct_other(random.choice([a, b]), b)
                elif r < 0.70:
                    await self.op_ping(random.choice([a, b]))
                elif r < 0.90:
                    await self.op_llm(a)
                else:
                    await self.op_bad_input(random.choice([a, b]))
            # Leave: A first (abruptly or not), B must see peer_left for it, then B leaves.
            left = b.expect(b.waiting_left, a.node_id)
            r = random.random()
            if r < self.args.abort_ratio:
                a.abort()
                STATS.c["aborts"] += 1
            else:
                await a.close(self.args.timeout)
                STATS.c["closes"] += 1
            await self.wait(left, "peer_left", a.node_id)
            if random.random() < self.args.abort_ratio:
                b.abort()
                STATS.c["aborts"] += 1
            else:
                await b.close(self.args.timeout)
                STATS.c["closes"] += 1
            STATS.c["sessions"] += 1
        finally:
            for conn in (a, b):
                if conn is not None:
                    conn.finish()
                    self.open_conns.discard(conn)

    async def worker(self, wid):
        # Spread the start over the first seconds so the relay is not hit by one burst.
        await asyncio.sleep(random.uniform(0, min(5.0, self.args.duration / 10)))
        while not self.stop:
            try:
                await self.session(wid)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as e:
                STATS.exceptions[type(e).__name__] += 1
                STATS.note("session exception %s: %s" % (type(e).__name__, str(e)[:150]))
                await asyncio.sleep(1.0)  # back off: the relay may be refusing us

    def abort_all(self):
        for conn in list(self.open_conns):
            conn.abort()
            conn.finish()
        self.open_conns.clear()


# ---------------------------------------------------------------------------
# Sampling and the run
# ---------------------------------------------------------------------------

def fmt(v, width, spec="d"):
    return ("{:>%d%s}" % (width, spec)).format(v) if v is not None else "-".rjust(width)


HEADER = "%7s %9s %5s %8s %8s %8s %6s %6s %6s %6s %6s" % (
    "elapsed", "rss_kib", "fds", "conn/s", "msg/s", "recv/s", "meshes", "conns", "socks", "misses", "wrong")


async def sample_row(pid, http_base, elapsed, prev, now_counts):
    rss = proc_rss_kib(pid) if pid else None
    fds = proc_fds(pid) if pid else None
    try:
        stats = await asyncio.to_thread(http_json, http_base, "/stats")
        health = await asyncio.to_thread(http_json, http_base, "/health")
    except Exception as e:  # noqa: BLE001
        STATS.note("sample: /health or /stats failed: %s" % e)
        stats, health = {}, {}
    dt = max(1e-6, now_counts["t"] - prev["t"]) if prev else None
    rate = (lambda k: (now_counts[k] - prev[k]) / dt) if prev else (lambda k: None)
    row = {"elapsed": elapsed, "rss": rss, "fds": fds,
           "conn_s": rate("connects"), "msg_s": rate("msgs_sent"), "recv_s": rate("msgs_recv"),
           "meshes": health.get("meshes"), "conns": health.get("connections"),
           "socks": stats.get("open_sockets"),
           "misses": sum(STATS.misses.values()), "wrong": sum(STATS.wrong.values())}
    line = "%s %s %s %s %s %s %s %s %s %s %s" % (
        fmt(row["elapsed"], 6, ".0f") + "s", fmt(rss, 9), fmt(fds, 5),
        fmt(row["conn_s"], 8, ".1f"), fmt(row["msg_s"], 8, ".1f"), fmt(row["recv_s"], 8, ".1f"),
        fmt(row["meshes"], 6), fmt(row["conns"], 6), fmt(row["socks"], 6),
        fmt(row["misses"], 6), fmt(row["wrong"], 6))
    print(line, flush=True)
    row["line"] = line
    return row


def counts_now():
    return {"t": time.monotonic(), "connects": STATS.c["connects"],
            "msgs_sent": STATS.c["msgs_sent"], "msgs_recv": STATS.c["msgs_recv"]}


async def run(args):
    global START
    relay = None
    pid = args.pid
    if args.url:
        u = urllib.parse.urlparse(args.url)
        ws_base = "%s://%s" % (u.scheme, u.netloc)
        http_base = "%s://%s" % ("https" if u.scheme == "wss" else "http", u.netloc)
    else:
        extra = ["--max-connections-per-ip", "0", *args.relay_arg]
        relay = Relay(args.relay_bin, extra)
        pid = relay.pid
        ws_base = "ws://%s:%d" % (relay.host, relay.port)
        http_base = "http://%s:%d" % (relay.host, relay.port)
    print("soak: relay %s pid=%s at %s; %d clients (2 connections each), %d meshes, %d s, sample every %d s"
          % (" ".join(relay.args) if relay else args.url, pid, ws_base, args.clients, args.meshes,
             args.duration, args.sample), flush=True)

    rc = 0
    try:
        await asyncio.sleep(1.0)
        idle_rss, idle_fds = (proc_rss_kib(pid), proc_fds(pid)) if pid else (None, None)
        print("soak: idle baseline rss_kib=%s fds=%s" % (idle_rss, idle_fds), flush=True)
        print(HEADER, flush=True)

        load = Load(args, ws_base)
        START = time.monotonic()
        tasks = [asyncio.ensure_future(load.worker(i)) for i in range(args.clients)]
        samples = []
        prev = counts_now()
        next_at = START + args.sample
        end_at = START + args.duration
        while True:
            await asyncio.sleep(max(0.0, min(next_at, end_at) - time.monotonic()))
            now = time.monotonic()
            if now >= next_at - 0.01:
                cur = counts_now()
                samples.append(await sample_row(pid, http_base, now - START, prev, cur))
                prev = cur
                next_at += args.sample
            if now >= end_at - 0.01:
                break

        # Stop the load: workers finish their session (every wait is bounded), then cancel.
        load.stop = True
        stop_started = time.monotonic()
        done, pending = await asyncio.wait(tasks, timeout=args.timeout * 4 + 10)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        load.abort_all()
        load_seconds = time.monotonic() - START
        print("soak: load stopped (%d workers still busy after %.0f s were cancelled)"
              % (len(pending), time.monotonic() - stop_started), flush=True)

        # ---- totals ----
        c = STATS.c
        print("\n== totals over %.0f s ==" % load_seconds)
        print("sessions=%d connects=%d registers=%d closes=%d aborts(no close frame)=%d" % (
            c["sessions"], c["connects"], c["registers"], c["closes"], c["aborts"]))
        print("msgs_sent=%d msgs_recv=%d broadcasts=%d directs=%d directs_to_other_workers=%d pings=%d "
              "bad_inputs=%d" % (c["msgs_sent"], c["msgs_recv"], c["broadcasts"], c["directs"],
                                 c["directs_other"], c["pings"], c["bad_inputs"]))
        print("llm_requests=%d answered=%d llm_peer_left=%d (requests served by llm peers=%d, "
              "responses sent=%d, unsolicited responses=%d)" % (
                  c["llm_requests"], c["llm_answered"], c["llm_peer_left"], c["llm_requests_recv"],
                  c["llm_responses_sent"], c["llm_response_unsolicited"]))
        print("avg rates: %.1f connections/s, %.1f messages sent/s, %.1f received/s" % (
            c["connects"] / load_seconds, c["msgs_sent"] / load_seconds, c["msgs_recv"] / load_seconds))
        print("error codes received: %s" % (dict(STATS.errors) or "none"))
        for label, counter in (("missed deliveries", STATS.misses), ("wrong/unexpected", STATS.wrong),
                               ("client-side exceptions", STATS.exceptions)):
            print("%s: %d%s" % (label, sum(counter.values()), " %s" % dict(counter) if counter else ""))
        for ex in STATS.examples:
            print("  e.g. " + ex)

        # ---- flatness ----
        failures = []
        print("\n== verdict ==")
        if pid and len(samples) >= 2:
            ref, last = samples[1], samples[-1]
            rss_ok = last["rss"] <= ref["rss"] * (1 + RSS_TOLERANCE)
            fds_ok = last["fds"] <= ref["fds"] + FD_TOLERANCE
            post = samples[1:]
            print("RSS  first post-warm-up %d KiB (t=%.0fs), last %d KiB (%+.1f%%), min %d, max %d: %s" % (
                ref["rss"], ref["elapsed"], last["rss"], 100.0 * (last["rss"] - ref["rss"]) / ref["rss"],
                min(s["rss"] for s in post), max(s["rss"] for s in post), "flat" if rss_ok else "GREW"))
            print("fds  first post-warm-up %d (t=%.0fs), last %d (%+d), min %d, max %d: %s" % (
                ref["fds"], ref["elapsed"], last["fds"], last["fds"] - ref["fds"],
                min(s["fds"] for s in post), max(s["fds"] for s in post), "flat" if fds_ok else "GREW"))
            flat = rss_ok and fds_ok
            print("FLAT=%s" % ("YES" if flat else "NO"))
            if not flat:
                failures.append("FLAT=NO")
        else:
            print("FLAT=UNKNOWN (need --pid of the relay and at least 2 samples)")
            if pid:
                failures.append("too few samples")
        if STATS.misses:
            failures.append("%d missed deliveries" % sum(STATS.misses.values()))
        if STATS.wrong:
            failures.append("%d wrong/unexpected messages" % sum(STATS.wrong.values()))
        if STATS.exceptions:
            failures.append("%d client-side exceptions" % sum(STATS.exceptions.values()))

        # ---- after the load: everything released? ----
        await asyncio.sleep(args.settle)
        deadline = time.monotonic() + 15.0
        while True:
            try:
                health = await asyncio.to_thread(http_json, http_base, "/health")
                stats = await asyncio.to_thread(http_json, http_base, "/stats")
            except Exception as e:  # noqa: BLE001
                health, stats = {"error": str(e)}, {}
            fds = proc_fds(pid) if pid else None
            clean = (health.get("connections") == 0 and health.get("meshes") == 0
                     and stats.get("open_sockets") == 0
                     and (fds is None or idle_fds is None or fds <= idle_fds + IDLE_FD_TOLERANCE))
            if clean or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.5)
        rss = proc_rss_kib(pid) if pid else None
        print("after load (+%.0f s): /health %s, open_sockets=%s, fds=%s (idle baseline %s), rss_kib=%s "
              "(idle baseline %s): %s" % (args.settle, json.dumps(health), stats.get("open_sockets"), fds,
                                          idle_fds, rss, idle_rss, "released" if clean else "NOT RELEASED"))
        if not clean:
            failures.append("not released after the load")
        if stats:
            print("relay /stats: total_connections=%s total_messages_received=%s total_messages_relayed=%s "
                  "total_llm_requests=%s" % (stats.get("total_connections"), stats.get("total_messages_received"),
                                             stats.get("total_messages_relayed"), stats.get("total_llm_requests")))
            print("relay /stats errors: %s" % json.dumps({k: v for k, v in stats.get("errors", {}).items() if v}))
            print("relay /stats closes: %s" % json.dumps({k: v for k, v in stats.get("closes", {}).items() if v}))
            print("relay /stats refused: %s" % json.dumps(stats.get("refused", {})))

        if relay is not None:
            code = relay.stop()
            print("relay SIGTERM -> exit code %s" % code)
            relay = None
            if code != 0:
                failures.append("relay exit code %s" % code)

        print("RESULT=%s%s" % ("PASS" if not failures else "FAIL", "" if not failures else ": " + "; ".join(failures)),
              flush=True)
        rc = 0 if not failures else 1
    finally:
        if relay is not None:
            relay.kill()
    return rc


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--relay-bin", default=os.path.join(REPO, "build", "bin", "relay"),
                   help="relay binary to start (default: build/bin/relay)")
    p.add_argument("--relay-arg", action="append", default=[],
                   help="extra argument for the relay (repeatable), e.g. --relay-arg=--keepalive-seconds=5")
    p.add_argument("--url", help="attach to a running relay instead, e.g. ws://127.0.0.1:8765 "
                                 "(give --pid too for RSS/fds; it needs MAX_CONNECTIONS_PER_IP >= 2*clients+)")
    p.add_argument("--pid", type=int, help="PID of the relay given by --url, for RSS and fds")
    p.add_argument("--duration", type=int, default=600, help="seconds of load (default 600)")
    p.add_argument("--clients", type=int, default=200, help="concurrent workers, 2 connections each (default 200)")
    p.add_argument("--meshes", type=int, default=50, help="meshes the workers pick from (default 50)")
    p.add_argument("--sample", type=int, default=30, help="seconds between samples (default 30)")
    p.add_argument("--timeout", type=float, default=15.0,
                   help="seconds a verified delivery may take before it counts as missed (default 15)")
    p.add_argument("--think-ms", type=float, default=20.0,
                   help="random pause of up to this many ms between operations (default 20)")
    p.add_argument("--abort-ratio", type=float, default=0.2,
                   help="share of leaves that vanish without a close frame (default 0.2)")
    p.add_argument("--settle", type=float, default=5.0, help="seconds to wait after the load (default 5)")
    p.add_argument("--seed", type=int, help="random seed")
    args = p.parse_args()
    if args.url and not re.match(r"^wss?://[^/]+/?$", args.url):
        p.error("--url is ws://HOST:PORT (the /relay/{mesh} path is added)")
    if args.url and urllib.parse.urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        p.error("loopback only: --url must point to 127.0.0.1 / localhost")
    if not args.url and not os.access(args.relay_bin, os.X_OK):
        p.error("no relay binary at %s (build it, or give --relay-bin / --url)" % args.relay_bin)
    if min(args.duration, args.clients, args.meshes, args.sample) <= 0:
        p.error("--duration, --clients, --meshes and --sample must be positive")
    if args.seed is not None:
        random.seed(args.seed)
    # Each worker holds up to 3 sockets; raise the soft fd limit if needed.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.clients * 3 + 100
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
