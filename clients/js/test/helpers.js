// Test helpers: a fake clock and a scripted WebSocket for the unit tests, and the real relay
// binary (RELAY_BIN) on 127.0.0.1 port 0 for the tests against a relay.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A clock the test moves by hand: setTimeout/clearTimeout run only in advance(). */
export class FakeClock {
  constructor() {
    this.now = 0;
    this.nextId = 1;
    /** @type {Map<number, {at: number, fn: Function}>} */
    this.timers = new Map();
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.timers.set(id, { at: this.now + Math.max(0, ms), fn });
      return id;
    };
    this.clearTimeout = (id) => { this.timers.delete(id); };
  }

  /** Runs, in time order, every timer due within ms from now. */
  async advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const [id, t] of this.timers) {
        if (t.at <= end && (next === null || t.at < next[1].at || (t.at === next[1].at && id < next[0]))) next = [id, t];
      }
      if (next === null) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
      await flush();
    }
    this.now = end;
    await flush();
  }

  /** Delays of the timers pending now, sorted. */
  pendingDelays() {
    return [...this.timers.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
  }
}

/** Lets promise callbacks run. */
export async function flush() {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/**
 * A WebSocket double: each `new FakeWebSocket(url)` is recorded in FakeWebSocket.instances; the
 * test plays the relay through open(), deliver(), serverClose().
 */
export class FakeWebSocket {
  static instances = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.binaryType = 'blob';
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onerror = this.onclose = null;
    FakeWebSocket.instances.push(this);
  }

  static reset() {
    FakeWebSocket.instances = [];
  }

  static last() {
    return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
  }

  send(data) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(data));
  }

  close(code = 1005, reason = '') {
    if (this.readyState >= 2) return;
    this.closedWith = { code, reason };
    this.readyState = 2;
    queueMicrotask(() => this._closed(code, reason));
  }

  // ---- the relay's side ----
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }

  deliver(frame) {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }

  serverClose(code, reason = '') {
    this.readyState = 2;
    this._closed(code, reason);
  }

  fail() {
    this.onerror?.({});
    this.serverClose(1006, '');
  }

  _closed(code, reason) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }

  /** Answers the registration as the relay does: joined, then peers. */
  accept(peers = [], meshId = 'm') {
    this.deliver({ type: 'joined', mesh_id: meshId, node_count: peers.length + 1 });
    this.deliver({ type: 'peers', peers });
  }
}

// ---- the real relay ------------------------------------------------------------------------

const LISTEN_RE = /^relay: listening (ws|wss|grpc) on (\S+):(\d+)\s*$/;

/** True when the tests against a real relay must run (CI=1 makes a missing RELAY_BIN a failure). */
export function relayBin() {
  const bin = process.env.RELAY_BIN;
  if (!bin && process.env.CI) throw new Error('CI is set but RELAY_BIN is not: the tests against the relay cannot run');
  return bin || null;
}

/**
 * Starts the relay on 127.0.0.1, ports 0, a 1 s drain grace (extra args after); resolves once it
 * printed its "relay: listening ws on HOST:PORT" line.
 */
export async function startRelay(extraArgs = [], { timeoutMs = 10000 } = {}) {
  const bin = relayBin();
  const args = ['--port', '0', '--grpc-port', '0', '--host', '127.0.0.1', '--drain-grace-seconds', '1', ...extraArgs];
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr = (stderr + d.toString()).slice(-8000); });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: proc.stdout });
  const stdout = [];
  const listening = await new Promise((resolve, reject) => {
    let ws = null;
    let grpc = null;
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`relay did not print its listening lines within ${timeoutMs} ms; stdout=${JSON.stringify(stdout)} stderr=${stderr}`));
    }, timeoutMs);
    lines.on('line', (line) => {
      stdout.push(line);
      const m = LISTEN_RE.exec(line);
      if (!m) return;
      if (m[1] === 'grpc') grpc = { host: m[2], port: Number(m[3]) };
      else ws = { scheme: m[1], host: m[2], port: Number(m[3]) };
      if (ws && grpc) {
        clearTimeout(timer);
        resolve({ ws, grpc });
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`relay exited (${code ?? signal}) before listening; stderr=${stderr}`));
    });
  });
  if (listening.ws.port === 0) throw new Error('relay printed port 0');
  const base = `${listening.ws.scheme}://${listening.ws.host}:${listening.ws.port}`;
  return {
    proc,
    pid: proc.pid,
    url: base,
    httpUrl: base.replace(/^ws/, 'http'),
    meshUrl: (mesh) => `${base}/relay/${encodeURIComponent(mesh)}`,
    stdout,
    stderr: () => stderr,
    exited,
    /** SIGTERM by PID (a graceful drain); resolves with the exit code, after killing it if it hangs. */
    async stop(timeoutMs = 10000) {
      if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, 'SIGTERM');
      const timer = setTimeout(() => { if (proc.exitCode === null) process.kill(proc.pid, 'SIGKILL'); }, timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** Polls fn until it returns a truthy value (real time, for the tests against a relay). */
export async function until(fn, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
