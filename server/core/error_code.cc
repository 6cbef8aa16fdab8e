#include "server/core/error_code.h"

namespace relay::core {

absl::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kBadJson:
      return "bad_json";
    case ErrorCode::kBadMessage:
      return "bad_message";
    case ErrorCode::kUnknownType:
      return "unknown_type";
    case ErrorCode::kNotRegistered:
      return "not_registered";
    case ErrorCode::kAlreadyRegistered:
      return "already_registered";
    case ErrorCode::kNodeIdInUse:
      return "node_id_in_use";
    case ErrorCode::kUnknownTarget:
      return "unknown_target";
    case ErrorCode::kNoLlmPeer:
      return "no_llm_peer";
    case ErrorCode::kLlmPeerLeft:
      return "llm_peer_left";
    case ErrorCode::kTooManyRequests:
      return "too_many_requests";
    case ErrorCode::kAuthFailed:
      return "auth_failed";
    case ErrorCode::kRateLimited:
      return "rate_limited";
    case ErrorCode::kMeshFull:
      return "mesh_full";
    case ErrorCode::kKicked:
      return "kicked";
    case ErrorCode::kMeshClosed:
      return "mesh_closed";
    case ErrorCode::kAuthUnavailable:
      return "auth_unavailable";
  }
  return "unknown";
}

}  // namespace relay::core
