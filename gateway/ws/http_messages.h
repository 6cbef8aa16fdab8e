// The HTTP request and response types of the relay's websocketpp configs
// (ws_config.h): websocketpp's own parser and writer, with the relay's
// behaviour at three edges websocketpp gets wrong for it.
//
//  - HTTP/1.0 without Host: websocketpp's parser refuses any request without
//    Host (an empty 400). HTTP/1.0 does not require it, and load-balancer
//    probes send exactly `GET /health HTTP/1.0` with no headers: such a
//    request gets an empty Host and is served. HTTP/1.1 still needs one.
//  - An upgrade whose Sec-WebSocket-Version is missing or not 13: websocketpp
//    picks its draft-00/07/08 processors for them (a missing header is
//    "draft 00", which fails with an empty 500). The request is marked and
//    handed on as version 13, so that the gateway's validate handler answers
//    426 with `Sec-WebSocket-Version: 13` and a JSON body.
//  - Errors websocketpp answers itself (a malformed request line, a missing
//    Sec-WebSocket-Key...) have no body: they get the JSON error body every
//    other relay error has, {"error": code, "message": text}.
#ifndef RELAY_GATEWAY_WS_HTTP_MESSAGES_H_
#define RELAY_GATEWAY_WS_HTTP_MESSAGES_H_

#include <cstddef>
#include <string>

#include "websocketpp/http/request.hpp"
#include "websocketpp/http/response.hpp"

namespace relay::gateway {

class RelayHttpRequest : public websocketpp::http::parser::request {
 public:
  // Hides the base's (websocketpp calls it on the config's request type).
  std::size_t consume(char const* buf, std::size_t len);

  // The request asked for a WebSocket upgrade without Sec-WebSocket-Version
  // 13 (missing or another value); its header now reads 13.
  bool websocket_version_unsupported() const { return websocket_version_unsupported_; }

 private:
  using Base = websocketpp::http::parser::request;

  // How much of "\r\n\r\n" (the end of the header block) the bytes consumed
  // so far end with; 4 once the headers are done.
  int header_end_matched_ = 0;
  bool websocket_version_unsupported_ = false;
};

class RelayHttpResponse : public websocketpp::http::parser::response {
 public:
  // Hides the base's (websocketpp calls it on the config's response type):
  // an error status with no body and no Content-Length gets a JSON body. A
  // response with a Content-Length and an empty body (HEAD) stays as is.
  std::string raw() const;
};

// Whether `response` is websocketpp's own refusal of the WebSocket upgrade
// `request` asked for (a malformed or incomplete handshake: no
// Sec-WebSocket-Key, HTTP/1.1 without Host...): an error status without a
// body, the one raw() fills in. Every refusal of the gateway's own carries
// its body, so it is never taken for one of these; nor is a plain HTTP
// request, nor a connection that failed before any answer (a timeout).
bool UpgradeRefusedByWebsocketpp(const RelayHttpRequest& request,
                                 const RelayHttpResponse& response);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_HTTP_MESSAGES_H_
