// Prints an exposition using every feature of PrometheusText (counter with
// labels and escaping, gauges with special values, histograms with and
// without labels, process stats) for check_exposition.py to parse with the
// official Python client.
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>

#include "server/metrics/histogram.h"
#include "server/metrics/process_stats.h"
#include "server/metrics/prometheus_text.h"

int main() {
  using relay::metrics::Histogram;
  using relay::metrics::MetricType;
  using relay::metrics::PrometheusText;

  Histogram relay_latency(relay::metrics::kRelayLatencyBoundsSeconds);
  for (double v : {0.00002, 0.00005, 0.0003, 0.002, 0.002, 0.7, 42.0}) relay_latency.Observe(v);
  Histogram llm_ok(relay::metrics::kLlmRoundTripBoundsSeconds);
  Histogram llm_timeout(relay::metrics::kLlmRoundTripBoundsSeconds);
  llm_ok.Observe(1.5);
  llm_ok.Observe(0.2);
  llm_timeout.Observe(300);

  PrometheusText out;
  out.Family("relay_connections_open", MetricType::kGauge, "Open WebSocket connections.");
  out.Sample({}, 3);
  out.Family("relay_disconnections_total", MetricType::kCounter,
             "Closed connections by reason.\nSee docs\\close-reasons.md.");
  out.Sample({{"reason", "client_closed"}}, 12);
  out.Sample({{"reason", "slow_consumer"}}, std::numeric_limits<uint64_t>::max());
  out.Sample({{"reason", "we\"ird\\va\nlue"}}, 0.5);
  out.Family("relay_messages_relayed_total", MetricType::kCounter, "Messages relayed by type.");
  out.Sample({{"type", "broadcast"}, {"mesh_kind", "h\xc3\xa9"}}, 7);
  out.Family("relay_test_special_values", MetricType::kGauge, "Gauges with special values.");
  out.Sample({{"v", "nan"}}, std::numeric_limits<double>::quiet_NaN());
  out.Sample({{"v", "inf"}}, std::numeric_limits<double>::infinity());
  out.Sample({{"v", "ninf"}}, -std::numeric_limits<double>::infinity());
  out.Sample({{"v", "negative"}}, -2.5);
  out.Sample({{"v", "small"}}, 1.5e-7);
  out.Family("relay_latency_seconds", MetricType::kHistogram,
             "Frame in to frame queued to every recipient.");
  out.HistogramSample({}, relay_latency);
  out.Family("relay_llm_duration_seconds", MetricType::kHistogram,
             "LLM request to response time by outcome.");
  out.HistogramSample({{"outcome", "ok"}}, llm_ok);
  out.HistogramSample({{"outcome", "timeout"}}, llm_timeout);
  const absl::StatusOr<relay::metrics::ProcessStats> stats = relay::metrics::ReadProcessStats();
  if (!stats.ok()) {
    std::fprintf(stderr, "ReadProcessStats: %s\n", stats.status().ToString().c_str());
    return 1;
  }
  WriteProcessStats(*stats, &out);

  const absl::StatusOr<std::string> text = std::move(out).Finish();
  if (!text.ok()) {
    std::fprintf(stderr, "Finish: %s\n", text.status().ToString().c_str());
    return 1;
  }
  std::fwrite(text->data(), 1, text->size(), stdout);
  return 0;
}
