#!/usr/bin/env bash
# The JavaScript interop tests (tests/interop/CMakeLists.txt runs one mode per CTest test):
#   js.sh setup      npm ci in clients/js from its committed package-lock.json (ws, puppeteer-core,
#                    typescript; no install scripts run, no browser is downloaded), unless
#                    node_modules already matches the lock file
#   js.sh client     the reference client's own tests (node --test): unit tests, and the tests
#                    against the real relay (RELAY_BIN) over the npm `ws` package
#   js.sh global     the same tests over Node's own global WebSocket (undici)
#   js.sh types      tsc over src/index.d.ts and a TypeScript program using it
#   js.sh pack       npm pack; the tarball installed into an empty project and imported there
#   js.sh browser    headless Chromium (CHROMIUM_BIN, default Debian's /usr/bin/chromium) through
#                    puppeteer-core: two pages and a Node client on the real relay
# A missing node, npm or chromium skips the test (exit 77), or fails it when CI is set: CI must
# never pass by skipping. scripts/install-deps.sh --test installs all three on Debian 12.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
pkg="$(cd "$here/../../clients/js" && pwd)"
mode="${1:?usage: js.sh setup|client|global|types|pack|browser}"

missing() {
  if [[ -n "${CI:-}" ]]; then
    echo "js.sh: $1 (CI is set: failing instead of skipping; scripts/install-deps.sh --test installs it)" >&2
    exit 1
  fi
  echo "js.sh: $1: skipped (scripts/install-deps.sh --test installs it)" >&2
  exit 77
}

command -v node >/dev/null || missing "node is not installed"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' ||
  missing "node $(node --version) is older than 18"

need_modules() {
  [[ -f "$pkg/node_modules/.interop-lock-sha256" ]] ||
    { echo "js.sh: clients/js/node_modules is not installed: run the js_client_npm_ci test (js.sh setup) first" >&2; exit 1; }
}

case "$mode" in
  setup)
    command -v npm >/dev/null || missing "npm is not installed"
    want="$(sha256sum "$pkg/package-lock.json" | cut -d' ' -f1)"
    stamp="$pkg/node_modules/.interop-lock-sha256"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
      echo "js.sh: clients/js/node_modules matches package-lock.json"
      exit 0
    fi
    cd "$pkg"
    # --ignore-scripts: no package runs code at install time. puppeteer-core never downloads a
    # browser (only the `puppeteer` package does); the variable is belt and braces.
    PUPPETEER_SKIP_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund
    echo "$want" > "$stamp"
    ;;
  client)
    need_modules
    cd "$pkg"
    exec node --test test/*.test.js
    ;;
  global)
    need_modules
    cd "$pkg"
    if node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)'; then
      flags=()
    elif node --experimental-websocket -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null; then
      flags=(--experimental-websocket) # Node 20.10 to 21
    else
      # CMake registers this test only for a Node with a WebSocket of its own (not Debian 12's
      # Node 18): this Node changed since the configure step.
      missing "node $(node --version) has no global WebSocket (reconfigure to drop this test)"
    fi
    RELAY_JS_WEBSOCKET=global exec node "${flags[@]}" --test test/relay.test.js
    ;;
  types)
    need_modules
    cd "$pkg"
    exec node node_modules/typescript/bin/tsc -p tsconfig.json
    ;;
  pack)
    command -v npm >/dev/null || missing "npm is not installed"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    cd "$pkg"
    npm pack --pack-destination "$tmp" --json > "$tmp/pack.json"
    tarball="$tmp/$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[0].filename)' "$tmp/pack.json")"
    # Exactly the package's files: the module, its types, the example, the README.
    node -e '
      const files = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[0].files.map((f) => f.path).sort();
      const want = ["README.md", "examples/chat.js", "examples/index.html", "package.json", "src/index.d.ts", "src/index.js"];
      if (JSON.stringify(files) !== JSON.stringify(want)) { console.error("pack: files", files, "want", want); process.exit(1); }
    ' "$tmp/pack.json"
    mkdir "$tmp/app"
    cd "$tmp/app"
    echo '{"name":"pack-check","version":"1.0.0","private":true,"type":"module"}' > package.json
    npm install --ignore-scripts --no-audit --no-fund --offline "$tarball"
    want_version="$(node -e 'console.log(require(process.argv[1]).version)' "$pkg/package.json")"
    cat > check.mjs <<'JS'
import { RelayClient, VERSION, RelayError } from '@atmosphere/relay-client';
import { readFileSync } from 'node:fs';
const want = process.argv[2];
if (VERSION !== want) throw new Error(`VERSION ${VERSION}, package.json ${want}`);
const installed = JSON.parse(readFileSync('node_modules/@atmosphere/relay-client/package.json', 'utf8'));
if (installed.version !== want || Object.keys(installed.dependencies ?? {}).length !== 0) throw new Error('bad installed package.json');
readFileSync('node_modules/@atmosphere/relay-client/src/index.d.ts', 'utf8');
class NoSocket { constructor() { throw new Error('no network in this check'); } }
const c = new RelayClient({ url: 'ws://127.0.0.1:9/relay/m', nodeId: 'n', WebSocket: NoSocket, reconnect: false });
await c.connect().then(() => { throw new Error('connected?'); }, (e) => { if (!(e instanceof RelayError) || e.code !== 'connect_failed') throw e; });
console.log(`pack: @atmosphere/relay-client ${VERSION} installs and imports`);
JS
    node check.mjs "$want_version"
    ;;
  browser)
    need_modules
    chromium="${CHROMIUM_BIN:-/usr/bin/chromium}"
    [[ -x "$chromium" ]] || missing "chromium is not installed at $chromium"
    cd "$here"
    CHROMIUM_BIN="$chromium" exec node --test browser.test.mjs
    ;;
  *)
    echo "js.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
