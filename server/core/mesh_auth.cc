#include "server/core/mesh_auth.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/auth/crypto.h"
#include "server/core/clock.h"
#include "server/core/text_rules.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::core {
namespace {

constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kEd25519KeyBytes = 32;
// Store round trips one registration may take: a lookup, then a claim. More
// means the store's answers contradict each other; the registration is then
// refused rather than asked again forever.
constexpr int kMaxStoreRounds = 3;

absl::Status Denied(absl::string_view why) { return absl::PermissionDeniedError(why); }

// A token's expiry; absl::Seconds saturates, so far-future tokens do not
// overflow into the past.
absl::Time ExpiryOf(const relay::v1::SignedJoinToken& token) {
  return absl::UnixEpoch() + absl::Seconds(token.expires_at());
}

// Credential identities, compared on node_id takeover.
std::string NodeIdentity(absl::string_view node_id) { return absl::StrCat("node:", node_id); }
// An open mesh's token proves nothing and is compared only for equality:
// its digest serves, and the relay keeps no client secret in clear.
std::string OpenIdentity(absl::string_view token) {
  return absl::StrCat("open:", absl::BytesToHexString(auth::SaltedSha256("", token)));
}

std::string DaysText(absl::Duration d) {
  const double days = absl::ToDoubleHours(d) / 24;
  return days == static_cast<double>(static_cast<std::int64_t>(days))
             ? absl::StrCat(static_cast<std::int64_t>(days), " days")
             : absl::StrCat(absl::ToInt64Seconds(d), " seconds");
}

}  // namespace

// One registration on its way. Shared with the store callbacks it waits
// for; touched on the core thread only.
struct MeshAuth::Attempt {
  bool founding = false;  // register_mesh (request), else register (reg)
  relay::v1::Register reg;
  relay::v1::RegisterMesh request;
  std::string url_mesh_id;
  bool mesh_live = false;
  std::string client_ip;
  absl::Time now;
  AdmissionDone done;
  // What the store answered already, so that deciding again does not ask twice.
  bool looked_up = false;
  int store_rounds = 0;
  // An answer came after the Admit call returned: the registrant may have
  // left meanwhile (RelayCore then drops the admission).
  bool answered_late = false;
};

MeshAuth::MeshAuth(store::AuthStore* store, const CoreConfig& config, LimitHits* hits,
                   CoreExecutor* executor)
    : store_(store),
      hits_(hits),
      executor_(executor),
      config_(config),
      unbound_prefix_(absl::StrCat("unbound:", absl::BytesToHexString(auth::RandomBytes(8)), ":")) {
}

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

store::AuthStore::WriteDone MeshAuth::Persisted() {
  // Nobody waits for these writes (a grace start, an expiry, a last use):
  // a failure costs durability across a restart, which the operator must
  // see. Logging is thread-safe, so this may run on the store's thread.
  return [](absl::Status status) {
    if (!status.ok()) log::Error("auth store write failed: ", status.message());
  };
}

absl::Status MeshAuth::CheckRoomForRecord(absl::string_view client_ip, absl::Time now) const {
  if (records() + creations_in_flight_ >= config_.max_auth_records) {
    Hit(Limit::kAuthRecords);
    // The first refusal and every 100th: a client retrying must not flood the log.
    if (hits_ == nullptr || hits_->Get(Limit::kAuthRecords) % 100 == 1) {
      log::Event(log::Level::kWarn, log::LogEvent::kAuthRecordsFull)
          .Uint("limit", config_.max_auth_records);
    }
    return absl::UnavailableError(
        absl::StrCat("the relay holds its maximum of ", config_.max_auth_records,
                     " authentication records and cannot protect a new mesh or accept a new "
                     "join token now; retry later"));
  }
  auto it = created_by_ip_.find(client_ip);
  if (it != created_by_ip_.end() && now - it->second.started < limits::kAuthRecordCreationWindow &&
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
  if (w.created == 0 || now - w.started >= limits::kAuthRecordCreationWindow) {
    w.started = now;
    w.created = 0;
    window_expiry_.Schedule(std::string(client_ip), now + limits::kAuthRecordCreationWindow);
  }
  ++w.created;
}

void MeshAuth::TouchSigned(store::SignedMesh& mesh, absl::Time now) {
  signed_expiry_.Schedule(mesh.mesh_id, now + config_.signed_mesh_ttl);
  if (now - mesh.last_used_at >= limits::kSignedMeshLastUsePersistInterval) {
    mesh.last_used_at = now;
    store_->TouchSignedMesh(mesh.mesh_id, now, Persisted());
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
  auto attempt = std::make_shared<Attempt>();
  attempt->reg = reg;
  attempt->mesh_live = mesh_live;
  attempt->client_ip = std::string(client_ip);
  attempt->now = now;
  attempt->done = std::move(done);
  Continue(attempt);
}

void MeshAuth::AdmitRegisterMesh(const relay::v1::RegisterMesh& request,
                                 absl::string_view url_mesh_id, bool mesh_live,
                                 absl::string_view client_ip, absl::Time now, AdmissionDone done) {
  auto attempt = std::make_shared<Attempt>();
  attempt->founding = true;
  attempt->request = request;
  attempt->url_mesh_id = std::string(url_mesh_id);
  attempt->mesh_live = mesh_live;
  attempt->client_ip = std::string(client_ip);
  attempt->now = now;
  attempt->done = std::move(done);
  Continue(attempt);
}

void MeshAuth::Continue(const AttemptPtr& attempt) {
  Decision decision = attempt->founding ? DecideRegisterMesh(attempt) : DecideRegister(attempt);
  if (!decision) return;  // the store answers first; Continue runs again then
  AdmissionDone done = std::move(attempt->done);
  attempt->done = nullptr;
  done(*std::move(decision));
}

template <typename T>
std::function<void(T)> MeshAuth::OnCoreThread(std::function<void(T)> then) const {
  const std::thread::id core_thread = std::this_thread::get_id();
  std::weak_ptr<const bool> alive = alive_;
  CoreExecutor* const executor = executor_;
  return [core_thread, alive, executor, then = std::move(then)](T answer) {
    if (std::this_thread::get_id() == core_thread) {
      // Inline, or a store that brings its answers to this thread itself (a
      // task of their own, auth_store.h): posting again would only add a hop.
      if (!alive.expired()) then(std::move(answer));
      return;
    }
    if (executor == nullptr) {
      // Wiring error: a store with its own thread needs an executor.
      log::Error("an auth store answered on another thread and there is no CoreExecutor");
      std::abort();
    }
    executor->Post([alive, then, answer = std::move(answer)]() mutable {
      if (!alive.expired()) then(std::move(answer));
    });
  };
}

template <typename T>
void MeshAuth::AskStore(const AttemptPtr& attempt,
                        std::function<void(std::function<void(absl::StatusOr<T>)>)> call,
                        std::function<Decision(absl::StatusOr<T>)> on_answer) {
  // What to do with the answer, on the core thread.
  auto handle = [this, attempt, on_answer = std::move(on_answer)](absl::StatusOr<T> answer,
                                                                  bool late) {
    attempt->answered_late = attempt->answered_late || late;
    Decision decision = on_answer(std::move(answer));
    if (!decision) {
      Continue(attempt);
      return;
    }
    AdmissionDone done = std::move(attempt->done);
    attempt->done = nullptr;
    done(*std::move(decision));
  };
  if (++attempt->store_rounds > kMaxStoreRounds) {
    log::Error("auth store answers did not settle a registration in ", kMaxStoreRounds, " rounds");
    handle(absl::InternalError("the store's answers did not settle"), /*late=*/false);
    return;
  }
  // True while `call` runs: an answer then is inline, and the attempt goes
  // on at once, as with a store that keeps nothing. Read on the core thread
  // only (OnCoreThread runs its callback there).
  auto in_call = std::make_shared<bool>(true);
  call(OnCoreThread<absl::StatusOr<T>>([in_call, handle](absl::StatusOr<T> answer) {
    handle(std::move(answer), /*late=*/!*in_call);
  }));
  *in_call = false;
}

absl::Status MeshAuth::StoreFailed(const absl::Status& status) {
  // The first failure and every 100th: an outage must not flood the log.
  if (store_failures_++ % 100 == 0) {
    log::Event(log::Level::kError, log::LogEvent::kAuthStoreUnavailable)
        .Str("why", status.message())
        .Uint("failures", store_failures_);
  }
  return absl::UnavailableError(
      "the relay's authentication store cannot answer now; nothing was decided, retry later");
}

void MeshAuth::Merge(const std::string& mesh_id, store::MeshAuthState state, absl::Time now) {
  if (store_->shared()) {
    // The store is the truth and memory a copy of its last answer: a record
    // another instance replaced or deleted must not survive here.
    if (auto it = bindings_.find(mesh_id);
        it != bindings_.end() && (!state.binding || state.binding->hash != it->second.hash)) {
      bindings_.erase(it);
      binding_expiry_.Cancel(mesh_id);
    }
    if (auto it = signed_.find(mesh_id);
        it != signed_.end() &&
        (!state.signed_mesh || state.signed_mesh->mesh_key != it->second.mesh_key)) {
      signed_.erase(it);
      signed_expiry_.Cancel(mesh_id);
    }
  }
  if (state.binding && !bindings_.contains(mesh_id) && !signed_.contains(mesh_id)) {
    store::TokenBinding& b = bindings_[mesh_id] = std::move(*state.binding);
    b.mesh_id = mesh_id;
    if (b.expires_at) binding_expiry_.Schedule(mesh_id, *b.expires_at);
  }
  if (state.signed_mesh && !bindings_.contains(mesh_id)) {
    store::SignedMesh& fresh = *state.signed_mesh;
    fresh.mesh_id = mesh_id;
    auto it = signed_.find(mesh_id);
    if (it == signed_.end()) {
      if (fresh.last_used_at == absl::InfinitePast()) fresh.last_used_at = now;
      signed_expiry_.Schedule(mesh_id, fresh.last_used_at + config_.signed_mesh_ttl);
      signed_.emplace(mesh_id, std::move(fresh));
    } else {
      // The store's key and founders win; the last use memory tracks stays.
      it->second.mesh_key = std::move(fresh.mesh_key);
      it->second.founders = std::move(fresh.founders);
      it->second.last_used_at = std::max(it->second.last_used_at, fresh.last_used_at);
    }
  }
}

Admission MeshAuth::OpenAdmission(const std::string& mesh_id, absl::string_view token) {
  if (auto it = inflight_.find(mesh_id); it != inflight_.end()) ++it->second.open_grants;
  return Admission{OpenIdentity(token), /*proves_node=*/false};
}

void MeshAuth::ReleaseInflight(const std::string& mesh_id) {
  auto it = inflight_.find(mesh_id);
  if (it != inflight_.end() && it->second.claims == 0 && it->second.nonce_claims == 0) {
    inflight_.erase(it);
  }
}

void MeshAuth::Lookup(const AttemptPtr& attempt) {
  attempt->looked_up = true;
  const std::string mesh_id = attempt->founding ? attempt->url_mesh_id : attempt->reg.mesh_id();
  AskStore<store::MeshAuthState>(
      attempt,
      [this, mesh_id](store::AuthStore::Done<store::MeshAuthState> done) {
        store_->LookupMesh(mesh_id, std::move(done));
      },
      [this, attempt, mesh_id](absl::StatusOr<store::MeshAuthState> state) -> Decision {
        if (!state.ok()) return StoreFailed(state.status());
        Merge(mesh_id, *std::move(state), attempt->now);
        return std::nullopt;
      });
}

MeshAuth::Decision MeshAuth::DecideRegister(const AttemptPtr& attempt) {
  const relay::v1::Register& reg = attempt->reg;
  const std::string& mesh_id = reg.mesh_id();
  const absl::Time now = attempt->now;
  if (store_->shared() && !attempt->looked_up) {
    // Another instance may have bound or signed this mesh (or let it go)
    // since memory last heard: a live mesh is no reason to decide blind.
    Lookup(attempt);
    return std::nullopt;
  }
  if (reg.signed_token().present()) return AdmitSignedJoin(attempt);
  if (signed_.contains(mesh_id)) {
    return Denied("this mesh is signed: join with a token signed by its key");
  }

  auto binding = bindings_.find(mesh_id);
  if (binding != bindings_.end()) {
    const std::string hash = auth::SaltedSha256(binding->second.salt, reg.token());
    if (reg.token().empty() || !auth::ConstantTimeEquals(hash, binding->second.hash)) {
      return Denied("this mesh is bound to another token");
    }
    if (!attempt->mesh_live && binding->second.expires_at) {
      binding->second.expires_at.reset();  // the mesh lives again
      binding_expiry_.Cancel(mesh_id);
      store_->SetBindingExpiry(mesh_id, std::nullopt, Persisted());
    }
    if (attempt->answered_late && !binding->second.expires_at) {
      // Its registrant may be gone by now, and then no MeshEmptied starts
      // the grace: Expire lets the binding go a grace from now unless the
      // mesh is live then.
      binding_expiry_.Schedule(mesh_id, now + config_.mesh_binding_grace);
    }
    return Admission{"token", /*proves_node=*/true};
  }
  if (attempt->mesh_live) {
    // An open mesh stays open while it lives; tokens then only tell
    // connections apart on takeover, and prove nothing: anyone could have
    // sent the same one first.
    return OpenAdmission(mesh_id, reg.token());
  }
  if (reg.token().empty()) {
    // An empty mesh memory knows nothing of: open, unless the store knows
    // it (bound or signed, by another relay sharing the store).
    if (attempt->looked_up) return OpenAdmission(mesh_id, reg.token());
    Lookup(attempt);
    return std::nullopt;
  }

  // The first token binds the mesh, if the store agrees nobody did first.
  if (absl::Status room = CheckRoomForRecord(attempt->client_ip, now); !room.ok()) return room;
  ChargeRecord(attempt->client_ip, now);
  store::TokenBinding claim;
  claim.mesh_id = mesh_id;
  claim.bound_at = now;
  claim.salt = auth::RandomBytes(kSaltBytes);
  claim.hash = auth::SaltedSha256(claim.salt, reg.token());
  ++creations_in_flight_;
  Inflight& inflight = inflight_[mesh_id];
  ++inflight.claims;
  const std::uint64_t open_grants = inflight.open_grants;
  AskStore<store::BindResult>(
      attempt,
      [this, claim = std::move(claim), now](store::AuthStore::Done<store::BindResult> done) {
        store_->BindIfUnbound(claim, now, std::move(done));
      },
      [this, attempt, mesh_id, open_grants](absl::StatusOr<store::BindResult> result) -> Decision {
        --creations_in_flight_;
        Inflight& inflight = inflight_[mesh_id];
        --inflight.claims;
        const bool went_open = inflight.open_grants != open_grants;
        ReleaseInflight(mesh_id);
        if (!result.ok()) return StoreFailed(result.status());
        if (went_open) {
          // An open registrant of this mesh was admitted while the claim was
          // out: the mesh went live open first, and stays open while it lives.
          if (result->created && result->state.binding) {
            store_->DeleteBinding(mesh_id,
                                  store::BindingRemoval{result->state.binding->hash, std::nullopt},
                                  Persisted());
          }
          attempt->mesh_live = true;
          return std::nullopt;
        }
        // The winner's binding (this one when created): the token is then
        // compared with it, from memory.
        Merge(mesh_id, std::move(result->state), attempt->now);
        return std::nullopt;
      });
  return std::nullopt;
}

MeshAuth::Decision MeshAuth::AdmitSignedJoin(const AttemptPtr& attempt) {
  const relay::v1::Register& reg = attempt->reg;
  const relay::v1::SignedJoinToken& token = reg.signed_token();
  const absl::Time now = attempt->now;
  if (!token.malformed().empty()) return Denied(token.malformed());
  auto mesh = signed_.find(reg.mesh_id());
  if (mesh == signed_.end()) {
    // An empty mesh memory knows nothing of may be signed in the store.
    if (!attempt->mesh_live && !attempt->looked_up) {
      Lookup(attempt);
      return std::nullopt;
    }
    return Denied("this mesh is not registered: no key to check the token");
  }
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
    // A first use: it counts against the bounds while the store is asked.
    const std::string& mesh_id = reg.mesh_id();
    auto per_mesh = nonces_per_mesh_.find(mesh_id);
    auto inflight = inflight_.find(mesh_id);
    const std::size_t in_mesh = (per_mesh != nonces_per_mesh_.end() ? per_mesh->second : 0) +
                                (inflight != inflight_.end() ? inflight->second.nonce_claims : 0);
    if (in_mesh >= config_.max_nonces_per_mesh) {
      Hit(Limit::kNoncesPerMesh);
      return Denied(absl::StrCat("this mesh has ", config_.max_nonces_per_mesh,
                                 " join tokens in use, its maximum; reuse a token or wait for "
                                 "one to expire"));
    }
    if (absl::Status room = CheckRoomForRecord(attempt->client_ip, now); !room.ok()) return room;
    ChargeRecord(attempt->client_ip, now);
    store::UsedNonce record{mesh_id, token.nonce(), reg.node_id(), ExpiryOf(token)};
    ++creations_in_flight_;
    ++inflight_[mesh_id].nonce_claims;
    AskStore<store::NonceResult>(
        attempt,
        [this, record = std::move(record), now](store::AuthStore::Done<store::NonceResult> done) {
          store_->UseNonceOnce(record, now, std::move(done));
        },
        [this, mesh_id](absl::StatusOr<store::NonceResult> result) -> Decision {
          --creations_in_flight_;
          --inflight_[mesh_id].nonce_claims;
          ReleaseInflight(mesh_id);
          if (!result.ok()) return StoreFailed(result.status());
          // Whoever holds it now (this node, or another that used it first);
          // the join is decided again from memory. A mesh forgotten meanwhile
          // keeps no nonce: deciding again refuses the join.
          if (signed_.contains(mesh_id)) AddNonce(std::move(result->holder));
          return std::nullopt;
        });
    return std::nullopt;
  }
  TouchSigned(mesh->second, now);
  // A node-bound token proves the node. An unbound one proves membership
  // only, so it never matches another connection's credentials: it cannot
  // take a node_id over.
  if (token.node_id().empty()) {
    return Admission{absl::StrCat(unbound_prefix_, ++unbound_joins_), /*proves_node=*/true};
  }
  return Admission{NodeIdentity(reg.node_id()), /*proves_node=*/true};
}

MeshAuth::Decision MeshAuth::DecideRegisterMesh(const AttemptPtr& attempt) {
  const relay::v1::RegisterMesh& request = attempt->request;
  const absl::Time now = attempt->now;
  if (request.mesh_id() != attempt->url_mesh_id) {
    return Denied("register_mesh names another mesh than the URL");
  }
  const std::string& mesh_id = attempt->url_mesh_id;
  if (store_->shared() && !attempt->looked_up) {
    Lookup(attempt);
    return std::nullopt;
  }
  if (bindings_.contains(mesh_id)) return Denied("this mesh is bound to a token");
  auto existing = signed_.find(mesh_id);
  // Signing a live open mesh would lock its members out under a stranger's
  // key: an open mesh stays open while it lives.
  if (existing == signed_.end() && attempt->mesh_live) {
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

  const store::Founder founder{request.peer().node_id(), *verify_key};
  store::SignedMeshClaim claim;
  claim.founder = founder;
  claim.max_founders = config_.max_founders_per_mesh;
  if (existing != signed_.end()) {
    switch (store::CheckFounderClaim(existing->second, *mesh_key, founder,
                                     config_.max_founders_per_mesh)) {
      case store::SignedMeshOutcome::kOtherKey:
        return Denied("this mesh is registered with another key");
      case store::SignedMeshOutcome::kUnprovenKey:
        return Denied("only the mesh key or this founder's own node key can prove the mesh again");
      case store::SignedMeshOutcome::kFoundersFull:
        Hit(Limit::kFoundersPerMesh);
        return Denied(absl::StrCat("this mesh has ", config_.max_founders_per_mesh,
                                   " founders, its maximum"));
      default:
        break;
    }
    const bool known =
        std::any_of(existing->second.founders.begin(), existing->second.founders.end(),
                    [&](const store::Founder& f) {
                      return f.node_id == founder.node_id && f.verify_key == founder.verify_key;
                    });
    if (known) {
      // A founder proving the mesh again creates nothing: memory decides.
      if (existing->second.last_used_at != now) {
        existing->second.last_used_at = now;
        store_->TouchSignedMesh(mesh_id, now, Persisted());
      }
      signed_expiry_.Schedule(mesh_id, now + config_.signed_mesh_ttl);
      return Admission{NodeIdentity(founder.node_id), /*proves_node=*/true};
    }
    // A new founder, or a founder's new key: the store saves it first.
    claim.proposed = store::WithFounder(existing->second, founder);
    claim.founding = false;
  } else {
    if (absl::Status room = CheckRoomForRecord(attempt->client_ip, now); !room.ok()) {
      return room;
    }
    ChargeRecord(attempt->client_ip, now);
    claim.proposed.mesh_id = mesh_id;
    claim.proposed.mesh_key = *mesh_key;
    claim.proposed.founders = {founder};
    claim.founding = true;
    ++creations_in_flight_;
  }
  claim.proposed.last_used_at = now;
  const bool founding = claim.founding;
  Inflight& inflight = inflight_[mesh_id];
  ++inflight.claims;
  const std::uint64_t open_grants = inflight.open_grants;
  AskStore<store::SignedMeshClaimResult>(
      attempt,
      [this, claim = std::move(claim)](store::AuthStore::Done<store::SignedMeshClaimResult> done) {
        store_->ClaimSignedMesh(claim, std::move(done));
      },
      [this, attempt, mesh_id, founding,
       open_grants](absl::StatusOr<store::SignedMeshClaimResult> result) -> Decision {
        if (founding) --creations_in_flight_;
        Inflight& inflight = inflight_[mesh_id];
        --inflight.claims;
        const bool went_open = inflight.open_grants != open_grants;
        ReleaseInflight(mesh_id);
        if (!result.ok()) return StoreFailed(result.status());
        if (went_open) {
          // The mesh went live open while the claim was out (see
          // DecideRegister): it cannot be signed now.
          if (result->outcome == store::SignedMeshOutcome::kFounded) {
            store_->DeleteSignedMesh(mesh_id, std::nullopt, Persisted());
          }
          attempt->mesh_live = true;
          return std::nullopt;
        }
        // What the store holds now; deciding again from it admits the
        // founder (now listed) or refuses as memory would have.
        Merge(mesh_id, std::move(result->state), attempt->now);
        return std::nullopt;
      });
  return std::nullopt;
}

// --- The operator's view and unbind ---------------------------------------------

namespace {

// The operator's view of a mesh's records: never a token, hash or key.
relay::v1::MeshAuthInfo ViewOf(const store::MeshAuthState& state, absl::Time now) {
  using Info = relay::v1::MeshAuthInfo;
  Info info;
  if (state.signed_mesh) {
    info.set_level(Info::LEVEL_SIGNED);
    info.set_founders(static_cast<std::uint32_t>(state.signed_mesh->founders.size()));
    if (state.signed_mesh->last_used_at != absl::InfinitePast()) {
      info.set_last_used_at(ToEpochSeconds(state.signed_mesh->last_used_at));
    }
    return info;
  }
  if (!state.binding) {
    info.set_level(Info::LEVEL_OPEN);
    return info;
  }
  const store::TokenBinding& b = *state.binding;
  info.set_level(Info::LEVEL_TOKEN);
  if (b.bound_at != absl::InfinitePast()) info.set_bound_at(ToEpochSeconds(b.bound_at));
  if (b.expires_at) {
    info.set_binding_expires_at(ToEpochSeconds(*b.expires_at));
    info.set_grace_left_seconds(std::max(0.0, absl::ToDoubleSeconds(*b.expires_at - now)));
  }
  return info;
}

}  // namespace

store::MeshAuthState MeshAuth::MemoryState(const std::string& mesh_id) const {
  store::MeshAuthState state;
  if (auto it = signed_.find(mesh_id); it != signed_.end()) state.signed_mesh = it->second;
  if (auto it = bindings_.find(mesh_id); it != bindings_.end()) state.binding = it->second;
  return state;
}

void MeshAuth::Describe(const std::string& mesh_id, absl::Time now, DescribeDone done) {
  if (!store_->shared()) {
    done(ViewOf(MemoryState(mesh_id), now));  // memory is the whole truth
    return;
  }
  // The store's answer as it is: memory keeps its own copies for admission
  // (a copy taken for a view would go stale, its grace run elsewhere).
  store_->LookupMesh(mesh_id, OnCoreThread<absl::StatusOr<store::MeshAuthState>>(
                                  [now, done](absl::StatusOr<store::MeshAuthState> state) {
                                    if (!state.ok()) {
                                      relay::v1::MeshAuthInfo info;
                                      info.set_unavailable(std::string(state.status().message()));
                                      done(std::move(info));
                                      return;
                                    }
                                    done(ViewOf(*state, now));
                                  }));
}

void MeshAuth::Unbind(const std::string& mesh_id, bool mesh_live,
                      std::function<void(absl::Status)> done) {
  if (mesh_live) {
    done(absl::FailedPreconditionError(
        absl::StrCat("mesh ", QuoteForMessage(mesh_id),
                     " has peers; its binding holds while they are there (close it first)")));
    return;
  }
  if (!store_->shared()) {
    UnbindDecided(mesh_id, MemoryState(mesh_id), std::move(done));
    return;
  }
  // Another instance may hold members, or may have bound, revived or let go
  // of the binding: the store and the cluster decide, not this memory.
  store_->LookupMesh(
      mesh_id,
      OnCoreThread<absl::StatusOr<store::MeshAuthState>>(
          [this, mesh_id, done](absl::StatusOr<store::MeshAuthState> state) {
            if (!state.ok()) {
              done(absl::UnavailableError(
                  absl::StrCat("the auth store cannot be read: ", state.status().message())));
              return;
            }
            if (!cluster_liveness_) {
              UnbindDecided(mesh_id, *state, done);
              return;
            }
            cluster_liveness_(
                mesh_id,
                OnCoreThread<absl::StatusOr<bool>>(
                    [this, mesh_id, stored = *std::move(state), done](absl::StatusOr<bool> live) {
                      if (!live.ok()) {
                        done(absl::UnavailableError(
                            absl::StrCat("the cluster cannot tell whether the mesh has peers: ",
                                         live.status().message())));
                      } else if (*live) {
                        done(absl::FailedPreconditionError(
                            absl::StrCat("mesh ", QuoteForMessage(mesh_id),
                                         " has peers on another instance; its binding holds while "
                                         "they are there (close it first)")));
                      } else {
                        UnbindDecided(mesh_id, stored, done);
                      }
                    }));
          }));
}

void MeshAuth::UnbindDecided(const std::string& mesh_id, const store::MeshAuthState& state,
                             std::function<void(absl::Status)> done) {
  if (state.signed_mesh) {
    done(absl::FailedPreconditionError(
        absl::StrCat("mesh ", QuoteForMessage(mesh_id),
                     " is signed by a mesh key, not bound to a token: nothing to unbind")));
    return;
  }
  if (!state.binding) {
    done(absl::NotFoundError(
        absl::StrCat("mesh ", QuoteForMessage(mesh_id), " is not bound to a token")));
    return;
  }
  const std::string hash = state.binding->hash;
  // In its grace, it goes only if it still is: a registrant who came back
  // meanwhile (through another instance) keeps it.
  const std::optional<absl::Time> expired_by =
      state.binding->expires_at ? std::optional<absl::Time>(absl::InfiniteFuture()) : std::nullopt;
  store_->DeleteBinding(
      mesh_id, store::BindingRemoval{hash, expired_by},
      OnCoreThread<absl::Status>([this, mesh_id, hash, done](absl::Status deleted) {
        if (!deleted.ok()) {
          done(absl::UnavailableError(
              absl::StrCat("the auth store could not delete it: ", deleted.message())));
          return;
        }
        if (auto it = bindings_.find(mesh_id); it != bindings_.end() && it->second.hash == hash) {
          bindings_.erase(it);
          binding_expiry_.Cancel(mesh_id);
        }
        if (!store_->shared()) {
          done(absl::OkStatus());
          return;
        }
        // The delete was conditional: tell the operator if it did not happen.
        store_->LookupMesh(
            mesh_id, OnCoreThread<absl::StatusOr<store::MeshAuthState>>(
                         [mesh_id, hash, done](absl::StatusOr<store::MeshAuthState> state) {
                           if (state.ok() && state->binding && state->binding->hash == hash) {
                             done(absl::FailedPreconditionError(
                                 absl::StrCat("mesh ", QuoteForMessage(mesh_id),
                                              " came back into use while it was being unbound")));
                             return;
                           }
                           done(absl::OkStatus());
                         }));
      }));
}

void MeshAuth::MeshEmptied(const std::string& mesh_id, absl::Time now) {
  if (auto mesh = signed_.find(mesh_id); mesh != signed_.end()) TouchSigned(mesh->second, now);
  auto binding = bindings_.find(mesh_id);
  if (binding == bindings_.end()) return;
  binding->second.expires_at = now + config_.mesh_binding_grace;
  binding_expiry_.Schedule(mesh_id, *binding->second.expires_at);
  store_->SetBindingExpiry(mesh_id, binding->second.expires_at, Persisted());
}

void MeshAuth::ForgetSigned(const std::string& mesh_id, std::optional<absl::Time> unused_since) {
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
  store_->DeleteSignedMesh(mesh_id, unused_since, Persisted());
  log::Event(log::Level::kInfo, log::LogEvent::kSignedMeshExpired)
      .Double("ttl_days", absl::ToDoubleHours(config_.signed_mesh_ttl) / 24);
}

void MeshAuth::Expire(absl::Time now, const std::function<bool(const std::string&)>& mesh_live) {
  for (const std::string& mesh_id : binding_expiry_.PopDue(now)) {
    auto binding = bindings_.find(mesh_id);
    if (binding == bindings_.end()) continue;
    // No grace: an admission answered late made or revived it. A live mesh
    // has its registrant (MeshEmptied starts the grace later); otherwise
    // the registrant left before joining, and a grace has passed since.
    if (!binding->second.expires_at && mesh_live(mesh_id)) continue;
    if (cluster_liveness_ && store_->shared()) {
      ConfirmBindingExpiry(mesh_id, now);
      continue;
    }
    // The binding as memory knows it, and past its grace when memory saw
    // one start: another process on the same relay.db may have revived it.
    const std::optional<absl::Time> expired_by =
        binding->second.expires_at ? std::optional<absl::Time>(now) : std::nullopt;
    store_->DeleteBinding(mesh_id, store::BindingRemoval{binding->second.hash, expired_by},
                          Persisted());
    bindings_.erase(binding);
  }
  for (const std::string& mesh_id : signed_expiry_.PopDue(now)) {
    if (mesh_live(mesh_id)) {
      signed_expiry_.Schedule(mesh_id, now + config_.signed_mesh_ttl);  // in use now
    } else if (cluster_liveness_ && store_->shared()) {
      ConfirmSignedExpiry(mesh_id, now);
    } else {
      ForgetSigned(mesh_id, std::nullopt);
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
  if (expired_nonce) store_->DeleteNoncesExpiredBy(now, Persisted());
  for (const std::string& ip : window_expiry_.PopDue(now)) created_by_ip_.erase(ip);
}

// --- Cluster mode: letting records go only when nobody uses them ------------------
//
// This instance's memory sees its own members only: a family that left
// through it and came back through another instance is live there, and the
// grace memory started, or the check an admission answered late scheduled,
// says nothing about it. The cluster (node entries) and the store (which
// every instance updates) decide; memory forgets its copy whenever either
// says the record is in use, and reads it again at the next registration.

void MeshAuth::ConfirmBindingExpiry(const std::string& mesh_id, absl::Time now) {
  const std::string hash = bindings_.at(mesh_id).hash;
  std::weak_ptr<const bool> alive = alive_;
  cluster_liveness_(mesh_id, [this, alive, mesh_id, hash, now](absl::StatusOr<bool> live) {
    if (alive.expired()) return;
    auto binding = bindings_.find(mesh_id);
    if (binding == bindings_.end() || binding->second.hash != hash) return;  // decided meanwhile
    if (!live.ok()) {
      // Never let a family's binding go on a guess.
      binding_expiry_.Schedule(mesh_id, now + limits::kClusterLivenessRetry);
      return;
    }
    if (*live) {
      // Its members' instances start the grace when the last one leaves.
      binding_expiry_.Cancel(mesh_id);
      bindings_.erase(binding);
      return;
    }
    store_->LookupMesh(mesh_id,
                       [this, alive, mesh_id, hash, now](absl::StatusOr<store::MeshAuthState> got) {
                         if (!alive.expired())
                           SettleBindingExpiry(mesh_id, hash, now, std::move(got));
                       });
  });
}

void MeshAuth::SettleBindingExpiry(const std::string& mesh_id, const std::string& hash,
                                   absl::Time now, absl::StatusOr<store::MeshAuthState> stored) {
  auto binding = bindings_.find(mesh_id);
  if (binding == bindings_.end() || binding->second.hash != hash) return;
  if (!stored.ok()) {
    binding_expiry_.Schedule(mesh_id, now + limits::kClusterLivenessRetry);
    return;
  }
  const std::optional<store::TokenBinding>& truth = stored->binding;
  if (!truth || truth->hash != hash) {
    // Gone, or replaced by a binding made after its grace: not ours.
    binding_expiry_.Cancel(mesh_id);
    bindings_.erase(binding);
    return;
  }
  if (!truth->expires_at) {
    // Nobody is here and no grace runs (its registrant left before joining,
    // or the family left through instances that each still saw the other):
    // it starts now.
    binding->second.expires_at = now + config_.mesh_binding_grace;
    binding_expiry_.Schedule(mesh_id, *binding->second.expires_at);
    store_->SetBindingExpiry(mesh_id, binding->second.expires_at, Persisted());
    return;
  }
  if (*truth->expires_at > now) {
    // A later grace, started by another instance.
    binding->second.expires_at = truth->expires_at;
    binding_expiry_.Schedule(mesh_id, *truth->expires_at);
    return;
  }
  // Conditional in the store too: revived since this lookup, it stays.
  store_->DeleteBinding(mesh_id, store::BindingRemoval{hash, now}, Persisted());
  bindings_.erase(binding);
}

void MeshAuth::ConfirmSignedExpiry(const std::string& mesh_id, absl::Time now) {
  std::weak_ptr<const bool> alive = alive_;
  cluster_liveness_(mesh_id, [this, alive, mesh_id, now](absl::StatusOr<bool> live) {
    if (alive.expired() || !signed_.contains(mesh_id)) return;
    if (!live.ok()) {
      signed_expiry_.Schedule(mesh_id, now + limits::kClusterLivenessRetry);
      return;
    }
    if (*live) {
      signed_expiry_.Schedule(mesh_id, now + config_.signed_mesh_ttl);  // in use elsewhere
      return;
    }
    // The store keeps it if another instance recorded a use within the TTL.
    ForgetSigned(mesh_id, now - config_.signed_mesh_ttl);
  });
}

}  // namespace relay::core
