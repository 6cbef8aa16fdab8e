// Builders of the ClientEvents a peer sends, one per kind, for the tests that
// drive RelayCore through Handle(). Request ids are raw JSON, as the
// transports pass them on ("\"r1\"", not "r1").
#ifndef RELAY_TESTS_CORE_CLIENT_EVENTS_H_
#define RELAY_TESTS_CORE_CLIENT_EVENTS_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "relay/v1/relay.pb.h"
#include "tests/core/ed25519_key.h"

namespace relay::core::testing {

inline relay::v1::ClientEvent RegisterEvent(const std::string& mesh, const std::string& node,
                                            const std::vector<std::string>& caps = {},
                                            const std::string& token = "",
                                            const std::string& name = "") {
  relay::v1::ClientEvent event;
  relay::v1::Register* reg = event.mutable_register_();
  reg->set_mesh_id(mesh);
  reg->set_node_id(node);
  reg->set_name(name);
  for (const std::string& c : caps) reg->add_capabilities(c);
  reg->set_token(token);
  return event;
}

// Founds `mesh` as a signed mesh under `key`, with `node` as its first peer.
inline relay::v1::ClientEvent RegisterMeshEvent(const Ed25519Key& key, const std::string& mesh,
                                                const std::string& node) {
  relay::v1::ClientEvent event;
  relay::v1::RegisterMesh* request = event.mutable_register_mesh();
  request->set_mesh_id(mesh);
  request->set_mesh_public_key_b64(key.PublicB64());
  request->set_founder_proof_b64(key.SignB64(mesh));
  request->mutable_peer()->set_mesh_id(mesh);
  request->mutable_peer()->set_node_id(node);
  return event;
}

// A join of `node` with a token for it signed by `key`, valid for an hour
// from `now`.
inline relay::v1::ClientEvent SignedJoinEvent(const Ed25519Key& key, const std::string& mesh,
                                              const std::string& node, const std::string& nonce,
                                              absl::Time now) {
  relay::v1::ClientEvent event = RegisterEvent(mesh, node);
  relay::v1::SignedJoinToken* token = event.mutable_register_()->mutable_signed_token();
  token->set_present(true);
  token->set_mesh_id(mesh);
  token->set_node_id(node);
  token->set_nonce(nonce);
  token->set_issuer_id("founder");
  token->set_expires_at(absl::ToDoubleSeconds(now + absl::Hours(1) - absl::UnixEpoch()));
  token->set_canonical(absl::StrCat("canonical:", mesh, ":", node, ":", nonce));
  token->set_signature_b64(key.SignB64(token->canonical()));
  return event;
}

inline relay::v1::ClientEvent BroadcastEvent(const std::string& payload) {
  relay::v1::ClientEvent event;
  event.mutable_broadcast()->set_payload(payload);
  return event;
}

inline relay::v1::ClientEvent DirectEvent(const std::string& target, const std::string& payload) {
  relay::v1::ClientEvent event;
  event.mutable_direct()->set_target(target);
  event.mutable_direct()->set_payload(payload);
  return event;
}

inline relay::v1::ClientEvent LlmRequestEvent(const std::string& request_id_json,
                                              const std::string& members = "\"prompt\":\"hi\"") {
  relay::v1::ClientEvent event;
  relay::v1::LlmRequest* req = event.mutable_llm_request();
  req->set_kind(relay::v1::LLM_REQUEST_KIND_LLM);
  req->set_request_id(request_id_json);
  req->set_members(members);
  return event;
}

inline relay::v1::ClientEvent LlmResponseEvent(const std::string& target,
                                               const std::string& request_id_json,
                                               const std::string& members = "\"response\":\"ok\"") {
  relay::v1::ClientEvent event;
  relay::v1::LlmResponse* resp = event.mutable_llm_response();
  resp->set_target(target);
  resp->set_request_id(request_id_json);
  resp->set_members(members);
  return event;
}

inline relay::v1::ClientEvent PingEvent() {
  relay::v1::ClientEvent event;
  event.mutable_ping();
  return event;
}

// A message type shipped clients send that no relay routes; request_id_json
// empty when it carries none.
inline relay::v1::ClientEvent UnroutedEvent(relay::v1::UnroutedType type,
                                            const std::string& request_id_json = "") {
  relay::v1::ClientEvent event;
  event.mutable_unrouted()->set_type(type);
  event.mutable_unrouted()->set_request_id(request_id_json);
  return event;
}

inline relay::v1::ClientEvent CapabilitiesUpdateEvent(const std::vector<std::string>& caps) {
  relay::v1::ClientEvent event;
  relay::v1::CapabilitiesUpdate* update = event.mutable_capabilities_update();
  for (const std::string& c : caps) update->add_capabilities(c);
  return event;
}

}  // namespace relay::core::testing

#endif  // RELAY_TESTS_CORE_CLIENT_EVENTS_H_
