// FakeClock: a core::Clock whose time only moves when the test says so.
#ifndef RELAY_TESTS_CORE_FAKE_CLOCK_H_
#define RELAY_TESTS_CORE_FAKE_CLOCK_H_

#include "absl/time/time.h"
#include "server/core/clock.h"

namespace relay::core::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixMillis(1'700'000'000'250))
      : now_(start) {}

  absl::Time Now() const override { return now_; }

  void Advance(absl::Duration d) { now_ += d; }
  void Set(absl::Time t) { now_ = t; }

 private:
  absl::Time now_;
};

}  // namespace relay::core::testing

#endif  // RELAY_TESTS_CORE_FAKE_CLOCK_H_
