// A websocketpp socket policy for plain TCP that ends a connection by
// shutting only its sending side.
//
// websocketpp's own policy shuts both directions. On Linux, bytes that arrive
// after SHUT_RD on a socket that has sent its FIN are answered with RST, and a
// RST makes the peer's kernel drop whatever the peer has not read yet: the
// close frame the relay just sent. A client still writing when the relay
// closes it (a flood over the rate limit, a message pipelined behind a refused
// register) would see "connection reset" instead of 1008 and its reason.
// Keeping the receiving side open lets LingeringCloser read those bytes away.
#ifndef RELAY_GATEWAY_WS_HALF_CLOSE_SOCKET_H_
#define RELAY_GATEWAY_WS_HALF_CLOSE_SOCKET_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <memory>

#include "websocketpp/transport/asio/security/none.hpp"

namespace relay::gateway {

class HalfCloseSocketConnection : public websocketpp::transport::asio::basic_socket::connection {
 public:
  typedef HalfCloseSocketConnection type;
  typedef std::shared_ptr<type> ptr;

  // Hides the base's shutdown_both; the transport calls it through this type.
  void async_shutdown(websocketpp::transport::asio::socket::shutdown_handler handler) {
    asio::error_code ec;
    get_socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    handler(ec);
  }
};

class HalfCloseSocketEndpoint : public websocketpp::transport::asio::basic_socket::endpoint {
 public:
  typedef HalfCloseSocketEndpoint type;
  typedef HalfCloseSocketConnection socket_con_type;
  typedef socket_con_type::ptr socket_con_ptr;
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_HALF_CLOSE_SOCKET_H_
