// DrainController: the relay's graceful shutdown, started by SIGTERM/SIGINT
// or by `relayctl drain` (Admin.Drain).
//
//   1. readiness false: gRPC health NOT_SERVING, HTTP /ready 503, new
//      WebSocket upgrades and gRPC streams refused;
//   2. every connection is sent server_draining and keeps working for the
//      grace period (in-flight llm requests may complete), or until the last
//      one left;
//   3. every remaining connection is closed (WebSocket 1001), then the event
//      loop stops once they are gone (at most `close_timeout` later) and the
//      process exits 0.
//
// Time comes from an injected core::Clock (a SteadyClock in the relay, a
// FakeClock in tests): the loop's timer only says when to look again, the
// clock says whether a deadline has passed.
//
// Threading: Begin() runs on the event loop (the core's thread).
#ifndef RELAY_CMD_RELAY_DRAIN_CONTROLLER_H_
#define RELAY_CMD_RELAY_DRAIN_CONTROLLER_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/io_context.hpp"
#include "asio/steady_timer.hpp"
#include "server/admin/admin_service.h"
#include "server/core/clock.h"
#include "server/core/relay_core.h"
#include "server/limits.h"

namespace relay {

class DrainController {
 public:
  struct Hooks {
    std::function<void()> stop_accepting;  // health NOT_SERVING, refuse new streams
    std::function<void()> close_all;       // the gateway's Shutdown: 1001 to everyone
    std::function<void()> on_closing;      // step 3 began (main stops gRPC meanwhile)
  };
  // `io`, `core` and `clock` must outlive the controller. The grace and
  // close phases look every `poll_interval` whether everyone already left.
  DrainController(asio::io_context* io, core::RelayCore* core, const core::Clock* clock,
                  absl::Duration default_grace, absl::Duration close_timeout, Hooks hooks,
                  absl::Duration poll_interval = limits::kDrainPollInterval);

  // Starts draining. `grace` zero uses the default. FAILED_PRECONDITION when
  // already draining.
  absl::StatusOr<admin::DrainResult> Begin(absl::Duration grace, absl::string_view why);
  bool draining() const { return draining_; }

 private:
  void WaitForGrace(absl::Time until);
  void CloseEveryone();
  void StopWhenClosed(absl::Time give_up);
  // Runs `next` once `poll_interval_` has passed on the loop's timer.
  void LookAgain(void (DrainController::*next)(absl::Time), absl::Time deadline);

  asio::io_context* const io_;
  core::RelayCore* const core_;
  const core::Clock* const clock_;
  const absl::Duration default_grace_;
  const absl::Duration close_timeout_;
  const Hooks hooks_;
  const absl::Duration poll_interval_;
  asio::steady_timer timer_;
  bool draining_ = false;
};

}  // namespace relay

#endif  // RELAY_CMD_RELAY_DRAIN_CONTROLLER_H_
