// What relay-bench reads about the server process from /proc (Linux): RSS,
// CPU time and open file descriptors; and its own CPU time and fd limit.
#ifndef RELAY_BENCH_RELAY_BENCH_PROC_STATS_H_
#define RELAY_BENCH_RELAY_BENCH_PROC_STATS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace relay::bench {

struct ProcSample {
  std::int64_t rss_kib = 0;   // VmRSS of /proc/PID/status
  double cpu_seconds = 0;     // utime + stime of /proc/PID/stat, all threads
  std::int64_t open_fds = 0;  // entries of /proc/PID/fd
  std::uint64_t at_ns = 0;    // NowNs() when sampled
};

// nullopt when the process is gone or /proc cannot be read.
std::optional<ProcSample> SampleProcess(pid_t pid);

// CPU % of one core used by `pid` between two samples.
double CpuPercent(const ProcSample& before, const ProcSample& after);

// This process's user + system CPU seconds.
double SelfCpuSeconds();

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
std::uint64_t RaiseFdLimit();

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_PROC_STATS_H_
