// Unit tests of the client against a scripted WebSocket and a fake clock: no sockets, no sleeps.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  RelayClient, RelayError, VERSION, backoffDelay, defaultShouldReconnect, meshUrl, joinTokenSigningBytes,
} from '../src/index.js';
import { FakeClock, FakeWebSocket, flush } from './helpers.js';
import { readFileSync } from 'node:fs';

function makeClient(extra = {}) {
  FakeWebSocket.reset();
  const clock = new FakeClock();
  const client = new RelayClient({
    url: 'ws://relay.test/relay/m', nodeId: 'me', WebSocket: FakeWebSocket, timers: clock, random: () => 0.5, ...extra,
  });
  return { client, clock };
}

async function connected(extra = {}, peers = []) {
  const { client, clock } = makeClient(extra);
  const p = client.connect();
  await flush();
  const ws = FakeWebSocket.last();
  ws.open();
  ws.accept(peers);
  const session = await p;
  return { client, clock, ws, session };
}

test('VERSION is package.json version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(VERSION, pkg.version);
});

test('meshUrl percent-encodes the mesh id as one path segment', () => {
  assert.equal(meshUrl('ws://h:1/', 'a/b c'), 'ws://h:1/relay/a%2Fb%20c');
  assert.throws(() => meshUrl('ws://h:1', ''), TypeError);
});

test('without a WebSocket constructor the error says what to pass', () => {
  const saved = globalThis.WebSocket;
  try {
    delete globalThis.WebSocket;
    assert.throws(() => new RelayClient({ url: 'ws://x/relay/m', nodeId: 'a' }), /from "ws"/);
  } finally {
    if (saved) globalThis.WebSocket = saved;
  }
});

test('the global WebSocket is used when none is passed', () => {
  const saved = globalThis.WebSocket;
  try {
    globalThis.WebSocket = FakeWebSocket;
    FakeWebSocket.reset();
    const c = new RelayClient({ url: 'ws://x/relay/m', nodeId: 'a', timers: new FakeClock() });
    c.connect().catch(() => {});
    return flush().then(() => assert.equal(FakeWebSocket.last().url, 'ws://x/relay/m'));
  } finally {
    globalThis.WebSocket = saved;
  }
});

test('register with a string token; connect resolves after joined + peers', async () => {
  const peers = [{ node_id: 'mac-1', name: 'My Mac', capabilities: ['llm'], joined_at: 1.5 }];
  const { client, ws, session } = await connected({ token: 'tok', capabilities: ['chat'], name: 'Me' }, peers);
  assert.deepEqual(ws.sent[0], { type: 'register', node_id: 'me', capabilities: ['chat'], name: 'Me', token: 'tok' });
  assert.equal(ws.binaryType, 'arraybuffer');
  assert.deepEqual(session, { meshId: 'm', nodeCount: 2, peers, reconnected: false });
  assert.equal(client.state, 'open');
  assert.deepEqual([...client.peers.keys()], ['mac-1']);
});

test('a signed join token is sent with join; no token sends none', async () => {
  const token = { mesh_id: 'm', node_id: 'me', expires_at: 2, issuer_id: 'i', nonce: 'n', signature: 's' };
  let { ws } = await connected({ token });
  assert.deepEqual(ws.sent[0], { type: 'join', node_id: 'me', capabilities: [], token });
  ({ ws } = await connected({}));
  assert.deepEqual(ws.sent[0], { type: 'register', node_id: 'me', capabilities: [] });
});

test('register_mesh for a founder', async () => {
  const { client, clock } = makeClient({
    name: 'My Mac', capabilities: ['llm'],
    registerMesh: { meshId: 'm', meshPublicKey: 'K', founderProof: 'P', meshName: 'Home' },
  });
  const p = client.connect();
  await flush();
  const ws = FakeWebSocket.last();
  ws.open();
  assert.deepEqual(ws.sent[0], {
    type: 'register_mesh', mesh_id: 'm', mesh_public_key: 'K', founder_proof: 'P', node_id: 'me',
    capabilities: ['llm'], name: 'Home', display_name: 'My Mac',
  });
  const seen = [];
  client.on('mesh_registered', (f) => seen.push(f));
  ws.deliver({ type: 'mesh_registered', mesh_id: 'm', success: true });
  ws.accept();
  await p;
  assert.equal(seen.length, 1);
  void clock;
});

test('a refused registration rejects connect with the relay code and does not reconnect', async () => {
  const { client, clock } = makeClient({ token: 'wrong' });
  const p = client.connect();
  await flush();
  const ws = FakeWebSocket.last();
  ws.open();
  ws.deliver({ type: 'error', code: 'auth_failed', message: 'this mesh is bound to another token' });
  ws.serverClose(1008, 'auth failed');
  await assert.rejects(p, (e) => e instanceof RelayError && e.code === 'auth_failed' && /another token/.test(e.message));
  await clock.advance(60000);
  assert.equal(FakeWebSocket.instances.length, 1);
});

test('an unreachable relay rejects the first connect with connect_failed', async () => {
  const { client } = makeClient();
  const p = client.connect();
  await flush();
  FakeWebSocket.last().fail();
  await assert.rejects(p, (e) => e.code === 'connect_failed' && e.closeCode === 1006);
});

test('an error event alone (no close, as Node 20 undici does) ends the attempt and the session', async () => {
  const { client, clock } = makeClient();
  const p = client.connect();
  await flush();
  FakeWebSocket.last().onerror({});
  await assert.rejects(p, (e) => e.code === 'connect_failed' && e.closeCode === 1006);
  const { client: c2, clock: clock2, ws } = await connected();
  const disc = c2.waitFor('disconnect');
  ws.onerror({});
  await clock2.advance(1000);
  assert.equal((await disc).code, 1006);
  void client; void clock;
});

test('no answer to the registration: timeout', async () => {
  const { client, clock } = makeClient({ registerTimeoutMs: 1000 });
  const p = client.connect();
  await flush();
  FakeWebSocket.last().open();
  const check = assert.rejects(p, (e) => e.code === 'timeout');
  await clock.advance(1000);
  await check;
});

test('peer_joined / peer_updated / peer_left keep the peer map and are emitted', async () => {
  const { client, ws } = await connected({}, [{ node_id: 'a', name: 'a', capabilities: [] }]);
  const events = [];
  for (const e of ['peer_joined', 'peer_updated', 'peer_left', 'message']) client.on(e, (v) => events.push([e, v]));
  ws.deliver({ type: 'peer_joined', node_id: 'b', name: 'Bee', capabilities: ['x'] });
  ws.deliver({ type: 'peer_updated', node_id: 'b', capabilities: ['llm'] });
  assert.deepEqual(client.peers.get('b').capabilities, ['llm']);
  ws.deliver({ type: 'peer_left', node_id: 'a' });
  ws.deliver({ type: 'message', from: 'b', payload: { hi: 1 } });
  assert.deepEqual([...client.peers.keys()], ['b']);
  assert.deepEqual(events.map((e) => e[0]), ['peer_joined', 'peer_updated', 'peer_left', 'message']);
  assert.deepEqual(events[3][1], { from: 'b', payload: { hi: 1 } });
});

test('broadcast, direct, capabilities_update and ping frames', async () => {
  const { client, ws } = await connected();
  client.broadcast({ message: 'hi' });
  client.broadcast();
  client.direct('b', 'x');
  client.updateCapabilities(['llm']);
  const pong = client.ping();
  assert.deepEqual(ws.sent.slice(1), [
    { type: 'broadcast', payload: { message: 'hi' } },
    { type: 'broadcast', payload: null },
    { type: 'direct', target: 'b', payload: 'x' },
    { type: 'capabilities_update', capabilities: ['llm'] },
    { type: 'ping' },
  ]);
  ws.deliver({ type: 'pong', timestamp: 12.5 });
  assert.equal(await pong, 12.5);
  assert.deepEqual(client.capabilities, ['llm']);
  assert.throws(() => client.direct('', 1), TypeError);
});

test('sending with no session open throws not_connected', async () => {
  const { client } = makeClient();
  assert.throws(() => client.broadcast(1), (e) => e.code === 'not_connected');
  await assert.rejects(client.llmRequest({ prompt: 'x' }), (e) => e.code === 'not_connected');
  await assert.rejects(client.ping(), (e) => e.code === 'not_connected');
  assert.equal(client.pendingRequests, 0);
});

test('llm requests are correlated by request_id, 42 and "42" apart', async () => {
  const { client, ws } = await connected();
  const a = client.llmRequest({ prompt: 'Hi', model: 'llama3.2', from: 'spoofed' }, { requestId: 42 });
  const b = client.chatRequest({ messages: [] }, { requestId: '42' });
  const c = client.llmRequest({ prompt: 'auto id' });
  assert.deepEqual(ws.sent[1], { type: 'llm_request', request_id: 42, prompt: 'Hi', model: 'llama3.2' });
  assert.equal(ws.sent[2].type, 'chat_request');
  const autoId = ws.sent[3].request_id;
  assert.match(autoId, /^me-1-[0-9a-f]{16}$/);
  await assert.rejects(client.llmRequest({}, { requestId: 42 }), (e) => e.code === 'bad_request');
  const streamed = [];
  client.on('llm_response', (f) => streamed.push(f.response));
  ws.deliver({ type: 'llm_response', from: 'mac', request_id: '42', response: 'string id' });
  ws.deliver({ type: 'llm_response', from: 'mac', request_id: 42, response: 'number id' });
  ws.deliver({ type: 'llm_response', from: 'mac', request_id: 42, response: 'chunk 2' });
  assert.equal((await a).response, 'number id');
  assert.equal((await b).response, 'string id');
  ws.deliver({ type: 'error', code: 'no_llm_peer', message: 'none', request_id: autoId });
  await assert.rejects(c, (e) => e.code === 'no_llm_peer' && e.requestId === autoId);
  assert.deepEqual(streamed, ['string id', 'number id', 'chunk 2']);
  assert.equal(client.pendingRequests, 0);
});

test('an llm request times out, and a late answer is only an event', async () => {
  const { client, clock, ws } = await connected({ requestTimeoutMs: 5000 });
  const p = client.llmRequest({ prompt: 'x' }, { requestId: 'r1' });
  const check = assert.rejects(p, (e) => e.code === 'timeout' && e.requestId === 'r1');
  await clock.advance(4999);
  assert.equal(client.pendingRequests, 1);
  await clock.advance(1);
  await check;
  let late = 0;
  client.on('llm_response', () => late++);
  ws.deliver({ type: 'llm_response', from: 'mac', request_id: 'r1', response: 'late' });
  assert.equal(late, 1);
});

test('pending requests and pings fail with disconnected when the connection drops', async () => {
  const { client, ws } = await connected();
  const p = client.llmRequest({ prompt: 'x' }, { requestId: 'r1' });
  const q = client.ping();
  ws.serverClose(1006);
  await assert.rejects(p, (e) => e.code === 'disconnected' && e.requestId === 'r1');
  await assert.rejects(q, (e) => e.code === 'disconnected');
});

test('incoming llm_request: onLLMRequest answers, a throw answers with an error', async () => {
  let fail = false;
  const { ws } = await connected({
    capabilities: ['llm'],
    onLLMRequest: async (req) => {
      if (fail) throw new Error('model not loaded');
      return `echo ${req.prompt}`;
    },
  });
  ws.deliver({ type: 'llm_request', from: 'phone', request_id: 7, prompt: 'hi', messages: [] });
  await flush();
  assert.deepEqual(ws.sent[1], { type: 'llm_response', target: 'phone', request_id: 7, response: 'echo hi' });
  fail = true;
  ws.deliver({ type: 'chat_request', from: 'phone', request_id: 'c', prompt: 'hi' });
  await flush();
  assert.deepEqual(ws.sent[2], { type: 'llm_response', target: 'phone', request_id: 'c', response: null, error: 'model not loaded', done: true });
});

test('respond() sends llm_response to the requester with extra members', async () => {
  const { client, ws } = await connected();
  client.respond({ from: 'phone', request_id: 'x' }, 'Hello!', { done: true, target: 'ignored' });
  assert.deepEqual(ws.sent[1], { type: 'llm_response', target: 'phone', request_id: 'x', response: 'Hello!', done: true });
});

test('errors carry code and message; unknown frames are handed over', async () => {
  const { client, ws } = await connected();
  const errors = [];
  const unknown = [];
  client.on('error', (e) => errors.push(e));
  client.on('unknown', (f) => unknown.push(f));
  ws.deliver({ type: 'error', code: 'unknown_target', message: 'no peer x in this mesh' });
  ws.deliver({ type: 'resumed', seq: 3 });
  ws.deliver('not json');
  assert.equal(errors[0].code, 'unknown_target');
  assert.equal(errors[0].message, 'no peer x in this mesh');
  assert.equal(errors[1].code, 'protocol');
  assert.deepEqual(unknown, [{ type: 'resumed', seq: 3 }]);
  assert.equal(client.state, 'open');
});

test('binary frames are decoded as UTF-8 JSON', async () => {
  const { client, ws } = await connected();
  const got = [];
  client.on('message', (m) => got.push(m));
  ws.onmessage({ data: new TextEncoder().encode('{"type":"message","from":"b","payload":"é"}').buffer });
  assert.deepEqual(got, [{ from: 'b', payload: 'é' }]);
});

test('backoffDelay is full jitter over an exponential window', () => {
  const policy = { initialDelayMs: 500, maxDelayMs: 30000, factor: 2 };
  assert.equal(backoffDelay(0, policy, () => 0.999999), 499);
  assert.equal(backoffDelay(3, policy, () => 0.5), 2000);
  assert.equal(backoffDelay(20, policy, () => 0.5), 15000);
  assert.equal(backoffDelay(5, policy, () => 0), 0);
});

test('reconnect: backoff grows per failed attempt, resets after a session', async () => {
  const { client, clock, ws } = await connected({ reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } });
  const delays = [];
  client.on('reconnecting', (r) => delays.push(r.delayMs));
  ws.serverClose(1006);
  await flush();
  for (let i = 0; i < 5; i++) {
    await clock.advance(delays[delays.length - 1]);
    FakeWebSocket.last().fail();
    await flush();
  }
  // random() = 0.5: half of 100, 200, 400, 800, 1000 (capped), 1000.
  assert.deepEqual(delays, [50, 100, 200, 400, 500, 500]);
  await clock.advance(500);
  const reopened = client.waitFor('open');
  FakeWebSocket.last().open();
  FakeWebSocket.last().accept();
  const session = await reopened;
  assert.equal(session.reconnected, true);
  assert.equal(client.attempt, 0);
  assert.equal(FakeWebSocket.last().sent[0].type, 'register');
  FakeWebSocket.last().serverClose(1006);
  await flush();
  assert.equal(delays[delays.length - 1], 50);
});

test('server_draining: the next reconnect waits reconnect_after_ms, once', async () => {
  const { client, clock, ws } = await connected();
  const seen = [];
  client.on('server_draining', (d) => seen.push(d));
  const delays = [];
  client.on('reconnecting', (r) => delays.push(r.delayMs));
  ws.deliver({ type: 'server_draining', grace_seconds: 20, reconnect_after_ms: 1873 });
  assert.deepEqual(seen, [{ graceSeconds: 20, reconnectAfterMs: 1873 }]);
  assert.equal(client.state, 'open'); // the connection keeps working during the grace
  ws.serverClose(1001, 'server shutting down');
  await flush();
  assert.deepEqual(delays, [1873]);
  await clock.advance(1872);
  assert.equal(FakeWebSocket.instances.length, 1);
  await clock.advance(1);
  assert.equal(FakeWebSocket.instances.length, 2);
  FakeWebSocket.last().fail(); // the new relay is not up yet: ordinary backoff again
  await flush();
  assert.equal(delays[1], 500); // attempt 1's window: 2 x 500 ms, times random() = 0.5
});

test('no reconnect after replaced, auth failed, kicked, mesh closed', async () => {
  for (const [code, reason] of [[1000, 'replaced'], [1008, 'auth failed'], [1008, 'kicked'], [1008, 'mesh closed']]) {
    const { client, clock, ws } = await connected();
    const closed = client.waitFor('close');
    ws.serverClose(code, reason);
    assert.deepEqual(await closed, { code, reason, error: undefined });
    await clock.advance(120000);
    assert.equal(FakeWebSocket.instances.length, 1, reason);
    assert.equal(client.state, 'closed');
  }
  for (const [code, reason] of [[1001, 'server shutting down'], [1012, 'service restart'], [1013, 'slow consumer'], [1008, 'rate limited']]) {
    assert.equal(defaultShouldReconnect({ code, reason }), true, reason);
  }
});

test('a reconnect refused with auth_failed stops; node_id_in_use is retried', async () => {
  const { client, clock, ws } = await connected();
  ws.serverClose(1006);
  await flush();
  await clock.advance(250);
  let s = FakeWebSocket.last();
  s.open();
  s.deliver({ type: 'error', code: 'node_id_in_use', message: 'held' });
  await flush();
  assert.equal(client.state, 'reconnecting');
  await clock.advance(500);
  s = FakeWebSocket.last();
  assert.equal(FakeWebSocket.instances.length, 3);
  const closed = client.waitFor('close');
  s.open();
  s.deliver({ type: 'error', code: 'auth_failed', message: 'bound' });
  const info = await closed;
  assert.equal(info.error.code, 'auth_failed');
  await clock.advance(120000);
  assert.equal(FakeWebSocket.instances.length, 3);
});

test('maxAttempts gives up with close', async () => {
  const { client, clock, ws } = await connected({ reconnect: { maxAttempts: 2 } });
  const closed = client.waitFor('close');
  ws.serverClose(1006);
  await flush();
  for (let i = 0; i < 2; i++) {
    await clock.advance(30000);
    FakeWebSocket.last().fail();
    await flush();
  }
  await closed;
  assert.equal(FakeWebSocket.instances.length, 3);
});

test('close() stops reconnecting and fails what is pending with closed', async () => {
  const { client, clock, ws } = await connected();
  const p = client.llmRequest({ prompt: 'x' });
  await client.close();
  await assert.rejects(p, (e) => e.code === 'closed');
  assert.deepEqual(ws.closedWith, { code: 1000, reason: 'client closed' });
  await clock.advance(120000);
  assert.equal(FakeWebSocket.instances.length, 1);
  await assert.rejects(client.connect(), (e) => e.code === 'closed');
});

test('close() during a reconnect wait cancels it', async () => {
  const { client, clock, ws } = await connected();
  ws.serverClose(1006);
  await flush();
  await client.close();
  await clock.advance(120000);
  assert.equal(FakeWebSocket.instances.length, 1);
  assert.equal(client.state, 'closed');
});

test('url may be a function, called for every attempt', async () => {
  let n = 0;
  const { client, clock, ws } = await connected({ url: () => `ws://r${++n}/relay/m` });
  assert.equal(ws.url, 'ws://r1/relay/m');
  ws.serverClose(1006);
  await flush();
  await clock.advance(250);
  await flush();
  assert.equal(FakeWebSocket.last().url, 'ws://r2/relay/m');
  void client;
});

test('resume hooks see the registration, every frame, the session and the disconnect', async () => {
  const calls = [];
  const resume = {
    beforeRegister: (msg, ctx) => { calls.push(['beforeRegister', ctx.reconnect]); return { ...msg, resume_hint: 'x' }; },
    onFrame: (frame) => { calls.push(['onFrame', frame.type]); return frame.type === 'resumed'; },
    onSessionStart: () => calls.push(['onSessionStart']),
    onDisconnect: ({ code }) => { calls.push(['onDisconnect', code]); return { keepPendingRequests: true }; },
  };
  const { client, ws } = await connected({ resume });
  assert.equal(ws.sent[0].resume_hint, 'x');
  let unknown = 0;
  client.on('unknown', () => unknown++);
  ws.deliver({ type: 'resumed' });
  assert.equal(unknown, 0);
  client.llmRequest({ prompt: 'x' }).catch(() => {});
  ws.serverClose(1006);
  await flush();
  assert.equal(client.pendingRequests, 1); // kept, as the hook asked
  assert.deepEqual(calls, [
    ['beforeRegister', false], ['onFrame', 'joined'], ['onFrame', 'peers'], ['onSessionStart'], ['onFrame', 'resumed'],
    ['onDisconnect', 1006],
  ]);
  await client.close();
});

test('a throwing listener does not break the client', async () => {
  const { client, clock, ws } = await connected();
  const got = [];
  client.on('message', () => { throw new Error('listener bug'); });
  client.on('message', (m) => got.push(m));
  ws.deliver({ type: 'message', from: 'b', payload: 1 });
  assert.equal(got.length, 1);
  assert.throws(() => clock.timers.values().next().value.fn(), /listener bug/);
});

test('waitFor filters and times out', async () => {
  const { client, clock, ws } = await connected();
  const p = client.waitFor('message', { filter: (m) => m.payload === 2, timeoutMs: 100 });
  ws.deliver({ type: 'message', from: 'b', payload: 1 });
  ws.deliver({ type: 'message', from: 'b', payload: 2 });
  assert.equal((await p).payload, 2);
  const q = client.waitFor('message', { timeoutMs: 100 });
  const check = assert.rejects(q, (e) => e.code === 'timeout');
  await clock.advance(100);
  await check;
});

test('join token signing bytes are what Python json.dumps writes', () => {
  // Expected strings written by Python 3: json.dumps({...}, sort_keys=True, separators=(",", ":")).
  const bytes = joinTokenSigningBytes({
    mesh_id: 'hé', node_id: null, issued_at: 1764120000.25, expires_at: 1764206400,
    capabilities: ['b', 'a', '\u{1F600}', '\uffff', 'q"\\\n\x7f'], issuer_id: 'x', nonce: 'n',
  });
  assert.equal(new TextDecoder().decode(bytes),
    '{"capabilities":["a","b","q\\"\\\\\\n\\u007f","\\uffff","\\ud83d\\ude00"],"expires_at":1764206400,' +
    '"issued_at":1764120000.25,"issuer_id":"x","mesh_id":"h\\u00e9","node_id":null,"nonce":"n"}');
  const num = (n) => new TextDecoder().decode(joinTokenSigningBytes({ expires_at: n })).match(/"expires_at":([^,]*)/)[1];
  assert.deepEqual([1e16 + 0.5, 1.5e16 + 2, 123456789012345.6, 0.0001, 0.00001, -2.5, 3.14e300].map(num),
    ['1e+16', '1.5000000000000002e+16', '123456789012345.6', '0.0001', '1e-05', '-2.5', '3.14e+300']);
});

test('a hostile relay or peer: bad frames, foreign answers and odd members break nothing', async () => {
  const { client, ws } = await connected();
  const errors = [];
  client.on('error', (e) => errors.push(e.code));
  const p = client.llmRequest({ prompt: 'x' }, { requestId: 'mine' });
  for (const bad of ['', '[]', 'null', '42', '{"type":7}', '{"no":"type"}', '{"type":"peer_joined"}',
    '{"type":"peers","peers":"nope"}', '{"type":"error"}', '{"type":"__proto__","x":1}',
    '{"type":"peer_left","node_id":{"toString":1}}', '{"type":"server_draining","reconnect_after_ms":-5}']) {
    ws.deliver(bad);
  }
  ws.deliver({ type: 'llm_response', from: 'eve', request_id: 'not-mine', response: 'forged' });
  ws.deliver({ type: 'llm_response', from: 'eve', request_id: ['mine'], response: 'forged' });
  assert.equal(client.pendingRequests, 1);
  ws.deliver({ type: 'llm_response', from: 'mac', request_id: 'mine', response: 'real' });
  assert.equal((await p).response, 'real');
  assert.equal(client.state, 'open');
  assert.ok(errors.includes('protocol'));
  assert.ok(errors.includes('unknown')); // an error frame without a code
  client.broadcast('still works');
  assert.equal(ws.sent[ws.sent.length - 1].payload, 'still works');
});

test('connect() while reconnecting waits for that session; a failing url function is connect_failed', async () => {
  const { client, clock, ws } = await connected();
  ws.serverClose(1006);
  await flush();
  const again = client.connect();
  await clock.advance(250);
  FakeWebSocket.last().open();
  FakeWebSocket.last().accept();
  assert.equal((await again).reconnected, true);
  assert.equal(FakeWebSocket.instances.length, 2);
  const { client: c2 } = makeClient({ url: () => { throw new Error('no config'); } });
  await assert.rejects(c2.connect(), (e) => e.code === 'connect_failed' && /no config/.test(e.message));
});

test('resume: numbers what it sends, drops a repeated frame, acks every 32 frames or after 100 ms', async () => {
  const { client, clock } = makeClient({ resume: true });
  const p = client.connect();
  await flush();
  const ws = FakeWebSocket.last();
  ws.open();
  assert.deepEqual(ws.sent[0], { type: 'register', node_id: 'me', capabilities: [], resume: true });
  ws.deliver({ type: 'joined', mesh_id: 'm', node_count: 1, session: { id: 'S', window_seconds: 60 } });
  ws.deliver({ type: 'peers', peers: [], seq: 1 });
  await p;
  client.broadcast('a');
  client.direct('x', 'b');
  assert.deepEqual(ws.sent.slice(1), [
    { type: 'broadcast', payload: 'a', seq: 1 },
    { type: 'direct', target: 'x', payload: 'b', seq: 2 },
  ]);
  const got = [];
  client.on('message', (m) => got.push(m.payload));
  ws.deliver({ type: 'message', from: 'x', payload: 1, seq: 2 });
  ws.deliver({ type: 'message', from: 'x', payload: 1, seq: 2 }); // a repeat: dropped
  assert.deepEqual(got, [1]);
  await clock.advance(100);
  assert.deepEqual(ws.sent.at(-1), { type: 'ack', seq: 2 });
  for (let seq = 3; seq <= 34; seq++) ws.deliver({ type: 'message', from: 'x', payload: seq, seq });
  assert.deepEqual(ws.sent.at(-1), { type: 'ack', seq: 34 });
  // The relay's ack lets it forget what it sent.
  ws.deliver({ type: 'ack', seq: 2 });
  ws.fail();
  await flush();
  // While down, what it sends waits for the session.
  client.broadcast('c');
  await clock.advance(1000);
  const again = FakeWebSocket.last();
  assert.notEqual(again, ws);
  again.open();
  assert.deepEqual(again.sent[0], {
    type: 'register', node_id: 'me', capabilities: [], resume: { session: 'S', last_seq: 34 },
  });
  again.deliver({ type: 'resumed', session: { id: 'S', window_seconds: 60 }, last_seq: 2, replayed: 0 });
  await flush();
  assert.deepEqual(again.sent.slice(1), [{ type: 'broadcast', payload: 'c', seq: 3 }]);
  assert.equal(client.state, 'open');
  await client.close();
});
