// Tests of bench/relay-bench/seq_tracker: in-order streams, losses,
// duplicates and late (reordered) messages.
#include "bench/relay-bench/seq_tracker.h"

#include "gtest/gtest.h"

namespace relay::bench {
namespace {

using Verdict = SequenceTracker::Verdict;

TEST(SequenceTrackerTest, InOrderStreamIsClean) {
  SequenceTracker t;
  for (std::uint64_t s = 0; s < 1000; ++s) ASSERT_EQ(t.Observe(s), Verdict::kInOrder);
  EXPECT_EQ(t.received(), 1000u);
  EXPECT_EQ(t.Lost(1000), 0u);
  EXPECT_EQ(t.duplicates(), 0u);
  EXPECT_EQ(t.reordered(), 0u);
}

TEST(SequenceTrackerTest, GapNeverFilledIsLost) {
  SequenceTracker t;
  t.Observe(0);
  t.Observe(1);
  EXPECT_EQ(t.Observe(4), Verdict::kAhead);  // 2 and 3 missing
  t.Observe(5);
  EXPECT_EQ(t.received(), 4u);
  EXPECT_EQ(t.Lost(6), 2u);
  EXPECT_EQ(t.reordered(), 0u);
}

TEST(SequenceTrackerTest, LateArrivalIsReorderedNotLost) {
  SequenceTracker t;
  t.Observe(0);
  t.Observe(2);
  EXPECT_EQ(t.Observe(1), Verdict::kLate);
  EXPECT_EQ(t.reordered(), 1u);
  EXPECT_EQ(t.Lost(3), 0u);
  EXPECT_EQ(t.Observe(1), Verdict::kDuplicate);  // and again: a duplicate
  EXPECT_EQ(t.duplicates(), 1u);
}

TEST(SequenceTrackerTest, RepeatsAreDuplicates) {
  SequenceTracker t;
  t.Observe(0);
  t.Observe(1);
  EXPECT_EQ(t.Observe(1), Verdict::kDuplicate);
  EXPECT_EQ(t.Observe(0), Verdict::kDuplicate);
  EXPECT_EQ(t.duplicates(), 2u);
  EXPECT_EQ(t.received(), 2u);
  EXPECT_EQ(t.Lost(2), 0u);
}

TEST(SequenceTrackerTest, MissingAtTheEndIsLost) {
  SequenceTracker t;
  for (std::uint64_t s = 0; s < 10; ++s) t.Observe(s);
  EXPECT_EQ(t.Lost(16), 6u);  // 10..15 sent, never arrived
}

}  // namespace
}  // namespace relay::bench
