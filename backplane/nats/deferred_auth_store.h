// DeferredAuthStore: cluster mode's AuthStore from the first moment, while
// the NatsAuthStore behind it can only be opened once NATS answers. Until
// then every operation answers Unavailable (auth_unavailable to the client,
// who may retry), so a relay started while NATS is away serves and keeps
// trying instead of failing start-up, as the backplane does.
#ifndef RELAY_BACKPLANE_NATS_DEFERRED_AUTH_STORE_H_
#define RELAY_BACKPLANE_NATS_DEFERRED_AUTH_STORE_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "backplane/nats/nats_auth_store.h"
#include "backplane/nats/nats_connection.h"
#include "server/core/core_executor.h"
#include "server/store/auth_store.h"

namespace relay::backplane::nats {

class DeferredAuthStore final : public store::AuthStore {
 public:
  // Starts opening at once, on a thread of its own, retrying every second.
  DeferredAuthStore(NatsConnection* connection, NatsAuthStoreSettings settings,
                    core::CoreExecutor* executor);
  DeferredAuthStore(const DeferredAuthStore&) = delete;
  DeferredAuthStore& operator=(const DeferredAuthStore&) = delete;
  ~DeferredAuthStore() override;

  bool opened() const { return store_.load(std::memory_order_acquire) != nullptr; }

  absl::StatusOr<store::AuthSnapshot> Load() override { return store::AuthSnapshot{}; }
  bool shared() const override { return true; }
  void BindIfUnbound(store::TokenBinding binding, absl::Time now,
                     Done<store::BindResult> done) override;
  void ClaimSignedMesh(store::SignedMeshClaim claim,
                       Done<store::SignedMeshClaimResult> done) override;
  void UseNonceOnce(store::UsedNonce nonce, absl::Time now, Done<store::NonceResult> done) override;
  void LookupMesh(std::string mesh_id, Done<store::MeshAuthState> done) override;
  void SetBindingExpiry(std::string mesh_id, std::optional<absl::Time> expires_at,
                        WriteDone done) override;
  void DeleteBinding(std::string mesh_id, store::BindingRemoval removal, WriteDone done) override;
  void TouchSignedMesh(std::string mesh_id, absl::Time last_used_at, WriteDone done) override;
  void DeleteSignedMesh(std::string mesh_id, std::optional<absl::Time> unused_since,
                        WriteDone done) override;
  void DeleteNoncesExpiredBy(absl::Time now, WriteDone done) override;

 private:
  void OpenLoop();
  static absl::Status NotYet();

  NatsConnection* const connection_;
  const NatsAuthStoreSettings settings_;
  core::CoreExecutor* const executor_;
  std::unique_ptr<NatsAuthStore> owned_;  // set once, by the opener
  std::atomic<NatsAuthStore*> store_{nullptr};
  std::atomic<bool> stopping_{false};
  std::thread opener_;
};

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_DEFERRED_AUTH_STORE_H_
