// RunResult: what one relay-bench run measured and checked, and its two
// outputs: a human table, and one machine-readable line
// (`RESULT {json}`, flat JSON members, numbers in the units their names say).
#ifndef RELAY_BENCH_RELAY_BENCH_REPORT_H_
#define RELAY_BENCH_RELAY_BENCH_REPORT_H_

#include <cstdint>
#include <string>

#include "bench/relay-bench/histogram.h"

namespace relay::bench {

struct RunResult {
  std::string mode;    // pairs, fanout, llm, echo, idle, churn
  std::string server;  // relay or echo
  std::string label;
  std::string params;  // e.g. "P=100 W=16 payload=64"
  int servers = 1;     // relay instances the clients were spread over (--servers)

  // Throughput over the measured window.
  double window_s = 0;
  std::uint64_t completed = 0;  // deliveries / round trips / cycles in the window
  double rate = 0;              // completed per second
  std::string rate_unit;        // msgs/s, deliveries/s, round_trips/s, cycles/s, connections
  double offered_rate = 0;      // open loop: the rate asked for

  LatencyHistogram latency;  // ns; one-way (relay) or round trip (echo, llm), or cycle time

  // Checks.
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t reordered = 0;
  std::uint64_t corrupt = 0;            // undecodable payloads / unexpected messages
  std::uint64_t server_errors = 0;      // `error` messages from the relay
  std::uint64_t unexpected_closes = 0;  // connections that ended while they should not
  std::uint64_t connect_failures = 0;
  std::string first_problem;

  // Server process (/proc), -1 when unknown.
  double server_cpu_pct = -1;
  double client_cpu_pct = -1;
  std::int64_t server_rss_before_kib = -1;
  std::int64_t server_rss_after_kib = -1;
  std::int64_t server_fds_before = -1;
  std::int64_t server_fds_after = -1;
  std::int64_t connections = 0;        // idle: held open; churn: cycles in total
  double bytes_per_connection = -1;    // idle

  bool ok() const {
    return lost == 0 && duplicates == 0 && reordered == 0 && corrupt == 0 && server_errors == 0 &&
           unexpected_closes == 0 && connect_failures == 0 && first_problem.empty();
  }
};

std::string FormatHuman(const RunResult& result);
std::string FormatMachineLine(const RunResult& result);  // "RESULT {...}" without newline

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_REPORT_H_
