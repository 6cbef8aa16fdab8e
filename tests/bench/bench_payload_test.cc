// Tests of bench/relay-bench/bench_payload: fixed size, round trip, and
// rejection of anything else.
#include "bench/relay-bench/bench_payload.h"

#include "gtest/gtest.h"

namespace relay::bench {
namespace {

TEST(BenchPayloadTest, RoundTripsAtTheRequestedSize) {
  PayloadFields in;
  in.seq = 0x123456789ull;
  in.send_ns = 0xFEDCBA9876543210ull;
  in.stream = 0xBEEF;
  for (std::size_t size : {std::size_t{0}, kMinPayloadBytes, std::size_t{64}, std::size_t{1000}}) {
    std::string out = "prefix";
    AppendPayload(&out, in, size);
    ASSERT_EQ(out.size(), 6 + std::max(size, kMinPayloadBytes));
    PayloadFields back;
    ASSERT_TRUE(ParsePayload(std::string_view(out).substr(6), &back)) << size;
    EXPECT_EQ(back.seq, in.seq);
    EXPECT_EQ(back.send_ns, in.send_ns);
    EXPECT_EQ(back.stream, in.stream);
  }
}

TEST(BenchPayloadTest, NeedsNoJsonEscaping) {
  std::string out;
  AppendPayload(&out, PayloadFields{UINT64_MAX, UINT64_MAX, UINT32_MAX}, 64);
  for (char c : out) {
    EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == 'S' || c == 'T' ||
                c == 'I' || c == '.')
        << c;
  }
}

TEST(BenchPayloadTest, RejectsOtherText) {
  PayloadFields f;
  EXPECT_FALSE(ParsePayload("hello", &f));
  std::string out;
  AppendPayload(&out, PayloadFields{}, 64);
  std::string bad = out;
  bad[5] = 'z';
  EXPECT_FALSE(ParsePayload(bad, &f));
  bad = out;
  bad[17] = 'X';
  EXPECT_FALSE(ParsePayload(bad, &f));
  EXPECT_FALSE(ParsePayload(out.substr(0, kMinPayloadBytes - 1), &f));
}

}  // namespace
}  // namespace relay::bench
