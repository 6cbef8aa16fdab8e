// EventLoop: a single-threaded, level-triggered epoll loop. Handlers get their
// readiness events, and may ask for one OnFlush() call at the end of the
// current turn, so that every message queued while handling a batch of reads
// leaves in one write per socket.
#ifndef RELAY_BENCH_RELAY_BENCH_EVENT_LOOP_H_
#define RELAY_BENCH_RELAY_BENCH_EVENT_LOOP_H_

#include <sys/epoll.h>

#include <cstdint>
#include <vector>

namespace relay::bench {

class IoHandler {
 public:
  virtual void OnIo(std::uint32_t events) = 0;
  virtual void OnFlush() {}

 protected:
  ~IoHandler() = default;
};

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Watches `fd` for input, and for output when `want_write`.
  bool Add(int fd, IoHandler* handler, bool want_write);
  bool Modify(int fd, IoHandler* handler, bool want_write);
  void Remove(int fd);

  // Runs handler->OnFlush() once at the end of this turn. The handler must
  // not ask twice per turn (it keeps its own flag) and must outlive the turn.
  void DeferFlush(IoHandler* handler) { flush_.push_back(handler); }

  // Waits up to `timeout_ns` (0: do not wait) for events, dispatches them,
  // then runs the deferred flushes. Returns the number of events.
  int RunOnceNs(std::uint64_t timeout_ns);
  int RunOnce(int timeout_ms) { return RunOnceNs(static_cast<std::uint64_t>(timeout_ms) * 1000000); }

 private:
  int epoll_fd_ = -1;
  std::vector<epoll_event> events_;
  std::vector<IoHandler*> flush_;
  std::vector<IoHandler*> flushing_;
};

// CLOCK_MONOTONIC in nanoseconds: the clock of every timestamp in relay-bench.
std::uint64_t NowNs();

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_EVENT_LOOP_H_
