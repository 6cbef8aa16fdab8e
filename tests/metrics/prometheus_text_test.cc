// Tests of server/metrics/prometheus_text: exact exposition text, escaping,
// number formatting, and every misuse it refuses.
#include "server/metrics/prometheus_text.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace relay::metrics {
namespace {

TEST(PrometheusTextTest, SmallRegistryExactText) {
  Histogram latency({0.001, 0.01, 0.1});
  for (double v : {0.0005, 0.001, 0.05, 3.0}) latency.Observe(v);

  PrometheusText out;
  out.Family("relay_disconnections_total", MetricType::kCounter, "Connections closed, by reason.");
  out.Sample({{"reason", "client_closed"}}, 12);
  out.Sample({{"reason", "slow_consumer"}}, uint64_t{1});
  out.Family("relay_meshes", MetricType::kGauge, "Meshes with at least one peer.");
  out.Sample({}, 3);
  out.Family("relay_latency_seconds", MetricType::kHistogram, "Frame in to queued to all.");
  out.HistogramSample({{"type", "broadcast"}}, latency);
  absl::StatusOr<std::string> text = std::move(out).Finish();
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "# HELP relay_disconnections_total Connections closed, by reason.\n"
            "# TYPE relay_disconnections_total counter\n"
            "relay_disconnections_total{reason=\"client_closed\"} 12\n"
            "relay_disconnections_total{reason=\"slow_consumer\"} 1\n"
            "# HELP relay_meshes Meshes with at least one peer.\n"
            "# TYPE relay_meshes gauge\n"
            "relay_meshes 3\n"
            "# HELP relay_latency_seconds Frame in to queued to all.\n"
            "# TYPE relay_latency_seconds histogram\n"
            "relay_latency_seconds_bucket{type=\"broadcast\",le=\"0.001\"} 2\n"
            "relay_latency_seconds_bucket{type=\"broadcast\",le=\"0.01\"} 2\n"
            "relay_latency_seconds_bucket{type=\"broadcast\",le=\"0.1\"} 3\n"
            "relay_latency_seconds_bucket{type=\"broadcast\",le=\"+Inf\"} 4\n"
            "relay_latency_seconds_sum{type=\"broadcast\"} 3.0515\n"
            "relay_latency_seconds_count{type=\"broadcast\"} 4\n");
}

TEST(PrometheusTextTest, EmptyWriterGivesEmptyBody) {
  PrometheusText out;
  EXPECT_EQ(*std::move(out).Finish(), "");
}

TEST(PrometheusTextTest, FamilyWithoutSamplesKeepsHelpAndType) {
  PrometheusText out;
  out.Family("relay_llm_requests_total", MetricType::kCounter, "LLM requests.");
  EXPECT_EQ(*std::move(out).Finish(),
            "# HELP relay_llm_requests_total LLM requests.\n"
            "# TYPE relay_llm_requests_total counter\n");
}

TEST(PrometheusTextTest, EscapesLabelValuesAndHelp) {
  PrometheusText out;
  out.Family("x", MetricType::kGauge, "back\\slash \"quotes\" and\nnewline");
  out.Sample({{"a", "back\\slash"}, {"b", "say \"hi\""}, {"c", "two\nlines"}, {"d", "h\xc3\xa9"}},
             1);
  EXPECT_EQ(*std::move(out).Finish(),
            "# HELP x back\\\\slash \"quotes\" and\\nnewline\n"
            "# TYPE x gauge\n"
            "x{a=\"back\\\\slash\",b=\"say \\\"hi\\\"\",c=\"two\\nlines\",d=\"h\xc3\xa9\"} 1\n");
}

TEST(PrometheusTextTest, FormatsNumbersSoPrometheusParsesThem) {
  const std::vector<std::pair<double, std::string>> doubles = {
      {0, "0"},
      {-0.0, "0"},
      {1, "1"},
      {-3, "-3"},
      {1234567, "1234567"},
      {0.25, "0.25"},
      {0.1, "0.1"},
      {5e-05, "5e-05"},
      {0.0001, "0.0001"},
      {0.00025, "0.00025"},
      {123456.5, "123456.5"},
      {1234567.5, "1234567.5"},
      {1e21, "1e+21"},
      {-0.5, "-0.5"},
      {1e20, "100000000000000000000"},
      {9007199254740992.0, "9007199254740992"},  // 2^53: past the integer path, no exponent
      {1.5e300, "1.5e+300"},
      {std::nan(""), "NaN"},
      {std::numeric_limits<double>::infinity(), "+Inf"},
      {-std::numeric_limits<double>::infinity(), "-Inf"},
  };
  for (const auto& [value, text] : doubles) {
    PrometheusText out;
    out.Family("g", MetricType::kGauge, "h");
    out.Sample({}, value);
    EXPECT_EQ(*std::move(out).Finish(), "# HELP g h\n# TYPE g gauge\ng " + text + "\n") << text;
  }
  PrometheusText out;
  out.Family("big_total", MetricType::kCounter, "h");
  out.Sample({{"k", "u"}}, std::numeric_limits<uint64_t>::max());
  out.Sample({{"k", "i"}}, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(*std::move(out).Finish(),
            "# HELP big_total h\n# TYPE big_total counter\n"
            "big_total{k=\"u\"} 18446744073709551615\n"
            "big_total{k=\"i\"} 9223372036854775807\n");
}

TEST(PrometheusTextTest, HistogramBucketsAreCumulativeAndEndWithInf) {
  Histogram h(kLlmRoundTripBoundsSeconds);
  for (int i = 0; i < 100; ++i) h.Observe(i * 4.0);  // 0..396 s
  PrometheusText out;
  out.Family("relay_llm_duration_seconds", MetricType::kHistogram, "h");
  out.HistogramSample({}, h);
  const std::string text = *std::move(out).Finish();
  uint64_t previous = 0;
  size_t buckets = 0;
  size_t at = 0;
  while ((at = text.find("_bucket{le=\"", at)) != std::string::npos) {
    const size_t space = text.find(' ', at);
    const uint64_t count = std::stoull(text.substr(space + 1));
    EXPECT_GE(count, previous);
    previous = count;
    ++buckets;
    at = space;
  }
  EXPECT_EQ(buckets, std::size(kLlmRoundTripBoundsSeconds) + 1);
  EXPECT_EQ(previous, 100u);
  EXPECT_NE(text.find("relay_llm_duration_seconds_bucket{le=\"300\"} 76\n"), std::string::npos);
  EXPECT_NE(text.find("relay_llm_duration_seconds_bucket{le=\"+Inf\"} 100\n"), std::string::npos);
  EXPECT_NE(text.find("relay_llm_duration_seconds_sum 19800\n"), std::string::npos);
  EXPECT_NE(text.find("relay_llm_duration_seconds_count 100\n"), std::string::npos);
}

struct Misuse {
  const char* name;
  std::function<void(PrometheusText&)> calls;
  const char* message;
};

class PrometheusTextMisuseTest : public ::testing::TestWithParam<Misuse> {};

TEST_P(PrometheusTextMisuseTest, FinishReturnsInvalidArgument) {
  PrometheusText out;
  GetParam().calls(out);
  // Later calls are ignored and do not replace the first error.
  out.Family("fine", MetricType::kGauge, "h");
  out.Sample({}, 1);
  const absl::StatusOr<std::string> text = std::move(out).Finish();
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(text.status().message(), GetParam().message);
}

Histogram& OneBucket() {
  static Histogram* const h = new Histogram({1});
  return *h;
}

INSTANTIATE_TEST_SUITE_P(
    AllMisuses, PrometheusTextMisuseTest,
    ::testing::Values(
        Misuse{"CounterWithoutTotal",
               [](PrometheusText& o) { o.Family("relay_connections", MetricType::kCounter, "h"); },
               "counter relay_connections must be named <something>_total"},
        Misuse{"BareTotal",
               [](PrometheusText& o) { o.Family("_total", MetricType::kCounter, "h"); },
               "counter _total must be named <something>_total"},
        Misuse{"GaugeWithTotal",
               [](PrometheusText& o) { o.Family("open_total", MetricType::kGauge, "h"); },
               "gauge open_total must not end in _total (counters only)"},
        Misuse{"BadMetricName",
               [](PrometheusText& o) { o.Family("9lives", MetricType::kGauge, "h"); },
               "invalid metric name \"9lives\""},
        Misuse{"DashInMetricName",
               [](PrometheusText& o) { o.Family("relay-meshes", MetricType::kGauge, "h"); },
               "invalid metric name \"relay-meshes\""},
        Misuse{"FamilyRepeated",
               [](PrometheusText& o) {
                 o.Family("a", MetricType::kGauge, "h");
                 o.Family("b", MetricType::kGauge, "h");
                 o.Family("a", MetricType::kGauge, "h");
               },
               "metric family a repeats or clashes with an earlier a"},
        Misuse{"TypeChangedForOneFamily",
               [](PrometheusText& o) {
                 o.Family("a", MetricType::kGauge, "h");
                 o.Family("a", MetricType::kHistogram, "h");
               },
               "metric family a repeats or clashes with an earlier a"},
        Misuse{"GaugeClashesWithHistogramSeries",
               [](PrometheusText& o) {
                 o.Family("lat_seconds", MetricType::kHistogram, "h");
                 o.Family("lat_seconds_count", MetricType::kGauge, "h");
               },
               "metric family lat_seconds_count repeats or clashes with an earlier "
               "lat_seconds_count"},
        Misuse{"GaugeClashesWithCounterBaseName",
               [](PrometheusText& o) {
                 o.Family("relay_connections_total", MetricType::kCounter, "h");
                 o.Family("relay_connections", MetricType::kGauge, "h");
               },
               "metric family relay_connections repeats or clashes with an earlier "
               "relay_connections"},
        Misuse{"SampleBeforeFamily", [](PrometheusText& o) { o.Sample({}, 1); },
               "sample before any Family()"},
        Misuse{"HistogramSampleBeforeFamily",
               [](PrometheusText& o) { o.HistogramSample({}, OneBucket()); },
               "sample before any Family()"},
        Misuse{"ScalarOnHistogram",
               [](PrometheusText& o) {
                 o.Family("h_seconds", MetricType::kHistogram, "h");
                 o.Sample({}, 1.0);
               },
               "h_seconds: histogram family takes HistogramSample(), not Sample()"},
        Misuse{"HistogramOnGauge",
               [](PrometheusText& o) {
                 o.Family("g", MetricType::kGauge, "h");
                 o.HistogramSample({}, OneBucket());
               },
               "g: HistogramSample() on a gauge family"},
        Misuse{"BadLabelName",
               [](PrometheusText& o) {
                 o.Family("g", MetricType::kGauge, "h");
                 o.Sample({{"bad-name", "v"}}, 1);
               },
               "g: invalid label name \"bad-name\""},
        Misuse{"ReservedLabelName",
               [](PrometheusText& o) {
                 o.Family("g", MetricType::kGauge, "h");
                 o.Sample({{"__name__", "v"}}, 1);
               },
               "g: invalid label name \"__name__\""},
        Misuse{"RepeatedLabel",
               [](PrometheusText& o) {
                 o.Family("g", MetricType::kGauge, "h");
                 o.Sample({{"a", "1"}, {"a", "2"}}, 1);
               },
               "g: label \"a\" repeated in one sample"},
        Misuse{"LeOnHistogram",
               [](PrometheusText& o) {
                 o.Family("h_seconds", MetricType::kHistogram, "h");
                 o.HistogramSample({{"le", "1"}}, OneBucket());
               },
               "h_seconds: label \"le\" is reserved for histogram buckets"},
        Misuse{"SameLabelSetTwiceInAnyOrder",
               [](PrometheusText& o) {
                 o.Family("g", MetricType::kGauge, "h");
                 o.Sample({{"a", "1"}, {"b", "2"}}, 1);
                 o.Sample({{"b", "2"}, {"a", "1"}}, 2);
               },
               "g: the same label set twice"},
        Misuse{"UnlabelledTwice",
               [](PrometheusText& o) {
                 o.Family("g", MetricType::kGauge, "h");
                 o.Sample({}, 1);
                 o.Sample({}, 2);
               },
               "g: the same label set twice"},
        Misuse{"NegativeCounter",
               [](PrometheusText& o) {
                 o.Family("c_total", MetricType::kCounter, "h");
                 o.Sample({}, -1);
               },
               "c_total: counter value must be >= 0"},
        Misuse{"NanCounter",
               [](PrometheusText& o) {
                 o.Family("c_total", MetricType::kCounter, "h");
                 o.Sample({}, std::nan(""));
               },
               "c_total: counter value must be >= 0"}),
    [](const ::testing::TestParamInfo<Misuse>& info) { return std::string(info.param.name); });

TEST(PrometheusTextTest, LabelValuesMayRepeatAcrossKeys) {
  // {a="1",b="2"} and {a="2",b="1"} are different series; so are
  // {a="x=1"} and {a="x",...}: the duplicate check must not confuse them.
  PrometheusText out;
  out.Family("g", MetricType::kGauge, "h");
  out.Sample({{"a", "1"}, {"b", "2"}}, 1);
  out.Sample({{"a", "2"}, {"b", "1"}}, 2);
  out.Sample({{"a", "x=1"}}, 3);
  out.Sample({{"a", "x"}}, 4);
  EXPECT_TRUE(std::move(out).Finish().ok());
}

}  // namespace
}  // namespace relay::metrics
