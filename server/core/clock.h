// Clock: the core's only source of time, injected so tests can use a fake
// clock instead of sleeping (see tests/core/fake_clock.h).
#ifndef RELAY_SERVER_CORE_CLOCK_H_
#define RELAY_SERVER_CORE_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace relay::core {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_CLOCK_H_
