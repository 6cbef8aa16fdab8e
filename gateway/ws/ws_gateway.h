// WsGateway: the relay's WebSocket + HTTP front door (websocketpp on
// standalone Asio). It turns connections into RelayCore connections, frames
// into ClientEvents (via the JSON codec), ServerEvents back into frames, and
// serves GET /, /health and /stats. It knows no routing rule.
//
// Threading: everything runs on the io_context's one thread, which is also
// the core's thread (docs/threading.md). Start reading at OnMessage().
#ifndef RELAY_GATEWAY_WS_WS_GATEWAY_H_
#define RELAY_GATEWAY_WS_WS_GATEWAY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gateway/ws/frame_cache.h"
#include "gateway/ws/ws_config.h"
#include "server/core/relay_core.h"

namespace relay::gateway {

struct GatewayConfig {
  std::string host = "0.0.0.0";  // an IP address
  std::uint16_t port = 8765;     // 0 picks a free port
  // Largest message a client may send; bigger ones close with 1009.
  std::size_t max_message_bytes = 1 << 20;
  // Longest mesh id in the URL, in bytes after percent-decoding.
  std::size_t max_mesh_id_bytes = 256;
  // A server ping every interval; a peer that misses `max_missed_pongs` in a
  // row is dropped (phones vanish without a FIN). Zero disables.
  absl::Duration keepalive_interval = absl::Seconds(30);
  int max_missed_pongs = 2;
  // How long a client may take to complete the HTTP upgrade (slowloris).
  absl::Duration handshake_timeout = absl::Seconds(10);
  // How often unregistered sockets are checked against the core's timeout.
  absl::Duration housekeeping_interval = absl::Seconds(1);
};

class WsGateway {
 public:
  // `io` and `core` must outlive the gateway.
  WsGateway(asio::io_context* io, core::RelayCore* core, GatewayConfig config);
  WsGateway(const WsGateway&) = delete;
  WsGateway& operator=(const WsGateway&) = delete;
  ~WsGateway();

  // Binds and starts accepting; port() is then the bound port.
  absl::Status Listen();
  std::uint16_t port() const { return bound_port_; }

  // Stops accepting and asks every client to close (1001). The io_context
  // runs out of work once the last connection is gone.
  void Shutdown();

 private:
  bool OnValidate(websocketpp::connection_hdl hdl);
  void OnHttp(websocketpp::connection_hdl hdl);
  void OnOpen(websocketpp::connection_hdl hdl);
  void OnMessage(websocketpp::connection_hdl hdl, WsMessagePtr msg);
  void OnClose(websocketpp::connection_hdl hdl);
  void OnPong(websocketpp::connection_hdl hdl, std::string payload);

  void ScheduleHousekeeping();
  void ScheduleKeepalive();
  void KeepaliveTick();

  asio::io_context* const io_;
  core::RelayCore* const core_;
  const GatewayConfig config_;
  WsServer server_;
  FrameCache frame_cache_;
  std::uint16_t bound_port_ = 0;
  bool shutting_down_ = false;
  // Open WebSocket connections by core id, for keepalive.
  absl::flat_hash_map<core::ConnectionId, websocketpp::connection_hdl> open_;
  asio::steady_timer housekeeping_timer_;
  asio::steady_timer keepalive_timer_;
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_WS_GATEWAY_H_
