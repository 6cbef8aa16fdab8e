// CoreThreadRunner: lets another thread (gRPC's) run a closure on the core's
// event-loop thread and wait for it, with a deadline. A closure whose caller
// gave up is never run, so it may safely refer to the caller's locals.
#ifndef RELAY_CMD_RELAY_CORE_THREAD_RUNNER_H_
#define RELAY_CMD_RELAY_CORE_THREAD_RUNNER_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "asio/io_context.hpp"
#include "asio/post.hpp"

namespace relay {

class CoreThreadRunner {
 public:
  CoreThreadRunner(asio::io_context* io, absl::Duration deadline) : io_(io), deadline_(deadline) {}

  // Runs `work` on the event loop; Unavailable when it did not run in time.
  absl::Status Run(const std::function<void()>& work) const {
    struct Handoff {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      bool abandoned = false;
    };
    auto handoff = std::make_shared<Handoff>();
    asio::post(*io_, [handoff, &work] {
      std::lock_guard<std::mutex> lock(handoff->mu);
      if (handoff->abandoned) return;  // `work` may be gone: the caller left
      work();
      handoff->done = true;
      handoff->cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(handoff->mu);
    if (!handoff->cv.wait_for(lock, absl::ToChronoMilliseconds(deadline_),
                              [&] { return handoff->done; })) {
      handoff->abandoned = true;
      return absl::UnavailableError("the relay's event loop did not answer in time");
    }
    return absl::OkStatus();
  }

 private:
  asio::io_context* const io_;
  const absl::Duration deadline_;
};

}  // namespace relay

#endif  // RELAY_CMD_RELAY_CORE_THREAD_RUNNER_H_
