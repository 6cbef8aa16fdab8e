#include "backplane/nats/node_snapshot.h"

#include <algorithm>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backplane/nats/nats_names.h"
#include "backplane/nats/proto/presence.pb.h"

namespace relay::backplane::nats {

absl::StatusOr<std::vector<LiveNode>> ReadLiveNodes(const KvBucket& nodes,
                                                    const IsLiveInstance& is_live,
                                                    const std::optional<std::string>& mesh_id) {
  // Keys start with the mesh's token, so NATS picks one mesh's entries out
  // by key; only a read that reached the watch's end marker is whole.
  absl::StatusOr<std::string> filter =
      mesh_id.has_value() ? MeshNodesFilter(*mesh_id) : absl::StatusOr<std::string>(">");
  if (!filter.ok()) return filter.status();
  absl::StatusOr<std::vector<KvEntry>> entries = nodes.Entries(*filter);
  if (!entries.ok()) {
    return absl::UnavailableError(
        absl::StrCat("reading ", nodes.name(), ": ", entries.status().message()));
  }
  std::vector<LiveNode> live;
  for (KvEntry& entry : *entries) {
    const std::size_t dot = entry.key.find('.');
    if (dot == std::string::npos) continue;
    absl::StatusOr<std::string> mesh = IdFromToken(entry.key.substr(0, dot));
    relay::nats::v1::NodeEntry node;
    if (!mesh.ok() || !node.ParseFromString(entry.value)) continue;  // not ours to show
    if (!is_live(node.member().instance(), node.incarnation())) continue;
    live.push_back(LiveNode{*std::move(mesh), std::move(*node.mutable_member())});
  }
  std::sort(live.begin(), live.end(), [](const LiveNode& a, const LiveNode& b) {
    return std::tie(a.mesh_id, a.member.node_id()) < std::tie(b.mesh_id, b.member.node_id());
  });
  return live;
}

}  // namespace relay::backplane::nats
