// CloseReason: every reason a connection can end, as one enum (after
// nats-server's ClosedState). Names are stable: they appear in logs, /stats
// "closes", relay_disconnections_total{reason} and docs; never rename one.
// The WebSocket close code for each lives in the gateway (ws_close_codes.h).
#ifndef RELAY_SERVER_CORE_CLOSE_REASON_H_
#define RELAY_SERVER_CORE_CLOSE_REASON_H_

#include <array>
#include <cstddef>

#include "absl/strings/string_view.h"

namespace relay::core {

enum class CloseReason {
  kClientClosed,         // the client sent a close frame or closed TCP
  kReplaced,             // the same node_id registered again with the same credentials
  kServerShutdown,       // SIGTERM/SIGINT
  kRegistrationTimeout,  // no register within the registration timeout
  kMessageTooBig,        // a message over the max message size
  kInvalidFrame,         // protocol violation at the WebSocket layer (e.g. bad UTF-8 text)
  kKeepaliveTimeout,     // missed keepalive pings: the peer vanished
  kTransportError,       // a read or write failed
  kSlowConsumer,         // queued more bytes than the per-connection send buffer allows
  kRateLimited,          // kept sending over its rate limit after being warned
  kAuthFailed,           // presented credentials the mesh does not accept
  kKicked,               // an operator closed this peer (relayctl peers kick)
  kMeshClosed,           // an operator closed the peer's mesh (relayctl meshes close)
  kServiceRestart,       // this instance leaves the cluster (fenced, drained): reconnect elsewhere
  kResumed,              // its resume session continued on a newer connection
  kResumeOverflow,       // its resume session's unacknowledged frames passed their bound
};

// One entry per CloseReason, in order: the compiler checks the table is whole.
inline constexpr std::array<absl::string_view, 16> kCloseReasonNames = {
    "client_closed",   "replaced",        "server_shutdown",   "registration_timeout",
    "message_too_big", "invalid_frame",   "keepalive_timeout", "transport_error",
    "slow_consumer",   "rate_limited",    "auth_failed",       "kicked",
    "mesh_closed",     "service_restart", "resumed",           "resume_overflow",
};
inline constexpr std::size_t kCloseReasonCount = kCloseReasonNames.size();
static_assert(static_cast<std::size_t>(CloseReason::kResumeOverflow) + 1 == kCloseReasonCount,
              "kCloseReasonNames must name every CloseReason");

// The stable name, e.g. "slow_consumer".
inline absl::string_view CloseReasonName(CloseReason reason) {
  return kCloseReasonNames[static_cast<std::size_t>(reason)];
}

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_CLOSE_REASON_H_
