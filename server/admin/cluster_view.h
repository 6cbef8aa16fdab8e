// ClusterView: what the Admin API may ask about the whole cluster (cluster
// mode), without knowing how it is kept: which instances live and what each
// holds (their leases' counts), and every node registered on any instance.
// Implemented over NATS by backplane/nats/nats_cluster_view.h; absent (null)
// when the relay runs alone.
//
// Threads: every call is thread-safe. LiveInstances() answers from memory;
// Nodes() makes NATS round trips and blocks, so it is called from gRPC's
// handler threads, never from the core thread (whose event loop must not
// wait on NATS).
#ifndef RELAY_SERVER_ADMIN_CLUSTER_VIEW_H_
#define RELAY_SERVER_ADMIN_CLUSTER_VIEW_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace relay::admin {

// One live instance, as its lease (rewritten every second) tells it.
struct InstanceSummary {
  std::string instance_id;
  double started_at = 0;  // Unix seconds
  std::uint64_t open_sockets = 0;
  std::uint64_t registered_peers = 0;
  std::uint64_t messages_relayed = 0;
};

// One node registered somewhere in the cluster.
struct ClusterNode {
  std::string mesh_id;
  std::string node_id;
  std::string name;
  std::vector<std::string> capabilities;
  double joined_at = 0;  // Unix seconds
  std::string instance;  // the instance holding its connection
};

class ClusterView {
 public:
  virtual ~ClusterView() = default;

  virtual const std::string& instance_id() const = 0;
  // Every live instance, this one included, by instance_id.
  virtual std::vector<InstanceSummary> LiveInstances() const = 0;
  // Every node held by a live instance, of `mesh_id` only when given, in
  // (mesh_id, node_id) order. UNAVAILABLE when the cluster's store cannot
  // be read whole: never a partial list presented as the whole.
  virtual absl::StatusOr<std::vector<ClusterNode>> Nodes(
      const std::optional<std::string>& mesh_id) const = 0;
};

}  // namespace relay::admin

#endif  // RELAY_SERVER_ADMIN_CLUSTER_VIEW_H_
