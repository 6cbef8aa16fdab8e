#include "server/core/mesh_auth.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "server/auth/crypto.h"
#include "server/util/log.h"

namespace relay::core {
namespace {

constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kEd25519KeyBytes = 32;
// How stale a signed mesh's persisted last use may get before it is written
// again: its TTL is counted in days, a write per join would be waste.
constexpr absl::Duration kLastUsePersistInterval = absl::Hours(24);
// The per-IP creation budget's window.
constexpr absl::Duration kCreationWindow = absl::Minutes(1);

absl::Status Denied(absl::string_view why) { return absl::PermissionDeniedError(why); }

// A token's expiry; absl::Seconds saturates, so far-future tokens do not
// overflow into the past.
absl::Time ExpiryOf(const relay::v1::SignedJoinToken& token) {
  return absl::UnixEpoch() + absl::Seconds(token.expires_at());
}

// Credential identities, compared on node_id takeover.
std::string NodeIdentity(absl::string_view node_id) { return absl::StrCat("node:", node_id); }

std::string DaysText(absl::Duration d) {
  const double days = absl::ToDoubleHours(d) / 24;
  return days == static_cast<double>(static_cast<std::int64_t>(days))
             ? absl::StrCat(static_cast<std::int64_t>(days), " days")
             : absl::StrCat(absl::ToInt64Seconds(d), " seconds");
}

}  // namespace

MeshAuth::MeshAuth(store::AuthStore* store, const CoreConfig& config, LimitHits* hits,
                   CoreExecutor* executor)
    : store_(store), hits_(hits), executor_(executor), config_(config) {}

absl::Status MeshAuth::Load(absl::Time now) {
  absl::StatusOr<store::AuthSnapshot> snapshot = store_->Load();
  if (!snapshot.ok()) return snapshot.status();
  for (store::TokenBinding& b : snapshot->bindings) {
    // Meshes do not survive a restart, so every binding is now in grace.
    if (!b.expires_at) b.expires_at = now + config_.mesh_binding_grace;
    binding_expiry_.Schedule(b.mesh_id, *b.expires_at);
    std::string id = b.mesh_id;
    bindings_[id] = std::move(b);
  }
  for (store::SignedMesh& m : snapshot->signed_meshes) {
    // Rows written before last use was recorded count as used now.
    if (m.last_used_at == absl::InfinitePast()) m.last_used_at = now;
    signed_expiry_.Schedule(m.mesh_id, m.last_used_at + config_.signed_mesh_ttl);
    std::string id = m.mesh_id;
    signed_[id] = std::move(m);
  }
  for (store::UsedNonce& n : snapshot->nonces) {
    // Written before token lifetimes were bounded: a token valid past the
    // bound is refused now whatever its nonce, so its nonce need not outlive it.
    n.expires_at = std::min(n.expires_at, now + config_.max_join_token_lifetime);
    AddNonce(std::move(n));
  }
  return absl::OkStatus();
}

void MeshAuth::Persist(absl::Status status) {
  // The in-memory state stays authoritative while the process lives; a store
  // failure costs durability across a restart, which the operator must see.
  if (!status.ok()) log::Error("auth store write failed: ", status.message());
}

absl::Status MeshAuth::CheckRoomForRecord(absl::string_view client_ip, absl::Time now) const {
  if (records() >= config_.max_auth_records) {
    Hit(Limit::kAuthRecords);
    // The first refusal and every 100th: a client retrying must not flood the log.
    if (hits_ == nullptr || hits_->Get(Limit::kAuthRecords) % 100 == 1) {
      log::Event(log::Level::kWarn, "auth_records_full").Uint("limit", config_.max_auth_records);
    }
    return absl::UnavailableError(
        absl::StrCat("the relay holds its maximum of ", config_.max_auth_records,
                     " authentication records and cannot protect a new mesh or accept a new "
                     "join token now; retry later"));
  }
  auto it = created_by_ip_.find(client_ip);
  if (it != created_by_ip_.end() && now - it->second.started < kCreationWindow &&
      it->second.created >= config_.auth_records_per_ip_per_minute) {
    Hit(Limit::kAuthRecordsPerIp);
    return absl::ResourceExhaustedError(
        absl::StrCat("this address created ", config_.auth_records_per_ip_per_minute,
                     " protected meshes or join-token uses in the last minute; retry in a minute"));
  }
  return absl::OkStatus();
}

void MeshAuth::ChargeRecord(absl::string_view client_ip, absl::Time now) {
  Window& w = created_by_ip_[client_ip];
  if (w.created == 0 || now - w.started >= kCreationWindow) {
    w.started = now;
    w.created = 0;
    window_expiry_.Schedule(std::string(client_ip), now + kCreationWindow);
  }
  ++w.created;
}

void MeshAuth::TouchSigned(store::SignedMesh& mesh, absl::Time now) {
  signed_expiry_.Schedule(mesh.mesh_id, now + config_.signed_mesh_ttl);
  if (now - mesh.last_used_at >= kLastUsePersistInterval) {
    mesh.last_used_at = now;
    Persist(store_->PutSignedMesh(mesh));
  }
}

void MeshAuth::AddNonce(store::UsedNonce record) {
  NonceKey key(record.mesh_id, record.nonce);
  const absl::Time expires_at = record.expires_at;
  auto [it, inserted] = nonces_.emplace(std::move(key), std::move(record));
  if (!inserted) return;
  ++nonces_per_mesh_[it->first.first];
  nonce_expiry_.emplace(expires_at, &it->first);
}

void MeshAuth::AdmitRegister(const relay::v1::Register& reg, bool mesh_live,
                             absl::string_view client_ip, absl::Time now, AdmissionDone done) {
  done(DecideRegister(reg, mesh_live, client_ip, now));
}

void MeshAuth::AdmitRegisterMesh(const relay::v1::RegisterMesh& request,
                                 absl::string_view url_mesh_id, bool mesh_live,
                                 absl::string_view client_ip, absl::Time now, AdmissionDone done) {
  done(DecideRegisterMesh(request, url_mesh_id, mesh_live, client_ip, now));
}

absl::StatusOr<Admission> MeshAuth::DecideRegister(const relay::v1::Register& reg, bool mesh_live,
                                                   absl::string_view client_ip, absl::Time now) {
  const std::string& mesh_id = reg.mesh_id();
  if (reg.signed_token().present()) return AdmitSignedJoin(reg, client_ip, now);
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
      binding_expiry_.Cancel(mesh_id);
      Persist(store_->PutBinding(binding->second));
    }
    return Admission{"token", /*proves_node=*/true};
  }
  if (mesh_live || reg.token().empty()) {
    // An open mesh stays open while it lives; tokens then only tell
    // connections apart on takeover, and prove nothing: anyone could have
    // sent the same one first.
    return Admission{absl::StrCat("open:", reg.token()), /*proves_node=*/false};
  }
  if (absl::Status room = CheckRoomForRecord(client_ip, now); !room.ok()) return room;
  store::TokenBinding created;
  created.mesh_id = mesh_id;
  created.salt = auth::RandomBytes(kSaltBytes);
  created.hash = auth::SaltedSha256(created.salt, reg.token());
  Persist(store_->PutBinding(created));
  bindings_[mesh_id] = std::move(created);
  ChargeRecord(client_ip, now);
  return Admission{"token", /*proves_node=*/true};
}

absl::StatusOr<Admission> MeshAuth::AdmitSignedJoin(const relay::v1::Register& reg,
                                                    absl::string_view client_ip, absl::Time now) {
  const relay::v1::SignedJoinToken& token = reg.signed_token();
  if (!token.malformed().empty()) return Denied(token.malformed());
  auto mesh = signed_.find(reg.mesh_id());
  if (mesh == signed_.end()) return Denied("this mesh is not registered: no key to check the token");
  if (token.mesh_id() != reg.mesh_id()) return Denied("the token is for another mesh");
  if (token.nonce().size() > config_.max_nonce_bytes) {
    Hit(Limit::kNonceBytes);
    return Denied(
        absl::StrCat("the token's nonce is longer than ", config_.max_nonce_bytes, " bytes"));
  }
  if (ExpiryOf(token) < now) {
    return Denied("the token has expired");
  }
  // A nonce is kept until its token expires: a token valid for decades
  // would pin it for decades.
  const bool long_from_issue =
      token.has_issued_at() &&
      absl::Seconds(token.expires_at() - token.issued_at()) > config_.max_join_token_lifetime;
  if (long_from_issue || ExpiryOf(token) - now > config_.max_join_token_lifetime) {
    Hit(Limit::kTokenLifetime);
    return Denied(absl::StrCat("the token is valid for longer than this relay's limit of ",
                               DaysText(config_.max_join_token_lifetime)));
  }
  if (!token.node_id().empty() && token.node_id() != reg.node_id()) {
    return Denied("the token is bound to another node");
  }
  std::optional<std::string> signature = auth::DecodeBase64(token.signature_b64());
  if (!signature || !auth::VerifyEd25519(mesh->second.mesh_key, token.canonical(), *signature)) {
    return Denied("the token's signature does not verify with the mesh key");
  }
  const NonceKey key(reg.mesh_id(), token.nonce());
  auto used = nonces_.find(key);
  if (used != nonces_.end() && used->second.node_id != reg.node_id()) {
    return Denied("the token's nonce was already used by another node");
  }
  if (used == nonces_.end()) {
    auto per_mesh = nonces_per_mesh_.find(reg.mesh_id());
    if (per_mesh != nonces_per_mesh_.end() && per_mesh->second >= config_.max_nonces_per_mesh) {
      Hit(Limit::kNoncesPerMesh);
      return Denied(absl::StrCat("this mesh has ", config_.max_nonces_per_mesh,
                                 " join tokens in use, its maximum; reuse a token or wait for "
                                 "one to expire"));
    }
    if (absl::Status room = CheckRoomForRecord(client_ip, now); !room.ok()) return room;
    store::UsedNonce record{reg.mesh_id(), token.nonce(), reg.node_id(), ExpiryOf(token)};
    Persist(store_->PutNonce(record));
    AddNonce(std::move(record));
    ChargeRecord(client_ip, now);
  }
  TouchSigned(mesh->second, now);
  // A node-bound token proves the node. An unbound one proves membership
  // only, so it never matches another connection's credentials: it cannot
  // take a node_id over.
  if (token.node_id().empty()) {
    return Admission{absl::StrCat("unbound:", ++unbound_joins_), /*proves_node=*/true};
  }
  return Admission{NodeIdentity(reg.node_id()), /*proves_node=*/true};
}

absl::StatusOr<Admission> MeshAuth::DecideRegisterMesh(const relay::v1::RegisterMesh& request,
                                                       absl::string_view url_mesh_id,
                                                       bool mesh_live, absl::string_view client_ip,
                                                       absl::Time now) {
  if (request.mesh_id() != url_mesh_id) {
    return Denied("register_mesh names another mesh than the URL");
  }
  const std::string mesh_id(url_mesh_id);
  if (bindings_.contains(mesh_id)) return Denied("this mesh is bound to a token");
  auto existing = signed_.find(mesh_id);
  // Signing a live open mesh would lock its members out under a stranger's
  // key: an open mesh stays open while it lives.
  if (existing == signed_.end() && mesh_live) {
    return Denied("this mesh is live and open; it cannot be signed while it has peers");
  }

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
  } else if (absl::Status room = CheckRoomForRecord(client_ip, now); !room.ok()) {
    return room;
  }
  const bool created = existing == signed_.end();
  store::SignedMesh& mesh = signed_[mesh_id];
  bool known = false;
  for (store::Founder& f : mesh.founders) {
    if (f.node_id == node_id) {
      f.verify_key = *verify_key;
      known = true;
    }
  }
  if (!known && mesh.founders.size() >= config_.max_founders_per_mesh) {
    Hit(Limit::kFoundersPerMesh);
    return Denied(
        absl::StrCat("this mesh has ", config_.max_founders_per_mesh, " founders, its maximum"));
  }
  mesh.mesh_id = mesh_id;
  mesh.mesh_key = *mesh_key;
  mesh.last_used_at = now;
  if (!known) mesh.founders.push_back(store::Founder{node_id, *verify_key});
  Persist(store_->PutSignedMesh(mesh));
  signed_expiry_.Schedule(mesh_id, now + config_.signed_mesh_ttl);
  if (created) ChargeRecord(client_ip, now);
  return Admission{NodeIdentity(node_id), /*proves_node=*/true};
}

void MeshAuth::MeshEmptied(const std::string& mesh_id, absl::Time now) {
  if (auto mesh = signed_.find(mesh_id); mesh != signed_.end()) TouchSigned(mesh->second, now);
  auto binding = bindings_.find(mesh_id);
  if (binding == bindings_.end()) return;
  binding->second.expires_at = now + config_.mesh_binding_grace;
  binding_expiry_.Schedule(mesh_id, *binding->second.expires_at);
  Persist(store_->PutBinding(binding->second));
}

void MeshAuth::ForgetSigned(const std::string& mesh_id) {
  signed_.erase(mesh_id);
  // Its nonces were checked against its key; a new owner brings another.
  auto first = nonces_.lower_bound(NonceKey(mesh_id, std::string()));
  auto it = first;
  while (it != nonces_.end() && it->first.first == mesh_id) {
    nonce_expiry_.erase({it->second.expires_at, &it->first});
    ++it;
  }
  nonces_.erase(first, it);
  nonces_per_mesh_.erase(mesh_id);
  Persist(store_->DeleteSignedMesh(mesh_id));
  log::Event(log::Level::kInfo, "signed_mesh_expired")
      .Double("ttl_days", absl::ToDoubleHours(config_.signed_mesh_ttl) / 24);
}

void MeshAuth::Expire(absl::Time now, const std::function<bool(const std::string&)>& mesh_live) {
  for (const std::string& mesh_id : binding_expiry_.PopDue(now)) {
    Persist(store_->DeleteBinding(mesh_id));
    bindings_.erase(mesh_id);
  }
  for (const std::string& mesh_id : signed_expiry_.PopDue(now)) {
    if (mesh_live(mesh_id)) {
      signed_expiry_.Schedule(mesh_id, now + config_.signed_mesh_ttl);  // in use now
    } else {
      ForgetSigned(mesh_id);
    }
  }
  bool expired_nonce = false;
  while (!nonce_expiry_.empty() && nonce_expiry_.begin()->first < now) {
    const NonceKey* key = nonce_expiry_.begin()->second;
    nonce_expiry_.erase(nonce_expiry_.begin());
    auto per_mesh = nonces_per_mesh_.find(key->first);
    if (per_mesh != nonces_per_mesh_.end() && --per_mesh->second == 0) {
      nonces_per_mesh_.erase(per_mesh);
    }
    nonces_.erase(nonces_.find(*key));  // find first: `key` lives in the node
    expired_nonce = true;
  }
  if (expired_nonce) Persist(store_->DeleteNoncesExpiredBy(now));
  for (const std::string& ip : window_expiry_.PopDue(now)) created_by_ip_.erase(ip);
}

}  // namespace relay::core
