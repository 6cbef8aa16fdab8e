// ErrorCode: every reason the relay answers a client with an `error` event.
// The snake_case names are part of the protocol (docs/protocol.md) and label
// the error counters in /stats; never rename one.
#ifndef RELAY_SERVER_CORE_ERROR_CODE_H_
#define RELAY_SERVER_CORE_ERROR_CODE_H_

#include <array>
#include <cstddef>

#include "absl/strings/string_view.h"

namespace relay::core {

enum class ErrorCode {
  kBadJson,             // frame is not JSON (or too deeply nested, or not UTF-8)
  kBadMessage,          // JSON, but not an object or a field is missing/mistyped
  kUnknownType,         // "type" names no message of the protocol
  kNotRegistered,       // anything but register/join before registering
  kAlreadyRegistered,   // register/join on a registered connection
  kNodeIdInUse,         // node_id held by another connection with other credentials
  kUnknownTarget,       // direct/llm_response to a node not in the mesh
  kNoLlmPeer,           // llm_request with no other peer capable of "llm"
  kLlmPeerLeft,         // the peer handling an llm_request disconnected
  kTooManyRequests,     // too many outstanding llm requests from one peer
  kAuthFailed,          // credentials the mesh does not accept (then closed 1008)
  kRateLimited,         // over the per-connection message rate
  kMeshFull,            // the mesh has its maximum number of peers
  kKicked,              // an operator closed this peer (then closed 1008)
  kMeshClosed,          // an operator closed this mesh (then closed 1008)
  kAuthUnavailable,     // the relay cannot record new credentials now (its bound is reached)
  kClusterUnavailable,  // the event is for a peer on another instance, which cannot be reached
  kSeqRequired,         // a frame of a resume session without a valid "seq"
};

// One entry per ErrorCode, in order: the compiler checks the table is whole.
inline constexpr std::array<absl::string_view, 18> kErrorCodeNames = {
    "bad_json",
    "bad_message",
    "unknown_type",
    "not_registered",
    "already_registered",
    "node_id_in_use",
    "unknown_target",
    "no_llm_peer",
    "llm_peer_left",
    "too_many_requests",
    "auth_failed",
    "rate_limited",
    "mesh_full",
    "kicked",
    "mesh_closed",
    "auth_unavailable",
    "cluster_unavailable",
    "seq_required",
};
inline constexpr std::size_t kErrorCodeCount = kErrorCodeNames.size();
static_assert(static_cast<std::size_t>(ErrorCode::kSeqRequired) + 1 == kErrorCodeCount,
              "kErrorCodeNames must name every ErrorCode");

// Every ErrorCode, in order (Stats lists them all, also at 0).
inline constexpr std::array<ErrorCode, kErrorCodeCount> kAllErrorCodes = [] {
  std::array<ErrorCode, kErrorCodeCount> all{};
  for (std::size_t i = 0; i < kErrorCodeCount; ++i) all[i] = static_cast<ErrorCode>(i);
  return all;
}();

// The stable protocol name, e.g. "unknown_target".
inline absl::string_view ErrorCodeName(ErrorCode code) {
  return kErrorCodeNames[static_cast<std::size_t>(code)];
}

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_ERROR_CODE_H_
