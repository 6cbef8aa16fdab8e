// Types of @atmosphere/relay-client (src/index.js). Checked by `tsc -p tsconfig.json` in the
// package's tests (test/types.test.js), against test/types/usage.ts.

export declare const VERSION: string;

export declare const NO_RETRY_CLOSES: ReadonlyArray<{ readonly code: number; readonly reason: string | null }>;
export declare const NO_RETRY_REGISTER_ERRORS: ReadonlyArray<string>;

/** A request id as the protocol allows it: echoed verbatim (42 stays 42, "42" stays "42"). */
export type RequestId = string | number;

export type ConnectionState = 'idle' | 'connecting' | 'registering' | 'open' | 'reconnecting' | 'closed';

/** The fields of a signed join token, before signing. */
export interface JoinTokenFields {
  mesh_id: string;
  /** null: a token any node_id may use once per nonce (it never takes a node_id over). */
  node_id?: string | null;
  issued_at?: number | string | null;
  expires_at: number;
  capabilities?: string[];
  issuer_id: string;
  nonce: string;
}

/** A signed join token (docs/protocol.md, "Mesh authentication"). */
export interface JoinToken extends JoinTokenFields {
  signature: string;
  [extra: string]: unknown;
}

/** What a founder sends to create (or re-prove) a signed mesh. */
export interface RegisterMeshOptions {
  /** Must equal the mesh id of the URL. */
  meshId: string;
  /** base64 of the mesh's raw Ed25519 public key. */
  meshPublicKey: string;
  /** base64 Ed25519 signature of the UTF-8 mesh id (see founderProof). */
  founderProof: string;
  nodePublicKey?: string;
  /** The mesh's name (register_mesh `name`); the client's `name` becomes `display_name`. */
  meshName?: string;
}

export interface ReconnectPolicy {
  /** First backoff window, ms (default 500). */
  initialDelayMs?: number;
  /** Largest backoff window, ms (default 30000). */
  maxDelayMs?: number;
  /** Growth of the window per attempt (default 2). */
  factor?: number;
  /** Attempts after a session was lost before giving up (default Infinity). */
  maxAttempts?: number;
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** Set when a reconnect attempt's registration was refused. */
  registerError?: RelayError;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Where a resume protocol plugs in (a future relay version; none exists yet). Every hook is
 * optional.
 */
export interface ResumeHandler {
  /** May return a replacement for the register/join/register_mesh message (e.g. with extra members). */
  beforeRegister?(message: Record<string, unknown>, ctx: { reconnect: boolean; client: RelayClient }): Record<string, unknown> | void;
  /** Sees every frame first; returning true consumes it (no event is emitted for it). */
  onFrame?(frame: ServerFrame, ctx: { client: RelayClient; registering: boolean }): boolean | void;
  /** A session (joined + peers) has started. */
  onSessionStart?(ctx: { client: RelayClient; session: Session }): void;
  /** The connection of a session ended. Return keepPendingRequests to keep LLM requests waiting (their timeouts still run). */
  onDisconnect?(ctx: { client: RelayClient; code: number; reason: string }): { keepPendingRequests?: boolean } | void;
}

/** A WebSocket constructor: the browser's, Node 22's global, or `ws`'s. */
export interface WebSocketConstructor {
  new (url: string): WebSocketLike;
}

export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: any) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
}

export interface RelayClientOptions {
  /** The mesh's full URL (ws://host:port/relay/MESH), or a function giving it for each attempt. */
  url?: string | (() => string | Promise<string>);
  /** With meshId, instead of url: ws://host:port. */
  relayUrl?: string;
  meshId?: string;
  nodeId: string;
  name?: string;
  capabilities?: string[];
  /** A mesh token (string), a signed join token, or nothing (an open mesh). */
  token?: string | JoinToken | null;
  /** Default: "join" with a signed token, else "register". */
  registerType?: 'register' | 'join';
  /** Found (or re-prove) a signed mesh with register_mesh instead of registering. */
  registerMesh?: RegisterMeshOptions;
  /** Default: globalThis.WebSocket. In Node < 22 pass `WebSocket` from the ws package. */
  WebSocket?: WebSocketConstructor | (new (url: string) => any);
  /** Default timeout of llmRequest/chatRequest/ping, ms (default 120000). */
  requestTimeoutMs?: number;
  /** How long the relay may take to answer the registration, ms (default 15000). */
  registerTimeoutMs?: number;
  /** false: never reconnect. Default: true (the default policy). */
  reconnect?: boolean | ReconnectPolicy;
  shouldReconnect?: (info: CloseInfo) => boolean;
  /** For tests: a random number in [0, 1). */
  random?: () => number;
  /** For tests: a fake clock. */
  timers?: Timers;
  /**
   * true: the relay's resume protocol (docs/protocol.md "Resume"): a dropped connection resumes
   * its session, nothing lost or repeated either way, and sends while it is down wait for it.
   * An object: hooks for another resume protocol.
   */
  resume?: ResumeHandler | true;
  /**
   * Answers llm_request/chat_request frames: the value returned (or resolved) is sent as
   * `response`; a throw sends `{response: null, error: message, done: true}`; undefined sends
   * nothing (answer with respond()).
   */
  onLLMRequest?: (request: LLMRequestFrame) => unknown | Promise<unknown>;
}

export interface Peer {
  node_id: string;
  name?: string;
  capabilities: string[];
  joined_at?: number;
  [extra: string]: unknown;
}

export interface Session {
  meshId: string | null;
  /** Registered peers of the mesh, this one included. */
  nodeCount: number;
  /** The other peers, in join order. */
  peers: Peer[];
  /** True when this session came from an automatic reconnect. */
  reconnected: boolean;
  /** resume: true: the reconnect continued the previous session (nothing was lost). */
  resumed?: boolean;
}

export interface LLMRequest {
  prompt?: unknown;
  model?: unknown;
  messages?: unknown;
  request_id?: RequestId;
  [extra: string]: unknown;
}

export interface RequestOptions {
  requestId?: RequestId;
  timeoutMs?: number;
  type?: 'llm_request' | 'chat_request';
}

export interface LLMRequestFrame {
  type: 'llm_request' | 'chat_request';
  from: string;
  request_id: RequestId;
  prompt?: unknown;
  model?: unknown;
  messages?: Array<{ role: string; content: unknown }>;
  [extra: string]: unknown;
}

export interface LLMResponseFrame {
  type: 'llm_response';
  from: string;
  request_id: RequestId | null;
  response?: unknown;
  [extra: string]: unknown;
}

export interface ServerFrame {
  type: string;
  [member: string]: unknown;
}

export interface DisconnectInfo {
  code: number;
  reason: string;
  willReconnect: boolean;
  delayMs: number | null;
  /** The peers known when the connection ended. */
  peers: string[];
  error?: RelayError;
}

export interface RelayClientEvents {
  state: ConnectionState;
  open: Session;
  joined: { type: 'joined'; mesh_id: string; node_count: number };
  mesh_registered: { type: 'mesh_registered'; mesh_id: string; success: boolean };
  peers: Peer[];
  peer_joined: Peer;
  peer_left: { node_id: string };
  peer_updated: { node_id: string; capabilities: string[] };
  message: { from: string; payload: unknown };
  llm_request: LLMRequestFrame;
  chat_request: LLMRequestFrame;
  llm_response: LLMResponseFrame;
  pong: { type: 'pong'; timestamp: number };
  error: RelayError;
  server_draining: { graceSeconds: number | null; reconnectAfterMs: number | null };
  disconnect: DisconnectInfo;
  reconnecting: { attempt: number; delayMs: number };
  close: { code: number; reason: string; error?: RelayError };
  frame: ServerFrame;
  unknown: ServerFrame;
  /** resume: true: the session resumed; `replayed` frames the relay sent again, `resent` ours. */
  resumed: { replayed: number; resent: number };
  /** resume: true: the relay could not resume (window passed, relay restarted...): a fresh session; `unsent` of our frames were lost. */
  resume_failed: { unsent: number };
}

export declare class RelayError extends Error {
  constructor(code: string, message: string, details?: { requestId?: RequestId; frame?: object; closeCode?: number; closeReason?: string });
  readonly name: 'RelayError';
  /** The relay's stable code (e.g. "no_llm_peer"), or the client's: timeout, disconnected, closed, not_connected, connect_failed, protocol. */
  code: string;
  requestId: RequestId | undefined;
  /** The error frame as the relay sent it. */
  frame: object | undefined;
  closeCode: number | undefined;
  closeReason: string | undefined;
}

export declare class RelayClient {
  constructor(options: RelayClientOptions);
  readonly nodeId: string;
  name: string | undefined;
  capabilities: string[];
  readonly state: ConnectionState;
  readonly peers: Map<string, Peer>;
  readonly meshId: string | null;
  readonly attempt: number;
  readonly pendingRequests: number;

  on<K extends keyof RelayClientEvents>(event: K, listener: (value: RelayClientEvents[K]) => void): () => void;
  once<K extends keyof RelayClientEvents>(event: K, listener: (value: RelayClientEvents[K]) => void): () => void;
  off<K extends keyof RelayClientEvents>(event: K, listener: (value: RelayClientEvents[K]) => void): void;
  waitFor<K extends keyof RelayClientEvents>(
    event: K,
    opts?: { filter?: (value: RelayClientEvents[K]) => boolean; timeoutMs?: number },
  ): Promise<RelayClientEvents[K]>;

  connect(): Promise<Session>;
  close(code?: number, reason?: string): Promise<void>;

  send(frame: { type: string; [member: string]: unknown }): void;
  broadcast(payload: unknown): void;
  direct(target: string, payload: unknown): void;
  updateCapabilities(capabilities: string[]): void;
  ping(opts?: { timeoutMs?: number }): Promise<number>;
  llmRequest(request: LLMRequest, opts?: RequestOptions): Promise<LLMResponseFrame>;
  chatRequest(request: LLMRequest, opts?: RequestOptions): Promise<LLMResponseFrame>;
  respond(request: { from: string; request_id: RequestId }, response: unknown, extra?: Record<string, unknown>): void;
}

export declare function defaultShouldReconnect(info: CloseInfo): boolean;
export declare function backoffDelay(
  attempt: number,
  policy: { initialDelayMs: number; maxDelayMs: number; factor: number },
  random: () => number,
): number;
export declare function meshUrl(relayUrl: string, meshId: string): string;
export declare function joinTokenSigningBytes(token: JoinTokenFields): Uint8Array;
export declare function signJoinToken(fields: JoinTokenFields, meshPrivateKey: CryptoKey): Promise<JoinToken>;
export declare function founderProof(meshId: string, privateKey: CryptoKey): Promise<string>;
export declare function exportPublicKey(publicKey: CryptoKey): Promise<string>;
