// Tests for gateway/ws/frame_cache.cc: one event is encoded once into a
// ready-to-write RFC 6455 text frame, and that same frame is handed to every
// recipient; any other event gets its own.
#include "gateway/ws/frame_cache.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "gateway/codec/server_encoder.h"
#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

core::ServerEventPtr Message(std::string from, std::string payload_json) {
  relay::v1::ServerEvent event;
  relay::v1::Message* message = event.mutable_message();
  message->set_from(std::move(from));
  message->set_payload(std::move(payload_json));
  return std::make_shared<const relay::v1::ServerEvent>(std::move(event));
}

// The header a server frame of `size` payload bytes must have (RFC 6455 5.2):
// FIN + text opcode, no mask, the shortest length encoding.
std::string ExpectedHeader(std::uint64_t size) {
  std::string header(1, static_cast<char>(0x81));
  if (size < 126) {
    header.push_back(static_cast<char>(size));
  } else if (size <= 0xFFFF) {
    header.push_back(static_cast<char>(126));
    for (int shift = 8; shift >= 0; shift -= 8) header.push_back(static_cast<char>(size >> shift));
  } else {
    header.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) header.push_back(static_cast<char>(size >> shift));
  }
  return header;
}

TEST(FrameCacheTest, FrameIsThePreparedUnmaskedTextFrameOfTheEncodedEvent) {
  FrameCache cache;
  const core::ServerEventPtr event = Message("mac-1", R"({"n":1})");

  const WsMessagePtr frame = cache.Frame(event);

  ASSERT_NE(frame, nullptr);
  EXPECT_TRUE(frame->get_prepared());
  EXPECT_EQ(frame->get_opcode(), websocketpp::frame::opcode::text);
  EXPECT_EQ(frame->get_payload(), EncodeServerEvent(*event));
  EXPECT_EQ(frame->get_header(), ExpectedHeader(frame->get_payload().size()));
}

TEST(FrameCacheTest, HeaderUsesEachLengthEncodingAtItsBoundaries) {
  // The encoded event is the payload plus a fixed envelope; pad the payload
  // so that the whole frame lands on each side of 126 and 65536 bytes.
  const std::size_t envelope = EncodeServerEvent(*Message("a", "\"\"")).size() - 2;
  for (std::size_t want :
       {std::size_t{125}, std::size_t{126}, std::size_t{65535}, std::size_t{65536}}) {
    FrameCache cache;
    const std::string padding(want - envelope - 2, 'x');
    const WsMessagePtr frame = cache.Frame(Message("a", "\"" + padding + "\""));
    ASSERT_EQ(frame->get_payload().size(), want);
    EXPECT_EQ(frame->get_header(), ExpectedHeader(want)) << want;
  }
}

TEST(FrameCacheTest, TheSameEventGetsTheSameFrameObject) {
  FrameCache cache;
  const core::ServerEventPtr event = Message("mac-1", R"({"n":1})");

  const WsMessagePtr first = cache.Frame(event);
  const WsMessagePtr second = cache.Frame(event);

  EXPECT_EQ(first.get(), second.get());  // encoded once, shared by every recipient
}

TEST(FrameCacheTest, AnotherEventGetsItsOwnFrameEvenWithEqualContent) {
  FrameCache cache;
  const core::ServerEventPtr a = Message("mac-1", R"({"n":1})");
  const core::ServerEventPtr b = Message("mac-1", R"({"n":1})");

  const WsMessagePtr frame_a = cache.Frame(a);
  const WsMessagePtr frame_b = cache.Frame(b);

  EXPECT_NE(frame_a.get(), frame_b.get());
  EXPECT_EQ(frame_b->get_payload(), EncodeServerEvent(*b));
}

TEST(FrameCacheTest, OnlyTheLastEventIsRemembered) {
  FrameCache cache;
  const core::ServerEventPtr a = Message("a", "1");
  const core::ServerEventPtr b = Message("b", "2");

  const WsMessagePtr first_a = cache.Frame(a);
  cache.Frame(b);
  const WsMessagePtr again_a = cache.Frame(a);

  EXPECT_NE(first_a.get(), again_a.get());
  EXPECT_EQ(again_a->get_payload(), EncodeServerEvent(*a));
}

TEST(FrameCacheTest, AFreedEventsAddressCannotServeAStaleFrame) {
  FrameCache cache;
  core::ServerEventPtr event = Message("a", "\"old\"");
  cache.Frame(event);
  event.reset();  // the caller's last reference; the cache keeps its own

  // Were the cache comparing addresses it did not hold, the allocator could
  // hand this one the freed address and it would get the old frame.
  const core::ServerEventPtr next = Message("b", "\"new\"");
  EXPECT_EQ(cache.Frame(next)->get_payload(), EncodeServerEvent(*next));
}

}  // namespace
}  // namespace relay::gateway
