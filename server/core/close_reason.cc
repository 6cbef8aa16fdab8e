#include "server/core/close_reason.h"

namespace relay::core {

absl::string_view CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kClientClosed:
      return "client_closed";
    case CloseReason::kReplaced:
      return "replaced";
    case CloseReason::kServerShutdown:
      return "server_shutdown";
    case CloseReason::kRegistrationTimeout:
      return "registration_timeout";
    case CloseReason::kMessageTooBig:
      return "message_too_big";
    case CloseReason::kInvalidFrame:
      return "invalid_frame";
    case CloseReason::kKeepaliveTimeout:
      return "keepalive_timeout";
    case CloseReason::kTransportError:
      return "transport_error";
    case CloseReason::kSlowConsumer:
      return "slow_consumer";
    case CloseReason::kRateLimited:
      return "rate_limited";
    case CloseReason::kAuthFailed:
      return "auth_failed";
    case CloseReason::kKicked:
      return "kicked";
    case CloseReason::kMeshClosed:
      return "mesh_closed";
  }
  return "unknown";
}

}  // namespace relay::core
