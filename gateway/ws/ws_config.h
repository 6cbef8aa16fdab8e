// The websocketpp configuration of the relay: standalone Asio, no TLS, no
// locking (one event-loop thread owns every connection, see
// docs/threading.md), and per-connection gateway state carried on the
// connection object itself.
#ifndef RELAY_GATEWAY_WS_WS_CONFIG_H_
#define RELAY_GATEWAY_WS_WS_CONFIG_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <optional>
#include <string>

#include "server/core/close_reason.h"
#include "server/core/connection_id.h"
#include "websocketpp/concurrency/none.hpp"
#include "websocketpp/config/asio_no_tls.hpp"
#include "websocketpp/server.hpp"

namespace relay::gateway {

// Gateway state of one WebSocket connection (websocketpp makes every
// connection inherit from its config's connection_base).
struct WsConnectionState {
  core::ConnectionId core_id = 0;  // 0 until the core accepted it
  std::string mesh_id;
  // Keepalive: a ping was sent and no pong came back yet.
  bool awaiting_pong = false;
  int missed_pongs = 0;
  // Set when the relay decided to close; otherwise derived from the close.
  std::optional<core::CloseReason> close_reason;
};

struct WsConfig : public websocketpp::config::asio {
  typedef WsConfig type;
  typedef websocketpp::config::asio base;

  typedef websocketpp::concurrency::none concurrency_type;
  typedef base::request_type request_type;
  typedef base::response_type response_type;
  typedef base::message_type message_type;
  typedef base::con_msg_manager_type con_msg_manager_type;
  typedef base::endpoint_msg_manager_type endpoint_msg_manager_type;
  typedef base::alog_type alog_type;
  typedef base::elog_type elog_type;
  typedef base::rng_type rng_type;

  struct transport_config : public base::transport_config {
    typedef type::concurrency_type concurrency_type;
    typedef type::alog_type alog_type;
    typedef type::elog_type elog_type;
    typedef type::request_type request_type;
    typedef type::response_type response_type;
    typedef websocketpp::transport::asio::basic_socket::endpoint socket_type;
  };
  typedef websocketpp::transport::asio::endpoint<transport_config> transport_type;

  typedef WsConnectionState connection_base;
};

using WsServer = websocketpp::server<WsConfig>;
using WsConnectionPtr = WsServer::connection_ptr;
using WsMessagePtr = WsServer::message_ptr;

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_WS_CONFIG_H_
