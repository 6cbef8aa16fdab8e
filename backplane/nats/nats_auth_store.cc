#include "backplane/nats/nats_auth_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "backplane/nats/nats_names.h"
#include "backplane/nats/proto/records.pb.h"
#include "server/util/log.h"

namespace relay::backplane::nats {
namespace {

namespace pb = ::relay::nats::v1;

std::int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(std::int64_t micros) { return absl::FromUnixMicros(micros); }

// --- records <-> store structs ------------------------------------------------

std::string EncodeBinding(const store::TokenBinding& binding) {
  pb::AuthRecord record;
  pb::TokenBinding* b = record.mutable_binding();
  b->set_mesh_id(binding.mesh_id);
  b->set_salt(binding.salt);
  b->set_hash(binding.hash);
  if (binding.expires_at) b->set_expires_at_unix_micros(ToMicros(*binding.expires_at));
  if (binding.bound_at != absl::InfinitePast()) {
    b->set_bound_at_unix_micros(ToMicros(binding.bound_at));
  }
  return record.SerializeAsString();
}

std::string EncodeSigned(const store::SignedMesh& mesh) {
  pb::AuthRecord record;
  pb::SignedMesh* m = record.mutable_signed_();
  m->set_mesh_id(mesh.mesh_id);
  m->set_mesh_key(mesh.mesh_key);
  for (const store::Founder& f : mesh.founders) {
    pb::Founder* founder = m->add_founders();
    founder->set_node_id(f.node_id);
    founder->set_verify_key(f.verify_key);
  }
  if (mesh.last_used_at != absl::InfinitePast()) {
    m->set_last_used_at_unix_micros(ToMicros(mesh.last_used_at));
  }
  return record.SerializeAsString();
}

std::string EncodeNonce(const store::UsedNonce& nonce) {
  pb::UsedNonce record;
  record.set_mesh_id(nonce.mesh_id);
  record.set_nonce(nonce.nonce);
  record.set_node_id(nonce.node_id);
  record.set_expires_at_unix_micros(ToMicros(nonce.expires_at));
  return record.SerializeAsString();
}

absl::Status Corrupt(absl::string_view bucket, absl::string_view key) {
  return absl::DataLossError(
      absl::StrCat("KV ", bucket, " holds a value for ", key, " that is no record of this relay"));
}

// What a mesh's key holds. The mesh id comes from the caller, whose key it
// is, not from the value.
absl::StatusOr<store::MeshAuthState> DecodeAuth(const std::string& value,
                                                const std::string& mesh_id,
                                                absl::string_view bucket, absl::string_view key) {
  pb::AuthRecord record;
  if (!record.ParseFromString(value)) return Corrupt(bucket, key);
  store::MeshAuthState state;
  switch (record.record_case()) {
    case pb::AuthRecord::kBinding: {
      const pb::TokenBinding& b = record.binding();
      store::TokenBinding binding{mesh_id, b.salt(), b.hash(), std::nullopt};
      if (b.has_expires_at_unix_micros())
        binding.expires_at = FromMicros(b.expires_at_unix_micros());
      if (b.has_bound_at_unix_micros()) binding.bound_at = FromMicros(b.bound_at_unix_micros());
      state.binding = std::move(binding);
      return state;
    }
    case pb::AuthRecord::kSigned: {
      const pb::SignedMesh& m = record.signed_();
      store::SignedMesh mesh;
      mesh.mesh_id = mesh_id;
      mesh.mesh_key = m.mesh_key();
      for (const pb::Founder& f : m.founders()) {
        mesh.founders.push_back(store::Founder{f.node_id(), f.verify_key()});
      }
      if (m.has_last_used_at_unix_micros()) {
        mesh.last_used_at = FromMicros(m.last_used_at_unix_micros());
      }
      state.signed_mesh = std::move(mesh);
      return state;
    }
    case pb::AuthRecord::RECORD_NOT_SET:
      break;
  }
  return Corrupt(bucket, key);
}

absl::StatusOr<store::UsedNonce> DecodeNonce(const std::string& value, const store::UsedNonce& ours,
                                             absl::string_view bucket, absl::string_view key) {
  pb::UsedNonce record;
  if (!record.ParseFromString(value)) return Corrupt(bucket, key);
  return store::UsedNonce{ours.mesh_id, ours.nonce, record.node_id(),
                          FromMicros(record.expires_at_unix_micros())};
}

// --- compare-and-set ----------------------------------------------------------

// A failure that is not a conflict: NATS could not answer (or refused the
// write, a full bucket say). The core answers auth_unavailable.
absl::Status Outage(const absl::Status& status) {
  if (absl::IsUnavailable(status)) return status;
  return absl::UnavailableError(status.message());
}

// A key's latest value as a write must expect it.
struct Latest {
  std::uint64_t revision = 0;        // 0: never written (or purged away)
  std::optional<std::string> value;  // none: absent (never written, deleted)
};

absl::StatusOr<Latest> ReadLatest(const KvBucket& bucket, const std::string& key) {
  absl::StatusOr<KvEntry> entry = bucket.Get(key);
  if (absl::IsNotFound(entry.status())) return Latest{};
  if (!entry.ok()) return Outage(entry.status());
  Latest latest;
  latest.revision = entry->revision;
  if (!entry->deleted) latest.value = std::move(entry->value);
  return latest;
}

// What to do with a key's latest value: answer now, or write `value` at
// its revision and then answer.
template <typename T>
struct Step {
  std::optional<std::string> write;
  T answer;
};

// The compare-and-set loop of every read-decide-write operation. `decide`
// sees the key's latest value and says what to write. A write that lost a
// race (the key moved on since the read) is decided again from a fresh
// read, at most kMaxCasAttempts times; then Unavailable.
//
// `create_first` skips the first read: the first write expects a key never
// written (JetStream's "no message on this subject"), the common case of a
// create, one round trip. A key written before (a live record, or a delete
// marker left behind) fails that write as a conflict, and is then read.
template <typename T>
absl::StatusOr<T> Settle(const KvBucket& bucket, const std::string& key, bool create_first,
                         const std::function<absl::StatusOr<Step<T>>(const Latest&)>& decide) {
  std::optional<Latest> latest;
  if (create_first) latest = Latest{};
  // The guessed create's conflict is how a key written before is found,
  // not a lost race.
  bool guessed = create_first;
  for (int lost = 0;;) {
    if (!latest) {
      absl::StatusOr<Latest> read = ReadLatest(bucket, key);
      if (!read.ok()) return read.status();
      latest = *std::move(read);
    }
    absl::StatusOr<Step<T>> step = decide(*latest);
    if (!step.ok()) return step.status();
    if (!step->write) return std::move(step->answer);
    absl::StatusOr<std::uint64_t> put = bucket.Put(key, *step->write, latest->revision);
    if (put.ok()) return std::move(step->answer);
    if (!absl::IsAborted(put.status())) return Outage(put.status());
    if (!guessed && ++lost >= NatsAuthStore::kMaxCasAttempts) {
      return absl::UnavailableError(absl::StrCat("KV ", bucket.name(), " ", key, " changed under ",
                                                 lost, " writes in a row; retry later"));
    }
    guessed = false;
    latest.reset();
  }
}

absl::Status QueueFull(std::size_t limit) {
  return absl::UnavailableError(absl::StrCat("the NATS authentication store has ", limit,
                                             " operations waiting for NATS; retry later"));
}

absl::Status Stopped() {
  return absl::UnavailableError("the NATS authentication store stopped while NATS did not answer");
}

}  // namespace

KvBucketConfig NatsAuthStore::AuthBucketConfig(const NatsAuthStoreSettings& settings) {
  KvBucketConfig config;
  config.name = BucketName(settings.cluster, Bucket::kAuth);
  config.replicas = settings.replicas;
  config.max_bytes = settings.auth_max_bytes;
  return config;
}

KvBucketConfig NatsAuthStore::NoncesBucketConfig(const NatsAuthStoreSettings& settings) {
  KvBucketConfig config;
  config.name = BucketName(settings.cluster, Bucket::kNonces);
  config.replicas = settings.replicas;
  config.max_age = settings.max_join_token_lifetime + kNonceClockSkew;
  config.max_bytes = settings.nonces_max_bytes;
  return config;
}

absl::StatusOr<std::unique_ptr<NatsAuthStore>> NatsAuthStore::Open(
    natsConnection* nc, const NatsAuthStoreSettings& settings, core::CoreExecutor* executor) {
  if (absl::Status valid = ValidateClusterName(settings.cluster); !valid.ok()) return valid;
  if (executor == nullptr) {
    return absl::InvalidArgumentError("NatsAuthStore answers through a CoreExecutor: none given");
  }
  bool differs = false;
  const KvBucketConfig auth_config = AuthBucketConfig(settings);
  absl::StatusOr<std::unique_ptr<KvBucket>> auth = KvBucket::Open(nc, auth_config, &differs);
  if (!auth.ok()) return auth.status();
  if (differs) {
    log::Warn("KV bucket ", auth_config.name,
              " exists with other settings (replicas, max bytes); sharing it as it is");
  }
  const KvBucketConfig nonces_config = NoncesBucketConfig(settings);
  absl::StatusOr<std::unique_ptr<KvBucket>> nonces = KvBucket::Open(nc, nonces_config, &differs);
  if (!nonces.ok()) return nonces.status();
  if (differs) {
    // Made by an instance with another token lifetime. A shorter max age
    // would forget nonces before their tokens expire: widen it. A longer
    // one only keeps them longer: keep it.
    absl::StatusOr<absl::Duration> max_age = (*nonces)->WidenMaxAge(nonces_config.max_age);
    if (!max_age.ok()) return max_age.status();
    if (*max_age != nonces_config.max_age) {
      log::Info("KV bucket ", nonces_config.name, " keeps used nonces ",
                *max_age == absl::ZeroDuration() ? std::string("forever")
                                                 : absl::FormatDuration(*max_age),
                ", longer than this instance's ", absl::FormatDuration(nonces_config.max_age),
                " (MAX_JOIN_TOKEN_LIFETIME_SECONDS of another instance)");
    } else {
      log::Info("KV bucket ", nonces_config.name, ": max age widened to ",
                absl::FormatDuration(*max_age), " for MAX_JOIN_TOKEN_LIFETIME_SECONDS");
    }
  }
  return std::make_unique<NatsAuthStore>(*std::move(auth), *std::move(nonces), executor, nc,
                                         settings.max_queued_operations);
}

NatsAuthStore::NatsAuthStore(std::unique_ptr<KvBucket> auth, std::unique_ptr<KvBucket> nonces,
                             core::CoreExecutor* executor, natsConnection* nc,
                             std::size_t max_queued_operations)
    : auth_(std::move(auth)),
      nonces_(std::move(nonces)),
      executor_(executor),
      nc_(nc),
      max_queued_operations_(std::max<std::size_t>(max_queued_operations, kWorkers)) {
  for (Worker& worker : workers_) worker.thread = std::thread([this, &worker] { Run(worker); });
}

NatsAuthStore::~NatsAuthStore() {
  for (Worker& worker : workers_) {
    {
      std::lock_guard<std::mutex> lock(worker.mu);
      worker.stopping = true;
    }
    worker.wake.notify_all();
  }
  for (Worker& worker : workers_) worker.thread.join();
}

absl::Status NatsAuthStore::Submit(const std::string& mesh_id,
                                   std::function<bool(bool failed)> op) {
  Worker& worker = workers_[std::hash<std::string>{}(mesh_id) % kWorkers];
  {
    std::lock_guard<std::mutex> lock(worker.mu);
    if (worker.stopping) return absl::UnavailableError("the NATS authentication store is stopping");
    if (worker.queue.size() >= max_queued_operations_ / kWorkers) {
      return QueueFull(max_queued_operations_);
    }
    worker.queue.push_back(std::move(op));
  }
  worker.wake.notify_one();
  return absl::OkStatus();
}

absl::Status NatsAuthStore::CheckConnected() const {
  if (nc_ == nullptr) return absl::OkStatus();
  const natsConnStatus status = natsConnection_Status(nc_);
  if (status == NATS_CONN_STATUS_CONNECTED) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("NATS is not connected (status ", static_cast<int>(status), ")"));
}

void NatsAuthStore::Run(Worker& worker) {
  // Whether NATS failed to answer the last operation. While stopping, the
  // rest of the queue is then answered Unavailable, not made to wait for
  // NATS once more each.
  bool failing = false;
  for (;;) {
    std::function<bool(bool failed)> op;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(worker.mu);
      worker.wake.wait(lock, [&worker] { return worker.stopping || !worker.queue.empty(); });
      if (worker.queue.empty()) break;  // stopping, and everything answered
      op = std::move(worker.queue.front());
      worker.queue.pop_front();
      stopping = worker.stopping;
    }
    failing = op(stopping && failing);
  }
}

template <typename T>
void NatsAuthStore::Ask(const std::string& mesh_id, std::function<absl::StatusOr<T>()> op,
                        Done<T> done) {
  auto answer = std::make_shared<Done<T>>(std::move(done));
  core::CoreExecutor* const executor = executor_;
  auto post = [executor, answer](absl::StatusOr<T> result) {
    executor->Post(
        [answer, result = std::move(result)]() mutable { (*answer)(std::move(result)); });
  };
  absl::Status queued = Submit(mesh_id, [this, op = std::move(op), post](bool failed) {
    absl::StatusOr<T> result = Stopped();
    if (!failed) {
      absl::Status connected = CheckConnected();
      result = connected.ok() ? op() : absl::StatusOr<T>(connected);
    }
    const bool unanswered = absl::IsUnavailable(result.status());
    post(std::move(result));
    return unanswered;
  });
  if (!queued.ok()) post(std::move(queued));
}

void NatsAuthStore::Write(const std::string& mesh_id, std::function<absl::Status()> op,
                          WriteDone done) {
  auto answer = std::make_shared<WriteDone>(std::move(done));
  core::CoreExecutor* const executor = executor_;
  auto post = [executor, answer](absl::Status status) {
    executor->Post([answer, status = std::move(status)]() { (*answer)(status); });
  };
  absl::Status queued = Submit(mesh_id, [this, op = std::move(op), post](bool failed) {
    absl::Status status = Stopped();
    if (!failed) {
      status = CheckConnected();
      if (status.ok()) status = op();
    }
    const bool unanswered = absl::IsUnavailable(status);
    post(std::move(status));
    return unanswered;
  });
  if (!queued.ok()) post(std::move(queued));
}

absl::StatusOr<store::AuthSnapshot> NatsAuthStore::Load() { return store::AuthSnapshot{}; }

// --- the operations, on a worker ------------------------------------------------

absl::StatusOr<store::BindResult> NatsAuthStore::DoBindIfUnbound(const store::TokenBinding& binding,
                                                                 absl::Time now) const {
  absl::StatusOr<std::string> key = MeshKey(binding.mesh_id);
  if (!key.ok()) return key.status();
  const std::string value = EncodeBinding(binding);
  return Settle<store::BindResult>(
      *auth_, *key, /*create_first=*/true,
      [&](const Latest& latest) -> absl::StatusOr<Step<store::BindResult>> {
        Step<store::BindResult> step;
        if (latest.value) {
          absl::StatusOr<store::MeshAuthState> state =
              DecodeAuth(*latest.value, binding.mesh_id, auth_->name(), *key);
          if (!state.ok()) return state.status();
          // A binding past its grace is free, whether or not the instance
          // that held it has deleted it yet; a signed mesh never is.
          const bool free =
              state->binding && state->binding->expires_at && *state->binding->expires_at < now;
          if (!free) {
            step.answer.state = *std::move(state);
            return step;
          }
        }
        step.write = value;
        step.answer.created = true;
        step.answer.state.binding = binding;
        return step;
      });
}

absl::StatusOr<store::SignedMeshClaimResult> NatsAuthStore::DoClaimSignedMesh(
    const store::SignedMeshClaim& claim) const {
  const std::string& mesh_id = claim.proposed.mesh_id;
  absl::StatusOr<std::string> key = MeshKey(mesh_id);
  if (!key.ok()) return key.status();
  const absl::Time now = claim.proposed.last_used_at;
  // A founded mesh lists only the founder who founded it: founders of an
  // earlier mesh of this id went with it.
  const store::SignedMesh founded{mesh_id, claim.proposed.mesh_key, {claim.founder}, now};
  return Settle<store::SignedMeshClaimResult>(
      *auth_, *key, /*create_first=*/true,
      [&](const Latest& latest) -> absl::StatusOr<Step<store::SignedMeshClaimResult>> {
        Step<store::SignedMeshClaimResult> step;
        std::optional<store::MeshAuthState> state;
        if (latest.value) {
          absl::StatusOr<store::MeshAuthState> decoded =
              DecodeAuth(*latest.value, mesh_id, auth_->name(), *key);
          if (!decoded.ok()) return decoded.status();
          state = *std::move(decoded);
        }
        if (state && state->binding) {
          const std::optional<absl::Time>& expires_at = state->binding->expires_at;
          if (!expires_at || *expires_at >= now) {
            step.answer.outcome = store::SignedMeshOutcome::kBound;
            step.answer.state = *std::move(state);
            return step;
          }
          state.reset();  // past its grace: the id is free
        }
        if (!state) {
          step.write = EncodeSigned(founded);
          step.answer.outcome = store::SignedMeshOutcome::kFounded;
          step.answer.state.signed_mesh = founded;
          return step;
        }
        const store::SignedMesh& existing = *state->signed_mesh;
        step.answer.outcome = store::CheckFounderClaim(existing, claim.proposed.mesh_key,
                                                       claim.founder, claim.max_founders);
        if (step.answer.outcome != store::SignedMeshOutcome::kFounderSaved) {
          step.answer.state = *std::move(state);
          return step;
        }
        store::SignedMesh saved = store::WithFounder(existing, claim.founder);
        saved.last_used_at = now;
        step.write = EncodeSigned(saved);
        step.answer.state.signed_mesh = std::move(saved);
        return step;
      });
}

absl::StatusOr<store::NonceResult> NatsAuthStore::DoUseNonceOnce(const store::UsedNonce& nonce,
                                                                 absl::Time now) const {
  absl::StatusOr<std::string> key = NonceKey(nonce.mesh_id, nonce.nonce);
  if (!key.ok()) return key.status();
  const std::string value = EncodeNonce(nonce);
  return Settle<store::NonceResult>(
      *nonces_, *key, /*create_first=*/true,
      [&](const Latest& latest) -> absl::StatusOr<Step<store::NonceResult>> {
        Step<store::NonceResult> step;
        if (latest.value) {
          absl::StatusOr<store::UsedNonce> holder =
              DecodeNonce(*latest.value, nonce, nonces_->name(), *key);
          if (!holder.ok()) return holder.status();
          // A use whose token has expired holds the nonce no longer.
          if (holder->expires_at >= now) {
            step.answer.holder = *std::move(holder);
            return step;
          }
        }
        step.write = value;
        step.answer.created = true;
        step.answer.holder = nonce;
        return step;
      });
}

absl::StatusOr<store::MeshAuthState> NatsAuthStore::DoLookupMesh(const std::string& mesh_id) const {
  absl::StatusOr<std::string> key = MeshKey(mesh_id);
  if (!key.ok()) return key.status();
  absl::StatusOr<Latest> latest = ReadLatest(*auth_, *key);
  if (!latest.ok()) return latest.status();
  if (!latest->value) return store::MeshAuthState{};
  return DecodeAuth(*latest->value, mesh_id, auth_->name(), *key);
}

absl::Status NatsAuthStore::DoSetBindingExpiry(const std::string& mesh_id,
                                               std::optional<absl::Time> expires_at) const {
  absl::StatusOr<std::string> key = MeshKey(mesh_id);
  if (!key.ok()) return key.status();
  return Settle<bool>(*auth_, *key, /*create_first=*/false,
                      [&](const Latest& latest) -> absl::StatusOr<Step<bool>> {
                        Step<bool> step{std::nullopt, true};
                        if (!latest.value) return step;  // no binding: nothing to change
                        absl::StatusOr<store::MeshAuthState> state =
                            DecodeAuth(*latest.value, mesh_id, auth_->name(), *key);
                        if (!state.ok()) return state.status();
                        if (!state->binding || state->binding->expires_at == expires_at) {
                          return step;
                        }
                        state->binding->expires_at = expires_at;
                        step.write = EncodeBinding(*state->binding);
                        return step;
                      })
      .status();
}

absl::Status NatsAuthStore::DoTouchSignedMesh(const std::string& mesh_id,
                                              absl::Time last_used_at) const {
  absl::StatusOr<std::string> key = MeshKey(mesh_id);
  if (!key.ok()) return key.status();
  return Settle<bool>(
             *auth_, *key, /*create_first=*/false,
             [&](const Latest& latest) -> absl::StatusOr<Step<bool>> {
               Step<bool> step{std::nullopt, true};
               if (!latest.value) return step;
               absl::StatusOr<store::MeshAuthState> state =
                   DecodeAuth(*latest.value, mesh_id, auth_->name(), *key);
               if (!state.ok()) return state.status();
               // Another instance may have recorded a later use:
               // the last use only moves forward.
               if (!state->signed_mesh || state->signed_mesh->last_used_at >= last_used_at) {
                 return step;
               }
               state->signed_mesh->last_used_at = last_used_at;
               step.write = EncodeSigned(*state->signed_mesh);
               return step;
             })
      .status();
}

// The deletes are conditional on the revision read, and not retried: a
// record that changed between the read and the delete was written by
// another instance after this one decided to delete it (a new binding after
// the grace, a founder saved), and that write stands.
absl::Status NatsAuthStore::DoDeleteBinding(const std::string& mesh_id,
                                            const store::BindingRemoval& removal) const {
  absl::StatusOr<std::string> key = MeshKey(mesh_id);
  if (!key.ok()) return key.status();
  absl::StatusOr<Latest> latest = ReadLatest(*auth_, *key);
  if (!latest.ok()) return latest.status();
  if (!latest->value) return absl::OkStatus();
  absl::StatusOr<store::MeshAuthState> state =
      DecodeAuth(*latest->value, mesh_id, auth_->name(), *key);
  if (!state.ok()) return state.status();
  if (!state->binding) return absl::OkStatus();  // signed: not this delete's
  // Revived (its grace stopped) or replaced by another instance since this
  // one decided: it stands.
  if (!removal.Matches(*state->binding)) return absl::OkStatus();
  absl::Status deleted = auth_->Delete(*key, latest->revision);
  if (deleted.ok() || absl::IsAborted(deleted)) return absl::OkStatus();
  return Outage(deleted);
}

absl::Status NatsAuthStore::DoDeleteSignedMesh(const std::string& mesh_id,
                                               std::optional<absl::Time> unused_since) const {
  absl::StatusOr<std::string> key = MeshKey(mesh_id);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> nonces = MeshNoncesFilter(mesh_id);
  if (!nonces.ok()) return nonces.status();
  absl::StatusOr<Latest> latest = ReadLatest(*auth_, *key);
  if (!latest.ok()) return latest.status();
  if (latest->value) {
    absl::StatusOr<store::MeshAuthState> state =
        DecodeAuth(*latest->value, mesh_id, auth_->name(), *key);
    if (!state.ok()) return state.status();
    if (!state->signed_mesh) return absl::OkStatus();  // bound: not this delete's
    // Used since through another instance: it stays, its nonces too.
    if (unused_since && state->signed_mesh->last_used_at > *unused_since) return absl::OkStatus();
    absl::Status deleted = auth_->Delete(*key, latest->revision);
    if (absl::IsAborted(deleted)) return absl::OkStatus();  // it moved on: it stays, its nonces too
    if (!deleted.ok()) return Outage(deleted);
  }
  // Its nonces were checked against its key; a new owner brings another.
  // (An id that holds nothing may still have nonces a crashed delete left.)
  if (absl::Status purged = nonces_->Purge(*nonces); !purged.ok()) return Outage(purged);
  return absl::OkStatus();
}

// --- the interface: queue for the mesh's worker ----------------------------------

void NatsAuthStore::BindIfUnbound(store::TokenBinding binding, absl::Time now,
                                  Done<store::BindResult> done) {
  const std::string mesh_id = binding.mesh_id;
  Ask<store::BindResult>(
      mesh_id, [this, binding = std::move(binding), now] { return DoBindIfUnbound(binding, now); },
      std::move(done));
}

void NatsAuthStore::ClaimSignedMesh(store::SignedMeshClaim claim,
                                    Done<store::SignedMeshClaimResult> done) {
  const std::string mesh_id = claim.proposed.mesh_id;
  Ask<store::SignedMeshClaimResult>(
      mesh_id, [this, claim = std::move(claim)] { return DoClaimSignedMesh(claim); },
      std::move(done));
}

void NatsAuthStore::UseNonceOnce(store::UsedNonce nonce, absl::Time now,
                                 Done<store::NonceResult> done) {
  const std::string mesh_id = nonce.mesh_id;
  Ask<store::NonceResult>(
      mesh_id, [this, nonce = std::move(nonce), now] { return DoUseNonceOnce(nonce, now); },
      std::move(done));
}

void NatsAuthStore::LookupMesh(std::string mesh_id, Done<store::MeshAuthState> done) {
  Ask<store::MeshAuthState>(
      mesh_id, [this, mesh_id] { return DoLookupMesh(mesh_id); }, std::move(done));
}

void NatsAuthStore::SetBindingExpiry(std::string mesh_id, std::optional<absl::Time> expires_at,
                                     WriteDone done) {
  Write(
      mesh_id, [this, mesh_id, expires_at] { return DoSetBindingExpiry(mesh_id, expires_at); },
      std::move(done));
}

void NatsAuthStore::DeleteBinding(std::string mesh_id, store::BindingRemoval removal,
                                  WriteDone done) {
  Write(
      mesh_id,
      [this, mesh_id, removal = std::move(removal)] { return DoDeleteBinding(mesh_id, removal); },
      std::move(done));
}

void NatsAuthStore::TouchSignedMesh(std::string mesh_id, absl::Time last_used_at, WriteDone done) {
  Write(
      mesh_id, [this, mesh_id, last_used_at] { return DoTouchSignedMesh(mesh_id, last_used_at); },
      std::move(done));
}

void NatsAuthStore::DeleteSignedMesh(std::string mesh_id, std::optional<absl::Time> unused_since,
                                     WriteDone done) {
  Write(
      mesh_id, [this, mesh_id, unused_since] { return DoDeleteSignedMesh(mesh_id, unused_since); },
      std::move(done));
}

void NatsAuthStore::DeleteNoncesExpiredBy(absl::Time, WriteDone done) {
  // The nonces bucket's max age (the longest token lifetime plus a minute)
  // removes every used nonce after its token expired: nothing to sweep.
  executor_->Post([done = std::move(done)] { done(absl::OkStatus()); });
}

}  // namespace relay::backplane::nats
