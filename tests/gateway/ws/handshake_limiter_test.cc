// Tests for gateway/ws/handshake_limiter.cc: the total and per-IP bounds on
// connections still in their handshake, the trusted-proxy exemption, and that
// a token leaves the count exactly once however it ends.
#include "gateway/ws/handshake_limiter.h"

#include <memory>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

using Verdict = HandshakeLimiter::Verdict;

TEST(HandshakeLimiterTest, PerIpBoundRefusesThatIpOnly) {
  HandshakeLimiter limiter(/*max_total=*/100, /*max_per_ip=*/2);
  HandshakeToken a, b, c, other;

  EXPECT_EQ(limiter.Admit("10.0.0.1", false, &a), Verdict::kAdmitted);
  EXPECT_EQ(limiter.Admit("10.0.0.1", false, &b), Verdict::kAdmitted);
  EXPECT_EQ(limiter.Admit("10.0.0.1", false, &c), Verdict::kPerIpFull);
  EXPECT_FALSE(c.held());
  EXPECT_EQ(limiter.Admit("10.0.0.2", false, &other), Verdict::kAdmitted);
  EXPECT_EQ(limiter.pending(), 3u);
  EXPECT_EQ(limiter.pending_from("10.0.0.1"), 2u);
}

TEST(HandshakeLimiterTest, TotalBoundRefusesEveryIp) {
  HandshakeLimiter limiter(/*max_total=*/2, /*max_per_ip=*/10);
  HandshakeToken a, b, c;

  EXPECT_EQ(limiter.Admit("10.0.0.1", false, &a), Verdict::kAdmitted);
  EXPECT_EQ(limiter.Admit("10.0.0.2", false, &b), Verdict::kAdmitted);
  EXPECT_EQ(limiter.Admit("10.0.0.3", false, &c), Verdict::kTotalFull);
  // The total applies to trusted proxies too.
  EXPECT_EQ(limiter.Admit("10.0.0.4", /*per_ip_exempt=*/true, &c), Verdict::kTotalFull);
}

TEST(HandshakeLimiterTest, TrustedProxyIsExemptFromThePerIpBound) {
  HandshakeLimiter limiter(/*max_total=*/10, /*max_per_ip=*/1);
  std::vector<HandshakeToken> tokens(5);

  for (HandshakeToken& token : tokens) {
    EXPECT_EQ(limiter.Admit("192.0.2.7", /*per_ip_exempt=*/true, &token), Verdict::kAdmitted);
  }
  EXPECT_EQ(limiter.pending(), 5u);
  EXPECT_EQ(limiter.pending_from("192.0.2.7"), 0u);
  HandshakeToken direct;
  EXPECT_EQ(limiter.Admit("192.0.2.7", false, &direct), Verdict::kAdmitted);
  tokens.clear();
  EXPECT_EQ(limiter.pending(), 1u);
}

TEST(HandshakeLimiterTest, ReleaseAndDestructionLeaveTheCountOnce) {
  HandshakeLimiter limiter(/*max_total=*/1, /*max_per_ip=*/1);
  {
    HandshakeToken token;
    ASSERT_EQ(limiter.Admit("10.0.0.1", false, &token), Verdict::kAdmitted);
    token.Release();
    token.Release();  // idempotent
    EXPECT_EQ(limiter.pending(), 0u);
    ASSERT_EQ(limiter.Admit("10.0.0.1", false, &token), Verdict::kAdmitted);
    EXPECT_EQ(limiter.pending(), 1u);
  }  // destroyed while held
  EXPECT_EQ(limiter.pending(), 0u);
  EXPECT_EQ(limiter.pending_from("10.0.0.1"), 0u);
}

TEST(HandshakeLimiterTest, MovedTokenIsCountedOnce) {
  HandshakeLimiter limiter(/*max_total=*/5, /*max_per_ip=*/5);
  HandshakeToken first;
  ASSERT_EQ(limiter.Admit("10.0.0.1", false, &first), Verdict::kAdmitted);

  HandshakeToken second(std::move(first));
  EXPECT_FALSE(first.held());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_TRUE(second.held());
  HandshakeToken third;
  third = std::move(second);
  EXPECT_EQ(limiter.pending(), 1u);
  third.Release();
  EXPECT_EQ(limiter.pending(), 0u);
}

TEST(HandshakeLimiterTest, ZeroDisablesABound) {
  HandshakeLimiter limiter(/*max_total=*/0, /*max_per_ip=*/0);
  std::vector<HandshakeToken> tokens(1000);
  for (HandshakeToken& token : tokens) {
    EXPECT_EQ(limiter.Admit("10.0.0.1", false, &token), Verdict::kAdmitted);
  }
  EXPECT_EQ(limiter.pending(), 1000u);
}

TEST(HandshakeLimiterTest, TokenOutlivingItsLimiterIsHarmless) {
  auto limiter = std::make_unique<HandshakeLimiter>(1, 1);
  HandshakeToken token;
  ASSERT_EQ(limiter->Admit("10.0.0.1", false, &token), Verdict::kAdmitted);
  limiter.reset();  // the gateway goes first; a connection is destroyed later
  token.Release();
  EXPECT_FALSE(token.held());
}

TEST(HandshakeLimiterTest, RefusalLeavesTheOfferedTokenEmpty) {
  HandshakeLimiter limiter(/*max_total=*/1, /*max_per_ip=*/1);
  HandshakeToken held, offered;
  ASSERT_EQ(limiter.Admit("10.0.0.1", false, &held), Verdict::kAdmitted);
  EXPECT_EQ(limiter.Admit("10.0.0.2", false, &offered), Verdict::kTotalFull);
  EXPECT_FALSE(offered.held());
  EXPECT_EQ(limiter.pending(), 1u);
}

}  // namespace
}  // namespace relay::gateway
