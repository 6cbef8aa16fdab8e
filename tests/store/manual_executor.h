// ManualExecutor: a core::CoreExecutor that runs what was posted only when
// the test says so, on the test's thread (which plays the core thread).
// Thread-safe: a store's worker thread may post while the test waits.
#ifndef RELAY_TESTS_STORE_MANUAL_EXECUTOR_H_
#define RELAY_TESTS_STORE_MANUAL_EXECUTOR_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <utility>

#include "server/core/core_executor.h"

namespace relay::store::testing {

class ManualExecutor final : public core::CoreExecutor {
 public:
  void Post(std::function<void()> work) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      posted_.push_back(std::move(work));
    }
    posted_cv_.notify_all();
  }

  std::size_t pending() const {
    std::lock_guard<std::mutex> lock(mu_);
    return posted_.size();
  }

  // Runs what was posted, in order, including what that posts; returns how
  // many ran.
  std::size_t RunAll() {
    std::size_t ran = 0;
    while (RunOne()) ++ran;
    return ran;
  }

  // Runs the oldest posted work; false when there is none.
  bool RunOne() {
    std::function<void()> work;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (posted_.empty()) return false;
      work = std::move(posted_.front());
      posted_.pop_front();
    }
    work();
    return true;
  }

  // Waits until something was posted (for answers from another thread),
  // at most `timeout`; false when nothing came.
  bool WaitForPost(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return posted_cv_.wait_for(lock, timeout, [this] { return !posted_.empty(); });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable posted_cv_;
  std::deque<std::function<void()>> posted_;
};

}  // namespace relay::store::testing

#endif  // RELAY_TESTS_STORE_MANUAL_EXECUTOR_H_
