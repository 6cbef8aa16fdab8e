// ExpiryQueue<Key>: keys ordered by when they expire, so housekeeping pops
// what is due instead of walking everything it keeps each second. Each key
// is in the queue at most once; scheduling it again moves it.
//
// Threading: not thread-safe (core thread, like its owners).
#ifndef RELAY_SERVER_CORE_EXPIRY_QUEUE_H_
#define RELAY_SERVER_CORE_EXPIRY_QUEUE_H_

#include <cstddef>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace relay::core {

template <typename Key>
class ExpiryQueue {
 public:
  // `key` expires at `at` (replacing any earlier schedule of it).
  void Schedule(const Key& key, absl::Time at) {
    Cancel(key);
    by_time_.emplace(at, key);
    when_.emplace(key, at);
  }

  // `key` no longer expires (absent keys are ignored).
  void Cancel(const Key& key) {
    auto it = when_.find(key);
    if (it == when_.end()) return;
    by_time_.erase({it->second, key});
    when_.erase(it);
  }

  // Removes and returns the keys past their expiry at `now` (expiry < now:
  // a record is still valid at its expiry instant, as join tokens are),
  // soonest first.
  std::vector<Key> PopDue(absl::Time now) {
    std::vector<Key> due;
    while (!by_time_.empty() && by_time_.begin()->first < now) {
      auto first = by_time_.begin();
      due.push_back(first->second);
      when_.erase(first->second);
      by_time_.erase(first);
    }
    return due;
  }

  bool contains(const Key& key) const { return when_.contains(key); }
  std::size_t size() const { return when_.size(); }

 private:
  std::set<std::pair<absl::Time, Key>> by_time_;
  absl::flat_hash_map<Key, absl::Time> when_;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_EXPIRY_QUEUE_H_
