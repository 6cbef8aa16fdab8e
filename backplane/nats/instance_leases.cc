#include "backplane/nats/instance_leases.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::backplane::nats {
namespace {

using relay::nats::v1::InstanceLease;
using Clock = std::chrono::steady_clock;

std::chrono::milliseconds Ms(absl::Duration d) { return absl::ToChronoMilliseconds(d); }

// How often the thread wakes to beat and sweep while the watch is quiet.
constexpr absl::Duration kWatchPoll = absl::Milliseconds(100);

}  // namespace

InstanceLeases::InstanceLeases(NatsConnection* connection, KvBucket* bucket, std::string self,
                               std::uint64_t incarnation, Callbacks callbacks)
    : connection_(connection),
      bucket_(bucket),
      self_(std::move(self)),
      incarnation_(incarnation),
      callbacks_(std::move(callbacks)),
      started_at_(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch())) {}

absl::StatusOr<std::unique_ptr<InstanceLeases>> InstanceLeases::Start(NatsConnection* connection,
                                                                      KvBucket* bucket,
                                                                      std::string self,
                                                                      std::uint64_t incarnation,
                                                                      Callbacks callbacks) {
  std::unique_ptr<InstanceLeases> leases(
      new InstanceLeases(connection, bucket, std::move(self), incarnation, std::move(callbacks)));
  if (absl::Status claimed = leases->Claim(); !claimed.ok()) return claimed;
  leases->echoed_ = Clock::now();
  leases->thread_ = std::thread([raw = leases.get()] { raw->Run(); });
  return leases;
}

InstanceLeases::~InstanceLeases() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

InstanceLease InstanceLeases::OwnLease(bool dead) const {
  InstanceLease lease;
  lease.set_incarnation(incarnation_);
  lease.set_started_at(started_at_);
  lease.set_dead(dead);
  lease.set_connections(summary_.connections);
  lease.set_peers(summary_.peers);
  lease.set_messages_relayed(summary_.messages_relayed);
  return lease;
}

absl::Status InstanceLeases::Claim() {
  const std::string value = OwnLease(false).SerializeAsString();
  absl::StatusOr<std::uint64_t> created = bucket_->Create(self_, value);
  if (created.ok()) {
    revision_ = *created;
    return absl::OkStatus();
  }
  if (!absl::IsAborted(created.status())) return created.status();
  // Another process used this id. It may be one that just stopped or died
  // (a restart keeps the id), or one still running: watch whether it beats.
  const Clock::time_point deadline =
      Clock::now() + Ms(limits::kInstanceDeadAfter + absl::Seconds(1));
  std::uint64_t first_revision = 0;
  for (;;) {
    absl::StatusOr<KvEntry> held = bucket_->Get(self_);
    if (!held.ok()) return held.status();
    InstanceLease lease;
    const bool stopped = held->deleted || !lease.ParseFromString(held->value) || lease.dead();
    const bool silent = absl::Now() - held->written_at >= limits::kInstanceDeadAfter;
    if (first_revision != 0 && held->revision != first_revision) {
      return absl::AlreadyExistsError(
          absl::StrCat("instance_id_in_use: another running relay uses RELAY_INSTANCE_ID ", self_,
                       " (its lease is being renewed); give each instance its own id"));
    }
    if (stopped || silent || Clock::now() >= deadline) {
      absl::StatusOr<std::uint64_t> taken = bucket_->Put(self_, value, held->revision);
      if (taken.ok()) {
        revision_ = *taken;
        return absl::OkStatus();
      }
      if (!absl::IsAborted(taken.status())) return taken.status();
      continue;  // it moved under us: look again
    }
    first_revision = held->revision;
    std::this_thread::sleep_for(Ms(limits::kInstanceHeartbeatInterval));
  }
}

void InstanceLeases::StopAndTombstone() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
  if (fenced_) return;
  std::string value;
  std::uint64_t revision = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    value = OwnLease(true).SerializeAsString();
    revision = revision_;
  }
  if (absl::StatusOr<std::uint64_t> written = bucket_->Put(self_, value, revision); !written.ok()) {
    log::Warn("cluster: could not mark this instance's lease stopped (", written.status().message(),
              "); the others will notice its silence in ",
              absl::FormatDuration(limits::kInstanceDeadAfter));
  }
}

bool InstanceLeases::fresh() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Clock::now() - echoed_ < Ms(limits::kLeaseEchoFreshness);
}

bool InstanceLeases::IsLive(const std::string& id, std::uint64_t incarnation) const {
  if (id == self_) return incarnation == incarnation_;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = seen_.find(id);
  return it != seen_.end() && !it->second.lease.dead() &&
         it->second.lease.incarnation() == incarnation;
}

std::map<std::string, InstanceLease> InstanceLeases::Live() const {
  std::map<std::string, InstanceLease> live;
  std::lock_guard<std::mutex> lock(mu_);
  live.emplace(self_, OwnLease(false));
  for (const auto& [id, seen] : seen_) {
    if (!seen.lease.dead()) live.emplace(id, seen.lease);
  }
  return live;
}

void InstanceLeases::SetSummary(Summary summary) {
  std::lock_guard<std::mutex> lock(mu_);
  summary_ = summary;
}

void InstanceLeases::Run() {
  std::unique_ptr<KvBucket::Watch> watch;
  Clock::time_point next_beat = Clock::now() + Ms(limits::kInstanceHeartbeatInterval);
  Clock::time_point next_sweep = Clock::now() + Ms(limits::kInstanceSweepInterval);
  while (!stopping_.load() && !fenced_) {
    const Clock::time_point now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      const bool healthy =
          connection_->connected() && now - echoed_ < Ms(limits::kLeaseEchoFreshness);
      if (healthy && !was_healthy_) healthy_since_ = now;
      was_healthy_ = healthy;
    }
    if (now >= next_beat) {
      next_beat = now + Ms(limits::kInstanceHeartbeatInterval);
      Beat();
    }
    if (now >= next_sweep) {
      next_sweep = now + Ms(limits::kInstanceSweepInterval);
      Sweep();
    }
    if (watch == nullptr) {
      absl::StatusOr<std::unique_ptr<KvBucket::Watch>> opened = bucket_->WatchAll();
      if (!opened.ok()) {
        std::this_thread::sleep_for(Ms(kWatchPoll));
        continue;
      }
      watch = std::move(*opened);
    }
    absl::StatusOr<std::optional<KvEntry>> next = watch->Next(kWatchPoll);
    if (absl::IsDeadlineExceeded(next.status())) continue;
    if (!next.ok()) {
      watch.reset();  // a new one replays every lease: nothing is missed
      continue;
    }
    if (!next->has_value()) {
      synced_.store(true, std::memory_order_release);
      continue;
    }
    OnEntry(**next);
  }
}

void InstanceLeases::Beat() {
  std::string value;
  std::uint64_t revision = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    value = OwnLease(false).SerializeAsString();
    revision = revision_;
  }
  absl::StatusOr<std::uint64_t> written = bucket_->Put(self_, value, revision);
  if (written.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    revision_ = *written;
    return;
  }
  if (!absl::IsAborted(written.status())) return;  // NATS is away: not ready, try again
  absl::StatusOr<KvEntry> held = bucket_->Get(self_);
  if (!held.ok()) return;
  InstanceLease lease;
  if (!held->deleted && lease.ParseFromString(held->value) && !lease.dead() &&
      lease.incarnation() == incarnation_) {
    // Our own write landed and only its answer was lost.
    std::lock_guard<std::mutex> lock(mu_);
    revision_ = held->revision;
    return;
  }
  fenced_ = true;
  callbacks_.on_fenced(absl::AbortedError(
      absl::StrCat("instance_fenced: the cluster declared instance ", self_,
                   " dead while it could not reach NATS, and its members have left everywhere")));
}

void InstanceLeases::Sweep() {
  struct Candidate {
    std::string id;
    std::string tombstone;
    std::uint64_t revision;
  };
  std::vector<Candidate> silent;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!was_healthy_) return;
    const Clock::time_point now = Clock::now();
    for (const auto& [id, seen] : seen_) {
      if (id == self_ || seen.lease.dead()) continue;
      const Clock::time_point since = std::max(seen.changed, healthy_since_);
      if (now - since < Ms(limits::kInstanceDeadAfter)) continue;
      InstanceLease tombstone = seen.lease;
      tombstone.set_dead(true);
      silent.push_back({id, tombstone.SerializeAsString(), seen.revision});
    }
  }
  for (const Candidate& candidate : silent) {
    // Wins only if the lease is still where it was seen: the watch then
    // tells every instance, this one included.
    absl::StatusOr<std::uint64_t> written =
        bucket_->Put(candidate.id, candidate.tombstone, candidate.revision);
    if (written.ok()) {
      log::Event(log::Level::kWarn, log::LogEvent::kInstanceGone)
          .Str("instance", candidate.id)
          .Str("why", "silent");
    }
  }
}

void InstanceLeases::OnEntry(const KvEntry& entry) {
  InstanceLease lease;
  if (!entry.deleted && !lease.ParseFromString(entry.value)) return;
  if (entry.deleted) lease.set_dead(true);  // only an operator deletes leases
  const std::string& id = entry.key;
  if (id == self_) {
    if (lease.incarnation() == incarnation_ && !lease.dead()) {
      std::lock_guard<std::mutex> lock(mu_);
      echoed_ = Clock::now();
    }
    return;  // being fenced shows in the next beat
  }
  InstanceLease before;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Seen& seen = seen_[id];
    known = seen.revision != 0;
    before = seen.lease;
    if (seen.revision != entry.revision) seen.changed = Clock::now();
    seen.revision = entry.revision;
    if (entry.deleted) lease.set_incarnation(before.incarnation());
    seen.lease = lease;
  }
  if (lease.dead()) {
    if (!known || !before.dead() || before.incarnation() != lease.incarnation()) {
      callbacks_.on_dead(id, lease.incarnation());
    }
    return;
  }
  if (known && !before.dead() && before.incarnation() == lease.incarnation()) return;  // a beat
  if (known && !before.dead()) callbacks_.on_dead(id, before.incarnation());           // replaced
  callbacks_.on_alive(id, lease.incarnation());
}

}  // namespace relay::backplane::nats
