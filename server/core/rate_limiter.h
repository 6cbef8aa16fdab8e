// RateLimiter: one connection's two token buckets, on messages and on wire
// bytes (RATE_LIMIT_PER_SECOND / _BURST, RATE_LIMIT_BYTES_PER_SECOND /
// _BURST_BYTES), and its run of refusals. The core answers what it decides.
#ifndef RELAY_SERVER_CORE_RATE_LIMITER_H_
#define RELAY_SERVER_CORE_RATE_LIMITER_H_

#include <cstddef>

#include "absl/time/time.h"

namespace relay::core {

struct RateLimits {
  double messages_per_second = 0;  // 0: no message limit
  std::size_t message_burst = 0;
  double bytes_per_second = 0;  // 0: no byte limit
  std::size_t byte_burst = 0;
};

class RateLimiter {
 public:
  enum class Verdict {
    kAdmitted,
    kOverMessages,  // refused: over the message rate
    kOverBytes,     // refused: over the byte rate (the message rate allowed it)
  };

  // Both buckets start full at `now`.
  RateLimiter(const RateLimits& limits, absl::Time now);

  // Takes one message of `wire_bytes` (0: uncounted bytes) at `now`, or
  // refuses it. A message larger than the whole byte burst waits for a
  // full bucket rather than for ever.
  Verdict Admit(const RateLimits& limits, std::size_t wire_bytes, absl::Time now);

  // Refusals since the last admitted message.
  std::size_t refusals_in_row() const { return refusals_in_row_; }

 private:
  double message_tokens_;
  double byte_tokens_;
  absl::Time refilled_at_;
  std::size_t refusals_in_row_ = 0;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_RATE_LIMITER_H_
