// Refusal: every reason the gateway turns a connection away before the
// WebSocket handshake, as one enum, and the counts of each (GET /stats
// "refused", /metrics relay_upgrades_refused_total{reason}). Names are stable:
// they are the `error` of the HTTP body (when there is one), the /stats keys
// and the metrics labels.
#ifndef RELAY_GATEWAY_WS_REFUSAL_H_
#define RELAY_GATEWAY_WS_REFUSAL_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace relay::gateway {

enum class Refusal {
  kTooManyConnections,  // MAX_CONNECTIONS or MAX_CONNECTIONS_PER_IP reached (HTTP 503)
  kDraining,            // the relay is draining for a shutdown (HTTP 503)
  // MAX_PENDING_HANDSHAKES or MAX_PENDING_HANDSHAKES_PER_IP reached: the TCP
  // connection is closed as soon as it is accepted, before any byte is read
  // (so no HTTP answer).
  kTooManyHandshakes,
};

inline constexpr std::size_t kRefusalCount = 3;

// "too_many_connections"
absl::string_view RefusalName(Refusal refusal);

// Refusals since start, by reason. Every reason is listed, also at 0.
class RefusalCounts {
 public:
  void Add(Refusal refusal) { ++counts_[static_cast<std::size_t>(refusal)]; }
  std::uint64_t Get(Refusal refusal) const { return counts_[static_cast<std::size_t>(refusal)]; }

 private:
  std::array<std::uint64_t, kRefusalCount> counts_{};
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_REFUSAL_H_
