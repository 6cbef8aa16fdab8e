#include "server/core/llm_dispatch.h"

#include <algorithm>

namespace relay::core {

std::optional<MemberId> LlmDispatch::Pick(const std::vector<Candidate>& candidates) {
  if (candidates.empty()) return std::nullopt;
  auto load = [this](const Candidate& c) { return HeldBy(c.id) + c.held_elsewhere; };
  std::size_t fewest = load(candidates.front());
  for (const Candidate& c : candidates) fewest = std::min(fewest, load(c));

  // Round robin among the least loaded: the first one after the last pick in
  // join order, wrapping to the first one.
  const Candidate* first_tied = nullptr;
  const Candidate* next_tied = nullptr;
  for (const Candidate& c : candidates) {
    if (load(c) != fewest) continue;
    if (first_tied == nullptr) first_tied = &c;
    if (next_tied == nullptr && last_pick_ < c.key) next_tied = &c;
  }
  const Candidate* chosen = next_tied != nullptr ? next_tied : first_tied;
  last_pick_ = chosen->key;
  return chosen->id;
}

void LlmDispatch::Track(ConnectionId requester, absl::string_view request_id, MemberId responder,
                        absl::Time at) {
  auto [it, inserted] = pending_.try_emplace(std::make_pair(requester, std::string(request_id)),
                                             Assignment{responder, next_order_++, at});
  if (!inserted) {
    // Same request_id again: the newest dispatch is the one that counts.
    --held_[it->second.responder];
    it->second = Assignment{responder, next_order_ - 1, at};
  } else {
    ++requested_[requester];
    requested_bytes_[requester] += PendingBytes(request_id);
  }
  ++held_[responder];
}

bool LlmDispatch::Settle(ConnectionId requester, absl::string_view request_id, MemberId responder,
                         absl::Time* dispatched_at) {
  auto it = pending_.find(std::make_pair(requester, std::string(request_id)));
  if (it == pending_.end() || it->second.responder != responder) return false;
  if (dispatched_at != nullptr) *dispatched_at = it->second.at;
  pending_.erase(it);
  Forget(requester, request_id, responder);
  return true;
}

std::vector<LlmDispatch::Pending> LlmDispatch::ResponderGone(MemberId responder) {
  std::vector<std::pair<std::uint64_t, Pending>> gone;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.responder == responder) {
      gone.push_back({it->second.order, Pending{it->first.first, it->first.second}});
      Forget(it->first.first, it->first.second, responder);
      pending_.erase(it++);
    } else {
      ++it;
    }
  }
  std::sort(gone.begin(), gone.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Pending> result;
  result.reserve(gone.size());
  for (auto& [order, pending] : gone) result.push_back(std::move(pending));
  held_.erase(responder);
  return result;
}

void LlmDispatch::RequesterGone(ConnectionId requester) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->first.first == requester) {
      Forget(requester, it->first.second, it->second.responder);
      pending_.erase(it++);
    } else {
      ++it;
    }
  }
  requested_.erase(requester);
  requested_bytes_.erase(requester);
}

void LlmDispatch::RenameRequester(ConnectionId from, ConnectionId to) {
  std::vector<std::pair<std::string, Assignment>> moved;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->first.first == from) {
      moved.emplace_back(it->first.second, it->second);
      pending_.erase(it++);
    } else {
      ++it;
    }
  }
  for (auto& [request_id, assignment] : moved) {
    pending_.emplace(std::make_pair(to, std::move(request_id)), assignment);
  }
  // Read, then erased, then added: operator[] may rehash under an iterator.
  for (auto* counts : {&requested_, &requested_bytes_}) {
    auto it = counts->find(from);
    if (it == counts->end()) continue;
    const std::size_t count = it->second;
    counts->erase(it);
    (*counts)[to] += count;
  }
}

std::vector<MemberId> LlmDispatch::RespondersOf(ConnectionId requester) const {
  std::vector<MemberId> out;
  for (const auto& [key, assignment] : pending_) {
    if (key.first == requester &&
        std::find(out.begin(), out.end(), assignment.responder) == out.end()) {
      out.push_back(assignment.responder);
    }
  }
  return out;
}

std::size_t LlmDispatch::HeldBy(MemberId responder) const {
  auto it = held_.find(responder);
  return it == held_.end() ? 0 : it->second;
}

std::size_t LlmDispatch::RequestedBy(ConnectionId requester) const {
  auto it = requested_.find(requester);
  return it == requested_.end() ? 0 : it->second;
}

std::size_t LlmDispatch::RequestedBytesBy(ConnectionId requester) const {
  auto it = requested_bytes_.find(requester);
  return it == requested_bytes_.end() ? 0 : it->second;
}

void LlmDispatch::Forget(ConnectionId requester, absl::string_view request_id, MemberId responder) {
  if (auto it = held_.find(responder); it != held_.end() && --it->second == 0) held_.erase(it);
  if (auto it = requested_bytes_.find(requester); it != requested_bytes_.end()) {
    it->second -= std::min(it->second, PendingBytes(request_id));
    if (it->second == 0) requested_bytes_.erase(it);
  }
  if (auto it = requested_.find(requester); it != requested_.end() && --it->second == 0) {
    requested_.erase(it);
  }
}

}  // namespace relay::core
