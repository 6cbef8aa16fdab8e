// Tests for gateway/grpc/attach_sink.cc: what the core's Send and Close do to
// one gRPC peer stream (queued or dropped and why, one write in flight, the
// slow-consumer bound, close after what is queued) and what gRPC's callbacks
// do to it, with a recorder in place of the gRPC reactor. No server, no
// threads, no sleeps: each gRPC completion is one call.
#include "gateway/grpc/attach_sink.h"

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

using core::CloseReason;
using core::DropReason;
using core::SendResult;
using core::ServerEventPtr;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Records the reactor calls the state makes.
class RecordingStream final : public AttachStreamCalls {
 public:
  void BeginWrite(const relay::v1::ServerEvent* event) override { writes.push_back(event); }
  void BeginRead() override { ++reads; }
  void End(grpc::Status status) override { ends.push_back(status); }

  std::vector<const relay::v1::ServerEvent*> writes;
  int reads = 0;
  std::vector<grpc::Status> ends;
};

ServerEventPtr Message(std::size_t payload_bytes) {
  auto event = std::make_shared<relay::v1::ServerEvent>();
  event->mutable_message()->set_from("worker");
  event->mutable_message()->set_payload(std::string(payload_bytes, 'x'));
  return event;
}

std::size_t SizeOf(const ServerEventPtr& event) { return event->ByteSizeLong(); }

MATCHER_P2(StatusIs, code, message, "") {
  return arg.error_code() == code && arg.error_message() == message;
}

class AttachSinkTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kBound = 1000;

  AttachSinkTest() { state_->stream = &stream_; }

  // gRPC completes the write in flight.
  void WriteDone(bool ok = true) { state_->OnWriteDone(ok); }

  asio::io_context io_;
  RelayMetrics metrics_;
  RecordingStream stream_;
  std::shared_ptr<AttachStreamState> state_ =
      std::make_shared<AttachStreamState>(&metrics_.grpc_bytes);
  AttachSink sink_{&io_, state_, kBound};
};

TEST_F(AttachSinkTest, SendToAnIdleStreamIsQueuedAndWrittenAtOnce) {
  const ServerEventPtr event = Message(100);

  const SendResult result = sink_.Send(event);

  EXPECT_TRUE(result.queued());
  EXPECT_THAT(stream_.writes, ElementsAre(event.get()));
  EXPECT_EQ(sink_.counters().queued_bytes, SizeOf(event));
  EXPECT_EQ(sink_.counters().bytes_out, 0u);
  EXPECT_THAT(stream_.ends, IsEmpty());
}

TEST_F(AttachSinkTest, OneWriteInFlightTheOthersFollowInOrder) {
  const ServerEventPtr a = Message(10), b = Message(20), c = Message(30);

  ASSERT_TRUE(sink_.Send(a).queued());
  ASSERT_TRUE(sink_.Send(b).queued());
  ASSERT_TRUE(sink_.Send(c).queued());
  EXPECT_THAT(stream_.writes, ElementsAre(a.get()));
  EXPECT_EQ(sink_.counters().queued_bytes, SizeOf(a) + SizeOf(b) + SizeOf(c));

  WriteDone();
  EXPECT_THAT(stream_.writes, ElementsAre(a.get(), b.get()));
  WriteDone();
  WriteDone();

  EXPECT_THAT(stream_.writes, ElementsAre(a.get(), b.get(), c.get()));
  const core::PeerSink::Counters counters = sink_.counters();
  EXPECT_EQ(counters.queued_bytes, 0u);
  EXPECT_EQ(counters.bytes_out, SizeOf(a) + SizeOf(b) + SizeOf(c));
  EXPECT_EQ(metrics_.grpc_bytes.sent.load(), SizeOf(a) + SizeOf(b) + SizeOf(c));
  EXPECT_THAT(stream_.ends, IsEmpty());
}

TEST_F(AttachSinkTest, AnEventBiggerThanTheBoundIsQueuedWhenNothingElseIs) {
  const ServerEventPtr big = Message(5 * kBound);

  EXPECT_TRUE(sink_.Send(big).queued());
  EXPECT_THAT(stream_.writes, ElementsAre(big.get()));
  EXPECT_THAT(stream_.ends, IsEmpty());
}

TEST_F(AttachSinkTest, PastTheBoundTheStreamEndsAsSlowConsumerAfterTheWriteInFlight) {
  const ServerEventPtr a = Message(400), b = Message(400), c = Message(400);
  ASSERT_TRUE(sink_.Send(a).queued());
  ASSERT_TRUE(sink_.Send(b).queued());

  const SendResult over = sink_.Send(c);

  ASSERT_FALSE(over.queued());
  EXPECT_EQ(over.reason(), DropReason::kSlowConsumer);
  // What waited behind the write in flight is dropped; that write is gRPC's
  // until it completes, so the stream ends only then.
  EXPECT_EQ(sink_.counters().queued_bytes, SizeOf(a));
  EXPECT_THAT(stream_.ends, IsEmpty());
  const SendResult after = sink_.Send(Message(1));
  ASSERT_FALSE(after.queued());
  EXPECT_EQ(after.reason(), DropReason::kClosing);

  WriteDone();

  EXPECT_THAT(stream_.writes, ElementsAre(a.get()));
  EXPECT_THAT(stream_.ends,
              ElementsAre(StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow consumer")));
  EXPECT_EQ(sink_.counters().bytes_out, SizeOf(a));
  EXPECT_EQ(sink_.counters().queued_bytes, 0u);
  EXPECT_EQ(state_->Detach(), CloseReason::kSlowConsumer);
}

TEST_F(AttachSinkTest, TheBoundCountsWhatIsQueuedIncludingTheWriteInFlight) {
  const ServerEventPtr a = Message(300);
  const std::size_t size = SizeOf(a);
  ASSERT_LT(3 * size, kBound);
  ASSERT_GT(4 * size, kBound);

  EXPECT_TRUE(sink_.Send(a).queued());
  EXPECT_TRUE(sink_.Send(Message(300)).queued());
  EXPECT_TRUE(sink_.Send(Message(300)).queued());
  // A write that completes makes room again.
  WriteDone();
  EXPECT_TRUE(sink_.Send(Message(300)).queued());

  const SendResult over = sink_.Send(Message(300));
  EXPECT_FALSE(over.queued());
  EXPECT_EQ(over.reason(), DropReason::kSlowConsumer);
}

TEST_F(AttachSinkTest, CloseEndsTheStreamOnceWhatIsQueuedIsWritten) {
  const ServerEventPtr a = Message(10), b = Message(20);
  ASSERT_TRUE(sink_.Send(a).queued());
  ASSERT_TRUE(sink_.Send(b).queued());

  sink_.Close(CloseReason::kKicked);

  EXPECT_THAT(stream_.ends, IsEmpty());
  const SendResult late = sink_.Send(Message(1));
  ASSERT_FALSE(late.queued());
  EXPECT_EQ(late.reason(), DropReason::kClosing);
  WriteDone();
  EXPECT_THAT(stream_.writes, ElementsAre(a.get(), b.get()));
  EXPECT_THAT(stream_.ends, IsEmpty());
  WriteDone();

  EXPECT_THAT(stream_.ends, ElementsAre(StatusIs(grpc::StatusCode::ABORTED, "kicked")));
  EXPECT_EQ(sink_.counters().bytes_out, SizeOf(a) + SizeOf(b));
  EXPECT_EQ(state_->Detach(), CloseReason::kKicked);
}

TEST_F(AttachSinkTest, CloseOfAnIdleStreamEndsItAtOnceAndOnlyOnce) {
  sink_.Close(CloseReason::kServerShutdown);
  sink_.Close(CloseReason::kKicked);

  EXPECT_THAT(stream_.ends,
              ElementsAre(StatusIs(grpc::StatusCode::UNAVAILABLE, "server shutting down")));
  EXPECT_EQ(state_->Detach(), CloseReason::kServerShutdown);
}

TEST_F(AttachSinkTest, AFailedWriteEndsTheStreamCancelledAndDropsTheRest) {
  ASSERT_TRUE(sink_.Send(Message(10)).queued());
  ASSERT_TRUE(sink_.Send(Message(20)).queued());

  WriteDone(/*ok=*/false);

  EXPECT_EQ(stream_.writes.size(), 1u);
  EXPECT_THAT(stream_.ends, ElementsAre(StatusIs(grpc::StatusCode::CANCELLED, "write failed")));
  EXPECT_EQ(sink_.counters().queued_bytes, 0u);
  EXPECT_EQ(sink_.counters().bytes_out, 0u);
  EXPECT_EQ(metrics_.grpc_bytes.sent.load(), 0u);
  const SendResult late = sink_.Send(Message(1));
  ASSERT_FALSE(late.queued());
  EXPECT_EQ(late.reason(), DropReason::kClosing);
}

TEST_F(AttachSinkTest, AClientHalfCloseEndsOkAfterWhatIsQueued) {
  ASSERT_TRUE(sink_.Send(Message(10)).queued());

  state_->OnReadFailed();
  EXPECT_THAT(stream_.ends, IsEmpty());
  WriteDone();

  EXPECT_THAT(stream_.ends, ElementsAre(StatusIs(grpc::StatusCode::OK, "")));
  EXPECT_EQ(state_->Detach(), CloseReason::kClientClosed);
}

TEST_F(AttachSinkTest, ACancelledStreamEndsOnceTheWriteInFlightCompletes) {
  ASSERT_TRUE(sink_.Send(Message(10)).queued());

  state_->OnCancel();
  EXPECT_THAT(stream_.ends, IsEmpty());
  EXPECT_EQ(sink_.Send(Message(1)).reason(), DropReason::kClosing);
  WriteDone(/*ok=*/false);

  EXPECT_THAT(stream_.ends, ElementsAre(StatusIs(grpc::StatusCode::CANCELLED, "cancelled")));
  EXPECT_EQ(state_->Detach(), CloseReason::kTransportError);
}

TEST_F(AttachSinkTest, ARelayCloseReasonWinsOverTheCancelThatFollows) {
  sink_.Close(CloseReason::kMeshClosed);
  state_->OnCancel();

  EXPECT_EQ(state_->Detach(), CloseReason::kMeshClosed);
}

TEST_F(AttachSinkTest, NextReadStartsOnlyWhileTheStreamIsOpen) {
  state_->ReadNext();
  EXPECT_EQ(stream_.reads, 1);

  sink_.Close(CloseReason::kKicked);
  state_->ReadNext();

  EXPECT_EQ(stream_.reads, 1);
}

TEST_F(AttachSinkTest, NothingTouchesTheStreamOnceGrpcIsDoneWithIt) {
  ASSERT_TRUE(sink_.Send(Message(10)).queued());
  state_->OnCancel();
  WriteDone(/*ok=*/false);
  ASSERT_EQ(stream_.ends.size(), 1u);

  state_->Detach();
  sink_.Close(CloseReason::kKicked);
  state_->ReadNext();
  EXPECT_FALSE(sink_.Send(Message(1)).queued());

  EXPECT_EQ(stream_.writes.size(), 1u);
  EXPECT_EQ(stream_.reads, 0);
  EXPECT_EQ(stream_.ends.size(), 1u);
  EXPECT_EQ(sink_.counters().queued_bytes, 0u);
}

TEST_F(AttachSinkTest, ProbeAnswersOnTheLoopAliveUntilTheStreamEnds) {
  std::vector<bool> answers;

  ASSERT_TRUE(sink_.Probe(absl::Seconds(2), [&answers](bool alive) { answers.push_back(alive); }));
  // Never from inside Probe: the core's loop runs the answer later.
  EXPECT_THAT(answers, IsEmpty());
  io_.run();
  EXPECT_THAT(answers, ElementsAre(true));

  state_->OnCancel();
  ASSERT_TRUE(sink_.Probe(absl::Seconds(2), [&answers](bool alive) { answers.push_back(alive); }));
  io_.restart();
  io_.run();

  EXPECT_THAT(answers, ElementsAre(true, false));
}

}  // namespace
}  // namespace relay::gateway
