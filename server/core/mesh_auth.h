// MeshAuth: who may register into a mesh (docs/security.md). Three levels,
// decided by a mesh's first registrant:
//   open        - no token: anyone may join;
//   token-bound - a string token: later registrants must present the same
//                 one (salted SHA-256, constant-time compare); the binding
//                 outlives the mesh's last peer by a grace period;
//   signed      - register_mesh proves an Ed25519 mesh key; members join
//                 with tokens signed by it (expiry, node binding, nonces).
// Keeps its state in memory and writes it through to an AuthStore so it
// survives restarts when a data directory is configured.
//
// Every record it keeps is bounded (CoreConfig): token bindings, signed
// meshes and used nonces together by max_auth_records, their creation per
// client IP per minute, nonces per mesh, nonce bytes and token lifetime.
// Records leave through time-ordered queues, never a walk over all of them.
//
// Threading: core thread only, like RelayCore.
#ifndef RELAY_SERVER_CORE_MESH_AUTH_H_
#define RELAY_SERVER_CORE_MESH_AUTH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "relay/v1/relay.pb.h"
#include "server/core/core_config.h"
#include "server/core/core_executor.h"
#include "server/core/expiry_queue.h"
#include "server/core/limit.h"
#include "server/store/auth_store.h"

namespace relay::core {

// What an admitted registration proved.
struct Admission {
  // Identity compared on node_id takeover: only an equal one may take over.
  std::string credential;
  // True when the credential is a secret or a key (a bound mesh's token, a
  // node-bound join token, a founder's proof); false in an open mesh, where
  // an equal credential proves nothing and a takeover must first find the
  // holder gone (RelayCore's liveness probe).
  bool proves_node = false;
};

class MeshAuth {
 public:
  // `store` must outlive MeshAuth, and so must `hits` (where refusals by a
  // bound are counted) when given. Reads the grace period and every bound
  // from `config`.
  // `executor` (optional) brings a store's answers back to the core thread.
  MeshAuth(store::AuthStore* store, const CoreConfig& config, LimitHits* hits = nullptr,
           CoreExecutor* executor = nullptr);

  // Loads persisted state; call once before use. Bindings of meshes that
  // were live when the relay stopped start their grace at `now`.
  absl::Status Load(absl::Time now);

  // How an admission ends. Called exactly once, on the core thread: inline
  // (from inside the Admit call) when memory decides, later (through the
  // CoreExecutor) when the store must answer first; never after MeshAuth is
  // destroyed.
  using AdmissionDone = std::function<void(absl::StatusOr<Admission>)>;

  // May `reg` register into reg.mesh_id()? `mesh_live` tells whether the
  // mesh has members now (anywhere); `client_ip` is charged for records it
  // creates. Errors: PermissionDenied (auth_failed: refuse and close),
  // Unavailable (no room for a new record, or the store cannot answer:
  // auth_unavailable), ResourceExhausted (this IP created too many records
  // this minute: rate_limited); each with the reason to tell the client.
  void AdmitRegister(const relay::v1::Register& reg, bool mesh_live, absl::string_view client_ip,
                     absl::Time now, AdmissionDone done);

  // A founder's register_mesh for the mesh in the URL. A mesh that is live
  // and not signed (open, or bound to a token) cannot be signed. Errors as
  // AdmitRegister's.
  void AdmitRegisterMesh(const relay::v1::RegisterMesh& request, absl::string_view url_mesh_id,
                         bool mesh_live, absl::string_view client_ip, absl::Time now,
                         AdmissionDone done);

  // The mesh lost its last peer: a token binding starts its grace period and
  // a signed mesh its time-to-live.
  void MeshEmptied(const std::string& mesh_id, absl::Time now);

  // Forgets bindings past their grace, nonces past their token's expiry and
  // signed meshes unused for the TTL (`mesh_live` meshes are in use), and
  // the per-IP creation counts of past minutes. Costs what it removes.
  void Expire(absl::Time now, const std::function<bool(const std::string&)>& mesh_live);

  std::size_t signed_meshes() const { return signed_.size(); }
  std::size_t bindings() const { return bindings_.size(); }
  std::size_t nonces() const { return nonces_.size(); }
  std::size_t records() const { return bindings_.size() + signed_.size() + nonces_.size(); }

 private:
  using NonceKey = std::pair<std::string, std::string>;  // (mesh_id, nonce)

  absl::StatusOr<Admission> DecideRegister(const relay::v1::Register& reg, bool mesh_live,
                                           absl::string_view client_ip, absl::Time now);
  absl::StatusOr<Admission> DecideRegisterMesh(const relay::v1::RegisterMesh& request,
                                               absl::string_view url_mesh_id, bool mesh_live,
                                               absl::string_view client_ip, absl::Time now);
  absl::StatusOr<Admission> AdmitSignedJoin(const relay::v1::Register& reg,
                                            absl::string_view client_ip, absl::Time now);
  // OK when `client_ip` may create one more record now.
  absl::Status CheckRoomForRecord(absl::string_view client_ip, absl::Time now) const;
  void ChargeRecord(absl::string_view client_ip, absl::Time now);
  void TouchSigned(store::SignedMesh& mesh, absl::Time now);
  void AddNonce(store::UsedNonce record);
  void ForgetSigned(const std::string& mesh_id);
  void Persist(absl::Status status);
  void Hit(Limit limit) const {
    if (hits_ != nullptr) hits_->Add(limit);
  }

  store::AuthStore* const store_;
  LimitHits* const hits_;
  CoreExecutor* const executor_;
  const CoreConfig config_;
  absl::flat_hash_map<std::string, store::TokenBinding> bindings_;
  absl::flat_hash_map<std::string, store::SignedMesh> signed_;
  // (mesh_id, nonce) -> who used it and until when; ordered so that one
  // mesh's nonces are one range.
  std::map<NonceKey, store::UsedNonce> nonces_;
  absl::flat_hash_map<std::string, std::size_t> nonces_per_mesh_;

  ExpiryQueue<std::string> binding_expiry_;  // bindings in their grace
  ExpiryQueue<std::string> signed_expiry_;   // signed meshes by last use + TTL
  // Nonces by their token's expiry; points at nonces_' keys (stable).
  std::set<std::pair<absl::Time, const NonceKey*>> nonce_expiry_;

  struct Window {
    absl::Time started;
    std::size_t created = 0;
  };
  absl::flat_hash_map<std::string, Window> created_by_ip_;  // this minute's
  ExpiryQueue<std::string> window_expiry_;

  std::uint64_t unbound_joins_ = 0;  // makes unbound-token identities unique
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_MESH_AUTH_H_
