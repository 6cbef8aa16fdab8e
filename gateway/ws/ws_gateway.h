// WsGateway: the relay's WebSocket + HTTP front door (websocketpp on
// standalone Asio), plain ws:// or, with a certificate, wss:// and https://
// on the same port. It turns connections into RelayCore connections, frames
// into ClientEvents (via the JSON codec), ServerEvents back into frames, and
// serves GET /, /health and /stats. It knows no routing rule, but it owns
// the transport limits: sockets still in their handshake
// (handshake_limiter.h), the per-connection send buffer, the handshake
// timeout, and the accept back-off at the fd limit. Connections in total and
// per client IP are ConnectionSlots', shared with gRPC peers.
//
// Threading: everything runs on the io_context's one thread, which is also
// the core's thread (docs/threading.md). The implementation is one class
// template over the websocketpp config (ws_gateway.cc); start reading at its
// OnMessage().
#ifndef RELAY_GATEWAY_WS_WS_GATEWAY_H_
#define RELAY_GATEWAY_WS_WS_GATEWAY_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "asio/io_context.hpp"
#include "gateway/admission/connection_slots.h"
#include "gateway/admission/refusal.h"
#include "gateway/http/http_routes.h"
#include "gateway/http/relay_metrics.h"
#include "gateway/ws/gateway_config.h"
#include "server/core/relay_core.h"

namespace relay::gateway {

// The Server header of every HTTP response and upgrade: the service's name,
// so that whoever reads a proxy's log or a curl -v knows which backend
// answered. Neither the WebSocket library's name and version (websocketpp's
// default, which tells a scanner whose bugs to try on every response) nor the
// relay's version: that is for GET /, asked on purpose.
inline constexpr absl::string_view kServerHeader = "atmosphere-relay";

class WsGateway {
 public:
  // A plain gateway, or a TLS one when config.tls_enabled(); the latter fails
  // (InvalidArgument) when the certificate or key cannot be loaded. Each
  // upgrade takes its connection slot from `slots` (which enforces
  // MAX_CONNECTIONS and MAX_CONNECTIONS_PER_IP: config.max_connections* are
  // not read here) and counts its refusals in `refused`; both are shared
  // with the gRPC transport. All four must outlive the gateway.
  static absl::StatusOr<std::unique_ptr<WsGateway>> Create(asio::io_context* io,
                                                           core::RelayCore* core,
                                                           GatewayConfig config,
                                                           ConnectionSlots* slots,
                                                           RefusalCounts* refused);
  virtual ~WsGateway() = default;

  // Binds and starts accepting; port() is then the bound port.
  virtual absl::Status Listen() = 0;
  virtual std::uint16_t port() const = 0;
  // "ws" or "wss".
  virtual absl::string_view scheme() const = 0;

  // Stops accepting and asks every client to close for `reason`: 1001
  // (server_shutdown) for a relay alone, 1012 (service_restart) for an
  // instance of a cluster, whose clients may reconnect at once and land on
  // another instance. The io_context runs out of work once the last
  // connection is gone.
  virtual void Shutdown(core::CloseReason reason = core::CloseReason::kServerShutdown) = 0;

  // Re-reads the certificate and key (SIGHUP). New handshakes use the new
  // pair; open connections keep theirs. On failure the old pair stays in use.
  // FailedPrecondition without TLS. Call it on the event loop.
  virtual absl::Status ReloadTls() = 0;

  // Connections turned away, by reason, of every transport (GET /stats
  // "refused"): the `refused` it was created with.
  virtual const RefusalCounts& refused() const = 0;

  // The metrics GET /metrics shows beyond the core's counters; the gRPC
  // transport and the core's observers add to them.
  virtual RelayMetrics* metrics() = 0;

  // What else holds /ready at 503 (cluster mode); set before Listen().
  virtual void SetReadinessCheck(ReadinessCheck check) = 0;
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_WS_GATEWAY_H_
