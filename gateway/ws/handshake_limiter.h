// HandshakeLimiter: bounds the connections still in their handshake (TCP
// accepted, no HTTP request answered and no WebSocket opened yet), in total
// and per client IP. Such sockets hold no connection slot (MAX_CONNECTIONS
// counts upgrades), so without this bound idle sockets from one address take
// the relay to its fd limit. The gateway admits each accepted socket here and
// keeps the HandshakeToken in the connection's state (ws_config.h): the
// count drops when the token is released or destroyed, however the
// handshake ends (open, HTTP answer, failure, timeout).
//
// Threading: the event loop's thread only, like the gateway.
#ifndef RELAY_GATEWAY_WS_HANDSHAKE_LIMITER_H_
#define RELAY_GATEWAY_WS_HANDSHAKE_LIMITER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace relay::gateway {

namespace internal {
// What the limiter and its tokens share: a token may outlive the limiter
// (a connection destroyed after the gateway), and then counts nothing.
struct HandshakeCounts {
  std::size_t total = 0;
  absl::flat_hash_map<std::string, std::size_t> by_ip;  // no zero entries
};
}  // namespace internal

// One connection's place in the handshake count. Move-only; empty when
// default-constructed, released or moved from.
class HandshakeToken {
 public:
  HandshakeToken() = default;
  HandshakeToken(HandshakeToken&& other) noexcept { *this = std::move(other); }
  HandshakeToken& operator=(HandshakeToken&& other) noexcept;
  HandshakeToken(const HandshakeToken&) = delete;
  HandshakeToken& operator=(const HandshakeToken&) = delete;
  ~HandshakeToken() { Release(); }

  // Leaves the handshake count; idempotent.
  void Release();
  bool held() const { return counts_ != nullptr; }

 private:
  friend class HandshakeLimiter;
  std::shared_ptr<internal::HandshakeCounts> counts_;
  std::string ip_;       // the per-IP key; empty when exempt from it
  bool per_ip_ = false;  // counted in counts_->by_ip
};

class HandshakeLimiter {
 public:
  // 0 disables a bound.
  HandshakeLimiter(std::size_t max_total, std::size_t max_per_ip)
      : max_total_(max_total), max_per_ip_(max_per_ip) {}

  enum class Verdict {
    kAdmitted,
    kTotalFull,  // max_total handshakes in progress
    kPerIpFull,  // max_per_ip handshakes in progress from this IP
  };

  // Admits a socket from `ip` (its TCP peer address) and fills `token`, or
  // says which bound is full (the token is then left empty). A socket from a
  // trusted proxy (`per_ip_exempt`) carries many clients: only the total
  // applies to it, and it is not counted per IP.
  Verdict Admit(absl::string_view ip, bool per_ip_exempt, HandshakeToken* token);

  std::size_t pending() const { return counts_->total; }
  std::size_t pending_from(absl::string_view ip) const;

 private:
  const std::size_t max_total_;
  const std::size_t max_per_ip_;
  std::shared_ptr<internal::HandshakeCounts> counts_ =
      std::make_shared<internal::HandshakeCounts>();
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_HANDSHAKE_LIMITER_H_
