// MeshRoster: who is in one mesh, wherever they are connected.
//
// Every rule that asks "who is here" (presence, direct routing, llm choice,
// takeover, mesh full) reads the roster, never the connections: a member is
// a record, and its location says whether this instance holds its
// connection or another instance does. A local connection keeps its own
// transport state (sink, rate buckets) in RelayCore.
#ifndef RELAY_SERVER_CORE_MESH_ROSTER_H_
#define RELAY_SERVER_CORE_MESH_ROSTER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/join_key.h"

namespace relay::core {

// The state of a connection this instance holds (RelayCore's Connection
// derives from it): a member's direct handle on it, so routing to a local
// member costs no lookup.
class LocalConnection {
 protected:
  LocalConnection() = default;
  ~LocalConnection() = default;
};

struct Member {
  std::string node_id;
  std::string name;
  std::vector<std::string> capabilities;
  absl::Time joined_at;
  // MeshAuth's credential, compared on takeover: never a secret (an open
  // mesh's token is kept as its SHA-256), so safe to share with other
  // instances.
  std::string credential_digest;
  bool proves_node = false;
  JoinKey key;
  // The revision of its node entry cluster-wide (Backplane::ClaimNode); 0
  // for a relay alone. A claim of an older revision is a stale one.
  std::uint64_t revision = 0;
  // Where its connection is: `connection` on this instance (set), or on
  // the instance `key.instance` names (null). The connection outlives its
  // membership: it leaves the roster before it closes.
  LocalConnection* connection = nullptr;
  // Its handle on this instance (LlmDispatch); never reused.
  std::uint64_t id = 0;
  // Llm requests other instances have outstanding at this member, by
  // instance (LlmLoad), and their sum.
  std::map<std::string, std::size_t> llm_held_elsewhere;
  std::size_t llm_held_elsewhere_total = 0;

  // Whether its capabilities match LLM_CAPABILITIES: set by the core
  // whenever they are (llm_capabilities.h).
  bool serves_llm = false;

  bool local() const { return connection != nullptr; }
  const std::string& instance() const { return key.instance; }
  bool CanServeLlm() const { return serves_llm; }
};

class MeshRoster {
 public:
  using JoinOrder = std::map<JoinKey, Member*>;

  // nullptr when `node_id` is not a member.
  Member* Find(absl::string_view node_id);
  const Member* Find(absl::string_view node_id) const;
  // Adds a member whose node_id is not one yet.
  Member& Add(Member member);
  // Removes `node_id` (a member).
  void Remove(absl::string_view node_id);

  const JoinOrder& in_join_order() const { return by_join_; }
  std::size_t size() const { return by_join_.size(); }
  bool empty() const { return by_join_.empty(); }
  std::size_t local_members() const { return local_members_; }
  // Other instances holding members, and how many each holds.
  const std::map<std::string, std::size_t>& remote_instances() const { return remote_; }

  // Records that `instance` has `held` llm requests outstanding at `member`.
  void SetLlmHeldElsewhere(Member& member, const std::string& instance, std::size_t held);

 private:
  absl::flat_hash_map<std::string, std::unique_ptr<Member>> by_node_;
  JoinOrder by_join_;
  std::size_t local_members_ = 0;
  std::map<std::string, std::size_t> remote_;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_MESH_ROSTER_H_
