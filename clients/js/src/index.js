// @atmosphere/relay-client: the reference JavaScript client of the Atmosphere Relay.
//
// One ES module, no runtime dependencies. It runs in browsers and in Node 18+: pass the
// WebSocket constructor of the `ws` package (`{ WebSocket }`), or let it find the global one
// (browsers, Node 22+). The protocol it speaks is docs/protocol.md of the relay; the types are in
// index.d.ts next to this file.

/** The version of this package (package.json "version"). */
export const VERSION = '0.1.0';

/**
 * Close codes after which the client does not reconnect on its own, with the reasons that mean
 * "do not retry" (docs/protocol.md, "Close codes"). `null` as a reason: any reason.
 * - 1000 "replaced": another connection registered our node_id with our credentials; coming back
 *   would take it over again, and the two would fight.
 * - 1008 "auth failed": the mesh refuses our credentials; retrying cannot change that.
 * - 1008 "kicked" / "mesh closed": an operator's decision.
 * Other closes (1001 shutdown, 1006 network loss, 1012 service restart, 1013 slow consumer,
 * 1008 "rate limited" or "registration timeout") are transient: the client reconnects.
 * @type {ReadonlyArray<{code: number, reason: string | null}>}
 */
export const NO_RETRY_CLOSES = Object.freeze([
  Object.freeze({ code: 1000, reason: null }),
  Object.freeze({ code: 1008, reason: 'auth failed' }),
  Object.freeze({ code: 1008, reason: 'kicked' }),
  Object.freeze({ code: 1008, reason: 'mesh closed' }),
]);

/**
 * Error codes a registration can end with that retrying will not fix: the client stops
 * reconnecting after them. Others (`node_id_in_use`: maybe our own previous connection, not yet
 * timed out; `mesh_full`, `auth_unavailable`, `cluster_unavailable`, `rate_limited`) are retried
 * with backoff.
 */
export const NO_RETRY_REGISTER_ERRORS = Object.freeze(['auth_failed', 'bad_message', 'already_registered']);

/**
 * An error from the relay (an `error` frame: `code`, `message`, maybe `request_id`) or from this
 * client. The client's own codes: `timeout` (no answer in time), `disconnected` (the connection
 * ended with the request pending), `closed` (close() was called), `not_connected` (a send while
 * no session is open), `connect_failed` (the WebSocket did not open or closed before the
 * registration was answered), `protocol` (the relay sent something this client cannot read).
 */
export class RelayError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{requestId?: string | number, frame?: object, closeCode?: number, closeReason?: string}} [details]
   */
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'RelayError';
    /** @type {string} */
    this.code = code;
    /** @type {string | number | undefined} */
    this.requestId = details.requestId;
    /** @type {object | undefined} */
    this.frame = details.frame;
    /** @type {number | undefined} */
    this.closeCode = details.closeCode;
    /** @type {string | undefined} */
    this.closeReason = details.closeReason;
  }
}

/**
 * The default reconnect policy: false after a close listed in NO_RETRY_CLOSES or a registration
 * refused with one of NO_RETRY_REGISTER_ERRORS, true otherwise.
 * @param {{code: number, reason: string, registerError?: RelayError}} info
 * @returns {boolean}
 */
export function defaultShouldReconnect(info) {
  // A refused registration is judged by the relay's error, not by the close that followed it.
  if (info.registerError) return !NO_RETRY_REGISTER_ERRORS.includes(info.registerError.code);
  return !NO_RETRY_CLOSES.some((c) => c.code === info.code && (c.reason === null || c.reason === info.reason));
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first): exponential backoff with full
 * jitter, a uniformly random delay in [0, min(maxDelayMs, initialDelayMs * factor^attempt)).
 * Full jitter spreads a fleet of clients that lost the same relay over the whole window.
 * @param {number} attempt
 * @param {{initialDelayMs: number, maxDelayMs: number, factor: number}} policy
 * @param {() => number} random a number in [0, 1)
 * @returns {number}
 */
export function backoffDelay(attempt, policy, random) {
  const cap = Math.min(policy.maxDelayMs, policy.initialDelayMs * Math.pow(policy.factor, attempt));
  return Math.floor(random() * cap);
}

/**
 * The URL of a mesh on a relay: `relayUrl` (ws://host:port or wss://host, with or without a
 * trailing slash) + `/relay/` + the percent-encoded mesh id (so `a/b` stays one mesh id).
 * @param {string} relayUrl
 * @param {string} meshId
 * @returns {string}
 */
export function meshUrl(relayUrl, meshId) {
  if (typeof meshId !== 'string' || meshId === '') throw new TypeError('meshId must be a non-empty string');
  return relayUrl.replace(/\/+$/, '') + '/relay/' + encodeURIComponent(meshId);
}

const OPEN = 1; // WebSocket.OPEN, the same in browsers, ws and undici

/**
 * What a resume client keeps (docs/protocol.md "Resume"): its session, the highest relay seq it
 * handled, its own counter, and its frames the relay has not acknowledged yet.
 */
class ResumeStream {
  static ACK_EVERY = 32;
  static ACK_AFTER_MS = 100;

  constructor() {
    /** @type {{id: string, window_seconds: number} | null} */
    this.session = null;
    this.lastSeq = 0;
    this.acked = 0;
    this.outSeq = 0;
    /** @type {Array<Record<string, any>>} */
    this.unacked = [];
  }

  /** A fresh session (or none): counts restart; returns how many sent frames were lost. */
  start(/** @type {any} */ session) {
    const lost = this.unacked.length;
    this.session = session && typeof session.id === 'string' ? session : null;
    this.lastSeq = this.acked = this.outSeq = 0;
    this.unacked = [];
    return lost;
  }

  /** @param {Record<string, any>} frame */
  number(frame) {
    const numbered = { ...frame, seq: ++this.outSeq };
    this.unacked.push(numbered);
    return numbered;
  }

  /** The relay handled our frames up to `seq`. @param {number} seq */
  forgetSentUpTo(seq) {
    let i = 0;
    while (i < this.unacked.length && this.unacked[i].seq <= seq) i++;
    if (i > 0) this.unacked.splice(0, i);
  }

  /** A relay frame numbered `seq`: true when it is new. @param {number} seq */
  received(seq) {
    if (seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    return true;
  }
}

/**
 * A client of one mesh on one relay: it connects, registers, keeps the peer list, sends and
 * receives every message of the protocol, correlates LLM requests with their responses, and
 * reconnects.
 */
export class RelayClient {
  /** @param {import('./index.js').RelayClientOptions} options */
  constructor(options) {
    if (!options || typeof options !== 'object') throw new TypeError('RelayClient: options are required');
    const o = options;
    if (typeof o.nodeId !== 'string' || o.nodeId === '') throw new TypeError('RelayClient: nodeId must be a non-empty string');
    if (o.url === undefined && (o.relayUrl === undefined || o.meshId === undefined)) {
      throw new TypeError('RelayClient: pass url, or relayUrl and meshId');
    }
    if (o.url !== undefined && typeof o.url !== 'string' && typeof o.url !== 'function') {
      throw new TypeError('RelayClient: url must be a string or a function returning one');
    }
    const WS = o.WebSocket ?? /** @type {any} */ (globalThis).WebSocket;
    if (typeof WS !== 'function') {
      throw new TypeError(
        'RelayClient: no WebSocket constructor. Pass one as {WebSocket} (in Node < 22: `import { WebSocket } from "ws"`)',
      );
    }
    this._WebSocket = WS;
    this._url = o.url !== undefined ? o.url : meshUrl(/** @type {string} */ (o.relayUrl), /** @type {string} */ (o.meshId));
    this.nodeId = o.nodeId;
    this.name = o.name;
    /** @type {string[]} */
    this.capabilities = o.capabilities ? [...o.capabilities] : [];
    this._token = o.token;
    this._registerType = o.registerType ?? (o.token !== null && typeof o.token === 'object' ? 'join' : 'register');
    this._registerMesh = o.registerMesh;
    this._requestTimeoutMs = o.requestTimeoutMs ?? 120000;
    this._registerTimeoutMs = o.registerTimeoutMs ?? 15000;
    const r = o.reconnect === undefined ? true : o.reconnect;
    this._reconnect = r === false ? null : {
      initialDelayMs: 500, maxDelayMs: 30000, factor: 2, maxAttempts: Infinity,
      ...(r === true ? {} : r),
    };
    this._shouldReconnect = o.shouldReconnect ?? defaultShouldReconnect;
    this._random = o.random ?? Math.random;
    this._setTimeout = o.timers?.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this._clearTimeout = o.timers?.clearTimeout ?? ((id) => clearTimeout(id));
    // `resume: true`: the relay's resume protocol (docs/protocol.md "Resume"), built in; an
    // object: hooks for another one.
    this._stream = o.resume === true ? new ResumeStream() : null;
    this._resume = o.resume === true ? null : o.resume ?? null;
    this._ackTimer = null;
    this._onLLMRequest = o.onLLMRequest ?? null;

    /** @type {import('./index.js').ConnectionState} */
    this.state = 'idle';
    /** The other peers of the mesh, by node_id, as the relay last described them. */
    /** @type {Map<string, import('./index.js').Peer>} */
    this.peers = new Map();
    /** @type {string | null} */
    this.meshId = null;
    /** Reconnect attempts since the last session was established. */
    this.attempt = 0;

    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    /** @type {Map<string, {resolve: Function, reject: Function, timer: any, requestId: string|number}>} */
    this._pending = new Map();
    /** @type {Array<{resolve: Function, reject: Function, timer: any}>} */
    this._pings = [];
    this._ws = null;
    this._sessions = 0;
    this._requestCounter = 0;
    this._reconnectTimer = null;
    this._drainHintMs = null;
    this._closedByUser = false;
    this._connectPromise = null;
    this._session = null;
    /** @type {Map<string, any> | null} the peers across a resume */
    this._peersKept = null;
  }

  // ---- events -------------------------------------------------------------------------------

  /**
   * Calls `listener` for each `event`; returns a function that removes it.
   * @param {string} event
   * @param {Function} listener
   * @returns {() => void}
   */
  on(event, listener) {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** @param {string} event @param {Function} listener */
  off(event, listener) {
    this._listeners.get(event)?.delete(listener);
  }

  /**
   * Calls `listener` for the next `event` only.
   * @param {string} event
   * @param {Function} listener
   * @returns {() => void}
   */
  once(event, listener) {
    const off = this.on(event, (/** @type {any[]} */ ...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  /**
   * Resolves with the next `event` whose argument passes `filter` (all of them without one);
   * rejects with a `timeout` RelayError after `timeoutMs`, and with `closed` if the client is closed.
   * @param {string} event
   * @param {{filter?: (value: any) => boolean, timeoutMs?: number}} [opts]
   * @returns {Promise<any>}
   */
  waitFor(event, opts = {}) {
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        offEvent();
        offClose();
        if (timer !== null) this._clearTimeout(timer);
      };
      const offEvent = this.on(event, (/** @type {any} */ value) => {
        if (opts.filter && !opts.filter(value)) return;
        cleanup();
        resolve(value);
      });
      const offClose = event === 'close' ? () => {} : this.on('close', () => {
        cleanup();
        reject(new RelayError('closed', `the client closed while waiting for ${event}`));
      });
      const timer = opts.timeoutMs === undefined ? null : this._setTimeout(() => {
        cleanup();
        reject(new RelayError('timeout', `no ${event} within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
    });
  }

  /** @param {string} event @param {any} value */
  _emit(event, value) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(value);
      } catch (err) {
        // A listener's bug must not break the client; report it where the platform reports
        // uncaught errors, outside our call stack.
        this._setTimeout(() => { throw err; }, 0);
      }
    }
  }

  _setState(/** @type {import('./index.js').ConnectionState} */ state) {
    if (this.state === state) return;
    this.state = state;
    this._emit('state', state);
  }

  // ---- connecting ---------------------------------------------------------------------------

  /**
   * Opens the connection and registers. Resolves once the relay has answered `peers` (after
   * `joined`, and `mesh_registered` for a founder); rejects with a RelayError if this first
   * attempt fails (the relay is unreachable, or refuses the registration): automatic reconnects
   * start only once a session has been established. Calling it again while connected returns
   * the current session.
   * @returns {Promise<import('./index.js').Session>}
   */
  connect() {
    if (this.state === 'closed') return Promise.reject(new RelayError('closed', 'the client is closed'));
    if (this.state === 'open' && this._session) return Promise.resolve(this._session);
    if (this._connectPromise) return this._connectPromise;
    // Reconnecting on its own already: wait for that session rather than open a second socket.
    if (this.state === 'reconnecting') return this.waitFor('open');
    this._closedByUser = false;
    this._connectPromise = this._attempt().finally(() => { this._connectPromise = null; });
    return this._connectPromise;
  }

  async _resolveUrl() {
    if (typeof this._url !== 'function') return this._url;
    try {
      const url = await this._url();
      if (typeof url !== 'string') throw new TypeError(`the url function returned ${typeof url}, not a string`);
      return url;
    } catch (err) {
      throw new RelayError('connect_failed', `no relay URL: ${errorText(err)}`);
    }
  }

  /** One connection attempt: open, register, wait for `peers`. */
  async _attempt() {
    this._setState(this._sessions === 0 ? 'connecting' : 'reconnecting');
    const url = await this._resolveUrl();
    if (this._closedByUser) throw new RelayError('closed', 'the client was closed');
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this._WebSocket(url);
      } catch (err) {
        reject(new RelayError('connect_failed', `cannot open ${url}: ${errorText(err)}`));
        return;
      }
      try { ws.binaryType = 'arraybuffer'; } catch { /* not every implementation lets it be set */ }
      this._ws = ws;
      let registered = false;
      /** @type {RelayError | null} */
      let registerError = null;
      const registerTimer = this._setTimeout(() => {
        if (registered) return;
        registerError = new RelayError('timeout', `no answer to the registration within ${this._registerTimeoutMs} ms`);
        finishFailed(4000, 'registration timeout');
        safeClose(ws, 4000, 'registration timeout');
      }, this._registerTimeoutMs);
      let failed = false;
      const finishFailed = (/** @type {number} */ code, /** @type {string} */ reason) => {
        if (failed || registered) return;
        failed = true;
        this._clearTimeout(registerTimer);
        detach();
        if (this._ws === ws) this._ws = null;
        const err = registerError ?? new RelayError('connect_failed',
          `the connection to ${url} closed before the registration was answered (close ${code}${reason ? ' ' + reason : ''})`,
          { closeCode: code, closeReason: reason });
        if (err.closeCode === undefined) { err.closeCode = code; err.closeReason = reason; }
        reject(err);
      };
      const detach = () => {
        ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      };
      ws.onopen = () => {
        if (this._closedByUser) { safeClose(ws, 1000, 'client closed'); return; }
        this._setState('registering');
        let msg = this._registerMessage();
        if (this._resume?.beforeRegister) {
          msg = this._resume.beforeRegister(msg, { reconnect: this._sessions > 0, client: this }) ?? msg;
        }
        this._sendNow(ws, msg);
      };
      // A failed connection fires error, then close 1006; Node 20's global WebSocket (undici,
      // --experimental-websocket) fires only the error and stays CONNECTING, so the error alone
      // ends the attempt (the close, if one follows, is ignored).
      ws.onerror = () => {
        if (registered) return;
        // Handlers off first: closing a failed undici socket fires error again, synchronously.
        finishFailed(1006, '');
        safeClose(ws, 1000, 'connection failed');
      };
      ws.onclose = (/** @type {any} */ ev) => {
        if (registered) return;
        finishFailed(ev?.code ?? 1006, ev?.reason ?? '');
      };
      ws.onmessage = (/** @type {any} */ ev) => {
        const frame = this._decode(ev.data);
        if (frame === null) return;
        if (registered) return; // handled by the session's handler
        this._emit('frame', frame);
        if (this._resume?.onFrame && this._resume.onFrame(frame, { client: this, registering: true }) === true) return;
        if (this._stream && !this._admitFrame(ws, frame)) return;
        switch (frame.type) {
          case 'resumed': {
            // The session goes on: the relay replays what we missed next, then we send again
            // what it did not handle; no `peers` comes (our view of the mesh is whole).
            registered = true;
            this._clearTimeout(registerTimer);
            const stream = /** @type {ResumeStream} */ (this._stream);
            stream.session = frame.session ?? stream.session;
            stream.forgetSentUpTo(typeof frame.last_seq === 'number' ? frame.last_seq : 0);
            const replayed = typeof frame.replayed === 'number' ? frame.replayed : 0;
            this._startSession(ws, null);
            for (const sent of stream.unacked) this._sendNow(ws, sent);
            this._emit('resumed', { replayed, resent: stream.unacked.length });
            resolve(/** @type {any} */ (this._session));
            return;
          }
          case 'mesh_registered':
            this._emit('mesh_registered', frame);
            return;
          case 'joined':
            this.meshId = typeof frame.mesh_id === 'string' ? frame.mesh_id : this.meshId;
            this._joined = frame;
            if (this._stream) {
              // A fresh session: what was in flight either way is gone, say how much.
              const lost = this._stream.start(frame.session ?? null);
              if (frame.resumed === false) this._emit('resume_failed', { unsent: lost });
            }
            this._emit('joined', frame);
            return;
          case 'peers': {
            registered = true;
            this._clearTimeout(registerTimer);
            this._startSession(ws, frame);
            resolve(/** @type {any} */ (this._session));
            return;
          }
          case 'error': {
            const err = relayErrorFromFrame(frame);
            this._emit('error', err);
            // Any error before `peers` answers our registration (nothing else was sent).
            registerError = err;
            finishFailed(1000, 'registration refused');
            safeClose(ws, 1000, 'registration refused');
            return;
          }
          case 'server_draining':
            this._noteDraining(frame);
            return;
          default:
            this._dispatch(frame);
        }
      };
    });
  }

  _registerMessage() {
    if (this._registerMesh) {
      const m = this._registerMesh;
      /** @type {Record<string, any>} */
      const msg = {
        type: 'register_mesh',
        mesh_id: m.meshId,
        mesh_public_key: m.meshPublicKey,
        founder_proof: m.founderProof,
        node_id: this.nodeId,
        capabilities: this.capabilities,
      };
      if (m.nodePublicKey !== undefined) msg.node_public_key = m.nodePublicKey;
      if (m.meshName !== undefined) msg.name = m.meshName;
      if (this.name !== undefined) msg.display_name = this.name;
      return msg;
    }
    /** @type {Record<string, any>} */
    const msg = { type: this._registerType, node_id: this.nodeId, capabilities: this.capabilities };
    if (this.name !== undefined) msg.name = this.name;
    if (this._token !== undefined && this._token !== null) msg.token = this._token;
    if (this._stream) {
      const s = this._stream;
      msg.resume = s.session ? { session: s.session.id, last_seq: s.lastSeq } : true;
    }
    return msg;
  }

  /** @param {any} ws @param {any} peersFrame */
  _startSession(ws, peersFrame) {
    const reconnected = this._sessions > 0;
    this._sessions++;
    this.attempt = 0;
    this._drainHintMs = null;
    if (peersFrame === null) {
      // Resumed: the peers are who they were (the others saw us stay), and replayed frames
      // bring every change since.
      this.peers = this._peersKept ?? new Map();
    } else {
      this.peers = new Map();
      for (const p of Array.isArray(peersFrame.peers) ? peersFrame.peers : []) {
        if (p && typeof p.node_id === 'string') this.peers.set(p.node_id, p);
      }
    }
    this._peersKept = null;
    const joined = this._joined ?? null;
    this._joined = null;
    this._session = {
      meshId: this.meshId,
      nodeCount: joined && typeof joined.node_count === 'number' ? joined.node_count : this.peers.size + 1,
      peers: [...this.peers.values()],
      reconnected,
    };
    if (peersFrame === null) this._session.resumed = true;
    ws.onmessage = (/** @type {any} */ ev) => {
      const frame = this._decode(ev.data);
      if (frame === null) return;
      this._emit('frame', frame);
      if (this._resume?.onFrame && this._resume.onFrame(frame, { client: this, registering: false }) === true) return;
      if (this._stream && !this._admitFrame(ws, frame)) return;
      this._dispatch(frame);
    };
    ws.onclose = (/** @type {any} */ ev) => this._onSessionClosed(ws, ev?.code ?? 1006, ev?.reason ?? '');
    // An error is followed by close (1006); should a WebSocket implementation not deliver it,
    // the session ends a second later all the same.
    ws.onerror = () => {
      this._setTimeout(() => {
        if (ws.onclose !== null && this._ws === ws) {
          this._onSessionClosed(ws, 1006, '');
          safeClose(ws, 1000, 'connection failed');
        }
      }, 1000);
    };
    this._setState('open');
    this._emit('peers', this._session.peers);
    this._resume?.onSessionStart?.({ client: this, session: this._session });
    this._emit('open', this._session);
  }

  /** @param {any} data @returns {any} */
  _decode(data) {
    let text = data;
    if (typeof data !== 'string') {
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(data);
      } catch {
        this._emit('error', new RelayError('protocol', 'the relay sent a frame this client cannot decode'));
        return null;
      }
    }
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      this._emit('error', new RelayError('protocol', 'the relay sent a frame that is not JSON'));
      return null;
    }
    if (frame === null || typeof frame !== 'object' || Array.isArray(frame) || typeof frame.type !== 'string') {
      this._emit('error', new RelayError('protocol', 'the relay sent a frame without a string "type"'));
      return null;
    }
    return frame;
  }

  /** Handles one frame of an established session. @param {any} frame */
  _dispatch(frame) {
    switch (frame.type) {
      case 'joined':
        this._emit('joined', frame);
        return;
      case 'peers':
        this.peers = new Map();
        for (const p of Array.isArray(frame.peers) ? frame.peers : []) {
          if (p && typeof p.node_id === 'string') this.peers.set(p.node_id, p);
        }
        this._emit('peers', [...this.peers.values()]);
        return;
      case 'peer_joined': {
        const peer = { node_id: frame.node_id, name: frame.name, capabilities: frame.capabilities ?? [] };
        this.peers.set(frame.node_id, peer);
        this._emit('peer_joined', peer);
        return;
      }
      case 'peer_left':
        this.peers.delete(frame.node_id);
        this._emit('peer_left', { node_id: frame.node_id });
        return;
      case 'peer_updated': {
        const old = this.peers.get(frame.node_id);
        if (old) this.peers.set(frame.node_id, { ...old, capabilities: frame.capabilities ?? [] });
        this._emit('peer_updated', { node_id: frame.node_id, capabilities: frame.capabilities ?? [] });
        return;
      }
      case 'message':
        this._emit('message', { from: frame.from, payload: frame.payload });
        return;
      case 'llm_request':
      case 'chat_request':
        this._emit(frame.type, frame);
        if (this._onLLMRequest) this._answerWithHandler(frame);
        return;
      case 'llm_response': {
        const key = requestKey(frame.request_id);
        const p = this._pending.get(key);
        if (p) {
          this._pending.delete(key);
          this._clearTimeout(p.timer);
          p.resolve(frame);
        }
        this._emit('llm_response', frame);
        return;
      }
      case 'pong': {
        const p = this._pings.shift();
        if (p) {
          this._clearTimeout(p.timer);
          p.resolve(frame.timestamp);
        }
        this._emit('pong', frame);
        return;
      }
      case 'error': {
        const err = relayErrorFromFrame(frame);
        if (err.requestId !== undefined) {
          const key = requestKey(err.requestId);
          const p = this._pending.get(key);
          if (p) {
            this._pending.delete(key);
            this._clearTimeout(p.timer);
            p.reject(err);
          }
        }
        this._emit('error', err);
        return;
      }
      case 'server_draining':
        this._noteDraining(frame);
        return;
      case 'mesh_registered':
        this._emit('mesh_registered', frame);
        return;
      default:
        // A type newer than this client: hand it over untouched.
        this._emit('unknown', frame);
    }
  }

  /** @param {any} frame */
  _noteDraining(frame) {
    const ms = typeof frame.reconnect_after_ms === 'number' && frame.reconnect_after_ms >= 0 ? frame.reconnect_after_ms : null;
    this._drainHintMs = ms;
    this._emit('server_draining', {
      graceSeconds: typeof frame.grace_seconds === 'number' ? frame.grace_seconds : null,
      reconnectAfterMs: ms,
    });
  }

  /** @param {any} request */
  async _answerWithHandler(request) {
    const handler = /** @type {Function} */ (this._onLLMRequest);
    let answer;
    try {
      answer = await handler(request);
    } catch (err) {
      this._tryRespond(request, null, { error: errorText(err), done: true });
      return;
    }
    if (answer === undefined) return; // the handler answered (or will answer) with respond()
    this._tryRespond(request, answer);
  }

  /** @param {any} request @param {any} response @param {Record<string, any>} [extra] */
  _tryRespond(request, response, extra) {
    try {
      this.respond(request, response, extra);
    } catch (err) {
      // The connection went away while the handler ran: the requester gets llm_peer_left.
      this._emit('error', err instanceof RelayError ? err : new RelayError('not_connected', errorText(err)));
    }
  }

  /** @param {any} ws @param {number} code @param {string} reason */
  _onSessionClosed(ws, code, reason) {
    if (this._ws === ws) this._ws = null;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    this._session = null;
    const resumeWants = this._resume?.onDisconnect?.({ client: this, code, reason }) ??
      // A resume session keeps what waits for an answer: it comes after the resume.
      (this._stream?.session ? { keepPendingRequests: true } : {});
    if (this._ackTimer !== null) {
      this._clearTimeout(this._ackTimer);
      this._ackTimer = null;
    }
    if (this._closedByUser) {
      this._finalClose(code, reason);
      return;
    }
    if (!resumeWants.keepPendingRequests) {
      this._failPending('disconnected', `the connection closed (${code}${reason ? ' ' + reason : ''}) before the answer came`);
    }
    this._failPings('disconnected', 'the connection closed before the pong came');
    const peersBefore = [...this.peers.keys()];
    this._peersKept = this._stream?.session ? this.peers : null;
    this.peers = new Map();
    const retry = this._reconnect !== null && this._shouldReconnect({ code, reason });
    if (!retry) {
      this._emit('disconnect', { code, reason, willReconnect: false, delayMs: null, peers: peersBefore });
      this._finalClose(code, reason);
      return;
    }
    const delayMs = this._nextDelay();
    this._emit('disconnect', { code, reason, willReconnect: delayMs !== null, delayMs, peers: peersBefore });
    if (delayMs === null) {
      this._finalClose(code, reason);
      return;
    }
    this._scheduleReconnect(delayMs);
  }

  /** The delay before the next attempt, or null when maxAttempts are used up. */
  _nextDelay() {
    const policy = /** @type {NonNullable<RelayClient['_reconnect']>} */ (this._reconnect);
    if (this.attempt >= policy.maxAttempts) return null;
    if (this._drainHintMs !== null) {
      // The relay chose a delay for this connection (already randomised, per connection) so that
      // its clients do not all arrive together: take it as it is, once.
      const ms = this._drainHintMs;
      this._drainHintMs = null;
      return ms;
    }
    return backoffDelay(this.attempt, policy, this._random);
  }

  /** @param {number} delayMs */
  _scheduleReconnect(delayMs) {
    this._setState('reconnecting');
    this._emit('reconnecting', { attempt: this.attempt + 1, delayMs });
    this._reconnectTimer = this._setTimeout(() => {
      this._reconnectTimer = null;
      if (this._closedByUser) return;
      this.attempt++;
      this._attempt().catch((/** @type {RelayError} */ err) => {
        if (this._closedByUser) return;
        const info = { code: err.closeCode ?? 1006, reason: err.closeReason ?? '', registerError: err.code === 'connect_failed' ? undefined : err };
        const retry = this._shouldReconnect(info);
        const delay = retry ? this._nextDelay() : null;
        this._emit('disconnect', { code: info.code, reason: info.reason, willReconnect: delay !== null, delayMs: delay, peers: [], error: err });
        if (delay === null) this._finalClose(info.code, info.reason, err);
        else this._scheduleReconnect(delay);
      });
    }, delayMs);
  }

  /** @param {number} code @param {string} reason @param {RelayError} [error] */
  _finalClose(code, reason, error) {
    if (this.state === 'closed') return;
    if (this._reconnectTimer !== null) {
      this._clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
    }
    this._failPending('closed', 'the client closed before the answer came');
    this._failPings('closed', 'the client closed before the pong came');
    this._setState('closed');
    this._emit('close', { code, reason, error });
  }

  /** @param {string} code @param {string} message */
  _failPending(code, message) {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      this._clearTimeout(p.timer);
      p.reject(new RelayError(code, message, { requestId: p.requestId }));
    }
  }

  /** @param {string} code @param {string} message */
  _failPings(code, message) {
    const pings = this._pings;
    this._pings = [];
    for (const p of pings) {
      this._clearTimeout(p.timer);
      p.reject(new RelayError(code, message));
    }
  }

  /**
   * Closes the connection and stops reconnecting; pending requests fail with `closed`.
   * Resolves once the WebSocket has closed (at once when none is open).
   * @param {number} [code] 1000 by default
   * @param {string} [reason]
   * @returns {Promise<void>}
   */
  close(code = 1000, reason = 'client closed') {
    this._closedByUser = true;
    const ws = this._ws;
    if (this._reconnectTimer !== null) {
      this._clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
    }
    if (!ws || ws.readyState >= 2) {
      this._ws = null;
      this._finalClose(code, reason);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = this.once('close', () => resolve());
      void done;
      const prev = ws.onclose;
      ws.onclose = (/** @type {any} */ ev) => {
        if (prev) prev(ev);
        this._ws = null;
        this._finalClose(ev?.code ?? code, ev?.reason ?? reason);
      };
      safeClose(ws, code, reason);
    });
  }

  // ---- sending ------------------------------------------------------------------------------

  /**
   * Sends one frame as it is (an object, JSON-encoded here). For types this client has no method
   * for yet; the methods below are the ordinary way.
   * @param {Record<string, any>} frame
   */
  send(frame) {
    if (frame === null || typeof frame !== 'object' || typeof frame.type !== 'string') {
      throw new TypeError('send: a frame is an object with a string "type"');
    }
    const ws = this._ws;
    const connected = ws && this.state === 'open' && ws.readyState === OPEN;
    const stream = this._stream;
    if (stream?.session && frame.type !== 'ack' && this.state !== 'closed') {
      // Numbered and kept until the relay acknowledges it: while the connection is down it
      // waits, and goes out when the session resumes.
      const numbered = stream.number(frame);
      if (connected) this._sendNow(ws, numbered);
      return;
    }
    if (!connected) {
      throw new RelayError('not_connected', `cannot send ${frame.type}: no session is open (state ${this.state})`);
    }
    this._sendNow(ws, frame);
  }

  /**
   * A resume session's frame arrives: acks are taken here, a frame already handled is dropped,
   * and the relay is acknowledged every 32 frames or 100 ms. False: nothing else to do with it.
   * @param {any} ws @param {any} frame
   */
  _admitFrame(ws, frame) {
    const stream = /** @type {ResumeStream} */ (this._stream);
    if (frame.type === 'ack') {
      if (typeof frame.seq === 'number') stream.forgetSentUpTo(frame.seq);
      return false;
    }
    if (typeof frame.seq !== 'number') return true; // joined, resumed, registration errors
    if (!stream.received(frame.seq)) return false;
    if (stream.lastSeq - stream.acked >= ResumeStream.ACK_EVERY) {
      this._sendAck(ws);
    } else if (this._ackTimer === null) {
      this._ackTimer = this._setTimeout(() => {
        this._ackTimer = null;
        if (this._ws === ws && ws.readyState === OPEN) this._sendAck(ws);
      }, ResumeStream.ACK_AFTER_MS);
    }
    return true;
  }

  /** @param {any} ws */
  _sendAck(ws) {
    const stream = /** @type {ResumeStream} */ (this._stream);
    if (stream.lastSeq === stream.acked) return;
    stream.acked = stream.lastSeq;
    this._sendNow(ws, { type: 'ack', seq: stream.lastSeq });
  }

  /** @param {any} ws @param {object} frame */
  _sendNow(ws, frame) {
    ws.send(JSON.stringify(frame));
  }

  /**
   * Sends `payload` to every other peer of the mesh (they receive `message`).
   * @param {any} payload
   */
  broadcast(payload) {
    this.send({ type: 'broadcast', payload: payload === undefined ? null : payload });
  }

  /**
   * Sends `payload` to one peer (it receives `message`); an unknown target is answered with an
   * `error` event of code `unknown_target`.
   * @param {string} target
   * @param {any} payload
   */
  direct(target, payload) {
    if (typeof target !== 'string' || target === '') throw new TypeError('direct: target must be a non-empty string');
    this.send({ type: 'direct', target, payload: payload === undefined ? null : payload });
  }

  /**
   * Replaces this peer's capabilities (the others receive `peer_updated`). They are also used
   * for every later registration, reconnects included.
   * @param {string[]} capabilities
   */
  updateCapabilities(capabilities) {
    if (!Array.isArray(capabilities)) throw new TypeError('updateCapabilities: an array of strings');
    this.send({ type: 'capabilities_update', capabilities: [...capabilities] });
    this.capabilities = [...capabilities];
  }

  /**
   * Sends `ping`; resolves with the relay's `pong.timestamp` (seconds since the epoch).
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<number>}
   */
  ping(opts = {}) {
    const timeoutMs = opts.timeoutMs ?? this._requestTimeoutMs;
    try {
      this.send({ type: 'ping' });
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      /** @type {{resolve: Function, reject: Function, timer: any}} */
      const entry = { resolve, reject, timer: null };
      entry.timer = this._setTimeout(() => {
        const i = this._pings.indexOf(entry);
        if (i >= 0) this._pings.splice(i, 1);
        reject(new RelayError('timeout', `no pong within ${timeoutMs} ms`));
      }, timeoutMs);
      this._pings.push(entry);
    });
  }

  /**
   * Sends an `llm_request` (routed by the relay to one other peer with the "llm" capability) and
   * resolves with the first `llm_response` carrying its request_id. Rejects with the relay's
   * error for it (`no_llm_peer`, `llm_peer_left`, `too_many_requests`, `bad_message`), with
   * `timeout` after `timeoutMs`, with `disconnected` if the connection ends first.
   * Later responses with the same request_id (streamed chunks) arrive as `llm_response` events.
   * @param {import('./index.js').LLMRequest} request
   * @param {import('./index.js').RequestOptions} [opts]
   * @returns {Promise<import('./index.js').LLMResponseFrame>}
   */
  llmRequest(request, opts = {}) {
    return this._request(opts.type ?? 'llm_request', request, opts);
  }

  /**
   * The same as llmRequest with `chat_request` (the newer clients' name).
   * @param {import('./index.js').LLMRequest} request
   * @param {import('./index.js').RequestOptions} [opts]
   * @returns {Promise<import('./index.js').LLMResponseFrame>}
   */
  chatRequest(request, opts = {}) {
    return this._request('chat_request', request, opts);
  }

  /** @param {string} type @param {any} request @param {any} opts @returns {Promise<any>} */
  _request(type, request, opts) {
    try {
      return this._startRequest(type, request, opts);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** @param {string} type @param {any} request @param {any} opts @returns {Promise<any>} */
  _startRequest(type, request, opts) {
    if (request === null || typeof request !== 'object') throw new TypeError(`${type}: the request is an object`);
    if (type !== 'llm_request' && type !== 'chat_request') throw new TypeError(`unknown request type ${type}`);
    const requestId = opts.requestId ?? request.request_id ?? this._newRequestId();
    if (typeof requestId !== 'string' && typeof requestId !== 'number') {
      throw new TypeError('request_id must be a string or a number');
    }
    const key = requestKey(requestId);
    if (this._pending.has(key)) throw new RelayError('bad_request', `request_id ${JSON.stringify(requestId)} is already pending`, { requestId });
    const { type: _t, from: _f, request_id: _r, ...rest } = request;
    void _t; void _f; void _r;
    const frame = { type, request_id: requestId, ...rest };
    const timeoutMs = opts.timeoutMs ?? this._requestTimeoutMs;
    this.send(frame); // throws not_connected before anything is pending
    return new Promise((resolve, reject) => {
      const timer = this._setTimeout(() => {
        if (this._pending.get(key)?.timer !== timer) return;
        this._pending.delete(key);
        reject(new RelayError('timeout', `no llm_response for ${JSON.stringify(requestId)} within ${timeoutMs} ms`, { requestId }));
      }, timeoutMs);
      this._pending.set(key, { resolve, reject, timer, requestId });
    });
  }

  /**
   * A request id no other peer can guess: the relay delivers any peer's llm_response with our
   * node_id as target, so a peer that could predict an id could answer in place of the one the
   * request went to. 64 random bits from WebCrypto when there is one (`random` only without).
   */
  _newRequestId() {
    this._requestCounter++;
    let rand = '';
    const c = /** @type {any} */ (globalThis).crypto;
    if (c && typeof c.getRandomValues === 'function') {
      for (const w of c.getRandomValues(new Uint32Array(2))) rand += w.toString(16).padStart(8, '0');
    } else {
      for (let i = 0; i < 2; i++) rand += Math.floor(this._random() * 0x100000000).toString(16).padStart(8, '0');
    }
    return `${this.nodeId.slice(0, 32)}-${this._requestCounter}-${rand}`;
  }

  /**
   * Answers an `llm_request` / `chat_request` received from a peer: an `llm_response` to its
   * `from` with its `request_id`. `extra` members (e.g. `done`, `model`, `error`) are forwarded
   * to the requester untouched.
   * @param {{from: string, request_id: string | number}} request
   * @param {any} response
   * @param {Record<string, any>} [extra]
   */
  respond(request, response, extra = {}) {
    if (!request || typeof request.from !== 'string') throw new TypeError('respond: the request (with its from) is required');
    const { type: _t, target: _g, request_id: _r, response: _s, ...rest } = extra;
    void _t; void _g; void _r; void _s;
    this.send({ type: 'llm_response', target: request.from, request_id: request.request_id, response, ...rest });
  }

  /** Requests waiting for their llm_response. */
  get pendingRequests() {
    return this._pending.size;
  }
}

/** @param {any} frame @returns {RelayError} */
function relayErrorFromFrame(frame) {
  const code = typeof frame.code === 'string' ? frame.code : 'unknown';
  const message = typeof frame.message === 'string' ? frame.message : code;
  return new RelayError(code, message, { requestId: frame.request_id ?? undefined, frame });
}

/** 42 and "42" are two request ids: keyed by their JSON. @param {any} id */
function requestKey(id) {
  return JSON.stringify(id);
}

/** @param {any} err */
function errorText(err) {
  return err && typeof err.message === 'string' ? err.message : String(err);
}

/** @param {any} ws @param {number} code @param {string} reason */
function safeClose(ws, code, reason) {
  try {
    ws.close(code, reason);
  } catch {
    try { ws.close(); } catch { /* already closed */ }
  }
}

// ---- signed meshes ------------------------------------------------------------------------------

/**
 * The bytes a mesh key signs for a join token (docs/protocol.md, "Mesh authentication"): the
 * UTF-8 of Python's
 * `json.dumps({"capabilities": sorted(caps), "expires_at", "issued_at", "issuer_id", "mesh_id",
 * "node_id", "nonce"}, sort_keys=True, separators=(",", ":"))`, reproduced here: non-ASCII as
 * `\uXXXX`, integers as integers, other numbers as Python's float repr. A JavaScript number does
 * not know whether it was written `1764120000` or `1764120000.0`, so integral numbers are
 * written as integers: issue tokens with integer (or non-integral) times.
 * @param {import('./index.js').JoinTokenFields} token
 * @returns {Uint8Array}
 */
export function joinTokenSigningBytes(token) {
  const caps = Array.isArray(token.capabilities) ? [...token.capabilities].sort(compareCodePoints) : [];
  const parts = [
    '"capabilities":[' + caps.map(pyJson).join(',') + ']',
    '"expires_at":' + pyJson(token.expires_at),
    '"issued_at":' + pyJson(token.issued_at ?? null),
    '"issuer_id":' + pyJson(token.issuer_id),
    '"mesh_id":' + pyJson(token.mesh_id),
    '"node_id":' + pyJson(token.node_id ?? null),
    '"nonce":' + pyJson(token.nonce),
  ];
  return new TextEncoder().encode('{' + parts.join(',') + '}');
}

/** Python sorts str by code point; JavaScript's default sort by UTF-16 unit. @param {string} a @param {string} b */
function compareCodePoints(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = /** @type {number} */ (x[i].codePointAt(0)) - /** @type {number} */ (y[i].codePointAt(0));
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** json.dumps of one scalar, as Python writes it. @param {any} v @returns {string} */
function pyJson(v) {
  if (v === null || v === undefined) return 'null';
  if (v === true) return 'true';
  if (v === false) return 'false';
  if (typeof v === 'number') return pyNumber(v);
  if (typeof v === 'string') return pyString(v);
  throw new TypeError('join token fields are strings, numbers, booleans or null');
}

/** @param {number} n */
function pyNumber(n) {
  if (!Number.isFinite(n)) throw new TypeError('join token numbers must be finite');
  if (Number.isSafeInteger(n)) return String(n);
  // Python's float repr: the shortest round-trip digits (as JavaScript's), written in fixed
  // notation when the decimal exponent is in [-4, 16), else as d.ddde+XX.
  const [mant, expText] = n.toExponential().split('e');
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let out;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
      const frac = digits.slice(exp + 1);
      out = intPart + '.' + (frac === '' ? '0' : frac);
    } else {
      out = '0.' + '0'.repeat(-exp - 1) + digits;
    }
  } else {
    const m = digits.length > 1 ? digits[0] + '.' + digits.slice(1) : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    out = m + 'e' + (exp < 0 ? '-' : '+') + e;
  }
  return (neg ? '-' : '') + out;
}

/** @param {string} s */
function pyString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += s[i];
  }
  return out + '"';
}

/** @param {Uint8Array} bytes */
function base64(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** @returns {Promise<SubtleCrypto>} */
async function subtle() {
  const s = /** @type {any} */ (globalThis).crypto?.subtle;
  if (s) return s;
  // Node 18 has WebCrypto only as require('node:crypto').webcrypto (global from Node 19). The
  // module name is a variable so that browser bundlers leave this branch alone.
  const nodeCrypto = 'node:crypto';
  if (typeof process === 'object' && process?.versions?.node) {
    const m = await import(/* webpackIgnore: true */ nodeCrypto);
    if (m.webcrypto?.subtle) return m.webcrypto.subtle;
  }
  throw new TypeError('WebCrypto (crypto.subtle) is not available: a secure context (https or localhost) or Node 18+ is needed');
}

/**
 * Signs a join token with the mesh's Ed25519 private key (a WebCrypto CryptoKey): what the
 * founder (or any holder of the mesh key) gives a new member. Returns the token with its
 * `signature`. Needs WebCrypto Ed25519 (Node 18.4+, current browsers).
 * @param {import('./index.js').JoinTokenFields} fields
 * @param {CryptoKey} meshPrivateKey
 * @returns {Promise<import('./index.js').JoinToken>}
 */
export async function signJoinToken(fields, meshPrivateKey) {
  const sig = await (await subtle()).sign({ name: 'Ed25519' }, meshPrivateKey, joinTokenSigningBytes(fields));
  return { ...fields, signature: base64(new Uint8Array(sig)) };
}

/**
 * The founder's proof for `register_mesh`: the base64 Ed25519 signature of the UTF-8 mesh id.
 * @param {string} meshId
 * @param {CryptoKey} privateKey the mesh key, or the founder's node key
 * @returns {Promise<string>}
 */
export async function founderProof(meshId, privateKey) {
  const sig = await (await subtle()).sign({ name: 'Ed25519' }, privateKey, new TextEncoder().encode(meshId));
  return base64(new Uint8Array(sig));
}

/**
 * The base64 of a public CryptoKey's raw 32 bytes (`mesh_public_key`, `node_public_key`).
 * @param {CryptoKey} publicKey
 * @returns {Promise<string>}
 */
export async function exportPublicKey(publicKey) {
  return base64(new Uint8Array(await (await subtle()).exportKey('raw', publicKey)));
}
