// What the core counts about user traffic for /metrics: each kind of
// delivery (TrafficType) and how each llm request ended (LlmOutcome), by
// stable snake_case names (relay_messages_relayed_total{type},
// relay_relayed_payload_bytes_total{type}, relay_llm_requests_total{outcome};
// docs/operations.md). Never rename one: dashboards and alerts match them.
#ifndef RELAY_SERVER_CORE_TRAFFIC_H_
#define RELAY_SERVER_CORE_TRAFFIC_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace relay::core {

// How llm requests ended, for metrics.
enum class LlmOutcome {
  kAnswered,            // the responder's first llm_response reached the requester
  kNoLlmPeer,           // no capable peer: refused at once
  kTooManyRequests,     // the requester had too many waiting: refused at once
  kPeerLeft,            // the responder left before answering (llm_peer_left)
  kRequesterLeft,       // the requester left before the answer
  kClusterUnavailable,  // the chosen responder's instance could not be reached: refused at once
};

// One entry per LlmOutcome, in order: the compiler checks the table is whole.
inline constexpr std::array<absl::string_view, 6> kLlmOutcomeNames = {
    "answered",  "no_llm_peer",    "too_many_requests",
    "peer_left", "requester_left", "cluster_unavailable",
};
inline constexpr std::size_t kLlmOutcomeCount = kLlmOutcomeNames.size();
static_assert(static_cast<std::size_t>(LlmOutcome::kClusterUnavailable) + 1 == kLlmOutcomeCount,
              "kLlmOutcomeNames must name every LlmOutcome");

inline absl::string_view LlmOutcomeName(LlmOutcome outcome) {
  return kLlmOutcomeNames[static_cast<std::size_t>(outcome)];
}

// Which kind of user traffic a delivery was, for metrics.
enum class TrafficType { kBroadcast, kDirect, kLlmRequest, kLlmResponse };

// One entry per TrafficType, in order: the compiler checks the table is whole.
inline constexpr std::array<absl::string_view, 4> kTrafficTypeNames = {
    "broadcast",
    "direct",
    "llm_request",
    "llm_response",
};
inline constexpr std::size_t kTrafficTypeCount = kTrafficTypeNames.size();
static_assert(static_cast<std::size_t>(TrafficType::kLlmResponse) + 1 == kTrafficTypeCount,
              "kTrafficTypeNames must name every TrafficType");

inline absl::string_view TrafficTypeName(TrafficType type) {
  return kTrafficTypeNames[static_cast<std::size_t>(type)];
}

// Message types that shipped clients send but no relay routes
// (relay_unrouted_messages_total{type}). The names are also the wire "type"s
// the gateway recognises, so protocol, metrics and docs share one list.
enum class UnroutedType { kGossip, kIntent, kRouteRequest, kRouteResponse };

// One entry per UnroutedType, in order: the compiler checks the table is whole.
inline constexpr std::array<absl::string_view, 4> kUnroutedTypeNames = {
    "gossip",
    "intent",
    "route_request",
    "route_response",
};
inline constexpr std::size_t kUnroutedTypeCount = kUnroutedTypeNames.size();
static_assert(static_cast<std::size_t>(UnroutedType::kRouteResponse) + 1 == kUnroutedTypeCount,
              "kUnroutedTypeNames must name every UnroutedType");

inline absl::string_view UnroutedTypeName(UnroutedType type) {
  return kUnroutedTypeNames[static_cast<std::size_t>(type)];
}

// Monotonic counters beyond Stats, for /metrics.
struct TrafficCounters {
  // Deliveries (a broadcast to N peers counts N) and their payload bytes (the
  // raw JSON the relay forwards: payload, or request_id and members).
  std::array<std::uint64_t, kTrafficTypeCount> deliveries{};
  std::array<std::uint64_t, kTrafficTypeCount> payload_bytes{};
  std::array<std::uint64_t, kLlmOutcomeCount> llm_outcomes{};
  // Unrouted messages received from registered peers, by type.
  std::array<std::uint64_t, kUnroutedTypeCount> unrouted{};
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_TRAFFIC_H_
