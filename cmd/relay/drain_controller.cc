#include "cmd/relay/drain_controller.h"

#include <utility>

#include "server/util/log.h"

namespace relay {

DrainController::DrainController(asio::io_context* io, core::RelayCore* core,
                                 const core::Clock* clock, absl::Duration default_grace,
                                 absl::Duration close_timeout, Hooks hooks,
                                 absl::Duration poll_interval)
    : io_(io),
      core_(core),
      clock_(clock),
      default_grace_(default_grace),
      close_timeout_(close_timeout),
      hooks_(std::move(hooks)),
      poll_interval_(poll_interval),
      timer_(*io) {}

absl::StatusOr<admin::DrainResult> DrainController::Begin(absl::Duration grace,
                                                          absl::string_view why) {
  if (draining_) return absl::FailedPreconditionError("the relay is already draining");
  draining_ = true;
  if (grace <= absl::ZeroDuration()) grace = default_grace_;
  hooks_.stop_accepting();
  const std::size_t told = core_->Drain(grace);
  log::Event(log::Level::kInfo, log::LogEvent::kDrain)
      .Str("why", why)
      .Int("grace_seconds", absl::ToInt64Seconds(grace))
      .Int("connections", static_cast<std::int64_t>(told));
  WaitForGrace(clock_->Now() + grace);
  return admin::DrainResult{grace, told};
}

void DrainController::WaitForGrace(absl::Time until) {
  if (core_->OpenConnections() == 0 || clock_->Now() >= until) {
    CloseEveryone();
    return;
  }
  LookAgain(&DrainController::WaitForGrace, until);
}

void DrainController::CloseEveryone() {
  log::Event(log::Level::kInfo, log::LogEvent::kDrainClose)
      .Int("connections", static_cast<std::int64_t>(core_->OpenConnections()));
  hooks_.close_all();
  hooks_.on_closing();
  StopWhenClosed(clock_->Now() + close_timeout_);
}

void DrainController::StopWhenClosed(absl::Time give_up) {
  if (core_->OpenConnections() == 0 || clock_->Now() >= give_up) {
    io_->stop();
    return;
  }
  LookAgain(&DrainController::StopWhenClosed, give_up);
}

void DrainController::LookAgain(void (DrainController::*next)(absl::Time), absl::Time deadline) {
  timer_.expires_after(absl::ToChronoNanoseconds(poll_interval_));
  timer_.async_wait([this, next, deadline](const asio::error_code& ec) {
    if (!ec) (this->*next)(deadline);
  });
}

}  // namespace relay
