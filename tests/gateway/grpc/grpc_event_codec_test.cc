// Tests for gateway/grpc/grpc_event_codec.cc: each ClientEvent a gRPC peer
// sends becomes exactly the event the WebSocket decoder makes of the
// equivalent JSON frame (checked against DecodeClientFrame itself), and each
// event no frame could express is refused with the WebSocket's error code.
#include "gateway/grpc/grpc_event_codec.h"

#include <string>
#include <vector>

#include "gateway/codec/client_decoder.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

using core::ErrorCode;
using ::relay::v1::ClientEvent;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::size_t kMaxMeshIdBytes = 256;

ClientEvent MustNormalize(const ClientEvent& event) {
  ClientEvent normalized;
  DecodeFailure failure;
  EXPECT_TRUE(NormalizeGrpcEvent(event, kMaxMeshIdBytes, &normalized, &failure))
      << event.ShortDebugString() << " -> " << core::ErrorCodeName(failure.code) << ": "
      << failure.message;
  return normalized;
}

DecodeFailure MustRefuse(const ClientEvent& event) {
  ClientEvent normalized;
  DecodeFailure failure;
  EXPECT_FALSE(NormalizeGrpcEvent(event, kMaxMeshIdBytes, &normalized, &failure))
      << "accepted: " << event.ShortDebugString() << " as " << normalized.ShortDebugString();
  return failure;
}

// What the WebSocket decoder makes of `frame` sent on /relay/{mesh_id}.
ClientEvent FromWebSocket(const std::string& frame, const std::string& mesh_id = "") {
  ClientEvent event;
  DecodeFailure failure;
  EXPECT_TRUE(DecodeClientFrame(frame, mesh_id, &event, &failure))
      << frame << " -> " << core::ErrorCodeName(failure.code) << ": " << failure.message;
  return event;
}

// Equal protos print equally; the text shows what differs.
void ExpectSameEvent(const ClientEvent& grpc, const ClientEvent& websocket) {
  EXPECT_EQ(grpc.DebugString(), websocket.DebugString());
  EXPECT_FALSE(websocket.DebugString().empty());
}

ClientEvent Register(const std::string& mesh, const std::string& node) {
  ClientEvent event;
  event.mutable_register_()->set_mesh_id(mesh);
  event.mutable_register_()->set_node_id(node);
  return event;
}

ClientEvent Broadcast(const std::string& payload) {
  ClientEvent event;
  event.mutable_broadcast()->set_payload(payload);
  return event;
}

ClientEvent Direct(const std::string& target, const std::string& payload) {
  ClientEvent event;
  event.mutable_direct()->set_target(target);
  event.mutable_direct()->set_payload(payload);
  return event;
}

ClientEvent LlmRequest(const std::string& request_id, const std::string& members,
                       relay::v1::LlmRequestKind kind = relay::v1::LLM_REQUEST_KIND_LLM) {
  ClientEvent event;
  event.mutable_llm_request()->set_kind(kind);
  event.mutable_llm_request()->set_request_id(request_id);
  event.mutable_llm_request()->set_members(members);
  return event;
}

ClientEvent LlmResponse(const std::string& target, const std::string& request_id,
                        const std::string& members) {
  ClientEvent event;
  event.mutable_llm_response()->set_target(target);
  event.mutable_llm_response()->set_request_id(request_id);
  event.mutable_llm_response()->set_members(members);
  return event;
}

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// A signed join token object, as a WebSocket client puts it in "token".
constexpr char kTokenObject[] =
    R"({"mesh_id":"home","node_id":"phone","issued_at":1764120000.5,"expires_at":1764123600,)"
    R"("capabilities":["llm","chat"],"issuer_id":"mac\u00e9","nonce":"n-1","signature":"c2ln"})";

// --- register ----------------------------------------------------------------

TEST(GrpcEventCodecTest, RegisterWithTokenIsWhatTheWebSocketDecoderMakes) {
  ClientEvent event = Register("lobby", "n1");
  event.mutable_register_()->set_name("Node One");
  event.mutable_register_()->add_capabilities("llm");
  event.mutable_register_()->add_capabilities("chat");
  event.mutable_register_()->set_token("t0k");

  const ClientEvent normalized = MustNormalize(event);

  ExpectSameEvent(normalized,
                  FromWebSocket(R"({"type":"register","node_id":"n1","name":"Node One",)"
                                R"("capabilities":["llm","chat"],"token":"t0k"})",
                                "lobby"));
  const relay::v1::Register& reg = normalized.register_();
  EXPECT_EQ(reg.mesh_id(), "lobby");
  EXPECT_EQ(reg.node_id(), "n1");
  EXPECT_EQ(reg.name(), "Node One");
  EXPECT_THAT(reg.capabilities(), ElementsAre("llm", "chat"));
  EXPECT_EQ(reg.token(), "t0k");
  EXPECT_FALSE(reg.via_join());
  EXPECT_FALSE(reg.has_signed_token());
}

TEST(GrpcEventCodecTest, RegisterWithoutTokenOrNameLeavesThemEmpty) {
  const ClientEvent normalized = MustNormalize(Register("lobby", "n1"));

  ExpectSameEvent(normalized, FromWebSocket(R"({"type":"register","node_id":"n1"})", "lobby"));
  EXPECT_EQ(normalized.register_().token(), "");
  EXPECT_EQ(normalized.register_().name(), "");
  EXPECT_FALSE(normalized.register_().has_signed_token());
}

TEST(GrpcEventCodecTest, ViaJoinBecomesAJoinFrame) {
  ClientEvent event = Register("lobby", "n1");
  event.mutable_register_()->set_via_join(true);
  std::string frame;
  std::string mesh_id;
  DecodeFailure failure;

  ASSERT_TRUE(GrpcEventToFrame(event, kMaxMeshIdBytes, &frame, &mesh_id, &failure));
  const ClientEvent normalized = MustNormalize(event);

  EXPECT_THAT(frame, HasSubstr(R"("type":"join")"));
  EXPECT_EQ(mesh_id, "lobby");
  EXPECT_TRUE(normalized.register_().via_join());
  ExpectSameEvent(normalized, FromWebSocket(R"({"type":"join","node_id":"n1"})", "lobby"));
}

TEST(GrpcEventCodecTest, StringsNeedingEscapesSurviveUnchanged) {
  const std::string node =
      "a\"b\\c\nd\te\x01"
      "f \xC3\xA9 \xF0\x9F\x98\x80";
  ClientEvent event = Register("lobby", node);
  event.mutable_register_()->set_name("</script>\"");
  event.mutable_register_()->add_capabilities("x\"y");
  event.mutable_register_()->set_token("t\\0k\"");

  const ClientEvent normalized = MustNormalize(event);

  EXPECT_EQ(normalized.register_().node_id(), node);
  EXPECT_EQ(normalized.register_().name(), "</script>\"");
  EXPECT_THAT(normalized.register_().capabilities(), ElementsAre("x\"y"));
  EXPECT_EQ(normalized.register_().token(), "t\\0k\"");
}

TEST(GrpcEventCodecTest, TokenJsonObjectBecomesTheSignedTokenTheWebSocketDecoderMakes) {
  ClientEvent event = Register("home", "phone");
  event.mutable_register_()->set_via_join(true);
  event.mutable_register_()->set_token_json(kTokenObject);

  const ClientEvent normalized = MustNormalize(event);

  const ClientEvent websocket = FromWebSocket(
      std::string(R"({"type":"join","node_id":"phone","token":)") + kTokenObject + "}", "home");
  ExpectSameEvent(normalized, websocket);
  const relay::v1::SignedJoinToken& token = normalized.register_().signed_token();
  EXPECT_TRUE(token.present());
  EXPECT_EQ(token.malformed(), "");
  EXPECT_EQ(token.canonical(), websocket.register_().signed_token().canonical());
  EXPECT_EQ(token.canonical(),
            R"({"capabilities":["chat","llm"],"expires_at":1764123600,"issued_at":1764120000.5,)"
            R"("issuer_id":"mac\u00e9","mesh_id":"home","node_id":"phone","nonce":"n-1"})");
  EXPECT_EQ(token.nonce(), "n-1");
  EXPECT_EQ(normalized.register_().token(), "");
  // token_json is the transport's; the core sees only the derived token.
  EXPECT_EQ(normalized.register_().token_json(), "");
}

TEST(GrpcEventCodecTest, MalformedTokenJsonObjectIsMarkedForTheCoreLikeWebSocket) {
  ClientEvent event = Register("home", "phone");
  event.mutable_register_()->set_token_json(R"({"mesh_id":"home"})");

  const ClientEvent normalized = MustNormalize(event);

  EXPECT_TRUE(normalized.register_().signed_token().present());
  EXPECT_NE(normalized.register_().signed_token().malformed(), "");
  ExpectSameEvent(normalized, FromWebSocket(R"({"type":"register","node_id":"phone",)"
                                            R"("token":{"mesh_id":"home"}})",
                                            "home"));
}

TEST(GrpcEventCodecTest, TokenJsonStringIsAPlainTokenLikeWebSocket) {
  ClientEvent event = Register("lobby", "n1");
  event.mutable_register_()->set_token_json(R"("t0k")");

  const ClientEvent normalized = MustNormalize(event);

  EXPECT_EQ(normalized.register_().token(), "t0k");
  ExpectSameEvent(normalized,
                  FromWebSocket(R"({"type":"register","node_id":"n1","token":"t0k"})", "lobby"));
}

TEST(GrpcEventCodecTest, SignedTokenSetByThePeerIsRefusedPointingAtTokenJson) {
  ClientEvent event = Register("home", "phone");
  relay::v1::SignedJoinToken* forged = event.mutable_register_()->mutable_signed_token();
  forged->set_present(true);
  forged->set_mesh_id("home");
  forged->set_canonical("{}");

  const DecodeFailure failure = MustRefuse(event);

  EXPECT_EQ(failure.code, ErrorCode::kBadMessage);
  EXPECT_THAT(failure.message, HasSubstr("token_json"));
}

TEST(GrpcEventCodecTest, EvenAnEmptySignedTokenSetByThePeerIsRefused) {
  ClientEvent event = Register("home", "phone");
  event.mutable_register_()->mutable_signed_token();  // present on the wire, all defaults

  EXPECT_EQ(MustRefuse(event).code, ErrorCode::kBadMessage);
}

TEST(GrpcEventCodecTest, TokenAndTokenJsonTogetherAreRefused) {
  ClientEvent event = Register("home", "phone");
  event.mutable_register_()->set_token("t0k");
  event.mutable_register_()->set_token_json(kTokenObject);

  const DecodeFailure failure = MustRefuse(event);

  EXPECT_EQ(failure.code, ErrorCode::kBadMessage);
  EXPECT_THAT(failure.message, HasSubstr("token"));
}

TEST(GrpcEventCodecTest, TokenJsonThatIsNotExactlyOneJsonValueIsBadJson) {
  for (const std::string bad : {"{", "1 2", R"(1,"x":2)", "\"\xC3\"", "\xFF", R"("a"})",
                                R"({"a":1}, {"b":2})", "{\"a\":1}}"}) {
    ClientEvent event = Register("home", "phone");
    event.mutable_register_()->set_token_json(bad);
    const DecodeFailure failure = MustRefuse(event);
    EXPECT_EQ(failure.code, ErrorCode::kBadJson) << bad;
    EXPECT_THAT(failure.message, HasSubstr("token_json")) << bad;
  }
}

// --- register_mesh -------------------------------------------------------------

ClientEvent RegisterMesh(const std::string& mesh_id, const std::string& peer_mesh_id) {
  ClientEvent event;
  relay::v1::RegisterMesh* request = event.mutable_register_mesh();
  request->set_mesh_id(mesh_id);
  request->set_mesh_public_key_b64("bWVzaGtleQ==");
  request->set_founder_proof_b64("cHJvb2Y=");
  request->set_node_public_key_b64("bm9kZWtleQ==");
  request->mutable_peer()->set_mesh_id(peer_mesh_id);
  request->mutable_peer()->set_node_id("founder");
  request->mutable_peer()->set_name("The Founder");
  request->mutable_peer()->add_capabilities("llm");
  return event;
}

constexpr char kRegisterMeshFrame[] =
    R"({"type":"register_mesh","mesh_id":"signed","mesh_public_key":"bWVzaGtleQ==",)"
    R"("founder_proof":"cHJvb2Y=","node_id":"founder","node_public_key":"bm9kZWtleQ==",)"
    R"("display_name":"The Founder","capabilities":["llm"]})";

TEST(GrpcEventCodecTest, RegisterMeshIsWhatTheWebSocketDecoderMakes) {
  const ClientEvent normalized = MustNormalize(RegisterMesh("signed", "signed"));

  ExpectSameEvent(normalized, FromWebSocket(kRegisterMeshFrame, "signed"));
  const relay::v1::RegisterMesh& request = normalized.register_mesh();
  EXPECT_EQ(request.mesh_id(), "signed");
  EXPECT_EQ(request.mesh_public_key_b64(), "bWVzaGtleQ==");
  EXPECT_EQ(request.founder_proof_b64(), "cHJvb2Y=");
  EXPECT_EQ(request.node_public_key_b64(), "bm9kZWtleQ==");
  EXPECT_EQ(request.peer().mesh_id(), "signed");
  EXPECT_EQ(request.peer().node_id(), "founder");
  EXPECT_EQ(request.peer().name(), "The Founder");
  EXPECT_THAT(request.peer().capabilities(), ElementsAre("llm"));
}

TEST(GrpcEventCodecTest, RegisterMeshWithoutPeerMeshIdUsesTheRequestsMeshId) {
  const ClientEvent event = RegisterMesh("signed", "");
  std::string frame;
  std::string mesh_id;
  DecodeFailure failure;

  ASSERT_TRUE(GrpcEventToFrame(event, kMaxMeshIdBytes, &frame, &mesh_id, &failure));
  const ClientEvent normalized = MustNormalize(event);

  EXPECT_EQ(mesh_id, "signed");
  EXPECT_EQ(normalized.register_mesh().peer().mesh_id(), "signed");
  ExpectSameEvent(normalized, FromWebSocket(kRegisterMeshFrame, "signed"));
}

TEST(GrpcEventCodecTest, RegisterMeshPeerMeshIdPlaysTheUrlsPart) {
  std::string frame;
  std::string mesh_id;
  DecodeFailure failure;

  ASSERT_TRUE(GrpcEventToFrame(RegisterMesh("claimed", "url-mesh"), kMaxMeshIdBytes, &frame,
                               &mesh_id, &failure));

  EXPECT_EQ(mesh_id, "url-mesh");
  EXPECT_EQ(MustNormalize(RegisterMesh("claimed", "url-mesh")).register_mesh().peer().mesh_id(),
            "url-mesh");
}

TEST(GrpcEventCodecTest, RegisterMeshWithABadMeshIdIsBadMessage) {
  EXPECT_EQ(MustRefuse(RegisterMesh("", "")).code, ErrorCode::kBadMessage);
  EXPECT_EQ(MustRefuse(RegisterMesh("ok", "bad\nid")).code, ErrorCode::kBadMessage);
  EXPECT_EQ(MustRefuse(RegisterMesh(std::string(257, 'm'), "")).code, ErrorCode::kBadMessage);
}

// --- mesh ids ------------------------------------------------------------------

TEST(GrpcEventCodecTest, MeshIdsAUrlCouldNotCarryAreBadMessage) {
  const std::vector<std::string> bad = {
      "",        std::string(257, 'm'),        "a\x01z",     "line\nbreak", "tab\there",
      "del\x7F", "nul" + std::string(1, '\0'), "bad\xC3utf8"};
  for (const std::string& mesh : bad) {
    const DecodeFailure failure = MustRefuse(Register(mesh, "n1"));
    EXPECT_EQ(failure.code, ErrorCode::kBadMessage) << mesh.size() << " bytes";
    EXPECT_THAT(failure.message, HasSubstr("mesh_id")) << mesh.size() << " bytes";
  }
}

TEST(GrpcEventCodecTest, MeshIdsUpToTheLimitWithAnyPrintableUtf8AreAccepted) {
  for (const std::string& mesh :
       {std::string(256, 'm'), std::string("a"), std::string("with/slash%20 and space"),
        std::string("caf\xC3\xA9-\xF0\x9F\x98\x80")}) {
    EXPECT_EQ(MustNormalize(Register(mesh, "n1")).register_().mesh_id(), mesh);
  }
}

TEST(GrpcEventCodecTest, TheMeshIdLimitIsTheCallersNotFixed) {
  ClientEvent normalized;
  DecodeFailure failure;

  EXPECT_FALSE(NormalizeGrpcEvent(Register("abcde", "n1"), 4, &normalized, &failure));
  EXPECT_EQ(failure.code, ErrorCode::kBadMessage);
  EXPECT_TRUE(NormalizeGrpcEvent(Register("abcd", "n1"), 4, &normalized, &failure));
}

TEST(GrpcEventCodecTest, NonRegisterEventsHaveNoMeshId) {
  std::string frame;
  std::string mesh_id = "stale";
  DecodeFailure failure;

  ASSERT_TRUE(GrpcEventToFrame(Broadcast("1"), kMaxMeshIdBytes, &frame, &mesh_id, &failure));

  EXPECT_EQ(mesh_id, "");
  EXPECT_EQ(frame, R"({"type":"broadcast","payload":1})");
}

// --- broadcast / direct --------------------------------------------------------

TEST(GrpcEventCodecTest, BroadcastPayloadIsKeptByteForByte) {
  const std::string payload = R"({"text": "hi \u00e9", "n": [1, 2.50, true, null]})";

  const ClientEvent normalized = MustNormalize(Broadcast(payload));

  EXPECT_EQ(normalized.broadcast().payload(), payload);
  ExpectSameEvent(normalized, FromWebSocket(R"({"type":"broadcast","payload":)" + payload + "}"));
}

TEST(GrpcEventCodecTest, EmptyPayloadIsNullLikeAMissingOne) {
  const ClientEvent broadcast = MustNormalize(Broadcast(""));
  const ClientEvent direct = MustNormalize(Direct("bob", ""));

  EXPECT_EQ(broadcast.broadcast().payload(), "null");
  EXPECT_EQ(direct.direct().payload(), "null");
  ExpectSameEvent(broadcast, FromWebSocket(R"({"type":"broadcast"})"));
  ExpectSameEvent(direct, FromWebSocket(R"({"type":"direct","target":"bob"})"));
}

TEST(GrpcEventCodecTest, DirectIsWhatTheWebSocketDecoderMakes) {
  const ClientEvent normalized = MustNormalize(Direct("b\"ob", R"("hello")"));

  EXPECT_EQ(normalized.direct().target(), "b\"ob");
  EXPECT_EQ(normalized.direct().payload(), R"("hello")");
  ExpectSameEvent(normalized,
                  FromWebSocket(R"({"type":"direct","target":"b\"ob","payload":"hello"})"));
}

TEST(GrpcEventCodecTest, PayloadThatIsNotExactlyOneJsonValueIsBadJson) {
  for (const std::string bad : {"{", "1 2", R"(1,"x":2)", "\"\xC3\"", "\xFF", R"("a"})",
                                R"(1}, {"type":"direct")", "[1,]", "nul", "'single'"}) {
    const DecodeFailure b = MustRefuse(Broadcast(bad));
    EXPECT_EQ(b.code, ErrorCode::kBadJson) << bad;
    EXPECT_THAT(b.message, HasSubstr("payload")) << bad;
    EXPECT_EQ(MustRefuse(Direct("bob", bad)).code, ErrorCode::kBadJson) << bad;
  }
}

TEST(GrpcEventCodecTest, PayloadDepthIsLimitedLikeWebSocket) {
  // The frame object is level 1: a payload may nest 63 more levels.
  const std::string deepest = Nested(63);
  const std::string too_deep = Nested(64);

  EXPECT_EQ(MustNormalize(Broadcast(deepest)).broadcast().payload(), deepest);
  EXPECT_EQ(MustRefuse(Broadcast(too_deep)).code, ErrorCode::kBadJson);
  // The WebSocket decoder draws the line at the same place.
  FromWebSocket(R"({"type":"broadcast","payload":)" + deepest + "}");
  ClientEvent ignored;
  DecodeFailure failure;
  EXPECT_FALSE(DecodeClientFrame(R"({"type":"broadcast","payload":)" + too_deep + "}", "", &ignored,
                                 &failure));
  EXPECT_EQ(failure.code, ErrorCode::kBadJson);
}

// --- llm_request / chat_request --------------------------------------------------

TEST(GrpcEventCodecTest, LlmRequestIsWhatTheWebSocketDecoderMakes) {
  const ClientEvent normalized =
      MustNormalize(LlmRequest(R"("r-1")", R"("prompt":"hi","model":"x","stream":true)"));

  ExpectSameEvent(normalized, FromWebSocket(R"({"type":"llm_request","request_id":"r-1",)"
                                            R"("prompt":"hi","model":"x","stream":true})"));
  const relay::v1::LlmRequest& req = normalized.llm_request();
  EXPECT_EQ(req.kind(), relay::v1::LLM_REQUEST_KIND_LLM);
  EXPECT_EQ(req.request_id(), R"("r-1")");
  EXPECT_EQ(req.members(), R"("prompt":"hi","model":"x","stream":true)");
}

TEST(GrpcEventCodecTest, ChatKindBecomesAChatRequest) {
  const ClientEvent normalized = MustNormalize(LlmRequest(
      "7", R"("messages":[{"role":"user","content":"hi"}])", relay::v1::LLM_REQUEST_KIND_CHAT));

  EXPECT_EQ(normalized.llm_request().kind(), relay::v1::LLM_REQUEST_KIND_CHAT);
  ExpectSameEvent(normalized, FromWebSocket(R"({"type":"chat_request","request_id":7,)"
                                            R"("messages":[{"role":"user","content":"hi"}]})"));
}

TEST(GrpcEventCodecTest, UnspecifiedKindIsAnLlmRequest) {
  const ClientEvent normalized =
      MustNormalize(LlmRequest("1", R"("prompt":"hi")", relay::v1::LLM_REQUEST_KIND_UNSPECIFIED));

  EXPECT_EQ(normalized.llm_request().kind(), relay::v1::LLM_REQUEST_KIND_LLM);
}

TEST(GrpcEventCodecTest, AStringPromptWithoutMessagesAddsMessages) {
  const ClientEvent normalized = MustNormalize(LlmRequest("1", R"("prompt":"caf\u00e9 ?")"));

  EXPECT_TRUE(normalized.llm_request().add_messages());
  EXPECT_EQ(normalized.llm_request().prompt_for_messages(), "caf\xC3\xA9 ?");
}

TEST(GrpcEventCodecTest, NoMessagesAreAddedWhenSentOrWhenThePromptIsNotAString) {
  const ClientEvent with_messages = MustNormalize(
      LlmRequest("1", R"("prompt":"hi","messages":[{"role":"user","content":"hi"}])"));
  const ClientEvent numeric_prompt = MustNormalize(LlmRequest("2", R"("prompt":42)"));
  const ClientEvent no_prompt = MustNormalize(LlmRequest("3", ""));

  EXPECT_FALSE(with_messages.llm_request().add_messages());
  EXPECT_FALSE(numeric_prompt.llm_request().add_messages());
  EXPECT_FALSE(no_prompt.llm_request().add_messages());
  EXPECT_EQ(no_prompt.llm_request().members(), "");
}

TEST(GrpcEventCodecTest, LlmRequestWithoutRequestIdIsRefusedLikeWebSocket) {
  const DecodeFailure failure = MustRefuse(LlmRequest("", R"("prompt":"hi")"));

  EXPECT_EQ(failure.code, ErrorCode::kBadMessage);
  EXPECT_THAT(failure.message, HasSubstr("request_id"));
}

TEST(GrpcEventCodecTest, RequestIdThatIsNotExactlyOneJsonValueIsBadJson) {
  for (const std::string bad : {"{", "1 2", R"(1,"x":2)", "\"\xC3\"", R"("a"})"}) {
    const DecodeFailure failure = MustRefuse(LlmRequest(bad, R"("prompt":"hi")"));
    EXPECT_EQ(failure.code, ErrorCode::kBadJson) << bad;
    EXPECT_THAT(failure.message, HasSubstr("request_id")) << bad;
    EXPECT_EQ(MustRefuse(LlmResponse("asker", bad, "")).code, ErrorCode::kBadJson) << bad;
  }
}

TEST(GrpcEventCodecTest, RequestIdOfTheWrongJsonTypeIsBadMessageLikeWebSocket) {
  const DecodeFailure failure = MustRefuse(LlmRequest("[1]", R"("prompt":"hi")"));

  EXPECT_EQ(failure.code, ErrorCode::kBadMessage);
}

TEST(GrpcEventCodecTest, MembersThatAreNotObjectMembersAreBadJson) {
  for (const std::string bad : {R"("prompt":)", "}", R"("a":1}, {"b":2)", R"("a":1,)", R"("a")",
                                "1", R"({"a":1})", "\"a\":\"\xC3\""}) {
    const DecodeFailure failure = MustRefuse(LlmRequest("1", bad));
    EXPECT_EQ(failure.code, ErrorCode::kBadJson) << bad;
    EXPECT_THAT(failure.message, HasSubstr("members")) << bad;
    EXPECT_EQ(MustRefuse(LlmResponse("asker", "1", bad)).code, ErrorCode::kBadJson) << bad;
  }
}

TEST(GrpcEventCodecTest, WhitespaceOnlyMembersAreNoMembers) {
  const ClientEvent normalized = MustNormalize(LlmRequest("1", " \n\t"));

  EXPECT_EQ(normalized.llm_request().members(), "");
}

TEST(GrpcEventCodecTest, MembersDepthIsLimitedLikeWebSocket) {
  EXPECT_TRUE(MustNormalize(LlmRequest("1", R"("deep":)" + Nested(63))).has_llm_request());
  EXPECT_EQ(MustRefuse(LlmRequest("1", R"("deep":)" + Nested(64))).code, ErrorCode::kBadJson);
}

// Members are the request's other fields: they must not re-type the event or
// replace the fields the proto carries on its own.
TEST(GrpcEventCodecTest, MembersCannotTurnAnLlmRequestIntoAnotherEvent) {
  ClientEvent normalized;
  DecodeFailure failure;
  const bool ok = NormalizeGrpcEvent(LlmRequest("1", R"("type":"broadcast","payload":"spam")"),
                                     kMaxMeshIdBytes, &normalized, &failure);

  if (ok) {
    EXPECT_TRUE(normalized.has_llm_request()) << "became " << normalized.ShortDebugString();
  } else {
    EXPECT_NE(failure.code, ErrorCode::kUnknownType);
  }
}

TEST(GrpcEventCodecTest, MembersCannotRedirectAnLlmResponse) {
  ClientEvent normalized;
  DecodeFailure failure;
  const bool ok =
      NormalizeGrpcEvent(LlmResponse("asker", "1", R"("target":"mallory","response":"x")"),
                         kMaxMeshIdBytes, &normalized, &failure);

  if (ok) {
    ASSERT_TRUE(normalized.has_llm_response());
    EXPECT_EQ(normalized.llm_response().target(), "asker");
  }
}

// --- llm_response ----------------------------------------------------------------

TEST(GrpcEventCodecTest, LlmResponseIsWhatTheWebSocketDecoderMakes) {
  const ClientEvent normalized = MustNormalize(
      LlmResponse("asker", "7", R"("response":"4","usage":{"tokens": 3},"done":true)"));

  ExpectSameEvent(normalized, FromWebSocket(R"({"type":"llm_response","target":"asker",)"
                                            R"("request_id":7,"response":"4",)"
                                            R"("usage":{"tokens": 3},"done":true})"));
  EXPECT_EQ(normalized.llm_response().target(), "asker");
  EXPECT_EQ(normalized.llm_response().request_id(), "7");
  EXPECT_EQ(normalized.llm_response().members(),
            R"("response":"4","usage":{"tokens": 3},"done":true)");
}

TEST(GrpcEventCodecTest, LlmResponseWithoutRequestIdOrMembersIsAccepted) {
  const ClientEvent normalized = MustNormalize(LlmResponse("asker", "", ""));

  EXPECT_EQ(normalized.llm_response().request_id(), "");
  EXPECT_EQ(normalized.llm_response().members(), "");
  ExpectSameEvent(normalized, FromWebSocket(R"({"type":"llm_response","target":"asker"})"));
}

// --- ping / capabilities_update / empty ----------------------------------------------

TEST(GrpcEventCodecTest, PingIsAPing) {
  ClientEvent ping;
  ping.mutable_ping();

  const ClientEvent normalized = MustNormalize(ping);

  EXPECT_TRUE(normalized.has_ping());
  ExpectSameEvent(normalized, FromWebSocket(R"({"type":"ping"})"));
}

TEST(GrpcEventCodecTest, CapabilitiesUpdateKeepsTheListIncludingAnEmptyOne) {
  ClientEvent update;
  update.mutable_capabilities_update()->add_capabilities("llm");
  update.mutable_capabilities_update()->add_capabilities("vision \"v2\"");
  ClientEvent cleared;
  cleared.mutable_capabilities_update();

  const ClientEvent normalized = MustNormalize(update);
  const ClientEvent normalized_empty = MustNormalize(cleared);

  EXPECT_THAT(normalized.capabilities_update().capabilities(), ElementsAre("llm", "vision \"v2\""));
  ExpectSameEvent(normalized, FromWebSocket(R"({"type":"capabilities_update",)"
                                            R"("capabilities":["llm","vision \"v2\""]})"));
  ASSERT_TRUE(normalized_empty.has_capabilities_update());
  EXPECT_EQ(normalized_empty.capabilities_update().capabilities_size(), 0);
}

TEST(GrpcEventCodecTest, UnroutedNormalizesAsItsWebSocketFrame) {
  ClientEvent intent;
  intent.mutable_unrouted()->set_type(relay::v1::UNROUTED_TYPE_INTENT);
  intent.mutable_unrouted()->set_request_id("\"i-1\"");
  ClientEvent gossip;
  gossip.mutable_unrouted()->set_type(relay::v1::UNROUTED_TYPE_GOSSIP);

  ExpectSameEvent(MustNormalize(intent), FromWebSocket(R"({"type":"intent","request_id":"i-1"})"));
  ExpectSameEvent(MustNormalize(gossip), FromWebSocket(R"({"type":"gossip"})"));
}

TEST(GrpcEventCodecTest, UnroutedOfNoTypeOrWithTwoValuesAsRequestIdIsRefused) {
  ClientEvent unspecified;
  unspecified.mutable_unrouted();
  ClientEvent spliced;
  spliced.mutable_unrouted()->set_type(relay::v1::UNROUTED_TYPE_GOSSIP);
  spliced.mutable_unrouted()->set_request_id("1,\"type\":\"broadcast\"");

  EXPECT_EQ(MustRefuse(unspecified).code, ErrorCode::kUnknownType);
  EXPECT_EQ(MustRefuse(spliced).code, ErrorCode::kBadJson);
}

TEST(GrpcEventCodecTest, AnEmptyEventIsUnknownType) {
  const DecodeFailure failure = MustRefuse(ClientEvent());

  EXPECT_EQ(failure.code, ErrorCode::kUnknownType);
  EXPECT_FALSE(failure.message.empty());
}

}  // namespace
}  // namespace relay::gateway
