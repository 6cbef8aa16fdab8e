#include "cmd/relay/drain_controller.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay {
namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoMilliseconds(d));
}

}  // namespace

DrainController::DrainController(asio::io_context* io, core::RelayCore* core,
                                 absl::Duration default_grace, absl::Duration close_timeout,
                                 Hooks hooks)
    : io_(io),
      core_(core),
      default_grace_(default_grace),
      close_timeout_(close_timeout),
      hooks_(std::move(hooks)),
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
  WaitForGrace(std::chrono::steady_clock::now() + ToChrono(grace));
  return admin::DrainResult{grace, told};
}

void DrainController::WaitForGrace(std::chrono::steady_clock::time_point until) {
  if (core_->OpenConnections() == 0 || std::chrono::steady_clock::now() >= until) {
    CloseEveryone();
    return;
  }
  timer_.expires_after(ToChrono(limits::kDrainPollInterval));
  timer_.async_wait([this, until](const asio::error_code& ec) {
    if (!ec) WaitForGrace(until);
  });
}

void DrainController::CloseEveryone() {
  log::Event(log::Level::kInfo, log::LogEvent::kDrainClose)
      .Int("connections", static_cast<std::int64_t>(core_->OpenConnections()));
  hooks_.close_all();
  hooks_.on_closing();
  StopWhenClosed(std::chrono::steady_clock::now() + ToChrono(close_timeout_));
}

void DrainController::StopWhenClosed(std::chrono::steady_clock::time_point give_up) {
  if (core_->OpenConnections() == 0 || std::chrono::steady_clock::now() >= give_up) {
    io_->stop();
    return;
  }
  timer_.expires_after(ToChrono(limits::kDrainPollInterval));
  timer_.async_wait([this, give_up](const asio::error_code& ec) {
    if (!ec) StopWhenClosed(give_up);
  });
}

}  // namespace relay
