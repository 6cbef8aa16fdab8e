// Histogram: a Prometheus-style histogram over fixed bucket upper bounds,
// plus the default bounds for the relay's two latencies. Rendered by
// PrometheusText::HistogramSample (prometheus_text.h).
#ifndef RELAY_SERVER_METRICS_HISTOGRAM_H_
#define RELAY_SERVER_METRICS_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace relay::metrics {

// Relay latency, frame in → frame queued to every recipient: microseconds
// when healthy, up to seconds when the event loop is starved.
inline constexpr double kRelayLatencyBoundsSeconds[] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};

// LLM request → response round trip: a model answering on a peer, from a
// cached reply (10 ms) to a long generation (5 min).
inline constexpr double kLlmRoundTripBoundsSeconds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                        2.5,  5,     10,   30,  60,   120, 300};

// Counts observations into buckets with the given upper bounds (inclusive,
// as Prometheus's `le`), plus an implicit +Inf bucket, and keeps their sum.
//
// Not thread-safe: the relay observes and renders on its one event-loop
// thread, so there is no atomic on the hot path. Observe() is a binary search
// over the bounds and one increment; it never allocates.
class Histogram {
 public:
  // `upper_bounds` must be non-empty, finite and strictly increasing (see
  // ValidateBounds). Bounds are constants chosen in code, so a bad list is a
  // programming error: the constructor aborts with a message, at startup.
  explicit Histogram(absl::Span<const double> upper_bounds);

  static absl::Status ValidateBounds(absl::Span<const double> upper_bounds);

  // Values above the last bound land in +Inf. NaN is ignored: it would turn
  // the sum into NaN for the rest of the process's life.
  void Observe(double value);

  absl::Span<const double> upper_bounds() const { return upper_bounds_; }
  // Observations <= upper_bounds()[i]; i == upper_bounds().size() is +Inf,
  // which equals count().
  uint64_t CumulativeCount(size_t i) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> upper_bounds_;
  // Per bucket, not cumulative (one increment per Observe); the last is +Inf.
  std::vector<uint64_t> bucket_counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace relay::metrics

#endif  // RELAY_SERVER_METRICS_HISTOGRAM_H_
