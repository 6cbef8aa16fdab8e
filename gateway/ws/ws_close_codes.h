// The WebSocket close code and reason text the relay sends for each
// CloseReason it initiates (docs/protocol.md, "Close codes").
#ifndef RELAY_GATEWAY_WS_WS_CLOSE_CODES_H_
#define RELAY_GATEWAY_WS_WS_CLOSE_CODES_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "server/core/close_reason.h"

namespace relay::gateway {

struct WsClose {
  std::uint16_t code;
  absl::string_view text;
};

inline WsClose WsCloseFor(core::CloseReason reason) {
  using core::CloseReason;
  switch (reason) {
    case CloseReason::kReplaced:
      return {1000, "replaced"};
    case CloseReason::kServerShutdown:
      return {1001, "server shutting down"};
    case CloseReason::kRegistrationTimeout:
      return {1008, "registration timeout"};
    case CloseReason::kMessageTooBig:
      return {1009, "message too big"};
    case CloseReason::kInvalidFrame:
      return {1007, "invalid frame"};
    case CloseReason::kKeepaliveTimeout:
      return {1001, "keepalive timeout"};
    case CloseReason::kClientClosed:
      return {1000, "closed"};
    case CloseReason::kTransportError:
      return {1011, "internal error"};
    case CloseReason::kSlowConsumer:
      return {1013, "slow consumer"};
    case CloseReason::kRateLimited:
      return {1008, "rate limited"};
    case CloseReason::kAuthFailed:
      return {1008, "auth failed"};
    case CloseReason::kKicked:
      return {1008, "kicked"};
    case CloseReason::kMeshClosed:
      return {1008, "mesh closed"};
  }
  return {1011, "internal error"};
}

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_WS_CLOSE_CODES_H_
