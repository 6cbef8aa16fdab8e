// GatewayConfig: every knob of the WebSocket + HTTP endpoint, with its
// default and why. cmd/relay/relay_config.cc maps env vars and flags onto
// the settings; the fixed limits take their defaults (and their why) from
// server/limits.h and are fields only so that tests can change them.
#ifndef RELAY_GATEWAY_WS_GATEWAY_CONFIG_H_
#define RELAY_GATEWAY_WS_GATEWAY_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "gateway/net/client_ip.h"
#include "gateway/net/origin_policy.h"
#include "server/limits.h"

namespace relay::gateway {

struct GatewayConfig {
  std::string host = "0.0.0.0";  // an IP address
  std::uint16_t port = 8765;     // 0 picks a free port
  // SO_REUSEPORT on the listener: several relays on one host share `port`,
  // the kernel spreading new connections over them (each keeps its own gRPC
  // port). Off by default, so that a second relay on the same port fails to
  // start instead of silently taking half the clients: without a backplane
  // every process holds its own meshes, and peers spread over two are split.
  bool reuse_port = false;
  // Largest message a client may send; bigger ones close with 1009.
  std::size_t max_message_bytes = 1 << 20;
  // A server ping every interval; a peer that misses `max_missed_pongs` in a
  // row is dropped (phones vanish without a FIN). Zero disables.
  absl::Duration keepalive_interval = absl::Seconds(30);
  int max_missed_pongs = limits::kMaxMissedPongs;
  // How long a client may take to send its HTTP upgrade request (slowloris).
  // With TLS, the TLS handshake before it has websocketpp's own 5 s limit.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // How long a connection the relay closes may take to answer the close
  // frame before its TCP connection is cut (a stuck peer never answers).
  absl::Duration close_handshake_timeout = limits::kCloseHandshakeTimeout;
  // After a connection ends, how long its socket may keep reading (and
  // dropping) what the client still sends (lingering_closer.h). At most
  // `max_lingering_sockets` at once.
  absl::Duration linger_timeout = limits::kLingerTimeout;
  std::size_t max_lingering_sockets = limits::kMaxLingeringSockets;
  // How often unregistered sockets are checked against the core's timeout.
  absl::Duration housekeeping_interval = limits::kHousekeepingInterval;

  // Bytes of frames queued for one connection and not yet handed to its
  // socket. One stuck phone must not grow the relay's memory: past this the
  // connection is closed with 1013 "slow consumer". A frame is always
  // accepted when nothing is queued, whatever its size.
  std::size_t max_queued_bytes_per_connection = std::size_t{8} << 20;
  // Connections open at once, WebSocket and gRPC peers together, in total
  // and per client IP; more upgrades are refused with HTTP 503
  // too_many_connections, more gRPC streams with RESOURCE_EXHAUSTED. Plain
  // HTTP requests (/health, /stats) are never refused. Per IP 0 means no
  // per-IP limit (e.g. behind a proxy that sends no X-Forwarded-For).
  // Enforced by the ConnectionSlots both transports share (built from these
  // in cmd/relay/main.cc).
  std::size_t max_connections = 10000;
  std::size_t max_connections_per_ip = 100;
  // TCP connections still in their handshake (accepted, no HTTP request
  // answered and no WebSocket open yet: idle sockets hold no connection slot),
  // in total and per TCP peer address; a socket past either is closed as
  // soon as it is accepted (refused too_many_handshakes). 0: no bound.
  // Total 4096: a reconnect storm of 4096 clients at once is served, and with
  // MAX_CONNECTIONS 10000 and 1024 lingering sockets the relay stays under
  // the ~20,000 fds a process has. Per IP 256: a handshake lasts a round trip
  // or three, so even a carrier-grade NAT address with thousands of phones
  // has far fewer in flight (and at most MAX_CONNECTIONS_PER_IP 100 of them
  // can open), while one address cannot hold more than 256 idle sockets.
  // TRUSTED_PROXIES are exempt from the per-IP bound (they carry many
  // clients; X-Forwarded-For is not read before the request is).
  std::size_t max_pending_handshakes = 4096;
  std::size_t max_pending_handshakes_per_ip = 256;
  // After accept() fails for want of fds (EMFILE, ENFILE) or memory, the
  // acceptor waits this long before it tries again instead of spinning.
  absl::Duration accept_backoff = limits::kAcceptBackoff;
  // Proxies whose X-Forwarded-For names the client (see ResolveClientIp).
  net::TrustedProxies trusted_proxies;
  // Web origins whose pages may open WebSocket connections (others: HTTP 403
  // origin_not_allowed) and read /, /health, /ready and /stats (CORS). Every
  // origin by default: the relay authenticates by token, never by cookies
  // (origin_policy.h).
  net::OriginPolicy allowed_origins;

  // PEM certificate chain and unencrypted PEM key. Both set: wss:// and
  // https:// on `port` (and the admin gRPC over TLS); both empty: plain.
  std::string tls_cert_file;
  std::string tls_key_file;
  bool tls_enabled() const { return !tls_cert_file.empty() && !tls_key_file.empty(); }
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_GATEWAY_CONFIG_H_
