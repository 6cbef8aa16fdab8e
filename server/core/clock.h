// Clock: the core's only source of time, injected so tests can use a fake
// clock instead of sleeping (see tests/core/fake_clock.h). SystemClock is the
// wall clock (times the core reports, token expiries); SteadyClock is for
// deadlines only (the drain), where a wall clock step must not count.
#ifndef RELAY_SERVER_CORE_CLOCK_H_
#define RELAY_SERVER_CORE_CLOCK_H_

#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace relay::core {

// Seconds since the Unix epoch, as the protocol and the Admin API write times.
inline double ToEpochSeconds(absl::Time t) { return absl::ToDoubleSeconds(t - absl::UnixEpoch()); }

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

// Monotonic: Now() never goes back, but is no calendar time (it counts from
// some unspecified start); compare and subtract its values, never show them.
class SteadyClock final : public Clock {
 public:
  absl::Time Now() const override {
    return absl::UnixEpoch() +
           absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
  }
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_CLOCK_H_
