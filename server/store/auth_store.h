// AuthStore: where mesh authentication state that must survive a restart,
// or be shared by several relays, lives (token bindings, signed meshes and
// their founders, used join-token nonces). MeshAuth keeps a cache in memory
// and asks the store whenever a record is created or consumed.
//
// The operations are asynchronous so that a store behind a network (NATS
// JetStream KV, later) fits: each takes a completion callback, called
// exactly once, either inline (before the call returns, on the caller's
// thread) or later: on any thread (the store's own), or on the caller's
// thread as a task of its own (posted to its CoreExecutor, as NatsAuthStore
// does), never from inside another of the caller's calls. The caller brings
// an answer from another thread back to its own (MeshAuth posts it through
// a CoreExecutor) and takes one on its own thread as it comes.
//
// Admission-path operations are conditional, so that a shared store decides
// races authoritatively: BindIfUnbound, ClaimSignedMesh, UseNonceOnce (and
// LookupMesh to read a mesh the caller does not hold). The others are
// writes nobody waits for; their callback only reports a failure.
//
// Two implementations: MemoryAuthStore (keeps nothing, answers inline; the
// default when no RELAY_DATA_DIR is set) and SqliteAuthStore (relay.db, one
// worker thread).
#ifndef RELAY_SERVER_STORE_AUTH_STORE_H_
#define RELAY_SERVER_STORE_AUTH_STORE_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace relay::store {

struct TokenBinding {
  std::string mesh_id;
  std::string salt;  // raw bytes
  std::string hash;  // SHA-256(salt || token), raw bytes
  // Set once the mesh is empty: the binding is forgotten after it.
  std::optional<absl::Time> expires_at;
  // When the first token bound the mesh (relayctl meshes show); InfinitePast:
  // unknown (a record from before it was kept).
  absl::Time bound_at = absl::InfinitePast();
};

// Which binding a DeleteBinding removes: the one with `hash` and, when
// `expired_by` is set, only one whose grace had ended by then. A binding
// revived or replaced since the caller decided (by another relay instance,
// or another process on the same relay.db) is not the one decided on, and
// stays.
struct BindingRemoval {
  std::string hash;
  std::optional<absl::Time> expired_by;

  bool Matches(const TokenBinding& binding) const {
    return binding.hash == hash &&
           (!expired_by || (binding.expires_at && *binding.expires_at <= *expired_by));
  }
};

struct Founder {
  std::string node_id;
  std::string verify_key;  // raw Ed25519 public key that proved the founding
};

struct SignedMesh {
  std::string mesh_id;
  std::string mesh_key;  // raw Ed25519 public key that signs join tokens
  std::vector<Founder> founders;
  // Last join or founding, as last written (at most a day stale); the mesh
  // is forgotten SIGNED_MESH_TTL_DAYS after it. InfinitePast: unknown (a
  // row from before it was recorded).
  absl::Time last_used_at = absl::InfinitePast();
};

struct UsedNonce {
  std::string mesh_id;
  std::string nonce;
  std::string node_id;    // the node that used it
  absl::Time expires_at;  // the token's expiry: kept until then
};

struct AuthSnapshot {
  std::vector<TokenBinding> bindings;
  std::vector<SignedMesh> signed_meshes;
  std::vector<UsedNonce> nonces;
};

// What the store holds for one mesh: nothing (open, or unknown), a token
// binding, or a signed mesh. An authoritative store never holds both.
struct MeshAuthState {
  std::optional<TokenBinding> binding;
  std::optional<SignedMesh> signed_mesh;
};

// BindIfUnbound's answer.
struct BindResult {
  bool created = false;  // this claim made the binding
  // The mesh after the claim: the winner's binding (this one when created),
  // or the signed mesh that made binding impossible.
  MeshAuthState state;
};

// A register_mesh: found `proposed.mesh_id` with `proposed.mesh_key` and
// `founder`, or, when it is signed with that key already, add `founder` or
// save its new verify key (the checks of CheckFounderClaim).
struct SignedMeshClaim {
  // The mesh as the caller would hold it after the claim (its own view with
  // `founder` applied; last_used_at is now). A store that keeps nothing
  // answers with it.
  SignedMesh proposed;
  Founder founder;
  std::size_t max_founders = 64;
  // The caller holds no such mesh and expects to found it. Only a store that
  // keeps nothing answers by it; the others know.
  bool founding = true;
};

enum class SignedMeshOutcome {
  kFounded,       // the mesh did not exist: it does now, with `founder`
  kFounderSaved,  // it existed with this key: `founder` added or updated
  kBound,         // the mesh is bound to a token: nothing changed
  kOtherKey,      // signed with another mesh key: nothing changed
  kUnprovenKey,   // the verify key is neither the mesh key nor this founder's own
  kFoundersFull,  // a new founder, and the mesh has max_founders already
};

struct SignedMeshClaimResult {
  SignedMeshOutcome outcome = SignedMeshOutcome::kFounded;
  MeshAuthState state;  // the mesh after the claim
};

// UseNonceOnce's answer.
struct NonceResult {
  bool created = false;  // this use recorded the nonce
  // Who holds the nonce now: this use's record when created, else the
  // earlier one (the same node reconnecting, or another node).
  UsedNonce holder;
};

// The checks a founder claim on an existing signed mesh must pass; one
// function so that every store, and MeshAuth's cache, apply the same rule.
// The mesh key is public: re-proving needs the mesh key itself or the node
// key this founder proved with before. Keys are public, so plain equality.
inline SignedMeshOutcome CheckFounderClaim(const SignedMesh& existing, absl::string_view mesh_key,
                                           const Founder& founder, std::size_t max_founders) {
  if (existing.mesh_key != mesh_key) return SignedMeshOutcome::kOtherKey;
  bool known_key = founder.verify_key == existing.mesh_key;
  bool listed = false;
  for (const Founder& f : existing.founders) {
    if (f.node_id != founder.node_id) continue;
    listed = true;
    known_key = known_key || f.verify_key == founder.verify_key;
  }
  if (!known_key) return SignedMeshOutcome::kUnprovenKey;
  if (!listed && existing.founders.size() >= max_founders) return SignedMeshOutcome::kFoundersFull;
  return SignedMeshOutcome::kFounderSaved;
}

// `mesh` with `founder` listed (its verify key replaced when listed).
inline SignedMesh WithFounder(SignedMesh mesh, const Founder& founder) {
  for (Founder& f : mesh.founders) {
    if (f.node_id == founder.node_id) {
      f.verify_key = founder.verify_key;
      return mesh;
    }
  }
  mesh.founders.push_back(founder);
  return mesh;
}

class AuthStore {
 public:
  template <typename T>
  using Done = std::function<void(absl::StatusOr<T>)>;
  using WriteDone = std::function<void(absl::Status)>;

  virtual ~AuthStore() = default;

  // Everything kept, for MeshAuth's cache at start-up. Blocks: call it
  // before serving, never on the event loop.
  virtual absl::StatusOr<AuthSnapshot> Load() = 0;

  // True when other relay instances write to this store too (cluster mode):
  // what MeshAuth remembers may then be stale, so it asks the store before
  // deciding each registration instead of deciding from memory.
  virtual bool shared() const { return false; }

  // --- conditional operations (a registration waits for them) -------------

  // Records `binding` unless the mesh has a binding that is not past its
  // grace at `now`, or is signed; answers with the mesh after.
  virtual void BindIfUnbound(TokenBinding binding, absl::Time now, Done<BindResult> done) = 0;
  // Founds a signed mesh or updates a founder of one (SignedMeshClaim).
  virtual void ClaimSignedMesh(SignedMeshClaim claim, Done<SignedMeshClaimResult> done) = 0;
  // Records `nonce` unless the mesh's nonce is held already by a use whose
  // token has not expired at `now`; answers with who holds it.
  virtual void UseNonceOnce(UsedNonce nonce, absl::Time now, Done<NonceResult> done) = 0;
  // What the store holds for `mesh_id`.
  virtual void LookupMesh(std::string mesh_id, Done<MeshAuthState> done) = 0;

  // --- writes nobody waits for (`done` reports the outcome) -----------------

  // A binding's grace: starts (a time) or stops (nullopt, the mesh lives).
  virtual void SetBindingExpiry(std::string mesh_id, std::optional<absl::Time> expires_at,
                                WriteDone done) = 0;
  // Removes the binding of `mesh_id` if it is still the one `removal`
  // describes; otherwise (and when there is none) changes nothing.
  virtual void DeleteBinding(std::string mesh_id, BindingRemoval removal, WriteDone done) = 0;
  // A signed mesh's last use (its time-to-live counts from it).
  virtual void TouchSignedMesh(std::string mesh_id, absl::Time last_used_at, WriteDone done) = 0;
  // Removes the signed mesh, its founders and its used nonces; with
  // `unused_since`, only if its last use (as stored) is no later: one used
  // since through another relay instance, or another process on the same
  // relay.db, stays.
  virtual void DeleteSignedMesh(std::string mesh_id, std::optional<absl::Time> unused_since,
                                WriteDone done) = 0;
  virtual void DeleteNoncesExpiredBy(absl::Time now, WriteDone done) = 0;
};

// Keeps nothing and answers inline: for one MeshAuth (one relay process),
// whose memory is then the whole truth. MeshAuth asks only about records its
// memory does not hold, so every claim is won, with the caller's own
// proposal, and every lookup finds nothing. Not a shared store: two
// MeshAuths on one MemoryAuthStore would not see each other's records.
class MemoryAuthStore final : public AuthStore {
 public:
  absl::StatusOr<AuthSnapshot> Load() override { return AuthSnapshot{}; }
  void BindIfUnbound(TokenBinding binding, absl::Time, Done<BindResult> done) override {
    BindResult result;
    result.created = true;
    result.state.binding = std::move(binding);
    done(std::move(result));
  }
  void ClaimSignedMesh(SignedMeshClaim claim, Done<SignedMeshClaimResult> done) override {
    SignedMeshClaimResult result;
    result.outcome =
        claim.founding ? SignedMeshOutcome::kFounded : SignedMeshOutcome::kFounderSaved;
    result.state.signed_mesh = std::move(claim.proposed);
    done(std::move(result));
  }
  void UseNonceOnce(UsedNonce nonce, absl::Time, Done<NonceResult> done) override {
    done(NonceResult{true, std::move(nonce)});
  }
  void LookupMesh(std::string, Done<MeshAuthState> done) override { done(MeshAuthState{}); }
  void SetBindingExpiry(std::string, std::optional<absl::Time>, WriteDone done) override {
    done(absl::OkStatus());
  }
  void DeleteBinding(std::string, BindingRemoval, WriteDone done) override {
    done(absl::OkStatus());
  }
  void TouchSignedMesh(std::string, absl::Time, WriteDone done) override { done(absl::OkStatus()); }
  void DeleteSignedMesh(std::string, std::optional<absl::Time>, WriteDone done) override {
    done(absl::OkStatus());
  }
  void DeleteNoncesExpiredBy(absl::Time, WriteDone done) override { done(absl::OkStatus()); }
};

}  // namespace relay::store

#endif  // RELAY_SERVER_STORE_AUTH_STORE_H_
