#include "backplane/nats/nats_cluster_view.h"

#include <utility>

namespace relay::backplane::nats {

std::vector<admin::InstanceSummary> NatsClusterView::LiveInstances() const {
  std::vector<admin::InstanceSummary> out;
  for (const auto& [id, lease] : backplane_->LiveInstances()) {
    admin::InstanceSummary summary;
    summary.instance_id = id;
    summary.started_at = lease.started_at();
    summary.open_sockets = lease.connections();
    summary.registered_peers = lease.peers();
    summary.messages_relayed = lease.messages_relayed();
    out.push_back(std::move(summary));
  }
  return out;
}

absl::StatusOr<std::vector<admin::ClusterNode>> NatsClusterView::Nodes(
    const std::optional<std::string>& mesh_id) const {
  absl::StatusOr<std::vector<LiveNode>> live = backplane_->ReadNodes(mesh_id);
  if (!live.ok()) return live.status();
  std::vector<admin::ClusterNode> out;
  out.reserve(live->size());
  for (LiveNode& node : *live) {
    admin::ClusterNode entry;
    entry.mesh_id = std::move(node.mesh_id);
    entry.node_id = node.member.node_id();
    entry.name = node.member.name();
    entry.capabilities.assign(node.member.capabilities().begin(), node.member.capabilities().end());
    entry.joined_at = node.member.joined_at();
    entry.instance = node.member.instance();
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace relay::backplane::nats
