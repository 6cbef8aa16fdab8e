#include "gateway/http/http_routes.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/json/json_writer.h"
#include "server/metrics/prometheus_text.h"

namespace relay::gateway {
namespace {

using json::AppendSeconds;
using json::AppendString;

std::string Version() {
#ifdef RELAY_VERSION
  return RELAY_VERSION;
#else
  return "dev";
#endif
}

std::string InfoBody() {
  std::string out = "{\"service\":\"atmosphere-relay\",\"version\":";
  AppendString(&out, Version());
  out.append(
      ",\"status\":\"running\",\"endpoints\":{\"health\":\"/health\",\"ready\":\"/ready\","
      "\"stats\":\"/stats\",\"metrics\":\"/metrics\",\"relay\":\"/relay/{mesh_id}\"}}");
  return out;
}

std::string HealthBody(const core::RelayCore& core) {
  const core::HealthCounts counts = core.Health();
  return absl::StrCat("{\"status\":\"ok\",\"meshes\":", counts.meshes,
                      ",\"connections\":", counts.peers, "}");
}

std::string StatsBody(const core::RelayCore& core, const RefusalCounts& refused) {
  const relay::v1::Stats stats = core.GetStats();
  std::string out = "{\"uptime_seconds\":";
  AppendSeconds(&out, stats.uptime_seconds());
  out.append(",\"version\":");
  AppendString(&out, stats.version());
  if (!stats.instance_id().empty()) {
    // Cluster mode: which instance answered (its peers' ids stay private).
    out.append(",\"instance_id\":");
    AppendString(&out, stats.instance_id());
  }
  absl::StrAppend(&out, ",\"active_meshes\":", stats.active_meshes(),
                  ",\"active_connections\":", stats.registered_peers(),
                  ",\"open_sockets\":", stats.open_sockets(),
                  ",\"total_connections\":", stats.total_connections(),
                  ",\"total_messages_received\":", stats.messages_received(),
                  ",\"total_messages_relayed\":", stats.messages_relayed(),
                  ",\"total_llm_requests\":", stats.llm_requests(), ",\"errors\":{");
  for (int i = 0; i < stats.errors_size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendString(&out, stats.errors(i).code());
    absl::StrAppend(&out, ":", stats.errors(i).count());
  }
  out.append("},\"closes\":{");
  for (int i = 0; i < stats.closes_size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendString(&out, stats.closes(i).reason());
    absl::StrAppend(&out, ":", stats.closes(i).count());
  }
  out.append("},\"refused\":{");
  for (std::size_t i = 0; i < kRefusalCount; ++i) {
    if (i > 0) out.push_back(',');
    const auto refusal = static_cast<Refusal>(i);
    AppendString(&out, RefusalName(refusal));
    absl::StrAppend(&out, ":", refused.Get(refusal));
  }
  out.append("},\"limits\":{");
  for (int i = 0; i < stats.limits_size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendString(&out, stats.limits(i).limit());
    absl::StrAppend(&out, ":", stats.limits(i).count());
  }
  // Every DropReason by name, also at 0 (the core lists them in order).
  out.append("},\"drops\":{");
  for (int i = 0; i < stats.drops_size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendString(&out, stats.drops(i).reason());
    absl::StrAppend(&out, ":", stats.drops(i).count());
  }
  absl::StrAppend(&out, "},\"auth_records\":", stats.auth_records());
  const relay::v1::ResumeStats& resume = stats.resume();
  absl::StrAppend(
      &out, ",\"resume\":{\"sessions\":", resume.sessions(), ",\"suspended\":", resume.suspended(),
      ",\"buffered_bytes\":", resume.buffered_bytes(),
      ",\"buffered_frames\":", resume.buffered_frames(), ",\"resumed\":", resume.resumed(),
      ",\"resume_refused\":", resume.resume_refused(),
      ",\"replayed_frames\":", resume.replayed_frames(), ",\"duplicates\":", resume.duplicates(),
      ",\"ended\":{");
  for (int i = 0; i < resume.ended_size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendString(&out, resume.ended(i).reason());
    absl::StrAppend(&out, ":", resume.ended(i).count());
  }
  out.append("}}");
  // No mesh id and no per-mesh figure: /stats is public, and an open mesh is
  // as private as its id (docs/security.md). The Admin API lists meshes.
  out.push_back('}');
  return out;
}

}  // namespace

std::string HttpErrorBody(absl::string_view code, absl::string_view message) {
  std::string out = "{\"error\":";
  AppendString(&out, code);
  out.append(",\"message\":");
  AppendString(&out, message);
  out.push_back('}');
  return out;
}

namespace {

HttpResponse RouteGet(absl::string_view method, absl::string_view resource,
                      const core::RelayCore& core, const RefusalCounts& refused,
                      const RelayMetrics* metrics, const ReadinessCheck* readiness,
                      const net::OriginPolicy& origins, absl::string_view origin) {
  const absl::string_view path = resource.substr(0, resource.find('?'));
  const bool known = path == "/" || path == "/health" || path == "/ready" || path == "/stats" ||
                     (path == "/metrics" && metrics != nullptr);
  if (!known) {
    if (absl::StartsWith(path, "/relay/")) {
      return {426, HttpErrorBody("upgrade_required", "this endpoint speaks WebSocket")};
    }
    return {404, HttpErrorBody(RefusalName(Refusal::kNotFound), "no such route")};
  }
  // The JSON endpoints answer a browser's CORS preflight; /metrics does not
  // (http_routes.h).
  const bool cors = path != "/metrics";
  if (method == "OPTIONS" && cors) {
    HttpResponse preflight{204, std::string(), std::string()};
    preflight.headers = net::PreflightHeaders(origins, origin);
    preflight.headers.emplace_back("Allow", "GET, HEAD, OPTIONS");
    return preflight;
  }
  if (method != "GET" && method != "HEAD") {
    HttpResponse refused_method{405, HttpErrorBody("method_not_allowed", "use GET")};
    refused_method.headers.emplace_back("Allow", cors ? "GET, HEAD, OPTIONS" : "GET, HEAD");
    return refused_method;
  }
  if (path == "/") return {200, InfoBody()};
  if (path == "/health") return {200, HealthBody(core)};
  if (path == "/metrics") {
    absl::StatusOr<std::string> text = RenderMetrics(core, refused, *metrics);
    if (!text.ok()) return {500, HttpErrorBody("internal", text.status().message())};
    return {200, *std::move(text), std::string(metrics::kPrometheusContentType)};
  }
  // Readiness: a load balancer stops sending new clients once draining.
  if (path == "/ready") {
    if (core.draining()) return {503, "{\"status\":\"draining\"}"};
    if (readiness != nullptr && *readiness) {
      const std::string reason = (*readiness)();
      if (!reason.empty()) {
        std::string body = "{\"status\":\"not_ready\",\"reason\":";
        AppendString(&body, reason);
        body.push_back('}');
        return {503, std::move(body)};
      }
    }
    return {200, "{\"status\":\"ready\"}"};
  }
  return {200, StatsBody(core, refused)};
}

bool IsCorsPath(absl::string_view resource) {
  const absl::string_view path = resource.substr(0, resource.find('?'));
  return path == "/" || path == "/health" || path == "/ready" || path == "/stats";
}

}  // namespace

HttpResponse RouteHttp(absl::string_view method, absl::string_view resource,
                       const core::RelayCore& core, const RefusalCounts& refused,
                       const RelayMetrics* metrics, const ReadinessCheck* readiness,
                       const net::OriginPolicy* origins, absl::string_view origin) {
  static const net::OriginPolicy kAnyOrigin;
  const net::OriginPolicy& policy = origins != nullptr ? *origins : kAnyOrigin;
  HttpResponse response =
      RouteGet(method, resource, core, refused, metrics, readiness, policy, origin);
  // Every answer of a CORS path, errors and 503s included (a status page
  // reads /ready's 503 too); the preflight carries its own.
  if (IsCorsPath(resource) && method != "OPTIONS") {
    for (auto& header : net::CorsHeaders(policy, origin))
      response.headers.push_back(std::move(header));
  }
  response.send_body = method != "HEAD";
  return response;
}

}  // namespace relay::gateway
