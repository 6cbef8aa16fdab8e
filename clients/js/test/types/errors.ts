// Misuse the types must refuse: each line below is an error, and @ts-expect-error fails the
// check if it is not (so the declarations cannot silently become `any`).
import { RelayClient } from '@atmosphere/relay-client';

declare const client: RelayClient;
// @ts-expect-error nodeId is required
new RelayClient({ url: 'ws://x/relay/m' });
// @ts-expect-error a payload-less direct needs a target string
client.direct(42, 'x');
// @ts-expect-error no such event
client.on('pear_joined', () => {});
// @ts-expect-error peer_left gives a node_id, not a number
client.on('peer_left', (p: { node_id: number }) => p);
// @ts-expect-error request ids are strings or numbers
client.llmRequest({ prompt: 'x' }, { requestId: { id: 1 } });
// @ts-expect-error the state is read-only
client.state = 'open';
