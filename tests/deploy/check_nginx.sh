#!/usr/bin/env bash
# Checks deploy/nginx/ with Debian's nginx (CTest: deploy_nginx_check).
#   tests/deploy/check_nginx.sh [SOURCE_DIR]
#
# 1. `nginx -t` on both site files, as they would sit in /etc/nginx/conf.d/, under a throwaway
#    main config: prefix, pid, error log and temp paths in a temporary directory, so it runs as
#    any user and touches nothing of the host's nginx. The certbot paths
#    (/etc/letsencrypt/live/relay.example.com/{fullchain,privkey}.pem) and the ACME webroot
#    (/var/www/certbot) are rewritten to a self-signed certificate made here with openssl, so
#    nginx really loads a certificate and key. nginx -t also binds each listen address, so they
#    are moved to free loopback ports. deploy/cluster/nginx/relay-lb.conf, the cluster's load
#    balancer (another nginx, deploy/cluster/docker-compose.yml), gets its own nginx -t, with its
#    upstream's compose service names (relay-1...) pointed at 127.0.0.1 since nginx -t resolves them.
# 2. What nginx -t cannot know, from the files themselves: /relay/ forwards the WebSocket upgrade
#    (HTTP/1.1, Upgrade, Connection from a map of $http_upgrade), sets X-Forwarded-For, and waits
#    longer than the relay's keepalive interval; /metrics is not served; everything goes to the
#    relay's HOST:PORT from deploy/systemd/atmosphere-relay.service; port 80 serves the ACME
#    webroot and redirects the rest to https. The balancer's /relay/ follows the same rules towards
#    its upstream of relays, whose 503 (a draining relay) or refused connection moves a new client
#    on to the next relay (proxy_next_upstream).
# Every failure is printed; the exit status is 1 when any check failed.
set -uo pipefail

SOURCE_DIR=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
NGINX_DIR=$SOURCE_DIR/deploy/nginx
HTTPS_CONF=$NGINX_DIR/atmosphere-relay.conf
HTTP_CONF=$NGINX_DIR/atmosphere-relay-http.conf
LB_CONF=$SOURCE_DIR/deploy/cluster/nginx/relay-lb.conf
UNIT=$SOURCE_DIR/deploy/systemd/atmosphere-relay.service
LIVE_DIR=/etc/letsencrypt/live/relay.example.com
WEBROOT=/var/www/certbot
PYTHON=/usr/bin/python3

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

for f in "$HTTPS_CONF" "$HTTP_CONF" "$LB_CONF" "$UNIT"; do
  [[ -f "$f" ]] || { echo "FAIL: missing $f" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x "$NGINX" ]] || { echo "FAIL: nginx not found (scripts/install-deps.sh --test installs Debian's nginx)" >&2; exit 1; }
[[ -x "$PYTHON" ]] || { echo "FAIL: $PYTHON not found" >&2; exit 1; }
command -v openssl >/dev/null || { echo "FAIL: openssl not found" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- 1. nginx -t ------------------------------------------------------------------
grep -qF "ssl_certificate     $LIVE_DIR/fullchain.pem;" "$HTTPS_CONF" \
  || fail "atmosphere-relay.conf does not take its certificate from $LIVE_DIR/fullchain.pem (certbot)"
grep -qF "ssl_certificate_key $LIVE_DIR/privkey.pem;" "$HTTPS_CONF" \
  || fail "atmosphere-relay.conf does not take its key from $LIVE_DIR/privkey.pem (certbot)"
grep -qF "root $WEBROOT;" "$HTTP_CONF" || fail "atmosphere-relay-http.conf does not serve the ACME webroot $WEBROOT"

mkdir -p "$tmp/live" "$tmp/www"
if ! openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=relay.example.com \
  -keyout "$tmp/live/privkey.pem" -out "$tmp/live/fullchain.pem" >"$tmp/openssl.log" 2>&1; then
  cat "$tmp/openssl.log" >&2
  fail "openssl could not make a throwaway certificate"
fi
# nginx -t binds every listen address, so 80 and 443 (root only, maybe taken, maybe no IPv6
# here) become free loopback ports; each listen line keeps its parameters (ssl). An upstream
# server named by host (the compose service relay-1) becomes 127.0.0.1: nginx -t resolves names.
# nginx_test DIR NAME FILE...: the files as DIR/conf.d/*.conf under a throwaway main config.
nginx_test() {
  local dir=$1 name=$2 conf
  shift 2
  mkdir -p "$dir/conf.d"
  for conf in "$@"; do
    sed -e "s#$LIVE_DIR/#$tmp/live/#g" -e "s#$WEBROOT#$tmp/www#g" "$conf" \
      | "$PYTHON" -c '
import re, socket, sys

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

text = re.sub(r"(?m)^(\s*listen\s+)[^\s;]+", lambda m: f"{m.group(1)}127.0.0.1:{free_port()}", sys.stdin.read())
sys.stdout.write(re.sub(r"(?m)^(\s*server\s+)[A-Za-z][A-Za-z0-9.-]*(:\d+)", r"\g<1>127.0.0.1\g<2>", text))
' >"$dir/conf.d/$(basename "$conf")"
  done
  cat >"$dir/nginx.conf" <<EOF
# Throwaway main config: Debian's nginx.conf and the nginx image's include conf.d/*.conf inside http {}.
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dir/conf.d/*.conf;
}
EOF
  if out=$("$NGINX" -t -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>&1); then
    ok "nginx -t accepts $name ($("$NGINX" -v 2>&1 | sed 's/^nginx version: //'))"
  else
    echo "$out" >&2
    fail "nginx -t rejects $name"
  fi
}
nginx_test "$tmp/site" "deploy/nginx/*.conf" "$HTTP_CONF" "$HTTPS_CONF"
# The cluster's balancer is another nginx (deploy/cluster/docker-compose.yml), on its own.
nginx_test "$tmp/lb" "deploy/cluster/nginx/relay-lb.conf" "$LB_CONF"

# --- 2. what the relay needs from the proxy ------------------------------------------
if ! "$PYTHON" - "$HTTPS_CONF" "$HTTP_CONF" "$UNIT" "$LB_CONF" <<'PY'; then
import re
import sys

https_path, http_path, unit_path, lb_path = sys.argv[1:5]
KEEPALIVE_SECONDS = 30  # the relay's default ping interval
problems = []


def strip_comments(text):
    return re.sub(r"#[^\n]*", "", text)


def block(text, header):
    """The body of the first block whose header matches the regex `header`."""
    m = re.search(header + r"\s*\{", text)
    if not m:
        return None
    depth, i = 1, m.end()
    while depth and i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[m.end():i - 1]


def directives(body, name):
    """Arguments of every `name ...;` at the top level of a block body."""
    top, depth = [], 0
    for ch in body:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        top.append(ch if depth == 0 or ch == "}" else " ")
    return [m.group(1).split() for m in re.finditer(r"(?:^|[;{}\s])" + name + r"\s+([^;]*);", "".join(top))]


def seconds(value):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", value)
    if not m:
        return None
    return int(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


https = strip_comments(open(https_path, encoding="utf-8").read())
http = strip_comments(open(http_path, encoding="utf-8").read())
lb = strip_comments(open(lb_path, encoding="utf-8").read())
unit = open(unit_path, encoding="utf-8").read()

env = dict(re.findall(r"\b(HOST|PORT)=(\S+)", "\n".join(l for l in unit.splitlines() if l.startswith("Environment="))))
upstream = f"http://{env.get('HOST', '0.0.0.0')}:{env.get('PORT', '8765')}"

def check_websocket_location(label, text, server, expected_pass, upstream_what):
    """/relay/ of one server block: upgrade, client IP, timeouts; /metrics hidden."""
    relay = block(server, r"location\s+/relay/")
    if relay is None:
        problems.append(f"{label} has no `location /relay/`")
        return
    if [expected_pass] not in directives(relay, "proxy_pass"):
        problems.append(f"{label}: /relay/ does not proxy_pass to {expected_pass} ({upstream_what}), without a URI part")
    if ["1.1"] not in directives(relay, "proxy_http_version"):
        problems.append(f"{label}: /relay/ lacks proxy_http_version 1.1 (no WebSocket upgrade over HTTP/1.0)")
    headers = {d[0].lower(): d[1:] for d in directives(relay, "proxy_set_header")}
    if headers.get("upgrade") != ["$http_upgrade"]:
        problems.append(f"{label}: /relay/ does not pass Upgrade $http_upgrade")
    connection = (headers.get("connection") or [""])[0]
    maps = {m.group(1) for m in re.finditer(r"map\s+\$http_upgrade\s+\$(\w+)\s*\{", text)}
    if not (connection.lower() in ('"upgrade"', "upgrade") or connection.lstrip("$") in maps):
        problems.append(f"{label}: /relay/ does not set Connection to upgrade (directly or from a map of $http_upgrade)")
    if headers.get("x-forwarded-for") not in (["$proxy_add_x_forwarded_for"], ["$remote_addr"]):
        problems.append(f"{label}: /relay/ does not set X-Forwarded-For: the relay would see every client as nginx")
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        values = directives(relay, name) or directives(server, name)
        value = seconds(values[-1][0]) if values else 60
        if value is None or value <= 2 * KEEPALIVE_SECONDS:
            problems.append(f"{label}: /relay/ {name} ({values[-1][0] if values else 'default 60s'}) must exceed twice the relay's {KEEPALIVE_SECONDS} s keepalive")
    metrics = block(server, r"location\s+=\s*/metrics")
    if metrics is None or not (directives(metrics, "return") and directives(metrics, "return")[0][0] in ("403", "404")
                               or ["all"] in directives(metrics, "deny")):
        problems.append(f"{label}: /metrics is served publicly: add `location = /metrics {{ return 404; }}`")
    if metrics is not None and directives(metrics, "proxy_pass"):
        problems.append(f"{label}: location = /metrics proxies to the relay")


server = block(https, r"server")
if not server or not any(d[:2] == ["443", "ssl"] for d in directives(server, "listen")):
    problems.append("atmosphere-relay.conf has no server listening on 443 ssl")
else:
    check_websocket_location("atmosphere-relay.conf", https, server, upstream, "the unit's HOST:PORT")

# The cluster's balancer: the same /relay/ rules towards an upstream of relays, and a draining
# relay's 503 (or a refused connection) moves a new client on to the next relay.
lb_server = block(lb, r"server")
pools = re.findall(r"upstream\s+(\w+)\s*\{([^}]*)\}", lb)
if lb_server is None or len(pools) != 1:
    problems.append("relay-lb.conf needs one upstream block and one server block")
else:
    pool, members = pools[0]
    if len(re.findall(r"(?m)^\s*server\s+\S+", members)) < 2:
        problems.append(f"relay-lb.conf: upstream {pool} has fewer than two relays")
    check_websocket_location("relay-lb.conf", lb, lb_server, f"http://{pool}", f"upstream {pool}")
    relay_location = block(lb_server, r"location\s+/relay/") or ""
    next_upstream = directives(relay_location, "proxy_next_upstream") or directives(lb_server, "proxy_next_upstream")
    if not next_upstream or not {"error", "http_503"} <= set(next_upstream[-1]):
        problems.append("relay-lb.conf: proxy_next_upstream does not include error and http_503 (a draining relay answers 503)")

plain = block(http, r"server")
if not plain or not any(d[0] == "80" for d in directives(plain, "listen")):
    problems.append("atmosphere-relay-http.conf has no server on port 80")
else:
    acme = block(plain, r"location\s+\^~\s+/\.well-known/acme-challenge/")
    if acme is None or not directives(acme, "root"):
        problems.append("port 80 does not serve /.well-known/acme-challenge/ from a webroot (certbot renewals)")
    rest = block(plain, r"location\s+/")
    if rest is None or not any(d[:2] == ["301", "https://$host$request_uri"] for d in directives(rest, "return")):
        problems.append("port 80 does not redirect the rest to https")

for p in problems:
    print(f"FAIL: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
  fail "deploy/nginx/ or deploy/cluster/nginx/ does not give the relay what it needs"
else
  ok "/relay/ upgrades, forwards the client IP, outlasts the keepalive; /metrics hidden; port 80 for ACME; the cluster balancer likewise, skipping draining relays"
fi

if ((failures > 0)); then
  echo "check_nginx: $failures check(s) failed" >&2
  exit 1
fi
echo "check_nginx: all checks passed"
