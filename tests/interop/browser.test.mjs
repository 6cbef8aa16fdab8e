// Browser interop: headless Chromium (Debian's /usr/bin/chromium, CHROMIUM_BIN) driven by
// puppeteer-core, two pages and a Node client (npm `ws`) on the real relay (RELAY_BIN), running the
// seed's flows: register, peers, broadcast, direct, an llm request routed to an llm-capable peer
// and answered (both ways: a browser asks the Node peer, the Node client asks a browser), errors,
// drain and reconnect. Page A is the example page (clients/js/examples/) driven through its form,
// as a person would; page B uses the module directly. Run by tests/interop/js.sh browser.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { readFile, realpath } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { startRelay, until } from '../../clients/js/test/helpers.js';
import { RelayClient } from '../../clients/js/src/index.js';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../clients/js');
// The dev dependencies live in clients/js/node_modules (npm ci from its package-lock.json).
const require = createRequire(path.join(pkgDir, 'package.json'));
const puppeteer = require('puppeteer-core');
const { WebSocket } = require('ws');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const T = 10000;
// waitForFunction polls by requestAnimationFrame unless told otherwise, and a page that is not in
// front gets no animation frames: every wait below polls by time (polling: 50).

/** Serves clients/js (the module and the example page) on 127.0.0.1, port 0. */
async function startStaticServer() {
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.json': 'application/json' };
  const root = await realpath(pkgDir);
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/blank.html') {
      res.writeHead(200, { 'content-type': types['.html'] });
      res.end('<!doctype html><title>blank</title>');
      return;
    }
    let file = path.join(root, decodeURIComponent(url.pathname));
    if (file.endsWith('/')) file += 'index.html';
    try {
      file = await realpath(file);
      if (!file.startsWith(root + path.sep) || file.includes(`${path.sep}node_modules${path.sep}`)) throw new Error('outside');
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

test('two Chromium pages and a Node client through the real relay', async (t) => {
  const relay1 = await startRelay();
  const relay2 = await startRelay();
  const web = await startStaticServer();
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // --no-sandbox: in a container (or as root, which CI runs as) Chromium's setuid/namespace
    // sandbox cannot start and Chromium exits with "No usable sandbox!". The pages load only this
    // test's own files from 127.0.0.1 and talk only to the local relay, so the sandbox would
    // protect nothing here. Never browse the open web with this flag.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run'],
  });
  const nodeClients = [];
  let relay1Gone = false;
  const pageErrors = [];
  t.after(async () => {
    await Promise.all(nodeClients.map((c) => c.close()));
    await browser.close();
    web.server.close();
    await relay1.stop();
    await relay2.stop();
  });

  const mesh = `browser-mesh-${process.pid}`;
  const relayUrl = () => relay1.url;
  let nodeTarget = relay1;

  // The Node peer: llm-capable, answers with the prompt; reconnects to wherever nodeTarget is.
  const nodeLLM = new RelayClient({
    url: () => nodeTarget.meshUrl(mesh), nodeId: 'node-1', name: 'Node', capabilities: ['llm'], WebSocket,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
    onLLMRequest: (req) => `node answers: ${req.prompt}`,
  });
  nodeClients.push(nodeLLM);
  await nodeLLM.connect();

  // Page A: the example page, joined through its form.
  const pageA = await browser.newPage();
  pageA.on('pageerror', (e) => pageErrors.push(`A: ${e.message}`));
  pageA.on('console', (m) => {
    // After relay 1 is gone, Chromium logs each of page A's refused reconnects: expected.
    if (m.type() !== 'error' || (relay1Gone && /^WebSocket connection to .* failed/.test(m.text()))) return;
    pageErrors.push(`A console: ${m.text()}`);
  });
  await pageA.goto(`${web.base}/examples/index.html`);
  await pageA.$eval('#relay', (el, v) => { el.value = v; }, relayUrl());
  await pageA.$eval('#mesh', (el, v) => { el.value = v; }, mesh);
  await pageA.$eval('#node', (el) => { el.value = 'page-a'; });
  await pageA.type('#name', 'Page A');
  await pageA.click('#join');
  await pageA.waitForSelector('#status[data-state=open]', { timeout: T });
  await pageA.waitForSelector('#peers li[data-node-id="node-1"]', { timeout: T });

  // Page B: the module, scripted.
  const pageB = await browser.newPage();
  pageB.on('pageerror', (e) => pageErrors.push(`B: ${e.message}`));
  await pageB.goto(`${web.base}/blank.html`);
  const sessionB = await pageB.evaluate(async (url, meshId) => {
    const m = await import('/src/index.js');
    window.relayUrl = url;
    window.events = { message: [], error: [], server_draining: [], open: [], disconnect: [] };
    const c = new m.RelayClient({
      url: () => `${window.relayUrl}/relay/${encodeURIComponent(meshId)}`,
      nodeId: 'page-b', name: 'Page B', reconnect: { initialDelayMs: 100, maxDelayMs: 1000 }, requestTimeoutMs: 10000,
    });
    for (const e of Object.keys(window.events)) c.on(e, (v) => window.events[e].push(e === 'error' ? { code: v.code, message: v.message, requestId: v.requestId } : v));
    window.client = c;
    window.VERSION = m.VERSION;
    return c.connect();
  }, relayUrl(), mesh);
  assert.deepEqual(sessionB.peers.map((p) => p.node_id), ['node-1', 'page-a']);
  assert.equal(sessionB.nodeCount, 3);
  await pageA.waitForSelector('#peers li[data-node-id="page-b"]', { timeout: T });
  assert.match(await pageA.$eval('#peers li[data-node-id="page-b"]', (el) => el.textContent), /Page B/);

  // Broadcast from page A's form reaches page B and the Node client.
  const nodeGotBroadcast = nodeLLM.waitFor('message', { timeoutMs: T });
  // Input goes to the page in front: page B was opened last.
  await pageA.bringToFront();
  await pageA.type('#text', 'hello from A');
  await pageA.click('#send');
  await pageB.waitForFunction(() => window.events.message.length === 1, { timeout: T, polling: 50 });
  assert.deepEqual(await pageB.evaluate(() => window.events.message[0]), { from: 'page-a', payload: { message: 'hello from A' } });
  assert.deepEqual(await nodeGotBroadcast, { from: 'page-a', payload: { message: 'hello from A' } });

  // Direct from page B to page A shows in A's log; from Node to page B.
  await pageB.evaluate(() => window.client.direct('page-a', { message: 'psst, A' }));
  await pageA.waitForFunction(() => document.getElementById('log').textContent.includes('page-b: psst, A'), { timeout: T, polling: 50 });
  nodeLLM.direct('page-b', { n: 1 });
  await pageB.waitForFunction(() => window.events.message.some((m) => m.from === 'node-1'), { timeout: T, polling: 50 });
  assert.equal(await pageB.evaluate(() => window.events.message.filter((m) => m.from === 'page-a').length), 1, 'a direct is not a broadcast');

  // A stranger in the mesh sends markup as its name and its message: page A shows it as text.
  const evil = new RelayClient({ url: relay1.meshUrl(mesh), nodeId: 'evil', name: '<b id="evilname">E</b>', WebSocket, reconnect: false });
  nodeClients.push(evil);
  await evil.connect();
  await pageA.waitForSelector('#peers li[data-node-id="evil"]', { timeout: T });
  evil.broadcast({ message: '<img src=x onerror="window.pwned=1">' });
  await pageA.waitForFunction(() => document.getElementById('log').textContent.includes('evil: <img src=x onerror="window.pwned=1">'), { timeout: T, polling: 50 });
  assert.deepEqual(await pageA.evaluate(() => [document.querySelector('#log img, #evilname') === null, typeof window.pwned]), [true, 'undefined']);
  await evil.close();
  await pageA.waitForFunction(() => !document.querySelector('#peers li[data-node-id="evil"]'), { timeout: T, polling: 50 });
  await pageB.waitForFunction(() => window.events.message.some((m) => m.from === 'evil'), { timeout: T, polling: 50 });

  // LLM: page B asks; the relay routes to node-1, the only llm peer.
  const answer = await pageB.evaluate(() => window.client.llmRequest({ prompt: 'meaning of life?', model: 'llama3.2' }));
  assert.equal(answer.from, 'node-1');
  assert.equal(answer.response, 'node answers: meaning of life?');

  // Page A becomes llm-capable through its checkbox (capabilities_update); the Node client asks
  // and the browser answers. node-1 is never offered its own request.
  const updated = nodeLLM.waitFor('peer_updated', { timeoutMs: T });
  await pageA.click('#llm-capable');
  assert.deepEqual(await updated, { node_id: 'page-a', capabilities: ['llm', 'chat'] });
  const fromBrowser = await nodeLLM.llmRequest({ prompt: 'hi browser' }, { timeoutMs: T });
  assert.equal(fromBrowser.from, 'page-a');
  assert.equal(fromBrowser.response, 'echo: hi browser');

  // Page A asks through its form: candidates are node-1 and page-a itself; never itself.
  await pageA.type('#prompt', 'from the form');
  await pageA.click('#ask');
  await pageA.waitForFunction(() => document.getElementById('log').textContent.includes('node-1 (LLM): node answers: from the form'), { timeout: T, polling: 50 });

  // Errors: code + message, the connection stays open.
  await pageB.evaluate(() => {
    window.client.direct('nobody', 1);
    window.client.send({ type: 'hello' });
  });
  await pageB.waitForFunction(() => window.events.error.length === 2, { timeout: T, polling: 50 });
  const errors = await pageB.evaluate(() => window.events.error);
  assert.deepEqual(errors.map((e) => e.code), ['unknown_target', 'unknown_type']);
  for (const e of errors) assert.ok(e.message.length > 0);
  // A request whose request_id is neither a string nor a number: bad_message, and nothing routed.
  await pageB.evaluate(() => window.client.send({ type: 'chat_request', request_id: { bad: 1 } }));
  await pageB.waitForFunction(() => window.events.error.some((e) => e.code === 'bad_message'), { timeout: T, polling: 50 });
  assert.equal(await pageB.evaluate(() => window.client.state), 'open');

  // Drain: SIGTERM relay 1. Page B and the Node client get server_draining, are closed with 1001
  // after the grace (1 s), and reconnect to relay 2 after reconnect_after_ms. Page A, whose form
  // names relay 1, shows that it is reconnecting.
  await pageB.evaluate((url) => { window.relayUrl = url; }, relay2.url);
  nodeTarget = relay2;
  const reopenedNode = nodeLLM.waitFor('open', { timeoutMs: 20000 });
  relay1Gone = true;
  const stopped = relay1.stop();
  await pageB.waitForFunction(() => window.events.server_draining.length === 1, { timeout: T, polling: 50 });
  const hint = await pageB.evaluate(() => window.events.server_draining[0]);
  assert.equal(hint.graceSeconds, 1);
  assert.ok(hint.reconnectAfterMs >= 0 && hint.reconnectAfterMs < 5000, JSON.stringify(hint));
  // The draining status lasts only the 1 s grace: its log line stays.
  await pageA.waitForFunction(() => document.getElementById('log').textContent.includes('the relay is shutting down'), { timeout: T, polling: 50 });
  await pageB.waitForFunction(() => window.events.open.length === 2, { timeout: 20000, polling: 50 });
  const disc = await pageB.evaluate(() => window.events.disconnect[0]);
  assert.equal(disc.code, 1001);
  assert.equal(disc.delayMs, hint.reconnectAfterMs);
  assert.equal((await pageB.evaluate(() => window.events.open[1])).reconnected, true);
  assert.equal((await reopenedNode).reconnected, true);
  assert.equal((await stopped).code, 0, 'relay 1 exits 0 after the drain');
  await pageA.waitForSelector('#status[data-state=reconnecting]', { timeout: T });

  // On relay 2 page B and the Node client see each other and talk.
  await until(() => nodeLLM.peers.has('page-b'), 'node-1 sees page-b on relay 2', T);
  const again = await pageB.evaluate(() => window.client.llmRequest({ prompt: 'after the drain' }));
  assert.equal(again.response, 'node answers: after the drain');

  assert.deepEqual(pageErrors, []);
  await pageB.evaluate(() => window.client.close());
  await pageA.click('#leave');
  await pageA.waitForSelector('#status[data-state=closed]', { timeout: T });
});
