// Tests of bench/relay-bench/ws_frame: masking, client frame encoding with
// 7-, 16- and 64-bit lengths, decoding server frames (also split at every
// byte), control-frame rules and message reassembly.
#include "bench/relay-bench/ws_frame.h"

#include <string>

#include "gtest/gtest.h"

namespace relay::bench {
namespace {

// Decodes a client frame the way a server would: unmasked payload.
Frame DecodeAll(std::string* wire, std::size_t* consumed) {
  Frame frame;
  const DecodeResult r = DecodeFrame(wire->data(), wire->size(), SIZE_MAX, &frame);
  EXPECT_EQ(r.status, DecodeStatus::kFrame) << (r.error ? r.error : "");
  *consumed = r.consumed;
  return frame;
}

TEST(WsFrameTest, MaskIsAnInvolutionAndFollowsTheKeyPhase) {
  std::string data = "Hello, WebSocket masking across word boundaries!";
  const std::string original = data;
  ApplyMask(data.data(), data.size(), 0x37FA213D);
  EXPECT_NE(data, original);
  // RFC 6455 5.7: "Hello" masked with 37 fa 21 3d is 7f 9f 4d 51 58.
  EXPECT_EQ(static_cast<unsigned char>(data[0]), 0x7F);
  EXPECT_EQ(static_cast<unsigned char>(data[1]), 0x9F);
  EXPECT_EQ(static_cast<unsigned char>(data[2]), 0x4D);
  EXPECT_EQ(static_cast<unsigned char>(data[3]), 0x51);
  EXPECT_EQ(static_cast<unsigned char>(data[4]), 0x58);
  // Unmasking in two pieces with the right key offset gives the original back.
  ApplyMask(data.data(), 7, 0x37FA213D, 0);
  ApplyMask(data.data() + 7, data.size() - 7, 0x37FA213D, 7);
  EXPECT_EQ(data, original);
}

TEST(WsFrameTest, SmallClientFrameMatchesRfcExample) {
  std::string wire;
  AppendClientFrame(&wire, Opcode::kText, "Hello", 0x37FA213D);
  // RFC 6455 5.7: a single-frame masked text message "Hello".
  const unsigned char expected[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58};
  ASSERT_EQ(wire.size(), sizeof expected);
  for (std::size_t i = 0; i < sizeof expected; ++i) {
    EXPECT_EQ(static_cast<unsigned char>(wire[i]), expected[i]) << "byte " << i;
  }
}

TEST(WsFrameTest, LengthEncodings) {
  struct Case {
    std::size_t size;
    std::size_t header;  // bytes before the payload, mask key included
    unsigned char len7;
  };
  for (const Case& c : {Case{0, 6, 0}, Case{125, 6, 125}, Case{126, 8, 126},
                        Case{65535, 8, 126}, Case{65536, 14, 127}, Case{200000, 14, 127}}) {
    std::string payload(c.size, 'x');
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
    std::string wire;
    AppendClientFrame(&wire, Opcode::kBinary, payload, 0xA1B2C3D4);
    ASSERT_EQ(wire.size(), c.header + c.size) << c.size;
    EXPECT_EQ(static_cast<unsigned char>(wire[0]), 0x82);
    EXPECT_EQ(static_cast<unsigned char>(wire[1]), 0x80 | c.len7) << c.size;
    if (c.len7 == 126) {
      EXPECT_EQ((static_cast<unsigned char>(wire[2]) << 8) | static_cast<unsigned char>(wire[3]),
                static_cast<int>(c.size));
    }
    if (c.len7 == 127) {
      std::uint64_t len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(wire[2 + i]);
      EXPECT_EQ(len, c.size);
    }
    std::size_t consumed = 0;
    const Frame frame = DecodeAll(&wire, &consumed);
    EXPECT_EQ(consumed, wire.size());
    EXPECT_TRUE(frame.masked);
    EXPECT_TRUE(frame.fin);
    EXPECT_EQ(frame.opcode, Opcode::kBinary);
    EXPECT_EQ(frame.payload, payload) << c.size;
  }
}

// A server frame (unmasked) with the given length encoding.
std::string ServerFrame(Opcode op, const std::string& payload, bool fin = true) {
  std::string wire;
  wire.push_back(static_cast<char>((fin ? 0x80 : 0) | static_cast<int>(op)));
  if (payload.size() < 126) {
    wire.push_back(static_cast<char>(payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    wire.push_back(126);
    wire.push_back(static_cast<char>(payload.size() >> 8));
    wire.push_back(static_cast<char>(payload.size()));
  } else {
    wire.push_back(127);
    for (int shift = 56; shift >= 0; shift -= 8) {
      wire.push_back(static_cast<char>(static_cast<std::uint64_t>(payload.size()) >> shift));
    }
  }
  return wire + payload;
}

TEST(WsFrameTest, DecodesServerFramesSplitAtEveryByte) {
  const std::string small = R"({"type":"message","from":"a","payload":"x"})";
  const std::string medium(300, 'm');
  const std::string large(70000, 'L');
  std::string stream = ServerFrame(Opcode::kText, small) + ServerFrame(Opcode::kText, medium) +
                       ServerFrame(Opcode::kBinary, large) + ServerFrame(Opcode::kPing, "p");
  // Feed the stream in pieces of every size from 1 byte: the decoder must
  // report kIncomplete (consuming nothing) until a frame is whole.
  for (std::size_t piece : {1u, 2u, 3u, 7u, 64u, 1000u, 65536u}) {
    std::string buffer;
    std::size_t fed = 0;
    std::vector<std::string> payloads;
    while (fed < stream.size() || !buffer.empty()) {
      if (fed < stream.size()) {
        const std::size_t n = std::min(piece, stream.size() - fed);
        buffer.append(stream, fed, n);
        fed += n;
      }
      while (true) {
        Frame frame;
        const DecodeResult r = DecodeFrame(buffer.data(), buffer.size(), SIZE_MAX, &frame);
        ASSERT_NE(r.status, DecodeStatus::kError);
        if (r.status == DecodeStatus::kIncomplete) {
          EXPECT_EQ(r.consumed, 0u);
          break;
        }
        EXPECT_FALSE(frame.masked);
        payloads.emplace_back(frame.payload);
        buffer.erase(0, r.consumed);
      }
      if (fed == stream.size() && !buffer.empty()) FAIL() << "leftover bytes";
    }
    ASSERT_EQ(payloads.size(), 4u) << piece;
    EXPECT_EQ(payloads[0], small);
    EXPECT_EQ(payloads[1], medium);
    EXPECT_EQ(payloads[2], large);
    EXPECT_EQ(payloads[3], "p");
  }
}

TEST(WsFrameTest, RejectsProtocolViolations) {
  Frame frame;
  std::string rsv = ServerFrame(Opcode::kText, "x");
  rsv[0] = static_cast<char>(rsv[0] | 0x40);
  EXPECT_EQ(DecodeFrame(rsv.data(), rsv.size(), SIZE_MAX, &frame).status, DecodeStatus::kError);

  std::string opcode = ServerFrame(Opcode::kText, "x");
  opcode[0] = static_cast<char>(0x83);
  EXPECT_EQ(DecodeFrame(opcode.data(), opcode.size(), SIZE_MAX, &frame).status,
            DecodeStatus::kError);

  std::string fragmented_ping = ServerFrame(Opcode::kPing, "x", /*fin=*/false);
  EXPECT_EQ(DecodeFrame(fragmented_ping.data(), fragmented_ping.size(), SIZE_MAX, &frame).status,
            DecodeStatus::kError);

  std::string big_ping = ServerFrame(Opcode::kPing, std::string(126, 'p'));
  EXPECT_EQ(DecodeFrame(big_ping.data(), big_ping.size(), SIZE_MAX, &frame).status,
            DecodeStatus::kError);

  std::string too_big = ServerFrame(Opcode::kText, std::string(1000, 'x'));
  EXPECT_EQ(DecodeFrame(too_big.data(), too_big.size(), 999, &frame).status, DecodeStatus::kError);
  // The length alone decides: no need to wait for a payload that is refused anyway.
  EXPECT_EQ(DecodeFrame(too_big.data(), 4, 999, &frame).status, DecodeStatus::kError);

  std::string top_bit("\x82\x7F\x80\x00\x00\x00\x00\x00\x00\x01", 10);
  EXPECT_EQ(DecodeFrame(top_bit.data(), top_bit.size(), SIZE_MAX, &frame).status,
            DecodeStatus::kError);
}

TEST(WsFrameTest, ClosePayloadCarriesCodeAndReason) {
  const std::string payload = ClosePayload(1001, "going away");
  ASSERT_EQ(payload.size(), 12u);
  EXPECT_EQ(static_cast<unsigned char>(payload[0]), 0x03);
  EXPECT_EQ(static_cast<unsigned char>(payload[1]), 0xE9);
  EXPECT_EQ(payload.substr(2), "going away");
  EXPECT_EQ(ClosePayload(1000, std::string(300, 'r')).size(), 125u);  // control frame limit
}

TEST(WsFrameTest, AssemblerJoinsFragmentsAndRejectsStrayContinuations) {
  MessageAssembler assembler;
  Opcode opcode;
  std::string_view message;
  const char* error = nullptr;
  Frame first{/*fin=*/false, Opcode::kText, false, "Hel"};
  Frame middle{/*fin=*/false, Opcode::kContinuation, false, "lo, "};
  Frame last{/*fin=*/true, Opcode::kContinuation, false, "world"};
  EXPECT_EQ(assembler.Add(first, &opcode, &message, &error), MessageAssembler::Result::kPartial);
  EXPECT_EQ(assembler.Add(middle, &opcode, &message, &error), MessageAssembler::Result::kPartial);
  ASSERT_EQ(assembler.Add(last, &opcode, &message, &error), MessageAssembler::Result::kMessage);
  EXPECT_EQ(opcode, Opcode::kText);
  EXPECT_EQ(message, "Hello, world");

  Frame whole{/*fin=*/true, Opcode::kBinary, false, "one"};
  ASSERT_EQ(assembler.Add(whole, &opcode, &message, &error), MessageAssembler::Result::kMessage);
  EXPECT_EQ(message, "one");
  EXPECT_EQ(assembler.Add(last, &opcode, &message, &error), MessageAssembler::Result::kError);

  MessageAssembler interleaved;
  EXPECT_EQ(interleaved.Add(first, &opcode, &message, &error), MessageAssembler::Result::kPartial);
  EXPECT_EQ(interleaved.Add(whole, &opcode, &message, &error), MessageAssembler::Result::kError);
}

}  // namespace
}  // namespace relay::bench
