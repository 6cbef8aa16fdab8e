// KvWorker: one thread that runs blocking KV calls in the order they were
// queued, so the core thread never waits on NATS and one key's operations
// never overtake each other (docs/adr/0009-cluster-on-nats.md, section 6).
#ifndef RELAY_BACKPLANE_NATS_KV_WORKER_H_
#define RELAY_BACKPLANE_NATS_KV_WORKER_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

namespace relay::backplane::nats {

class KvWorker {
 public:
  KvWorker() : thread_([this] { Run(); }) {}
  KvWorker(const KvWorker&) = delete;
  KvWorker& operator=(const KvWorker&) = delete;
  // Runs what is queued, then stops.
  ~KvWorker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  // Any thread.
  void Post(std::function<void()> work) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(work));
    }
    wake_.notify_one();
  }

  // Waits until everything queued so far ran, up to `timeout`; true if so.
  bool WaitIdle(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return idle_.wait_for(lock, timeout, [this] { return queue_.empty() && !busy_; });
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and all ran
      std::function<void()> work = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      lock.unlock();
      work();
      lock.lock();
      busy_ = false;
      if (queue_.empty()) idle_.notify_all();
    }
  }

  std::mutex mu_;  // leaf
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the rest is built
};

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_KV_WORKER_H_
