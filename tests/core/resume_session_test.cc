// Tests for server/core/resume_session.h: numbering, acknowledgement,
// replay bounds, resend detection, and the per-session and per-instance
// memory bounds.
#include "server/core/resume_session.h"

#include <memory>

#include "gtest/gtest.h"
#include "relay/v1/relay.pb.h"

namespace relay::core {
namespace {

ServerEventPtr Event() { return std::make_shared<const relay::v1::ServerEvent>(); }

class ResumeSessionTest : public ::testing::Test {
 protected:
  ResumeBudget budget_{/*max_bytes=*/1000, 0, 0};
  ResumeSession::Overflow overflow_ = ResumeSession::Overflow::kNone;
};

TEST_F(ResumeSessionTest, NumbersFramesFromOneAndKeepsThemUntilAcknowledged) {
  ResumeSession session("id", {/*max_bytes=*/500, /*max_frames=*/10}, &budget_);
  EXPECT_EQ(session.Append(Event(), 10, &overflow_), 1u);
  EXPECT_EQ(session.Append(Event(), 20, &overflow_), 2u);
  EXPECT_EQ(session.Append(Event(), 30, &overflow_), 3u);
  EXPECT_EQ(session.last_sent(), 3u);
  EXPECT_EQ(session.unacked_bytes(), 60u);
  EXPECT_EQ(budget_.bytes, 60u);
  EXPECT_EQ(budget_.frames, 3u);
  EXPECT_TRUE(session.Acknowledge(2));
  ASSERT_EQ(session.unacked().size(), 1u);
  EXPECT_EQ(session.unacked().front().seq, 3u);
  EXPECT_EQ(budget_.bytes, 30u);
  // An ack of frames never sent changes nothing.
  EXPECT_FALSE(session.Acknowledge(4));
  EXPECT_EQ(session.unacked().size(), 1u);
  // An old ack is harmless.
  EXPECT_TRUE(session.Acknowledge(1));
  EXPECT_EQ(session.unacked().size(), 1u);
}

TEST_F(ResumeSessionTest, ReplaysOnlyWhatItStillHas) {
  ResumeSession session("id", {500, 10}, &budget_);
  for (int i = 0; i < 5; ++i) session.Append(Event(), 10, &overflow_);
  EXPECT_TRUE(session.CanReplayAfter(0));
  EXPECT_TRUE(session.CanReplayAfter(5));   // nothing to replay: fine
  EXPECT_FALSE(session.CanReplayAfter(6));  // claims a frame never sent
  session.Acknowledge(3);
  EXPECT_TRUE(session.CanReplayAfter(3));
  EXPECT_TRUE(session.CanReplayAfter(4));
  EXPECT_FALSE(session.CanReplayAfter(2));  // frame 3 is forgotten already
}

TEST_F(ResumeSessionTest, TellsResendsFromNewFrames) {
  ResumeSession session("id", {500, 10}, &budget_);
  EXPECT_TRUE(session.Receive(1));
  EXPECT_TRUE(session.Receive(2));
  EXPECT_FALSE(session.Receive(2));
  EXPECT_FALSE(session.Receive(1));
  EXPECT_TRUE(session.Receive(10));  // gaps are allowed
  EXPECT_FALSE(session.Receive(9));
  EXPECT_EQ(session.client_seq(), 10u);
  EXPECT_TRUE(session.ack_owed());
  session.MarkClientSeqAcked();
  EXPECT_FALSE(session.ack_owed());
  session.RequestAck();
  EXPECT_TRUE(session.ack_owed());
}

TEST_F(ResumeSessionTest, RefusesPastItsOwnBoundsButAlwaysTakesOneFrame) {
  ResumeSession frames("a", {/*max_bytes=*/500, /*max_frames=*/2}, &budget_);
  EXPECT_NE(frames.Append(Event(), 1, &overflow_), 0u);
  EXPECT_NE(frames.Append(Event(), 1, &overflow_), 0u);
  EXPECT_EQ(frames.Append(Event(), 1, &overflow_), 0u);
  EXPECT_EQ(overflow_, ResumeSession::Overflow::kSession);

  ResumeSession bytes("b", {/*max_bytes=*/100, /*max_frames=*/10}, &budget_);
  // Larger than the bound, but alone: kept.
  EXPECT_NE(bytes.Append(Event(), 150, &overflow_), 0u);
  EXPECT_EQ(bytes.Append(Event(), 1, &overflow_), 0u);
  EXPECT_EQ(overflow_, ResumeSession::Overflow::kSession);
}

TEST_F(ResumeSessionTest, AllSessionsShareOneBudgetAndGiveItBack) {
  auto a = std::make_unique<ResumeSession>("a", ResumeSession::Bounds{800, 10}, &budget_);
  ResumeSession b("b", {800, 10}, &budget_);
  EXPECT_NE(a->Append(Event(), 600, &overflow_), 0u);
  EXPECT_EQ(b.Append(Event(), 500, &overflow_), 0u);
  EXPECT_EQ(overflow_, ResumeSession::Overflow::kBudget);
  a.reset();  // its frames go back to the budget
  EXPECT_EQ(budget_.bytes, 0u);
  EXPECT_EQ(budget_.frames, 0u);
  EXPECT_NE(b.Append(Event(), 500, &overflow_), 0u);
}

}  // namespace
}  // namespace relay::core
