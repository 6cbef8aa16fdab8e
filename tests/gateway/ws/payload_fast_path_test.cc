// The word-at-a-time unmasking and ASCII check that replace websocketpp's
// per-byte loops, against the per-byte definitions (RFC 6455 section 5.3).
#include "gateway/ws/payload_fast_path.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "websocketpp/frame.hpp"

namespace relay::gateway {
namespace {

std::vector<std::uint8_t> RandomBytes(std::mt19937* rng, std::size_t n) {
  std::vector<std::uint8_t> bytes(n);
  for (auto& b : bytes) b = static_cast<std::uint8_t>((*rng)() & 0xFF);
  return bytes;
}

TEST(UnmaskInPlaceTest, MatchesTheRfcDefinitionForEveryLengthAndSplit) {
  std::mt19937 rng(7);
  for (std::size_t length = 0; length <= 70; ++length) {
    const std::vector<std::uint8_t> masked = RandomBytes(&rng, length);
    websocketpp::frame::masking_key_type key;
    key.i = static_cast<std::uint32_t>(rng());
    std::vector<std::uint8_t> expected = masked;
    for (std::size_t i = 0; i < length; ++i) expected[i] ^= key.c[i % 4];

    // The payload arrives in two chunks (two reads) split anywhere.
    for (std::size_t split = 0; split <= length; ++split) {
      std::vector<std::uint8_t> data = masked;
      std::size_t prepared = websocketpp::frame::prepare_masking_key(key);
      prepared = UnmaskInPlace(data.data(), split, prepared);
      UnmaskInPlace(data.data() + split, length - split, prepared);
      ASSERT_EQ(data, expected) << "length " << length << " split " << split;
    }
  }
}

TEST(UnmaskInPlaceTest, ReturnsTheKeyWebsocketppWouldContinueWith) {
  websocketpp::frame::masking_key_type key;
  key.i = 0x12345678;
  const std::size_t prepared = websocketpp::frame::prepare_masking_key(key);
  for (std::size_t length = 0; length < 20; ++length) {
    std::vector<std::uint8_t> a(length, 0x5A), b(length, 0x5A);
    EXPECT_EQ(UnmaskInPlace(a.data(), length, prepared),
              websocketpp::frame::byte_mask_circ(b.data(), length, prepared))
        << length;
    EXPECT_EQ(a, b);
  }
}

TEST(IsAsciiTest, FindsANonAsciiByteAtAnyOffset) {
  for (std::size_t length = 0; length <= 40; ++length) {
    std::string s(length, 'x');
    EXPECT_TRUE(IsAscii(s.data(), s.size()));
    for (std::size_t at = 0; at < length; ++at) {
      std::string bad = s;
      bad[at] = static_cast<char>(0x80);
      EXPECT_FALSE(IsAscii(bad.data(), bad.size())) << length << " " << at;
      bad[at] = static_cast<char>(0xFF);
      EXPECT_FALSE(IsAscii(bad.data(), bad.size())) << length << " " << at;
    }
  }
  const std::string controls("\x00\x01\x1f\x7f", 4);
  EXPECT_TRUE(IsAscii(controls.data(), controls.size()));
}

}  // namespace
}  // namespace relay::gateway
