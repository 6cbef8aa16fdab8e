// Tests for server/core/llm_dispatch.cc alone: who is picked, and the
// bookkeeping of which requests each peer holds and has asked for.
#include "server/core/llm_dispatch.h"

#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::core {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;

// Candidates with join_seq i+1 and connection id 100+i+1 (ids differ from
// join order on purpose).
std::vector<LlmDispatch::Candidate> Candidates(int n) {
  std::vector<LlmDispatch::Candidate> out;
  for (int i = 1; i <= n; ++i) {
    out.push_back({JoinKey{static_cast<std::uint64_t>(i), "local"}, static_cast<MemberId>(100 + i)});
  }
  return out;
}

std::vector<ConnectionId> Requesters(const std::vector<LlmDispatch::Pending>& pending) {
  std::vector<ConnectionId> out;
  for (const auto& p : pending) out.push_back(p.requester);
  return out;
}

std::vector<std::string> RequestIds(const std::vector<LlmDispatch::Pending>& pending) {
  std::vector<std::string> out;
  for (const auto& p : pending) out.push_back(p.request_id);
  return out;
}

TEST(LlmDispatchTest, PickOnNoCandidatesIsNullopt) {
  LlmDispatch dispatch;

  EXPECT_EQ(dispatch.Pick({}), std::nullopt);
}

TEST(LlmDispatchTest, PickOnOneCandidateAlwaysPicksIt) {
  LlmDispatch dispatch;
  const auto one = Candidates(1);

  EXPECT_THAT(dispatch.Pick(one), Optional(101u));
  EXPECT_THAT(dispatch.Pick(one), Optional(101u));
}

TEST(LlmDispatchTest, PickGoesRoundRobinInJoinOrderAmongEquals) {
  LlmDispatch dispatch;
  const auto three = Candidates(3);
  std::vector<ConnectionId> picked;

  for (int i = 0; i < 7; ++i) picked.push_back(*dispatch.Pick(three));

  EXPECT_THAT(picked, ElementsAre(101u, 102u, 103u, 101u, 102u, 103u, 101u));
}

TEST(LlmDispatchTest, RoundRobinContinuesAfterTheLastPickWhenTheSetChanges) {
  LlmDispatch dispatch;
  auto three = Candidates(3);
  EXPECT_THAT(dispatch.Pick(three), Optional(101u));  // last pick: seq 1

  // Seq 2 left; the next after seq 1 is seq 3.
  std::vector<LlmDispatch::Candidate> without_second = {three[0], three[2]};
  EXPECT_THAT(dispatch.Pick(without_second), Optional(103u));
  // Wraps to the first in join order.
  EXPECT_THAT(dispatch.Pick(without_second), Optional(101u));
}

TEST(LlmDispatchTest, PickPrefersTheCandidateHoldingFewest) {
  LlmDispatch dispatch;
  const auto three = Candidates(3);
  dispatch.Track(1, "\"a\"", 101);
  dispatch.Track(1, "\"b\"", 101);
  dispatch.Track(1, "\"c\"", 102);

  EXPECT_THAT(dispatch.Pick(three), Optional(103u));
  dispatch.Track(1, "\"d\"", 103);
  // 102 and 103 hold one each, 101 two: round robin among 102 and 103 after 103.
  EXPECT_THAT(dispatch.Pick(three), Optional(102u));
}

TEST(LlmDispatchTest, FewestWinsEvenWhenItIsNotItsTurn) {
  LlmDispatch dispatch;
  const auto two = Candidates(2);
  EXPECT_THAT(dispatch.Pick(two), Optional(101u));
  dispatch.Track(1, "1", 101);
  EXPECT_THAT(dispatch.Pick(two), Optional(102u));
  dispatch.Track(1, "2", 102);
  ASSERT_TRUE(dispatch.Settle(1, "1", 101));  // 101: 0, 102: 1

  // Round robin alone would say 101 anyway; make 102 free and 101 busy.
  dispatch.Track(1, "3", 101);
  dispatch.Track(1, "4", 101);  // 101: 2, 102: 1
  EXPECT_THAT(dispatch.Pick(two), Optional(102u));
  dispatch.Track(1, "5", 102);  // 101: 2, 102: 2
  EXPECT_THAT(dispatch.Pick(two), Optional(101u));
}

TEST(LlmDispatchTest, TrackCountsHeldAndRequested) {
  LlmDispatch dispatch;

  dispatch.Track(1, "\"a\"", 101);
  dispatch.Track(1, "\"b\"", 102);
  dispatch.Track(2, "\"a\"", 101);  // same id from another requester: distinct

  EXPECT_EQ(dispatch.pending(), 3u);
  EXPECT_EQ(dispatch.HeldBy(101), 2u);
  EXPECT_EQ(dispatch.HeldBy(102), 1u);
  EXPECT_EQ(dispatch.HeldBy(103), 0u);
  EXPECT_EQ(dispatch.RequestedBy(1), 2u);
  EXPECT_EQ(dispatch.RequestedBy(2), 1u);
  EXPECT_EQ(dispatch.RequestedBy(3), 0u);
}

TEST(LlmDispatchTest, SettleForgetsTheRequestOnce) {
  LlmDispatch dispatch;
  dispatch.Track(1, "\"a\"", 101);

  EXPECT_TRUE(dispatch.Settle(1, "\"a\"", 101));
  EXPECT_FALSE(dispatch.Settle(1, "\"a\"", 101));  // a second chunk

  EXPECT_EQ(dispatch.pending(), 0u);
  EXPECT_EQ(dispatch.HeldBy(101), 0u);
  EXPECT_EQ(dispatch.RequestedBy(1), 0u);
}

TEST(LlmDispatchTest, SettleByAnotherResponderOrForAnotherRequesterMatchesNothing) {
  LlmDispatch dispatch;
  dispatch.Track(1, "\"a\"", 101);

  EXPECT_FALSE(dispatch.Settle(1, "\"a\"", 102));
  EXPECT_FALSE(dispatch.Settle(2, "\"a\"", 101));
  EXPECT_FALSE(dispatch.Settle(1, "\"b\"", 101));
  // Raw ids: "1" (number) and "\"1\"" (string) are different requests.
  EXPECT_FALSE(dispatch.Settle(1, "a", 101));

  EXPECT_EQ(dispatch.pending(), 1u);
  EXPECT_EQ(dispatch.HeldBy(101), 1u);
}

TEST(LlmDispatchTest, ResponderGoneReturnsItsRequestsOldestFirstAndForgetsThem) {
  LlmDispatch dispatch;
  dispatch.Track(2, "\"first\"", 101);
  dispatch.Track(1, "\"other\"", 102);
  dispatch.Track(1, "\"second\"", 101);
  dispatch.Track(3, "\"third\"", 101);
  dispatch.Track(2, "\"fourth\"", 101);
  ASSERT_TRUE(dispatch.Settle(1, "\"second\"", 101));

  std::vector<LlmDispatch::Pending> gone = dispatch.ResponderGone(101);

  EXPECT_THAT(RequestIds(gone), ElementsAre("\"first\"", "\"third\"", "\"fourth\""));
  EXPECT_THAT(Requesters(gone), ElementsAre(2u, 3u, 2u));
  EXPECT_EQ(dispatch.HeldBy(101), 0u);
  EXPECT_EQ(dispatch.RequestedBy(2), 0u);
  EXPECT_EQ(dispatch.RequestedBy(3), 0u);
  EXPECT_EQ(dispatch.RequestedBy(1), 1u);
  EXPECT_EQ(dispatch.pending(), 1u);
  EXPECT_THAT(dispatch.ResponderGone(101), IsEmpty());
}

TEST(LlmDispatchTest, ResponderGoneOrdersManyRequestsOldestFirst) {
  LlmDispatch dispatch;
  std::vector<std::string> expected;
  for (int i = 0; i < 50; ++i) {
    const std::string id = std::to_string(i);
    dispatch.Track(static_cast<ConnectionId>(i % 7), id, 101);
    expected.push_back(id);
  }

  EXPECT_EQ(RequestIds(dispatch.ResponderGone(101)), expected);
}

TEST(LlmDispatchTest, RequesterGoneForgetsItsRequestsAndFreesTheResponders) {
  LlmDispatch dispatch;
  dispatch.Track(1, "\"a\"", 101);
  dispatch.Track(1, "\"b\"", 102);
  dispatch.Track(2, "\"c\"", 101);

  dispatch.RequesterGone(1);

  EXPECT_EQ(dispatch.pending(), 1u);
  EXPECT_EQ(dispatch.RequestedBy(1), 0u);
  EXPECT_EQ(dispatch.RequestedBy(2), 1u);
  EXPECT_EQ(dispatch.HeldBy(101), 1u);
  EXPECT_EQ(dispatch.HeldBy(102), 0u);
  EXPECT_FALSE(dispatch.Settle(1, "\"a\"", 101));
  EXPECT_THAT(RequestIds(dispatch.ResponderGone(101)), ElementsAre("\"c\""));
}

TEST(LlmDispatchTest, ReTrackingTheSameRequestIdMovesItToTheNewResponder) {
  LlmDispatch dispatch;
  dispatch.Track(1, "\"a\"", 101);
  dispatch.Track(1, "\"b\"", 102);

  dispatch.Track(1, "\"a\"", 102);

  EXPECT_EQ(dispatch.pending(), 2u);
  EXPECT_EQ(dispatch.RequestedBy(1), 2u);  // still two requests, not three
  EXPECT_EQ(dispatch.HeldBy(101), 0u);
  EXPECT_EQ(dispatch.HeldBy(102), 2u);
  EXPECT_FALSE(dispatch.Settle(1, "\"a\"", 101));
  EXPECT_THAT(dispatch.ResponderGone(101), IsEmpty());
  // The re-tracked request is now the newest one 102 holds.
  EXPECT_THAT(RequestIds(dispatch.ResponderGone(102)), ElementsAre("\"b\"", "\"a\""));
  EXPECT_EQ(dispatch.RequestedBy(1), 0u);
  EXPECT_EQ(dispatch.pending(), 0u);
}

TEST(LlmDispatchTest, ReTrackingToTheSameResponderKeepsCountsStable) {
  LlmDispatch dispatch;
  dispatch.Track(1, "\"a\"", 101);

  dispatch.Track(1, "\"a\"", 101);

  EXPECT_EQ(dispatch.pending(), 1u);
  EXPECT_EQ(dispatch.HeldBy(101), 1u);
  EXPECT_EQ(dispatch.RequestedBy(1), 1u);
  EXPECT_TRUE(dispatch.Settle(1, "\"a\"", 101));
  EXPECT_EQ(dispatch.HeldBy(101), 0u);
  EXPECT_EQ(dispatch.RequestedBy(1), 0u);
}

TEST(LlmDispatchTest, FreedResponderIsPreferredAgainAfterReTrack) {
  LlmDispatch dispatch;
  const auto two = Candidates(2);
  dispatch.Track(1, "\"a\"", 101);
  dispatch.Track(1, "\"a\"", 102);  // 101: 0, 102: 1

  // The last pick was never made through Pick, so ties start at the first.
  EXPECT_THAT(dispatch.Pick(two), Optional(101u));
}

// --- dispatch time (llm round-trip metrics) --------------------------------

TEST(LlmDispatchTest, SettleReportsWhenTheRequestWasDispatched) {
  LlmDispatch dispatch;
  const absl::Time t_a = absl::FromUnixMillis(1'700'000'000'250);
  const absl::Time t_b = t_a + absl::Milliseconds(750);
  dispatch.Track(1, "\"a\"", 101, t_a);
  dispatch.Track(2, "\"b\"", 101, t_b);
  absl::Time at_b;
  absl::Time at_a;

  ASSERT_TRUE(dispatch.Settle(2, "\"b\"", 101, &at_b));
  ASSERT_TRUE(dispatch.Settle(1, "\"a\"", 101, &at_a));

  EXPECT_EQ(at_b, t_b);
  EXPECT_EQ(at_a, t_a);
}

TEST(LlmDispatchTest, SettleThatMatchesNothingLeavesTheDispatchTimeAlone) {
  LlmDispatch dispatch;
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  dispatch.Track(1, "\"a\"", 101, t0);
  const absl::Time untouched = absl::FromUnixSeconds(42);
  absl::Time at = untouched;

  EXPECT_FALSE(dispatch.Settle(1, "\"a\"", 102, &at));   // another responder
  EXPECT_FALSE(dispatch.Settle(1, "\"zz\"", 101, &at));  // another request
  EXPECT_EQ(at, untouched);
  ASSERT_TRUE(dispatch.Settle(1, "\"a\"", 101, &at));
  EXPECT_EQ(at, t0);
  at = untouched;
  EXPECT_FALSE(dispatch.Settle(1, "\"a\"", 101, &at));  // a second chunk
  EXPECT_EQ(at, untouched);
}

TEST(LlmDispatchTest, ReTrackingRestartsTheDispatchTime) {
  LlmDispatch dispatch;
  const absl::Time first = absl::FromUnixSeconds(1'700'000'000);
  const absl::Time again = first + absl::Seconds(3);
  dispatch.Track(1, "\"a\"", 101, first);
  dispatch.Track(1, "\"a\"", 102, again);
  absl::Time at;

  ASSERT_TRUE(dispatch.Settle(1, "\"a\"", 102, &at));

  EXPECT_EQ(at, again);
}

TEST(LlmDispatchTest, SettleWithoutAnOutParameterStillSettles) {
  LlmDispatch dispatch;
  dispatch.Track(1, "\"a\"", 101, absl::FromUnixSeconds(5));

  EXPECT_TRUE(dispatch.Settle(1, "\"a\"", 101));
  EXPECT_EQ(dispatch.pending(), 0u);
}

}  // namespace
}  // namespace relay::core
