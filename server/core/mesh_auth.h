// MeshAuth: who may register into a mesh (docs/security.md). Three levels,
// decided by a mesh's first registrant:
//   open        - no token: anyone may join;
//   token-bound - a string token: later registrants must present the same
//                 one (salted SHA-256, constant-time compare); the binding
//                 outlives the mesh's last peer by a grace period;
//   signed      - register_mesh proves an Ed25519 mesh key; members join
//                 with tokens signed by it (expiry, node binding, nonces).
// Keeps its state in memory, as a cache of an AuthStore (which makes it
// survive restarts when a data directory is configured, and may be shared
// by several relays). Whatever creates or consumes a record (a mesh's first
// token binding, founding a signed mesh, a founder's new key, the first use
// of a nonce) completes only on the store's answer, through its conditional
// operations, so that concurrent claims of one record have one winner; so
// does a registration for a mesh memory knows nothing of (the store may).
// A store that fails or cannot answer refuses the registration with
// Unavailable: nothing is admitted by default. Decisions memory can take
// alone (a bound mesh's token, a known nonce, a live open mesh) complete
// inline.
//
// Every record it keeps is bounded (CoreConfig): token bindings, signed
// meshes and used nonces together by max_auth_records, their creation per
// client IP per minute, nonces per mesh, nonce bytes and token lifetime.
// Claims on their way to the store count against those bounds. Records
// leave through time-ordered queues, never a walk over all of them.
//
// Threading: core thread only, like RelayCore. The store may answer on its
// own thread; those answers come back through the CoreExecutor.
#ifndef RELAY_SERVER_CORE_MESH_AUTH_H_
#define RELAY_SERVER_CORE_MESH_AUTH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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
  // Never a secret: an open mesh's unchecked token is kept as its SHA-256
  // ("open:<hex>"), which compares equal exactly when the tokens do.
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
  // from `config`. `executor` brings the store's later answers back to the
  // core thread; it must outlive the store's pending answers. Without one,
  // the store must answer inline or on the core thread (MemoryAuthStore).
  // Later answers come through the executor whenever there is one, so a
  // test's executor decides when they run.
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

  // Cluster mode: whether `mesh_id` has members on any live instance (the
  // cluster's node entries). `done` runs once, inline or on the core
  // thread; an error when nobody can tell now.
  using ClusterLiveness = std::function<void(const std::string& mesh_id,
                                             std::function<void(absl::StatusOr<bool>)> done)>;
  // With it and a shared store, a binding or signed mesh due to go (this
  // instance's memory says so) goes only once neither the cluster (members
  // elsewhere) nor the store (revived, used or re-graced by another
  // instance) says it is in use: memory alone sees only this instance.
  void SetClusterLiveness(ClusterLiveness liveness) { cluster_liveness_ = std::move(liveness); }

  // For the operator (relayctl meshes show): how `mesh_id` admits
  // registrations now, never a secret. With a shared store, the store's
  // answer (memory's copies may lag what other instances did); `done` runs
  // once on the core thread (inline when memory answers), with
  // `unavailable` set when the store could not be read.
  using DescribeDone = std::function<void(relay::v1::MeshAuthInfo)>;
  void Describe(const std::string& mesh_id, absl::Time now, DescribeDone done);

  // Releases the token binding of an empty mesh (relayctl meshes unbind):
  // its next registrant binds it anew, or leaves it open. `mesh_live`: it has
  // members as this instance sees them. `done` runs once on the core thread:
  // OK once the store has deleted it; FailedPrecondition while the mesh has
  // members (here or, in cluster mode, on any instance) or when it is
  // signed; NotFound when it has no binding; Unavailable when the store or
  // the cluster cannot answer.
  void Unbind(const std::string& mesh_id, bool mesh_live, std::function<void(absl::Status)> done);

  std::size_t signed_meshes() const { return signed_.size(); }
  std::size_t bindings() const { return bindings_.size(); }
  std::size_t nonces() const { return nonces_.size(); }
  std::size_t records() const { return bindings_.size() + signed_.size() + nonces_.size(); }

 private:
  using NonceKey = std::pair<std::string, std::string>;  // (mesh_id, nonce)
  // How a decision ends: an answer now, or nullopt when it waits for the
  // store (it is decided again, from memory, once the answer is merged).
  using Decision = std::optional<absl::StatusOr<Admission>>;
  struct Attempt;  // one registration on its way (mesh_auth.cc)
  using AttemptPtr = std::shared_ptr<Attempt>;
  // Claims of one mesh on their way to the store.
  struct Inflight {
    std::size_t claims = 0;        // a token binding or a signed mesh
    std::size_t nonce_claims = 0;  // new nonces of its signed mesh
    // Open admissions of the mesh while claims were out: a claim that
    // answers after one finds the mesh live and open (it went live first).
    std::uint64_t open_grants = 0;
  };

  // Decides `attempt` from memory, or asks the store and decides again
  // when it answers; calls its `done` once either way.
  void Continue(const AttemptPtr& attempt);
  Decision DecideRegister(const AttemptPtr& attempt);
  Decision DecideRegisterMesh(const AttemptPtr& attempt);
  Decision AdmitSignedJoin(const AttemptPtr& attempt);
  // Asks the store about a mesh memory holds nothing of.
  void Lookup(const AttemptPtr& attempt);
  // Runs `call` (one store operation) and, on the core thread, `on_answer`
  // with its answer: its Decision ends the attempt, or nullopt decides again.
  template <typename T>
  void AskStore(const AttemptPtr& attempt,
                std::function<void(std::function<void(absl::StatusOr<T>)>)> call,
                std::function<Decision(absl::StatusOr<T>)> on_answer);
  // The store did not answer an admission: the registration is refused.
  absl::Status StoreFailed(const absl::Status& status);
  // Takes into the cache what the store holds for a mesh memory had not.
  void Merge(const std::string& mesh_id, store::MeshAuthState state, absl::Time now);
  Admission OpenAdmission(const std::string& mesh_id, absl::string_view token);
  void ReleaseInflight(const std::string& mesh_id);
  // OK when `client_ip` may create one more record now.
  absl::Status CheckRoomForRecord(absl::string_view client_ip, absl::Time now) const;
  void ChargeRecord(absl::string_view client_ip, absl::Time now);
  void TouchSigned(store::SignedMesh& mesh, absl::Time now);
  void AddNonce(store::UsedNonce record);
  // Forgets it here and deletes it in the store (with `unused_since`, only
  // if the store's last use is no later).
  void ForgetSigned(const std::string& mesh_id, std::optional<absl::Time> unused_since);
  // Expire's cluster-mode checks, answered later (SetClusterLiveness).
  void ConfirmBindingExpiry(const std::string& mesh_id, absl::Time now);
  void SettleBindingExpiry(const std::string& mesh_id, const std::string& hash, absl::Time now,
                           absl::StatusOr<store::MeshAuthState> stored);
  void ConfirmSignedExpiry(const std::string& mesh_id, absl::Time now);
  // The completion of a write nobody waits for: logs a failure (any thread).
  static store::AuthStore::WriteDone Persisted();
  // `then` as a store callback: run with the answer on the core thread,
  // inline when the store answers on it, else posted through the executor;
  // never after MeshAuth is gone.
  template <typename T>
  std::function<void(T)> OnCoreThread(std::function<void(T)> then) const;
  // What memory holds of `mesh_id`, as a store would answer it.
  store::MeshAuthState MemoryState(const std::string& mesh_id) const;
  // Unbind once nobody is in the mesh, `state` being what the store (or,
  // alone, memory) holds of it.
  void UnbindDecided(const std::string& mesh_id, const store::MeshAuthState& state,
                     std::function<void(absl::Status)> done);
  void Hit(Limit limit) const {
    if (hits_ != nullptr) hits_->Add(limit);
  }

  store::AuthStore* const store_;
  LimitHits* const hits_;
  CoreExecutor* const executor_;
  const CoreConfig config_;
  ClusterLiveness cluster_liveness_;
  // Expires with MeshAuth: a store answer that comes back later is dropped.
  const std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);
  absl::flat_hash_map<std::string, store::TokenBinding> bindings_;
  absl::flat_hash_map<std::string, store::SignedMesh> signed_;
  // (mesh_id, nonce) -> who used it and until when; ordered so that one
  // mesh's nonces are one range.
  std::map<NonceKey, store::UsedNonce> nonces_;
  absl::flat_hash_map<std::string, std::size_t> nonces_per_mesh_;

  // Bindings in their grace, and bindings an admission answered late made
  // or revived: their registrant may have left meanwhile, so at the end of
  // a grace a mesh that is not live lets them go (Expire).
  ExpiryQueue<std::string> binding_expiry_;
  ExpiryQueue<std::string> signed_expiry_;  // signed meshes by last use + TTL
  // Nonces by their token's expiry; points at nonces_' keys (stable).
  std::set<std::pair<absl::Time, const NonceKey*>> nonce_expiry_;

  absl::flat_hash_map<std::string, Inflight> inflight_;  // meshes with claims out
  std::size_t creations_in_flight_ = 0;                  // claims that would each add a record
  std::uint64_t store_failures_ = 0;

  struct Window {
    absl::Time started;
    std::size_t created = 0;
  };
  absl::flat_hash_map<std::string, Window> created_by_ip_;  // this minute's
  ExpiryQueue<std::string> window_expiry_;

  // Makes unbound-token identities unique, also against other instances
  // (the roster compares credentials across instances).
  const std::string unbound_prefix_;
  std::uint64_t unbound_joins_ = 0;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_MESH_AUTH_H_
