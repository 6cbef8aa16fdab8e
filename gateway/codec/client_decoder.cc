#include "gateway/codec/client_decoder.h"

#include <algorithm>
#include <initializer_list>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gateway/codec/python_json.h"
#include "gateway/json/json_object.h"
#include "server/core/traffic.h"
#include "server/core/unrouted_wire.h"
#include "server/limits.h"

namespace relay::gateway {
namespace {

using core::ErrorCode;
using json::Kind;
using json::Member;
using json::Object;

constexpr absl::string_view kNull = "null";

bool Fail(DecodeFailure* failure, ErrorCode code, std::string message) {
  failure->code = code;
  failure->message = std::move(message);
  return false;
}

// A required string field.
bool RequireString(const Object& obj, absl::string_view key, absl::string_view type,
                   const std::string** value, DecodeFailure* failure) {
  const Member* m = obj.Find(key);
  if (m == nullptr) {
    return Fail(failure, ErrorCode::kBadMessage, absl::StrCat(type, " needs \"", key, "\""));
  }
  if (m->kind != Kind::kString) {
    return Fail(failure, ErrorCode::kBadMessage,
                absl::StrCat("\"", key, "\" must be a string in ", type));
  }
  *value = &m->string_value;
  return true;
}

// An optional string field (absent or null -> empty).
bool OptionalString(const Object& obj, absl::string_view key, absl::string_view type,
                    std::string* value, DecodeFailure* failure) {
  const Member* m = obj.Find(key);
  if (m == nullptr || m->kind == Kind::kNull) return true;
  if (m->kind != Kind::kString) {
    return Fail(failure, ErrorCode::kBadMessage,
                absl::StrCat("\"", key, "\" must be a string in ", type));
  }
  *value = m->string_value;
  return true;
}

bool StringArray(const Member& m, absl::string_view type,
                 google::protobuf::RepeatedPtrField<std::string>* out, DecodeFailure* failure) {
  if (m.kind != Kind::kArray || !m.all_strings) {
    return Fail(failure, ErrorCode::kBadMessage,
                absl::StrCat("\"", m.key, "\" must be an array of strings in ", type));
  }
  for (const std::string& s : m.strings) out->Add(std::string(s));
  return true;
}

// The raw request_id: a string or a number. Empty when absent.
bool ReadRequestId(const Object& obj, absl::string_view type, bool required, std::string* out,
                   DecodeFailure* failure) {
  const Member* m = obj.Find("request_id");
  if (m == nullptr || (!required && m->kind == Kind::kNull)) {
    if (required) {
      return Fail(failure, ErrorCode::kBadMessage, absl::StrCat(type, " needs \"request_id\""));
    }
    return true;
  }
  if (m->kind != Kind::kString && m->kind != Kind::kNumber) {
    return Fail(failure, ErrorCode::kBadMessage,
                absl::StrCat("\"request_id\" must be a string or a number in ", type));
  }
  out->assign(m->raw_value.data(), m->raw_value.size());
  failure->request_id_json = *out;
  return true;
}

// A resume seq ("seq", "last_seq", an ack's "seq"): a JSON integer from
// `min` to limits::kMaxResumeSeq, written as digits only (no sign,
// fraction or exponent: 1.0 and 1e3 are not counters).
bool ReadSeq(const Member& m, std::uint64_t min, std::uint64_t* out) {
  if (m.kind != Kind::kNumber || m.raw_value.empty() || m.raw_value.size() > 16) return false;
  for (char c : m.raw_value) {
    if (c < '0' || c > '9') return false;
  }
  std::uint64_t value = 0;
  if (!absl::SimpleAtoi(m.raw_value, &value) || value < min || value > limits::kMaxResumeSeq) {
    return false;
  }
  *out = value;
  return true;
}

// "resume" of a register/join: true (a new session), an object naming the
// session to continue, or false/null/absent (none).
bool DecodeResume(const Object& obj, absl::string_view type, relay::v1::ResumeRequest* resume,
                  DecodeFailure* failure) {
  const Member* m = obj.Find("resume");
  if (m == nullptr || m->kind == Kind::kNull) return true;
  if (m->kind == Kind::kBool) {
    resume->set_requested(m->raw_value == "true");
    return true;
  }
  const std::string kShape = absl::StrCat(
      "\"resume\" must be true, or {\"session\": \"<id>\", \"last_seq\": <integer>} in ", type);
  if (m->kind != Kind::kObject) return Fail(failure, ErrorCode::kBadMessage, kShape);
  Object r;
  json::ParseError error;
  if (!json::ParseObject(m->raw_value, limits::kMaxJsonDepth, limits::kMaxJsonMembersPerObject, &r,
                         &error)) {
    return Fail(failure, ErrorCode::kBadMessage, kShape);
  }
  const Member* session = r.Find("session");
  const Member* last_seq = r.Find("last_seq");
  std::uint64_t last = 0;
  if (session == nullptr || session->kind != Kind::kString || session->string_value.empty() ||
      (last_seq != nullptr && last_seq->kind != Kind::kNull && !ReadSeq(*last_seq, 0, &last))) {
    return Fail(failure, ErrorCode::kBadMessage, kShape);
  }
  resume->set_requested(true);
  resume->set_session_id(session->string_value);
  resume->set_last_seq(last);
  return true;
}

std::string RawOrNull(const Member* m) {
  return m == nullptr ? std::string(kNull) : std::string(m->raw_value);
}

// Every member but `skip`, as `"key":value` pairs joined by ','.
std::string MembersExcept(const Object& obj, std::initializer_list<absl::string_view> skip) {
  std::string out;
  for (const Member& m : obj.members) {
    bool skipped = false;
    for (absl::string_view s : skip) skipped = skipped || m.key == s;
    if (skipped) continue;
    if (!out.empty()) out.push_back(',');
    absl::StrAppend(&out, m.raw_key, ":", m.raw_value);
  }
  return out;
}

// A signed join token: its fields, and the canonical bytes its signature
// covers (json.dumps of the fields with sort_keys and compact separators, as
// the Atmosphere clients sign them). Malformed tokens are marked, not
// refused here: refusing credentials is the core's decision.
void DecodeSignedToken(absl::string_view raw, relay::v1::SignedJoinToken* token) {
  token->set_present(true);
  Object t;
  json::ParseError error;
  if (!json::ParseObject(raw, limits::kMaxJsonDepth, limits::kMaxJsonMembersPerObject, &t,
                         &error)) {
    token->set_malformed("the token is not a JSON object");
    return;
  }
  const auto str = [&](absl::string_view key) -> const Member* {
    const Member* m = t.Find(key);
    return m != nullptr && m->kind == Kind::kString ? m : nullptr;
  };
  const Member* mesh_id = str("mesh_id");
  const Member* nonce = str("nonce");
  const Member* signature = str("signature");
  const Member* issuer_id = str("issuer_id");
  if (mesh_id == nullptr || nonce == nullptr || signature == nullptr || issuer_id == nullptr) {
    token->set_malformed("the token needs string mesh_id, nonce, signature and issuer_id");
    return;
  }
  const Member* expires_at = t.Find("expires_at");
  double expires = 0;
  if (expires_at == nullptr || expires_at->kind != Kind::kNumber ||
      !absl::SimpleAtod(expires_at->raw_value, &expires)) {
    token->set_malformed("the token needs a numeric expires_at");
    return;
  }
  const Member* node_id = t.Find("node_id");
  if (node_id != nullptr && node_id->kind != Kind::kString && node_id->kind != Kind::kNull) {
    token->set_malformed("the token's node_id must be a string or null");
    return;
  }
  const Member* issued_at = t.Find("issued_at");
  if (issued_at != nullptr && issued_at->kind != Kind::kNumber &&
      issued_at->kind != Kind::kString && issued_at->kind != Kind::kNull) {
    token->set_malformed("the token's issued_at must be a number, a string or null");
    return;
  }
  std::vector<std::string> capabilities;
  if (const Member* caps = t.Find("capabilities"); caps != nullptr) {
    if (caps->kind != Kind::kArray || !caps->all_strings) {
      token->set_malformed("the token's capabilities must be an array of strings");
      return;
    }
    capabilities = caps->strings;
  }
  std::sort(capabilities.begin(), capabilities.end());

  token->set_mesh_id(mesh_id->string_value);
  token->set_nonce(nonce->string_value);
  token->set_signature_b64(signature->string_value);
  token->set_issuer_id(issuer_id->string_value);
  token->set_expires_at(expires);
  double issued = 0;
  if (issued_at != nullptr && issued_at->kind == Kind::kNumber &&
      absl::SimpleAtod(issued_at->raw_value, &issued)) {
    token->set_issued_at(issued);
  }
  if (node_id != nullptr && node_id->kind == Kind::kString)
    token->set_node_id(node_id->string_value);

  // Keys in sorted order, exactly as json.dumps(sort_keys=True) writes them.
  std::string c = "{\"capabilities\":[";
  for (std::size_t i = 0; i < capabilities.size(); ++i) {
    if (i > 0) c.push_back(',');
    AppendPythonJsonString(&c, capabilities[i]);
  }
  c.append("],\"expires_at\":");
  AppendPythonJsonNumber(&c, expires_at->raw_value);
  c.append(",\"issued_at\":");
  if (issued_at == nullptr || issued_at->kind == Kind::kNull) {
    c.append("null");
  } else if (issued_at->kind == Kind::kString) {
    AppendPythonJsonString(&c, issued_at->string_value);
  } else {
    AppendPythonJsonNumber(&c, issued_at->raw_value);
  }
  c.append(",\"issuer_id\":");
  AppendPythonJsonString(&c, issuer_id->string_value);
  c.append(",\"mesh_id\":");
  AppendPythonJsonString(&c, mesh_id->string_value);
  c.append(",\"node_id\":");
  if (node_id != nullptr && node_id->kind == Kind::kString) {
    AppendPythonJsonString(&c, node_id->string_value);
  } else {
    c.append("null");
  }
  c.append(",\"nonce\":");
  AppendPythonJsonString(&c, nonce->string_value);
  c.push_back('}');
  token->set_canonical(std::move(c));
}

bool DecodeRegister(const Object& obj, absl::string_view type, absl::string_view mesh_id,
                    relay::v1::Register* reg, DecodeFailure* failure) {
  const std::string* node_id;
  if (!RequireString(obj, "node_id", type, &node_id, failure)) return false;
  reg->set_mesh_id(std::string(mesh_id));
  reg->set_node_id(*node_id);
  reg->set_via_join(type == "join");
  std::string name;
  if (!OptionalString(obj, "name", type, &name, failure)) return false;
  if (name.empty() && type == "join") {
    if (!OptionalString(obj, "node_name", type, &name, failure)) return false;
  }
  reg->set_name(name);
  if (const Member* caps = obj.Find("capabilities"); caps != nullptr && caps->kind != Kind::kNull) {
    if (!StringArray(*caps, type, reg->mutable_capabilities(), failure)) return false;
  }
  if (const Member* token = obj.Find("token"); token != nullptr && token->kind != Kind::kNull) {
    if (token->kind == Kind::kObject) {
      DecodeSignedToken(token->raw_value, reg->mutable_signed_token());
    } else if (token->kind == Kind::kString) {
      reg->set_token(token->string_value);
    } else {
      return Fail(failure, ErrorCode::kBadMessage,
                  "\"token\" must be a string, or a signed join token object");
    }
  }
  return DecodeResume(obj, type, reg->mutable_resume(), failure);
}

bool DecodeRegisterMesh(const Object& obj, absl::string_view mesh_id,
                        relay::v1::RegisterMesh* request, DecodeFailure* failure) {
  constexpr absl::string_view kType = "register_mesh";
  const std::string* claimed_mesh;
  const std::string* mesh_key;
  const std::string* proof;
  const std::string* node_id;
  if (!RequireString(obj, "mesh_id", kType, &claimed_mesh, failure) ||
      !RequireString(obj, "mesh_public_key", kType, &mesh_key, failure) ||
      !RequireString(obj, "founder_proof", kType, &proof, failure) ||
      !RequireString(obj, "node_id", kType, &node_id, failure)) {
    return false;
  }
  std::string node_key;
  std::string display_name;
  if (!OptionalString(obj, "node_public_key", kType, &node_key, failure) ||
      !OptionalString(obj, "display_name", kType, &display_name, failure)) {
    return false;
  }
  request->set_mesh_id(*claimed_mesh);
  request->set_mesh_public_key_b64(*mesh_key);
  request->set_founder_proof_b64(*proof);
  request->set_node_public_key_b64(node_key);
  // In register_mesh, "name" names the mesh (seed server); the founder's own
  // display name is "display_name".
  relay::v1::Register* peer = request->mutable_peer();
  peer->set_mesh_id(std::string(mesh_id));
  peer->set_node_id(*node_id);
  peer->set_name(display_name);
  if (const Member* caps = obj.Find("capabilities"); caps != nullptr && caps->kind != Kind::kNull) {
    if (!StringArray(*caps, kType, peer->mutable_capabilities(), failure)) return false;
  }
  return true;
}

}  // namespace

bool DecodeClientFrame(absl::string_view frame, absl::string_view mesh_id,
                       relay::v1::ClientEvent* event, DecodeFailure* failure) {
  // Reused: its member list keeps its capacity from one frame to the next
  // (ParseObject clears it first). What a frame held (a register token, say)
  // is not kept past this call, and one huge frame (a megabyte of members)
  // must not pin its list for the thread's life.
  thread_local Object obj;
  absl::Cleanup release = [] {
    constexpr std::size_t kMembersKept = 64;
    obj.members.clear();
    if (obj.members.capacity() > kMembersKept) std::vector<Member>().swap(obj.members);
  };
  json::ParseError error;
  if (!json::ParseObject(frame, limits::kMaxJsonDepth, limits::kMaxJsonMembersPerObject, &obj,
                         &error)) {
    // JSON the relay will not read is bad_message; JSON no reader should
    // agree on (a duplicate name included) is bad_json.
    const bool readable_json = error.kind == json::ParseErrorKind::kNotObject ||
                               error.kind == json::ParseErrorKind::kTooManyMembers;
    return Fail(failure, readable_json ? ErrorCode::kBadMessage : ErrorCode::kBadJson,
                std::move(error.message));
  }

  const Member* type_member = obj.Find("type");
  if (type_member == nullptr) {
    return Fail(failure, ErrorCode::kBadMessage, "a message needs a \"type\"");
  }
  if (type_member->kind != Kind::kString) {
    return Fail(failure, ErrorCode::kBadMessage, "\"type\" must be a string");
  }
  // A view: comparing it with each literal is a length check, not strlen.
  const absl::string_view type = type_member->string_value;

  // A resume session's counter, on any message (the core decides whether
  // it needs one). Never forwarded: it is not the sender's to pass on.
  if (const Member* seq = obj.Find("seq"); seq != nullptr) {
    std::uint64_t value = 0;
    if (ReadSeq(*seq, 1, &value)) {
      event->set_seq(value);
    } else {
      event->set_seq_invalid(true);
    }
  }

  if (type == "register" || type == "join") {
    return DecodeRegister(obj, type, mesh_id, event->mutable_register_(), failure);
  }
  if (type == "register_mesh") {
    return DecodeRegisterMesh(obj, mesh_id, event->mutable_register_mesh(), failure);
  }
  if (type == "broadcast") {
    event->mutable_broadcast()->set_payload(RawOrNull(obj.Find("payload")));
    return true;
  }
  if (type == "direct") {
    const std::string* target;
    if (!RequireString(obj, "target", type, &target, failure)) return false;
    auto* direct = event->mutable_direct();
    direct->set_target(*target);
    direct->set_payload(RawOrNull(obj.Find("payload")));
    return true;
  }
  if (type == "llm_request" || type == "chat_request") {
    auto* req = event->mutable_llm_request();
    if (!ReadRequestId(obj, type, /*required=*/true, req->mutable_request_id(), failure)) {
      return false;
    }
    req->set_kind(type == "llm_request" ? relay::v1::LLM_REQUEST_KIND_LLM
                                        : relay::v1::LLM_REQUEST_KIND_CHAT);
    req->set_members(MembersExcept(obj, {"type", "from", "request_id", "seq"}));
    // The shipped macOS server reads `messages`: give it one when the
    // requester only sent a prompt.
    const Member* prompt = obj.Find("prompt");
    if (prompt != nullptr && prompt->kind == Kind::kString && obj.Find("messages") == nullptr) {
      req->set_add_messages(true);
      req->set_prompt_for_messages(prompt->string_value);
    }
    return true;
  }
  if (type == "llm_response") {
    auto* resp = event->mutable_llm_response();
    if (!ReadRequestId(obj, type, /*required=*/false, resp->mutable_request_id(), failure)) {
      return false;
    }
    const std::string* target;
    if (!RequireString(obj, "target", type, &target, failure)) return false;
    resp->set_target(*target);
    resp->set_members(MembersExcept(obj, {"type", "from", "target", "request_id", "seq"}));
    return true;
  }
  if (type == "ack") {
    const Member* seq = obj.Find("seq");
    std::uint64_t value = 0;
    if (seq == nullptr || !ReadSeq(*seq, 0, &value)) {
      return Fail(failure, ErrorCode::kBadMessage,
                  absl::StrCat("ack needs \"seq\", an integer from 0 to ", limits::kMaxResumeSeq));
    }
    event->set_seq_invalid(false);
    event->mutable_ack()->set_seq(value);
    return true;
  }
  if (type == "ping") {
    event->mutable_ping();
    return true;
  }
  if (type == "capabilities_update") {
    const Member* caps = obj.Find("capabilities");
    if (caps == nullptr) {
      return Fail(failure, ErrorCode::kBadMessage, "capabilities_update needs \"capabilities\"");
    }
    return StringArray(*caps, type, event->mutable_capabilities_update()->mutable_capabilities(),
                       failure);
  }
  for (std::size_t i = 0; i < core::kUnroutedTypeCount; ++i) {
    if (type != core::kUnroutedTypeNames[i]) continue;
    auto* unrouted = event->mutable_unrouted();
    unrouted->set_type(core::UnroutedTypeToWire(static_cast<core::UnroutedType>(i)));
    return ReadRequestId(obj, type, /*required=*/false, unrouted->mutable_request_id(), failure);
  }
  return Fail(failure, ErrorCode::kUnknownType,
              type.size() <= limits::kMaxEchoedBytes
                  ? absl::StrCat("unknown message type \"", type, "\"")
                  : std::string("unknown message type"));
}

}  // namespace relay::gateway
