// PrometheusText: builds one response body of GET /metrics in the Prometheus
// text exposition format 0.0.4 (counters, gauges, histograms). The caller
// walks its own state and writes each family in turn; nothing is registered
// globally, so there is no lock and no second copy of any count.
#ifndef RELAY_SERVER_METRICS_PROMETHEUS_TEXT_H_
#define RELAY_SERVER_METRICS_PROMETHEUS_TEXT_H_

#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/metrics/histogram.h"

namespace relay::metrics {

// The Content-Type of the body Finish() returns.
inline constexpr absl::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kCounter, kGauge, kHistogram };

// One label of a sample. Values are escaped on output; both must be UTF-8.
struct Label {
  absl::string_view name;
  absl::string_view value;
};

// Usage:
//   PrometheusText out;
//   out.Family("relay_disconnections_total", MetricType::kCounter, "Closed connections.");
//   out.Sample({{"reason", "client_closed"}}, 12);
//   out.Sample({{"reason", "slow_consumer"}}, 1);
//   out.Family("relay_latency_seconds", MetricType::kHistogram, "Frame in to queued.");
//   out.HistogramSample({}, latency);
//   absl::StatusOr<std::string> body = std::move(out).Finish();
//
// Misuse makes Finish() return InvalidArgument naming the first problem (the
// writer ignores every call after it), so a bug fails one scrape instead of
// the process, and tests see it. Refused:
//   - a metric name outside [a-zA-Z_:][a-zA-Z0-9_:]*; a counter not ending in
//     "_total", a gauge or histogram ending in it;
//   - a family started twice, or whose series names clash with an earlier
//     family's (histogram "x" owns x_bucket, x_sum, x_count);
//   - a sample before any Family(), Sample() on a histogram family,
//     HistogramSample() on another type;
//   - a label name outside [a-zA-Z_][a-zA-Z0-9_]*, starting with "__",
//     repeated in one sample, or "le" on a histogram;
//   - the same label set twice in one family (in any order);
//   - a negative or NaN counter value.
// Each family's samples are contiguous by construction: a family ends when
// the next begins.
class PrometheusText {
 public:
  // Starts a family: writes its "# HELP" (help escaped) and "# TYPE" lines.
  void Family(absl::string_view name, MetricType type, absl::string_view help);

  // One counter or gauge sample of the current family. Integers are written
  // exactly; doubles as integers when integral (below 2^53), else in the
  // shortest form that reads back the same; NaN as NaN, infinities as
  // +Inf/-Inf.
  void Sample(absl::Span<const Label> labels, double value);
  template <typename T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
  void Sample(absl::Span<const Label> labels, T value) {
    if constexpr (std::is_signed_v<T>) {
      SampleInt(labels, static_cast<int64_t>(value));
    } else {
      SampleUint(labels, static_cast<uint64_t>(value));
    }
  }

  // The _bucket (cumulative, le="+Inf" last), _sum and _count series of one
  // histogram of the current family.
  void HistogramSample(absl::Span<const Label> labels, const Histogram& histogram);

  // The exposition, or the first misuse. Ends the writer.
  absl::StatusOr<std::string> Finish() &&;

 private:
  void SampleInt(absl::Span<const Label> labels, int64_t value);
  void SampleUint(absl::Span<const Label> labels, uint64_t value);
  // Checks a counter/gauge sample may be written; false after an error.
  bool BeginScalarSample(absl::Span<const Label> labels, bool negative_or_nan);
  // Checks the labels and that their set is new in this family.
  bool CheckLabels(absl::Span<const Label> labels);
  // Writes "name{labels[,extra]} value\n".
  void AppendSeries(absl::string_view suffix, absl::Span<const Label> labels,
                    absl::string_view extra_label_name, absl::string_view extra_label_value,
                    absl::string_view value);
  void Fail(std::string message);

  std::string out_;
  absl::Status status_;
  bool in_family_ = false;
  std::string family_;
  MetricType type_ = MetricType::kGauge;
  // Every family and series name written so far, to refuse clashes.
  absl::flat_hash_set<std::string> names_;
  // Label sets of the current family (sorted, joined), to refuse duplicates.
  absl::flat_hash_set<std::string> series_;
};

}  // namespace relay::metrics

#endif  // RELAY_SERVER_METRICS_PROMETHEUS_TEXT_H_
