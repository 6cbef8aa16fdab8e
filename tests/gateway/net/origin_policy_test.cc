// Tests for gateway/net/origin_policy.cc: ALLOWED_ORIGINS parsing and
// normalisation, exact matching of the Origin header (the attacks a page on
// another origin would try), and the CORS headers of each policy.
#include "gateway/net/origin_policy.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::gateway::net {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

OriginPolicy MustParse(absl::string_view list) {
  absl::StatusOr<OriginPolicy> policy = OriginPolicy::Parse(list);
  EXPECT_TRUE(policy.ok()) << list << ": " << policy.status();
  return policy.ok() ? *policy : OriginPolicy();
}

TEST(OriginPolicyTest, DefaultEmptyAndStarAllowEveryOrigin) {
  for (const OriginPolicy& policy :
       {OriginPolicy(), MustParse(""), MustParse("*"), MustParse(" * "), MustParse(",")}) {
    EXPECT_TRUE(policy.allows_any());
    EXPECT_EQ(policy.ToString(), "*");
    for (const char* origin : {"https://anything.test", "null", "", "http://localhost:1"}) {
      EXPECT_TRUE(policy.AllowsUpgrade(origin)) << origin;
      EXPECT_EQ(policy.AllowOriginFor(origin), "*") << origin;
    }
  }
}

TEST(OriginPolicyTest, ListAllowsExactlyItsOrigins) {
  const OriginPolicy policy = MustParse("https://app.example.com, http://localhost:3000");
  EXPECT_FALSE(policy.allows_any());
  EXPECT_EQ(policy.ToString(), "https://app.example.com,http://localhost:3000");
  EXPECT_TRUE(policy.AllowsUpgrade("https://app.example.com"));
  EXPECT_TRUE(policy.AllowsUpgrade("http://localhost:3000"));
  EXPECT_EQ(policy.AllowOriginFor("https://app.example.com"), "https://app.example.com");
}

// What a page on another origin, or a script forging Origin, would send.
TEST(OriginPolicyTest, LookalikeOriginsAreRefused) {
  const OriginPolicy policy = MustParse("https://app.example.com,http://localhost:3000");
  for (const char* origin : {
           "https://APP.example.com",            // case: browsers send lowercase
           "HTTPS://app.example.com",            // scheme case
           "https://app.example.com/",           // trailing slash
           "https://app.example.com/path",       // a path
           "https://app.example.com:443",        // the default port written out
           "https://app.example.com.",           // trailing dot
           "https://app.example.com.evil.test",  // suffix
           "https://evilapp.example.com",        // prefix
           "https://evil.test/https://app.example.com",
           "http://app.example.com",  // other scheme
           "wss://app.example.com",
           "https://app.example.com:4430",  // other port
           "http://localhost:30000",
           "http://localhost",
           " https://app.example.com",  // whitespace
           "https://app.example.com ",
           "https://app.example.com, https://evil.test",  // two Origin headers joined
           "https://app.example.com\r\nX: y",
           "null",  // sandboxed frames, file: pages
           "*",
       }) {
    EXPECT_FALSE(policy.AllowsUpgrade(origin)) << origin;
    EXPECT_EQ(policy.AllowOriginFor(origin), "") << origin;
  }
  EXPECT_FALSE(policy.AllowsUpgrade(std::string("https://app.example.com\0", 24)));
}

TEST(OriginPolicyTest, NoOriginHeaderIsANonBrowserClientAndMayUpgrade) {
  const OriginPolicy policy = MustParse("https://app.example.com");
  EXPECT_TRUE(policy.AllowsUpgrade(""));
  // But it gets no CORS permission: there is no origin to grant it to.
  EXPECT_EQ(policy.AllowOriginFor(""), "");
}

TEST(OriginPolicyTest, ConfiguredOriginsAreNormalisedAsBrowsersSerialiseThem) {
  EXPECT_EQ(MustParse("HTTPS://App.Example.COM").ToString(), "https://app.example.com");
  EXPECT_EQ(MustParse("https://app.example.com:443").ToString(), "https://app.example.com");
  EXPECT_EQ(MustParse("http://app.example.com:80").ToString(), "http://app.example.com");
  EXPECT_EQ(MustParse("http://app.example.com:443").ToString(), "http://app.example.com:443");
  EXPECT_EQ(MustParse("https://[::1]:8443").ToString(), "https://[::1]:8443");
  EXPECT_EQ(MustParse("capacitor://localhost").ToString(), "capacitor://localhost");
  EXPECT_EQ(MustParse("https://a.test,https://A.test").ToString(), "https://a.test");
  EXPECT_TRUE(MustParse("HTTPS://App.Example.COM:443").AllowsUpgrade("https://app.example.com"));
}

TEST(OriginPolicyTest, BadItemsAreRefusedNamingTheItemAndWhy) {
  const std::pair<const char*, const char*> bad[] = {
      {"https://app.example.com/", "no path"},
      {"https://app.example.com/app", "no path"},
      {"https://app.example.com?x=1", "no path"},
      {"https://app.example.com#x", "no path"},
      {"app.example.com", "no scheme"},
      {"://app.example.com", "no scheme"},
      {"1https://app.example.com", "start with a letter"},
      {"ht_tp://app.example.com", "scheme"},
      {"https://", "host"},
      {"https://:443", "host"},
      {"https://user@app.example.com", "user info"},
      {"https://*.example.com", "no wildcards"},
      {"https://app.example.com:0", "port"},
      {"https://app.example.com:65536", "port"},
      {"https://app.example.com:8x", "port"},
      {"https://app.example.com:", "port"},
      {"https://app example.com", "host"},
      {"https://[::1", "host"},
      {"null", "sandboxed"},
      {"NULL", "sandboxed"},
      {"*,https://app.example.com", "list no others"},
      {"https://app.example.com,*", "list no others"},
  };
  for (const auto& [list, why] : bad) {
    const absl::StatusOr<OriginPolicy> policy = OriginPolicy::Parse(list);
    ASSERT_FALSE(policy.ok()) << list;
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument) << list;
    EXPECT_THAT(policy.status().message(), HasSubstr(why)) << list;
  }
  EXPECT_THAT(OriginPolicy::Parse("https://ok.test, https://bad.test/").status().message(),
              HasSubstr("\"https://bad.test/\""));
}

TEST(OriginPolicyTest, CorsHeadersOfTheAnyPolicyAreStar) {
  EXPECT_THAT(CorsHeaders(OriginPolicy(), "https://x.test"),
              UnorderedElementsAre(Pair("Access-Control-Allow-Origin", "*")));
  EXPECT_THAT(CorsHeaders(OriginPolicy(), ""),
              UnorderedElementsAre(Pair("Access-Control-Allow-Origin", "*")));
}

TEST(OriginPolicyTest, CorsHeadersOfAListEchoTheOriginAndAlwaysVary) {
  const OriginPolicy policy = MustParse("https://app.example.com");
  EXPECT_THAT(CorsHeaders(policy, "https://app.example.com"),
              UnorderedElementsAre(Pair("Access-Control-Allow-Origin", "https://app.example.com"),
                                   Pair("Vary", "Origin")));
  EXPECT_THAT(CorsHeaders(policy, "https://evil.test"),
              UnorderedElementsAre(Pair("Vary", "Origin")));
  EXPECT_THAT(CorsHeaders(policy, ""), UnorderedElementsAre(Pair("Vary", "Origin")));
}

TEST(OriginPolicyTest, PreflightGrantsGetAndHeadOnlyToAllowedOrigins) {
  const OriginPolicy policy = MustParse("https://app.example.com");
  EXPECT_THAT(PreflightHeaders(policy, "https://app.example.com"),
              UnorderedElementsAre(Pair("Access-Control-Allow-Origin", "https://app.example.com"),
                                   Pair("Vary", "Origin"),
                                   Pair("Access-Control-Allow-Methods", "GET, HEAD"),
                                   Pair("Access-Control-Allow-Headers", HasSubstr("Cache-Control")),
                                   Pair("Access-Control-Max-Age", "7200")));
  EXPECT_THAT(PreflightHeaders(policy, "https://evil.test"),
              UnorderedElementsAre(Pair("Vary", "Origin")));
}

}  // namespace
}  // namespace relay::gateway::net
