// Tests for server/core/llm_capabilities.h: the `*` globs of LLM_CAPABILITIES.
#include "server/core/llm_capabilities.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::core {
namespace {

using ::testing::ElementsAre;

TEST(LlmCapabilitiesTest, GlobsMatchAnyRunIncludingNone) {
  EXPECT_TRUE(CapabilityMatches("llm", "llm"));
  EXPECT_FALSE(CapabilityMatches("llm", "llm2"));
  EXPECT_FALSE(CapabilityMatches("llm", "LLM"));
  EXPECT_TRUE(CapabilityMatches("*llamafarm*", "llamafarm"));
  EXPECT_TRUE(CapabilityMatches("*llamafarm*", "team-llamafarm-chat"));
  EXPECT_FALSE(CapabilityMatches("*llamafarm*", "llama-farm"));
  EXPECT_TRUE(CapabilityMatches("gpu-*", "gpu-"));
  EXPECT_TRUE(CapabilityMatches("a*b*c", "abc"));
  EXPECT_TRUE(CapabilityMatches("a*b*c", "a-b-b-c"));
  EXPECT_FALSE(CapabilityMatches("a*b*c", "a-b-b-cd"));
  EXPECT_TRUE(CapabilityMatches("*", ""));
  EXPECT_TRUE(CapabilityMatches("**", "x"));
  EXPECT_FALSE(CapabilityMatches("", "x"));
  EXPECT_TRUE(CapabilityMatches("", ""));
}

TEST(LlmCapabilitiesTest, ManyStarsAgainstALongNameStayCheap) {
  // The worst case of the greedy matcher is |pattern| x |text|: both are
  // bounded by the capability byte limit, so this must return at once.
  const std::string text(256, 'a');
  EXPECT_FALSE(CapabilityMatches(std::string(60, '*') + "b", text));
  EXPECT_TRUE(CapabilityMatches(std::string(60, '*') + "a", text));
}

TEST(LlmCapabilitiesTest, DefaultsServeTheShippedClientsNames) {
  const std::vector<std::string> defaults = DefaultLlmCapabilities();
  EXPECT_THAT(defaults, ElementsAre("llm", "chat", "*llamafarm*"));
  EXPECT_TRUE(ServesLlm(defaults, {"chat", "embeddings", "completions"}));
  EXPECT_TRUE(ServesLlm(defaults, {"my-llamafarm-project"}));
  EXPECT_TRUE(ServesLlm(defaults, {"llm"}));
  EXPECT_FALSE(ServesLlm(defaults, {"embeddings", "completions"}));
  EXPECT_FALSE(ServesLlm(defaults, {}));
}

TEST(LlmCapabilitiesTest, ParsesACommaSeparatedListAndRefusesEmptyOrOverlongNames) {
  auto parsed = ParseLlmCapabilities(" llm , gpu-* ,chat", 64);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(*parsed, ElementsAre("llm", "gpu-*", "chat"));
  for (const char* bad : {"", "llm,,chat", "llm,", ",llm", " , "}) {
    auto refused = ParseLlmCapabilities(bad, 64);
    EXPECT_FALSE(refused.ok()) << "\"" << bad << "\"";
    EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("empty")) << bad;
  }
  auto long_one = ParseLlmCapabilities(std::string(65, 'x'), 64);
  ASSERT_FALSE(long_one.ok());
  EXPECT_THAT(std::string(long_one.status().message()), ::testing::HasSubstr("64 bytes"));
}

}  // namespace
}  // namespace relay::core
