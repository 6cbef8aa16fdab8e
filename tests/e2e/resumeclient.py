"""A resume-capable client (docs/protocol.md "Resume"), as a phone app would implement it.

It keeps what the protocol says a client must keep: the session id, the highest relay seq it
handled (`last_seq`), its own counter, and its frames the relay has not acknowledged yet. It can
lose its connection the two ways a phone does: abruptly (TCP gone, no close frame) or half-open
(the old socket stays up but nothing gets through it), and resume on a new connection.

What it received is checked as it arrives: every numbered frame must be the one after the last
(`gaps`, `duplicates` stay empty when the relay keeps its promise).
"""

import asyncio
import json

import websockets

from relayclient import DEFAULT_TIMEOUT


class ResumeClient:
    def __init__(self, relay, mesh, node_id, token=None, capabilities=(), ack_every=16):
        self.relay = relay
        self.mesh = mesh
        self.node_id = node_id
        self.token = token
        self.capabilities = list(capabilities)
        self.ack_every = ack_every
        self.ws = None
        self.session = None  # {"id", "window_seconds"}
        self.last_seq = 0  # highest relay seq handled
        self.acked = 0  # what we last acknowledged to the relay
        self.out_seq = 0  # our own counter
        self.unacked = {}  # our frames by seq, until the relay acknowledges them
        self.relay_acked = 0
        self.inbox = []  # numbered frames, in the order handled
        self.unnumbered = []  # frames outside the stream (acks excluded)
        self.gaps = []
        self.duplicates = []
        self.resumes = []  # each reconnect's first answer (resumed, or joined)
        self.dead = False  # between a cut and the resume: what we send goes nowhere
        self._reader = None
        self._arrived = asyncio.Event()

    # --- connection ----------------------------------------------------------

    async def _connect(self, relay=None):
        kwargs = {"ping_interval": None, "max_size": None, "max_queue": None,
                  "open_timeout": DEFAULT_TIMEOUT}
        target = relay or self.relay
        if getattr(target, "tls", False):
            kwargs["ssl"] = target.ssl_context
        return await websockets.connect(target.ws_url(self.mesh), **kwargs)

    def _register(self, resume):
        msg = {"type": "register", "node_id": self.node_id, "capabilities": self.capabilities,
               "resume": resume}
        if self.token is not None:
            msg["token"] = self.token
        return msg

    async def _first(self, ws, timeout=DEFAULT_TIMEOUT):
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        assert isinstance(msg, dict), msg
        return msg

    async def open(self):
        """Registers with "resume": true; returns the joined frame."""
        self.ws = await self._connect()
        await self.ws.send(json.dumps(self._register(True)))
        joined = await self._first(self.ws)
        assert joined.get("type") == "joined", joined
        assert "seq" not in joined, joined
        session = joined.get("session")
        assert isinstance(session, dict) and isinstance(session.get("id"), str), joined
        self.session = session
        self._start_reader()
        return joined

    def _start_reader(self):
        self._reader = asyncio.ensure_future(self._read(self.ws))

    async def _stop_reader(self):
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, websockets.ConnectionClosed):
                pass
            self._reader = None

    async def cut(self, how):
        """Loses the connection: "abort" (TCP reset, no close frame) or "half_open" (the socket
        stays open, but nothing is read from it or sent on it any more). Returns the old
        websocket (half_open: to watch the relay close it)."""
        await self._stop_reader()
        old = self.ws
        self.dead = True
        if how == "abort":
            old.transport.abort()
        elif how == "half_open":
            old.transport.pause_reading()
        else:
            raise ValueError(how)
        return old

    async def resume(self, relay=None):
        """Reconnects and asks to continue the session. Returns the relay's answer: resumed (our
        unacknowledged frames after its last_seq are then sent again), or joined (a fresh
        session: what was in flight is lost, and this client starts over)."""
        ws = await self._connect(relay)
        await ws.send(json.dumps(self._register(
            {"session": self.session["id"], "last_seq": self.last_seq})))
        answer = await self._first(ws)
        self.resumes.append(answer)
        self.ws = ws
        self.dead = False
        if answer.get("type") == "resumed":
            assert "seq" not in answer, answer
            handled = answer["last_seq"]
            self._forget_acked(handled)
            self.session = answer["session"]
            for seq in sorted(self.unacked):
                await ws.send(json.dumps(self.unacked[seq]))
        else:
            assert answer.get("type") == "joined", answer
            self.session = answer.get("session")
            self.last_seq = self.acked = self.out_seq = 0
            self.unacked.clear()
        self._start_reader()
        return answer

    async def close(self):
        await self._stop_reader()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 2)
            except Exception:
                pass

    # --- the stream ----------------------------------------------------------

    async def send(self, obj):
        """Numbers `obj` and keeps it until acknowledged; sends it unless the connection is
        dead (then it is sent again on resume, as a frame written into a dead socket is)."""
        self.out_seq += 1
        frame = dict(obj, seq=self.out_seq)
        self.unacked[self.out_seq] = frame
        if not self.dead:
            try:
                await self.ws.send(json.dumps(frame))
            except websockets.ConnectionClosed:
                pass
        return self.out_seq

    async def send_ack(self):
        if self.dead or self.last_seq == self.acked:
            return
        self.acked = self.last_seq
        try:
            await self.ws.send(json.dumps({"type": "ack", "seq": self.last_seq}))
        except websockets.ConnectionClosed:
            pass

    def _forget_acked(self, seq):
        self.relay_acked = max(self.relay_acked, seq)
        for s in [s for s in self.unacked if s <= seq]:
            del self.unacked[s]

    async def _read(self, ws):
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("type") == "ack":
                assert "seq" in msg and isinstance(msg["seq"], int), msg
                self._forget_acked(msg["seq"])
                continue
            seq = msg.get("seq")
            if seq is None:
                self.unnumbered.append(msg)
                continue
            if seq <= self.last_seq:
                self.duplicates.append(msg)
                continue
            if seq != self.last_seq + 1:
                self.gaps.append((self.last_seq, seq))
            self.last_seq = seq
            self.inbox.append(msg)
            self._arrived.set()
            if self.last_seq - self.acked >= self.ack_every:
                await self.send_ack()

    async def wait_for(self, predicate, timeout=DEFAULT_TIMEOUT, what="frames"):
        """Waits until predicate(inbox) is true."""
        loop = asyncio.get_event_loop()
        deadline = loop.time() + timeout
        while not predicate(self.inbox):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError("%s: no %s within %.1f s; last %r" % (
                    self.node_id, what, timeout, self.inbox[-3:]))
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def messages(self):
        """(from, payload) of every message frame handled, in order."""
        return [(m["from"], m["payload"]) for m in self.inbox if m.get("type") == "message"]

    def of_type(self, type_):
        return [m for m in self.inbox if m.get("type") == type_]
