// The websocketpp configurations of the relay: standalone Asio, plain
// (ws://) or TLS (wss://), no locking (one event-loop thread owns every
// connection, see docs/threading.md), and per-connection gateway state
// carried on the connection object itself.
#ifndef RELAY_GATEWAY_WS_WS_CONFIG_H_
#define RELAY_GATEWAY_WS_WS_CONFIG_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "asio/steady_timer.hpp"
#include "gateway/admission/connection_slots.h"
#include "gateway/ws/half_close_socket.h"
#include "gateway/ws/handshake_limiter.h"
#include "gateway/ws/http_messages.h"
#include "server/core/close_reason.h"
#include "server/core/connection_id.h"
#include "websocketpp/concurrency/none.hpp"
#include "websocketpp/config/asio.hpp"
#include "websocketpp/config/asio_no_tls.hpp"
#include "websocketpp/server.hpp"

namespace relay::gateway {

// Gateway state of one WebSocket connection (websocketpp makes every
// connection inherit from its config's connection_base).
struct WsConnectionState {
  core::ConnectionId core_id = 0;  // 0 until the core accepted it
  std::string mesh_id;
  // The client's IP as resolved at the upgrade (gateway/net/client_ip.h):
  // the key of the per-IP connection count.
  std::string client_ip;
  bool client_ip_forwarded = false;  // from X-Forwarded-For, not the TCP peer
  // "address:port" of the TCP peer, read once at the upgrade (a system call)
  // and handed to the core at open.
  std::string tcp_peer;
  // Its place among the open connections (MAX_CONNECTIONS, per IP), from
  // the accepted upgrade until the connection ends (close or failed
  // handshake); given back in its destructor at the latest.
  ConnectionSlot slot;
  // Counts this socket among the handshakes in progress (HandshakeLimiter),
  // from accept until it opens, is answered over HTTP or fails; released in
  // its destructor at the latest.
  HandshakeToken handshake;
  // Keepalive: a ping was sent and no pong came back yet.
  bool awaiting_pong = false;
  // Wire bytes of whole messages received from and handed to this client.
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  int missed_pongs = 0;
  // Set when the relay decided to close; otherwise derived from the close.
  std::optional<core::CloseReason> close_reason;
  // A takeover probe in flight (WsPeerSink::Probe): called with true by the
  // next pong, or with false by the timer.
  std::function<void(bool)> probe_done;
  std::shared_ptr<asio::steady_timer> probe_timer;
  // Flow control (PeerSink::SetReading). The core asks; reads stop at the end
  // of the OnMessage that asked (no read is in flight there) and restart
  // from a posted handler, so there is never a second read in flight.
  bool reading_wanted = true;
  bool reading_paused = false;
  // websocketpp's connection lives as long as an operation in flight holds
  // it; with reads paused and nothing being written, none does. Paused, the
  // connection holds itself (released on resume).
  std::shared_ptr<void> self_while_paused;
};

// `Base` is websocketpp::config::asio or ::asio_tls; `Socket` its socket policy.
template <typename Base, typename Socket>
struct BasicWsConfig : public Base {
  typedef BasicWsConfig type;
  typedef Base base;

  typedef websocketpp::concurrency::none concurrency_type;
  // websocketpp's parser and writer with the relay's edges (http_messages.h).
  typedef RelayHttpRequest request_type;
  typedef RelayHttpResponse response_type;
  typedef typename base::message_type message_type;
  typedef typename base::con_msg_manager_type con_msg_manager_type;
  typedef typename base::endpoint_msg_manager_type endpoint_msg_manager_type;
  typedef typename base::alog_type alog_type;
  typedef typename base::elog_type elog_type;
  typedef typename base::rng_type rng_type;

  // websocketpp embeds its read buffer in every connection object (16 KiB
  // by default), and an idle connection's memory is mostly that object.
  // 2 KiB holds a burst of typical relay frames in one read (a larger
  // message takes several); measured in docs/performance.md: 12.5 -> 10.3
  // KB per idle connection, no change in throughput, where 1 KiB cost ~10%.
  static const size_t connection_read_buffer_size = 2048;

  struct transport_config : public base::transport_config {
    typedef typename type::concurrency_type concurrency_type;
    typedef typename type::alog_type alog_type;
    typedef typename type::elog_type elog_type;
    typedef typename type::request_type request_type;
    typedef typename type::response_type response_type;
    typedef Socket socket_type;
    // One event-loop thread runs every handler (docs/threading.md): no
    // strand per connection, no strand dispatch and its mutex per handler.
    static const bool enable_multithreading = false;
    // A TLS close_notify to a peer that stopped reading never leaves: give up
    // on it soon (websocketpp's default is 5 s).
    static const long timeout_socket_shutdown = 1000;
  };
  typedef websocketpp::transport::asio::endpoint<transport_config> transport_type;

  typedef WsConnectionState connection_base;
};

// Plain TCP ends with a half close (half_close_socket.h); TLS's socket policy
// does not shut the TCP socket at all, so both leave the receiving side open
// for LingeringCloser.
using WsPlainConfig = BasicWsConfig<websocketpp::config::asio, HalfCloseSocketEndpoint>;
using WsTlsConfig = BasicWsConfig<websocketpp::config::asio_tls,
                                  websocketpp::transport::asio::tls_socket::endpoint>;

// Both configurations share the message type, so one prepared frame
// (FrameCache) can be sent on either.
static_assert(std::is_same_v<WsPlainConfig::message_type, WsTlsConfig::message_type>);
using WsMessage = WsPlainConfig::message_type;
using WsMessagePtr = WsMessage::ptr;

}  // namespace relay::gateway

// websocketpp unmasks every received byte one at a time and runs every byte
// of a text frame through its UTF-8 state machine: a fifth of the relay's
// instructions per relayed message (docs/performance.md). These
// specializations of its per-frame payload step, for the relay's two
// configurations, unmask eight bytes at a time and skip the state machine
// over runs of ASCII; everything else is websocketpp's own behaviour
// (gateway/ws/payload_fast_path.cc). Declared here, next to the configs, so
// that every translation unit instantiating a connection sees them.
namespace websocketpp::processor {
template <>
size_t hybi13<relay::gateway::WsPlainConfig>::process_payload_bytes(uint8_t* buf, size_t len,
                                                                    lib::error_code& ec);
template <>
size_t hybi13<relay::gateway::WsTlsConfig>::process_payload_bytes(uint8_t* buf, size_t len,
                                                                  lib::error_code& ec);
}  // namespace websocketpp::processor

#endif  // RELAY_GATEWAY_WS_WS_CONFIG_H_
