#include "backplane/nats/dead_instance_sweep.h"

#include <vector>

#include "absl/status/status.h"
#include "backplane/nats/proto/presence.pb.h"

namespace relay::backplane::nats {
namespace {

// A conflict is someone else's newer write: theirs stays, and is no failure.
absl::Status IgnoringConflicts(absl::Status status) {
  return absl::IsAborted(status) ? absl::OkStatus() : status;
}

}  // namespace

absl::StatusOr<SweepCounts> SweepDeadInstance(const KvBucket& nodes, const KvBucket& follow,
                                              const std::string& instance_id,
                                              std::uint64_t incarnation) {
  SweepCounts counts;
  absl::StatusOr<std::vector<KvEntry>> node_entries = nodes.Entries(">");
  if (!node_entries.ok()) return node_entries.status();
  for (const KvEntry& entry : *node_entries) {
    relay::nats::v1::NodeEntry node;
    if (!node.ParseFromString(entry.value)) continue;  // not ours to judge
    if (node.member().instance() != instance_id || node.incarnation() != incarnation) continue;
    absl::Status deleted = nodes.Delete(entry.key, entry.revision);
    if (deleted.ok()) ++counts.nodes;
    if (absl::Status s = IgnoringConflicts(deleted); !s.ok()) return s;
  }

  absl::StatusOr<std::vector<KvEntry>> follow_entries = follow.Entries(">");
  if (!follow_entries.ok()) return follow_entries.status();
  for (const KvEntry& entry : *follow_entries) {
    relay::nats::v1::Followers stored;
    if (!stored.ParseFromString(entry.value)) continue;
    relay::nats::v1::Followers kept;
    for (const relay::nats::v1::Followers::Follower& f : stored.followers()) {
      if (f.instance_id() == instance_id && f.incarnation() == incarnation) continue;
      *kept.add_followers() = f;
    }
    if (kept.followers_size() == stored.followers_size()) continue;
    absl::Status written =
        kept.followers().empty()
            ? follow.Delete(entry.key, entry.revision)
            : follow.Put(entry.key, kept.SerializeAsString(), entry.revision).status();
    if (written.ok()) ++counts.follows;
    if (absl::Status s = IgnoringConflicts(written); !s.ok()) return s;
  }
  return counts;
}

}  // namespace relay::backplane::nats
