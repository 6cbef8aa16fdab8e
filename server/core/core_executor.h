// CoreExecutor: how work finished on another thread (the auth store's
// worker, a backplane client) comes back to the core's one thread. The
// relay posts to its event loop; tests run what was posted when they choose.
#ifndef RELAY_SERVER_CORE_CORE_EXECUTOR_H_
#define RELAY_SERVER_CORE_CORE_EXECUTOR_H_

#include <functional>

namespace relay::core {

class CoreExecutor {
 public:
  virtual ~CoreExecutor() = default;
  // Runs `work` later on the core thread, in Post order. Any thread.
  virtual void Post(std::function<void()> work) = 0;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_CORE_EXECUTOR_H_
