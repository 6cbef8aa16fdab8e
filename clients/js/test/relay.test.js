// The client against the real relay binary (RELAY_BIN; CTest passes the one it built), over the
// npm `ws` package by default, or Node's global WebSocket with RELAY_JS_WEBSOCKET=global.
// Without RELAY_BIN these tests are skipped, unless CI is set (then they fail).
import test, { before, after } from 'node:test';
import { webcrypto } from 'node:crypto';
import assert from 'node:assert/strict';
import {
  RelayClient, RelayError, founderProof, signJoinToken, exportPublicKey,
} from '../src/index.js';
import { relayBin, startRelay, until } from './helpers.js';

const BIN = relayBin();
const skip = BIN ? false : 'RELAY_BIN is not set (CTest sets it; CI=1 makes this a failure)';

async function webSocketImpl() {
  if (process.env.RELAY_JS_WEBSOCKET === 'global') {
    if (typeof globalThis.WebSocket !== 'function') throw new Error('RELAY_JS_WEBSOCKET=global but this Node has no global WebSocket');
    return undefined; // the client finds it itself
  }
  const { WebSocket } = await import('ws');
  return WebSocket;
}
const WS = BIN ? await webSocketImpl() : undefined;

let relay;
const clients = [];
let meshCounter = 0;
const freshMesh = (label) => `js-${label}-${process.pid}-${++meshCounter}`;

function client(opts) {
  const c = new RelayClient({ WebSocket: WS, reconnect: false, requestTimeoutMs: 5000, ...opts });
  clients.push(c);
  return c;
}

before(async () => {
  if (!skip) relay = await startRelay();
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  if (relay) {
    const { code } = await relay.stop();
    assert.equal(code, 0, `the relay must exit 0 after SIGTERM; stderr: ${relay.stderr()}`);
  }
});

test('register, peers, peer_joined, broadcast, direct, peer_left', { skip }, async () => {
  const mesh = freshMesh('flow');
  const mac = client({ url: relay.meshUrl(mesh), nodeId: 'mac-1', name: 'My Mac', capabilities: ['llm', 'chat'] });
  const s1 = await mac.connect();
  assert.deepEqual(s1, { meshId: mesh, nodeCount: 1, peers: [], reconnected: false });
  const joined = mac.waitFor('peer_joined', { timeoutMs: 5000 });
  const phone = client({ relayUrl: relay.url, meshId: mesh, nodeId: 'android-1' });
  const s2 = await phone.connect();
  assert.equal(s2.nodeCount, 2);
  assert.deepEqual(s2.peers.map((p) => [p.node_id, p.name, p.capabilities]), [['mac-1', 'My Mac', ['llm', 'chat']]]);
  assert.equal(typeof s2.peers[0].joined_at, 'number');
  assert.deepEqual(await joined, { node_id: 'android-1', name: 'android-', capabilities: [] });

  const got = mac.waitFor('message', { timeoutMs: 5000 });
  phone.broadcast({ message: 'Hello everyone!' });
  assert.deepEqual(await got, { from: 'android-1', payload: { message: 'Hello everyone!' } });

  const dm = phone.waitFor('message', { timeoutMs: 5000 });
  mac.direct('android-1', { message: 'Hello specific peer!' });
  assert.deepEqual(await dm, { from: 'mac-1', payload: { message: 'Hello specific peer!' } });

  const left = mac.waitFor('peer_left', { timeoutMs: 5000 });
  await phone.close();
  assert.deepEqual(await left, { node_id: 'android-1' });
  assert.equal(mac.peers.size, 0);
});

test('llm_request routed to the llm peer and answered; chat_request; no_llm_peer', { skip }, async () => {
  const mesh = freshMesh('llm');
  const requester = client({ url: relay.meshUrl(mesh), nodeId: 'phone' });
  await requester.connect();
  await assert.rejects(requester.llmRequest({ prompt: 'anyone?' }, { requestId: 42 }),
    (e) => e instanceof RelayError && e.code === 'no_llm_peer' && e.requestId === 42 && e.message.length > 0);

  const seen = [];
  const mac = client({
    url: relay.meshUrl(mesh), nodeId: 'mac', capabilities: ['llm'],
    onLLMRequest: (req) => {
      seen.push(req);
      return `You said: ${req.messages[0].content}`;
    },
  });
  await mac.connect();
  const answer = await requester.llmRequest({ prompt: 'What is the meaning of life?', model: 'llama3.2', options: { t: 1 } });
  assert.equal(answer.from, 'mac');
  assert.equal(answer.response, 'You said: What is the meaning of life?');
  assert.deepEqual(Object.keys(seen[0]), ['type', 'from', 'request_id', 'prompt', 'model', 'options', 'messages']);
  assert.equal(seen[0].from, 'phone');

  const chat = await requester.chatRequest({ messages: [{ role: 'user', content: 'hi' }] }, { requestId: '42' });
  assert.equal(chat.request_id, '42');
  assert.equal(seen[1].type, 'chat_request');
});

test('an unanswered request times out; a holder that leaves fails it with llm_peer_left', { skip }, async () => {
  const mesh = freshMesh('timeout');
  const silent = client({ url: relay.meshUrl(mesh), nodeId: 'silent', capabilities: ['llm'] });
  await silent.connect();
  const requester = client({ url: relay.meshUrl(mesh), nodeId: 'phone' });
  await requester.connect();
  const received = silent.waitFor('llm_request', { timeoutMs: 5000 });
  await assert.rejects(requester.llmRequest({ prompt: 'x' }, { timeoutMs: 300 }), (e) => e.code === 'timeout');
  await received;
  const pending = assert.rejects(requester.llmRequest({ prompt: 'y' }, { requestId: 'held' }),
    (e) => e.code === 'llm_peer_left' && e.requestId === 'held');
  await silent.waitFor('llm_request', { timeoutMs: 5000 });
  await silent.close();
  await pending;
});

test('errors carry the relay code and message; the connection stays open', { skip }, async () => {
  const mesh = freshMesh('errors');
  const c = client({ url: relay.meshUrl(mesh), nodeId: 'a' });
  await c.connect();
  const errs = [];
  c.on('error', (e) => errs.push(e));
  c.direct('nobody', 1);
  c.send({ type: 'hello' });
  c.send({ type: 'direct' });
  await until(() => errs.length === 3, '3 errors');
  assert.deepEqual(errs.map((e) => e.code), ['unknown_target', 'unknown_type', 'bad_message']);
  for (const e of errs) assert.ok(e.message.length > 0);
  assert.equal(typeof (await c.ping()), 'number');
  assert.equal(c.state, 'open');
});

test('capabilities_update reaches the others as peer_updated and steers routing', { skip }, async () => {
  const mesh = freshMesh('caps');
  const a = client({ url: relay.meshUrl(mesh), nodeId: 'a' });
  const b = client({ url: relay.meshUrl(mesh), nodeId: 'b', onLLMRequest: () => 'from b' });
  await a.connect();
  await b.connect();
  const upd = a.waitFor('peer_updated', { timeoutMs: 5000 });
  b.updateCapabilities(['llm', 'vision']);
  assert.deepEqual(await upd, { node_id: 'b', capabilities: ['llm', 'vision'] });
  assert.deepEqual(a.peers.get('b').capabilities, ['llm', 'vision']);
  assert.equal((await a.llmRequest({ prompt: 'x' })).response, 'from b');
});

test('a token-bound mesh refuses another token: auth_failed, and no reconnect', { skip }, async () => {
  const mesh = freshMesh('token');
  const owner = client({ url: relay.meshUrl(mesh), nodeId: 'owner', token: 'secret-1' });
  await owner.connect();
  const intruder = client({ url: relay.meshUrl(mesh), nodeId: 'intruder', token: 'guess', reconnect: true });
  await assert.rejects(intruder.connect(), (e) => e.code === 'auth_failed');
  const member = client({ url: relay.meshUrl(mesh), nodeId: 'member', token: 'secret-1' });
  assert.equal((await member.connect()).nodeCount, 2);
});

test('takeover: the replaced connection closes 1000 and does not reconnect', { skip }, async () => {
  const mesh = freshMesh('takeover');
  const first = client({ url: relay.meshUrl(mesh), nodeId: 'phone', token: 't', reconnect: true });
  await first.connect();
  const closed = first.waitFor('close', { timeoutMs: 5000 });
  const second = client({ url: relay.meshUrl(mesh), nodeId: 'phone', token: 't' });
  await second.connect();
  const info = await closed;
  assert.equal(info.code, 1000);
  assert.equal(info.reason, 'replaced');
  assert.equal(first.state, 'closed');
  assert.equal(second.state, 'open');
});

test('signed mesh: founder by register_mesh, member by a join token signed here', { skip }, async () => {
  const mesh = freshMesh('signed');
  const key = await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const founder = client({
    url: relay.meshUrl(mesh), nodeId: 'mac-1', name: 'My Mac', capabilities: ['llm'],
    registerMesh: { meshId: mesh, meshPublicKey: await exportPublicKey(key.publicKey), founderProof: await founderProof(mesh, key.privateKey), meshName: 'Home' },
  });
  const registered = founder.waitFor('mesh_registered');
  await founder.connect();
  assert.deepEqual(await registered, { type: 'mesh_registered', mesh_id: mesh, success: true });

  const now = Math.floor(Date.now() / 1000);
  const token = await signJoinToken({
    mesh_id: mesh, node_id: 'phöne-1', issued_at: now + 0.25, expires_at: now + 3600,
    capabilities: ['chat', 'b'], issuer_id: 'mac-1', nonce: `n-${process.pid}-ü`,
  }, key.privateKey);
  const phone = client({ url: relay.meshUrl(mesh), nodeId: 'phöne-1', token });
  const s = await phone.connect();
  assert.deepEqual(s.peers.map((p) => p.node_id), ['mac-1']);

  const forged = client({ url: relay.meshUrl(mesh), nodeId: 'phone-2', token: { ...token, node_id: 'phone-2' } });
  await assert.rejects(forged.connect(), (e) => e.code === 'auth_failed');
});

test('drain: server_draining, close 1001, reconnect after reconnect_after_ms to the next relay; pending requests fail', { skip }, async () => {
  const mesh = freshMesh('drain');
  const first = await startRelay();
  const second = await startRelay();
  let target = first;
  try {
    const holder = client({ url: first.meshUrl(mesh), nodeId: 'holder', capabilities: ['llm'] });
    await holder.connect();
    const c = client({ url: () => target.meshUrl(mesh), nodeId: 'phone', reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } });
    await c.connect();
    const pending = assert.rejects(c.llmRequest({ prompt: 'never answered' }, { timeoutMs: 30000 }), (e) => e.code === 'disconnected');
    await holder.waitFor('llm_request', { timeoutMs: 5000 });
    const draining = c.waitFor('server_draining', { timeoutMs: 5000 });
    const disconnected = c.waitFor('disconnect', { timeoutMs: 10000 });
    const reopened = c.waitFor('open', { timeoutMs: 20000 });
    const stopped = first.stop();
    const hint = await draining;
    assert.equal(hint.graceSeconds, 1);
    assert.ok(hint.reconnectAfterMs >= 0 && hint.reconnectAfterMs < 5000, JSON.stringify(hint));
    target = second;
    const d = await disconnected;
    const closedAt = Date.now();
    assert.equal(d.code, 1001);
    assert.equal(d.willReconnect, true);
    assert.equal(d.delayMs, hint.reconnectAfterMs);
    await pending;
    const session = await reopened;
    assert.ok(Date.now() - closedAt >= hint.reconnectAfterMs - 20, 'reconnected before reconnect_after_ms');
    assert.equal(session.reconnected, true);
    assert.equal((await stopped).code, 0);
    const peer = client({ url: second.meshUrl(mesh), nodeId: 'checker' });
    assert.deepEqual((await peer.connect()).peers.map((p) => p.node_id), ['phone']);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await first.stop();
    const { code } = await second.stop();
    assert.equal(code, 0);
  }
});

test('an unreachable relay: the first connect fails with connect_failed', { skip }, async () => {
  const gone = await startRelay();
  const url = gone.meshUrl('m');
  await gone.stop();
  await assert.rejects(client({ url, nodeId: 'a' }).connect(), (e) => e.code === 'connect_failed');
});

test('a stranger cannot spoof from: the relay sets it', { skip }, async () => {
  const mesh = freshMesh('spoof');
  const a = client({ url: relay.meshUrl(mesh), nodeId: 'a' });
  const b = client({ url: relay.meshUrl(mesh), nodeId: 'b' });
  await a.connect();
  await b.connect();
  const got = a.waitFor('message', { timeoutMs: 5000 });
  b.send({ type: 'broadcast', from: 'a', payload: 'forged' });
  assert.deepEqual(await got, { from: 'b', payload: 'forged' });
});

// Cutting the TCP connection under the client (no close frame, as a network change does) needs
// the `ws` package's socket; Node's global WebSocket does not expose one.
const skipCut = skip || (process.env.RELAY_JS_WEBSOCKET === 'global' ? 'needs ws to cut the socket' : false);

test('resume: a dropped connection resumes its session; nothing lost or repeated, nobody sees it leave', { skip: skipCut }, async () => {
  const mesh = freshMesh('resume');
  const mac = client({ url: relay.meshUrl(mesh), nodeId: 'mac-1' });
  await mac.connect();
  const phone = client({
    url: relay.meshUrl(mesh), nodeId: 'phone-1', resume: true, reconnect: { initialDelayMs: 50, maxDelayMs: 100 },
  });
  const phoneJoined = mac.waitFor('peer_joined', { timeoutMs: 5000 });
  await phone.connect();
  await phoneJoined;
  const presence = [];
  mac.on('peer_left', (p) => presence.push(['left', p.node_id]));
  mac.on('peer_joined', (p) => presence.push(['joined', p.node_id]));
  const phoneGot = [];
  phone.on('message', (m) => phoneGot.push(m.payload));
  const macGot = [];
  mac.on('message', (m) => macGot.push(m.payload));
  for (let i = 0; i < 20; i++) mac.direct('phone-1', i);
  await until(() => phoneGot.length === 20, 'the first 20 directs');

  const resumed = phone.waitFor('resumed', { timeoutMs: 5000 });
  phone._ws._socket.destroy(); // the network goes: no close frame
  for (let i = 20; i < 40; i++) mac.direct('phone-1', i);
  for (let i = 0; i < 10; i++) phone.direct('mac-1', i); // into the dead socket, or waiting
  const answer = await resumed;
  assert.equal(typeof answer.replayed, 'number');
  await until(() => phoneGot.length >= 40 && macGot.length >= 10, 'every direct, both ways');
  await new Promise((r) => setTimeout(r, 300)); // anything repeated would show by now
  assert.deepEqual(phoneGot, [...Array(40).keys()]);
  assert.deepEqual(macGot, [...Array(10).keys()]);
  assert.deepEqual(presence, []);
  assert.deepEqual([...phone.peers.keys()], ['mac-1']);
  assert.equal(phone.state, 'open');
});

test('resume: past the window the session is gone: resume_failed, a fresh session, the others saw it leave', { skip: skipCut }, async () => {
  const short = await startRelay(['--resume-window-seconds', '1']);
  try {
    const mesh = freshMesh('resume-window');
    const mac = client({ url: short.meshUrl(mesh), nodeId: 'mac-1' });
    await mac.connect();
    const phone = client({
      url: short.meshUrl(mesh), nodeId: 'phone-1', resume: true,
      reconnect: { initialDelayMs: 2500, maxDelayMs: 2500 }, random: () => 1,
    });
    const joined = mac.waitFor('peer_joined', { timeoutMs: 5000 });
    await phone.connect();
    await joined;
    const left = mac.waitFor('peer_left', { timeoutMs: 5000 });
    const failed = phone.waitFor('resume_failed', { timeoutMs: 8000 });
    phone._ws._socket.destroy();
    assert.deepEqual(await left, { node_id: 'phone-1' });
    const back = mac.waitFor('peer_joined', { timeoutMs: 8000 });
    assert.deepEqual(await failed, { unsent: 0 });
    await back;
    const got = phone.waitFor('message', { timeoutMs: 5000 });
    mac.direct('phone-1', 'again');
    assert.deepEqual(await got, { from: 'mac-1', payload: 'again' });
    await phone.close();
    await mac.close();
  } finally {
    await short.stop();
  }
});
