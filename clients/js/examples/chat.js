// The example page's script: join a mesh, list its peers, send broadcasts and direct messages,
// ask an LLM-capable peer, and (with the checkbox) answer LLM requests by echoing them.
// Query parameters prefill the form: ?relay=ws://127.0.0.1:8765&mesh=home&node=laptop&name=Lou&join=1
import { RelayClient, VERSION } from '../src/index.js';

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const field = (id) => /** @type {HTMLInputElement} */ (document.getElementById(id));

/** @type {RelayClient | null} */
let client = null;

const params = new URLSearchParams(location.search);
for (const [param, id] of [['relay', 'relay'], ['mesh', 'mesh'], ['node', 'node'], ['name', 'name'], ['token', 'token']]) {
  const v = params.get(param);
  if (v !== null) field(id).value = v;
}
if (!field('node').value) field('node').value = `browser-${Math.random().toString(36).slice(2, 8)}`;
document.title += ` (client ${VERSION})`;

function log(cls, text, from) {
  const line = document.createElement('div');
  line.className = cls;
  if (from !== undefined) {
    const who = document.createElement('span');
    who.className = 'from';
    who.textContent = `${from}: `;
    line.append(who);
  }
  line.append(document.createTextNode(text)); // textContent only: peers' text is never HTML
  const box = $('log');
  box.append(line);
  box.scrollTop = box.scrollHeight;
}

function setStatus(state, text) {
  const s = $('status');
  s.dataset.state = state;
  s.textContent = text;
}

function show(payload) {
  if (payload && typeof payload === 'object' && typeof payload.message === 'string') return payload.message;
  if (payload && typeof payload === 'object' && typeof payload.text === 'string') return payload.text;
  return typeof payload === 'string' ? payload : JSON.stringify(payload);
}

function renderPeers() {
  const list = $('peers');
  const target = /** @type {HTMLSelectElement} */ ($('target'));
  const chosen = target.value;
  list.replaceChildren();
  target.replaceChildren(new Option('Everyone (broadcast)', ''));
  for (const peer of client ? client.peers.values() : []) {
    const li = document.createElement('li');
    li.dataset.nodeId = peer.node_id;
    li.append(document.createTextNode(`${peer.name || peer.node_id} (${peer.node_id}) `));
    const caps = document.createElement('span');
    caps.className = 'caps';
    caps.textContent = peer.capabilities.length ? `[${peer.capabilities.join(', ')}]` : '';
    li.append(caps);
    list.append(li);
    target.append(new Option(`${peer.name || peer.node_id}`, peer.node_id));
  }
  target.value = [...target.options].some((o) => o.value === chosen) ? chosen : '';
}

function setConnected(on) {
  for (const id of ['send', 'ask']) /** @type {HTMLButtonElement} */ ($(id)).disabled = !on;
  /** @type {HTMLButtonElement} */ ($('leave')).disabled = client === null;
  /** @type {HTMLButtonElement} */ ($('join')).disabled = client !== null;
}

function capabilities() {
  return field('llm-capable').checked ? ['llm', 'chat'] : [];
}

async function join() {
  if (client) return;
  const token = field('token').value.trim();
  client = new RelayClient({
    relayUrl: field('relay').value.trim(),
    meshId: field('mesh').value.trim(),
    nodeId: field('node').value.trim(),
    name: field('name').value.trim() || undefined,
    token: token === '' ? undefined : token,
    capabilities: capabilities(),
    // Answers only while the checkbox is ticked; the relay routes to us only then (capability "llm").
    onLLMRequest: (req) => {
      const prompt = typeof req.prompt === 'string' ? req.prompt : JSON.stringify(req.messages ?? req.prompt);
      log('llm', `answered an LLM request from ${req.from}: ${prompt}`);
      return `echo: ${prompt}`;
    },
  });
  const c = client;
  c.on('open', (s) => {
    setStatus('open', `connected to mesh ${s.meshId} as ${c.nodeId} (${s.nodeCount} node${s.nodeCount === 1 ? '' : 's'} in the mesh)`);
    log('system', s.reconnected ? 'reconnected' : `joined ${s.meshId}`);
    renderPeers();
    setConnected(true);
  });
  c.on('peer_joined', (p) => { log('system', `${p.name || p.node_id} joined`); renderPeers(); });
  c.on('peer_left', (p) => { log('system', `${p.node_id} left`); renderPeers(); });
  c.on('peer_updated', () => renderPeers());
  c.on('message', (m) => log('message', show(m.payload), m.from));
  c.on('error', (e) => log('error', `error ${e.code}: ${e.message}`));
  c.on('server_draining', (d) => {
    const text = `the relay is shutting down; reconnecting in ${d.reconnectAfterMs ?? '?'} ms after it closes`;
    setStatus('draining', text);
    log('system', text);
  });
  c.on('disconnect', (d) => {
    setConnected(false);
    renderPeers();
    log('system', `disconnected (close ${d.code}${d.reason ? ' ' + d.reason : ''})`);
  });
  c.on('reconnecting', (r) => setStatus('reconnecting', `reconnecting (attempt ${r.attempt}) in ${r.delayMs} ms`));
  c.on('close', (info) => {
    setStatus('closed', `closed (${info.code}${info.reason ? ' ' + info.reason : ''})${info.error ? ': ' + info.error.message : ''}`);
    if (client === c) client = null;
    setConnected(false);
    renderPeers();
  });
  setStatus('connecting', 'connecting...');
  setConnected(false);
  try {
    await c.connect();
  } catch (err) {
    setStatus('failed', `could not join: ${err.code}: ${err.message}`);
    log('error', `could not join: ${err.code}: ${err.message}`);
    if (client === c) client = null;
    await c.close();
    setConnected(false);
  }
}

$('join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  join();
});

$('leave').addEventListener('click', () => {
  client?.close();
});

$('send-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = field('text').value;
  if (!client || text === '') return;
  const target = /** @type {HTMLSelectElement} */ ($('target')).value;
  try {
    if (target) client.direct(target, { message: text });
    else client.broadcast({ message: text });
    log('message', text, target ? `me to ${target}` : 'me');
    field('text').value = '';
  } catch (err) {
    log('error', `not sent: ${err.message}`);
  }
});

$('ask-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const prompt = field('prompt').value;
  if (!client || prompt === '') return;
  field('prompt').value = '';
  log('llm', `asked: ${prompt}`, 'me');
  try {
    const answer = await client.llmRequest({ prompt }, { timeoutMs: 60000 });
    log('llm', show(answer.response), `${answer.from} (LLM)`);
  } catch (err) {
    log('error', `LLM request failed: ${err.code}: ${err.message}`);
  }
});

field('llm-capable').addEventListener('change', () => {
  if (client && client.state === 'open') client.updateCapabilities(capabilities());
  else if (client) client.capabilities = capabilities();
});

if (params.get('join') === '1') join();
