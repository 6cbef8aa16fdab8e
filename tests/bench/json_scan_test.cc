// Tests of bench/relay-bench/json_scan: top-level members of the relay's
// messages, skipping nested values and escaped strings.
#include "bench/relay-bench/json_scan.h"

#include <vector>

#include "gtest/gtest.h"

namespace relay::bench {
namespace {

TEST(JsonScanTest, FindsTopLevelMembersOfRelayMessages) {
  const std::string_view msg = R"({"type":"message","from":"a","payload":"S0001"})";
  EXPECT_EQ(TopLevelMember(msg, "type"), R"("message")");
  EXPECT_EQ(TopLevelMember(msg, "from"), R"("a")");
  EXPECT_EQ(TopLevelMember(msg, "payload"), R"("S0001")");
  EXPECT_EQ(TopLevelMember(msg, "target"), std::nullopt);
  EXPECT_EQ(StringContents(*TopLevelMember(msg, "payload")), "S0001");
}

TEST(JsonScanTest, SkipsNestedValuesAndEscapes) {
  const std::string_view msg =
      R"({ "type" : "peers", "peers":[{"node_id":"x","type":"nested"},{"a":[1,{"b":"}"}]}],)"
      R"( "note":"a \"quoted\" } brace", "n": -12.5e3 , "ok":true, "last":null })";
  EXPECT_EQ(TopLevelMember(msg, "type"), R"("peers")");
  EXPECT_EQ(TopLevelMember(msg, "note"), R"("a \"quoted\" } brace")");
  EXPECT_EQ(TopLevelMember(msg, "n"), "-12.5e3");
  EXPECT_EQ(TopLevelMember(msg, "ok"), "true");
  EXPECT_EQ(TopLevelMember(msg, "last"), "null");
  EXPECT_EQ(TopLevelMember(msg, "node_id"), std::nullopt);  // nested only
  EXPECT_EQ(TopLevelMember(msg, "peers")->substr(0, 2), "[{");
}

TEST(JsonScanTest, RequestIdMayBeANumberOrAString) {
  EXPECT_EQ(TopLevelMember(R"({"type":"llm_response","request_id":42,"response":"r"})", "request_id"),
            "42");
  EXPECT_EQ(TopLevelMember(R"({"request_id":"42"})", "request_id"), R"("42")");
}

TEST(JsonScanTest, NotAnObjectOrMalformed) {
  EXPECT_EQ(TopLevelMember("[1,2]", "type"), std::nullopt);
  EXPECT_EQ(TopLevelMember("", "type"), std::nullopt);
  EXPECT_EQ(TopLevelMember(R"({"type":"unterminated)", "type"), std::nullopt);
  EXPECT_EQ(TopLevelMember(R"({"a":1 "type":"x"})", "type"), std::nullopt);
  EXPECT_EQ(StringContents("42"), std::nullopt);
  EXPECT_EQ(StringContents("\""), std::nullopt);
}

TEST(JsonScanTest, PeerNodeIdsOfPeersAndPeerJoined) {
  using Ids = std::vector<std::string_view>;
  EXPECT_EQ(PeerNodeIds(R"({"type":"peers","peers":[{"node_id":"a","name":"a","capabilities":[]},)"
                        R"({"node_id":"llm0","capabilities":["llm"],"joined_at":1.5}]})"),
            (Ids{"a", "llm0"}));
  EXPECT_EQ(PeerNodeIds(R"({"type":"peers","peers":[]})"), Ids{});
  EXPECT_EQ(PeerNodeIds(R"({"type":"peer_joined","node_id":"b","name":"b","capabilities":[]})"),
            (Ids{"b"}));
  EXPECT_EQ(PeerNodeIds(R"({"type":"peer_left","node_id":"b"})"), Ids{});
  EXPECT_EQ(PeerNodeIds(R"({"type":"peers","peers":[{"node_id":"a"},)"), Ids{});  // truncated
}

TEST(JsonScanTest, ArrayElements) {
  EXPECT_EQ(ArrayElements(R"([1, "x", {"a":[2]}, []])"),
            (std::vector<std::string_view>{"1", R"("x")", R"({"a":[2]})", "[]"}));
  EXPECT_EQ(ArrayElements("[]"), std::vector<std::string_view>{});
  EXPECT_EQ(ArrayElements("{}"), std::nullopt);
  EXPECT_EQ(ArrayElements("[1,"), std::nullopt);
}

}  // namespace
}  // namespace relay::bench
