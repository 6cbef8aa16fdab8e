// Tests for backplane/nats/frame_codec.h: what it writes is what the
// generated relay.nats.v1 code reads, and what that code writes it reads,
// so instances that still frame with the generated code interoperate.
#include "backplane/nats/frame_codec.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "backplane/nats/proto/frame.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "relay/v1/relay.pb.h"

namespace relay::backplane::nats {
namespace {

using relay::nats::v1::Frame;
using Kind = FrameView::Item::Kind;

relay::v1::BackplaneEnvelope Delivery(const std::string& payload) {
  relay::v1::BackplaneEnvelope envelope;
  envelope.set_mesh_id("family");
  envelope.set_from_instance("relay-a");
  envelope.mutable_delivery()->set_target_node("phone");
  envelope.mutable_delivery()->mutable_event()->mutable_message()->set_payload(payload);
  return envelope;
}

TEST(FrameCodecTest, ABatchFrameIsWhatTheGeneratedCodeReads) {
  const std::string big(70000, 'x');  // lengths of several varint bytes
  const std::string items =
      EnvelopeItem(Delivery("{\"n\":1}")) + UnfollowItem("gone-mesh") + EnvelopeItem(Delivery(big));
  std::size_t items_at = 0;
  const std::uint64_t stream = std::numeric_limits<std::uint64_t>::max() - 7;
  const std::string bytes =
      BatchFrame(FrameHeader("relay-b", 0x0102030405060708u), stream, 300, items, &items_at);
  EXPECT_EQ(bytes.substr(items_at), items);

  Frame frame;
  ASSERT_TRUE(frame.ParseFromString(bytes));
  EXPECT_EQ(frame.from_instance(), "relay-b");
  EXPECT_EQ(frame.incarnation(), 0x0102030405060708u);
  ASSERT_TRUE(frame.has_batch());
  EXPECT_EQ(frame.batch().stream(), stream);
  EXPECT_EQ(frame.batch().seq(), 300u);
  ASSERT_EQ(frame.batch().items_size(), 3);
  relay::v1::BackplaneEnvelope first;
  ASSERT_TRUE(first.ParseFromString(frame.batch().items(0).envelope()));
  EXPECT_EQ(first.delivery().event().message().payload(), "{\"n\":1}");
  EXPECT_EQ(frame.batch().items(1).unfollow_mesh(), "gone-mesh");
  relay::v1::BackplaneEnvelope third;
  ASSERT_TRUE(third.ParseFromString(frame.batch().items(2).envelope()));
  EXPECT_EQ(third.delivery().event().message().payload(), big);
}

TEST(FrameCodecTest, ReadsWhatTheGeneratedCodeWrites) {
  Frame frame;
  frame.set_from_instance("relay-c");
  frame.set_incarnation(42);
  frame.mutable_batch()->set_stream(9);
  frame.mutable_batch()->set_seq(1);
  frame.mutable_batch()->add_items()->set_envelope(Delivery("[1,2]").SerializeAsString());
  frame.mutable_batch()->add_items()->set_unfollow_mesh("m");
  frame.mutable_batch()->add_items();  // no kind: nothing to hand up
  const std::string bytes = frame.SerializeAsString();

  FrameView view;
  ASSERT_TRUE(ParseFrame(bytes, &view));
  EXPECT_EQ(view.from_instance, "relay-c");
  EXPECT_EQ(view.incarnation, 42u);
  EXPECT_EQ(view.body, FrameView::Body::kBatch);
  EXPECT_EQ(view.stream, 9u);
  EXPECT_EQ(view.seq, 1u);
  ASSERT_EQ(view.items.size(), 2u);
  EXPECT_EQ(view.items[0].kind, Kind::kEnvelope);
  relay::v1::BackplaneEnvelope envelope;
  ASSERT_TRUE(envelope.ParseFromArray(view.items[0].bytes.data(),
                                      static_cast<int>(view.items[0].bytes.size())));
  EXPECT_EQ(envelope.delivery().event().message().payload(), "[1,2]");
  EXPECT_EQ(view.items[1].kind, Kind::kUnfollowMesh);
  EXPECT_EQ(view.items[1].bytes, "m");
}

TEST(FrameCodecTest, ReadsAcksAndNaks) {
  for (const bool ack : {true, false}) {
    Frame frame;
    frame.set_from_instance("relay-d");
    if (ack) {
      frame.mutable_ack()->set_stream(77);
      frame.mutable_ack()->set_seq(123456789);
    } else {
      frame.mutable_nak()->set_stream(77);
      frame.mutable_nak()->set_seq(123456789);
    }
    FrameView view;
    ASSERT_TRUE(ParseFrame(frame.SerializeAsString(), &view));
    EXPECT_EQ(view.body, ack ? FrameView::Body::kAck : FrameView::Body::kNak);
    EXPECT_EQ(view.stream, 77u);
    EXPECT_EQ(view.seq, 123456789u);
    EXPECT_TRUE(view.items.empty());
  }
}

TEST(FrameCodecTest, FollowsTheRulesOfProtocolBuffersForRepeatsAndUnknownFields) {
  Frame first;
  first.set_from_instance("old-name");
  first.mutable_batch()->set_stream(1);
  first.mutable_batch()->add_items()->set_unfollow_mesh("a");
  Frame second;
  second.set_from_instance("relay-e");
  second.mutable_batch()->set_seq(5);
  second.mutable_batch()->add_items()->set_unfollow_mesh("b");
  // Field 15 (unknown here: a newer sender's), varint and length-delimited.
  const std::string unknown = std::string("\x78\x05", 2) + std::string("\x7a\x02hi", 4);
  const std::string bytes = first.SerializeAsString() + unknown + second.SerializeAsString();

  Frame merged;
  ASSERT_TRUE(merged.ParseFromString(bytes));
  FrameView view;
  ASSERT_TRUE(ParseFrame(bytes, &view));
  EXPECT_EQ(view.from_instance, merged.from_instance());
  EXPECT_EQ(view.stream, merged.batch().stream());
  EXPECT_EQ(view.seq, merged.batch().seq());
  ASSERT_EQ(view.items.size(), 2u);
  EXPECT_EQ(view.items[0].bytes, "a");
  EXPECT_EQ(view.items[1].bytes, "b");

  // A body of another kind replaces the batch before it.
  Frame ack;
  ack.mutable_ack()->set_seq(3);
  ASSERT_TRUE(ParseFrame(bytes + ack.SerializeAsString(), &view));
  EXPECT_EQ(view.body, FrameView::Body::kAck);
  EXPECT_EQ(view.seq, 3u);
  EXPECT_EQ(view.stream, 0u);
  EXPECT_TRUE(view.items.empty());
}

TEST(FrameCodecTest, RefusesWhatIsNotAFrame) {
  const std::string good =
      BatchFrame(FrameHeader("relay-f", 1), 2, 3, EnvelopeItem(Delivery("{}")));
  FrameView view;
  ASSERT_TRUE(ParseFrame(good, &view));
  // Every truncation of a frame is refused, as the generated parser does.
  for (std::size_t n = 1; n < good.size(); ++n) {
    Frame frame;
    const bool generated = frame.ParseFromString(good.substr(0, n));
    EXPECT_EQ(ParseFrame(good.substr(0, n), &view), generated) << "first " << n << " bytes";
  }
  EXPECT_FALSE(ParseFrame(std::string("\x00", 1), &view));                      // tag 0
  EXPECT_FALSE(ParseFrame(std::string("\x1a\xff\xff\xff\xff\x0f", 6), &view));  // huge length
  EXPECT_FALSE(ParseFrame(std::string("\x0f", 1), &view));                      // wire type 7
  EXPECT_TRUE(ParseFrame("", &view));                                           // an empty Frame
  EXPECT_EQ(view.body, FrameView::Body::kNone);
}

}  // namespace
}  // namespace relay::backplane::nats
