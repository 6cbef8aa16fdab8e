// Type-checked by tsc (tsconfig.json), never run: the API as a TypeScript user writes it.
import {
  RelayClient, RelayError, VERSION, meshUrl, backoffDelay, signJoinToken, founderProof, exportPublicKey,
  joinTokenSigningBytes, defaultShouldReconnect,
  type JoinToken, type LLMResponseFrame, type Peer, type Session,
} from '@atmosphere/relay-client';

declare const WS: new (url: string) => any;

export async function example(): Promise<string> {
  const v: string = VERSION;
  const client = new RelayClient({
    url: meshUrl('ws://localhost:8765', 'home'),
    nodeId: 'laptop',
    name: 'My Laptop',
    capabilities: ['chat'],
    token: 'mesh-auth-token',
    WebSocket: WS,
    reconnect: { initialDelayMs: 250, maxDelayMs: 10000 },
    onLLMRequest: async (req) => `echo ${String(req.prompt)} from ${req.from}`,
  });
  client.on('peer_joined', (p: Peer) => console.log(p.node_id, p.capabilities.join(',')));
  client.on('peer_left', (p) => console.log(p.node_id));
  client.on('message', (m) => console.log(m.from, m.payload));
  client.on('error', (e: RelayError) => console.log(e.code, e.message, e.requestId));
  client.on('server_draining', (d) => console.log(d.reconnectAfterMs));
  client.on('disconnect', (d) => console.log(d.code, d.willReconnect, d.delayMs));
  const session: Session = await client.connect();
  client.broadcast({ message: 'hi' });
  client.direct(session.peers[0].node_id, { message: 'hello' });
  client.updateCapabilities(['chat', 'llm']);
  const ts: number = await client.ping();
  const answer: LLMResponseFrame = await client.llmRequest({ prompt: 'Hi', model: 'llama3.2' }, { timeoutMs: 5000 });
  const chat = await client.chatRequest({ messages: [{ role: 'user', content: 'Hi' }] }, { requestId: 42 });
  client.respond({ from: 'phone', request_id: 7 }, 'Hello!', { done: true });
  const next = await client.waitFor('message', { filter: (m) => m.from === 'mac-1', timeoutMs: 1000 });
  const keys = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']) as CryptoKeyPair;
  const token: JoinToken = await signJoinToken(
    { mesh_id: 'home', node_id: 'phone', expires_at: 1, issued_at: 0, issuer_id: 'laptop', nonce: 'n' }, keys.privateKey);
  const proof: string = await founderProof('home', keys.privateKey);
  const pub: string = await exportPublicKey(keys.publicKey);
  const bytes: Uint8Array = joinTokenSigningBytes(token);
  const d: number = backoffDelay(1, { initialDelayMs: 1, maxDelayMs: 2, factor: 2 }, Math.random);
  const retry: boolean = defaultShouldReconnect({ code: 1000, reason: 'replaced' });
  await client.close();
  return `${v} ${ts} ${String(answer.response)} ${String(chat.request_id)} ${String(next.payload)} ${proof}${pub}${bytes.length}${d}${retry}`;
}
