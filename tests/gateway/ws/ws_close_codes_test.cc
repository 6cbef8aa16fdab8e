// Tests for gateway/ws/ws_close_codes.h: every CloseReason the relay can
// close with maps to a close code a close frame may carry (RFC 6455 7.4)
// and to a reason text that fits the frame, as docs/protocol.md lists them.
#include "gateway/ws/ws_close_codes.h"

#include <cstddef>
#include <cstdint>

#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

using core::CloseReason;

TEST(WsCloseCodesTest, EveryReasonMapsToASendableCode) {
  for (std::size_t i = 0; i < core::kCloseReasonCount; ++i) {
    const auto reason = static_cast<CloseReason>(i);
    const WsClose close = WsCloseFor(reason);
    const absl::string_view name = core::CloseReasonName(reason);
    EXPECT_GE(close.code, 1000) << name;
    EXPECT_LE(close.code, 4999) << name;
    // Reserved: they report a local condition and must never be sent.
    EXPECT_NE(close.code, 1004) << name;
    EXPECT_NE(close.code, 1005) << name;
    EXPECT_NE(close.code, 1006) << name;
    EXPECT_NE(close.code, 1015) << name;
    EXPECT_FALSE(close.text.empty()) << name;
    EXPECT_LE(close.text.size(), 123u) << name;  // 125-byte control frame, 2 for the code
  }
}

TEST(WsCloseCodesTest, TheTableHasOneRowPerReasonInOrder) {
  ASSERT_EQ(kWsCloses.size(), core::kCloseReasonCount);
  for (std::size_t i = 0; i < kWsCloses.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(kWsCloses[i].reason), i);
  }
}

TEST(WsCloseCodesTest, CodesAreTheDocumentedOnes) {
  // docs/protocol.md "Close codes": what shipped clients act upon.
  EXPECT_EQ(WsCloseFor(CloseReason::kClientClosed).code, 1000);
  EXPECT_EQ(WsCloseFor(CloseReason::kReplaced).code, 1000);
  EXPECT_EQ(WsCloseFor(CloseReason::kServerShutdown).code, 1001);
  EXPECT_EQ(WsCloseFor(CloseReason::kKeepaliveTimeout).code, 1001);
  EXPECT_EQ(WsCloseFor(CloseReason::kInvalidFrame).code, 1007);
  EXPECT_EQ(WsCloseFor(CloseReason::kRegistrationTimeout).code, 1008);
  EXPECT_EQ(WsCloseFor(CloseReason::kRateLimited).code, 1008);
  EXPECT_EQ(WsCloseFor(CloseReason::kAuthFailed).code, 1008);
  EXPECT_EQ(WsCloseFor(CloseReason::kKicked).code, 1008);
  EXPECT_EQ(WsCloseFor(CloseReason::kMeshClosed).code, 1008);
  EXPECT_EQ(WsCloseFor(CloseReason::kMessageTooBig).code, 1009);
  EXPECT_EQ(WsCloseFor(CloseReason::kTransportError).code, 1011);
  EXPECT_EQ(WsCloseFor(CloseReason::kSlowConsumer).code, 1013);
  EXPECT_EQ(WsCloseFor(CloseReason::kServiceRestart).code, 1012);
  EXPECT_EQ(WsCloseFor(CloseReason::kServerShutdown).text, "server shutting down");
  EXPECT_EQ(WsCloseFor(CloseReason::kSlowConsumer).text, "slow consumer");
}

TEST(WsCloseCodesTest, SendableCodeCheckRefusesTheReservedOnes) {
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 5000}) {
    EXPECT_FALSE(IsSendableCloseCode(code)) << code;
  }
  for (std::uint16_t code : {1000, 1001, 1003, 1007, 1011, 1013, 1014, 3000, 4000, 4999}) {
    EXPECT_TRUE(IsSendableCloseCode(code)) << code;
  }
}

}  // namespace
}  // namespace relay::gateway
