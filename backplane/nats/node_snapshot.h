// ReadLiveNodes: the nodes bucket (one entry per registered node, key
// <mesh_tok>.<node_tok>) as it is now, whole or one mesh's keys (a filtered
// KvBucket::Entries), keeping only entries of
// live instances: an entry a dead instance left behind, before it is swept,
// is treated as absent, as every other reader does (ADR 0009, section 3).
// Blocking (NATS round trips): never on the core thread.
#ifndef RELAY_BACKPLANE_NATS_NODE_SNAPSHOT_H_
#define RELAY_BACKPLANE_NATS_NODE_SNAPSHOT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "backplane/nats/kv_bucket.h"
#include "relay/v1/relay.pb.h"

namespace relay::backplane::nats {

struct LiveNode {
  std::string mesh_id;
  relay::v1::RosterMember member;  // `instance` says who holds it
};

// Whether (instance_id, incarnation) holds a live lease now.
using IsLiveInstance = std::function<bool(const std::string&, std::uint64_t)>;

// Every live node, of `mesh_id` only when given, in (mesh_id, node_id)
// order. UNAVAILABLE when the bucket cannot be read to its end.
absl::StatusOr<std::vector<LiveNode>> ReadLiveNodes(const KvBucket& nodes,
                                                    const IsLiveInstance& is_live,
                                                    const std::optional<std::string>& mesh_id);

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_NODE_SNAPSHOT_H_
