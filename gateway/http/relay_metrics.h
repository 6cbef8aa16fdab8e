// RelayMetrics: what GET /metrics shows beyond the core's own counters (the
// latency histograms and the transports' byte counts), and the renderer of
// the whole Prometheus exposition.
//
// Threading: the histograms are observed and rendered on the event loop
// only. The gRPC transport's byte counts are atomics (gRPC threads add them).
#ifndef RELAY_GATEWAY_HTTP_RELAY_METRICS_H_
#define RELAY_GATEWAY_HTTP_RELAY_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "gateway/admission/refusal.h"
#include "server/core/relay_core.h"
#include "server/metrics/histogram.h"
#include "server/metrics/prometheus_text.h"

namespace relay::gateway {

// Byte counts of one transport since start.
struct TransportBytes {
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> sent{0};
};

struct RelayMetrics {
  // Frame (or gRPC message) in -> the resulting frame queued to every
  // recipient, for relayed traffic (broadcast, direct, llm_request,
  // llm_response).
  metrics::Histogram relay_latency{metrics::kRelayLatencyBoundsSeconds};
  // llm_request dispatched -> its first llm_response relayed.
  metrics::Histogram llm_round_trip{metrics::kLlmRoundTripBoundsSeconds};
  TransportBytes ws_bytes;
  TransportBytes grpc_bytes;
  // The git commit of this build (build_info::Commit(), which lives with the
  // binary, cmd/relay), for relay_build_info{commit}. Set before serving.
  std::string commit = "unknown";
  // The bounds the near-limit alerts compare with (MAX_CONNECTIONS,
  // MAX_AUTH_RECORDS), so that an operator who raises one keeps true alerts:
  // relay_connections_max and relay_auth_records_max. Set before serving.
  std::uint64_t max_connections = 0;
  std::uint64_t max_auth_records = 0;
  // Cluster mode's own series (NATS, the links between instances), written
  // by the backplane; unset for a relay alone. Set before serving.
  std::function<void(metrics::PrometheusText*)> cluster_series;
};

// The exposition of every relay metric and the process_* ones. Fails only on
// a misuse of the writer (a bug): the route then answers 500.
absl::StatusOr<std::string> RenderMetrics(const core::RelayCore& core, const RefusalCounts& refused,
                                          const RelayMetrics& metrics);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_HTTP_RELAY_METRICS_H_
