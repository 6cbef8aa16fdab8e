// Refusal: every reason the gateway turns a WebSocket upgrade away before the
// handshake, as one enum, and the counts of each (GET /stats "refused").
// Names are stable: they are the `error` of the HTTP body, and the /stats keys.
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
};

inline constexpr std::size_t kRefusalCount = 2;

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
