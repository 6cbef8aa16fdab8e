// ProcessStats: the standard process_* metrics of a Linux process, read from
// /proc, and the families they are exported as.
#ifndef RELAY_SERVER_METRICS_PROCESS_STATS_H_
#define RELAY_SERVER_METRICS_PROCESS_STATS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "server/metrics/prometheus_text.h"

namespace relay::metrics {

struct ProcessStats {
  uint64_t resident_memory_bytes = 0;  // process_resident_memory_bytes
  uint64_t virtual_memory_bytes = 0;   // process_virtual_memory_bytes
  int64_t open_fds = 0;                // process_open_fds (not counting the one used to count)
  int64_t max_fds = 0;                 // process_max_fds (soft RLIMIT_NOFILE; -1: unlimited)
  double cpu_seconds = 0;              // process_cpu_seconds_total (user + system)
  double start_time_seconds = 0;       // process_start_time_seconds (Unix time)
};

// Reads /proc/self/stat, /proc/self/fd and (once per process) /proc/stat's
// boot time: a few hundred microseconds, fine once per scrape. Unavailable
// outside Linux or without /proc: FailedPrecondition / the failing file.
absl::StatusOr<ProcessStats> ReadProcessStats();

// Writes the six families above, with the names and help texts of the
// official Prometheus clients, so dashboards made for them work unchanged.
void WriteProcessStats(const ProcessStats& stats, PrometheusText* out);

}  // namespace relay::metrics

#endif  // RELAY_SERVER_METRICS_PROCESS_STATS_H_
