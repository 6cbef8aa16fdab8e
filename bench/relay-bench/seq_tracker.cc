// Loss, duplicate and reorder accounting of one message stream (see seq_tracker.h).
#include "bench/relay-bench/seq_tracker.h"

#include <algorithm>

namespace relay::bench {

SequenceTracker::Verdict SequenceTracker::Observe(std::uint64_t seq) {
  if (seq == next_) {
    ++next_;
    ++received_;
    return Verdict::kInOrder;
  }
  if (seq > next_) {
    const std::uint64_t from = std::max(next_, seq - std::min(seq, kMaxTrackedGap));
    for (std::uint64_t s = from; s < seq; ++s) missing_.insert(s);
    next_ = seq + 1;
    ++received_;
    return Verdict::kAhead;
  }
  if (missing_.erase(seq) > 0) {
    ++received_;
    ++reordered_;
    return Verdict::kLate;
  }
  ++duplicates_;
  return Verdict::kDuplicate;
}

}  // namespace relay::bench
