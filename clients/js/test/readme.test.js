// The README's programs (the code blocks after a `<!-- readme-test: FILE -->` line) run as
// written against the real relay (RELAY_BIN): the seed's walkthrough without a library, and the
// Mac / phone pair with this client. They import 'ws' and '@atmosphere/relay-client' exactly as a
// user's program does: a temporary directory links both into its node_modules.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { relayBin, startRelay } from './helpers.js';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const skip = relayBin() ? false : 'RELAY_BIN is not set (CTest sets it; CI=1 makes this a failure)';

async function readmePrograms() {
  const text = await readFile(path.join(pkgDir, 'README.md'), 'utf8');
  const programs = {};
  for (const m of text.matchAll(/<!-- readme-test: (\S+) -->\n```js\n([\s\S]*?)```/g)) programs[m[1]] = m[2];
  return programs;
}

/** Runs `node file` in dir; collects stdout; resolves exit info. */
function run(dir, file, env) {
  const child = spawn(process.execPath, [file], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { text: '', err: '' };
  child.stdout.on('data', (d) => { out.text += d; });
  child.stderr.on('data', (d) => { out.err += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const waitFor = async (needle, ms = 10000) => {
    const deadline = Date.now() + ms;
    while (!out.text.includes(needle)) {
      if (Date.now() > deadline || child.exitCode !== null) {
        throw new Error(`${file} did not print ${JSON.stringify(needle)}; stdout=${out.text} stderr=${out.err}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM');
    return exited;
  };
  return { child, out, exited, waitFor, stop };
}

test('the README programs run as written', { skip }, async (t) => {
  const programs = await readmePrograms();
  assert.deepEqual(Object.keys(programs).sort(), ['mac.mjs', 'phone.mjs', 'raw.mjs']);
  const dir = await mkdtemp(path.join(tmpdir(), 'relay-readme-'));
  const relay = await startRelay();
  const children = [];
  t.after(async () => {
    await Promise.all(children.map((c) => c.stop()));
    await relay.stop();
    await rm(dir, { recursive: true, force: true });
  });
  await mkdir(path.join(dir, 'node_modules', '@atmosphere'), { recursive: true });
  await symlink(pkgDir, path.join(dir, 'node_modules', '@atmosphere', 'relay-client'));
  await symlink(path.join(pkgDir, 'node_modules', 'ws'), path.join(dir, 'node_modules', 'ws'));
  await writeFile(path.join(dir, 'package.json'), '{"type":"module","private":true}');
  for (const [name, code] of Object.entries(programs)) await writeFile(path.join(dir, name), code);
  const env = { RELAY_URL: relay.url };

  // The seed's walkthrough: registered, peers, its direct to itself, and no_llm_peer alone.
  const raw = run(dir, 'raw.mjs', env);
  children.push(raw);
  await raw.waitFor('Current peers: []');
  await raw.waitFor("From my-unique-node-id: { message: 'Hello me!' }");
  await raw.waitFor('Error no_llm_peer:');
  await raw.stop();

  // The Mac answers, the phone asks and leaves with exit status 0.
  const mac = run(dir, 'mac.mjs', env);
  children.push(mac);
  await mac.waitFor('Current peers: []');
  const phone = run(dir, 'phone.mjs', env);
  children.push(phone);
  const { code } = await phone.exited;
  assert.equal(code, 0, `phone.mjs: ${phone.out.text} ${phone.out.err}`);
  assert.match(phone.out.text, /Current peers: \[ 'mac-1' \]/);
  assert.match(phone.out.text, /LLM response from mac-1: You asked: What is the meaning of life\?/);
  await mac.waitFor('New peer: android-1 []');
  await mac.waitFor("From android-1: { message: 'Hello everyone!' }");
  await mac.waitFor("From android-1: { message: 'Hello specific peer!' }");
  await mac.waitFor('Peer left: android-1');
});
