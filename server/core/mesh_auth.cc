#include "server/core/mesh_auth.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "server/auth/crypto.h"
#include "server/util/log.h"

namespace relay::core {
namespace {

constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kEd25519KeyBytes = 32;

absl::Status Denied(absl::string_view why) { return absl::PermissionDeniedError(why); }

// A token's expiry; absl::Seconds saturates, so far-future tokens do not
// overflow into the past.
absl::Time ExpiryOf(const relay::v1::SignedJoinToken& token) {
  return absl::UnixEpoch() + absl::Seconds(token.expires_at());
}

// Credential identities, compared on node_id takeover.
std::string NodeIdentity(absl::string_view node_id) { return absl::StrCat("node:", node_id); }

}  // namespace

MeshAuth::MeshAuth(store::AuthStore* store, absl::Duration binding_grace)
    : store_(store), binding_grace_(binding_grace) {}

absl::Status MeshAuth::Load(absl::Time now) {
  absl::StatusOr<store::AuthSnapshot> snapshot = store_->Load();
  if (!snapshot.ok()) return snapshot.status();
  for (store::TokenBinding& b : snapshot->bindings) {
    // Meshes do not survive a restart, so every binding is now in grace.
    if (!b.expires_at) b.expires_at = now + binding_grace_;
    std::string id = b.mesh_id;
    bindings_[id] = std::move(b);
  }
  for (store::SignedMesh& m : snapshot->signed_meshes) {
    std::string id = m.mesh_id;
    signed_[id] = std::move(m);
  }
  for (store::UsedNonce& n : snapshot->nonces) {
    auto key = std::make_pair(n.mesh_id, n.nonce);
    nonces_[key] = std::move(n);
  }
  return absl::OkStatus();
}

void MeshAuth::Persist(absl::Status status) {
  // The in-memory state stays authoritative while the process lives; a store
  // failure costs durability across a restart, which the operator must see.
  if (!status.ok()) log::Error("auth store write failed: ", status.message());
}

absl::StatusOr<std::string> MeshAuth::AdmitRegister(const relay::v1::Register& reg,
                                                    bool mesh_live, absl::Time now) {
  const std::string& mesh_id = reg.mesh_id();
  if (reg.signed_token().present()) return AdmitSignedJoin(reg, now);
  if (signed_.contains(mesh_id)) {
    return Denied("this mesh is signed: join with a token signed by its key");
  }

  auto binding = bindings_.find(mesh_id);
  if (binding != bindings_.end()) {
    const std::string hash = auth::SaltedSha256(binding->second.salt, reg.token());
    if (reg.token().empty() || !auth::ConstantTimeEquals(hash, binding->second.hash)) {
      return Denied("this mesh is bound to another token");
    }
    if (!mesh_live && binding->second.expires_at) {
      binding->second.expires_at.reset();  // the mesh lives again
      Persist(store_->PutBinding(binding->second));
    }
    return std::string("token");
  }
  if (mesh_live || reg.token().empty()) {
    // An open mesh stays open while it lives; tokens then only tell
    // connections apart on takeover.
    return absl::StrCat("open:", reg.token());
  }
  store::TokenBinding created;
  created.mesh_id = mesh_id;
  created.salt = auth::RandomBytes(kSaltBytes);
  created.hash = auth::SaltedSha256(created.salt, reg.token());
  Persist(store_->PutBinding(created));
  bindings_[mesh_id] = std::move(created);
  return std::string("token");
}

absl::StatusOr<std::string> MeshAuth::AdmitSignedJoin(const relay::v1::Register& reg,
                                                      absl::Time now) {
  const relay::v1::SignedJoinToken& token = reg.signed_token();
  if (!token.malformed().empty()) return Denied(token.malformed());
  auto mesh = signed_.find(reg.mesh_id());
  if (mesh == signed_.end()) return Denied("this mesh is not registered: no key to check the token");
  if (token.mesh_id() != reg.mesh_id()) return Denied("the token is for another mesh");
  if (ExpiryOf(token) < now) {
    return Denied("the token has expired");
  }
  if (!token.node_id().empty() && token.node_id() != reg.node_id()) {
    return Denied("the token is bound to another node");
  }
  std::optional<std::string> signature = auth::DecodeBase64(token.signature_b64());
  if (!signature || !auth::VerifyEd25519(mesh->second.mesh_key, token.canonical(), *signature)) {
    return Denied("the token's signature does not verify with the mesh key");
  }
  const auto key = std::make_pair(reg.mesh_id(), token.nonce());
  auto used = nonces_.find(key);
  if (used != nonces_.end() && used->second.node_id != reg.node_id()) {
    return Denied("the token's nonce was already used by another node");
  }
  if (used == nonces_.end()) {
    store::UsedNonce record{reg.mesh_id(), token.nonce(), reg.node_id(),
                            ExpiryOf(token)};
    Persist(store_->PutNonce(record));
    nonces_.emplace(key, std::move(record));
  }
  // A node-bound token proves the node. An unbound one proves membership
  // only, so it never matches another connection's credentials: it cannot
  // take a node_id over.
  return token.node_id().empty() ? absl::StrCat("unbound:", ++unbound_joins_)
                                 : NodeIdentity(reg.node_id());
}

absl::StatusOr<std::string> MeshAuth::AdmitRegisterMesh(const relay::v1::RegisterMesh& request,
                                                        absl::string_view url_mesh_id) {
  if (request.mesh_id() != url_mesh_id) {
    return Denied("register_mesh names another mesh than the URL");
  }
  const std::string mesh_id(url_mesh_id);
  if (bindings_.contains(mesh_id)) return Denied("this mesh is bound to a token");

  std::optional<std::string> mesh_key = auth::DecodeBase64(request.mesh_public_key_b64());
  if (!mesh_key || mesh_key->size() != kEd25519KeyBytes) {
    return Denied("mesh_public_key is not a base64 Ed25519 public key");
  }
  std::optional<std::string> verify_key = mesh_key;
  if (!request.node_public_key_b64().empty()) {
    verify_key = auth::DecodeBase64(request.node_public_key_b64());
    if (!verify_key || verify_key->size() != kEd25519KeyBytes) {
      return Denied("node_public_key is not a base64 Ed25519 public key");
    }
  }
  std::optional<std::string> proof = auth::DecodeBase64(request.founder_proof_b64());
  if (!proof || !auth::VerifyEd25519(*verify_key, mesh_id, *proof)) {
    return Denied("founder_proof is not a valid signature of the mesh id");
  }

  const std::string& node_id = request.peer().node_id();
  auto existing = signed_.find(mesh_id);
  if (existing != signed_.end()) {
    if (!auth::ConstantTimeEquals(existing->second.mesh_key, *mesh_key)) {
      return Denied("this mesh is registered with another key");
    }
    // The mesh key is public: re-proving needs the mesh key itself or the
    // node key this founder proved with before, not any fresh node key.
    bool known_key = auth::ConstantTimeEquals(*verify_key, existing->second.mesh_key);
    for (const store::Founder& f : existing->second.founders) {
      known_key = known_key || (f.node_id == node_id &&
                                auth::ConstantTimeEquals(*verify_key, f.verify_key));
    }
    if (!known_key) {
      return Denied("only the mesh key or this founder's own node key can prove the mesh again");
    }
  }
  store::SignedMesh& mesh = signed_[mesh_id];
  mesh.mesh_id = mesh_id;
  mesh.mesh_key = *mesh_key;
  bool known = false;
  for (store::Founder& f : mesh.founders) {
    if (f.node_id == node_id) {
      f.verify_key = *verify_key;
      known = true;
    }
  }
  if (!known) mesh.founders.push_back(store::Founder{node_id, *verify_key});
  Persist(store_->PutSignedMesh(mesh));
  return NodeIdentity(node_id);
}

void MeshAuth::MeshEmptied(const std::string& mesh_id, absl::Time now) {
  auto binding = bindings_.find(mesh_id);
  if (binding == bindings_.end()) return;
  binding->second.expires_at = now + binding_grace_;
  Persist(store_->PutBinding(binding->second));
}

void MeshAuth::Expire(absl::Time now) {
  for (auto it = bindings_.begin(); it != bindings_.end();) {
    if (it->second.expires_at && *it->second.expires_at < now) {
      Persist(store_->DeleteBinding(it->first));
      bindings_.erase(it++);
    } else {
      ++it;
    }
  }
  bool expired_nonce = false;
  for (auto it = nonces_.begin(); it != nonces_.end();) {
    if (it->second.expires_at < now) {
      it = nonces_.erase(it);
      expired_nonce = true;
    } else {
      ++it;
    }
  }
  if (expired_nonce) Persist(store_->DeleteNoncesExpiredBy(now));
}

}  // namespace relay::core
