#include "backplane/nats/nats_backplane.h"

#include <chrono>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backplane/nats/dead_instance_sweep.h"
#include "backplane/nats/frame_codec.h"
#include "backplane/nats/nats_names.h"
#include "backplane/nats/proto/presence.pb.h"
#include "server/core/arena_event.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::backplane::nats {
namespace {

using relay::nats::v1::Followers;
using Others = std::vector<std::pair<std::string, std::uint64_t>>;

// An envelope must fit in one NATS message with room for the frame around
// it (ADR 0009, "Size").
constexpr std::size_t kFrameOverheadBytes = 64u << 10;
// How often the core side looks at its roster deadlines and follow retries.
constexpr std::chrono::milliseconds kTickInterval{500};
// How often the round trip to NATS is measured (a PING/PONG, off the core).
constexpr std::chrono::seconds kRttInterval{5};
// How long start-up waits before saying NATS is unreachable (it goes on
// trying).
constexpr std::chrono::seconds kUnreachableAfter{2};
// A graceful stop waits this long for its last frames and KV writes.
constexpr std::chrono::seconds kStopFlush{2};
// Lost compare-and-set races on one follow entry before giving up for now.
constexpr int kFollowAttempts = 8;

std::uint64_t NewIncarnation() {
  absl::BitGen gen;
  std::uint64_t incarnation = 0;
  while (incarnation == 0) incarnation = absl::Uniform<std::uint64_t>(gen);
  return incarnation;
}

}  // namespace

NatsBackplane::NatsBackplane(NatsConnection* connection, ClusterSettings settings,
                             core::CoreExecutor* executor)
    : connection_(connection),
      settings_(std::move(settings)),
      executor_(executor),
      incarnation_(NewIncarnation()) {}

NatsBackplane::~NatsBackplane() {
  stopping_.store(true);
  if (ticker_.joinable()) ticker_.join();
}

void NatsBackplane::Start(std::function<void(absl::Status)> on_fatal) {
  on_fatal_ = std::move(on_fatal);
  ticker_ = std::thread([this] {
    OpenCluster();
    auto next_rtt = std::chrono::steady_clock::now();
    while (!stopping_.load()) {
      std::this_thread::sleep_for(kTickInterval);
      if (opened_.load()) executor_->Post([this] { OnTick(); });
      if (std::chrono::steady_clock::now() >= next_rtt && connection_->connected()) {
        next_rtt = std::chrono::steady_clock::now() + kRttInterval;
        std::int64_t rtt_ns = 0;
        if (natsConnection_GetRTT(connection_->raw(), &rtt_ns) == NATS_OK) {
          rtt_seconds_.store(static_cast<double>(rtt_ns) / 1e9, std::memory_order_relaxed);
        }
      }
    }
  });
}

void NatsBackplane::Stop() {
  if (stopping_.exchange(true)) return;
  if (ticker_.joinable()) ticker_.join();
  if (!opened_.load()) return;
  worker_.WaitIdle(kStopFlush);
  cluster_.links->WaitAcked(kStopFlush);
  cluster_.leases->StopAndTombstone();
}

void NatsBackplane::OpenCluster() {
  const auto began = std::chrono::steady_clock::now();
  bool said_unreachable = false;
  auto fatal = [this](absl::Status status) {
    executor_->Post([this, status] { on_fatal_(status); });
  };
  while (!stopping_.load()) {
    if (!connection_->connected()) {
      if (!said_unreachable && std::chrono::steady_clock::now() - began >= kUnreachableAfter) {
        said_unreachable = true;
        log::Event(log::Level::kWarn, log::LogEvent::kNatsUnreachable)
            .Str("what", "cannot reach NATS yet; retrying, not ready meanwhile");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    const std::int64_t max_payload = natsConnection_GetMaxPayload(connection_->raw());
    if (max_payload <
        static_cast<std::int64_t>(settings_.max_message_bytes + kFrameOverheadBytes)) {
      if (payload_fits_.exchange(false)) {
        log::Error("cluster: NATS max_payload is ", max_payload, " bytes; MAX_MESSAGE_BYTES ",
                   settings_.max_message_bytes, " needs at least ",
                   settings_.max_message_bytes + kFrameOverheadBytes,
                   ": raise max_payload on the NATS servers or lower MAX_MESSAGE_BYTES; not ready");
      }
    } else {
      payload_fits_.store(true);
    }
    Opened opened;
    absl::Status status;
    auto open = [&](Bucket bucket, absl::Duration max_age) -> std::unique_ptr<KvBucket> {
      if (!status.ok()) return nullptr;
      KvBucketConfig config;
      config.name = BucketName(settings_.cluster, bucket);
      config.replicas = settings_.kv_replicas;
      config.max_age = max_age;
      bool differs = false;
      absl::StatusOr<std::unique_ptr<KvBucket>> kv =
          KvBucket::Open(connection_->raw(), config, &differs);
      if (!kv.ok()) {
        status = kv.status();
        return nullptr;
      }
      if (differs) {
        log::Event(log::Level::kWarn, log::LogEvent::kKvConfigDiffers).Str("bucket", config.name);
      }
      return std::move(*kv);
    };
    opened.instances = open(Bucket::kInstances, limits::kInstanceLeaseMaxAge);
    opened.follow = open(Bucket::kFollow, absl::ZeroDuration());
    opened.nodes = open(Bucket::kNodes, absl::ZeroDuration());
    if (status.ok()) {
      InstanceLeases::Callbacks callbacks;
      callbacks.on_alive = [this](const std::string& id, std::uint64_t incarnation) {
        executor_->Post([this, id, incarnation] { OnAlive(id, incarnation); });
      };
      callbacks.on_dead = [this](const std::string& id, std::uint64_t incarnation) {
        executor_->Post([this, id, incarnation] { OnDead(id, incarnation); });
      };
      callbacks.on_fenced = [fatal](absl::Status why) { fatal(why); };
      absl::StatusOr<std::unique_ptr<InstanceLeases>> leases =
          InstanceLeases::Start(connection_, opened.instances.get(), settings_.instance_id,
                                incarnation_, std::move(callbacks));
      if (leases.ok()) {
        opened.leases = std::move(*leases);
      } else {
        status = leases.status();
      }
    }
    if (status.ok()) {
      opened.links = std::make_unique<InstanceLinks>(
          connection_, settings_.cluster, settings_.instance_id, incarnation_,
          [this](InstanceLinks::Received received) {
            executor_->Post([this, received = std::move(received)]() mutable {
              OnReceived(std::move(received));
            });
          });
      status = opened.links->Start();
    }
    if (status.ok()) {
      cluster_ = std::move(opened);
      opened_.store(true, std::memory_order_release);
      log::Info("cluster: instance ", settings_.instance_id, " joined cluster ", settings_.cluster);
      return;
    }
    if (absl::IsInvalidArgument(status) || absl::IsAlreadyExists(status)) {
      fatal(status);
      return;
    }
    log::Event(log::Level::kWarn, log::LogEvent::kNatsUnreachable)
        .Str("what", std::string(status.message()));
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

ClusterReadiness NatsBackplane::Readiness() const {
  if (!connection_->connected()) return {false, "NATS is unreachable"};
  if (!payload_fits_.load()) return {false, "NATS max_payload is below MAX_MESSAGE_BYTES + 64 KiB"};
  if (!opened_.load(std::memory_order_acquire)) return {false, "joining the cluster"};
  if (!cluster_.leases->synced()) return {false, "reading the cluster's instances"};
  if (!cluster_.leases->fresh()) return {false, "this instance's lease is not being renewed"};
  for (const auto& [reason, ready] : also_required_) {
    if (!ready()) return {false, reason};
  }
  return {true, ""};
}

void NatsBackplane::RequireAlso(std::string reason, std::function<bool()> ready) {
  also_required_.emplace_back(std::move(reason), std::move(ready));
}

std::map<std::string, relay::nats::v1::InstanceLease> NatsBackplane::LiveInstances() const {
  if (!opened_.load(std::memory_order_acquire)) return {};
  return cluster_.leases->Live();
}

void NatsBackplane::SetSummary(InstanceLeases::Summary summary) {
  if (opened_.load(std::memory_order_acquire)) cluster_.leases->SetSummary(summary);
}

absl::StatusOr<std::vector<LiveNode>> NatsBackplane::ReadNodes(
    const std::optional<std::string>& mesh_id) const {
  if (!opened_.load(std::memory_order_acquire)) {
    return absl::UnavailableError("not joined to the cluster yet");
  }
  // Fail at once rather than after a KV timeout: the operator asked now.
  if (!connection_->connected()) return absl::UnavailableError("NATS is unreachable");
  return ReadLiveNodes(
      *cluster_.nodes,
      [this](const std::string& id, std::uint64_t incarnation) {
        return cluster_.leases->IsLive(id, incarnation);
      },
      mesh_id);
}

InstanceLinks::Counters NatsBackplane::link_counters() const {
  if (!opened_.load(std::memory_order_acquire)) return {};
  return cluster_.links->counters();
}

void NatsBackplane::OnConnectionChange() {
  if (opened_.load(std::memory_order_acquire) && connection_->connected()) {
    cluster_.links->ResendAll();
  }
}

// --- KV worker ---------------------------------------------------------------

absl::StatusOr<Others> NatsBackplane::WriteFollow(const std::string& mesh_id, bool follow) {
  if (!opened_.load(std::memory_order_acquire)) {
    return absl::UnavailableError("not joined to the cluster yet");
  }
  absl::StatusOr<std::string> key = MeshKey(mesh_id);
  if (!key.ok()) return key.status();
  for (int attempt = 0; attempt < kFollowAttempts; ++attempt) {
    Followers stored;
    std::uint64_t revision = 0;
    bool present = false;
    absl::StatusOr<KvEntry> entry = cluster_.follow->Get(*key);
    if (entry.ok()) {
      revision = entry->revision;
      present = !entry->deleted;
      if (present && !stored.ParseFromString(entry->value)) stored.Clear();
    } else if (!absl::IsNotFound(entry.status())) {
      return entry.status();
    }
    // Entries of instances that are not live are dropped by every writer.
    Others others;
    Followers next;
    for (const Followers::Follower& f : stored.followers()) {
      if (f.instance_id() == settings_.instance_id) continue;
      if (!cluster_.leases->IsLive(f.instance_id(), f.incarnation())) continue;
      others.emplace_back(f.instance_id(), f.incarnation());
      *next.add_followers() = f;
    }
    if (follow) {
      Followers::Follower* self = next.add_followers();
      self->set_instance_id(settings_.instance_id);
      self->set_incarnation(incarnation_);
    }
    absl::Status written;
    if (next.followers().empty()) {
      if (present) written = cluster_.follow->Delete(*key, revision);
    } else {
      written = cluster_.follow->Put(*key, next.SerializeAsString(), revision).status();
    }
    if (written.ok()) return others;
    if (!absl::IsAborted(written)) return written;
  }
  return absl::UnavailableError(absl::StrCat("mesh ", mesh_id, ": follow entry kept changing"));
}

// --- Core thread -------------------------------------------------------------

void NatsBackplane::Subscribe(const std::string& mesh_id, std::function<void()> ready) {
  subscribed_.insert(mesh_id);
  PendingRoster& pending = pending_[mesh_id];
  if (pending.ready) {
    // Asked again before the first answer: both wait for the same rosters.
    pending.ready = [first = std::move(pending.ready), second = std::move(ready)] {
      first();
      second();
    };
  } else {
    pending.ready = std::move(ready);
  }
  pending.deadline = absl::Now() + limits::kRosterWait;
  worker_.Post([this, mesh_id] {
    absl::StatusOr<Others> others = WriteFollow(mesh_id, true);
    executor_->Post([this, mesh_id, others = std::move(others)]() mutable {
      OnFollowWritten(mesh_id, std::move(others));
    });
  });
}

void NatsBackplane::OnFollowWritten(const std::string& mesh_id, absl::StatusOr<Others> others) {
  if (subscribed_.count(mesh_id) == 0) return;  // left meanwhile; its removal is queued
  auto pending = pending_.find(mesh_id);
  if (!others.ok()) {
    log::Event(log::Level::kWarn, log::LogEvent::kBackplaneUnreachable)
        .Str("mesh", mesh_id)
        .Str("what", std::string(others.status().message()));
    // Joining goes on (what must cross is refused while NATS is away); the
    // follow entry is written again by OnTick until it lands.
    unfollowed_.insert(mesh_id);
    if (pending != pending_.end()) {
      std::function<void()> ready = std::move(pending->second.ready);
      pending_.erase(pending);
      ready();
    }
    return;
  }
  unfollowed_.erase(mesh_id);
  std::set<std::string>& followers = followers_[mesh_id];
  for (const auto& [id, incarnation] : *others) {
    if (dead_.count({id, incarnation}) > 0) continue;
    auto known = instances_.find(id);
    if (known != instances_.end() && known->second != incarnation) continue;  // an old process
    instances_.emplace(id, incarnation);  // the lease watch may lag the entry
    followers.insert(id);
    if (pending != pending_.end()) pending->second.waiting.insert(id);
    SendRosterRequest(mesh_id, id);
  }
  if (pending != pending_.end() && pending->second.waiting.empty()) {
    std::function<void()> ready = std::move(pending->second.ready);
    pending_.erase(pending);
    ready();
  }
}

void NatsBackplane::Unsubscribe(const std::string& mesh_id) {
  subscribed_.erase(mesh_id);
  pending_.erase(mesh_id);
  unfollowed_.erase(mesh_id);
  auto it = followers_.find(mesh_id);
  if (it != followers_.end()) {
    for (const std::string& to : it->second) {
      SendItem(to, UnfollowItem(mesh_id), /*refusable=*/false);
    }
    followers_.erase(it);
  }
  worker_.Post([this, mesh_id] {
    absl::StatusOr<Others> removed = WriteFollow(mesh_id, false);
    if (!removed.ok() && !stopping_.load()) {
      // Harmless: writers drop entries of dead instances, and a follower
      // that is not there answers roster requests with an empty roster.
      log::Event(log::Level::kWarn, log::LogEvent::kBackplaneUnreachable)
          .Str("mesh", mesh_id)
          .Str("what", std::string(removed.status().message()));
    }
  });
}

bool NatsBackplane::Publish(const relay::v1::BackplaneEnvelope& envelope) {
  auto it = followers_.find(envelope.mesh_id());
  if (it == followers_.end() || it->second.empty()) return true;
  if (!opened_.load(std::memory_order_acquire)) return false;
  const std::string item = EnvelopeItem(envelope);
  bool all = true;
  for (const std::string& to : it->second) {
    all = SendItem(to, item, envelope.has_delivery()) && all;
  }
  return all;
}

bool NatsBackplane::Send(const std::string& instance_id,
                         const relay::v1::BackplaneEnvelope& envelope) {
  if (!Live(instance_id)) return false;
  return SendItem(instance_id, EnvelopeItem(envelope), envelope.has_delivery());
}

bool NatsBackplane::SendItem(const std::string& to, std::string item, bool refusable) {
  if (!opened_.load(std::memory_order_acquire)) return false;
  if (!cluster_.links->Send(to, std::move(item), refusable, InstanceLinks::Wakeup::kLater)) {
    return false;
  }
  if (!wake_posted_) {
    // Once the handlers already queued on the core thread have run (and
    // sent what they send), not once per item: the publisher then frames
    // everything they sent together. Unloaded, that is right after this
    // handler.
    wake_posted_ = true;
    executor_->Post([this] {
      wake_posted_ = false;
      if (opened_.load(std::memory_order_acquire)) cluster_.links->Wake();
    });
  }
  return true;
}

void NatsBackplane::SendRosterRequest(const std::string& mesh_id, const std::string& to) {
  relay::v1::BackplaneEnvelope request;
  request.set_mesh_id(mesh_id);
  request.set_from_instance(settings_.instance_id);
  request.mutable_roster_request();
  SendItem(to, EnvelopeItem(request), /*refusable=*/false);
}

void NatsBackplane::ClaimNode(const std::string& mesh_id, const relay::v1::RosterMember& member,
                              std::uint64_t expected_revision,
                              std::function<void(core::NodeClaim)> done) {
  worker_.Post([this, mesh_id, member, expected_revision, done = std::move(done)]() mutable {
    core::NodeClaim claim = WriteClaim(mesh_id, member, expected_revision);
    executor_->Post([this, key = std::make_pair(mesh_id, member.node_id()),
                     claim = std::move(claim), done = std::move(done)]() mutable {
      if (claim.outcome == core::NodeClaim::Outcome::kClaimed) claimed_[key] = claim.revision;
      done(std::move(claim));
    });
  });
}

void NatsBackplane::ReleaseNode(const std::string& mesh_id, const std::string& node_id) {
  auto it = claimed_.find({mesh_id, node_id});
  if (it == claimed_.end()) return;
  const std::uint64_t revision = it->second;
  claimed_.erase(it);
  worker_.Post([this, mesh_id, node_id, revision] {
    if (!opened_.load(std::memory_order_acquire)) return;
    absl::StatusOr<std::string> key = NodeKey(mesh_id, node_id);
    if (!key.ok()) return;
    // A conflict means someone took the id over: their entry stays. An
    // outage leaves ours, which readers treat as absent once we are gone.
    cluster_.nodes->Delete(*key, revision).IgnoreError();
  });
}

core::NodeClaim NatsBackplane::WriteClaim(const std::string& mesh_id,
                                          const relay::v1::RosterMember& member,
                                          std::uint64_t expected_revision) {
  core::NodeClaim claim;  // kUnavailable
  if (!opened_.load(std::memory_order_acquire) || !connection_->connected()) return claim;
  absl::StatusOr<std::string> key = NodeKey(mesh_id, member.node_id());
  if (!key.ok()) return claim;
  relay::nats::v1::NodeEntry entry;
  *entry.mutable_member() = member;
  entry.set_incarnation(incarnation_);
  const std::string value = entry.SerializeAsString();
  absl::StatusOr<std::uint64_t> written = expected_revision == 0
                                              ? cluster_.nodes->Create(*key, value)
                                              : cluster_.nodes->Put(*key, value, expected_revision);
  if (written.ok()) {
    claim.outcome = core::NodeClaim::Outcome::kClaimed;
    claim.revision = *written;
    return claim;
  }
  if (!absl::IsAborted(written.status())) return claim;
  absl::StatusOr<KvEntry> held = cluster_.nodes->Get(*key);
  claim.outcome = core::NodeClaim::Outcome::kHeld;
  if (absl::IsNotFound(held.status()) || (held.ok() && held->deleted))
    return claim;  // gone: absent
  if (!held.ok()) return core::NodeClaim{};
  relay::nats::v1::NodeEntry holder;
  if (!holder.ParseFromString(held->value)) return claim;  // unreadable: treated as absent
  claim.revision = held->revision;
  claim.holder = holder.member();
  claim.holder_live = cluster_.leases->IsLive(holder.member().instance(), holder.incarnation());
  return claim;
}

bool NatsBackplane::Live(const std::string& id) const { return instances_.count(id) > 0; }

void NatsBackplane::OnReceived(InstanceLinks::Received received) {
  const std::string& from = received.from;
  if (dead_.count({from, received.incarnation}) > 0) return;  // posted before it was declared dead
  auto known = instances_.find(from);
  if (known != instances_.end() && known->second != received.incarnation) {
    OnDead(from, known->second);  // a new process under the same id
  }
  instances_[from] = received.incarnation;
  if (received.restarted) {
    // Its frames may have been lost or repeated: forget what it holds and
    // ask again for every mesh both follow.
    log::Event(log::Level::kWarn, log::LogEvent::kBackplaneReset).Str("instance", from);
    std::vector<std::string> shared;
    for (const auto& [mesh_id, followers] : followers_) {
      if (followers.count(from) > 0) shared.push_back(mesh_id);
    }
    if (listener_ != nullptr) listener_->OnInstanceGone(from);
    for (const std::string& mesh_id : shared) {
      if (subscribed_.count(mesh_id) > 0) SendRosterRequest(mesh_id, from);
    }
  }
  for (const FrameView::Item& item : received.items) {
    if (item.kind == FrameView::Item::Kind::kUnfollowMesh) {
      auto it = followers_.find(std::string(item.bytes));
      if (it != followers_.end()) it->second.erase(from);
      continue;
    }
    core::ArenaEnvelope parsed;
    if (!parsed->ParseFromArray(item.bytes.data(), static_cast<int>(item.bytes.size()))) continue;
    std::shared_ptr<relay::v1::BackplaneEnvelope> envelope = std::move(parsed).Share();
    envelope->set_from_instance(from);  // what the link says, not what it claims
    const std::string& mesh_id = envelope->mesh_id();
    if (envelope->has_roster_end()) {
      StopWaitingFor(mesh_id, from);
      continue;
    }
    if (envelope->has_roster_request()) {
      followers_[mesh_id].insert(from);
      if (subscribed_.count(mesh_id) == 0) {
        relay::v1::BackplaneEnvelope end;
        end.set_mesh_id(mesh_id);
        end.set_from_instance(settings_.instance_id);
        end.mutable_roster_end();
        SendItem(from, EnvelopeItem(end), /*refusable=*/false);
        continue;
      }
    }
    if (listener_ != nullptr) listener_->OnEnvelope(std::move(envelope));
  }
}

void NatsBackplane::StopWaitingFor(const std::string& mesh_id, const std::string& instance) {
  auto pending = pending_.find(mesh_id);
  if (pending == pending_.end() || pending->second.waiting.erase(instance) == 0) return;
  if (!pending->second.waiting.empty()) return;
  std::function<void()> ready = std::move(pending->second.ready);
  pending_.erase(pending);
  ready();
}

void NatsBackplane::OnAlive(const std::string& id, std::uint64_t incarnation) {
  if (dead_.count({id, incarnation}) > 0) return;
  auto known = instances_.find(id);
  if (known != instances_.end() && known->second != incarnation) OnDead(id, known->second);
  instances_[id] = incarnation;
}

void NatsBackplane::OnDead(const std::string& id, std::uint64_t incarnation) {
  if (!dead_.insert({id, incarnation}).second) return;
  auto known = instances_.find(id);
  // An older process's death says nothing about the newer one's members.
  if (known == instances_.end() || known->second != incarnation) return;
  instances_.erase(known);
  for (auto& [mesh_id, followers] : followers_) followers.erase(id);
  std::vector<std::string> waiting;
  for (const auto& [mesh_id, pending] : pending_) {
    if (pending.waiting.count(id) > 0) waiting.push_back(mesh_id);
  }
  for (const std::string& mesh_id : waiting) StopWaitingFor(mesh_id, id);
  if (opened_.load(std::memory_order_acquire)) {
    cluster_.links->Forget(id);
    MaybeSweep(id, incarnation);
  }
  if (listener_ != nullptr) listener_->OnInstanceGone(id);
}

void NatsBackplane::MeshHasMembers(const std::string& mesh_id,
                                   std::function<void(absl::StatusOr<bool>)> done) {
  // On the sweeper: a read of one mesh's entries, never ahead of a join's
  // claim on the other worker.
  sweeper_.Post([this, mesh_id, done = std::move(done)]() mutable {
    absl::StatusOr<bool> live = ReadMeshHasMembers(mesh_id);
    executor_->Post(
        [done = std::move(done), live = std::move(live)]() mutable { done(std::move(live)); });
  });
}

absl::StatusOr<bool> NatsBackplane::ReadMeshHasMembers(const std::string& mesh_id) const {
  if (!opened_.load(std::memory_order_acquire) || !connection_->connected()) {
    return absl::UnavailableError("NATS is unreachable");
  }
  // This instance's own members the core knows better than its entries
  // (one whose release is still queued is gone already).
  absl::StatusOr<std::vector<LiveNode>> others = ReadLiveNodes(
      *cluster_.nodes,
      [this](const std::string& id, std::uint64_t incarnation) {
        return id != settings_.instance_id && cluster_.leases->IsLive(id, incarnation);
      },
      mesh_id);
  if (!others.ok()) return others.status();
  return !others->empty();
}

void NatsBackplane::MaybeSweep(const std::string& id, std::uint64_t incarnation) {
  // One live instance cleans up: the one with the smallest id. Two that see
  // the cluster differently both sweep, harmlessly (every removal is
  // conditional); none leaves entries readers treat as absent anyway.
  for (const auto& [other, lease] : cluster_.leases->Live()) {
    if (other < settings_.instance_id) return;
  }
  sweeper_.Post([this, id, incarnation] {
    absl::StatusOr<SweepCounts> swept =
        SweepDeadInstance(*cluster_.nodes, *cluster_.follow, id, incarnation);
    if (!swept.ok()) {
      log::Event(log::Level::kWarn, log::LogEvent::kDeadInstanceSwept)
          .Str("instance", id)
          .Str("why", std::string(swept.status().message()));
      return;
    }
    log::Event(log::Level::kInfo, log::LogEvent::kDeadInstanceSwept)
        .Str("instance", id)
        .Uint("nodes", swept->nodes)
        .Uint("follows", swept->follows);
  });
}

void NatsBackplane::OnTick() {
  const absl::Time now = absl::Now();
  std::vector<std::string> late;
  for (const auto& [mesh_id, pending] : pending_) {
    if (!pending.waiting.empty() && now >= pending.deadline) late.push_back(mesh_id);
  }
  for (const std::string& mesh_id : late) {
    auto pending = pending_.find(mesh_id);
    for (const std::string& id : pending->second.waiting) {
      log::Event(log::Level::kWarn, log::LogEvent::kRosterTimeout)
          .Str("mesh", mesh_id)
          .Str("instance", id);
    }
    // Members it holds that arrive later still produce peer_joined.
    std::function<void()> ready = std::move(pending->second.ready);
    pending_.erase(pending);
    ready();
  }
  for (const std::string& mesh_id : unfollowed_) {
    if (!retrying_.insert(mesh_id).second) continue;
    worker_.Post([this, mesh_id] {
      absl::StatusOr<Others> others = WriteFollow(mesh_id, true);
      executor_->Post([this, mesh_id, others = std::move(others)]() mutable {
        retrying_.erase(mesh_id);
        OnFollowWritten(mesh_id, std::move(others));
      });
    });
  }
}

}  // namespace relay::backplane::nats
