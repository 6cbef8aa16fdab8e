// Histogram: bounds validation, observation and cumulative counts.
#include "server/metrics/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

namespace relay::metrics {

absl::Status Histogram::ValidateBounds(absl::Span<const double> upper_bounds) {
  if (upper_bounds.empty()) return absl::InvalidArgumentError("histogram needs at least one bound");
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram bound ", i, " is not finite (+Inf is implicit)"));
    }
    if (i > 0 && !(upper_bounds[i] > upper_bounds[i - 1])) {
      return absl::InvalidArgumentError(
          absl::StrCat("histogram bounds must increase strictly: ", upper_bounds[i - 1], " then ",
                       upper_bounds[i]));
    }
  }
  return absl::OkStatus();
}

Histogram::Histogram(absl::Span<const double> upper_bounds)
    : upper_bounds_(upper_bounds.begin(), upper_bounds.end()),
      bucket_counts_(upper_bounds.size() + 1, 0) {
  if (absl::Status status = ValidateBounds(upper_bounds); !status.ok()) {
    const std::string message = status.ToString();
    std::fprintf(stderr, "relay::metrics::Histogram: %s\n", message.c_str());
    std::abort();
  }
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  // First bound >= value: the bucket with le >= value. end() is +Inf.
  const auto it = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value);
  ++bucket_counts_[static_cast<size_t>(it - upper_bounds_.begin())];
  ++count_;
  sum_ += value;
}

uint64_t Histogram::CumulativeCount(size_t i) const {
  uint64_t total = 0;
  const size_t last = std::min(i, bucket_counts_.size() - 1);
  for (size_t k = 0; k <= last; ++k) total += bucket_counts_[k];
  return total;
}

}  // namespace relay::metrics
