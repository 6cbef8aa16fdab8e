// Tests of server/metrics/histogram: inclusive upper bounds, cumulative
// counts, the +Inf bucket, NaN, and bound validation.
#include "server/metrics/histogram.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace relay::metrics {
namespace {

TEST(HistogramTest, CountsAreCumulativeWithInclusiveBounds) {
  Histogram h({0.1, 0.5, 1});
  for (double v : {0.05, 0.1, 0.3, 0.7, 5.0}) h.Observe(v);
  EXPECT_EQ(h.CumulativeCount(0), 2u);  // 0.05 and 0.1 (le is inclusive)
  EXPECT_EQ(h.CumulativeCount(1), 3u);
  EXPECT_EQ(h.CumulativeCount(2), 4u);
  EXPECT_EQ(h.CumulativeCount(3), 5u);  // +Inf
  EXPECT_EQ(h.count(), 5u);
  EXPECT_DOUBLE_EQ(h.sum(), 6.15);
}

TEST(HistogramTest, EmptyHistogramIsAllZero) {
  Histogram h(kRelayLatencyBoundsSeconds);
  for (size_t i = 0; i <= h.upper_bounds().size(); ++i) EXPECT_EQ(h.CumulativeCount(i), 0u);
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.sum(), 0);
}

TEST(HistogramTest, ValuesAboveTheLastBoundAndInfinityGoToInf) {
  Histogram h({1});
  h.Observe(2);
  h.Observe(std::numeric_limits<double>::infinity());
  EXPECT_EQ(h.CumulativeCount(0), 0u);
  EXPECT_EQ(h.CumulativeCount(1), 2u);
}

TEST(HistogramTest, NegativeValuesGoToTheFirstBucket) {
  Histogram h({0.001, 1});
  h.Observe(-0.5);
  EXPECT_EQ(h.CumulativeCount(0), 1u);
  EXPECT_DOUBLE_EQ(h.sum(), -0.5);
}

TEST(HistogramTest, NanIsIgnored) {
  Histogram h({1});
  h.Observe(0.5);
  h.Observe(std::nan(""));
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.CumulativeCount(1), 1u);
  EXPECT_DOUBLE_EQ(h.sum(), 0.5);
}

TEST(HistogramTest, DefaultBoundsAreValidAndSpanTheirRanges) {
  EXPECT_TRUE(Histogram::ValidateBounds(kRelayLatencyBoundsSeconds).ok());
  EXPECT_TRUE(Histogram::ValidateBounds(kLlmRoundTripBoundsSeconds).ok());
  Histogram relay(kRelayLatencyBoundsSeconds);
  EXPECT_EQ(relay.upper_bounds().front(), 50e-6);
  EXPECT_EQ(relay.upper_bounds().back(), 10);
  EXPECT_LE(relay.upper_bounds().size(), 20u);
  Histogram llm(kLlmRoundTripBoundsSeconds);
  EXPECT_EQ(llm.upper_bounds().front(), 0.01);
  EXPECT_EQ(llm.upper_bounds().back(), 300);
}

TEST(HistogramTest, ValidateBoundsRefusesBadLists) {
  EXPECT_EQ(Histogram::ValidateBounds({}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::ValidateBounds({1, 1}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::ValidateBounds({2, 1}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::ValidateBounds({1, std::numeric_limits<double>::infinity()}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::ValidateBounds({std::nan(""), 1}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HistogramDeathTest, ConstructorAbortsOnBadBounds) {
  EXPECT_DEATH(Histogram({1, 0.5}), "must increase strictly");
}

}  // namespace
}  // namespace relay::metrics
