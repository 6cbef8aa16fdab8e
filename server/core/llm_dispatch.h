// LlmDispatch: which capable member answers an llm request, and which
// requests this instance dispatched are outstanding where, for one mesh.
//
// Fairness: the candidate holding the fewest outstanding requests wins; ties
// go round robin in join order, starting after the last member picked. A
// request is outstanding from dispatch until the responder's first
// llm_response for it, or until either side leaves.
//
// Requesters are this instance's connections (ConnectionId); responders
// are roster members, wherever they are (MemberId). A candidate's load is
// what this instance dispatched to it plus what other instances report
// (Candidate::held_elsewhere), so the rule holds across instances
// (docs/adr/0008-llm-fairness-across-instances.md).
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
#include "server/core/join_key.h"
#include "server/limits.h"

namespace relay::core {

// A roster member's handle on this instance; never reused.
using MemberId = std::uint64_t;

class LlmDispatch {
 public:
  struct Candidate {
    JoinKey key;  // position in the mesh's join order
    MemberId id;
    std::size_t held_elsewhere = 0;  // outstanding there from other instances
  };
  struct Pending {
    ConnectionId requester;
    std::string request_id;  // raw JSON
  };

  // Picks one of `candidates` (given in join order), or nullopt when empty.
  std::optional<MemberId> Pick(const std::vector<Candidate>& candidates);

  // Records that `responder` now holds `request_id` from `requester`. A
  // request_id the requester already has pending is re-assigned.
  // `at` is when it was dispatched (reported back by Settle).
  void Track(ConnectionId requester, absl::string_view request_id, MemberId responder,
             absl::Time at = absl::InfinitePast());

  // The responder answered: forgets the request. False when nothing matched
  // (an answer to no one's request, or a second chunk of a streamed answer).
  // When it matched and `dispatched_at` is given, sets it to Track's `at`.
  bool Settle(ConnectionId requester, absl::string_view request_id, MemberId responder,
              absl::Time* dispatched_at = nullptr);

  // The responder left: forgets and returns every request it held, oldest
  // first, so each requester can be told.
  std::vector<Pending> ResponderGone(MemberId responder);

  // The requester left: forgets its requests (their answers have no one to
  // go to).
  void RequesterGone(ConnectionId requester);
  // The requester's connection changed (a resume session moved to a new
  // one): its requests are `to`'s now, answers go there.
  void RenameRequester(ConnectionId from, ConnectionId to);
  // The responders holding `requester`'s requests (each once).
  std::vector<MemberId> RespondersOf(ConnectionId requester) const;

  // Outstanding at `responder` from this instance's requesters.
  std::size_t HeldBy(MemberId responder) const;
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
    MemberId responder;
    std::uint64_t order;  // dispatch order, to report oldest first
    absl::Time at;
  };
  void Forget(ConnectionId requester, absl::string_view request_id, MemberId responder);

  JoinKey last_pick_;
  std::uint64_t next_order_ = 0;
  absl::flat_hash_map<std::pair<ConnectionId, std::string>, Assignment> pending_;
  absl::flat_hash_map<MemberId, std::size_t> held_;
  absl::flat_hash_map<ConnectionId, std::size_t> requested_;
  absl::flat_hash_map<ConnectionId, std::size_t> requested_bytes_;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_LLM_DISPATCH_H_
