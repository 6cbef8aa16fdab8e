#include "server/core/rate_limiter.h"

#include <algorithm>

namespace relay::core {

RateLimiter::RateLimiter(const RateLimits& limits, absl::Time now)
    : message_tokens_(static_cast<double>(limits.message_burst)),
      byte_tokens_(static_cast<double>(limits.byte_burst)),
      refilled_at_(now) {}

RateLimiter::Verdict RateLimiter::Admit(const RateLimits& limits, std::size_t wire_bytes,
                                        absl::Time now) {
  const bool by_count = limits.messages_per_second > 0;
  const bool by_bytes = limits.bytes_per_second > 0 && wire_bytes > 0;
  if (!by_count && !by_bytes) return Verdict::kAdmitted;
  const double elapsed = absl::ToDoubleSeconds(now - refilled_at_);
  refilled_at_ = now;
  if (limits.messages_per_second > 0) {
    message_tokens_ = std::min(static_cast<double>(limits.message_burst),
                               message_tokens_ + elapsed * limits.messages_per_second);
  }
  if (limits.bytes_per_second > 0) {
    byte_tokens_ = std::min(static_cast<double>(limits.byte_burst),
                            byte_tokens_ + elapsed * limits.bytes_per_second);
  }
  const double bytes_needed =
      std::min(static_cast<double>(wire_bytes), static_cast<double>(limits.byte_burst));
  const bool count_ok = !by_count || message_tokens_ >= 1;
  const bool bytes_ok = !by_bytes || byte_tokens_ >= bytes_needed;
  if (count_ok && bytes_ok) {
    if (by_count) message_tokens_ -= 1;
    if (by_bytes) byte_tokens_ -= bytes_needed;
    refusals_in_row_ = 0;
    return Verdict::kAdmitted;
  }
  ++refusals_in_row_;
  return count_ok ? Verdict::kOverBytes : Verdict::kOverMessages;
}

}  // namespace relay::core
