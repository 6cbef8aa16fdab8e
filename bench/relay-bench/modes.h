// The drivers of the relay-bench modes, one per mode_*.cc file.
#ifndef RELAY_BENCH_RELAY_BENCH_MODES_H_
#define RELAY_BENCH_RELAY_BENCH_MODES_H_

#include <memory>

#include "bench/relay-bench/driver.h"

namespace relay::bench {

std::unique_ptr<Driver> MakePairsDriver(const BenchOptions& options);
std::unique_ptr<Driver> MakeFanoutDriver(const BenchOptions& options);
std::unique_ptr<Driver> MakeLlmDriver(const BenchOptions& options);
std::unique_ptr<Driver> MakeEchoDriver(const BenchOptions& options);
std::unique_ptr<Driver> MakeIdleDriver(const BenchOptions& options);
std::unique_ptr<Driver> MakeChurnDriver(const BenchOptions& options);
std::unique_ptr<Driver> MakePresenceDriver(const BenchOptions& options);
std::unique_ptr<Driver> MakeResumeDriver(const BenchOptions& options);

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_MODES_H_
