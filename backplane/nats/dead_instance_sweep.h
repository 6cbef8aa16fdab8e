// SweepDeadInstance: removes what a dead relay instance left in the
// cluster's KV buckets (docs/adr/0009-cluster-on-nats.md, section 3).
//
// Readers already treat a dead instance's node entries as absent, and every
// follow write drops dead followers, so nothing here is needed for
// correctness. Without it, though, each instance that dies (a crash, a
// SIGKILL, an OOM kill: most deaths give no chance to release) leaves one
// node entry per peer it held and its follow marks for good, and a
// cluster-wide view listing the buckets would list them.
//
// Every removal is conditional on the revision read: an entry someone took
// over, or rewrote, meanwhile stays. Only entries of exactly that instance
// and incarnation go (a process that came back under the same id is
// another incarnation). Blocking: on a KV worker thread, never the core's.
#ifndef RELAY_BACKPLANE_NATS_DEAD_INSTANCE_SWEEP_H_
#define RELAY_BACKPLANE_NATS_DEAD_INSTANCE_SWEEP_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "backplane/nats/kv_bucket.h"

namespace relay::backplane::nats {

struct SweepCounts {
  std::size_t nodes = 0;    // node entries deleted
  std::size_t follows = 0;  // follow entries rewritten or deleted
};

// Reads every entry of both buckets once. Unavailable when NATS does not
// answer; what was removed before that stays removed.
absl::StatusOr<SweepCounts> SweepDeadInstance(const KvBucket& nodes, const KvBucket& follow,
                                              const std::string& instance_id,
                                              std::uint64_t incarnation);

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_DEAD_INSTANCE_SWEEP_H_
