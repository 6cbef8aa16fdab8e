// What every outward view of a mesh member shares: PeerInfo (what peers
// see), PeerDetail (Admin) and RosterMember (other instances) carry the
// same node_id, name, capabilities and joined_at, filled in one place.
#ifndef RELAY_SERVER_CORE_MEMBER_FIELDS_H_
#define RELAY_SERVER_CORE_MEMBER_FIELDS_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/core/clock.h"
#include "server/core/llm_capabilities.h"
#include "server/core/mesh_roster.h"

namespace relay::core {

template <typename PeerMessage>
void SetMemberFields(const Member& member, PeerMessage& out) {
  out.set_node_id(member.node_id);
  out.set_name(member.name);
  for (const std::string& cap : member.capabilities) out.add_capabilities(cap);
  out.set_joined_at(ToEpochSeconds(member.joined_at));
}

// Sets `member`'s capabilities and what they make of it (serves_llm, by
// LLM_CAPABILITIES), in one step so the two never disagree.
template <typename Names>
void SetCapabilities(Member& member, const Names& capabilities,
                     const std::vector<std::string>& llm_capabilities) {
  member.capabilities.assign(capabilities.begin(), capabilities.end());
  member.serves_llm = ServesLlm(llm_capabilities, member.capabilities);
}

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_MEMBER_FIELDS_H_
