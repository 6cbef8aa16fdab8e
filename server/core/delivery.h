// What became of one delivery handed to a PeerSink, and why a delivery was
// dropped. The core counts every drop by reason: /stats "drops",
// relay_deliveries_dropped_total{reason}. Names are stable snake_case.
#ifndef RELAY_SERVER_CORE_DELIVERY_H_
#define RELAY_SERVER_CORE_DELIVERY_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "server/core/enum_counts.h"

namespace relay::core {

enum class DropReason : std::uint8_t {
  kClosing,       // the recipient is closing or gone (replaced, kicked, shut down, left)
  kSlowConsumer,  // over the per-connection send buffer: the connection is closed for it
  kUnreachable,   // the peer's instance could not be reached over the backplane
  kResumeOverflow,  // over the recipient's resume buffer: its session ends for it
};

// One entry per DropReason, in order: the compiler checks the table is whole.
inline constexpr std::array<absl::string_view, 4> kDropReasonNames = {
    "closing",
    "slow_consumer",
    "unreachable",
    "resume_overflow",
};
inline constexpr std::size_t kDropReasonCount = kDropReasonNames.size();
static_assert(static_cast<std::size_t>(DropReason::kResumeOverflow) + 1 == kDropReasonCount,
              "kDropReasonNames must name every DropReason");

inline absl::string_view DropReasonName(DropReason reason) {
  return kDropReasonNames[static_cast<std::size_t>(reason)];
}

// A PeerSink's answer to Send: queued for the peer, or dropped and why.
class SendResult {
 public:
  static constexpr SendResult Queued() { return SendResult(true, DropReason::kClosing); }
  static constexpr SendResult Dropped(DropReason reason) { return SendResult(false, reason); }
  constexpr bool queued() const { return queued_; }
  // Meaningful only when !queued().
  constexpr DropReason reason() const { return reason_; }

 private:
  constexpr SendResult(bool queued, DropReason reason) : queued_(queued), reason_(reason) {}
  bool queued_;
  DropReason reason_;
};

// Dropped deliveries since start, by reason.
using DropCounts = EnumCounts<DropReason, kDropReasonCount>;

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_DELIVERY_H_
