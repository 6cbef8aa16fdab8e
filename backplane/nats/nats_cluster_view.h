// NatsClusterView: admin::ClusterView (server/admin/cluster_view.h) over a
// NatsBackplane: live instances from the leases it watches, nodes from its
// nodes bucket. Thread-safe; Nodes() blocks on NATS (see cluster_view.h).
#ifndef RELAY_BACKPLANE_NATS_NATS_CLUSTER_VIEW_H_
#define RELAY_BACKPLANE_NATS_NATS_CLUSTER_VIEW_H_

#include <optional>
#include <string>
#include <vector>

#include "backplane/nats/nats_backplane.h"
#include "server/admin/cluster_view.h"

namespace relay::backplane::nats {

class NatsClusterView final : public admin::ClusterView {
 public:
  // `backplane` must outlive the view.
  explicit NatsClusterView(const NatsBackplane* backplane) : backplane_(backplane) {}

  const std::string& instance_id() const override { return backplane_->instance_id(); }
  std::vector<admin::InstanceSummary> LiveInstances() const override;
  absl::StatusOr<std::vector<admin::ClusterNode>> Nodes(
      const std::optional<std::string>& mesh_id) const override;

 private:
  const NatsBackplane* const backplane_;
};

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_NATS_CLUSTER_VIEW_H_
