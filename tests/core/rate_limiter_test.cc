// Tests for server/core/rate_limiter.h: the message and byte buckets,
// refills by the clock, the largest message, the run of refusals.
#include "server/core/rate_limiter.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace relay::core {
namespace {

using Verdict = RateLimiter::Verdict;

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

TEST(RateLimiterTest, TheMessageBurstPassesThenOneMessagePerRefillInterval) {
  const RateLimits limits{/*messages_per_second=*/2, /*message_burst=*/3, 0, 0};
  RateLimiter rate(limits, kStart);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rate.Admit(limits, 10, kStart), Verdict::kAdmitted);
  EXPECT_EQ(rate.Admit(limits, 10, kStart), Verdict::kOverMessages);
  EXPECT_EQ(rate.Admit(limits, 10, kStart + absl::Milliseconds(250)), Verdict::kOverMessages);
  EXPECT_EQ(rate.refusals_in_row(), 2u);
  EXPECT_EQ(rate.Admit(limits, 10, kStart + absl::Milliseconds(500)), Verdict::kAdmitted);
  EXPECT_EQ(rate.refusals_in_row(), 0u);
}

TEST(RateLimiterTest, TheByteBucketRefusesWhatTheMessageBucketAllows) {
  const RateLimits limits{100, 100, /*bytes_per_second=*/1000, /*byte_burst=*/1500};
  RateLimiter rate(limits, kStart);
  EXPECT_EQ(rate.Admit(limits, 1000, kStart), Verdict::kAdmitted);
  EXPECT_EQ(rate.Admit(limits, 1000, kStart), Verdict::kOverBytes);
  EXPECT_EQ(rate.Admit(limits, 1000, kStart + absl::Milliseconds(500)), Verdict::kAdmitted);
}

TEST(RateLimiterTest, AMessageLargerThanTheByteBurstPassesOnAFullBucket) {
  const RateLimits limits{0, 0, /*bytes_per_second=*/100, /*byte_burst=*/1000};
  RateLimiter rate(limits, kStart);
  EXPECT_EQ(rate.Admit(limits, 5000, kStart), Verdict::kAdmitted);
  EXPECT_EQ(rate.Admit(limits, 5000, kStart + absl::Seconds(9)), Verdict::kOverBytes);
  EXPECT_EQ(rate.Admit(limits, 5000, kStart + absl::Seconds(10)), Verdict::kAdmitted);
}

TEST(RateLimiterTest, NoLimitsAdmitEverythingAndUncountedBytesSkipTheByteBucket) {
  const RateLimits none{};
  RateLimiter unlimited(none, kStart);
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(unlimited.Admit(none, 1 << 20, kStart), Verdict::kAdmitted);
  const RateLimits bytes_only{0, 0, 10, 10};
  RateLimiter rate(bytes_only, kStart);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(rate.Admit(bytes_only, 0, kStart), Verdict::kAdmitted);
}

TEST(RateLimiterTest, ABucketNeverFillsPastItsBurstWhileIdle) {
  const RateLimits limits{1, 2, 0, 0};
  RateLimiter rate(limits, kStart);
  const absl::Time later = kStart + absl::Hours(1);
  EXPECT_EQ(rate.Admit(limits, 1, later), Verdict::kAdmitted);
  EXPECT_EQ(rate.Admit(limits, 1, later), Verdict::kAdmitted);
  EXPECT_EQ(rate.Admit(limits, 1, later), Verdict::kOverMessages);
}

}  // namespace
}  // namespace relay::core
