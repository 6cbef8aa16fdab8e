// NatsAuthStore: store::AuthStore on two JetStream KV buckets, shared by
// every instance of a cluster (docs/adr/0009-cluster-on-nats.md, section 4).
//   relay_<cluster>_auth    one key per mesh, MeshKey(mesh_id): an AuthRecord
//                           holding its TokenBinding or its SignedMesh, so
//                           binding and signing one mesh are one
//                           compare-and-set and two instances racing get one
//                           winner.
//   relay_<cluster>_nonces  one key per used nonce, NonceKey(mesh_id, nonce):
//                           a UsedNonce. The bucket's max age (the longest
//                           join token lifetime plus a minute) removes them,
//                           so DeleteNoncesExpiredBy does nothing.
// Values are backplane/nats/records.proto (relay.nats.v1).
//
// Threads: every blocking KV call runs on one of the store's two workers,
// never on the caller's thread. An operation goes to the worker of its mesh
// (a hash of the mesh id), so one mesh's operations run in the order they
// were made. Every completion callback, a refusal included, runs through
// executor->Post, on the core thread. The queue is bounded; past the bound
// an operation is answered Unavailable. The destructor answers what is
// queued (running it while NATS answers, Unavailable once it does not), then
// joins the workers; the executor must outlive the store and run what was
// posted to it.
//
// Unavailable means "not decided", not "not written": a write whose answer
// was lost (NATS failed over, the connection broke mid-call) may have
// landed. Every write is a compare-and-set, so such a write is one that no
// other write overtook; the caller's retry then finds it.
//
// Errors: a lost compare-and-set is decided again from a fresh read; after
// kMaxCasAttempts lost races in a row it gives up. Any other NATS failure, and a race lost every
// time, is Unavailable: MeshAuth answers auth_unavailable. A mesh id whose key is over
// limits::kMaxNatsKeyChars is InvalidArgument, before any NATS call. A value that does not parse is
// DataLoss.
//
// Answers as SqliteAuthStore's (the other store that decides races), but
// where instances write one key independently:
// - DeleteBinding and DeleteSignedMesh delete at the revision they read and
//   are not retried: a record rewritten in between (a new binding after the
//   grace, a founder saved) was written after the delete was decided, and
//   stays.
// - TouchSignedMesh only moves the last use forward (instances' clocks).
// - DeleteSignedMesh then purges the mesh's nonces: a second step, not one
//   transaction (a nonce used in between under a new owner of the id would
//   go too; its token is then usable once more).
// - Load() returns nothing: records are read per mesh, by LookupMesh and in
//   the conditional operations' answers. MeshAuth must therefore ask before
//   deciding a mesh it holds no record of (see the DISABLED test in
//   tests/backplane/nats/nats_auth_store_test.cc).
#ifndef RELAY_BACKPLANE_NATS_NATS_AUTH_STORE_H_
#define RELAY_BACKPLANE_NATS_NATS_AUTH_STORE_H_

#include <nats/nats.h>

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backplane/nats/kv_bucket.h"
#include "server/core/core_executor.h"
#include "server/store/auth_store.h"

namespace relay::backplane::nats {

struct NatsAuthStoreSettings {
  std::string cluster;  // RELAY_CLUSTER, already valid (ValidateClusterName)
  // Of both buckets (NATS_KV_REPLICAS): 3 on a three-node NATS cluster, 1 on
  // a single server (which refuses more).
  int replicas = 1;
  // MAX_JOIN_TOKEN_LIFETIME_SECONDS: a nonce is kept that long (plus a
  // minute of clock skew) after its use, so that its token has expired by
  // the time the nonces bucket forgets it.
  absl::Duration max_join_token_lifetime = absl::Hours(24 * 30);
  // Cluster-wide bounds of each bucket; -1: unbounded. A full bucket refuses
  // writes (Unavailable: auth_unavailable), it never drops old records.
  std::int64_t auth_max_bytes = -1;
  std::int64_t nonces_max_bytes = -1;
  // Operations waiting for the workers, at most (each holds one record, a
  // few KB): reaching it means NATS has not answered for a while.
  std::size_t max_queued_operations = 4096;
};

class NatsAuthStore final : public store::AuthStore {
 public:
  // A lost compare-and-set is decided again from a fresh read at most this
  // many times in all; three lost races in a row means the key is contended
  // past what a registration should wait for.
  static constexpr int kMaxCasAttempts = 3;
  // Added to the longest token lifetime for the nonces bucket's max age.
  static constexpr absl::Duration kNonceClockSkew = absl::Minutes(1);
  static constexpr int kWorkers = 2;

  // Creates or binds relay_<cluster>_auth and relay_<cluster>_nonces on
  // `nc` (blocks: call at start-up, never on the core thread). A nonces
  // bucket made by an instance with a shorter token lifetime has its max
  // age widened to ours; a longer one is kept (and logged). Errors as
  // KvBucket::Open.
  static absl::StatusOr<std::unique_ptr<NatsAuthStore>> Open(natsConnection* nc,
                                                             const NatsAuthStoreSettings& settings,
                                                             core::CoreExecutor* executor);
  // On buckets opened by the caller on `nc`. `executor` must outlive the
  // store. While `nc` is not CONNECTED an operation answers Unavailable at
  // once: a KV call made then waits its whole timeout (kNatsKvWaitMs), and
  // nats.c keeps its write in the reconnect buffer and sends it after the
  // reconnect, so a write answered Unavailable could still land. `nc` may
  // be null (every operation is then tried).
  NatsAuthStore(std::unique_ptr<KvBucket> auth, std::unique_ptr<KvBucket> nonces,
                core::CoreExecutor* executor, natsConnection* nc,
                std::size_t max_queued_operations = 4096);
  NatsAuthStore(const NatsAuthStore&) = delete;
  NatsAuthStore& operator=(const NatsAuthStore&) = delete;
  ~NatsAuthStore() override;

  // The buckets' config for `settings`.
  static KvBucketConfig AuthBucketConfig(const NatsAuthStoreSettings& settings);
  static KvBucketConfig NoncesBucketConfig(const NatsAuthStoreSettings& settings);

  // Empty: KV is read per mesh, when MeshAuth asks.
  absl::StatusOr<store::AuthSnapshot> Load() override;
  // Other instances write here too: MeshAuth looks each mesh up first.
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
  // Deletes the mesh's record and purges its nonces.
  void DeleteSignedMesh(std::string mesh_id, std::optional<absl::Time> unused_since,
                        WriteDone done) override;
  // Nothing to do: the nonces bucket's max age removes used nonces.
  void DeleteNoncesExpiredBy(absl::Time now, WriteDone done) override;

 private:
  // One worker thread and its queue. An operation runs with `failed`
  // false, or true when it must only answer Unavailable (the store is
  // stopping and NATS stopped answering); it returns whether its answer was
  // Unavailable.
  struct Worker {
    std::mutex mu;  // leaf; never held while calling NATS
    std::condition_variable wake;
    std::deque<std::function<bool(bool failed)>> queue;  // guarded by mu
    bool stopping = false;                               // guarded by mu
    std::thread thread;
  };

  // Queues `op` on the worker of `mesh_id`; Unavailable (op dropped) when
  // the queue is full or the store is stopping.
  absl::Status Submit(const std::string& mesh_id, std::function<bool(bool failed)> op);
  // Runs `op` on the mesh's worker and posts its result to `done`.
  template <typename T>
  void Ask(const std::string& mesh_id, std::function<absl::StatusOr<T>()> op, Done<T> done);
  void Write(const std::string& mesh_id, std::function<absl::Status()> op, WriteDone done);
  void Run(Worker& worker);
  // Unavailable unless the connection is CONNECTED (OK without one).
  absl::Status CheckConnected() const;

  // Worker-thread bodies: one blocking NATS sequence each.
  absl::StatusOr<store::BindResult> DoBindIfUnbound(const store::TokenBinding& binding,
                                                    absl::Time now) const;
  absl::StatusOr<store::SignedMeshClaimResult> DoClaimSignedMesh(
      const store::SignedMeshClaim& claim) const;
  absl::StatusOr<store::NonceResult> DoUseNonceOnce(const store::UsedNonce& nonce,
                                                    absl::Time now) const;
  absl::StatusOr<store::MeshAuthState> DoLookupMesh(const std::string& mesh_id) const;
  absl::Status DoSetBindingExpiry(const std::string& mesh_id,
                                  std::optional<absl::Time> expires_at) const;
  absl::Status DoDeleteBinding(const std::string& mesh_id,
                               const store::BindingRemoval& removal) const;
  absl::Status DoTouchSignedMesh(const std::string& mesh_id, absl::Time last_used_at) const;
  absl::Status DoDeleteSignedMesh(const std::string& mesh_id,
                                  std::optional<absl::Time> unused_since) const;

  const std::unique_ptr<KvBucket> auth_;
  const std::unique_ptr<KvBucket> nonces_;
  core::CoreExecutor* const executor_;
  natsConnection* const nc_;  // not owned; may be null
  const std::size_t max_queued_operations_;
  std::array<Worker, kWorkers> workers_;  // threads start last, in the constructor body
};

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_NATS_AUTH_STORE_H_
