// The relay's plain HTTP endpoints: GET /, /health, /ready and /stats as
// JSON, and /metrics in the Prometheus text format. /, /health, /ready and
// /stats answer CORS (Access-Control-Allow-Origin per ALLOWED_ORIGINS, and
// OPTIONS preflights with 204); /metrics never does: it is for a Prometheus
// inside the network, and with CORS any page a person inside opened could
// read it from the relay's internal address.
// No socket code here: the WebSocket server hands each non-upgrade request
// to RouteHttp and writes back what it returns.
#ifndef RELAY_GATEWAY_HTTP_HTTP_ROUTES_H_
#define RELAY_GATEWAY_HTTP_HTTP_ROUTES_H_

#include <functional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "gateway/admission/refusal.h"
#include "gateway/http/relay_metrics.h"
#include "gateway/net/origin_policy.h"
#include "server/core/relay_core.h"

namespace relay::gateway {

struct HttpResponse {
  HttpResponse() = default;
  HttpResponse(int status, std::string body, std::string content_type = "application/json")
      : status(status), body(std::move(body)), content_type(std::move(content_type)) {}

  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  // False for HEAD: the transport sends the headers GET would (with the
  // body's Content-Length) and no body.
  bool send_body = true;
  // Beside Content-Type: Allow, the CORS headers.
  net::HttpHeaders headers;
};

// Why the relay cannot take clients beyond draining (cluster mode: NATS is
// unreachable); empty when it can. Called on the event loop.
using ReadinessCheck = std::function<std::string()>;

// `refused` is the gateway's own count of upgrades it turned away (the core
// never sees those); /stats lists it as "refused".
// `metrics` serves GET /metrics (Prometheus text); without it that route is
// not found.
// HEAD is answered as GET would be, every route and error included, with
// send_body false.
// `readiness`, when set, can hold /ready at 503 too.
// `origins` (null: every origin) and `origin`, the request's Origin header
// (empty when absent), decide its CORS headers. Other methods than GET, HEAD
// and (CORS paths only) OPTIONS get 405 with an Allow header.
HttpResponse RouteHttp(absl::string_view method, absl::string_view resource,
                       const core::RelayCore& core, const RefusalCounts& refused = {},
                       const RelayMetrics* metrics = nullptr,
                       const ReadinessCheck* readiness = nullptr,
                       const net::OriginPolicy* origins = nullptr, absl::string_view origin = {});

// The JSON body of an HTTP error: {"error": code, "message": message}.
std::string HttpErrorBody(absl::string_view code, absl::string_view message);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_HTTP_HTTP_ROUTES_H_
