// InstanceLeases: which relay instances of the cluster are alive
// (docs/adr/0009-cluster-on-nats.md, section 3, "Lease" to "No false
// peer_left").
//
// nats-server 2.9 has no per-key TTL, and an entry that ages out makes no
// watch event, so death is a compare-and-set like everything else: each
// instance rewrites its lease every second; every instance watches all
// leases and, while it is itself healthy, writes a tombstone over a lease
// whose revision has not moved for kInstanceDeadAfter, at the revision it
// saw. Only one such write can win, and it fails if the instance wrote in
// the meantime. Every watcher sees the tombstone and calls the instance
// dead; the instance itself, if it was only cut off, finds its next write
// refused and is fenced.
//
// Threads: one of its own (heartbeat, watch, sweep); callbacks run there
// and must only post. State queries are thread-safe.
#ifndef RELAY_BACKPLANE_NATS_INSTANCE_LEASES_H_
#define RELAY_BACKPLANE_NATS_INSTANCE_LEASES_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backplane/nats/kv_bucket.h"
#include "backplane/nats/nats_connection.h"
#include "backplane/nats/proto/presence.pb.h"

namespace relay::backplane::nats {

class InstanceLeases {
 public:
  struct Callbacks {
    // A lease of (id, incarnation) is live: first seen, or a new process.
    std::function<void(const std::string& id, std::uint64_t incarnation)> on_alive;
    // (id, incarnation) is dead: a tombstone (its own at a graceful stop,
    // or written by whoever noticed its silence).
    std::function<void(const std::string& id, std::uint64_t incarnation)> on_dead;
    // This instance cannot go on: it was declared dead while cut off.
    std::function<void(absl::Status)> on_fenced;
  };
  // How this instance's counts reach the others (relayctl stats' totals).
  struct Summary {
    std::uint64_t connections = 0;
    std::uint64_t peers = 0;
    std::uint64_t messages_relayed = 0;
  };

  // Writes this instance's lease (blocking): created, or taken over from a
  // stopped or silent process of the same id. AlreadyExists
  // (instance_id_in_use) when a live process holds the id; Unavailable when
  // NATS cannot answer. Then starts the thread.
  static absl::StatusOr<std::unique_ptr<InstanceLeases>> Start(NatsConnection* connection,
                                                               KvBucket* bucket, std::string self,
                                                               std::uint64_t incarnation,
                                                               Callbacks callbacks);
  InstanceLeases(const InstanceLeases&) = delete;
  InstanceLeases& operator=(const InstanceLeases&) = delete;
  ~InstanceLeases();

  // A graceful stop: the thread ends and the lease becomes a tombstone, so
  // the others learn at once (blocking, bounded by one KV call).
  void StopAndTombstone();

  // The initial values of the watch are in: every live instance is known.
  bool synced() const { return synced_.load(std::memory_order_acquire); }
  // The lease was renewed within kLeaseEchoFreshness, as seen by the watch.
  bool fresh() const;
  // Whether (id, incarnation) holds a live lease now. Thread-safe.
  bool IsLive(const std::string& id, std::uint64_t incarnation) const;
  // Every live instance's lease, this one's included.
  std::map<std::string, relay::nats::v1::InstanceLease> Live() const;
  void SetSummary(Summary summary);

 private:
  struct Seen {
    relay::nats::v1::InstanceLease lease;
    std::uint64_t revision = 0;
    std::chrono::steady_clock::time_point changed;  // when `revision` last moved
  };

  InstanceLeases(NatsConnection* connection, KvBucket* bucket, std::string self,
                 std::uint64_t incarnation, Callbacks callbacks);
  absl::Status Claim();
  void Run();
  void Beat();
  void Sweep();
  void OnEntry(const KvEntry& entry);
  relay::nats::v1::InstanceLease OwnLease(bool dead) const;

  NatsConnection* const connection_;
  KvBucket* const bucket_;
  const std::string self_;
  const std::uint64_t incarnation_;
  const Callbacks callbacks_;
  const double started_at_;

  mutable std::mutex mu_;  // leaf
  std::map<std::string, Seen> seen_;
  Summary summary_;
  std::uint64_t revision_ = 0;                    // of this instance's lease, last written
  std::chrono::steady_clock::time_point echoed_;  // the watch last showed our write
  // Silence is counted from here at most: from when this instance last
  // became healthy, so its own outage never looks like everyone else's.
  std::chrono::steady_clock::time_point healthy_since_;
  bool was_healthy_ = false;

  std::atomic<bool> synced_{false};
  std::atomic<bool> stopping_{false};
  bool fenced_ = false;  // the thread's only
  std::thread thread_;
};

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_INSTANCE_LEASES_H_
