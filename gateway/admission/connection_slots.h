// ConnectionSlots: the one admission policy for open connections, whatever
// their transport. A WebSocket upgrade and a gRPC Attach stream each take a
// slot when they start (before the core hears of them) and give it back when
// they end, so MAX_CONNECTIONS bounds WebSocket and gRPC peers together and
// MAX_CONNECTIONS_PER_IP counts one client IP across both. The slot is a
// move-only handle (ConnectionSlot) that gives itself back when released or
// destroyed, so it is given back exactly once however the connection ends.
//
// Threading: any thread. WebSocket takes slots on the event loop, gRPC on
// gRPC's threads; one mutex guards the counts (a few map operations per
// connection, never held across a call out). One ConnectionSlot is used by
// one thread at a time.
#ifndef RELAY_GATEWAY_ADMISSION_CONNECTION_SLOTS_H_
#define RELAY_GATEWAY_ADMISSION_CONNECTION_SLOTS_H_

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace relay::gateway {

namespace internal {
// What the keeper and its slots share: a slot may outlive the keeper (a
// connection destroyed after it at shutdown) and then counts nothing wrong.
struct SlotCounts {
  std::mutex mu;
  std::size_t total = 0;                                // guarded by mu
  absl::flat_hash_map<std::string, std::size_t> by_ip;  // guarded by mu; no zero entries
};
}  // namespace internal

// One open connection's slot. Empty when default-constructed, released or
// moved from.
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  ConnectionSlot(ConnectionSlot&& other) noexcept { *this = std::move(other); }
  ConnectionSlot& operator=(ConnectionSlot&& other) noexcept;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() { Release(); }

  // Gives the slot back; idempotent.
  void Release();
  bool held() const { return counts_ != nullptr; }

 private:
  friend class ConnectionSlots;
  std::shared_ptr<internal::SlotCounts> counts_;
  std::string client_ip_;
};

class ConnectionSlots {
 public:
  // `max_total` connections in all, `max_per_ip` from one client IP; 0
  // disables a bound.
  ConnectionSlots(std::size_t max_total, std::size_t max_per_ip)
      : max_total_(max_total), max_per_ip_(max_per_ip) {}

  // A slot for a connection from `client_ip` (the canonical text of the
  // address the transport resolved: gateway/net/client_ip.h), or
  // ResourceExhausted when the relay or this IP has all it may hold; its
  // message says which, in words meant for the client (the HTTP 503 body,
  // the gRPC status).
  absl::StatusOr<ConnectionSlot> Acquire(absl::string_view client_ip);

  // Slots held now, in total and from one IP.
  std::size_t open() const;
  std::size_t open_from(absl::string_view client_ip) const;

 private:
  const std::size_t max_total_;
  const std::size_t max_per_ip_;
  const std::shared_ptr<internal::SlotCounts> counts_ = std::make_shared<internal::SlotCounts>();
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_ADMISSION_CONNECTION_SLOTS_H_
