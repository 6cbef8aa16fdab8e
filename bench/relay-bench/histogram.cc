// Log-linear latency histogram (see histogram.h).
//
// Layout: indexes 0..255 hold the values 0..255. A value v >= 256 with its
// highest set bit at position e (8..63) keeps its top 8 bits m (128..255):
// index 256 + (e - 8) * 128 + (m - 128); the bucket spans [m << (e-7),
// ((m+1) << (e-7)) - 1].
#include "bench/relay-bench/histogram.h"

#include <algorithm>
#include <cmath>

namespace relay::bench {

namespace {
constexpr int kSubBits = 7;  // 128 buckets per power of two
constexpr std::uint64_t kExactLimit = 256;
}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

std::size_t LatencyHistogram::BucketIndex(std::uint64_t value) {
  if (value < kExactLimit) return static_cast<std::size_t>(value);
  const int e = 63 - __builtin_clzll(value);
  const int shift = e - kSubBits;
  const std::uint64_t m = value >> shift;  // 128..255
  return 256 + static_cast<std::size_t>(e - 8) * 128 + static_cast<std::size_t>(m - 128);
}

std::uint64_t LatencyHistogram::BucketLowest(std::size_t index) {
  if (index < kExactLimit) return index;
  const std::size_t e = 8 + (index - 256) / 128;
  const std::uint64_t m = 128 + (index - 256) % 128;
  return m << (e - kSubBits);
}

std::uint64_t LatencyHistogram::BucketHighest(std::size_t index) {
  if (index < kExactLimit) return index;
  const std::size_t e = 8 + (index - 256) / 128;
  const std::uint64_t m = 128 + (index - 256) % 128;
  const std::size_t shift = e - kSubBits;
  if (m == 255 && e == 63) return UINT64_MAX;
  return ((m + 1) << shift) - 1;
}

void LatencyHistogram::Record(std::uint64_t value_ns) {
  ++counts_[BucketIndex(value_ns)];
  ++count_;
  sum_ += value_ns;
  min_ = std::min(min_, value_ns);
  max_ = std::max(max_, value_ns);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

std::uint64_t LatencyHistogram::ValueAtPercentile(double percentile) const {
  if (count_ == 0) return 0;
  const double clamped = std::clamp(percentile, 0.0, 100.0);
  // The small slack keeps floating-point error (99.9 / 100 * 10000 is a hair
  // above 9990) from moving the rank up by one.
  const double exact_rank = clamped / 100.0 * static_cast<double>(count_);
  auto rank = static_cast<std::uint64_t>(std::ceil(exact_rank - 1e-6));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(BucketHighest(i), max_);
  }
  return max_;
}

}  // namespace relay::bench
