// Refusal: every reason the relay turns a connection away before it opens,
// whatever its transport (a WebSocket upgrade, a gRPC Attach stream), as one
// enum, and the counts of each (GET /stats "refused", /metrics
// relay_upgrades_refused_total{reason}). Names are stable: they are the
// `error` of the HTTP body (when there is one), the /stats keys and the
// metrics labels (docs/protocol.md); never rename one. New reasons go last:
// /stats lists them in this order.
//
// Threading: RefusalCounts may be added to and read from any thread (the
// WebSocket gateway counts on the event loop, gRPC peers on gRPC's threads).
#ifndef RELAY_GATEWAY_ADMISSION_REFUSAL_H_
#define RELAY_GATEWAY_ADMISSION_REFUSAL_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace relay::gateway {

enum class Refusal {
  // MAX_CONNECTIONS or MAX_CONNECTIONS_PER_IP reached (ConnectionSlots):
  // HTTP 503, or gRPC RESOURCE_EXHAUSTED.
  kTooManyConnections,
  // The relay is draining for a shutdown: HTTP 503, or gRPC UNAVAILABLE.
  kDraining,
  // MAX_PENDING_HANDSHAKES or MAX_PENDING_HANDSHAKES_PER_IP reached: the TCP
  // connection is closed as soon as it is accepted, before any byte is read
  // (so no HTTP answer). WebSocket only: gRPC's own server accepts its TCP
  // connections.
  kTooManyHandshakes,
  kBadMeshId,  // /relay/{mesh_id} with an empty, too long or ill-formed id (HTTP 400)
  kNotFound,   // an upgrade to a path that is not /relay/{mesh_id} (HTTP 404)
  // Sec-WebSocket-Version missing or not 13 (HTTP 426 naming 13).
  kUnsupportedWebsocketVersion,
  // A malformed or incomplete upgrade websocketpp refused itself (no
  // Sec-WebSocket-Key, HTTP/1.1 without Host...): HTTP 400 `bad_request`.
  kBadRequest,
  // ALLOWED_ORIGINS is a list and the upgrade's Origin header is not on it
  // (gateway/http/origin_policy.h): HTTP 403. WebSocket only: browsers do
  // not speak gRPC.
  kOriginNotAllowed,
};

// One entry per Refusal, in order: the compiler checks the table is whole.
inline constexpr std::array<absl::string_view, 8> kRefusalNames = {
    "too_many_connections", "draining",           "too_many_handshakes",
    "bad_mesh_id",          "not_found",          "unsupported_websocket_version",
    "bad_request",          "origin_not_allowed",
};
inline constexpr std::size_t kRefusalCount = kRefusalNames.size();
static_assert(static_cast<std::size_t>(Refusal::kOriginNotAllowed) + 1 == kRefusalCount,
              "kRefusalNames must name every Refusal");

// "too_many_connections"
inline absl::string_view RefusalName(Refusal refusal) {
  return kRefusalNames[static_cast<std::size_t>(refusal)];
}

// Refusals since start, by reason. Every reason is listed, also at 0.
class RefusalCounts {
 public:
  // Returns the count of `refusal` with this one, so that a caller can log
  // only some of a storm of them.
  std::uint64_t Add(Refusal refusal) {
    return counts_[static_cast<std::size_t>(refusal)].fetch_add(1, std::memory_order_relaxed) + 1;
  }
  std::uint64_t Get(Refusal refusal) const {
    return counts_[static_cast<std::size_t>(refusal)].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<std::uint64_t>, kRefusalCount> counts_{};
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_ADMISSION_REFUSAL_H_
