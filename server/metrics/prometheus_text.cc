// PrometheusText: name and label checks, escaping, number formatting.
#include "server/metrics/prometheus_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace relay::metrics {
namespace {

bool IsMetricName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok =
        absl::ascii_isalpha(c) || c == '_' || c == ':' || (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

bool IsLabelName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!(absl::ascii_isalpha(c) || c == '_' || (i > 0 && absl::ascii_isdigit(c)))) return false;
  }
  return true;
}

absl::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// HELP text: backslash and newline escaped (the format's rule for HELP).
void AppendEscapedHelp(std::string* out, absl::string_view help) {
  for (const char c : help) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

// Label values: backslash, double quote and newline escaped.
void AppendEscapedLabelValue(std::string* out, absl::string_view value) {
  for (const char c : value) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '"') {
      out->append("\\\"");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

// A sample value or `le` bound as Prometheus (Go's ParseFloat) and
// client_python read it back: "NaN", "+Inf", "-Inf", exact integers without
// exponent, other values with the fewest digits that read back the same,
// laid out as Go's %v and JavaScript do: an exponent below 1e-4 or from 1e21
// on, so `le` reads "0.0001" and "5e-05" as with the official clients, and a
// start time reads 1764120000.5.
std::string FormatDouble(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  constexpr double kTwoTo53 = 9007199254740992.0;
  if (value == std::trunc(value) && std::fabs(value) < kTwoTo53) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buf[64];
  std::to_chars_result r =
      std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  const absl::string_view scientific(buf, static_cast<size_t>(r.ptr - buf));
  int exponent = 0;
  if (!absl::SimpleAtoi(scientific.substr(scientific.find('e') + 1), &exponent) || exponent < -4 ||
      exponent >= 21) {
    return std::string(scientific);
  }
  r = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed);
  return std::string(buf, static_cast<size_t>(r.ptr - buf));
}

}  // namespace

void PrometheusText::Fail(std::string message) {
  if (status_.ok()) status_ = absl::InvalidArgumentError(std::move(message));
}

void PrometheusText::Family(absl::string_view name, MetricType type, absl::string_view help) {
  if (!status_.ok()) return;
  if (!IsMetricName(name)) return Fail(absl::StrCat("invalid metric name \"", name, "\""));
  const bool total = absl::EndsWith(name, "_total");
  if (type == MetricType::kCounter && (!total || name == "_total")) {
    return Fail(absl::StrCat("counter ", name, " must be named <something>_total"));
  }
  if (type != MetricType::kCounter && total) {
    return Fail(absl::StrCat(TypeName(type), " ", name, " must not end in _total (counters only)"));
  }

  // The names this family owns: its own, its series', and for a counter the
  // name without _total (which parsers such as client_python use as the
  // family name).
  std::vector<std::string> owned = {std::string(name)};
  if (type == MetricType::kCounter) {
    owned.emplace_back(name.substr(0, name.size() - 6));
  } else if (type == MetricType::kHistogram) {
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      owned.push_back(absl::StrCat(name, suffix));
  }
  for (const std::string& n : owned) {
    if (names_.contains(n)) {
      return Fail(absl::StrCat("metric family ", name, " repeats or clashes with an earlier ", n));
    }
  }
  names_.insert(owned.begin(), owned.end());

  in_family_ = true;
  family_ = std::string(name);
  type_ = type;
  series_.clear();
  absl::StrAppend(&out_, "# HELP ", name, " ");
  AppendEscapedHelp(&out_, help);
  absl::StrAppend(&out_, "\n# TYPE ", name, " ", TypeName(type), "\n");
}

bool PrometheusText::CheckLabels(absl::Span<const Label> labels) {
  std::vector<const Label*> sorted;
  sorted.reserve(labels.size());
  for (const Label& label : labels) {
    if (!IsLabelName(label.name) || absl::StartsWith(label.name, "__")) {
      Fail(absl::StrCat(family_, ": invalid label name \"", label.name, "\""));
      return false;
    }
    if (type_ == MetricType::kHistogram && label.name == "le") {
      Fail(absl::StrCat(family_, ": label \"le\" is reserved for histogram buckets"));
      return false;
    }
    sorted.push_back(&label);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Label* a, const Label* b) { return a->name < b->name; });
  std::string key;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0 && sorted[i]->name == sorted[i - 1]->name) {
      Fail(absl::StrCat(family_, ": label \"", sorted[i]->name, "\" repeated in one sample"));
      return false;
    }
    // NUL cannot occur in a name, so the key is unambiguous.
    absl::StrAppend(&key, sorted[i]->name, "=", sorted[i]->value.size(), ":", sorted[i]->value,
                    absl::string_view("\0", 1));
  }
  if (!series_.insert(std::move(key)).second) {
    Fail(absl::StrCat(family_, ": the same label set twice"));
    return false;
  }
  return true;
}

bool PrometheusText::BeginScalarSample(absl::Span<const Label> labels, bool negative_or_nan) {
  if (!status_.ok()) return false;
  if (!in_family_) {
    Fail("sample before any Family()");
    return false;
  }
  if (type_ == MetricType::kHistogram) {
    Fail(absl::StrCat(family_, ": histogram family takes HistogramSample(), not Sample()"));
    return false;
  }
  if (type_ == MetricType::kCounter && negative_or_nan) {
    Fail(absl::StrCat(family_, ": counter value must be >= 0"));
    return false;
  }
  return CheckLabels(labels);
}

void PrometheusText::AppendSeries(absl::string_view suffix, absl::Span<const Label> labels,
                                  absl::string_view extra_label_name,
                                  absl::string_view extra_label_value, absl::string_view value) {
  absl::StrAppend(&out_, family_, suffix);
  if (!labels.empty() || !extra_label_name.empty()) {
    out_.push_back('{');
    bool first = true;
    const auto append_label = [&](absl::string_view name, absl::string_view label_value) {
      if (!first) out_.push_back(',');
      first = false;
      absl::StrAppend(&out_, name, "=\"");
      AppendEscapedLabelValue(&out_, label_value);
      out_.push_back('"');
    };
    for (const Label& label : labels) append_label(label.name, label.value);
    if (!extra_label_name.empty()) append_label(extra_label_name, extra_label_value);
    out_.push_back('}');
  }
  absl::StrAppend(&out_, " ", value, "\n");
}

void PrometheusText::Sample(absl::Span<const Label> labels, double value) {
  if (!BeginScalarSample(labels, !(value >= 0))) return;
  AppendSeries("", labels, "", "", FormatDouble(value));
}

void PrometheusText::SampleInt(absl::Span<const Label> labels, int64_t value) {
  if (!BeginScalarSample(labels, value < 0)) return;
  AppendSeries("", labels, "", "", absl::StrCat(value));
}

void PrometheusText::SampleUint(absl::Span<const Label> labels, uint64_t value) {
  if (!BeginScalarSample(labels, false)) return;
  AppendSeries("", labels, "", "", absl::StrCat(value));
}

void PrometheusText::HistogramSample(absl::Span<const Label> labels, const Histogram& histogram) {
  if (!status_.ok()) return;
  if (!in_family_) return Fail("sample before any Family()");
  if (type_ != MetricType::kHistogram) {
    return Fail(absl::StrCat(family_, ": HistogramSample() on a ", TypeName(type_), " family"));
  }
  if (!CheckLabels(labels)) return;
  const absl::Span<const double> bounds = histogram.upper_bounds();
  for (size_t i = 0; i < bounds.size(); ++i) {
    AppendSeries("_bucket", labels, "le", FormatDouble(bounds[i]),
                 absl::StrCat(histogram.CumulativeCount(i)));
  }
  AppendSeries("_bucket", labels, "le", "+Inf", absl::StrCat(histogram.count()));
  AppendSeries("_sum", labels, "", "", FormatDouble(histogram.sum()));
  AppendSeries("_count", labels, "", "", absl::StrCat(histogram.count()));
}

absl::StatusOr<std::string> PrometheusText::Finish() && {
  if (!status_.ok()) return status_;
  return std::move(out_);
}

}  // namespace relay::metrics
