// epoll loop of relay-bench (see event_loop.h).
#include "bench/relay-bench/event_loop.h"

#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace relay::bench {

std::uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

EventLoop::EventLoop() : events_(1024) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    std::perror("relay-bench: epoll_create1");
    std::abort();
  }
}

EventLoop::~EventLoop() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

bool EventLoop::Add(int fd, IoHandler* handler, bool want_write) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (want_write ? EPOLLOUT : 0u);
  ev.data.ptr = handler;
  return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool EventLoop::Modify(int fd, IoHandler* handler, bool want_write) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (want_write ? EPOLLOUT : 0u);
  ev.data.ptr = handler;
  return epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void EventLoop::Remove(int fd) { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

int EventLoop::RunOnceNs(std::uint64_t timeout_ns) {
  // Anything deferred outside a turn (e.g. a send from a timer tick) must not
  // wait for an event: do not sleep while flushes are pending.
  if (!flush_.empty()) timeout_ns = 0;
  // epoll_pwait2: a nanosecond timeout, so that open-loop sends leave on time
  // (epoll_wait's milliseconds would delay them and inflate their latency).
  timespec timeout;
  timeout.tv_sec = static_cast<time_t>(timeout_ns / 1000000000);
  timeout.tv_nsec = static_cast<long>(timeout_ns % 1000000000);
  const int n = epoll_pwait2(epoll_fd_, events_.data(), static_cast<int>(events_.size()), &timeout,
                             nullptr);
  if (n < 0 && errno != EINTR) {
    std::perror("relay-bench: epoll_wait");
    std::abort();
  }
  for (int i = 0; i < n; ++i) {
    static_cast<IoHandler*>(events_[i].data.ptr)->OnIo(events_[i].events);
  }
  // A flush may defer another (it should not, but never loop forever).
  flushing_.swap(flush_);
  for (IoHandler* handler : flushing_) handler->OnFlush();
  flushing_.clear();
  if (n == static_cast<int>(events_.size())) events_.resize(events_.size() * 2);
  return n < 0 ? 0 : n;
}

}  // namespace relay::bench
