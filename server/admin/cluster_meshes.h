// The cluster-wide mesh views of the Admin API (cluster mode): the nodes
// every instance holds (ClusterView::Nodes) merged with what this
// instance's core knows of its own meshes and connections. Pure functions,
// no I/O: AdminService reads both sides, then calls these.
#ifndef RELAY_SERVER_ADMIN_CLUSTER_MESHES_H_
#define RELAY_SERVER_ADMIN_CLUSTER_MESHES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "relay/v1/relay.pb.h"
#include "server/admin/cluster_view.h"

namespace relay::admin {

// Every mesh with a member on any instance, sorted and paged as `request`
// says (page tokens are offsets, as the core's). peer_count counts members
// cluster-wide; created_at and messages_relayed are this instance's figures
// when it knows the mesh (`local`, the core's whole list), else the first
// member's joined_at and 0. INVALID_ARGUMENT for a foreign page token.
absl::StatusOr<relay::v1::ListMeshesResponse> ClusterMeshList(
    const std::vector<ClusterNode>& nodes, const relay::v1::ListMeshesResponse& local,
    const relay::v1::ListMeshesRequest& request);

// One mesh's members wherever they are, each with the instance holding it,
// in join order. Members this instance holds get their connection's
// details from `local` (the core's GetMesh: NOT_FOUND when it holds none).
// NOT_FOUND when no instance holds a member of it.
absl::StatusOr<relay::v1::GetMeshResponse> ClusterMeshDetail(
    const std::string& mesh_id, const std::vector<ClusterNode>& nodes,
    const absl::StatusOr<relay::v1::GetMeshResponse>& local);

}  // namespace relay::admin

#endif  // RELAY_SERVER_ADMIN_CLUSTER_MESHES_H_
