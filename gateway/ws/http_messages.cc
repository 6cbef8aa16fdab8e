#include "gateway/ws/http_messages.h"

#include "gateway/http/http_routes.h"
#include "gateway/admission/refusal.h"
#include "websocketpp/processors/processor.hpp"

namespace relay::gateway {
namespace {

// The next state of a matcher for "\r\n\r\n" after byte `c`.
int MatchHeaderEnd(int matched, char c) {
  static constexpr char kEnd[] = "\r\n\r\n";
  if (c == kEnd[matched]) return matched + 1;
  return c == '\r' ? 1 : 0;
}

absl::string_view ErrorCodeFor(int status) {
  switch (status) {
    case 400:
      return RefusalName(Refusal::kBadRequest);
    case 404:
      return RefusalName(Refusal::kNotFound);
    case 405:
      return "method_not_allowed";
    case 413:
      return "payload_too_large";
    case 426:
      return "upgrade_required";
    case 431:
      return "headers_too_large";
    default:
      return status >= 500 ? "internal" : "http_error";
  }
}

// An error status websocketpp set without a body (raw() adds the JSON one).
bool IsBodilessError(const websocketpp::http::parser::response& response) {
  return static_cast<int>(response.get_status_code()) >= 400 && response.get_body().empty() &&
         response.get_header("Content-Length").empty();
}

}  // namespace

std::size_t RelayHttpRequest::consume(char const* buf, std::size_t len) {
  if (header_end_matched_ == 4) return Base::consume(buf, len);
  std::size_t last = 0;  // of the header block, once found
  int matched = header_end_matched_;
  while (last < len && (matched = MatchHeaderEnd(matched, buf[last])) < 4) ++last;
  if (matched < 4) {
    header_end_matched_ = matched;
    return Base::consume(buf, len);
  }
  // Every header line first (the base checks Host only when it sees the
  // byte that ends the block), then that byte and what follows.
  const std::size_t before = last > 0 ? Base::consume(buf, last) : 0;
  header_end_matched_ = 4;
  if (get_version() == "HTTP/1.0" && get_header("Host").empty()) {
    // The base wants a non-empty Host; nothing of the relay reads it.
    replace_header("Host", "-");
  }
  const std::size_t after = Base::consume(buf + last, len - last);
  if (ready() && websocketpp::processor::is_websocket_handshake(*this) &&
      get_header("Sec-WebSocket-Version") != "13") {
    websocket_version_unsupported_ = true;
    replace_header("Sec-WebSocket-Version", "13");
  }
  return before + after;
}

bool UpgradeRefusedByWebsocketpp(const RelayHttpRequest& request,
                                 const RelayHttpResponse& response) {
  return IsBodilessError(response) && websocketpp::processor::is_websocket_handshake(request);
}

std::string RelayHttpResponse::raw() const {
  const int status = static_cast<int>(get_status_code());
  if (!IsBodilessError(*this)) return websocketpp::http::parser::response::raw();
  websocketpp::http::parser::response with_body = *this;
  // websocketpp's parse errors leave the reason phrase empty.
  if (get_status_msg().empty()) with_body.set_status(get_status_code());
  with_body.replace_header("Content-Type", "application/json");
  with_body.set_body(
      HttpErrorBody(ErrorCodeFor(status),
                    "the request was not understood: the relay serves GET /, /health, /ready, "
                    "/stats, /metrics and WebSocket upgrades (version 13) to /relay/{mesh_id}"));
  return with_body.raw();
}

}  // namespace relay::gateway
