#include "server/admin/cluster_meshes.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace relay::admin {

absl::StatusOr<relay::v1::ListMeshesResponse> ClusterMeshList(
    const std::vector<ClusterNode>& nodes, const relay::v1::ListMeshesResponse& local,
    const relay::v1::ListMeshesRequest& request) {
  std::size_t offset = 0;
  if (!request.page_token().empty() && !absl::SimpleAtoi(request.page_token(), &offset)) {
    return absl::InvalidArgumentError("page_token was not handed out by this relay");
  }
  std::map<std::string, const relay::v1::MeshSummary*> known;
  for (const relay::v1::MeshSummary& mesh : local.meshes()) known[mesh.mesh_id()] = &mesh;
  std::map<std::string, relay::v1::MeshSummary> meshes;  // by mesh_id
  for (const ClusterNode& node : nodes) {
    relay::v1::MeshSummary& mesh = meshes[node.mesh_id];
    if (mesh.mesh_id().empty()) {
      mesh.set_mesh_id(node.mesh_id);
      auto it = known.find(node.mesh_id);
      if (it != known.end()) {
        mesh.set_created_at(it->second->created_at());
        mesh.set_messages_relayed(it->second->messages_relayed());
      }
    }
    mesh.set_peer_count(mesh.peer_count() + 1);
    if (known.count(node.mesh_id) == 0 &&
        (mesh.created_at() == 0 || node.joined_at < mesh.created_at())) {
      mesh.set_created_at(node.joined_at);
    }
  }
  std::vector<relay::v1::MeshSummary> order;
  order.reserve(meshes.size());
  for (auto& [id, mesh] : meshes) order.push_back(std::move(mesh));
  using Request = relay::v1::ListMeshesRequest;
  if (request.order() == Request::ORDER_PEERS) {
    std::stable_sort(order.begin(), order.end(),
                     [](const auto& a, const auto& b) { return a.peer_count() > b.peer_count(); });
  } else if (request.order() == Request::ORDER_TRAFFIC) {
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return a.messages_relayed() > b.messages_relayed();
    });
  }
  relay::v1::ListMeshesResponse response;
  response.set_total_meshes(static_cast<std::uint32_t>(order.size()));
  offset = std::min(offset, order.size());
  const std::size_t end =
      request.page_size() == 0
          ? order.size()
          : offset + std::min<std::size_t>(request.page_size(), order.size() - offset);
  for (std::size_t i = offset; i < end; ++i) *response.add_meshes() = std::move(order[i]);
  if (end < order.size()) response.set_next_page_token(absl::StrCat(end));
  return response;
}

absl::StatusOr<relay::v1::GetMeshResponse> ClusterMeshDetail(
    const std::string& mesh_id, const std::vector<ClusterNode>& nodes,
    const absl::StatusOr<relay::v1::GetMeshResponse>& local) {
  std::vector<const ClusterNode*> members;
  for (const ClusterNode& node : nodes) {
    if (node.mesh_id == mesh_id) members.push_back(&node);
  }
  if (members.empty()) return absl::NotFoundError(absl::StrCat("no live mesh \"", mesh_id, "\""));
  std::stable_sort(members.begin(), members.end(), [](const ClusterNode* a, const ClusterNode* b) {
    return std::tie(a->joined_at, a->node_id) < std::tie(b->joined_at, b->node_id);
  });
  // The connection details only the holding instance has.
  std::map<std::string, const relay::v1::PeerDetail*> here;
  if (local.ok()) {
    for (const relay::v1::PeerDetail& peer : local->peers()) here[peer.node_id()] = &peer;
  }
  relay::v1::GetMeshResponse response;
  if (local.ok()) *response.mutable_mesh() = local->mesh();
  response.mutable_mesh()->set_mesh_id(mesh_id);
  response.mutable_mesh()->set_peer_count(static_cast<std::uint32_t>(members.size()));
  if (!local.ok()) response.mutable_mesh()->set_created_at(members.front()->joined_at);
  for (const ClusterNode* node : members) {
    relay::v1::PeerDetail* detail = response.add_peers();
    auto it = here.find(node->node_id);
    // The store says who holds it; a roster that lags it keeps only its
    // counters, never its say on the instance.
    if (it != here.end() && it->second->instance() == node->instance) *detail = *it->second;
    detail->set_node_id(node->node_id);
    detail->set_name(node->name);
    detail->clear_capabilities();
    for (const std::string& capability : node->capabilities) detail->add_capabilities(capability);
    detail->set_joined_at(node->joined_at);
    detail->set_instance(node->instance);
  }
  return response;
}

}  // namespace relay::admin
