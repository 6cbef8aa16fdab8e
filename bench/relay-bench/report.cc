// Human and machine-readable output of a run (see report.h).
#include "bench/relay-bench/report.h"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace relay::bench {

namespace {

std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}

double Us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += Format("\\u%04x", c);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::string FormatHuman(const RunResult& r) {
  std::string out;
  out += Format("relay-bench %s against %s%s  %s%s%s\n", r.mode.c_str(), r.server.c_str(),
                r.servers > 1 ? Format(" x%d instances", r.servers).c_str() : "",
                r.params.c_str(), r.label.empty() ? "" : "  label=", r.label.c_str());
  if (r.mode == "idle") {
    out += Format("  connections      %" PRId64 " held open\n", r.connections);
  } else {
    out += Format("  throughput       %.0f %s over %.2f s (%" PRIu64 ")", r.rate,
                  r.rate_unit.c_str(), r.window_s, r.completed);
    if (r.offered_rate > 0) out += Format(", offered %.0f/s", r.offered_rate);
    out += "\n";
  }
  if (r.latency.count() > 0) {
    const LatencyHistogram& h = r.latency;
    out += Format("  latency (us)     p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (n=%" PRIu64
                  ")\n",
                  Us(h.ValueAtPercentile(50)), Us(h.ValueAtPercentile(90)),
                  Us(h.ValueAtPercentile(99)), Us(h.ValueAtPercentile(99.9)), Us(h.max()),
                  h.count());
  }
  out += Format("  checks           sent %" PRIu64 "  received %" PRIu64 "  lost %" PRIu64
                "  dup %" PRIu64 "  reordered %" PRIu64 "  corrupt %" PRIu64 "  errors %" PRIu64
                "  closes %" PRIu64 "  connect-failures %" PRIu64 "\n",
                r.sent, r.received, r.lost, r.duplicates, r.reordered, r.corrupt, r.server_errors,
                r.unexpected_closes, r.connect_failures);
  if (r.server_cpu_pct >= 0 || r.server_rss_after_kib >= 0) {
    out += "  server          ";
    if (r.server_cpu_pct >= 0) out += Format(" cpu %.1f%%", r.server_cpu_pct);
    if (r.server_rss_before_kib >= 0) {
      out += Format("  rss %" PRId64 " -> %" PRId64 " KiB", r.server_rss_before_kib,
                    r.server_rss_after_kib);
    } else if (r.server_rss_after_kib >= 0) {
      out += Format("  rss %" PRId64 " KiB", r.server_rss_after_kib);
    }
    if (r.server_fds_before >= 0) {
      out += Format("  fds %" PRId64 " -> %" PRId64, r.server_fds_before, r.server_fds_after);
    }
    out += "\n";
  }
  if (r.bytes_per_connection >= 0) {
    out += Format("  memory           %.0f bytes (%.2f KiB) per connection\n",
                  r.bytes_per_connection, r.bytes_per_connection / 1024.0);
  }
  if (r.client_cpu_pct >= 0) out += Format("  load generator   cpu %.1f%%\n", r.client_cpu_pct);
  out += Format("  verdict          %s%s%s\n", r.ok() ? "OK" : "FAILED",
                r.first_problem.empty() ? "" : ": ", r.first_problem.c_str());
  return out;
}

std::string FormatMachineLine(const RunResult& r) {
  const LatencyHistogram& h = r.latency;
  std::string out = "RESULT {";
  out += "\"tool\":\"relay-bench\"";
  out += Format(",\"time\":%lld", static_cast<long long>(std::time(nullptr)));
  out += ",\"mode\":" + JsonString(r.mode);
  out += ",\"server\":" + JsonString(r.server);
  out += ",\"label\":" + JsonString(r.label);
  out += ",\"params\":" + JsonString(r.params);
  out += Format(",\"servers\":%d", r.servers);
  out += Format(",\"ok\":%s", r.ok() ? "true" : "false");
  out += Format(",\"window_s\":%.3f,\"completed\":%" PRIu64 ",\"rate\":%.1f", r.window_s,
                r.completed, r.rate);
  out += ",\"rate_unit\":" + JsonString(r.rate_unit);
  out += Format(",\"offered_rate\":%.1f", r.offered_rate);
  out += Format(",\"latency_count\":%" PRIu64
                ",\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,"
                "\"mean_us\":%.2f",
                h.count(), Us(h.ValueAtPercentile(50)), Us(h.ValueAtPercentile(90)),
                Us(h.ValueAtPercentile(99)), Us(h.ValueAtPercentile(99.9)), Us(h.max()),
                h.mean() / 1000.0);
  out += Format(",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
                ",\"duplicates\":%" PRIu64 ",\"reordered\":%" PRIu64 ",\"corrupt\":%" PRIu64
                ",\"server_errors\":%" PRIu64 ",\"unexpected_closes\":%" PRIu64
                ",\"connect_failures\":%" PRIu64,
                r.sent, r.received, r.lost, r.duplicates, r.reordered, r.corrupt, r.server_errors,
                r.unexpected_closes, r.connect_failures);
  out += Format(",\"server_cpu_pct\":%.1f,\"client_cpu_pct\":%.1f", r.server_cpu_pct,
                r.client_cpu_pct);
  out += Format(",\"server_rss_before_kib\":%" PRId64 ",\"server_rss_after_kib\":%" PRId64
                ",\"server_fds_before\":%" PRId64 ",\"server_fds_after\":%" PRId64
                ",\"connections\":%" PRId64 ",\"bytes_per_connection\":%.1f",
                r.server_rss_before_kib, r.server_rss_after_kib, r.server_fds_before,
                r.server_fds_after, r.connections, r.bytes_per_connection);
  out += ",\"problem\":" + JsonString(r.first_problem);
  out += "}";
  return out;
}

}  // namespace relay::bench
