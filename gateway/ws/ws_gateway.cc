#include "gateway/ws/ws_gateway.h"

#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gateway/codec/client_decoder.h"
#include "gateway/http/http_routes.h"
#include "gateway/http/relay_path.h"
#include "gateway/ws/ws_close_codes.h"
#include "server/util/log.h"

namespace relay::gateway {
namespace {

using websocketpp::connection_hdl;

std::chrono::milliseconds ToChrono(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

std::string RemoteAddress(const WsConnectionPtr& con) {
  asio::error_code ec;
  asio::ip::tcp::endpoint remote = con->get_raw_socket().remote_endpoint(ec);
  if (ec) return "unknown";
  asio::ip::address address = remote.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  if (address.is_v6()) return absl::StrCat("[", address.to_string(), "]:", remote.port());
  return absl::StrCat(address.to_string(), ":", remote.port());
}

// Delivers core events to one WebSocket connection.
class WsPeerSink final : public core::PeerSink {
 public:
  WsPeerSink(WsServer* server, connection_hdl hdl, FrameCache* cache)
      : server_(server), hdl_(std::move(hdl)), cache_(cache) {}

  void Send(const core::ServerEventPtr& event) override {
    websocketpp::lib::error_code ec;
    WsConnectionPtr con = server_->get_con_from_hdl(hdl_, ec);
    if (ec) return;  // already gone; the close handler tells the core
    ec = con->send(cache_->Frame(event));
    if (ec) log::Debug("send to ", con->core_id, " failed: ", ec.message());
  }

  void Close(core::CloseReason reason) override {
    websocketpp::lib::error_code ec;
    WsConnectionPtr con = server_->get_con_from_hdl(hdl_, ec);
    if (ec) return;
    if (!con->close_reason) con->close_reason = reason;
    const WsClose close = WsCloseFor(reason);
    con->close(close.code, std::string(close.text), ec);
    if (ec) con->terminate(ec);
  }

 private:
  WsServer* const server_;
  const connection_hdl hdl_;
  FrameCache* const cache_;
};

// Why a connection the relay did not close itself ended.
core::CloseReason ObservedCloseReason(const WsConnectionPtr& con) {
  switch (con->get_local_close_code()) {
    case websocketpp::close::status::message_too_big:
      return core::CloseReason::kMessageTooBig;
    case websocketpp::close::status::invalid_payload:
    case websocketpp::close::status::protocol_error:
      return core::CloseReason::kInvalidFrame;
    default:
      break;
  }
  if (con->get_remote_close_code() != websocketpp::close::status::abnormal_close) {
    return core::CloseReason::kClientClosed;
  }
  return con->get_ec() ? core::CloseReason::kTransportError : core::CloseReason::kClientClosed;
}

}  // namespace

WsGateway::WsGateway(asio::io_context* io, core::RelayCore* core, GatewayConfig config)
    : io_(io),
      core_(core),
      config_(std::move(config)),
      housekeeping_timer_(*io),
      keepalive_timer_(*io) {
  server_.clear_access_channels(websocketpp::log::alevel::all);
  server_.clear_error_channels(websocketpp::log::elevel::all);
  server_.init_asio(io_);
  server_.set_reuse_addr(true);
  server_.set_listen_backlog(1024);
  server_.set_max_message_size(config_.max_message_bytes);
  server_.set_open_handshake_timeout(absl::ToInt64Milliseconds(config_.handshake_timeout));
  server_.set_close_handshake_timeout(2000);
  server_.set_socket_init_handler([](connection_hdl, asio::ip::tcp::socket& socket) {
    // Relayed messages are small and latency matters more than packing.
    asio::error_code ec;
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
  });
  server_.set_validate_handler([this](connection_hdl hdl) { return OnValidate(std::move(hdl)); });
  server_.set_http_handler([this](connection_hdl hdl) { OnHttp(std::move(hdl)); });
  server_.set_open_handler([this](connection_hdl hdl) { OnOpen(std::move(hdl)); });
  server_.set_message_handler(
      [this](connection_hdl hdl, WsMessagePtr msg) { OnMessage(std::move(hdl), std::move(msg)); });
  server_.set_close_handler([this](connection_hdl hdl) { OnClose(std::move(hdl)); });
  server_.set_pong_handler(
      [this](connection_hdl hdl, std::string payload) { OnPong(std::move(hdl), std::move(payload)); });
}

WsGateway::~WsGateway() = default;

absl::Status WsGateway::Listen() {
  asio::error_code ec;
  const asio::ip::address address = asio::ip::make_address(config_.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("host must be an IP address, not \"", config_.host, "\""));
  }
  server_.listen(asio::ip::tcp::endpoint(address, config_.port), ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config_.host, ":", config_.port, ": ", ec.message()));
  }
  bound_port_ = server_.get_local_endpoint(ec).port();
  server_.start_accept(ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot accept: ", ec.message()));
  ScheduleHousekeeping();
  ScheduleKeepalive();
  return absl::OkStatus();
}

void WsGateway::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  websocketpp::lib::error_code ec;
  server_.stop_listening(ec);
  housekeeping_timer_.cancel();
  keepalive_timer_.cancel();
  core_->CloseAll(core::CloseReason::kServerShutdown);
}

bool WsGateway::OnValidate(connection_hdl hdl) {
  WsConnectionPtr con = server_.get_con_from_hdl(hdl);
  if (con->get_request_header("Sec-WebSocket-Version") != "13") {
    con->set_status(websocketpp::http::status_code::upgrade_required);
    con->replace_header("Sec-WebSocket-Version", "13");
    return false;
  }
  absl::StatusOr<std::string> mesh_id =
      ParseRelayPath(con->get_resource(), config_.max_mesh_id_bytes);
  if (!mesh_id.ok()) {
    const bool not_found = absl::IsNotFound(mesh_id.status());
    con->set_status(not_found ? websocketpp::http::status_code::not_found
                              : websocketpp::http::status_code::bad_request);
    con->replace_header("Content-Type", "application/json");
    con->set_body(HttpErrorBody(not_found ? "not_found" : "bad_mesh_id",
                                mesh_id.status().message()));
    return false;
  }
  if (shutting_down_) {
    con->set_status(websocketpp::http::status_code::service_unavailable);
    return false;
  }
  con->mesh_id = *std::move(mesh_id);
  return true;
}

void WsGateway::OnHttp(connection_hdl hdl) {
  WsConnectionPtr con = server_.get_con_from_hdl(hdl);
  const HttpResponse response = RouteHttp(con->get_request().get_method(), con->get_resource(), *core_);
  con->set_status(static_cast<websocketpp::http::status_code::value>(response.status));
  con->replace_header("Content-Type", "application/json");
  con->replace_header("Cache-Control", "no-store");
  con->set_body(response.body);
}

void WsGateway::OnOpen(connection_hdl hdl) {
  WsConnectionPtr con = server_.get_con_from_hdl(hdl);
  core::ConnectionInfo info{RemoteAddress(con), "ws"};
  log::Debug("open ", info.remote_address, " mesh ", con->mesh_id);
  con->core_id =
      core_->Connect(std::move(info), std::make_shared<WsPeerSink>(&server_, hdl, &frame_cache_));
  open_.emplace(con->core_id, hdl);
  if (shutting_down_) {
    WsPeerSink(&server_, hdl, &frame_cache_).Close(core::CloseReason::kServerShutdown);
  }
}

void WsGateway::OnMessage(connection_hdl hdl, WsMessagePtr msg) {
  WsConnectionPtr con = server_.get_con_from_hdl(hdl);
  relay::v1::ClientEvent event;
  DecodeFailure failure;
  if (DecodeClientFrame(msg->get_payload(), con->mesh_id, &event, &failure)) {
    core_->Handle(con->core_id, event);
  } else {
    core_->RejectUndecodable(con->core_id, failure.code, failure.message,
                             failure.request_id_json);
  }
}

void WsGateway::OnClose(connection_hdl hdl) {
  WsConnectionPtr con = server_.get_con_from_hdl(hdl);
  if (con->core_id == 0) return;
  const core::CloseReason reason = con->close_reason.value_or(ObservedCloseReason(con));
  log::Debug("close ", con->core_id, " mesh ", con->mesh_id, ": ", core::CloseReasonName(reason));
  open_.erase(con->core_id);
  core_->Disconnect(con->core_id, reason);
}

void WsGateway::OnPong(connection_hdl hdl, std::string /*payload*/) {
  websocketpp::lib::error_code ec;
  WsConnectionPtr con = server_.get_con_from_hdl(hdl, ec);
  if (ec) return;
  con->awaiting_pong = false;
  con->missed_pongs = 0;
}

void WsGateway::ScheduleHousekeeping() {
  housekeeping_timer_.expires_after(ToChrono(config_.housekeeping_interval));
  housekeeping_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || shutting_down_) return;
    core_->ExpireUnregistered();
    ScheduleHousekeeping();
  });
}

void WsGateway::ScheduleKeepalive() {
  if (config_.keepalive_interval <= absl::ZeroDuration()) return;
  keepalive_timer_.expires_after(ToChrono(config_.keepalive_interval));
  keepalive_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || shutting_down_) return;
    KeepaliveTick();
    ScheduleKeepalive();
  });
}

void WsGateway::KeepaliveTick() {
  // Collect first: dropping a connection runs handlers that edit open_.
  std::vector<WsConnectionPtr> vanished;
  for (const auto& [id, hdl] : open_) {
    websocketpp::lib::error_code ec;
    WsConnectionPtr con = server_.get_con_from_hdl(hdl, ec);
    if (ec || con->get_state() != websocketpp::session::state::open) continue;
    if (con->awaiting_pong && ++con->missed_pongs >= config_.max_missed_pongs) {
      vanished.push_back(con);
      continue;
    }
    con->awaiting_pong = true;
    con->ping("", ec);
  }
  for (const WsConnectionPtr& con : vanished) {
    log::Info("peer ", con->core_id, " in mesh ", con->mesh_id, " missed ",
              con->missed_pongs, " keepalive pings; dropping it");
    con->close_reason = core::CloseReason::kKeepaliveTimeout;
    // No close handshake: the peer is gone and would never answer it.
    con->terminate(websocketpp::error::make_error_code(websocketpp::error::general));
  }
}

}  // namespace relay::gateway
