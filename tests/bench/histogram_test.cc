// Tests of bench/relay-bench/histogram: bucket arithmetic, percentiles within
// the stated 1/128 precision, merge and reset.
#include "bench/relay-bench/histogram.h"

#include <cstdint>
#include <random>

#include "gtest/gtest.h"

namespace relay::bench {
namespace {

TEST(HistogramTest, BucketsAreContiguousAndContainTheirValues) {
  std::uint64_t expected_low = 0;
  for (std::size_t i = 0; i + 1 < LatencyHistogram::kBucketCount; ++i) {
    const std::uint64_t low = LatencyHistogram::BucketLowest(i);
    const std::uint64_t high = LatencyHistogram::BucketHighest(i);
    ASSERT_EQ(low, expected_low) << i;
    ASSERT_LE(low, high);
    ASSERT_EQ(LatencyHistogram::BucketIndex(low), i);
    ASSERT_EQ(LatencyHistogram::BucketIndex(high), i);
    // Relative width at most 1/128 above the exact range.
    if (low >= 256) {
      ASSERT_LE(static_cast<double>(high - low + 1) / low, 1.0 / 128 + 1e-12);
    }
    expected_low = high + 1;
  }
  EXPECT_EQ(LatencyHistogram::BucketIndex(UINT64_MAX), LatencyHistogram::kBucketCount - 1);
}

TEST(HistogramTest, ExactBelow256) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 200; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 200u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 200u);
  EXPECT_EQ(h.ValueAtPercentile(50), 100u);
  EXPECT_EQ(h.ValueAtPercentile(99), 198u);
  EXPECT_EQ(h.ValueAtPercentile(100), 200u);
  EXPECT_DOUBLE_EQ(h.mean(), 100.5);
}

TEST(HistogramTest, PercentilesOfAUniformRangeWithinPrecision) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 1000000; ++v) h.Record(v * 10);  // 10 ns .. 10 ms
  for (double p : {50.0, 90.0, 99.0, 99.9, 99.99}) {
    const double exact = p / 100.0 * 1e7;
    const double got = static_cast<double>(h.ValueAtPercentile(p));
    EXPECT_GE(got, exact * (1 - 1e-9)) << p;  // never below: highest value of the bucket
    EXPECT_LE(got, exact * (1 + 1.0 / 128)) << p;
  }
  EXPECT_EQ(h.ValueAtPercentile(100), 10000000u);  // capped at the exact max
}

TEST(HistogramTest, TailPercentilesSeeRareOutliers) {
  LatencyHistogram h;
  for (int i = 0; i < 9990; ++i) h.Record(50'000);    // 50 us
  for (int i = 0; i < 10; ++i) h.Record(5'000'000);   // 5 ms: 0.1 %
  EXPECT_LE(h.ValueAtPercentile(99.9), 50'000u * 129 / 128);
  EXPECT_GE(h.ValueAtPercentile(99.95), 5'000'000u);
  EXPECT_EQ(h.max(), 5'000'000u);
}

TEST(HistogramTest, MergeEqualsRecordingEverythingInOne) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(11.0, 1.0);  // around 60 us
  LatencyHistogram a, b, all;
  for (int i = 0; i < 100000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng));
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double p : {1.0, 50.0, 99.0, 99.9}) {
    EXPECT_EQ(a.ValueAtPercentile(p), all.ValueAtPercentile(p)) << p;
  }
  a.Reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.ValueAtPercentile(50), 0u);
  EXPECT_EQ(a.max(), 0u);
}

}  // namespace
}  // namespace relay::bench
