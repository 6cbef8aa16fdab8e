// Tests for gateway/codec/server_encoder.cc: the exact JSON text of every
// ServerEvent kind (field order as in the spec), string escaping, raw
// splicing of forwarded data, and that every frame reads back with the strict
// JSON reader.
#include "gateway/codec/server_encoder.h"

#include <string>
#include <vector>

#include "gateway/json/json_object.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

using ::relay::v1::ServerEvent;

// Fails the test unless `text` is one JSON object the strict reader accepts.
void ExpectStrictJson(const std::string& text) {
  json::Object obj;
  json::ParseError error;
  EXPECT_TRUE(json::ParseObject(text, 64, 1024, &obj, &error)) << text << ": " << error.message;
}

std::string Encode(const ServerEvent& event) {
  std::string text = EncodeServerEvent(event);
  ExpectStrictJson(text);
  return text;
}

relay::v1::PeerInfo Peer(const std::string& node, const std::string& name,
                         const std::vector<std::string>& caps, double joined_at) {
  relay::v1::PeerInfo info;
  info.set_node_id(node);
  info.set_name(name);
  for (const std::string& c : caps) info.add_capabilities(c);
  info.set_joined_at(joined_at);
  return info;
}

TEST(ServerEncoderTest, Joined) {
  ServerEvent event;
  event.mutable_joined()->set_mesh_id("lobby");
  event.mutable_joined()->set_node_count(3);

  EXPECT_EQ(Encode(event), R"({"type":"joined","mesh_id":"lobby","node_count":3})");
}

TEST(ServerEncoderTest, PeersWithJoinedAtInSeconds) {
  ServerEvent event;
  *event.mutable_peers()->add_peers() = Peer("a", "A", {"llm", "chat"}, 1700000000.25);
  *event.mutable_peers()->add_peers() = Peer("b", "B", {}, 1700000001.0);

  EXPECT_EQ(Encode(event),
            R"({"type":"peers","peers":[)"
            R"({"node_id":"a","name":"A","capabilities":["llm","chat"],"joined_at":1700000000.250000},)"
            R"({"node_id":"b","name":"B","capabilities":[],"joined_at":1700000001.000000}]})");
}

TEST(ServerEncoderTest, EmptyPeers) {
  ServerEvent event;
  event.mutable_peers();

  EXPECT_EQ(Encode(event), R"({"type":"peers","peers":[]})");
}

TEST(ServerEncoderTest, PeerJoined) {
  ServerEvent event;
  *event.mutable_peer_joined()->mutable_peer() = Peer("n", "Name", {"llm"}, 5.0);

  EXPECT_EQ(Encode(event),
            R"({"type":"peer_joined","node_id":"n","name":"Name","capabilities":["llm"]})");
}

TEST(ServerEncoderTest, PeerLeft) {
  ServerEvent event;
  event.mutable_peer_left()->set_node_id("gone");

  EXPECT_EQ(Encode(event), R"({"type":"peer_left","node_id":"gone"})");
}

TEST(ServerEncoderTest, PeerUpdated) {
  ServerEvent event;
  event.mutable_peer_updated()->set_node_id("n");
  event.mutable_peer_updated()->add_capabilities("llm");
  event.mutable_peer_updated()->add_capabilities("vision");

  EXPECT_EQ(Encode(event),
            R"({"type":"peer_updated","node_id":"n","capabilities":["llm","vision"]})");
}

TEST(ServerEncoderTest, MessageSplicesThePayloadRaw) {
  ServerEvent event;
  event.mutable_message()->set_from("alice");
  event.mutable_message()->set_payload("{\"b\" : [1.50, \"\\u00e9\"], \"a\":1e2}");
  event.mutable_message()->set_broadcast(true);

  EXPECT_EQ(Encode(event),
            "{\"type\":\"message\",\"from\":\"alice\",\"payload\":"
            "{\"b\" : [1.50, \"\\u00e9\"], \"a\":1e2}}");
}

TEST(ServerEncoderTest, DirectMessageLooksLikeABroadcastOne) {
  ServerEvent event;
  event.mutable_message()->set_from("a");
  event.mutable_message()->set_payload("null");

  EXPECT_EQ(Encode(event), R"({"type":"message","from":"a","payload":null})");
}

TEST(ServerEncoderTest, LlmRequestSplicesRequestIdAndMembersInOrder) {
  ServerEvent event;
  auto* delivery = event.mutable_llm_request();
  delivery->set_from("asker");
  auto* req = delivery->mutable_request();
  req->set_kind(relay::v1::LLM_REQUEST_KIND_LLM);
  req->set_request_id("\"r\\u0031\"");
  req->set_members(R"("model":"m","messages":[{"role":"user","content":"x"}],"n":1.0)");

  EXPECT_EQ(Encode(event),
            R"({"type":"llm_request","from":"asker","request_id":"r\u0031",)"
            R"("model":"m","messages":[{"role":"user","content":"x"}],"n":1.0})");
}

TEST(ServerEncoderTest, LlmRequestWithNumberRequestIdAndNoMembers) {
  ServerEvent event;
  event.mutable_llm_request()->set_from("a");
  event.mutable_llm_request()->mutable_request()->set_request_id("42");

  EXPECT_EQ(Encode(event), R"({"type":"llm_request","from":"a","request_id":42})");
}

TEST(ServerEncoderTest, LlmRequestInjectsMessagesFromThePromptLast) {
  ServerEvent event;
  event.mutable_llm_request()->set_from("a");
  auto* req = event.mutable_llm_request()->mutable_request();
  req->set_kind(relay::v1::LLM_REQUEST_KIND_LLM);
  req->set_request_id("1");
  req->set_members(R"("prompt":"say \"hi\"\n","model":"m")");
  req->set_add_messages(true);
  req->set_prompt_for_messages("say \"hi\"\n");

  EXPECT_EQ(Encode(event),
            R"({"type":"llm_request","from":"a","request_id":1,"prompt":"say \"hi\"\n",)"
            R"("model":"m","messages":[{"role":"user","content":"say \"hi\"\n"}]})");
}

TEST(ServerEncoderTest, ChatRequestKeepsItsType) {
  ServerEvent event;
  event.mutable_llm_request()->set_from("a");
  auto* req = event.mutable_llm_request()->mutable_request();
  req->set_kind(relay::v1::LLM_REQUEST_KIND_CHAT);
  req->set_request_id("\"c\"");
  req->set_members(R"("prompt":"hi")");
  req->set_add_messages(true);
  req->set_prompt_for_messages("hi");

  EXPECT_EQ(Encode(event),
            R"({"type":"chat_request","from":"a","request_id":"c","prompt":"hi",)"
            R"("messages":[{"role":"user","content":"hi"}]})");
}

TEST(ServerEncoderTest, LlmResponseSplicesRequestIdAndMembers) {
  ServerEvent event;
  event.mutable_llm_response()->set_from("model");
  auto* resp = event.mutable_llm_response()->mutable_response();
  resp->set_target("asker");
  resp->set_request_id("\"q\"");
  resp->set_members(R"("response":"4\u0032","usage":{"tokens": 3})");

  EXPECT_EQ(Encode(event),
            R"({"type":"llm_response","from":"model","request_id":"q",)"
            R"("response":"4\u0032","usage":{"tokens": 3}})");
}

TEST(ServerEncoderTest, LlmResponseWithoutRequestIdSaysNull) {
  ServerEvent event;
  event.mutable_llm_response()->set_from("model");
  event.mutable_llm_response()->mutable_response()->set_members(R"("response":"x")");

  EXPECT_EQ(Encode(event),
            R"({"type":"llm_response","from":"model","request_id":null,"response":"x"})");
}

TEST(ServerEncoderTest, PongHasFractionalSeconds) {
  ServerEvent event;
  event.mutable_pong()->set_timestamp(1700000001.484);

  EXPECT_EQ(Encode(event), R"({"type":"pong","timestamp":1700000001.484000})");
}

TEST(ServerEncoderTest, ErrorWithoutRequestId) {
  ServerEvent event;
  event.mutable_error()->set_code("unknown_target");
  event.mutable_error()->set_message("no peer \"x\" in this mesh");

  EXPECT_EQ(Encode(event),
            R"({"type":"error","code":"unknown_target","message":"no peer \"x\" in this mesh"})");
}

TEST(ServerEncoderTest, ErrorWithRequestIdSplicesItRaw) {
  ServerEvent event;
  event.mutable_error()->set_code("no_llm_peer");
  event.mutable_error()->set_message("none");
  event.mutable_error()->set_request_id("\"r-1\"");

  EXPECT_EQ(Encode(event),
            R"({"type":"error","code":"no_llm_peer","message":"none","request_id":"r-1"})");

  event.mutable_error()->set_request_id("7");
  EXPECT_EQ(Encode(event),
            R"({"type":"error","code":"no_llm_peer","message":"none","request_id":7})");
}

TEST(ServerEncoderTest, StringsAreEscaped) {
  ServerEvent event;
  event.mutable_peer_left()->set_node_id(std::string("q\"b\\s/\n\r\t\b\f\x01\x1f\x7f", 14));

  EXPECT_EQ(Encode(event),
            "{\"type\":\"peer_left\",\"node_id\":"
            "\"q\\\"b\\\\s/\\n\\r\\t\\u0008\\u000c\\u0001\\u001f\x7f\"}");
}

TEST(ServerEncoderTest, NulInStringsIsEscaped) {
  ServerEvent event;
  event.mutable_peer_left()->set_node_id(std::string("a\0b", 3));

  EXPECT_EQ(Encode(event), "{\"type\":\"peer_left\",\"node_id\":\"a\\u0000b\"}");
}

TEST(ServerEncoderTest, Utf8IsKeptAsIs) {
  ServerEvent event;
  event.mutable_joined()->set_mesh_id("caf\xC3\xA9-\xF0\x9F\x98\x80");
  event.mutable_joined()->set_node_count(1);

  EXPECT_EQ(Encode(event),
            "{\"type\":\"joined\",\"mesh_id\":\"caf\xC3\xA9-\xF0\x9F\x98\x80\",\"node_count\":1}");
}

TEST(ServerEncoderTest, EscapingAppliesToEveryStringField) {
  ServerEvent event;
  *event.mutable_peers()->add_peers() = Peer("n\"", "na\nme", {"c\\"}, 0.0);

  EXPECT_EQ(Encode(event),
            R"({"type":"peers","peers":[{"node_id":"n\"","name":"na\nme","capabilities":["c\\"],)"
            R"("joined_at":0.000000}]})");

  ServerEvent prompt;
  prompt.mutable_llm_request()->set_from("f\"");
  auto* req = prompt.mutable_llm_request()->mutable_request();
  req->set_request_id("1");
  req->set_add_messages(true);
  req->set_prompt_for_messages("\t\x02");
  EXPECT_EQ(Encode(prompt),
            R"({"type":"llm_request","from":"f\"","request_id":1,)"
            R"("messages":[{"role":"user","content":"\t\u0002"}]})");
}

TEST(ServerEncoderTest, EveryKindParsesBackWithTheStrictReader) {
  std::vector<ServerEvent> events(10);
  events[0].mutable_joined()->set_mesh_id("m\x01");
  *events[1].mutable_peers()->add_peers() = Peer("a\"", "\\", {"\n"}, 1.5);
  *events[2].mutable_peer_joined()->mutable_peer() = Peer("\x1f", "", {}, 0);
  events[3].mutable_peer_left()->set_node_id("\xE2\x82\xAC");
  events[4].mutable_peer_updated()->set_node_id("u");
  events[5].mutable_message()->set_payload("[1,{\"a\":null}]");
  events[6].mutable_llm_request()->mutable_request()->set_request_id("\"r\"");
  events[6].mutable_llm_request()->mutable_request()->set_members("\"x\":1");
  events[6].mutable_llm_request()->mutable_request()->set_add_messages(true);
  events[7].mutable_llm_response()->mutable_response()->set_members("\"r\":[]");
  events[8].mutable_pong()->set_timestamp(0.5);
  events[9].mutable_error()->set_code("bad_json");
  events[9].mutable_error()->set_request_id("1e3");

  for (const ServerEvent& e : events) {
    const std::string text = EncodeServerEvent(e);
    json::Object obj;
    json::ParseError error;
    ASSERT_TRUE(json::ParseObject(text, 64, 1024, &obj, &error)) << text << ": " << error.message;
    ASSERT_FALSE(obj.members.empty()) << text;
    EXPECT_EQ(obj.members[0].key, "type") << text;
    EXPECT_EQ(obj.members[0].kind, json::Kind::kString) << text;
  }
}

}  // namespace
}  // namespace relay::gateway
