#include "gateway/grpc/grpc_event_codec.h"

#include <initializer_list>
#include <optional>

#include "absl/strings/str_cat.h"
#include "gateway/json/json_object.h"
#include "gateway/json/json_writer.h"
#include "server/core/unrouted_wire.h"
#include "server/limits.h"

namespace relay::gateway {
namespace {

using core::ErrorCode;
using json::AppendString;

bool Fail(DecodeFailure* failure, ErrorCode code, std::string message) {
  failure->code = code;
  failure->message = std::move(message);
  return false;
}

// The rules of a mesh id in /relay/{mesh_id} (relay_path.h).
bool CheckMeshId(absl::string_view mesh_id, std::size_t max_bytes, DecodeFailure* failure) {
  if (mesh_id.empty() || mesh_id.size() > max_bytes) {
    return Fail(failure, ErrorCode::kBadMessage,
                absl::StrCat("mesh_id must be 1 to ", max_bytes, " bytes"));
  }
  for (unsigned char c : mesh_id) {
    if (c < 0x20 || c == 0x7F) {
      return Fail(failure, ErrorCode::kBadMessage, "mesh_id must not hold control characters");
    }
  }
  if (!json::IsValidUtf8(mesh_id)) {
    return Fail(failure, ErrorCode::kBadMessage, "mesh_id must be UTF-8");
  }
  return true;
}

// A raw JSON field must hold exactly one JSON value: spliced into the frame,
// `1,"x":2` would otherwise parse and be silently cut to 1.
bool CheckOneValue(absl::string_view raw, absl::string_view field, DecodeFailure* failure) {
  if (raw.empty()) return true;  // absent: null, or not sent
  json::Object obj;
  json::ParseError error;
  const std::string wrapped = absl::StrCat("{\"v\":", raw, "}");
  if (!json::ParseObject(wrapped, limits::kMaxJsonDepth, limits::kMaxJsonMembersPerObject, &obj,
                         &error) ||
      obj.members.size() != 1) {
    return Fail(failure, ErrorCode::kBadJson, absl::StrCat(field, " must hold one JSON value"));
  }
  return true;
}

// `members` must be zero or more "key":value pairs, as inside an object, and
// none of the keys the event carries in its own fields: spliced into the
// frame, a "type" or "target" there would turn the event into another one
// or send it elsewhere.
bool CheckMembers(absl::string_view members, std::initializer_list<absl::string_view> reserved,
                  DecodeFailure* failure) {
  json::Object obj;
  json::ParseError error;
  const std::string wrapped = absl::StrCat("{", members, "}");
  if (!json::ParseObject(wrapped, limits::kMaxJsonDepth, limits::kMaxJsonMembersPerObject, &obj,
                         &error)) {
    return Fail(failure, ErrorCode::kBadJson,
                "members must be JSON object members (\"key\":value, comma separated, no braces)");
  }
  for (const json::Member& member : obj.members) {
    for (absl::string_view key : reserved) {
      if (member.key == key) {
        return Fail(
            failure, ErrorCode::kBadMessage,
            absl::StrCat("members must not hold \"", key, "\": it is a field of the event itself"));
      }
    }
  }
  return true;
}

void AppendKeyString(std::string* out, absl::string_view key, absl::string_view value) {
  out->push_back(',');
  AppendString(out, key);
  out->push_back(':');
  AppendString(out, value);
}

void AppendKeyRaw(std::string* out, absl::string_view key, absl::string_view raw) {
  out->push_back(',');
  AppendString(out, key);
  out->push_back(':');
  if (raw.empty()) {
    out->append("null");
  } else {
    out->append(raw.data(), raw.size());
  }
}

void AppendCapabilities(std::string* out,
                        const google::protobuf::RepeatedPtrField<std::string>& caps) {
  out->append(",\"capabilities\":[");
  for (int i = 0; i < caps.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendString(out, caps[i]);
  }
  out->push_back(']');
}

// Members are "k":v pairs without braces; none is a valid empty list.
void AppendMembers(std::string* out, absl::string_view members) {
  if (members.find_first_not_of(" \t\r\n") == absl::string_view::npos) return;
  out->push_back(',');
  out->append(members.data(), members.size());
}

}  // namespace

bool GrpcEventToFrame(const relay::v1::ClientEvent& event, std::size_t max_mesh_id_bytes,
                      std::string* frame, std::string* mesh_id, DecodeFailure* failure) {
  using relay::v1::ClientEvent;
  std::string& out = *frame;
  out.clear();
  mesh_id->clear();
  switch (event.event_case()) {
    case ClientEvent::kRegister: {
      const relay::v1::Register& reg = event.register_();
      if (reg.has_signed_token()) {
        return Fail(failure, ErrorCode::kBadMessage,
                    "signed_token is derived by the relay: send the token object in token_json");
      }
      if (!reg.token().empty() && !reg.token_json().empty()) {
        return Fail(failure, ErrorCode::kBadMessage, "send token or token_json, not both");
      }
      if (!CheckMeshId(reg.mesh_id(), max_mesh_id_bytes, failure)) return false;
      *mesh_id = reg.mesh_id();
      out = absl::StrCat("{\"type\":\"", reg.via_join() ? "join" : "register", "\"");
      AppendKeyString(&out, "node_id", reg.node_id());
      if (!reg.name().empty()) AppendKeyString(&out, "name", reg.name());
      AppendCapabilities(&out, reg.capabilities());
      if (!reg.token().empty()) AppendKeyString(&out, "token", reg.token());
      if (!CheckOneValue(reg.token_json(), "token_json", failure)) return false;
      if (!reg.token_json().empty()) AppendKeyRaw(&out, "token", reg.token_json());
      break;
    }
    case ClientEvent::kRegisterMesh: {
      const relay::v1::RegisterMesh& request = event.register_mesh();
      const relay::v1::Register& peer = request.peer();
      // The founder's own mesh_id plays the URL's part; it must name the
      // mesh being registered, as the URL must for a WebSocket client.
      *mesh_id = peer.mesh_id().empty() ? request.mesh_id() : peer.mesh_id();
      if (!CheckMeshId(*mesh_id, max_mesh_id_bytes, failure)) return false;
      out = "{\"type\":\"register_mesh\"";
      AppendKeyString(&out, "mesh_id", request.mesh_id());
      AppendKeyString(&out, "mesh_public_key", request.mesh_public_key_b64());
      AppendKeyString(&out, "founder_proof", request.founder_proof_b64());
      AppendKeyString(&out, "node_id", peer.node_id());
      if (!request.node_public_key_b64().empty()) {
        AppendKeyString(&out, "node_public_key", request.node_public_key_b64());
      }
      if (!peer.name().empty()) AppendKeyString(&out, "display_name", peer.name());
      AppendCapabilities(&out, peer.capabilities());
      break;
    }
    case ClientEvent::kBroadcast:
      if (!CheckOneValue(event.broadcast().payload(), "payload", failure)) return false;
      out = "{\"type\":\"broadcast\"";
      AppendKeyRaw(&out, "payload", event.broadcast().payload());
      break;
    case ClientEvent::kDirect:
      if (!CheckOneValue(event.direct().payload(), "payload", failure)) return false;
      out = "{\"type\":\"direct\"";
      AppendKeyString(&out, "target", event.direct().target());
      AppendKeyRaw(&out, "payload", event.direct().payload());
      break;
    case ClientEvent::kLlmRequest: {
      const relay::v1::LlmRequest& req = event.llm_request();
      if (!CheckOneValue(req.request_id(), "request_id", failure) ||
          !CheckMembers(req.members(), {"type", "from", "request_id"}, failure)) {
        return false;
      }
      out = absl::StrCat(
          "{\"type\":\"",
          req.kind() == relay::v1::LLM_REQUEST_KIND_CHAT ? "chat_request" : "llm_request", "\"");
      if (!req.request_id().empty()) AppendKeyRaw(&out, "request_id", req.request_id());
      AppendMembers(&out, req.members());
      break;
    }
    case ClientEvent::kLlmResponse: {
      const relay::v1::LlmResponse& resp = event.llm_response();
      if (!CheckOneValue(resp.request_id(), "request_id", failure) ||
          !CheckMembers(resp.members(), {"type", "from", "target", "request_id"}, failure)) {
        return false;
      }
      out = "{\"type\":\"llm_response\"";
      AppendKeyString(&out, "target", resp.target());
      if (!resp.request_id().empty()) AppendKeyRaw(&out, "request_id", resp.request_id());
      AppendMembers(&out, resp.members());
      break;
    }
    case ClientEvent::kPing:
      out = "{\"type\":\"ping\"";
      break;
    case ClientEvent::kCapabilitiesUpdate:
      out = "{\"type\":\"capabilities_update\"";
      AppendCapabilities(&out, event.capabilities_update().capabilities());
      break;
    case ClientEvent::kUnrouted: {
      const relay::v1::Unrouted& unrouted = event.unrouted();
      const std::optional<core::UnroutedType> type = core::UnroutedTypeFromWire(unrouted.type());
      if (!type) {
        return Fail(failure, ErrorCode::kUnknownType, "unrouted.type names no unrouted type");
      }
      if (!CheckOneValue(unrouted.request_id(), "request_id", failure)) return false;
      out = absl::StrCat("{\"type\":\"", core::UnroutedTypeName(*type), "\"");
      if (!unrouted.request_id().empty()) AppendKeyRaw(&out, "request_id", unrouted.request_id());
      break;
    }
    case ClientEvent::kAck:
      // Answered as on WebSocket: Attach streams have no resume session.
      out = absl::StrCat("{\"type\":\"ack\",\"seq\":", event.ack().seq());
      break;
    case ClientEvent::EVENT_NOT_SET:
      return Fail(failure, ErrorCode::kUnknownType, "the event sets none of ClientEvent's fields");
  }
  out.push_back('}');
  return true;
}

bool NormalizeGrpcEvent(const relay::v1::ClientEvent& event, std::size_t max_mesh_id_bytes,
                        relay::v1::ClientEvent* normalized, DecodeFailure* failure) {
  std::string frame;
  std::string mesh_id;
  if (!GrpcEventToFrame(event, max_mesh_id_bytes, &frame, &mesh_id, failure)) return false;
  return DecodeClientFrame(frame, mesh_id, normalized, failure);
}

}  // namespace relay::gateway
