// LatencyHistogram: a log-linear histogram of nanosecond values, in the
// manner of HdrHistogram (no external library). Values below 256 ns are
// counted exactly; above, each power of two is split into 128 equal buckets,
// so any reported value is within 1/128 (0.8%) of a recorded one. Fixed size
// (7,424 counters), O(1) to record, mergeable.
#ifndef RELAY_BENCH_RELAY_BENCH_HISTOGRAM_H_
#define RELAY_BENCH_RELAY_BENCH_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace relay::bench {

class LatencyHistogram {
 public:
  LatencyHistogram();

  void Record(std::uint64_t value_ns);
  void Merge(const LatencyHistogram& other);
  void Reset();

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The value at `percentile` (0..100]: the highest value of the bucket that
  // holds the ceil(percentile% * count)-th smallest recording, capped at
  // max(). 0 when empty.
  std::uint64_t ValueAtPercentile(double percentile) const;

  // Bucket arithmetic, public for the tests.
  static std::size_t BucketIndex(std::uint64_t value);
  static std::uint64_t BucketLowest(std::size_t index);
  static std::uint64_t BucketHighest(std::size_t index);
  static constexpr std::size_t kBucketCount = 256 + 56 * 128;

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  unsigned __int128 sum_ = 0;
};

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_HISTOGRAM_H_
