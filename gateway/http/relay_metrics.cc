#include "gateway/http/relay_metrics.h"

#include <utility>

#include "gateway/net/transport.h"
#include "server/metrics/process_stats.h"
#include "server/metrics/prometheus_text.h"

namespace relay::gateway {
namespace {

using metrics::Label;
using metrics::MetricType;
using metrics::PrometheusText;

std::string Version() {
#ifdef RELAY_VERSION
  return RELAY_VERSION;
#else
  return "dev";
#endif
}

// Stats lists every error code and close reason by name; these read one.
std::uint64_t ErrorCount(const relay::v1::Stats& stats, core::ErrorCode code) {
  const absl::string_view name = core::ErrorCodeName(code);
  for (const auto& e : stats.errors()) {
    if (e.code() == name) return e.count();
  }
  return 0;
}

std::uint64_t CloseCount(const relay::v1::Stats& stats, core::CloseReason reason) {
  const absl::string_view name = core::CloseReasonName(reason);
  for (const auto& c : stats.closes()) {
    if (c.reason() == name) return c.count();
  }
  return 0;
}

void WriteGauges(const core::RelayCore& core, const relay::v1::Stats& stats,
                 const RelayMetrics& metrics, PrometheusText* out) {
  out->Family("relay_build_info", MetricType::kGauge,
              "The relay's version and the git commit it was built from; always 1.");
  const std::string version = Version();
  out->Sample({{"version", version}, {"commit", metrics.commit}}, 1);
  out->Family("relay_connections_open", MetricType::kGauge,
              "Open connections (WebSocket and gRPC), registered or not.");
  out->Sample({}, stats.open_sockets());
  out->Family("relay_peers_registered", MetricType::kGauge, "Connections registered in a mesh.");
  out->Sample({}, stats.registered_peers());
  out->Family("relay_meshes_active", MetricType::kGauge, "Meshes with at least one peer.");
  out->Sample({}, stats.active_meshes());
  out->Family("relay_draining", MetricType::kGauge, "1 while the relay drains for a shutdown.");
  out->Sample({}, core.draining() ? 1 : 0);
  out->Family("relay_auth_records", MetricType::kGauge,
              "Token bindings, signed meshes and used nonces kept (MAX_AUTH_RECORDS bounds them).");
  out->Sample({}, stats.auth_records());
  out->Family("relay_auth_records_max", MetricType::kGauge,
              "MAX_AUTH_RECORDS: at it, new token bindings and signed meshes are refused.");
  out->Sample({}, metrics.max_auth_records);
  out->Family("relay_connections_max", MetricType::kGauge,
              "MAX_CONNECTIONS: open WebSocket connections past it get HTTP 503.");
  out->Sample({}, metrics.max_connections);
  const relay::v1::ResumeStats& resume = stats.resume();
  out->Family("relay_resume_sessions", MetricType::kGauge,
              "Resume sessions kept, live or suspended (MAX_RESUME_SESSIONS bounds them).");
  out->Sample({}, resume.sessions());
  out->Family("relay_resume_sessions_suspended", MetricType::kGauge,
              "Resume sessions whose connection dropped, waiting for their client.");
  out->Sample({}, resume.suspended());
  out->Family("relay_resume_buffered_bytes", MetricType::kGauge,
              "Bytes kept for replay by every resume session (MAX_RESUME_MEMORY_BYTES bounds "
              "them).");
  out->Sample({}, resume.buffered_bytes());
}

void WriteResumeCounters(const relay::v1::Stats& stats, PrometheusText* out) {
  const relay::v1::ResumeStats& resume = stats.resume();
  out->Family("relay_resumes_total", MetricType::kCounter,
              "Reconnects that asked to continue a resume session, by outcome: resumed, or "
              "refused (answered with a fresh session).");
  out->Sample({{"outcome", "resumed"}}, resume.resumed());
  out->Sample({{"outcome", "refused"}}, resume.resume_refused());
  out->Family("relay_resume_replayed_frames_total", MetricType::kCounter,
              "Frames sent again to a client after it resumed.");
  out->Sample({}, resume.replayed_frames());
  out->Family("relay_resume_duplicate_frames_total", MetricType::kCounter,
              "Client frames dropped as resends of ones already handled.");
  out->Sample({}, resume.duplicates());
  out->Family("relay_resume_sessions_ended_total", MetricType::kCounter,
              "Resume sessions ended, by reason: expired (no reconnect within "
              "RESUME_WINDOW_SECONDS), overflow (over a buffer bound), closed, replaced.");
  for (const auto& e : resume.ended()) out->Sample({{"reason", e.reason()}}, e.count());
}

void WriteConnectionCounters(const relay::v1::Stats& stats, const RefusalCounts& refused,
                             PrometheusText* out) {
  out->Family("relay_connections_total", MetricType::kCounter, "Connections accepted.");
  out->Sample({}, stats.total_connections());
  out->Family("relay_disconnections_total", MetricType::kCounter, "Connections ended, by reason.");
  for (const auto& c : stats.closes()) out->Sample({{"reason", c.reason()}}, c.count());
  out->Family("relay_upgrades_refused_total", MetricType::kCounter,
              "Connections refused before they opened (WebSocket upgrades and gRPC streams), "
              "by reason.");
  for (std::size_t i = 0; i < kRefusalCount; ++i) {
    const auto refusal = static_cast<Refusal>(i);
    out->Sample({{"reason", RefusalName(refusal)}}, refused.Get(refusal));
  }
  out->Family("relay_slow_consumer_closes_total", MetricType::kCounter,
              "Peers closed because they did not read what was sent to them.");
  out->Sample({}, CloseCount(stats, core::CloseReason::kSlowConsumer));
}

void WriteTrafficCounters(const core::RelayCore& core, const relay::v1::Stats& stats,
                          const RelayMetrics& metrics, PrometheusText* out) {
  const core::TrafficCounters& traffic = core.traffic();
  out->Family("relay_messages_received_total", MetricType::kCounter,
              "Client messages handled (every type, refused ones included).");
  out->Sample({}, stats.messages_received());
  out->Family("relay_messages_relayed_total", MetricType::kCounter,
              "Deliveries of user traffic by type (a broadcast to N peers counts N).");
  for (std::size_t i = 0; i < core::kTrafficTypeCount; ++i) {
    out->Sample({{"type", core::TrafficTypeName(static_cast<core::TrafficType>(i))}},
                traffic.deliveries[i]);
  }
  out->Family("relay_deliveries_dropped_total", MetricType::kCounter,
              "Deliveries not handed to a connection, by reason: closing (the connection was "
              "ending), slow_consumer (over its send buffer; it is closed for it), unreachable "
              "(its instance could not be reached), resume_overflow (over its resume "
              "session's buffer; the session ends).");
  const core::DropCounts& drops = core.drops();
  for (std::size_t i = 0; i < core::kDropReasonCount; ++i) {
    const auto reason = static_cast<core::DropReason>(i);
    out->Sample({{"reason", core::DropReasonName(reason)}}, drops.Get(reason));
  }
  out->Family("relay_relayed_payload_bytes_total", MetricType::kCounter,
              "Bytes of user data (payload, or request_id and members) delivered, by type.");
  for (std::size_t i = 0; i < core::kTrafficTypeCount; ++i) {
    out->Sample({{"type", core::TrafficTypeName(static_cast<core::TrafficType>(i))}},
                traffic.payload_bytes[i]);
  }
  out->Family("relay_received_bytes_total", MetricType::kCounter,
              "Bytes of messages received from clients, by transport.");
  out->Sample({{"transport", kTransportWs}}, metrics.ws_bytes.received.load());
  out->Sample({{"transport", kTransportGrpc}}, metrics.grpc_bytes.received.load());
  out->Family("relay_sent_bytes_total", MetricType::kCounter,
              "Bytes of messages handed to clients' connections, by transport.");
  out->Sample({{"transport", kTransportWs}}, metrics.ws_bytes.sent.load());
  out->Sample({{"transport", kTransportGrpc}}, metrics.grpc_bytes.sent.load());
  out->Family("relay_errors_total", MetricType::kCounter, "Error messages sent, by code.");
  for (const auto& e : stats.errors()) out->Sample({{"code", e.code()}}, e.count());
  out->Family("relay_auth_failures_total", MetricType::kCounter,
              "Registrations refused by mesh authentication.");
  out->Sample({}, ErrorCount(stats, core::ErrorCode::kAuthFailed));
  out->Family("relay_rate_limited_total", MetricType::kCounter,
              "Messages refused over the per-connection rate limit.");
  out->Sample({}, ErrorCount(stats, core::ErrorCode::kRateLimited));
  out->Family("relay_limit_hits_total", MetricType::kCounter,
              "Things refused by a per-client bound, by bound (docs/protocol.md).");
  for (const auto& l : stats.limits()) out->Sample({{"limit", l.limit()}}, l.count());
  out->Family("relay_unrouted_messages_total", MetricType::kCounter,
              "Messages of types shipped clients send but no relay routes (gossip, intent, "
              "route_request, route_response), by type: dropped, answered only when they carry "
              "a request_id.");
  for (std::size_t i = 0; i < core::kUnroutedTypeCount; ++i) {
    out->Sample({{"type", core::UnroutedTypeName(static_cast<core::UnroutedType>(i))}},
                traffic.unrouted[i]);
  }
  out->Family("relay_llm_requests_total", MetricType::kCounter, "llm requests by outcome.");
  for (std::size_t i = 0; i < core::kLlmOutcomeCount; ++i) {
    out->Sample({{"outcome", core::LlmOutcomeName(static_cast<core::LlmOutcome>(i))}},
                traffic.llm_outcomes[i]);
  }
}

}  // namespace

absl::StatusOr<std::string> RenderMetrics(const core::RelayCore& core, const RefusalCounts& refused,
                                          const RelayMetrics& metrics) {
  const relay::v1::Stats stats = core.GetStats();
  PrometheusText out;
  WriteGauges(core, stats, metrics, &out);
  WriteConnectionCounters(stats, refused, &out);
  WriteTrafficCounters(core, stats, metrics, &out);
  WriteResumeCounters(stats, &out);
  out.Family("relay_latency_seconds", MetricType::kHistogram,
             "Relayed message in -> the resulting frame queued to every recipient.");
  out.HistogramSample({}, metrics.relay_latency);
  out.Family("relay_llm_round_trip_seconds", MetricType::kHistogram,
             "llm_request dispatched -> its first llm_response relayed.");
  out.HistogramSample({}, metrics.llm_round_trip);
  if (metrics.cluster_series) metrics.cluster_series(&out);
  // /proc may be missing (not Linux, a sandbox): the relay's own metrics
  // still go out.
  if (absl::StatusOr<metrics::ProcessStats> process = metrics::ReadProcessStats(); process.ok()) {
    metrics::WriteProcessStats(*process, &out);
  }
  return std::move(out).Finish();
}

}  // namespace relay::gateway
