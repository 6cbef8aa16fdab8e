// LlmDispatch: which capable peer answers an llm request, and which requests
// each peer holds, for one mesh.
//
// Fairness: the candidate holding the fewest outstanding requests wins; ties
// go round robin in join order, starting after the last peer picked. A
// request is outstanding from dispatch until the responder's first
// llm_response for it, or until either side leaves.
#ifndef RELAY_SERVER_CORE_LLM_DISPATCH_H_
#define RELAY_SERVER_CORE_LLM_DISPATCH_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/connection_id.h"
#include "server/limits.h"

namespace relay::core {

class LlmDispatch {
 public:
  struct Candidate {
    std::uint64_t join_seq;  // position in the mesh's join order
    ConnectionId id;
  };
  struct Pending {
    ConnectionId requester;
    std::string request_id;  // raw JSON
  };

  // Picks one of `candidates` (given in join order), or nullopt when empty.
  std::optional<ConnectionId> Pick(const std::vector<Candidate>& candidates);

  // Records that `responder` now holds `request_id` from `requester`. A
  // request_id the requester already has pending is re-assigned.
  // `at` is when it was dispatched (reported back by Settle).
  void Track(ConnectionId requester, absl::string_view request_id, ConnectionId responder,
             absl::Time at = absl::InfinitePast());

  // The responder answered: forgets the request. False when nothing matched
  // (an answer to no one's request, or a second chunk of a streamed answer).
  // When it matched and `dispatched_at` is given, sets it to Track's `at`.
  bool Settle(ConnectionId requester, absl::string_view request_id, ConnectionId responder,
              absl::Time* dispatched_at = nullptr);

  // The responder left: forgets and returns every request it held, oldest
  // first, so each requester can be told.
  std::vector<Pending> ResponderGone(ConnectionId responder);

  // The requester left: forgets its requests (their answers have no one to
  // go to).
  void RequesterGone(ConnectionId requester);

  std::size_t HeldBy(ConnectionId responder) const;
  std::size_t RequestedBy(ConnectionId requester) const;
  // What the requester's waiting requests cost the dispatcher: each one's
  // request_id plus kPendingOverheadBytes.
  std::size_t RequestedBytesBy(ConnectionId requester) const;
  // The bytes one more request with `request_id` would add.
  static std::size_t PendingBytes(absl::string_view request_id) {
    return request_id.size() + kPendingOverheadBytes;
  }
  // A waiting request's bookkeeping beyond its request_id.
  static constexpr std::size_t kPendingOverheadBytes = limits::kPendingLlmOverheadBytes;
  std::size_t pending() const { return pending_.size(); }

 private:
  struct Assignment {
    ConnectionId responder;
    std::uint64_t order;  // dispatch order, to report oldest first
    absl::Time at;
  };
  void Forget(ConnectionId requester, absl::string_view request_id, ConnectionId responder);

  std::uint64_t last_pick_seq_ = 0;
  std::uint64_t next_order_ = 0;
  absl::flat_hash_map<std::pair<ConnectionId, std::string>, Assignment> pending_;
  absl::flat_hash_map<ConnectionId, std::size_t> held_;
  absl::flat_hash_map<ConnectionId, std::size_t> requested_;
  absl::flat_hash_map<ConnectionId, std::size_t> requested_bytes_;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_LLM_DISPATCH_H_
