// Limit: every per-client bound the core enforces, by one stable name
// (docs/security.md, README "Configuration"). Each time one refuses
// something it is counted: /stats "limits", relay_limit_hits_total{limit}.
// The setting behind each is in CoreConfig.
#ifndef RELAY_SERVER_CORE_LIMIT_H_
#define RELAY_SERVER_CORE_LIMIT_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "server/core/enum_counts.h"

namespace relay::core {

enum class Limit {
  kMessageRate,             // RATE_LIMIT_PER_SECOND / RATE_LIMIT_BURST
  kByteRate,                // RATE_LIMIT_BYTES_PER_SECOND / RATE_LIMIT_BURST_BYTES
  kRequestIdBytes,          // request_id over 256 bytes
  kPendingLlmRequests,      // llm requests waiting per requester (count)
  kPendingLlmBytes,         // MAX_PENDING_LLM_BYTES_PER_PEER
  kEventsWhileRegistering,  // what a connection pipelines while its registration is decided
  kPeersPerMesh,            // MAX_PEERS_PER_MESH
  kNonceBytes,              // MAX_NONCE_BYTES
  kTokenLifetime,           // MAX_JOIN_TOKEN_LIFETIME_SECONDS
  kNoncesPerMesh,           // MAX_NONCES_PER_MESH
  kFoundersPerMesh,         // founders kept per signed mesh
  kAuthRecords,             // MAX_AUTH_RECORDS
  kAuthRecordsPerIp,        // AUTH_RECORDS_PER_IP_PER_MINUTE
  kResumeSessions,          // MAX_RESUME_SESSIONS
  kResumeMemory,            // MAX_RESUME_MEMORY_BYTES
};

// One entry per Limit, in order: the compiler checks the table is whole.
inline constexpr std::array<absl::string_view, 15> kLimitNames = {
    "message_rate",         "byte_rate",         "request_id_bytes",
    "pending_llm_requests", "pending_llm_bytes", "events_while_registering",
    "peers_per_mesh",       "nonce_bytes",       "token_lifetime",
    "nonces_per_mesh",      "founders_per_mesh", "auth_records",
    "auth_records_per_ip",  "resume_sessions",   "resume_memory",
};
inline constexpr std::size_t kLimitCount = kLimitNames.size();
static_assert(static_cast<std::size_t>(Limit::kResumeMemory) + 1 == kLimitCount,
              "kLimitNames must name every Limit");

inline absl::string_view LimitName(Limit limit) {
  return kLimitNames[static_cast<std::size_t>(limit)];
}

// Refusals since start, by limit.
using LimitHits = EnumCounts<Limit, kLimitCount>;

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_LIMIT_H_
