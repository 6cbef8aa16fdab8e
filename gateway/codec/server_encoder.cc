#include "gateway/codec/server_encoder.h"

#include "absl/strings/str_cat.h"
#include "gateway/json/json_writer.h"

namespace relay::gateway {
namespace {

using json::AppendSeconds;
using json::AppendString;

void AppendStringArray(std::string* out,
                       const google::protobuf::RepeatedPtrField<std::string>& items) {
  out->push_back('[');
  for (int i = 0; i < items.size(); ++i) {
    if (i > 0) out->push_back(',');
    AppendString(out, items[i]);
  }
  out->push_back(']');
}

// `{"type":"<type>"` — every event starts so; the caller closes the brace.
// (Plain appends: StrAppend's size pass and resize cost more for these
// short literals.)
void OpenEvent(std::string* out, absl::string_view type) {
  out->append("{\"type\":\"");
  out->append(type.data(), type.size());
  out->push_back('"');
}

void AppendKey(std::string* out, absl::string_view key) {
  out->append(",\"");
  out->append(key.data(), key.size());
  out->append("\":");
}

void AppendPeerFields(std::string* out, const relay::v1::PeerInfo& peer) {
  AppendKey(out, "node_id");
  AppendString(out, peer.node_id());
  AppendKey(out, "name");
  AppendString(out, peer.name());
  AppendKey(out, "capabilities");
  AppendStringArray(out, peer.capabilities());
}

void AppendSession(std::string* out, const relay::v1::SessionInfo& session) {
  AppendKey(out, "session");
  out->append("{\"id\":");
  AppendString(out, session.id());
  absl::StrAppend(out, ",\"window_seconds\":", session.window_seconds(), "}");
}

void AppendMembers(std::string* out, const std::string& members) {
  if (members.empty()) return;
  out->push_back(',');
  out->append(members);
}

}  // namespace

void AppendSequencedServerEvent(const relay::v1::ServerEvent& event, std::uint64_t seq,
                                std::string* out) {
  AppendServerEvent(event, out);
  out->pop_back();  // the closing brace
  absl::StrAppend(out, ",\"seq\":", seq, "}");
}

std::string EncodeServerEvent(const relay::v1::ServerEvent& event) {
  std::string out;
  AppendServerEvent(event, &out);
  return out;
}

void AppendServerEvent(const relay::v1::ServerEvent& event, std::string* out_ptr) {
  using relay::v1::ServerEvent;
  std::string& out = *out_ptr;
  // The JSON text is the event's fields plus keys and quotes: one
  // allocation in the common case instead of a doubling series.
  out.reserve(out.size() + event.ByteSizeLong() + 96);
  switch (event.event_case()) {
    case ServerEvent::kJoined:
      OpenEvent(&out, "joined");
      AppendKey(&out, "mesh_id");
      AppendString(&out, event.joined().mesh_id());
      AppendKey(&out, "node_count");
      absl::StrAppend(&out, event.joined().node_count());
      if (event.joined().has_session()) AppendSession(&out, event.joined().session());
      if (event.joined().resume_refused()) out.append(",\"resumed\":false");
      break;
    case ServerEvent::kPeers:
      OpenEvent(&out, "peers");
      AppendKey(&out, "peers");
      out.push_back('[');
      for (int i = 0; i < event.peers().peers_size(); ++i) {
        const relay::v1::PeerInfo& peer = event.peers().peers(i);
        if (i > 0) out.push_back(',');
        out.append("{\"node_id\":");
        AppendString(&out, peer.node_id());
        AppendKey(&out, "name");
        AppendString(&out, peer.name());
        AppendKey(&out, "capabilities");
        AppendStringArray(&out, peer.capabilities());
        AppendKey(&out, "joined_at");
        AppendSeconds(&out, peer.joined_at());
        out.push_back('}');
      }
      out.push_back(']');
      break;
    case ServerEvent::kPeerJoined:
      OpenEvent(&out, "peer_joined");
      AppendPeerFields(&out, event.peer_joined().peer());
      break;
    case ServerEvent::kPeerLeft:
      OpenEvent(&out, "peer_left");
      AppendKey(&out, "node_id");
      AppendString(&out, event.peer_left().node_id());
      break;
    case ServerEvent::kPeerUpdated:
      OpenEvent(&out, "peer_updated");
      AppendKey(&out, "node_id");
      AppendString(&out, event.peer_updated().node_id());
      AppendKey(&out, "capabilities");
      AppendStringArray(&out, event.peer_updated().capabilities());
      break;
    case ServerEvent::kMessage:
      OpenEvent(&out, "message");
      AppendKey(&out, "from");
      AppendString(&out, event.message().from());
      AppendKey(&out, "payload");
      out.append(event.message().payload());
      break;
    case ServerEvent::kLlmRequest: {
      const relay::v1::LlmRequest& req = event.llm_request().request();
      OpenEvent(&out,
                req.kind() == relay::v1::LLM_REQUEST_KIND_CHAT ? "chat_request" : "llm_request");
      AppendKey(&out, "from");
      AppendString(&out, event.llm_request().from());
      AppendKey(&out, "request_id");
      out.append(req.request_id());
      AppendMembers(&out, req.members());
      if (req.add_messages()) {
        AppendKey(&out, "messages");
        out.append("[{\"role\":\"user\",\"content\":");
        AppendString(&out, req.prompt_for_messages());
        out.append("}]");
      }
      break;
    }
    case ServerEvent::kLlmResponse: {
      const relay::v1::LlmResponse& resp = event.llm_response().response();
      OpenEvent(&out, "llm_response");
      AppendKey(&out, "from");
      AppendString(&out, event.llm_response().from());
      AppendKey(&out, "request_id");
      out.append(resp.request_id().empty() ? "null" : resp.request_id());
      AppendMembers(&out, resp.members());
      break;
    }
    case ServerEvent::kPong:
      OpenEvent(&out, "pong");
      AppendKey(&out, "timestamp");
      AppendSeconds(&out, event.pong().timestamp());
      break;
    case ServerEvent::kError:
      OpenEvent(&out, "error");
      AppendKey(&out, "code");
      AppendString(&out, event.error().code());
      AppendKey(&out, "message");
      AppendString(&out, event.error().message());
      if (!event.error().request_id().empty()) {
        AppendKey(&out, "request_id");
        out.append(event.error().request_id());
      }
      break;
    case ServerEvent::kMeshRegistered:
      OpenEvent(&out, "mesh_registered");
      AppendKey(&out, "mesh_id");
      AppendString(&out, event.mesh_registered().mesh_id());
      out.append(",\"success\":true");
      break;
    case ServerEvent::kServerDraining:
      OpenEvent(&out, "server_draining");
      absl::StrAppend(&out, ",\"grace_seconds\":", event.server_draining().grace_seconds(),
                      ",\"reconnect_after_ms\":", event.server_draining().reconnect_after_ms());
      break;
    case ServerEvent::kAck:
      OpenEvent(&out, "ack");
      absl::StrAppend(&out, ",\"seq\":", event.ack().seq());
      break;
    case ServerEvent::kResumed:
      OpenEvent(&out, "resumed");
      AppendSession(&out, event.resumed().session());
      absl::StrAppend(&out, ",\"last_seq\":", event.resumed().last_seq(),
                      ",\"replayed\":", event.resumed().replayed());
      break;
    case ServerEvent::EVENT_NOT_SET:
      OpenEvent(&out, "error");
      break;
  }
  out.push_back('}');
}

}  // namespace relay::gateway
