// SequenceTracker: checks one stream of numbered messages (one sender to one
// receiver; sequence numbers start at 0 and go up by one) for losses,
// duplicates and reordering.
//
//   - in order: seq == next expected;
//   - reordered: a seq below the next expected that was skipped earlier
//     (it arrived late); counted once per late message;
//   - duplicate: a seq that already arrived;
//   - lost: sent minus distinct seqs received, once the run has drained.
#ifndef RELAY_BENCH_RELAY_BENCH_SEQ_TRACKER_H_
#define RELAY_BENCH_RELAY_BENCH_SEQ_TRACKER_H_

#include <cstdint>
#include <set>

namespace relay::bench {

class SequenceTracker {
 public:
  enum class Verdict { kInOrder, kAhead, kLate, kDuplicate };

  Verdict Observe(std::uint64_t seq);

  std::uint64_t received() const { return received_; }  // distinct seqs
  std::uint64_t duplicates() const { return duplicates_; }
  std::uint64_t reordered() const { return reordered_; }
  std::uint64_t next_expected() const { return next_; }
  std::uint64_t Lost(std::uint64_t sent) const { return sent > received_ ? sent - received_ : 0; }

 private:
  // Gaps below next_ (bounded: a gap wider than this is recorded only up to
  // it; the rest can then only be reported as lost or duplicate).
  static constexpr std::uint64_t kMaxTrackedGap = 1 << 16;

  std::uint64_t next_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t reordered_ = 0;
  std::set<std::uint64_t> missing_;
};

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_SEQ_TRACKER_H_
