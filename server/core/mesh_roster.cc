#include "server/core/mesh_roster.h"

#include <algorithm>
#include <utility>

namespace relay::core {
Member* MeshRoster::Find(absl::string_view node_id) {
  auto it = by_node_.find(node_id);
  return it == by_node_.end() ? nullptr : it->second.get();
}

const Member* MeshRoster::Find(absl::string_view node_id) const {
  auto it = by_node_.find(node_id);
  return it == by_node_.end() ? nullptr : it->second.get();
}

Member& MeshRoster::Add(Member member) {
  auto owned = std::make_unique<Member>(std::move(member));
  Member& added = *owned;
  by_join_.emplace(added.key, &added);
  if (added.local()) {
    ++local_members_;
  } else {
    ++remote_[added.instance()];
  }
  by_node_.emplace(added.node_id, std::move(owned));
  return added;
}

void MeshRoster::Remove(absl::string_view node_id) {
  auto it = by_node_.find(node_id);
  if (it == by_node_.end()) return;
  Member& member = *it->second;
  by_join_.erase(member.key);
  if (member.local()) {
    --local_members_;
  } else if (auto remote = remote_.find(member.instance()); remote != remote_.end()) {
    if (--remote->second == 0) remote_.erase(remote);
  }
  by_node_.erase(it);
}

void MeshRoster::SetLlmHeldElsewhere(Member& member, const std::string& instance,
                                     std::size_t held) {
  auto it = member.llm_held_elsewhere.find(instance);
  const std::size_t before = it == member.llm_held_elsewhere.end() ? 0 : it->second;
  member.llm_held_elsewhere_total = member.llm_held_elsewhere_total - before + held;
  if (held == 0) {
    if (it != member.llm_held_elsewhere.end()) member.llm_held_elsewhere.erase(it);
  } else {
    member.llm_held_elsewhere[instance] = held;
  }
}

}  // namespace relay::core
