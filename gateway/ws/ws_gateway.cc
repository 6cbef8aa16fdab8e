// WsGateway's implementation: BasicWsGateway<Config>, instantiated for the
// plain and the TLS websocketpp configs (ws_config.h). WsGateway::Create
// picks one. Start reading at OnMessage().
#include "gateway/ws/ws_gateway.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/codec/client_decoder.h"
#include "gateway/http/http_routes.h"
#include "gateway/http/relay_path.h"
#include "gateway/net/client_ip.h"
#include "gateway/net/transport.h"
#include "gateway/ws/frame_cache.h"
#include "gateway/ws/handshake_limiter.h"
#include "gateway/ws/lingering_closer.h"
#include "gateway/ws/tls_context.h"
#include "gateway/ws/ws_close_codes.h"
#include "gateway/ws/ws_config.h"
#include "google/protobuf/arena.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::gateway {
namespace {

using websocketpp::connection_hdl;

// SO_REUSEPORT, which Asio has no name for (GatewayConfig::reuse_port).
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

std::chrono::milliseconds ToChrono(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

// Answers an upgrade the relay refuses: `status` with the JSON error body
// every HTTP refusal has ({"error": refusal's name, "message"}). Counting and
// logging stay with the caller, which knows how often to log.
template <typename ConnectionPtr>
void RefuseUpgrade(const ConnectionPtr& con, websocketpp::http::status_code::value status,
                   Refusal refusal, absl::string_view message) {
  con->set_status(status);
  con->replace_header("Content-Type", "application/json");
  con->set_body(HttpErrorBody(RefusalName(refusal), message));
}

// The TCP peer's address, IPv4-mapped IPv6 shown as IPv4.
template <typename ConnectionPtr>
std::optional<asio::ip::tcp::endpoint> TcpPeer(const ConnectionPtr& con) {
  asio::error_code ec;
  asio::ip::tcp::endpoint remote = con->get_raw_socket().remote_endpoint(ec);
  if (ec) return std::nullopt;
  asio::ip::address address = remote.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return asio::ip::tcp::endpoint(address, remote.port());
}

std::string EndpointText(const asio::ip::tcp::endpoint& endpoint) {
  const asio::ip::address& address = endpoint.address();
  if (address.is_v6()) return absl::StrCat("[", address.to_string(), "]:", endpoint.port());
  return absl::StrCat(address.to_string(), ":", endpoint.port());
}

net::IpAddress ToIpAddress(const asio::ip::address& address) {
  if (address.is_v4()) return net::IpAddress::V4(address.to_v4().to_uint());
  // Always valid: asio printed it.
  return net::IpAddress::Parse(address.to_string()).value_or(net::IpAddress::V4(0));
}

// websocketpp keeps the upgrade request and response (header maps, ~1 KiB)
// for a connection's whole life, and never reads them again once it is open;
// nor does the relay (it read the path and headers while validating). Idle
// connections are what one small server holds by the thousand, so they go.
// (get_request() returns a const view of a member that is not itself const.)
template <typename ConnectionPtr>
void ReleaseHandshake(const ConnectionPtr& con) {
  using Request = std::decay_t<decltype(con->get_request())>;
  using Response = std::decay_t<decltype(con->get_response())>;
  const_cast<Request&>(con->get_request()) = Request();
  const_cast<Response&>(con->get_response()) = Response();
}

// Events whose handling the relay latency histogram measures.
bool IsRelayedTraffic(const relay::v1::ClientEvent& event) {
  switch (event.event_case()) {
    case relay::v1::ClientEvent::kBroadcast:
    case relay::v1::ClientEvent::kDirect:
    case relay::v1::ClientEvent::kLlmRequest:
    case relay::v1::ClientEvent::kLlmResponse:
      return true;
    default:
      return false;
  }
}

// Ends a takeover probe in flight on `con` (WsPeerSink::Probe): tells the
// core whether the peer answered, once; nothing when none is in flight.
template <typename ConnectionPtr>
void SettleProbe(const ConnectionPtr& con, bool answered) {
  if (!con->probe_done) return;
  std::function<void(bool)> done = std::move(con->probe_done);
  con->probe_done = nullptr;
  if (con->probe_timer) con->probe_timer->cancel();
  con->probe_timer.reset();
  done(answered);
}

// Restarts reading a connection the core had paused (PeerSink::SetReading),
// from a handler of its own: posted, it never runs inside the connection's
// read loop, where websocketpp is about to issue the next read itself.
template <typename Server>
void ResumeReadingLater(Server* server, const connection_hdl& hdl) {
  asio::post(server->get_io_service(), [server, hdl] {
    websocketpp::lib::error_code ec;
    typename Server::connection_ptr con = server->get_con_from_hdl(hdl, ec);
    if (ec || !con->reading_wanted || !con->reading_paused) return;
    con->reading_paused = false;
    // `con` keeps it alive to the end of this handler; the read, from then.
    con->self_while_paused.reset();
    const auto state = con->get_state();
    if (state != websocketpp::session::state::open &&
        state != websocketpp::session::state::closing) {
      return;
    }
    con->handle_resume_reading();
  });
}

// Delivers core events to one WebSocket connection, within the
// per-connection send buffer bound.
template <typename Server>
class WsPeerSink final : public core::PeerSink {
 public:
  WsPeerSink(Server* server, connection_hdl hdl, FrameCache* cache, std::size_t max_queued_bytes,
             TransportBytes* bytes)
      : server_(server),
        hdl_(std::move(hdl)),
        cache_(cache),
        max_queued_bytes_(max_queued_bytes),
        bytes_(bytes) {}

  core::SendResult Send(const core::ServerEventPtr& event) override {
    return SendFrame([&] { return cache_->Frame(event); });
  }

  bool supports_resume() const override { return true; }
  core::SendResult SendSequenced(const core::ServerEventPtr& event, std::uint64_t seq) override {
    return SendFrame([&] { return cache_->SequencedFrame(event, seq); });
  }

  Counters counters() const override {
    websocketpp::lib::error_code ec;
    typename Server::connection_ptr con = server_->get_con_from_hdl(hdl_, ec);
    if (ec) return {};
    return {con->bytes_in, con->bytes_out, con->get_buffered_amount()};
  }

 private:
  // Queues the frame `make_frame` returns (made only when it can be sent).
  template <typename MakeFrame>
  core::SendResult SendFrame(const MakeFrame& make_frame) {
    using core::DropReason;
    using core::SendResult;
    websocketpp::lib::error_code ec;
    typename Server::connection_ptr con = server_->get_con_from_hdl(hdl_, ec);
    // Already gone; the close handler tells the core.
    if (ec) return SendResult::Dropped(DropReason::kClosing);
    // Closing (slow consumer, takeover...): nothing more is queued.
    if (con->close_reason || con->get_state() != websocketpp::session::state::open) {
      return SendResult::Dropped(DropReason::kClosing);
    }
    const WsMessagePtr frame = make_frame();
    // websocketpp never caps its queue: a peer that stops reading would grow
    // it without end. get_buffered_amount() is what it holds for this peer
    // and has not handed to the socket yet.
    const std::size_t queued = con->get_buffered_amount();
    if (queued > 0 && queued + frame->get_payload().size() > max_queued_bytes_) {
      log::Event(log::Level::kWarn, core::CloseReasonName(core::CloseReason::kSlowConsumer))
          .Uint("conn", con->core_id)
          .Str("mesh", con->mesh_id)
          .Uint("queued_bytes", queued)
          .Uint("limit_bytes", max_queued_bytes_);
      Close(core::CloseReason::kSlowConsumer);
      return SendResult::Dropped(DropReason::kSlowConsumer);
    }
    ec = con->send(frame);
    if (ec) {
      // The connection is failing; its close handler tells the core.
      log::Debug("send to ", con->core_id, " failed: ", ec.message());
      return SendResult::Dropped(DropReason::kClosing);
    }
    con->bytes_out += frame->get_payload().size();
    bytes_->sent.fetch_add(frame->get_payload().size(), std::memory_order_relaxed);
    return SendResult::Queued();
  }

 public:
  // A WebSocket ping; any pong before the deadline answers it (OnPong).
  bool Probe(absl::Duration timeout, std::function<void(bool)> done) override {
    websocketpp::lib::error_code ec;
    typename Server::connection_ptr con = server_->get_con_from_hdl(hdl_, ec);
    if (ec || con->close_reason || con->get_state() != websocketpp::session::state::open ||
        con->probe_done) {
      return false;
    }
    con->ping("probe", ec);
    if (ec) return false;
    con->probe_done = std::move(done);
    con->probe_timer = std::make_shared<asio::steady_timer>(server_->get_io_service());
    con->probe_timer->expires_after(ToChrono(timeout));
    con->probe_timer->async_wait([server = server_, hdl = hdl_](const asio::error_code& timer_ec) {
      if (timer_ec) return;  // cancelled: the pong came
      websocketpp::lib::error_code ignored;
      typename Server::connection_ptr con = server->get_con_from_hdl(hdl, ignored);
      if (ignored) return;  // gone: the core hears of it by Disconnect
      SettleProbe(con, /*answered=*/false);
    });
    return true;
  }

  // Applied by OnMessage (pausing) or a posted handler (resuming).
  void SetReading(bool reading) override {
    websocketpp::lib::error_code ec;
    typename Server::connection_ptr con = server_->get_con_from_hdl(hdl_, ec);
    if (ec) return;
    con->reading_wanted = reading;
    if (reading && con->reading_paused) ResumeReadingLater(server_, hdl_);
  }

  // The close frame waits behind what is queued; a peer that never reads
  // never answers it, so the close handshake timeout then cuts TCP.
  void Close(core::CloseReason reason) override {
    websocketpp::lib::error_code ec;
    typename Server::connection_ptr con = server_->get_con_from_hdl(hdl_, ec);
    if (ec) return;
    // The client's close frame must be read, whatever the core had paused.
    con->reading_wanted = true;
    if (con->reading_paused) ResumeReadingLater(server_, hdl_);
    if (!con->close_reason) con->close_reason = reason;
    const WsClose close = WsCloseFor(reason);
    con->close(close.code, std::string(close.text), ec);
    if (ec) con->terminate(ec);
  }

 private:
  Server* const server_;
  const connection_hdl hdl_;
  FrameCache* const cache_;
  const std::size_t max_queued_bytes_;
  TransportBytes* const bytes_;
};

// Why a connection the relay did not close itself ended.
template <typename ConnectionPtr>
core::CloseReason ObservedCloseReason(const ConnectionPtr& con) {
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

template <typename Config>
class BasicWsGateway final : public WsGateway {
 public:
  using Server = websocketpp::server<Config>;
  using ConnectionPtr = typename Server::connection_ptr;
  static constexpr bool kTls = std::is_same_v<Config, WsTlsConfig>;

  // `tls_context` is null for the plain config.
  BasicWsGateway(asio::io_context* io, core::RelayCore* core, GatewayConfig config,
                 ConnectionSlots* slots, RefusalCounts* refused,
                 std::shared_ptr<asio::ssl::context> tls_context);
  ~BasicWsGateway() override { ReleaseReserveFds(); }

  absl::Status Listen() override;
  std::uint16_t port() const override { return bound_port_; }
  absl::string_view scheme() const override { return kTls ? kTransportWss : kTransportWs; }
  void Shutdown(core::CloseReason reason) override;
  absl::Status ReloadTls() override;
  const RefusalCounts& refused() const override { return *refused_; }
  RelayMetrics* metrics() override { return &metrics_; }
  void SetReadinessCheck(ReadinessCheck check) override { readiness_ = std::move(check); }

 private:
  bool OnValidate(connection_hdl hdl);
  void OnHttp(connection_hdl hdl);
  void OnOpen(connection_hdl hdl);
  void OnMessage(connection_hdl hdl, WsMessagePtr msg);
  void OnClose(connection_hdl hdl);
  void OnFail(connection_hdl hdl);
  void OnPong(connection_hdl hdl, std::string payload);

  // The accept loop, on the gateway's own acceptor rather than websocketpp's
  // listen() + start_accept(): that one retries a failed accept at once,
  // which at the fd limit (EMFILE) spins a core and starves every other
  // handler; and it formats each accept error through the error category (a
  // virtual call the sanitizer build cannot check without an fd).
  void StartAccept();
  void OnAccept(const ConnectionPtr& con, const asio::error_code& ec);
  // StartAccept after config_.accept_backoff.
  void RetryAcceptLater();
  // The reserve fds (reserve_fds_): opened while the relay accepts, closed
  // while it is out of fds.
  void HoldReserveFds();
  void ReleaseReserveFds();
  // Counts an accepted socket among the handshakes in progress, or closes it
  // (too_many_handshakes) and returns false.
  bool AdmitHandshake(const ConnectionPtr& con);

  // Connection limits: a slot (ConnectionSlots) per accepted upgrade,
  // given back when it ends. Refuses (503 too_many_connections) and returns
  // false when none is free.
  bool TakeSlot(const ConnectionPtr& con);
  void ReleaseSocket(const ConnectionPtr& con);

  void ScheduleHousekeeping();
  void ScheduleResumeService();
  void ScheduleKeepalive();
  void KeepaliveTick();

  asio::io_context* const io_;
  core::RelayCore* const core_;
  const GatewayConfig config_;
  Server server_;
  FrameCache frame_cache_;
  LingeringCloser lingering_closer_;
  std::uint16_t bound_port_ = 0;
  bool shutting_down_ = false;
  // TLS only: the context new handshakes get; ReloadTls swaps it. Each
  // connection keeps the one it started with.
  std::shared_ptr<asio::ssl::context> tls_context_;
  // Open WebSocket connections by core id, for keepalive.
  absl::flat_hash_map<core::ConnectionId, connection_hdl> open_;
  // Shared with the gRPC transport: one admission policy for both.
  ConnectionSlots* const slots_;
  RefusalCounts* const refused_;
  // Listening socket (Listen); closed by Shutdown.
  std::optional<asio::ip::tcp::acceptor> acceptor_;
  HandshakeLimiter handshakes_;
  RelayMetrics metrics_;
  ReadinessCheck readiness_;
  core::CloseReason shutdown_reason_ = core::CloseReason::kServerShutdown;
  // Accept back-off at the fd limit: one "episode" from the first failed
  // accept to the next accepted socket, logged once at each end.
  asio::steady_timer accept_backoff_timer_;
  bool accept_backing_off_ = false;
  std::uint64_t accept_backoffs_in_episode_ = 0;
  // Two fds (/dev/null) held while accepting and given back when accept()
  // runs out (EMFILE): during the pause the process still has fds for what
  // is not a new connection (a log or database file, the sanitizer build's
  // own checks, which need a pipe). -1: not held.
  std::array<int, 2> reserve_fds_{-1, -1};
  asio::steady_timer housekeeping_timer_;
  asio::steady_timer resume_timer_;  // RelayCore::ServiceResumeSessions
  asio::steady_timer keepalive_timer_;
};

template <typename Config>
BasicWsGateway<Config>::BasicWsGateway(asio::io_context* io, core::RelayCore* core,
                                       GatewayConfig config, ConnectionSlots* slots,
                                       RefusalCounts* refused,
                                       std::shared_ptr<asio::ssl::context> tls_context)
    : io_(io),
      core_(core),
      config_(std::move(config)),
      lingering_closer_(ToChrono(config_.linger_timeout), config_.max_lingering_sockets),
      tls_context_(std::move(tls_context)),
      slots_(slots),
      refused_(refused),
      handshakes_(config_.max_pending_handshakes, config_.max_pending_handshakes_per_ip),
      accept_backoff_timer_(*io),
      housekeeping_timer_(*io),
      resume_timer_(*io),
      keepalive_timer_(*io) {
  server_.clear_access_channels(websocketpp::log::alevel::all);
  server_.clear_error_channels(websocketpp::log::elevel::all);
  server_.init_asio(io_);
  server_.set_max_message_size(config_.max_message_bytes);
  server_.set_open_handshake_timeout(absl::ToInt64Milliseconds(config_.handshake_timeout));
  server_.set_close_handshake_timeout(absl::ToInt64Milliseconds(config_.close_handshake_timeout));
  // Relayed messages are small and latency matters more than packing: no
  // Nagle. Set once the socket is accepted (the socket init handler runs
  // before accept, on a socket that is not open yet).
  // Every response's Server header: the service, not websocketpp's name and
  // version (which would tell a scanner which library's bugs to try).
  server_.set_user_agent(std::string(kServerHeader));
  server_.set_tcp_pre_init_handler([this](connection_hdl hdl) {
    websocketpp::lib::error_code ec;
    ConnectionPtr con = server_.get_con_from_hdl(hdl, ec);
    if (ec) return;
    asio::error_code ignored;
    con->get_raw_socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  });
  if constexpr (kTls) {
    server_.set_tls_init_handler([this](connection_hdl) { return tls_context_; });
  }
  server_.set_validate_handler([this](connection_hdl hdl) { return OnValidate(std::move(hdl)); });
  server_.set_http_handler([this](connection_hdl hdl) { OnHttp(std::move(hdl)); });
  server_.set_open_handler([this](connection_hdl hdl) { OnOpen(std::move(hdl)); });
  server_.set_message_handler(
      [this](connection_hdl hdl, WsMessagePtr msg) { OnMessage(std::move(hdl), std::move(msg)); });
  server_.set_close_handler([this](connection_hdl hdl) { OnClose(std::move(hdl)); });
  server_.set_fail_handler([this](connection_hdl hdl) { OnFail(std::move(hdl)); });
  server_.set_pong_handler([this](connection_hdl hdl, std::string payload) {
    OnPong(std::move(hdl), std::move(payload));
  });
}

template <typename Config>
absl::Status BasicWsGateway<Config>::Listen() {
  asio::error_code ec;
  const asio::ip::address address = asio::ip::make_address(config_.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("host must be an IP address, not \"", config_.host, "\""));
  }
  // Our own acceptor, not websocketpp's listen(): see StartAccept.
  const asio::ip::tcp::endpoint endpoint(address, config_.port);
  acceptor_.emplace(*io_);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  // Before bind: the kernel lets a socket join a port only if it and every
  // socket already on it set SO_REUSEPORT (and belong to the same user).
  if (!ec && config_.reuse_port) acceptor_->set_option(ReusePort(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(limits::kListenBacklogConnections, ec);
  if (ec) {
    acceptor_.reset();
    std::string hint;
    if (ec == asio::error::address_in_use) {
      hint = config_.reuse_port
                 ? " (REUSE_PORT shares a port only with processes of the same user that set it "
                   "too)"
                 : " (another process holds it)";
    }
    // IPv6 in brackets, as the listening lines write it: [::1]:8765.
    const bool v6 = absl::StrContains(config_.host, ':');
    return absl::UnavailableError(absl::StrCat("cannot listen on ", v6 ? "[" : "", config_.host,
                                               v6 ? "]" : "", ":", config_.port, ": ", ec.message(),
                                               hint));
  }
  bound_port_ = acceptor_->local_endpoint(ec).port();
  HoldReserveFds();
  StartAccept();
  ScheduleHousekeeping();
  ScheduleResumeService();
  ScheduleKeepalive();
  return absl::OkStatus();
}

template <typename Config>
void BasicWsGateway<Config>::Shutdown(core::CloseReason reason) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_reason_ = reason;
  asio::error_code ec;
  if (acceptor_) acceptor_->close(ec);
  accept_backoff_timer_.cancel();
  housekeeping_timer_.cancel();
  resume_timer_.cancel();
  keepalive_timer_.cancel();
  core_->CloseAll(reason);
  // The timer that would end them is gone: suspended sessions end now, so
  // their members leave (peer_left, node entries released in cluster mode).
  core_->ServiceResumeSessions();
}

template <typename Config>
absl::Status BasicWsGateway<Config>::ReloadTls() {
  if constexpr (!kTls) {
    return absl::FailedPreconditionError("TLS is not configured");
  } else {
    absl::StatusOr<std::shared_ptr<asio::ssl::context>> context =
        NewServerTlsContext(config_.tls_cert_file, config_.tls_key_file);
    if (!context.ok()) return context.status();
    tls_context_ = *std::move(context);
    log::Info("TLS certificate loaded: ", DescribeCertificate(*tls_context_));
    return absl::OkStatus();
  }
}

template <typename Config>
void BasicWsGateway<Config>::StartAccept() {
  if (shutting_down_ || !acceptor_ || !acceptor_->is_open()) return;
  ConnectionPtr con = server_.get_connection();
  if (!con) {  // e.g. no memory for a TLS session: not worth a spin either
    log::Error("cannot create a connection; accepting again in a moment");
    RetryAcceptLater();
    return;
  }
  acceptor_->async_accept(con->get_raw_socket(),
                          [this, con](const asio::error_code& ec) { OnAccept(con, ec); });
}

template <typename Config>
void BasicWsGateway<Config>::OnAccept(const ConnectionPtr& con, const asio::error_code& ec) {
  // A socket that was never started holds nothing but its (unopened or
  // closed) socket: dropping `con` is its whole cleanup.
  if (ec) {
    if (shutting_down_ || !acceptor_->is_open()) return;  // closed: operation_aborted
    // Asio reports errno values in its own category ("asio.system"). Only
    // addresses and values here, no call on the category: at EMFILE the
    // sanitizers' own checks of such a call need an fd (a pipe) and fail.
    const int error = &ec.category() == &asio::system_category() ? ec.value() : 0;
    // Out of fds or memory: the pending connection stays in the kernel's
    // backlog; trying again at once would fail again, as fast as the loop
    // can spin. Wait for a connection to end and free one.
    if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
      ReleaseReserveFds();  // first: what follows may itself need an fd
      if (!accept_backing_off_) {
        accept_backing_off_ = true;
        accept_backoffs_in_episode_ = 0;
        log::Event(log::Level::kWarn, log::LogEvent::kAcceptBackoff)
            .Str("error", std::strerror(error))
            .Uint("pending_handshakes", handshakes_.pending())
            .Uint("connections", slots_->open())
            .Uint("backoff_ms",
                  static_cast<std::uint64_t>(absl::ToInt64Milliseconds(config_.accept_backoff)));
      }
      ++accept_backoffs_in_episode_;
      RetryAcceptLater();
      return;
    }
    // Anything else (the client reset before accept, ...) concerns that one
    // connection only.
    log::Debug("accept failed: ", ec.value());
    StartAccept();
    return;
  }
  if (accept_backing_off_) {
    accept_backing_off_ = false;
    log::Event(log::Level::kInfo, log::LogEvent::kAcceptResumed)
        .Uint("backoffs", accept_backoffs_in_episode_);
  }
  if (AdmitHandshake(con)) con->start();
  StartAccept();
}

template <typename Config>
void BasicWsGateway<Config>::RetryAcceptLater() {
  accept_backoff_timer_.expires_after(ToChrono(config_.accept_backoff));
  accept_backoff_timer_.async_wait([this](const asio::error_code& timer_ec) {
    if (timer_ec) return;
    HoldReserveFds();
    StartAccept();
  });
}

template <typename Config>
void BasicWsGateway<Config>::HoldReserveFds() {
  for (int& fd : reserve_fds_) {
    if (fd < 0) fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // may fail: tried again later
  }
}

template <typename Config>
void BasicWsGateway<Config>::ReleaseReserveFds() {
  for (int& fd : reserve_fds_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

template <typename Config>
bool BasicWsGateway<Config>::AdmitHandshake(const ConnectionPtr& con) {
  const std::optional<asio::ip::tcp::endpoint> peer = TcpPeer(con);
  if (!peer.has_value()) return false;  // already reset by the client
  const std::string ip = peer->address().to_string();
  // A trusted proxy carries many clients; which one is only known from the
  // X-Forwarded-For of a request not read yet.
  const bool exempt = !config_.trusted_proxies.empty() &&
                      config_.trusted_proxies.Contains(ToIpAddress(peer->address()));
  const HandshakeLimiter::Verdict verdict = handshakes_.Admit(ip, exempt, &con->handshake);
  if (verdict == HandshakeLimiter::Verdict::kAdmitted) return true;
  // The first refusal and every 1000th: a flood of them must not flood the log.
  if (const std::uint64_t n = refused_->Add(Refusal::kTooManyHandshakes); n % 1000 == 1) {
    log::Event(log::Level::kWarn, log::LogEvent::kHandshakeLimit)
        .Str("client_ip", ip)
        .Str("why", verdict == HandshakeLimiter::Verdict::kTotalFull
                        ? "max_pending_handshakes reached"
                        : "max_pending_handshakes_per_ip reached")
        .Uint("pending_handshakes", handshakes_.pending())
        .Uint("refused_total", n);
  }
  // Nothing was read: there is no request to answer. Closing now frees the
  // fd at once (a reset if the client already sent bytes).
  asio::error_code ignored;
  con->get_raw_socket().close(ignored);
  return false;
}

template <typename Config>
bool BasicWsGateway<Config>::OnValidate(connection_hdl hdl) {
  ConnectionPtr con = server_.get_con_from_hdl(hdl);
  // Missing or another version (http_messages.h): RFC 6455 4.4 asks for
  // 426 naming the version the relay speaks.
  if (con->get_request().websocket_version_unsupported()) {
    refused_->Add(Refusal::kUnsupportedWebsocketVersion);
    con->replace_header("Sec-WebSocket-Version", "13");
    RefuseUpgrade(con, websocketpp::http::status_code::upgrade_required,
                  Refusal::kUnsupportedWebsocketVersion,
                  "this relay speaks WebSocket version 13 (RFC 6455): send "
                  "Sec-WebSocket-Version: 13");
    return false;
  }
  absl::StatusOr<std::string> mesh_id = ParseRelayPath(con->get_resource(), limits::kMaxIdBytes);
  if (!mesh_id.ok()) {
    const Refusal refusal =
        absl::IsNotFound(mesh_id.status()) ? Refusal::kNotFound : Refusal::kBadMeshId;
    refused_->Add(refusal);
    RefuseUpgrade(con,
                  refusal == Refusal::kNotFound ? websocketpp::http::status_code::not_found
                                                : websocketpp::http::status_code::bad_request,
                  refusal, mesh_id.status().message());
    return false;
  }
  // ALLOWED_ORIGINS (origin_policy.h): a browser page on another origin.
  // An upgrade without Origin is not from a browser and is let through.
  const std::string origin = con->get_request_header("Origin");
  if (!config_.allowed_origins.AllowsUpgrade(origin)) {
    // The first refusal and every 100th: a page retrying in a loop must not
    // flood the log. The origin is the client's text: at most 200 bytes of it.
    if (const std::uint64_t n = refused_->Add(Refusal::kOriginNotAllowed); n % 100 == 1) {
      const std::optional<asio::ip::tcp::endpoint> peer = TcpPeer(con);
      log::Event(log::Level::kInfo, RefusalName(Refusal::kOriginNotAllowed))
          .Str("client_ip", peer.has_value()
                                ? net::ResolveClientIp(ToIpAddress(peer->address()),
                                                       con->get_request_header("X-Forwarded-For"),
                                                       config_.trusted_proxies)
                                      .address.ToString()
                                : std::string("unknown"))
          .Str("origin", absl::string_view(origin).substr(0, 200))
          .Uint("refused_total", n);
    }
    con->replace_header("Vary", "Origin");
    RefuseUpgrade(con, websocketpp::http::status_code::forbidden, Refusal::kOriginNotAllowed,
                  "this relay accepts WebSocket connections from browser pages only on the "
                  "origins its ALLOWED_ORIGINS lists");
    return false;
  }
  if (shutting_down_ || core_->draining()) {
    refused_->Add(Refusal::kDraining);
    con->replace_header("Retry-After", std::to_string(limits::kDrainingRetryAfterSeconds));
    RefuseUpgrade(con, websocketpp::http::status_code::service_unavailable, Refusal::kDraining,
                  "the relay is shutting down; reconnect (another instance may take over) in a "
                  "few seconds");
    return false;
  }
  if (!TakeSlot(con)) return false;
  con->mesh_id = *std::move(mesh_id);
  return true;
}

template <typename Config>
bool BasicWsGateway<Config>::TakeSlot(const ConnectionPtr& con) {
  const std::optional<asio::ip::tcp::endpoint> peer = TcpPeer(con);
  if (peer.has_value()) {
    con->tcp_peer = EndpointText(*peer);
    const net::ClientIp client =
        net::ResolveClientIp(ToIpAddress(peer->address()),
                             con->get_request_header("X-Forwarded-For"), config_.trusted_proxies);
    con->client_ip = client.address.ToString();
    con->client_ip_forwarded = client.forwarded;
  } else {
    con->client_ip = "unknown";  // the socket already failed; it will end soon
  }
  absl::StatusOr<ConnectionSlot> slot = slots_->Acquire(con->client_ip);
  if (slot.ok()) {
    con->slot = *std::move(slot);
    return true;
  }
  // The first refusal and every 100th (of both transports): a storm of them
  // must not flood the log.
  if (const std::uint64_t n = refused_->Add(Refusal::kTooManyConnections); n % 100 == 1) {
    log::Event(log::Level::kWarn, log::LogEvent::kConnectionLimit)
        .Str("client_ip", con->client_ip)
        .Str("transport", scheme())
        .Str("why", slot.status().message())
        .Uint("refused_total", n);
  }
  RefuseUpgrade(con, websocketpp::http::status_code::service_unavailable,
                Refusal::kTooManyConnections, slot.status().message());
  return false;
}

template <typename Config>
void BasicWsGateway<Config>::OnHttp(connection_hdl hdl) {
  ConnectionPtr con = server_.get_con_from_hdl(hdl);
  con->handshake.Release();  // answered: no longer idle in the handshake
  const HttpResponse response =
      RouteHttp(con->get_request().get_method(), con->get_resource(), *core_, *refused_, &metrics_,
                &readiness_, &config_.allowed_origins, con->get_request_header("Origin"));
  con->set_status(static_cast<websocketpp::http::status_code::value>(response.status));
  if (!response.content_type.empty()) con->replace_header("Content-Type", response.content_type);
  con->replace_header("Cache-Control", "no-store");
  for (const auto& [name, value] : response.headers) con->replace_header(name, value);
  if (response.send_body) {
    con->set_body(response.body);
  } else {
    // HEAD: the headers GET would send, Content-Length included, no body
    // (websocketpp writes whatever body is set).
    con->set_body(std::string());
    con->replace_header("Content-Length", std::to_string(response.body.size()));
  }
}

template <typename Config>
void BasicWsGateway<Config>::OnOpen(connection_hdl hdl) {
  ConnectionPtr con = server_.get_con_from_hdl(hdl);
  con->handshake.Release();  // from now on it holds a connection slot
  ReleaseHandshake(con);
  // Behind a trusted proxy the TCP peer is the proxy: report the client.
  std::string remote =
      con->client_ip_forwarded || con->tcp_peer.empty() ? con->client_ip : std::move(con->tcp_peer);
  con->tcp_peer = std::string();
  core::ConnectionInfo info{std::move(remote), std::string(scheme()), con->client_ip};
  const std::string remote_address = info.remote_address;
  con->core_id = core_->Connect(
      std::move(info), std::make_shared<WsPeerSink<Server>>(&server_, hdl, &frame_cache_,
                                                            config_.max_queued_bytes_per_connection,
                                                            &metrics_.ws_bytes));
  log::Event(log::Level::kInfo, log::LogEvent::kConnect)
      .Uint("conn", con->core_id)
      .Str("remote", remote_address)
      .Str("transport", scheme())
      .Str("mesh", con->mesh_id);
  open_.emplace(con->core_id, hdl);
  if (shutting_down_) {
    WsPeerSink<Server>(&server_, hdl, &frame_cache_, config_.max_queued_bytes_per_connection,
                       &metrics_.ws_bytes)
        .Close(shutdown_reason_);
  }
}

template <typename Config>
void BasicWsGateway<Config>::OnMessage(connection_hdl hdl, WsMessagePtr msg) {
  const auto received_at = std::chrono::steady_clock::now();
  ConnectionPtr con = server_.get_con_from_hdl(hdl);
  const std::size_t wire_bytes = msg->get_payload().size();
  con->bytes_in += wire_bytes;
  metrics_.ws_bytes.received.fetch_add(wire_bytes, std::memory_order_relaxed);
  // Over its rate limits a frame is refused before it costs a parse.
  if (!core_->AdmitFrame(con->core_id, wire_bytes)) return;
  // The event and its strings live on the stack (an arena with a stack
  // block), not one heap allocation each; the core moves the payload on.
  alignas(16) char arena_block[1024];
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = arena_block;
  arena_options.initial_block_size = sizeof(arena_block);
  google::protobuf::Arena arena(arena_options);
  auto* event = google::protobuf::Arena::CreateMessage<relay::v1::ClientEvent>(&arena);
  DecodeFailure failure;
  if (DecodeClientFrame(msg->get_payload(), con->mesh_id, event, &failure)) {
    const bool relayed = IsRelayedTraffic(*event);
    core_->HandleAdmitted(con->core_id, std::move(*event), wire_bytes);
    // Every recipient's frame is queued by now (the core delivers before
    // Handle returns).
    if (relayed) {
      metrics_.relay_latency.Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - received_at).count());
    }
  } else {
    core_->RejectAdmitted(con->core_id, failure.code, failure.message, failure.request_id_json,
                          wire_bytes);
  }
  // Inside the read loop no read is in flight, and websocketpp issues the
  // next one after the buffer it holds, unless paused now.
  if (!con->reading_wanted && !con->reading_paused) {
    con->reading_paused = true;
    con->self_while_paused = con;
    con->handle_pause_reading();
  }
}

template <typename Config>
void BasicWsGateway<Config>::OnClose(connection_hdl hdl) {
  ConnectionPtr con = server_.get_con_from_hdl(hdl);
  con->slot.Release();
  ReleaseSocket(con);
  if (con->core_id == 0) return;
  const core::CloseReason reason = con->close_reason.value_or(ObservedCloseReason(con));
  log::Debug("close ", con->core_id, " mesh ", con->mesh_id, ": ", core::CloseReasonName(reason));
  open_.erase(con->core_id);
  // A close the client began itself (its close frame came first) is a
  // goodbye: a resume session ends with it instead of waiting.
  const bool client_said_goodbye =
      !con->close_reason &&
      con->get_remote_close_code() != websocketpp::close::status::abnormal_close;
  core_->Disconnect(con->core_id, reason, client_said_goodbye);
}

// A connection that never opened: refused or failed upgrade, handshake
// timeout, TLS failure. The core never knew it; only its slot is freed.
template <typename Config>
void BasicWsGateway<Config>::OnFail(connection_hdl hdl) {
  websocketpp::lib::error_code ec;
  ConnectionPtr con = server_.get_con_from_hdl(hdl, ec);
  if (ec) return;
  // OnValidate counted its own refusals; these are websocketpp's.
  if (UpgradeRefusedByWebsocketpp(con->get_request(), con->get_response())) {
    refused_->Add(Refusal::kBadRequest);
  }
  con->handshake.Release();
  con->slot.Release();
  ReleaseSocket(con);
}

// websocketpp has ended the connection. Its socket is handed to the lingering
// closer, which takes it from the connection: a TLS close_notify queued behind
// unsent data to a peer that stopped reading would otherwise keep the
// connection, its queue and its socket alive for as long as the peer does not
// read. (Unsent data already in the kernel is still delivered, then FIN.)
template <typename Config>
void BasicWsGateway<Config>::ReleaseSocket(const ConnectionPtr& con) {
  if constexpr (kTls) {
    lingering_closer_.Close(con->get_socket().next_layer());
  } else {
    // websocketpp has ended it through HalfCloseSocketConnection::async_shutdown.
    lingering_closer_.Close(con->get_socket(), /*send_side_shut=*/true);
  }
}

template <typename Config>
void BasicWsGateway<Config>::OnPong(connection_hdl hdl, std::string /*payload*/) {
  websocketpp::lib::error_code ec;
  ConnectionPtr con = server_.get_con_from_hdl(hdl, ec);
  if (ec) return;
  con->awaiting_pong = false;
  con->missed_pongs = 0;
  SettleProbe(con, /*answered=*/true);
}

template <typename Config>
void BasicWsGateway<Config>::ScheduleHousekeeping() {
  housekeeping_timer_.expires_after(ToChrono(config_.housekeeping_interval));
  housekeeping_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || shutting_down_) return;
    core_->ExpireUnregistered();
    ScheduleHousekeeping();
  });
}

template <typename Config>
void BasicWsGateway<Config>::ScheduleResumeService() {
  resume_timer_.expires_after(ToChrono(limits::kResumeAckInterval));
  resume_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || shutting_down_) return;
    core_->ServiceResumeSessions();
    ScheduleResumeService();
  });
}

template <typename Config>
void BasicWsGateway<Config>::ScheduleKeepalive() {
  if (config_.keepalive_interval <= absl::ZeroDuration()) return;
  keepalive_timer_.expires_after(ToChrono(config_.keepalive_interval));
  keepalive_timer_.async_wait([this](const asio::error_code& ec) {
    if (ec || shutting_down_) return;
    KeepaliveTick();
    ScheduleKeepalive();
  });
}

template <typename Config>
void BasicWsGateway<Config>::KeepaliveTick() {
  // Collect first: dropping a connection runs handlers that edit open_.
  std::vector<ConnectionPtr> vanished;
  for (const auto& [id, hdl] : open_) {
    websocketpp::lib::error_code ec;
    ConnectionPtr con = server_.get_con_from_hdl(hdl, ec);
    if (ec || con->get_state() != websocketpp::session::state::open) continue;
    if (con->awaiting_pong && ++con->missed_pongs >= config_.max_missed_pongs) {
      vanished.push_back(con);
      continue;
    }
    con->awaiting_pong = true;
    con->ping("", ec);
  }
  for (const ConnectionPtr& con : vanished) {
    log::Info("peer ", con->core_id, " in mesh ", con->mesh_id, " missed ", con->missed_pongs,
              " keepalive pings; dropping it");
    con->close_reason = core::CloseReason::kKeepaliveTimeout;
    // No close handshake: the peer is gone and would never answer it.
    con->terminate(websocketpp::error::make_error_code(websocketpp::error::general));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<WsGateway>> WsGateway::Create(asio::io_context* io,
                                                             core::RelayCore* core,
                                                             GatewayConfig config,
                                                             ConnectionSlots* slots,
                                                             RefusalCounts* refused) {
  if (!config.tls_enabled()) {
    return std::unique_ptr<WsGateway>(
        new BasicWsGateway<WsPlainConfig>(io, core, std::move(config), slots, refused, nullptr));
  }
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> context =
      NewServerTlsContext(config.tls_cert_file, config.tls_key_file);
  if (!context.ok()) return context.status();
  log::Info("TLS certificate loaded: ", DescribeCertificate(**context));
  return std::unique_ptr<WsGateway>(new BasicWsGateway<WsTlsConfig>(
      io, core, std::move(config), slots, refused, *std::move(context)));
}

}  // namespace relay::gateway
