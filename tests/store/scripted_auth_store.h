// ScriptedAuthStore: an AuthStore in memory for tests. Unlike
// MemoryAuthStore it keeps every record itself and decides its conditional
// operations authoritatively, so several MeshAuths (several relays) may
// share one. By default it answers inline; with hold(true) its conditional
// operations wait, in arrival order, until the test answers (Answer) or
// fails (Fail) them, in any order. An operation is decided when it is
// answered, against the records as they are then, as a network store may
// order them; writes nobody waits for apply at once.
//
// ManualExecutor (tests/store/manual_executor.h) pairs with it: MeshAuth
// posts every answer that comes after its call returned, so the test also
// chooses when the core sees it.
#ifndef RELAY_TESTS_STORE_SCRIPTED_AUTH_STORE_H_
#define RELAY_TESTS_STORE_SCRIPTED_AUTH_STORE_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/store/auth_store.h"

namespace relay::store::testing {

class ScriptedAuthStore final : public AuthStore {
 public:
  // Conditional operations wait for Answer/Fail from now on (or no longer).
  void hold(bool on) { hold_ = on; }
  // Says it is written by other instances too (AuthStore::shared()), as the
  // cluster's store does: MeshAuth then looks a mesh up before deciding.
  void set_shared(bool on) { shared_ = on; }
  bool shared() const override { return shared_; }
  // Every operation fails at once with `status` from now on (a broken
  // store), writes included; OkStatus() heals it.
  void fail_all(absl::Status status) { fail_all_ = std::move(status); }

  std::size_t waiting() const { return waiting_.size(); }
  // "bind m1", "nonce m1/n1", "sign m1", "lookup m1": waiting operation `i`.
  const std::string& what(std::size_t i) const { return waiting_[i].what; }
  // Decides waiting operation `i` (0: the oldest) now and answers it.
  void Answer(std::size_t i = 0) { Take(i).decide(); }
  // Answers waiting operation `i` with `status` instead; nothing changes.
  void Fail(std::size_t i = 0, absl::Status status = absl::UnavailableError("store down")) {
    Take(i).fail(std::move(status));
  }
  void AnswerAll() {
    while (!waiting_.empty()) Answer(0);
  }

  // The records, for tests to read or seed.
  std::map<std::string, TokenBinding> bindings;
  std::map<std::string, SignedMesh> signed_meshes;
  std::map<std::pair<std::string, std::string>, UsedNonce> nonces;  // (mesh, nonce)
  std::size_t failed_writes = 0;

  absl::StatusOr<AuthSnapshot> Load() override {
    if (!fail_all_.ok()) return fail_all_;
    AuthSnapshot snapshot;
    for (const auto& [id, b] : bindings) snapshot.bindings.push_back(b);
    for (const auto& [id, m] : signed_meshes) snapshot.signed_meshes.push_back(m);
    for (const auto& [key, n] : nonces) snapshot.nonces.push_back(n);
    return snapshot;
  }

  void BindIfUnbound(TokenBinding binding, absl::Time now, Done<BindResult> done) override {
    const std::string what = absl::StrCat("bind ", binding.mesh_id);
    Ask<BindResult>(what, std::move(done), [this, binding = std::move(binding), now] {
      BindResult result;
      const std::string& id = binding.mesh_id;
      if (auto m = signed_meshes.find(id); m != signed_meshes.end()) {
        result.state.signed_mesh = m->second;
        return result;
      }
      auto b = bindings.find(id);
      if (b == bindings.end() || (b->second.expires_at && *b->second.expires_at < now)) {
        bindings[id] = binding;
        result.created = true;
      }
      result.state.binding = bindings[id];
      return result;
    });
  }

  void ClaimSignedMesh(SignedMeshClaim claim, Done<SignedMeshClaimResult> done) override {
    const std::string what = absl::StrCat("sign ", claim.proposed.mesh_id);
    Ask<SignedMeshClaimResult>(what, std::move(done), [this, claim = std::move(claim)] {
      SignedMeshClaimResult result;
      const std::string& id = claim.proposed.mesh_id;
      const absl::Time now = claim.proposed.last_used_at;
      if (auto b = bindings.find(id); b != bindings.end()) {
        if (!b->second.expires_at || *b->second.expires_at >= now) {
          result.outcome = SignedMeshOutcome::kBound;
          result.state.binding = b->second;
          return result;
        }
        bindings.erase(b);
      }
      auto m = signed_meshes.find(id);
      if (m == signed_meshes.end()) {
        ForgetNonces(id);
        signed_meshes[id] = SignedMesh{id, claim.proposed.mesh_key, {claim.founder}, now};
        result.outcome = SignedMeshOutcome::kFounded;
      } else {
        result.outcome = CheckFounderClaim(m->second, claim.proposed.mesh_key, claim.founder,
                                           claim.max_founders);
        if (result.outcome == SignedMeshOutcome::kFounderSaved) {
          m->second = WithFounder(std::move(m->second), claim.founder);
          m->second.last_used_at = now;
        }
      }
      result.state.signed_mesh = signed_meshes[id];
      return result;
    });
  }

  void UseNonceOnce(UsedNonce nonce, absl::Time now, Done<NonceResult> done) override {
    const std::string what = absl::StrCat("nonce ", nonce.mesh_id, "/", nonce.nonce);
    Ask<NonceResult>(what, std::move(done), [this, nonce = std::move(nonce), now] {
      const auto key = std::make_pair(nonce.mesh_id, nonce.nonce);
      auto it = nonces.find(key);
      if (it != nonces.end() && it->second.expires_at >= now) return NonceResult{false, it->second};
      nonces[key] = nonce;
      return NonceResult{true, nonce};
    });
  }

  void LookupMesh(std::string mesh_id, Done<MeshAuthState> done) override {
    const std::string what = absl::StrCat("lookup ", mesh_id);
    Ask<MeshAuthState>(what, std::move(done), [this, mesh_id] {
      MeshAuthState state;
      if (auto b = bindings.find(mesh_id); b != bindings.end()) state.binding = b->second;
      if (auto m = signed_meshes.find(mesh_id); m != signed_meshes.end()) {
        state.signed_mesh = m->second;
      }
      return state;
    });
  }

  void SetBindingExpiry(std::string mesh_id, std::optional<absl::Time> expires_at,
                        WriteDone done) override {
    Write(std::move(done), [&] {
      if (auto b = bindings.find(mesh_id); b != bindings.end()) b->second.expires_at = expires_at;
    });
  }
  void DeleteBinding(std::string mesh_id, BindingRemoval removal, WriteDone done) override {
    Write(std::move(done), [&] {
      if (auto b = bindings.find(mesh_id); b != bindings.end() && removal.Matches(b->second)) {
        bindings.erase(b);
      }
    });
  }
  void TouchSignedMesh(std::string mesh_id, absl::Time last_used_at, WriteDone done) override {
    Write(std::move(done), [&] {
      if (auto m = signed_meshes.find(mesh_id); m != signed_meshes.end()) {
        m->second.last_used_at = last_used_at;
      }
    });
  }
  void DeleteSignedMesh(std::string mesh_id, std::optional<absl::Time> unused_since,
                        WriteDone done) override {
    Write(std::move(done), [&] {
      auto m = signed_meshes.find(mesh_id);
      if (unused_since && m != signed_meshes.end() && m->second.last_used_at > *unused_since) {
        return;  // used since
      }
      signed_meshes.erase(mesh_id);
      ForgetNonces(mesh_id);
    });
  }
  void DeleteNoncesExpiredBy(absl::Time now, WriteDone done) override {
    Write(std::move(done), [&] {
      for (auto it = nonces.begin(); it != nonces.end();) {
        it = it->second.expires_at < now ? nonces.erase(it) : std::next(it);
      }
    });
  }

 private:
  struct Waiting {
    std::string what;
    std::function<void()> decide;
    std::function<void(absl::Status)> fail;
  };

  Waiting Take(std::size_t i) {
    Waiting w = std::move(waiting_.at(i));
    waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(i));
    return w;
  }

  template <typename T>
  void Ask(std::string what, Done<T> done, std::function<T()> decide) {
    if (!fail_all_.ok()) {
      done(fail_all_);
      return;
    }
    Waiting w{std::move(what), [done, decide] { done(decide()); },
              [done](absl::Status status) { done(std::move(status)); }};
    if (hold_) {
      waiting_.push_back(std::move(w));
    } else {
      w.decide();
    }
  }

  void Write(WriteDone done, const std::function<void()>& apply) {
    if (!fail_all_.ok()) {
      ++failed_writes;
      done(fail_all_);
      return;
    }
    apply();
    done(absl::OkStatus());
  }

  void ForgetNonces(const std::string& mesh_id) {
    for (auto it = nonces.begin(); it != nonces.end();) {
      it = it->first.first == mesh_id ? nonces.erase(it) : std::next(it);
    }
  }

  bool hold_ = false;
  bool shared_ = false;
  absl::Status fail_all_;
  std::deque<Waiting> waiting_;
};

}  // namespace relay::store::testing

#endif  // RELAY_TESTS_STORE_SCRIPTED_AUTH_STORE_H_
