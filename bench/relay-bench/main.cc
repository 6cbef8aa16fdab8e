// relay-bench: load generator and checker for the Atmosphere relay and for
// the echo ceiling (bench/echo-baseline). `relay-bench --help` lists modes
// and flags; bench/run runs the standard set; docs/performance.md explains
// the method. Start reading at driver.h, then one mode_*.cc.
#include <sys/prctl.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "bench/relay-bench/driver.h"
#include "bench/relay-bench/modes.h"
#include "bench/relay-bench/options.h"
#include "bench/relay-bench/proc_stats.h"

namespace relay::bench {

std::unique_ptr<Driver> MakeDriver(const BenchOptions& options) {
  switch (options.mode) {
    case Mode::kPairs: return MakePairsDriver(options);
    case Mode::kFanout: return MakeFanoutDriver(options);
    case Mode::kLlm: return MakeLlmDriver(options);
    case Mode::kEcho: return MakeEchoDriver(options);
    case Mode::kIdle: return MakeIdleDriver(options);
    case Mode::kChurn: return MakeChurnDriver(options);
    case Mode::kPresence: return MakePresenceDriver(options);
    case Mode::kResume: return MakeResumeDriver(options);
  }
  return nullptr;
}

}  // namespace relay::bench

int main(int argc, char** argv) {
  using namespace relay::bench;
  BenchOptions options;
  bool help = false;
  std::string error;
  if (!ParseOptions(argc, argv, &options, &help, &error)) {
    std::cerr << "relay-bench: " << error << "\n\n" << Usage();
    return 2;
  }
  if (help) {
    std::cout << Usage();
    return 0;
  }
  const std::uint64_t fd_limit = RaiseFdLimit();
  // Open-loop sends sleep until their due time: 1 us of timer slack instead
  // of the default 50 us keeps them on schedule.
  prctl(PR_SET_TIMERSLACK, 1000UL);
  if (options.mode == Mode::kIdle &&
      static_cast<std::uint64_t>(options.connections) + 64 > fd_limit) {
    std::cerr << "relay-bench: " << options.connections << " connections need more than the "
              << fd_limit << " open files this process may have (RLIMIT_NOFILE)\n";
    return 2;
  }
  std::unique_ptr<Driver> driver = MakeDriver(options);
  if (!driver->Init(&error)) {
    std::cerr << "relay-bench: " << error << "\n";
    return 2;
  }
  const RunResult result = driver->Run();
  if (!options.quiet) std::cout << FormatHuman(result);
  const std::string line = FormatMachineLine(result);
  std::cout << line << std::endl;
  if (!options.json_out.empty()) {
    std::ofstream out(options.json_out, std::ios::app);
    out << line.substr(sizeof("RESULT ") - 1) << "\n";
    if (!out) {
      std::cerr << "relay-bench: cannot append to " << options.json_out << "\n";
      return 2;
    }
  }
  return result.ok() ? 0 : 1;
}
