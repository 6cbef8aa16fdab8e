#include "backplane/nats/deferred_auth_store.h"

#include <chrono>
#include <utility>

#include "server/util/log.h"

namespace relay::backplane::nats {

DeferredAuthStore::DeferredAuthStore(NatsConnection* connection, NatsAuthStoreSettings settings,
                                     core::CoreExecutor* executor)
    : connection_(connection), settings_(std::move(settings)), executor_(executor) {
  opener_ = std::thread([this] { OpenLoop(); });
}

DeferredAuthStore::~DeferredAuthStore() {
  stopping_.store(true);
  opener_.join();
}

void DeferredAuthStore::OpenLoop() {
  std::string last_error;
  while (!stopping_.load()) {
    if (connection_->connected()) {
      absl::StatusOr<std::unique_ptr<NatsAuthStore>> opened =
          NatsAuthStore::Open(connection_->raw(), settings_, executor_);
      if (opened.ok()) {
        owned_ = std::move(*opened);
        store_.store(owned_.get(), std::memory_order_release);
        return;
      }
      if (std::string(opened.status().message()) != last_error) {
        last_error = std::string(opened.status().message());
        log::Warn("cluster: authentication store not open yet: ", last_error);
      }
    }
    for (int i = 0; i < 10 && !stopping_.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

absl::Status DeferredAuthStore::NotYet() {
  return absl::UnavailableError("the cluster's authentication store is not reachable yet");
}

void DeferredAuthStore::BindIfUnbound(store::TokenBinding binding, absl::Time now,
                                      Done<store::BindResult> done) {
  if (auto* s = store_.load(std::memory_order_acquire)) {
    return s->BindIfUnbound(std::move(binding), now, std::move(done));
  }
  done(NotYet());
}

void DeferredAuthStore::ClaimSignedMesh(store::SignedMeshClaim claim,
                                        Done<store::SignedMeshClaimResult> done) {
  if (auto* s = store_.load(std::memory_order_acquire)) {
    return s->ClaimSignedMesh(std::move(claim), std::move(done));
  }
  done(NotYet());
}

void DeferredAuthStore::UseNonceOnce(store::UsedNonce nonce, absl::Time now,
                                     Done<store::NonceResult> done) {
  if (auto* s = store_.load(std::memory_order_acquire)) {
    return s->UseNonceOnce(std::move(nonce), now, std::move(done));
  }
  done(NotYet());
}

void DeferredAuthStore::LookupMesh(std::string mesh_id, Done<store::MeshAuthState> done) {
  if (auto* s = store_.load(std::memory_order_acquire)) {
    return s->LookupMesh(std::move(mesh_id), std::move(done));
  }
  done(NotYet());
}

void DeferredAuthStore::SetBindingExpiry(std::string mesh_id, std::optional<absl::Time> expires_at,
                                         WriteDone done) {
  if (auto* s = store_.load(std::memory_order_acquire)) {
    return s->SetBindingExpiry(std::move(mesh_id), expires_at, std::move(done));
  }
  done(NotYet());
}

void DeferredAuthStore::DeleteBinding(std::string mesh_id, store::BindingRemoval removal,
                                      WriteDone done) {
  if (auto* s = store_.load(std::memory_order_acquire)) {
    return s->DeleteBinding(std::move(mesh_id), std::move(removal), std::move(done));
  }
  done(NotYet());
}

void DeferredAuthStore::TouchSignedMesh(std::string mesh_id, absl::Time last_used_at,
                                        WriteDone done) {
  if (auto* s = store_.load(std::memory_order_acquire)) {
    return s->TouchSignedMesh(std::move(mesh_id), last_used_at, std::move(done));
  }
  done(NotYet());
}

void DeferredAuthStore::DeleteSignedMesh(std::string mesh_id,
                                         std::optional<absl::Time> unused_since, WriteDone done) {
  if (auto* s = store_.load(std::memory_order_acquire)) {
    return s->DeleteSignedMesh(std::move(mesh_id), unused_since, std::move(done));
  }
  done(NotYet());
}

void DeferredAuthStore::DeleteNoncesExpiredBy(absl::Time now, WriteDone done) {
  if (auto* s = store_.load(std::memory_order_acquire)) {
    return s->DeleteNoncesExpiredBy(now, std::move(done));
  }
  done(absl::OkStatus());  // nothing kept here to expire
}

}  // namespace relay::backplane::nats
