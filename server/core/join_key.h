// JoinKey: a member's place in its mesh's join order, cluster-wide.
//
// Each instance numbers joins with a Lamport clock (one more than the
// highest number it has seen, local or remote), so a join that follows
// another, wherever it happened, sorts after it; equal numbers from
// concurrent joins on two instances are ordered by instance id. One process
// alone counts 1, 2, 3... as it always did.
#ifndef RELAY_SERVER_CORE_JOIN_KEY_H_
#define RELAY_SERVER_CORE_JOIN_KEY_H_

#include <cstdint>
#include <string>
#include <tuple>

namespace relay::core {

struct JoinKey {
  std::uint64_t seq = 0;
  std::string instance;

  friend bool operator<(const JoinKey& a, const JoinKey& b) {
    return std::tie(a.seq, a.instance) < std::tie(b.seq, b.instance);
  }
  friend bool operator==(const JoinKey& a, const JoinKey& b) {
    return a.seq == b.seq && a.instance == b.instance;
  }
  friend bool operator!=(const JoinKey& a, const JoinKey& b) { return !(a == b); }
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_JOIN_KEY_H_
