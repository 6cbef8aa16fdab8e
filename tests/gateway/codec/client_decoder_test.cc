// Tests for gateway/codec/client_decoder.cc: each client frame becomes the
// right ClientEvent, with forwarded data kept byte-for-byte, or the right
// failure code (and the request_id when it had been read).
#include "gateway/codec/client_decoder.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/limits.h"

namespace relay::gateway {
namespace {

using core::ErrorCode;
using ::relay::v1::ClientEvent;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

ClientEvent MustDecode(const std::string& frame, const std::string& mesh_id = "lobby") {
  ClientEvent event;
  DecodeFailure failure;
  EXPECT_TRUE(DecodeClientFrame(frame, mesh_id, &event, &failure))
      << frame << " -> " << core::ErrorCodeName(failure.code) << ": " << failure.message;
  return event;
}

DecodeFailure MustFail(const std::string& frame) {
  ClientEvent event;
  DecodeFailure failure;
  EXPECT_FALSE(DecodeClientFrame(frame, "lobby", &event, &failure)) << "accepted: " << frame;
  return failure;
}

// --- register / join --------------------------------------------------------

// The decoder reuses one member list between frames: a frame with a huge
// number of members, a failed one and a small one in a row each decode on
// their own (nothing of one frame shows in the next).
TEST(ClientDecoderTest, FramesDecodeIndependentlyWhateverCameBefore) {
  std::string huge = R"({"type":"broadcast","payload":1)";
  for (std::size_t i = 2; i < limits::kMaxJsonMembersPerObject; ++i) {
    huge += ",\"k" + std::to_string(i) + "\":" + std::to_string(i);
  }
  huge += "}";
  EXPECT_EQ(MustDecode(huge).broadcast().payload(), "1");

  ClientEvent failed;
  DecodeFailure failure;
  EXPECT_FALSE(DecodeClientFrame(R"({"type":"direct","payload":2})", "lobby", &failed, &failure));

  const ClientEvent small = MustDecode(R"({"type":"direct","target":"b","payload":[3]})");
  EXPECT_EQ(small.direct().target(), "b");
  EXPECT_EQ(small.direct().payload(), "[3]");
  const ClientEvent no_payload = MustDecode(R"({"type":"broadcast"})");
  EXPECT_EQ(no_payload.broadcast().payload(), "null");
}

TEST(ClientDecoderTest, RegisterDecodesEveryField) {
  const ClientEvent event = MustDecode(
      R"({"type":"register","node_id":"n1","name":"Node One","capabilities":["llm","chat"],"token":"t0k"})",
      "mesh/with%slash");

  ASSERT_TRUE(event.has_register_());
  const relay::v1::Register& reg = event.register_();
  EXPECT_EQ(reg.mesh_id(), "mesh/with%slash");
  EXPECT_EQ(reg.node_id(), "n1");
  EXPECT_EQ(reg.name(), "Node One");
  EXPECT_THAT(reg.capabilities(), ElementsAre("llm", "chat"));
  EXPECT_EQ(reg.token(), "t0k");
  EXPECT_FALSE(reg.via_join());
}

TEST(ClientDecoderTest, RegisterWithOnlyNodeIdLeavesTheRestEmpty) {
  const ClientEvent event = MustDecode(R"({"type":"register","node_id":"n\u00e9"})");

  ASSERT_TRUE(event.has_register_());
  EXPECT_EQ(event.register_().node_id(), "n\xC3\xA9");
  EXPECT_EQ(event.register_().name(), "");
  EXPECT_THAT(event.register_().capabilities(), IsEmpty());
  EXPECT_EQ(event.register_().token(), "");
}

TEST(ClientDecoderTest, JoinSetsViaJoinAndAcceptsNodeName) {
  const ClientEvent event = MustDecode(R"({"type":"join","node_id":"n1","node_name":"Phone"})");

  ASSERT_TRUE(event.has_register_());
  EXPECT_TRUE(event.register_().via_join());
  EXPECT_EQ(event.register_().name(), "Phone");
  EXPECT_EQ(event.register_().mesh_id(), "lobby");
}

TEST(ClientDecoderTest, JoinPrefersNameOverNodeName) {
  const ClientEvent event =
      MustDecode(R"({"type":"join","node_id":"n1","node_name":"Old","name":"New"})");

  EXPECT_EQ(event.register_().name(), "New");
}

TEST(ClientDecoderTest, RegisterIgnoresNodeName) {
  const ClientEvent event = MustDecode(R"({"type":"register","node_id":"n1","node_name":"X"})");

  EXPECT_EQ(event.register_().name(), "");
}

TEST(ClientDecoderTest, NullTokenIsNoToken) {
  const ClientEvent event = MustDecode(R"({"type":"register","node_id":"n1","token":null})");

  EXPECT_EQ(event.register_().token(), "");
}

TEST(ClientDecoderTest, TokenOfAnotherTypeThanStringOrObjectIsBadMessage) {
  EXPECT_EQ(MustFail(R"({"type":"join","node_id":"n1","token":5})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"type":"join","node_id":"n1","token":[]})").code, ErrorCode::kBadMessage);
}

TEST(ClientDecoderTest, TokenObjectBecomesASignedTokenWithPythonCanonicalBytes) {
  const ClientEvent event = MustDecode(
      R"({"type":"join","node_id":"phone","token":{"mesh_id":"home","node_id":"phone",)"
      R"("issued_at":1764120000.5,"expires_at":1764123600,"capabilities":["llm","chat"],)"
      R"("issuer_id":"mac\u00e9","nonce":"n-1","signature":"c2ln"}})",
      "home");
  const relay::v1::SignedJoinToken& token = event.register_().signed_token();
  EXPECT_TRUE(token.present());
  EXPECT_EQ(token.malformed(), "");
  EXPECT_EQ(token.mesh_id(), "home");
  EXPECT_EQ(token.node_id(), "phone");
  EXPECT_EQ(token.nonce(), "n-1");
  EXPECT_EQ(token.signature_b64(), "c2ln");
  EXPECT_DOUBLE_EQ(token.expires_at(), 1764123600);
  // json.dumps({...}, sort_keys=True, separators=(",", ":")) in Python:
  // capabilities sorted, non-ASCII escaped.
  EXPECT_EQ(token.canonical(),
            R"({"capabilities":["chat","llm"],"expires_at":1764123600,"issued_at":1764120000.5,)"
            R"("issuer_id":"mac\u00e9","mesh_id":"home","node_id":"phone","nonce":"n-1"})");
}

TEST(ClientDecoderTest, TokenWithoutNodeOrIssuedAtCanonicalizesThemAsNull) {
  const ClientEvent event = MustDecode(
      R"({"type":"join","node_id":"p","token":{"mesh_id":"m","expires_at":5,"issuer_id":"i",)"
      R"("nonce":"n","signature":"s"}})");
  EXPECT_EQ(event.register_().signed_token().canonical(),
            R"({"capabilities":[],"expires_at":5,"issued_at":null,"issuer_id":"i","mesh_id":"m",)"
            R"("node_id":null,"nonce":"n"})");
}

TEST(ClientDecoderTest, MalformedTokenObjectIsMarkedForTheCoreToRefuse) {
  for (
      const char* token :
      {R"({"mesh_id":"m","issuer_id":"i","nonce":"n","signature":"s"})",
       R"({"mesh_id":"m","expires_at":"soon","issuer_id":"i","nonce":"n","signature":"s"})",
       R"({"expires_at":1,"issuer_id":"i","nonce":"n","signature":"s"})",
       R"({"mesh_id":"m","expires_at":1,"issuer_id":"i","nonce":"n","signature":"s","capabilities":[1]})"}) {
    const ClientEvent event =
        MustDecode(std::string(R"({"type":"join","node_id":"p","token":)") + token + "}");
    EXPECT_TRUE(event.register_().signed_token().present()) << token;
    EXPECT_NE(event.register_().signed_token().malformed(), "") << token;
  }
}

TEST(ClientDecoderTest, RegisterMeshDecodesTheFounderAndItsPeerRegistration) {
  const ClientEvent event = MustDecode(
      R"({"type":"register_mesh","mesh_id":"home","mesh_public_key":"a2V5","founder_proof":"cHJm",)"
      R"("node_id":"mac","node_public_key":"bms=","name":"Home","display_name":"My Mac",)"
      R"("capabilities":["llm"]})",
      "home");
  ASSERT_TRUE(event.has_register_mesh());
  const relay::v1::RegisterMesh& request = event.register_mesh();
  EXPECT_EQ(request.mesh_id(), "home");
  EXPECT_EQ(request.mesh_public_key_b64(), "a2V5");
  EXPECT_EQ(request.founder_proof_b64(), "cHJm");
  EXPECT_EQ(request.node_public_key_b64(), "bms=");
  EXPECT_EQ(request.peer().mesh_id(), "home");
  EXPECT_EQ(request.peer().node_id(), "mac");
  EXPECT_EQ(request.peer().name(), "My Mac");
  ASSERT_EQ(request.peer().capabilities_size(), 1);
}

TEST(ClientDecoderTest, RegisterMeshWithoutItsKeysIsBadMessage) {
  EXPECT_EQ(MustFail(R"({"type":"register_mesh","mesh_id":"m","node_id":"n"})").code,
            ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"type":"register_mesh","mesh_id":"m","mesh_public_key":1,)"
                     R"("founder_proof":"p","node_id":"n"})")
                .code,
            ErrorCode::kBadMessage);
}

TEST(ClientDecoderTest, CapabilitiesOfTheWrongTypeAreBadMessage) {
  for (const char* caps : {"\"llm\"", "[\"llm\",1]", "[[\"llm\"]]", "{}", "true", "[null]"}) {
    EXPECT_EQ(
        MustFail(std::string(R"({"type":"register","node_id":"n1","capabilities":)") + caps + "}")
            .code,
        ErrorCode::kBadMessage)
        << caps;
  }
}

TEST(ClientDecoderTest, EmptyCapabilitiesAreAccepted) {
  const ClientEvent event = MustDecode(R"({"type":"register","node_id":"n1","capabilities":[]})");

  EXPECT_THAT(event.register_().capabilities(), IsEmpty());
}

TEST(ClientDecoderTest, RegisterWithoutStringNodeIdIsBadMessage) {
  EXPECT_EQ(MustFail(R"({"type":"register"})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"type":"register","node_id":7})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"type":"join","node_id":null})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"type":"register","node_id":"n","name":1})").code, ErrorCode::kBadMessage);
}

TEST(ClientDecoderTest, UnknownExtraFieldsAreIgnored) {
  const ClientEvent event =
      MustDecode(R"({"type":"register","node_id":"n1","extra":{"deep":[1,2]},"from":"spoof"})");

  ASSERT_TRUE(event.has_register_());
  EXPECT_EQ(event.register_().node_id(), "n1");
}

// --- broadcast / direct -----------------------------------------------------

TEST(ClientDecoderTest, BroadcastKeepsThePayloadBytesExactly) {
  const ClientEvent event =
      MustDecode("{\"type\":\"broadcast\",\"payload\": {\"b\" : [1.50, \"\\u00e9\"],\"a\":1e2} }");

  ASSERT_TRUE(event.has_broadcast());
  EXPECT_EQ(event.broadcast().payload(), "{\"b\" : [1.50, \"\\u00e9\"],\"a\":1e2}");
}

TEST(ClientDecoderTest, BroadcastWithoutPayloadCarriesNull) {
  const ClientEvent event = MustDecode(R"({"type":"broadcast"})");

  ASSERT_TRUE(event.has_broadcast());
  EXPECT_EQ(event.broadcast().payload(), "null");
}

TEST(ClientDecoderTest, BroadcastOfScalarPayloads) {
  EXPECT_EQ(MustDecode(R"({"type":"broadcast","payload":"hi"})").broadcast().payload(), "\"hi\"");
  EXPECT_EQ(MustDecode(R"({"type":"broadcast","payload":-0.0})").broadcast().payload(), "-0.0");
  EXPECT_EQ(MustDecode(R"({"type":"broadcast","payload":null})").broadcast().payload(), "null");
}

TEST(ClientDecoderTest, DirectDecodesTargetAndPayload) {
  const ClientEvent event =
      MustDecode(R"({"payload":[ true ],"target":"b\u00f6b","type":"direct"})");

  ASSERT_TRUE(event.has_direct());
  EXPECT_EQ(event.direct().target(),
            "b\xC3\xB6"
            "b");
  EXPECT_EQ(event.direct().payload(), "[ true ]");
}

TEST(ClientDecoderTest, DirectWithoutPayloadCarriesNull) {
  EXPECT_EQ(MustDecode(R"({"type":"direct","target":"b"})").direct().payload(), "null");
}

TEST(ClientDecoderTest, DirectWithoutStringTargetIsBadMessage) {
  EXPECT_EQ(MustFail(R"({"type":"direct","payload":1})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"type":"direct","target":1})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"type":"direct","target":["b"]})").code, ErrorCode::kBadMessage);
}

// --- llm_request / chat_request ---------------------------------------------

TEST(ClientDecoderTest, LlmRequestWithStringRequestIdKeepsItRaw) {
  const ClientEvent event = MustDecode(R"({"type":"llm_request","request_id":"r\u0031"})");

  ASSERT_TRUE(event.has_llm_request());
  EXPECT_EQ(event.llm_request().request_id(), R"("r\u0031")");
  EXPECT_EQ(event.llm_request().kind(), relay::v1::LLM_REQUEST_KIND_LLM);
}

TEST(ClientDecoderTest, LlmRequestWithNumberRequestIdKeepsItRaw) {
  const ClientEvent event = MustDecode(R"({"type":"llm_request","request_id":1.0e3})");

  EXPECT_EQ(event.llm_request().request_id(), "1.0e3");
}

TEST(ClientDecoderTest, LlmRequestWithoutRequestIdIsBadMessage) {
  const DecodeFailure failure = MustFail(R"({"type":"llm_request","prompt":"hi"})");

  EXPECT_EQ(failure.code, ErrorCode::kBadMessage);
  EXPECT_EQ(failure.request_id_json, "");
}

TEST(ClientDecoderTest, LlmRequestWithNonScalarRequestIdIsBadMessage) {
  for (const char* id : {"{\"a\":1}", "[1]", "null", "true"}) {
    const DecodeFailure failure =
        MustFail(std::string(R"({"type":"llm_request","request_id":)") + id + "}");
    EXPECT_EQ(failure.code, ErrorCode::kBadMessage) << id;
    EXPECT_EQ(failure.request_id_json, "") << id;
  }
}

TEST(ClientDecoderTest, LlmRequestMembersExcludeTypeFromAndRequestIdAndKeepOrderAndRawText) {
  const ClientEvent event = MustDecode(
      "{\"model\" : \"m1\",\"type\":\"llm_request\",\"from\":\"spoof\",\"prompt\":\"h\\u0069\","
      "\"request_id\":\"r\",\"options\":{ \"t\" : 0.50 },\"stream\":false}");

  EXPECT_EQ(event.llm_request().members(),
            "\"model\":\"m1\",\"prompt\":\"h\\u0069\",\"options\":{ \"t\" : 0.50 },"
            "\"stream\":false");
}

TEST(ClientDecoderTest, LlmRequestWithOnlyRequestIdHasNoMembers) {
  const ClientEvent event = MustDecode(R"({"type":"llm_request","request_id":1})");

  EXPECT_EQ(event.llm_request().members(), "");
  EXPECT_FALSE(event.llm_request().add_messages());
}

TEST(ClientDecoderTest, StringPromptWithoutMessagesAsksForMessages) {
  const ClientEvent event =
      MustDecode(R"({"type":"llm_request","request_id":1,"prompt":"say \"hi\"\n"})");

  EXPECT_TRUE(event.llm_request().add_messages());
  EXPECT_EQ(event.llm_request().prompt_for_messages(), "say \"hi\"\n");
}

TEST(ClientDecoderTest, PromptWithMessagesDoesNotAddMessages) {
  const ClientEvent event = MustDecode(
      R"({"type":"llm_request","request_id":1,"prompt":"x","messages":[{"role":"user","content":"y"}]})");

  EXPECT_FALSE(event.llm_request().add_messages());
  EXPECT_EQ(event.llm_request().prompt_for_messages(), "");
  EXPECT_EQ(event.llm_request().members(),
            R"("prompt":"x","messages":[{"role":"user","content":"y"}])");
}

TEST(ClientDecoderTest, NonStringPromptDoesNotAddMessages) {
  for (const char* prompt : {"null", "1", "[\"a\"]", "{\"text\":\"a\"}"}) {
    const ClientEvent event =
        MustDecode(std::string(R"({"type":"llm_request","request_id":1,"prompt":)") + prompt + "}");
    EXPECT_FALSE(event.llm_request().add_messages()) << prompt;
  }
  EXPECT_FALSE(MustDecode(R"({"type":"llm_request","request_id":1})").llm_request().add_messages());
}

TEST(ClientDecoderTest, ChatRequestHasTheChatKind) {
  const ClientEvent event =
      MustDecode(R"({"type":"chat_request","request_id":"c1","prompt":"hi"})");

  ASSERT_TRUE(event.has_llm_request());
  EXPECT_EQ(event.llm_request().kind(), relay::v1::LLM_REQUEST_KIND_CHAT);
  EXPECT_EQ(event.llm_request().request_id(), "\"c1\"");
  EXPECT_TRUE(event.llm_request().add_messages());
}

// --- llm_response -----------------------------------------------------------

TEST(ClientDecoderTest, LlmResponseMembersExcludeTypeFromTargetAndRequestId) {
  const ClientEvent event = MustDecode(
      "{\"type\":\"llm_response\",\"target\":\"asker\",\"response\":\"4\\u0032\",\"from\":\"x\","
      "\"request_id\":7,\"usage\":{\"tokens\": 3},\"done\":true}");

  ASSERT_TRUE(event.has_llm_response());
  const relay::v1::LlmResponse& resp = event.llm_response();
  EXPECT_EQ(resp.target(), "asker");
  EXPECT_EQ(resp.request_id(), "7");
  EXPECT_EQ(resp.members(), "\"response\":\"4\\u0032\",\"usage\":{\"tokens\": 3},\"done\":true");
}

TEST(ClientDecoderTest, LlmResponseWithoutRequestIdHasAnEmptyOne) {
  EXPECT_EQ(MustDecode(R"({"type":"llm_response","target":"a"})").llm_response().request_id(), "");
  EXPECT_EQ(MustDecode(R"({"type":"llm_response","target":"a","request_id":null})")
                .llm_response()
                .request_id(),
            "");
}

TEST(ClientDecoderTest, LlmResponseWithObjectRequestIdIsBadMessage) {
  EXPECT_EQ(MustFail(R"({"type":"llm_response","target":"a","request_id":{}})").code,
            ErrorCode::kBadMessage);
}

TEST(ClientDecoderTest, LlmResponseWithoutTargetIsBadMessageWithTheRequestId) {
  const DecodeFailure failure =
      MustFail(R"({"type":"llm_response","request_id":"q","response":1})");

  EXPECT_EQ(failure.code, ErrorCode::kBadMessage);
  EXPECT_EQ(failure.request_id_json, "\"q\"");
}

TEST(ClientDecoderTest, LlmResponseWithNonStringTargetIsBadMessageWithTheRequestId) {
  const DecodeFailure failure = MustFail(R"({"type":"llm_response","target":5,"request_id":12})");

  EXPECT_EQ(failure.code, ErrorCode::kBadMessage);
  EXPECT_EQ(failure.request_id_json, "12");
}

// --- ping / capabilities_update ---------------------------------------------

TEST(ClientDecoderTest, PingDecodes) {
  EXPECT_TRUE(MustDecode(R"({"type":"ping"})").has_ping());
  EXPECT_TRUE(MustDecode(R"({"type":"ping","ts":123})").has_ping());
}

TEST(ClientDecoderTest, CapabilitiesUpdateDecodes) {
  const ClientEvent event =
      MustDecode(R"({"type":"capabilities_update","capabilities":["a","b"]})");

  ASSERT_TRUE(event.has_capabilities_update());
  EXPECT_THAT(event.capabilities_update().capabilities(), ElementsAre("a", "b"));
}

TEST(ClientDecoderTest, CapabilitiesUpdateToNoneDecodes) {
  const ClientEvent event = MustDecode(R"({"type":"capabilities_update","capabilities":[]})");

  ASSERT_TRUE(event.has_capabilities_update());
  EXPECT_THAT(event.capabilities_update().capabilities(), IsEmpty());
}

TEST(ClientDecoderTest, CapabilitiesUpdateRequiresAnArrayOfStrings) {
  EXPECT_EQ(MustFail(R"({"type":"capabilities_update"})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"type":"capabilities_update","capabilities":null})").code,
            ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"type":"capabilities_update","capabilities":"llm"})").code,
            ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"type":"capabilities_update","capabilities":[1]})").code,
            ErrorCode::kBadMessage);
}

// --- failures ---------------------------------------------------------------

TEST(ClientDecoderTest, NotJsonIsBadJson) {
  for (const char* bad : {"", "hello", "{", "{\"type\":\"ping\",}", "{'type':'ping'}",
                          "{\"type\":\"ping\"} trailing"}) {
    EXPECT_EQ(MustFail(bad).code, ErrorCode::kBadJson) << bad;
  }
}

TEST(ClientDecoderTest, InvalidUtf8IsBadJson) {
  EXPECT_EQ(MustFail("{\"type\":\"broadcast\",\"payload\":\"\xC0\x80\"}").code,
            ErrorCode::kBadJson);
}

TEST(ClientDecoderTest, NestingDeeperThan64LevelsIsBadJson) {
  const std::string ok =
      "{\"type\":\"broadcast\",\"payload\":" + std::string(63, '[') + std::string(63, ']') + "}";
  const std::string deep =
      "{\"type\":\"broadcast\",\"payload\":" + std::string(64, '[') + std::string(64, ']') + "}";

  EXPECT_TRUE(MustDecode(ok).has_broadcast());
  EXPECT_EQ(MustFail(deep).code, ErrorCode::kBadJson);
}

TEST(ClientDecoderTest, NonObjectIsBadMessage) {
  for (const char* v : {"[]", "\"ping\"", "1", "null", "[{\"type\":\"ping\"}]"}) {
    EXPECT_EQ(MustFail(v).code, ErrorCode::kBadMessage) << v;
  }
}

TEST(ClientDecoderTest, MissingTypeIsBadMessage) {
  EXPECT_EQ(MustFail("{}").code, ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"node_id":"n"})").code, ErrorCode::kBadMessage);
}

TEST(ClientDecoderTest, NonStringTypeIsBadMessage) {
  for (const char* type : {"1", "null", "[\"ping\"]", "{\"t\":\"ping\"}", "true"}) {
    EXPECT_EQ(MustFail(std::string("{\"type\":") + type + "}").code, ErrorCode::kBadMessage)
        << type;
  }
}

TEST(ClientDecoderTest, UnknownTypeIsUnknownType) {
  for (const char* type : {"pong", "Ping", "", "register ", "message"}) {
    EXPECT_EQ(MustFail(std::string("{\"type\":\"") + type + "\"}").code, ErrorCode::kUnknownType)
        << type;
  }
}

// The shipped Android app's gossip and intent, and the route messages: known
// types, decoded for the core to drop (or answer when they carry a request_id).
TEST(ClientDecoderTest, UnroutedTypesDecodeWithTheirTypeAndRequestId) {
  const ClientEvent gossip =
      MustDecode(R"({"type":"gossip","from":"android-1","payload":{"peers":["mac"],"ttl":3}})");
  ASSERT_TRUE(gossip.has_unrouted());
  EXPECT_EQ(gossip.unrouted().type(), relay::v1::UNROUTED_TYPE_GOSSIP);
  EXPECT_TRUE(gossip.unrouted().request_id().empty());

  const ClientEvent intent = MustDecode(R"({"type":"intent","request_id":"i-1","intent":"x"})");
  EXPECT_EQ(intent.unrouted().type(), relay::v1::UNROUTED_TYPE_INTENT);
  EXPECT_EQ(intent.unrouted().request_id(), "\"i-1\"");

  EXPECT_EQ(MustDecode(R"({"type":"route_request","request_id":5})").unrouted().request_id(), "5");
  const ClientEvent response = MustDecode(R"({"type":"route_response","request_id":null})");
  EXPECT_EQ(response.unrouted().type(), relay::v1::UNROUTED_TYPE_ROUTE_RESPONSE);
  EXPECT_TRUE(response.unrouted().request_id().empty());
}

TEST(ClientDecoderTest, UnroutedTypeWithABadRequestIdIsBadMessage) {
  EXPECT_EQ(MustFail(R"({"type":"intent","request_id":{"a":1}})").code, ErrorCode::kBadMessage);
  EXPECT_EQ(MustFail(R"({"type":"Gossip"})").code, ErrorCode::kUnknownType);
}

// --- duplicate names, members per object ----------------------------------

// An object of `n` tiny members, "m0":0,...
std::string Members(std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += ",";
    out += "\"m" + std::to_string(i) + "\":0";
  }
  return out;
}

TEST(ClientDecoderTest, DuplicateTypeIsBadJson) {
  const DecodeFailure failure = MustFail(R"({"type":"broadcast","type":"ping"})");
  EXPECT_EQ(failure.code, ErrorCode::kBadJson);
  EXPECT_THAT(failure.message, HasSubstr("duplicate member name \"type\""));
}

// The attack: the relay built `messages` from one prompt and forwarded both,
// so a peer that reads the first copy saw another request.
TEST(ClientDecoderTest, DuplicatePromptIsBadJsonNotForwarded) {
  const DecodeFailure failure =
      MustFail(R"({"type":"llm_request","request_id":"1","prompt":"A","prompt":"B"})");
  EXPECT_EQ(failure.code, ErrorCode::kBadJson);
  EXPECT_THAT(failure.message, HasSubstr("prompt"));
  EXPECT_EQ(
      MustFail(R"({"type":"llm_request","request_id":"1","prompt":"A","\u0070rompt":"B"})").code,
      ErrorCode::kBadJson);
}

TEST(ClientDecoderTest, DuplicateNameAnywhereInTheFrameIsBadJson) {
  for (const char* frame : {
           R"({"type":"broadcast","payload":{"a":1,"a":2}})",
           R"({"type":"direct","target":"b","payload":[{"x":{"k":1,"\u006b":2}}]})",
           R"({"type":"llm_response","target":"a","response":{"text":"x","text":"y"}})",
           R"({"type":"register","node_id":"n","token":{"mesh_id":"m","mesh_id":"x"}})",
           R"({"type":"ping","request_id":"1","request_id":"2"})",
       }) {
    EXPECT_EQ(MustFail(frame).code, ErrorCode::kBadJson) << frame;
  }
}

TEST(ClientDecoderTest, SameNameInDifferentObjectsIsFine) {
  const ClientEvent event =
      MustDecode(R"({"type":"broadcast","payload":{"type":"x","payload":{"type":"y"}}})");
  EXPECT_EQ(event.broadcast().payload(), R"({"type":"x","payload":{"type":"y"}})");
}

TEST(ClientDecoderTest, MaxMembersPerObjectAreAcceptedAtEveryLevel) {
  // type + payload + 1,022 more at the top; 1,024 in the payload.
  const std::string frame = R"({"type":"broadcast","payload":{)" +
                            Members(limits::kMaxJsonMembersPerObject) + "}," +
                            Members(limits::kMaxJsonMembersPerObject - 2) + "}";
  EXPECT_TRUE(MustDecode(frame).has_broadcast());
  const ClientEvent llm = MustDecode(R"({"type":"llm_request","request_id":"r",)" +
                                     Members(limits::kMaxJsonMembersPerObject - 2) + "}");
  EXPECT_TRUE(llm.has_llm_request());
}

TEST(ClientDecoderTest, OneMemberPastTheLimitIsBadMessageAtEveryLevel) {
  for (const std::string& frame : {
           R"({"type":"broadcast",)" + Members(limits::kMaxJsonMembersPerObject) + "}",
           R"({"type":"broadcast","payload":{)" + Members(limits::kMaxJsonMembersPerObject + 1) +
               "}}",
           R"({"type":"direct","target":"b","payload":[1,{)" +
               Members(limits::kMaxJsonMembersPerObject + 1) + "}]}",
           R"({"type":"llm_response","target":"a","response":{"x":{)" +
               Members(limits::kMaxJsonMembersPerObject + 1) + "}}}",
       }) {
    const DecodeFailure failure = MustFail(frame);
    EXPECT_EQ(failure.code, ErrorCode::kBadMessage) << frame.substr(0, 60);
    EXPECT_THAT(failure.message, HasSubstr("more than 1024 members"));
  }
}

TEST(ClientDecoderTest, FailuresCarryAMessage) {
  EXPECT_FALSE(MustFail("nope").message.empty());
  EXPECT_FALSE(MustFail("{}").message.empty());
  EXPECT_FALSE(MustFail(R"({"type":"zzz"})").message.empty());
}

}  // namespace
}  // namespace relay::gateway
