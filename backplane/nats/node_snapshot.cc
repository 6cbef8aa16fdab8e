#include "backplane/nats/node_snapshot.h"

#include <algorithm>
#include <memory>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backplane/nats/nats_names.h"
#include "backplane/nats/proto/presence.pb.h"
#include "server/limits.h"

namespace relay::backplane::nats {

absl::StatusOr<std::vector<LiveNode>> ReadLiveNodes(const KvBucket& nodes,
                                                    const IsLiveInstance& is_live,
                                                    const std::optional<std::string>& mesh_id) {
  // Keys start with the mesh's token, so one mesh is picked out by key
  // without decoding the others' values.
  std::string prefix;
  if (mesh_id.has_value()) {
    absl::StatusOr<std::string> key = MeshKey(*mesh_id);
    if (!key.ok()) return key.status();
    prefix = *key + ".";
  }
  // A watch's initial values are the bucket as it is now, ended by a
  // marker: only a read that reached the marker is whole.
  absl::StatusOr<std::unique_ptr<KvBucket::Watch>> watch = nodes.WatchAll();
  if (!watch.ok()) {
    return absl::UnavailableError(
        absl::StrCat("reading ", nodes.name(), ": ", watch.status().message()));
  }
  std::vector<LiveNode> live;
  for (;;) {
    absl::StatusOr<std::optional<KvEntry>> next =
        (*watch)->Next(absl::Milliseconds(limits::kNatsKvWaitMs));
    if (!next.ok()) {
      return absl::UnavailableError(
          absl::StrCat("reading ", nodes.name(), ": ", next.status().message()));
    }
    if (!next->has_value()) break;
    const KvEntry& entry = **next;
    if (entry.deleted || !absl::StartsWith(entry.key, prefix)) continue;
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
