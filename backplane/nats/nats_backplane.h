// NatsBackplane: the core's Backplane (server/core/backplane.h) on NATS, so
// that relay instances sharing one NATS and one RELAY_CLUSTER share every
// mesh (docs/adr/0009-cluster-on-nats.md).
//
//   InstanceLinks   every envelope, in order and resent when lost, to the
//                   one inbox of each instance it is for;
//   InstanceLeases  which instances live; a silent one is declared dead;
//   KV buckets      who follows each mesh (follow), who holds each node id
//                   (nodes), written by compare-and-set on a KvWorker.
//
// It carries envelopes and reports facts (who follows, who holds, who
// died); the rules stay in the core.
//
// Threads: the Backplane calls run on the core thread, and so does
// everything this class hands the core (through the CoreExecutor). Its
// core-side state below is the core thread's alone; the other threads
// (nats.c's inbox delivery, the leases', the KV worker's) only post to it.
#ifndef RELAY_BACKPLANE_NATS_NATS_BACKPLANE_H_
#define RELAY_BACKPLANE_NATS_NATS_BACKPLANE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backplane/nats/instance_leases.h"
#include "backplane/nats/instance_links.h"
#include "backplane/nats/kv_bucket.h"
#include "backplane/nats/kv_worker.h"
#include "backplane/nats/nats_connection.h"
#include "backplane/nats/node_snapshot.h"
#include "server/core/backplane.h"
#include "server/core/core_executor.h"

namespace relay::backplane::nats {

struct ClusterSettings {
  std::string cluster = "atmosphere";  // RELAY_CLUSTER
  std::string instance_id;             // RELAY_INSTANCE_ID
  int kv_replicas = 3;                 // NATS_KV_REPLICAS
  // MAX_MESSAGE_BYTES: NATS's max_payload must carry an envelope of it.
  std::size_t max_message_bytes = 0;
};

// What /ready and gRPC health show, and why not when not.
struct ClusterReadiness {
  bool ready = false;
  std::string reason;  // empty when ready
};

class NatsBackplane final : public core::Backplane {
 public:
  // Builds it; nothing blocks. Start() connects it to the cluster in the
  // background (NATS may be unreachable at start).
  NatsBackplane(NatsConnection* connection, ClusterSettings settings, core::CoreExecutor* executor);
  NatsBackplane(const NatsBackplane&) = delete;
  NatsBackplane& operator=(const NatsBackplane&) = delete;
  ~NatsBackplane() override;

  // Opens the buckets, claims this instance's lease and subscribes its
  // inbox, retrying while NATS is away. `on_fatal` runs on the core thread
  // if the instance cannot go on (its id is in use by a live process, NATS
  // refuses the bucket config, or it was fenced): log and exit.
  void Start(std::function<void(absl::Status)> on_fatal);
  // Graceful stop, after the core let go of every member: waits (bounded)
  // for what is queued to reach NATS, then marks the lease stopped.
  // Blocking; not on the core thread.
  void Stop();

  // Another part the instance cannot serve without (the shared
  // authentication store): Readiness() says `reason` while `ready` answers
  // false. Set before Start; `ready` must be thread-safe.
  void RequireAlso(std::string reason, std::function<bool()> ready);

  // Thread-safe.
  ClusterReadiness Readiness() const;
  // Every live instance's lease (relayctl stats' cluster totals).
  std::map<std::string, relay::nats::v1::InstanceLease> LiveInstances() const;
  void SetSummary(InstanceLeases::Summary summary);
  // Every node a live instance holds, of `mesh_id` only when given (the
  // operator's cluster-wide view, nats_cluster_view.h). Blocking, bounded
  // by NATS timeouts: never on the core thread. UNAVAILABLE before the
  // cluster is joined, while NATS is unreachable, or when the read breaks
  // off.
  absl::StatusOr<std::vector<LiveNode>> ReadNodes(const std::optional<std::string>& mesh_id) const;
  InstanceLinks::Counters link_counters() const;
  // The last round trip to NATS, in seconds; NaN before the first.
  double nats_rtt_seconds() const { return rtt_seconds_.load(std::memory_order_relaxed); }
  // NATS said reconnected: resend what may have been lost.
  void OnConnectionChange();

  // core::Backplane, on the core thread.
  const std::string& instance_id() const override { return settings_.instance_id; }
  bool clustered() const override { return true; }
  void SetListener(core::BackplaneListener* listener) override { listener_ = listener; }
  void Subscribe(const std::string& mesh_id, std::function<void()> ready) override;
  void Unsubscribe(const std::string& mesh_id) override;
  bool Publish(const relay::v1::BackplaneEnvelope& envelope) override;
  bool Send(const std::string& instance_id, const relay::v1::BackplaneEnvelope& envelope) override;
  void ClaimNode(const std::string& mesh_id, const relay::v1::RosterMember& member,
                 std::uint64_t expected_revision,
                 std::function<void(core::NodeClaim)> done) override;
  void MeshHasMembers(const std::string& mesh_id,
                      std::function<void(absl::StatusOr<bool>)> done) override;
  void ReleaseNode(const std::string& mesh_id, const std::string& node_id) override;

 private:
  struct PendingRoster {
    std::function<void()> ready;
    std::set<std::string> waiting;  // instances whose roster_end is awaited
    absl::Time deadline;
  };
  // Whatever is opened once NATS answers; fixed afterwards.
  struct Opened {
    std::unique_ptr<KvBucket> instances;
    std::unique_ptr<KvBucket> follow;
    std::unique_ptr<KvBucket> nodes;
    std::unique_ptr<InstanceLeases> leases;
    std::unique_ptr<InstanceLinks> links;
  };

  // KV worker side.
  void OpenCluster();
  // Adds (or removes) this instance in `mesh_id`'s followers by
  // compare-and-set; the followers it found, others than this one.
  absl::StatusOr<std::vector<std::pair<std::string, std::uint64_t>>> WriteFollow(
      const std::string& mesh_id, bool follow);
  // One compare-and-set of a node entry, and what stopped it.
  core::NodeClaim WriteClaim(const std::string& mesh_id, const relay::v1::RosterMember& member,
                             std::uint64_t expected_revision);

  // Core side.
  void OnReceived(InstanceLinks::Received received);
  void OnFollowWritten(const std::string& mesh_id,
                       absl::StatusOr<std::vector<std::pair<std::string, std::uint64_t>>> others);
  void OnAlive(const std::string& id, std::uint64_t incarnation);
  void OnDead(const std::string& id, std::uint64_t incarnation);
  // Removes what `id` left in the KV buckets, if this instance is the one
  // to (dead_instance_sweep.h).
  void MaybeSweep(const std::string& id, std::uint64_t incarnation);
  // On a KV worker: any node entry of `mesh_id` held by a live instance.
  absl::StatusOr<bool> ReadMeshHasMembers(const std::string& mesh_id) const;
  void OnTick();
  void StopWaitingFor(const std::string& mesh_id, const std::string& instance);
  bool SendItem(const std::string& to, std::string item, bool refusable);
  void SendRosterRequest(const std::string& mesh_id, const std::string& to);
  bool Live(const std::string& id) const;

  NatsConnection* const connection_;
  const ClusterSettings settings_;
  core::CoreExecutor* const executor_;
  const std::uint64_t incarnation_;
  std::function<void(absl::Status)> on_fatal_;
  // Written before Start only, so read without a lock.
  std::vector<std::pair<std::string, std::function<bool()>>> also_required_;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> opened_{false};  // set once `cluster_` is complete
  std::atomic<bool> payload_fits_{true};
  std::atomic<double> rtt_seconds_{std::numeric_limits<double>::quiet_NaN()};
  Opened cluster_;
  // Follow writes, in order. Declared after cluster_, so it stops (running
  // what is queued) while the buckets it writes still exist.
  KvWorker worker_;
  // Sweeps after dead instances (a whole bucket read each): apart from
  // worker_, so joins never queue behind one.
  KvWorker sweeper_;
  std::thread ticker_;  // opens the cluster, then ticks the core side

  // The core thread's.
  core::BackplaneListener* listener_ = nullptr;
  std::map<std::string, std::uint64_t> instances_;  // live: id -> incarnation
  std::set<std::pair<std::string, std::uint64_t>> dead_;
  std::map<std::string, std::set<std::string>> followers_;  // mesh -> other instances
  std::set<std::string> subscribed_;
  std::map<std::string, PendingRoster> pending_;
  std::set<std::string> unfollowed_;  // subscribed, follow entry not written yet
  std::set<std::string> retrying_;    // of those, with a write queued
  // Node entries this instance won, at the revision it wrote: what a
  // release may delete, and only that.
  std::map<std::pair<std::string, std::string>, std::uint64_t> claimed_;
  // A wake of the links' publisher is posted to the core thread (SendItem).
  bool wake_posted_ = false;
};

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_NATS_BACKPLANE_H_
