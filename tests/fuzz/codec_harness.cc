// The JSON codec's invariants (see codec_harness.h). Start at CodecProblem().
//
// Every check returns a description of the first violation, so the same code
// serves the fuzzer (which traps on it) and the regression tests (which print
// it). Nothing here may crash on any input: crashes are the sanitizers' job.
#include "tests/fuzz/codec_harness.h"

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gateway/codec/client_decoder.h"
#include "gateway/codec/server_encoder.h"
#include "gateway/http/relay_path.h"
#include "gateway/json/json_object.h"
#include "gateway/json/json_writer.h"
#include "relay/v1/relay.pb.h"
#include "server/core/error_code.h"
#include "server/core/unrouted_wire.h"
#include "server/limits.h"
#include "tests/fuzz/json_reference.h"

namespace relay::fuzz {
namespace {

using gateway::json::Kind;
using gateway::json::Member;
using gateway::json::Object;
using gateway::json::ParseError;
using gateway::json::ParseErrorKind;
using limits::kMaxJsonDepth;
using limits::kMaxJsonMembersPerObject;

// What the decoder is told the URL's mesh was, and who the relay says a
// forwarded event is from: both need escaping in JSON.
constexpr absl::string_view kMesh = "mesh \"1\" \xc3\xa9";
const std::string& From() {
  static const std::string* from = new std::string("n\"o\\de\x01\x1f\xe2\x80\xa8");
  return *from;
}

// Longest error message the relay may build from a client frame: messages
// echo at most 64 bytes of what the client sent.
constexpr std::size_t kMaxErrorMessageBytes = 200;

// Input, shortened and escaped for a report.
std::string Show(absl::string_view s) {
  constexpr std::size_t kMax = 300;
  std::string head = absl::CHexEscape(s.substr(0, kMax));
  if (s.size() > kMax) absl::StrAppend(&head, "...(", s.size(), " bytes)");
  return absl::StrCat("\"", head, "\"");
}

bool Parse(absl::string_view text, Object* obj, ParseError* error = nullptr) {
  ParseError unused;
  return gateway::json::ParseObject(text, kMaxJsonDepth, kMaxJsonMembersPerObject, obj,
                                    error != nullptr ? error : &unused);
}

// Parses `{"k":<raw_value>}`. When that is one member, points `*member` at
// it, kept in `holder` without its raw spans (they would point into a
// temporary), and returns true.
bool ParseValueAlone(absl::string_view raw_value, Object* holder, const Member** member) {
  const std::string text = absl::StrCat("{\"k\":", raw_value, "}");
  Object obj;
  if (!Parse(text, &obj) || obj.members.size() != 1) return false;
  *holder = obj;
  for (Member& m : holder->members) {
    m.raw_key = {};
    m.raw_value = {};
  }
  *member = &holder->members[0];
  return true;
}

// ---------------------------------------------------------------------------
// json::ParseObject
// ---------------------------------------------------------------------------

std::string StringRoundTripProblem(absl::string_view what, const std::string& s) {
  if (!gateway::json::IsValidUtf8(s)) return absl::StrCat(what, " is not valid UTF-8: ", Show(s));
  std::string quoted;
  gateway::json::AppendString(&quoted, s);
  Object holder;
  const Member* m = nullptr;
  if (!ParseValueAlone(quoted, &holder, &m)) {
    return absl::StrCat("AppendString(", what, ") does not parse back: ", Show(quoted));
  }
  if (m->kind != Kind::kString || m->string_value != s) {
    return absl::StrCat("AppendString(", what, ") reads back different: ", Show(s), " -> ",
                        Show(quoted), " -> ", Show(m->string_value));
  }
  return "";
}

std::string MemberProblem(absl::string_view input, const Member& m) {
  const auto inside = [&](absl::string_view span) {
    return span.data() >= input.data() && span.data() + span.size() <= input.data() + input.size();
  };
  if (!inside(m.raw_key) || !inside(m.raw_value)) {
    return absl::StrCat("member ", Show(m.key), ": raw span outside the input");
  }
  if (m.raw_key.size() < 2 || m.raw_key.front() != '"' || m.raw_key.back() != '"') {
    return absl::StrCat("raw key is not a quoted string: ", Show(m.raw_key));
  }
  if (std::string p = StringRoundTripProblem("a decoded key", m.key); !p.empty()) return p;

  // The raw key alone decodes to the same key.
  Object key_obj;
  if (!Parse(absl::StrCat("{", m.raw_key, ":null}"), &key_obj) || key_obj.members.size() != 1 ||
      key_obj.members[0].key != m.key) {
    return absl::StrCat("raw key ", Show(m.raw_key), " does not re-parse to key ", Show(m.key));
  }

  // The raw value alone reads the same.
  Object holder;
  const Member* again = nullptr;
  if (!ParseValueAlone(m.raw_value, &holder, &again)) {
    return absl::StrCat("raw value of ", Show(m.key),
                        " does not re-parse inside an object: ", Show(m.raw_value));
  }
  if (again->kind != m.kind || again->string_value != m.string_value ||
      again->all_strings != m.all_strings || again->strings != m.strings) {
    return absl::StrCat("raw value of ", Show(m.key),
                        " re-parses differently: ", Show(m.raw_value));
  }

  // Decoded data only where the kind says so.
  if (m.kind != Kind::kString && !m.string_value.empty()) {
    return absl::StrCat("non-string member ", Show(m.key), " has a string_value");
  }
  if (m.kind != Kind::kArray && (m.all_strings || !m.strings.empty())) {
    return absl::StrCat("non-array member ", Show(m.key), " has strings");
  }
  if (!m.all_strings && !m.strings.empty()) {
    return absl::StrCat("array ", Show(m.key), " is not all strings but has strings");
  }
  if (m.kind == Kind::kString) {
    if (std::string p = StringRoundTripProblem("a decoded string value", m.string_value);
        !p.empty()) {
      return p;
    }
  }
  if (m.all_strings) {
    // Written back as an array of strings, the elements read back the same.
    std::string array = "[";
    for (std::size_t i = 0; i < m.strings.size(); ++i) {
      if (i > 0) array.push_back(',');
      gateway::json::AppendString(&array, m.strings[i]);
      if (!gateway::json::IsValidUtf8(m.strings[i])) {
        return absl::StrCat("array element of ", Show(m.key), " is not valid UTF-8");
      }
    }
    array.push_back(']');
    Object arr_holder;
    const Member* arr = nullptr;
    if (!ParseValueAlone(array, &arr_holder, &arr) || !arr->all_strings ||
        arr->strings != m.strings) {
      return absl::StrCat("strings of ", Show(m.key), " do not round-trip: ", Show(array));
    }
  }
  return "";
}

std::string ParserProblem(absl::string_view input, bool* parsed) {
  Object obj;
  ParseError error;
  *parsed = Parse(input, &obj, &error);

  const JsonVerdict reference = ReferenceJsonVerdict(input, kMaxJsonMembersPerObject);
  if (error.kind != ParseErrorKind::kTooDeep || *parsed) {
    const bool ours_valid = *parsed || error.kind == ParseErrorKind::kNotObject;
    if (reference == JsonVerdict::kValid && !ours_valid) {
      return absl::StrCat("valid JSON (RapidJSON) refused: ", error.message, ": ", Show(input));
    }
    if (reference == JsonVerdict::kInvalid && ours_valid) {
      return absl::StrCat("invalid JSON (RapidJSON) accepted: ", Show(input));
    }
  }
  if (!*parsed) {
    if (error.message.empty()) return "ParseObject failed without a message";
    return "";
  }

  for (const Member& m : obj.members) {
    if (std::string p = MemberProblem(input, m); !p.empty()) return p;
  }

  // The raw spans, joined back into an object, read the same.
  std::string rebuilt = "{";
  for (std::size_t i = 0; i < obj.members.size(); ++i) {
    if (i > 0) rebuilt.push_back(',');
    absl::StrAppend(&rebuilt, obj.members[i].raw_key, ":", obj.members[i].raw_value);
  }
  rebuilt.push_back('}');
  Object again;
  if (!Parse(rebuilt, &again) || again.members.size() != obj.members.size()) {
    return absl::StrCat("members joined back do not parse: ", Show(rebuilt));
  }
  for (std::size_t i = 0; i < obj.members.size(); ++i) {
    if (again.members[i].raw_key != obj.members[i].raw_key ||
        again.members[i].raw_value != obj.members[i].raw_value) {
      return absl::StrCat("members joined back read differently: ", Show(rebuilt));
    }
  }

  // Find returns the last member of that name.
  for (const Member& m : obj.members) {
    const Member* found = obj.Find(m.key);
    if (found == nullptr || found->key != m.key) {
      return absl::StrCat("Find(", Show(m.key), ") misses a present key");
    }
    for (const Member* later = found + 1; later < obj.members.data() + obj.members.size();
         ++later) {
      if (later->key == m.key) return absl::StrCat("Find(", Show(m.key), ") is not the last one");
    }
  }
  return "";
}

// ---------------------------------------------------------------------------
// Server frames
// ---------------------------------------------------------------------------

// The members of `frame` named `key`.
std::vector<const Member*> Named(const Object& obj, absl::string_view key) {
  std::vector<const Member*> out;
  for (const Member& m : obj.members) {
    if (m.key == key) out.push_back(&m);
  }
  return out;
}

// `frame` is an object ParseObject accepts whose first member is
// "type":`type`, with exactly one "type".
std::string FrameProblem(const std::string& frame, absl::string_view type, Object* out) {
  ParseError error;
  if (!Parse(frame, out, &error)) {
    return absl::StrCat("relay would send invalid JSON (", error.message, "): ", Show(frame));
  }
  if (out->members.empty() || out->members[0].key != "type" ||
      out->members[0].string_value != type || Named(*out, "type").size() != 1) {
    return absl::StrCat("frame does not have exactly one \"type\":\"", type,
                        "\" first: ", Show(frame));
  }
  return "";
}

// The relay-owned member `key` appears once, as the string `value`.
std::string OwnedStringProblem(const Object& obj, const std::string& frame, absl::string_view key,
                               absl::string_view value) {
  const std::vector<const Member*> found = Named(obj, key);
  if (found.size() != 1 || found[0]->kind != Kind::kString || found[0]->string_value != value) {
    return absl::StrCat("\"", key, "\" is not exactly once ", Show(value), " in ", Show(frame));
  }
  return "";
}

// The relay-owned member `key` appears once, raw exactly `raw`.
std::string OwnedRawProblem(const Object& obj, const std::string& frame, absl::string_view key,
                            absl::string_view raw) {
  const std::vector<const Member*> found = Named(obj, key);
  if (found.size() != 1 || found[0]->raw_value != raw) {
    return absl::StrCat("\"", key, "\" is not exactly once ", Show(raw), " in ", Show(frame));
  }
  return "";
}

std::string StringsMemberProblem(const Object& obj, const std::string& frame, absl::string_view key,
                                 const google::protobuf::RepeatedPtrField<std::string>& want) {
  const std::vector<const Member*> found = Named(obj, key);
  if (found.size() != 1 || found[0]->kind != Kind::kArray ||
      (!want.empty() && !found[0]->all_strings) ||
      found[0]->strings != std::vector<std::string>(want.begin(), want.end())) {
    return absl::StrCat("\"", key, "\" does not read back as sent in ", Show(frame));
  }
  return "";
}

// The `members` bytes of an LlmRequest/LlmResponse: comma-separated members
// that parse inside braces, none named in `excluded`.
// `out` keeps spans into `braced`, which the caller keeps alive.
std::string ForwardedMembersProblem(const std::string& members,
                                    std::initializer_list<absl::string_view> excluded,
                                    std::string* braced, Object* out) {
  out->members.clear();
  if (members.empty()) return "";
  *braced = absl::StrCat("{", members, "}");
  if (!Parse(*braced, out)) {
    return absl::StrCat("forwarded members do not parse inside braces: ", Show(members));
  }
  for (const Member& m : out->members) {
    for (absl::string_view e : excluded) {
      if (m.key == e) {
        return absl::StrCat("forwarded members contain relay-owned \"", e, "\": ", Show(members));
      }
    }
  }
  return "";
}

// Frame member i (from `first`) equals forwarded member i, byte for byte.
std::string SplicedProblem(const Object& frame_obj, const std::string& frame, std::size_t first,
                           const Object& forwarded) {
  for (std::size_t i = 0; i < forwarded.members.size(); ++i) {
    const std::size_t at = first + i;
    if (at >= frame_obj.members.size() ||
        frame_obj.members[at].raw_key != forwarded.members[i].raw_key ||
        frame_obj.members[at].raw_value != forwarded.members[i].raw_value) {
      return absl::StrCat("forwarded member ", i, " not spliced byte for byte into ", Show(frame));
    }
  }
  return "";
}

std::string RawIsIdProblem(absl::string_view what, absl::string_view raw) {
  Object holder;
  const Member* m = nullptr;
  if (!ParseValueAlone(raw, &holder, &m) ||
      (m->kind != Kind::kString && m->kind != Kind::kNumber)) {
    return absl::StrCat(what, " is not a JSON string or number: ", Show(raw));
  }
  return "";
}

relay::v1::PeerInfo PeerOf(const relay::v1::Register& reg) {
  relay::v1::PeerInfo peer;
  peer.set_node_id(reg.node_id());
  peer.set_name(reg.name());
  *peer.mutable_capabilities() = reg.capabilities();
  peer.set_joined_at(1764120000.25);
  return peer;
}

std::string RegisterProblem(const relay::v1::Register& reg) {
  if (reg.mesh_id() != kMesh) return "register does not carry the URL's mesh_id";
  for (const std::string* s : {&reg.node_id(), &reg.name(), &reg.token()}) {
    if (!gateway::json::IsValidUtf8(*s))
      return absl::StrCat("register field not UTF-8: ", Show(*s));
  }
  relay::v1::ServerEvent event;
  *event.mutable_peer_joined()->mutable_peer() = PeerOf(reg);
  std::string frame = gateway::EncodeServerEvent(event);
  Object obj;
  if (std::string p = FrameProblem(frame, "peer_joined", &obj); !p.empty()) return p;
  if (std::string p = OwnedStringProblem(obj, frame, "node_id", reg.node_id()); !p.empty())
    return p;
  if (std::string p = OwnedStringProblem(obj, frame, "name", reg.name()); !p.empty()) return p;
  if (std::string p = StringsMemberProblem(obj, frame, "capabilities", reg.capabilities());
      !p.empty()) {
    return p;
  }

  event.Clear();
  *event.mutable_peers()->add_peers() = PeerOf(reg);
  *event.mutable_peers()->add_peers() = PeerOf(reg);
  frame = gateway::EncodeServerEvent(event);
  if (std::string p = FrameProblem(frame, "peers", &obj); !p.empty()) return p;

  event.Clear();
  event.mutable_joined()->set_mesh_id(reg.mesh_id());
  event.mutable_joined()->set_node_count(2);
  frame = gateway::EncodeServerEvent(event);
  if (std::string p = FrameProblem(frame, "joined", &obj); !p.empty()) return p;
  return OwnedStringProblem(obj, frame, "mesh_id", reg.mesh_id());
}

// A signed join token as decoded: either marked malformed, or with the
// canonical bytes its signature covers, which must be Python's
// json.dumps(sort_keys=True, separators=(",", ":")) of the token's fields:
// ASCII only, keys sorted, the decoded fields as sent.
std::string SignedTokenProblem(const Object& client, const relay::v1::SignedJoinToken& token) {
  const Member* raw = client.Find("token");
  if ((raw != nullptr && raw->kind == Kind::kObject) != token.present()) {
    return "signed_token.present disagrees with the frame's token";
  }
  if (!token.present()) return "";
  if (!token.malformed().empty()) {
    if (!gateway::json::IsValidUtf8(token.malformed())) return "malformed reason not UTF-8";
    return "";
  }
  const std::string& canonical = token.canonical();
  for (const char c : canonical) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return absl::StrCat("canonical token bytes are not ASCII: ", Show(canonical));
    }
  }
  Object obj;
  if (!Parse(canonical, &obj)) {
    // json.dumps writes inf as Infinity, which is not JSON; nothing else may fail.
    if (canonical.find("Infinity") != std::string::npos) return "";
    return absl::StrCat("canonical token bytes are not JSON: ", Show(canonical));
  }
  static const char* const kKeys[] = {"capabilities", "expires_at", "issued_at", "issuer_id",
                                      "mesh_id",      "node_id",    "nonce"};
  if (obj.members.size() != std::size(kKeys)) {
    return absl::StrCat("canonical token has other keys: ", Show(canonical));
  }
  for (std::size_t i = 0; i < std::size(kKeys); ++i) {
    if (obj.members[i].key != kKeys[i]) {
      return absl::StrCat("canonical token keys not sorted: ", Show(canonical));
    }
  }
  const auto string_is = [&](std::size_t i, const std::string& want) {
    return obj.members[i].kind == Kind::kString && obj.members[i].string_value == want;
  };
  const Member& caps = obj.members[0];
  const Member& node = obj.members[5];
  const bool node_ok =
      node.kind == Kind::kNull ? token.node_id().empty() : string_is(5, token.node_id());
  if (caps.kind != Kind::kArray || (!caps.all_strings && caps.raw_value != "[]") ||
      !std::is_sorted(caps.strings.begin(), caps.strings.end()) ||
      obj.members[1].kind != Kind::kNumber || !string_is(3, token.issuer_id()) ||
      !string_is(4, token.mesh_id()) || !node_ok || !string_is(6, token.nonce())) {
    return absl::StrCat("canonical token does not hold the token's fields: ", Show(canonical));
  }
  return "";
}

std::string MessageProblem(const std::string& payload) {
  if (payload.empty()) return "a message payload is empty (should be null)";
  relay::v1::ServerEvent event;
  event.mutable_message()->set_from(From());
  event.mutable_message()->set_payload(payload);
  const std::string frame = gateway::EncodeServerEvent(event);
  Object obj;
  if (std::string p = FrameProblem(frame, "message", &obj); !p.empty()) return p;
  if (std::string p = OwnedStringProblem(obj, frame, "from", From()); !p.empty()) return p;
  if (std::string p = OwnedRawProblem(obj, frame, "payload", payload); !p.empty()) return p;
  if (obj.members.size() != 3) return absl::StrCat("message has extra members: ", Show(frame));
  return "";
}

std::string LlmRequestProblem(const Object& client, const relay::v1::LlmRequest& req) {
  if (std::string p = RawIsIdProblem("llm_request request_id", req.request_id()); !p.empty()) {
    return p;
  }
  Object forwarded;
  std::string braced;
  if (std::string p = ForwardedMembersProblem(req.members(), {"type", "from", "request_id"},
                                              &braced, &forwarded);
      !p.empty()) {
    return p;
  }
  const Member* prompt = client.Find("prompt");
  const bool want_messages =
      prompt != nullptr && prompt->kind == Kind::kString && client.Find("messages") == nullptr;
  if (req.add_messages() != want_messages ||
      (want_messages && req.prompt_for_messages() != prompt->string_value)) {
    return "add_messages/prompt_for_messages disagree with the client's prompt and messages";
  }

  relay::v1::ServerEvent event;
  event.mutable_llm_request()->set_from(From());
  *event.mutable_llm_request()->mutable_request() = req;
  const std::string frame = gateway::EncodeServerEvent(event);
  const absl::string_view type =
      req.kind() == relay::v1::LLM_REQUEST_KIND_CHAT ? "chat_request" : "llm_request";
  Object obj;
  if (std::string p = FrameProblem(frame, type, &obj); !p.empty()) return p;
  if (std::string p = OwnedStringProblem(obj, frame, "from", From()); !p.empty()) return p;
  if (std::string p = OwnedRawProblem(obj, frame, "request_id", req.request_id()); !p.empty()) {
    return p;
  }
  if (std::string p = SplicedProblem(obj, frame, 3, forwarded); !p.empty()) return p;
  const std::size_t want_size = 3 + forwarded.members.size() + (want_messages ? 1 : 0);
  if (obj.members.size() != want_size) {
    return absl::StrCat("llm_request frame has ", obj.members.size(), " members, want ", want_size,
                        ": ", Show(frame));
  }
  if (want_messages) {
    std::string messages = "[{\"role\":\"user\",\"content\":";
    gateway::json::AppendString(&messages, prompt->string_value);
    messages.append("}]");
    if (std::string p = OwnedRawProblem(obj, frame, "messages", messages); !p.empty()) return p;
  }
  return "";
}

std::string LlmResponseProblem(const relay::v1::LlmResponse& resp) {
  if (!resp.request_id().empty()) {
    if (std::string p = RawIsIdProblem("llm_response request_id", resp.request_id()); !p.empty()) {
      return p;
    }
  }
  if (!gateway::json::IsValidUtf8(resp.target())) return "llm_response target not UTF-8";
  Object forwarded;
  std::string braced;
  if (std::string p = ForwardedMembersProblem(
          resp.members(), {"type", "from", "target", "request_id"}, &braced, &forwarded);
      !p.empty()) {
    return p;
  }
  relay::v1::ServerEvent event;
  event.mutable_llm_response()->set_from(From());
  *event.mutable_llm_response()->mutable_response() = resp;
  const std::string frame = gateway::EncodeServerEvent(event);
  Object obj;
  if (std::string p = FrameProblem(frame, "llm_response", &obj); !p.empty()) return p;
  if (std::string p = OwnedStringProblem(obj, frame, "from", From()); !p.empty()) return p;
  absl::string_view want_id = resp.request_id();
  if (want_id.empty()) want_id = "null";
  if (std::string p = OwnedRawProblem(obj, frame, "request_id", want_id); !p.empty()) return p;
  if (Named(obj, "target").size() != 0) return absl::StrCat("target forwarded: ", Show(frame));
  if (std::string p = SplicedProblem(obj, frame, 3, forwarded); !p.empty()) return p;
  if (obj.members.size() != 3 + forwarded.members.size()) {
    return absl::StrCat("llm_response frame has extra members: ", Show(frame));
  }
  return "";
}

std::string CapabilitiesProblem(const relay::v1::CapabilitiesUpdate& update) {
  relay::v1::ServerEvent event;
  event.mutable_peer_updated()->set_node_id(From());
  *event.mutable_peer_updated()->mutable_capabilities() = update.capabilities();
  const std::string frame = gateway::EncodeServerEvent(event);
  Object obj;
  if (std::string p = FrameProblem(frame, "peer_updated", &obj); !p.empty()) return p;
  return StringsMemberProblem(obj, frame, "capabilities", update.capabilities());
}

std::string ErrorFrameProblem(const gateway::DecodeFailure& failure) {
  if (failure.message.empty() || failure.message.size() > kMaxErrorMessageBytes ||
      !gateway::json::IsValidUtf8(failure.message)) {
    return absl::StrCat("error message empty, too long or not UTF-8: ", Show(failure.message));
  }
  if (!failure.request_id_json.empty()) {
    if (std::string p = RawIsIdProblem("failure request_id", failure.request_id_json); !p.empty()) {
      return p;
    }
  }
  relay::v1::ServerEvent event;
  event.mutable_error()->set_code(std::string(core::ErrorCodeName(failure.code)));
  event.mutable_error()->set_message(failure.message);
  event.mutable_error()->set_request_id(failure.request_id_json);
  const std::string frame = gateway::EncodeServerEvent(event);
  Object obj;
  if (std::string p = FrameProblem(frame, "error", &obj); !p.empty()) return p;
  if (std::string p = OwnedStringProblem(obj, frame, "message", failure.message); !p.empty()) {
    return p;
  }
  if (!failure.request_id_json.empty()) {
    return OwnedRawProblem(obj, frame, "request_id", failure.request_id_json);
  }
  return "";
}

std::string DecoderProblem(absl::string_view input, bool parsed) {
  relay::v1::ClientEvent event;
  gateway::DecodeFailure failure;
  const bool decoded = gateway::DecodeClientFrame(input, kMesh, &event, &failure);

  if (!decoded) {
    Object obj;
    ParseError error;
    if (Parse(input, &obj, &error)) {
      if (failure.code == core::ErrorCode::kBadJson) return "a JSON object answered bad_json";
    } else if (error.kind == ParseErrorKind::kNotObject) {
      if (failure.code != core::ErrorCode::kBadMessage) {
        return "a JSON non-object not answered bad_message";
      }
    } else if (error.kind == ParseErrorKind::kTooManyMembers) {
      if (failure.code != core::ErrorCode::kBadMessage) {
        return "an object with too many members not answered bad_message";
      }
    } else if (failure.code != core::ErrorCode::kBadJson) {
      return "a frame that is not JSON not answered bad_json";
    }
    return ErrorFrameProblem(failure);
  }
  if (!parsed) return "DecodeClientFrame accepted what ParseObject refuses";

  Object client;
  Parse(input, &client);
  switch (event.event_case()) {
    case relay::v1::ClientEvent::kRegister: {
      const Member* node = client.Find("node_id");
      if (node == nullptr || node->string_value != event.register_().node_id()) {
        return "register node_id differs from the frame's";
      }
      if (std::string p = SignedTokenProblem(client, event.register_().signed_token());
          !p.empty()) {
        return p;
      }
      return RegisterProblem(event.register_());
    }
    case relay::v1::ClientEvent::kRegisterMesh: {
      const relay::v1::RegisterMesh& request = event.register_mesh();
      const Member* node = client.Find("node_id");
      const Member* mesh = client.Find("mesh_id");
      if (node == nullptr || node->string_value != request.peer().node_id() || mesh == nullptr ||
          mesh->string_value != request.mesh_id()) {
        return "register_mesh node_id or mesh_id differs from the frame's";
      }
      if (std::string p = RegisterProblem(request.peer()); !p.empty()) return p;
      relay::v1::ServerEvent registered;
      registered.mutable_mesh_registered()->set_mesh_id(request.mesh_id());
      const std::string frame = gateway::EncodeServerEvent(registered);
      Object obj;
      if (std::string p = FrameProblem(frame, "mesh_registered", &obj); !p.empty()) return p;
      return OwnedStringProblem(obj, frame, "mesh_id", request.mesh_id());
    }
    case relay::v1::ClientEvent::kBroadcast:
      return MessageProblem(event.broadcast().payload());
    case relay::v1::ClientEvent::kDirect: {
      const Member* target = client.Find("target");
      if (target == nullptr || target->string_value != event.direct().target()) {
        return "direct target differs from the frame's";
      }
      return MessageProblem(event.direct().payload());
    }
    case relay::v1::ClientEvent::kLlmRequest:
      return LlmRequestProblem(client, event.llm_request());
    case relay::v1::ClientEvent::kLlmResponse:
      return LlmResponseProblem(event.llm_response());
    case relay::v1::ClientEvent::kCapabilitiesUpdate:
      return CapabilitiesProblem(event.capabilities_update());
    case relay::v1::ClientEvent::kPing:
      return "";
    case relay::v1::ClientEvent::kAck: {
      const Member* seq = client.Find("seq");
      if (seq == nullptr || seq->raw_value != absl::StrCat(event.ack().seq())) {
        return "ack seq differs from the frame's";
      }
      return "";
    }
    case relay::v1::ClientEvent::kUnrouted: {
      const relay::v1::Unrouted& unrouted = event.unrouted();
      const std::optional<core::UnroutedType> kind = core::UnroutedTypeFromWire(unrouted.type());
      const Member* type = client.Find("type");
      if (!kind || type == nullptr || type->string_value != core::UnroutedTypeName(*kind)) {
        return "unrouted type differs from the frame's";
      }
      const Member* request_id = client.Find("request_id");
      const bool sent = request_id != nullptr && request_id->kind != Kind::kNull;
      if (sent != !unrouted.request_id().empty()) {
        return "unrouted request_id present in one of frame and event only";
      }
      return "";
    }
    case relay::v1::ClientEvent::EVENT_NOT_SET:
      return "DecodeClientFrame succeeded with an empty event";
  }
  return "unknown event case";
}

const char* TypeOf(const relay::v1::ServerEvent& event) {
  using relay::v1::ServerEvent;
  switch (event.event_case()) {
    case ServerEvent::kJoined:
      return "joined";
    case ServerEvent::kPeers:
      return "peers";
    case ServerEvent::kPeerJoined:
      return "peer_joined";
    case ServerEvent::kPeerLeft:
      return "peer_left";
    case ServerEvent::kPeerUpdated:
      return "peer_updated";
    case ServerEvent::kMessage:
      return "message";
    case ServerEvent::kLlmRequest:
      return event.llm_request().request().kind() == relay::v1::LLM_REQUEST_KIND_CHAT
                 ? "chat_request"
                 : "llm_request";
    case ServerEvent::kLlmResponse:
      return "llm_response";
    case ServerEvent::kPong:
      return "pong";
    case ServerEvent::kMeshRegistered:
      return "mesh_registered";
    case ServerEvent::kServerDraining:
      return "server_draining";
    case ServerEvent::kAck:
      return "ack";
    case ServerEvent::kResumed:
      return "resumed";
    case ServerEvent::kError:
    case ServerEvent::EVENT_NOT_SET:
      return "error";
  }
  return "error";
}

// The WebSocket resource "/relay/{mesh_id}" (the mesh id's only source).
std::string RelayPathProblem(absl::string_view resource) {
  constexpr std::size_t kMaxIdBytes = limits::kMaxIdBytes;
  const absl::StatusOr<std::string> mesh = gateway::ParseRelayPath(resource, kMaxIdBytes);
  if (!mesh.ok()) {
    if (mesh.status().code() != absl::StatusCode::kNotFound &&
        mesh.status().code() != absl::StatusCode::kInvalidArgument) {
      return absl::StrCat("ParseRelayPath: unexpected status ", mesh.status().ToString());
    }
    return "";
  }
  if (resource.substr(0, 7) != "/relay/") return absl::StrCat("not a relay path: ", Show(resource));
  if (mesh->empty() || mesh->size() > kMaxIdBytes || !gateway::json::IsValidUtf8(*mesh)) {
    return absl::StrCat("ParseRelayPath accepted a bad mesh id: ", Show(*mesh));
  }
  for (const char c : *mesh) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return absl::StrCat("mesh id with a control character: ", Show(*mesh));
    }
  }
  // Fully percent-encoded, it reads back the same.
  std::string encoded = "/relay/";
  for (const char c : *mesh) {
    absl::StrAppend(&encoded, "%", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
  }
  const absl::StatusOr<std::string> again = gateway::ParseRelayPath(encoded, kMaxIdBytes);
  if (!again.ok() || *again != *mesh) {
    return absl::StrCat("mesh id does not survive percent-encoding: ", Show(encoded));
  }
  relay::v1::ServerEvent joined;
  joined.mutable_joined()->set_mesh_id(*mesh);
  joined.mutable_joined()->set_node_count(1);
  const std::string frame = gateway::EncodeServerEvent(joined);
  Object obj;
  if (std::string p = FrameProblem(frame, "joined", &obj); !p.empty()) return p;
  return OwnedStringProblem(obj, frame, "mesh_id", *mesh);
}

}  // namespace

std::string ServerFrameProblem(const relay::v1::ServerEvent& event) {
  const std::string frame = gateway::EncodeServerEvent(event);
  Object obj;
  return FrameProblem(frame, TypeOf(event), &obj);
}

std::string CodecProblem(absl::string_view input) {
  bool parsed = false;
  if (std::string p = ParserProblem(input, &parsed); !p.empty()) return p;
  if (std::string p = DecoderProblem(input, parsed); !p.empty()) return p;
  if (std::string p = RelayPathProblem(input); !p.empty()) return p;
  return RelayPathProblem(absl::StrCat("/relay/", input));
}

}  // namespace relay::fuzz
