// relay: the one-process Atmosphere relay. Parses config, wires the core,
// the WebSocket gateway and the gRPC admin plane, and runs them until
// SIGTERM/SIGINT (see docs/threading.md for the threads and shutdown order).
// SIGHUP reloads the TLS certificate.
#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "asio/io_context.hpp"
#include "asio/signal_set.hpp"
#include "asio/steady_timer.hpp"
#include "cmd/relay/core_thread_runner.h"
#include "cmd/relay/relay_config.h"
#include "gateway/ws/ws_gateway.h"
#include "server/admin/admin_service.h"
#include "server/core/clock.h"
#include "server/core/relay_core.h"
#include "server/store/sqlite_auth_store.h"
#include "server/util/log.h"

namespace {

// Longest a graceful shutdown waits for clients to finish closing.
constexpr auto kShutdownGrace = std::chrono::seconds(5);
// gRPC has no reload call: it re-reads the certificate files this often (and
// keeps the old pair while the new files do not match each other).
constexpr unsigned int kGrpcCertificateRefreshSeconds = 10;

// Plaintext, or TLS with the gateway's certificate and key.
std::shared_ptr<grpc::ServerCredentials> GrpcCredentials(const relay::RelayConfig& config) {
  if (!config.gateway.tls_enabled()) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      config.gateway.tls_key_file, config.gateway.tls_cert_file, kGrpcCertificateRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  return grpc::experimental::TlsServerCredentials(options);
}

std::optional<std::string> GetEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// Stops the event loop once every connection is gone or the grace ran out.
void StopWhenDrained(asio::io_context& io, asio::steady_timer& timer,
                     const relay::core::RelayCore& core,
                     std::chrono::steady_clock::time_point give_up) {
  if (core.OpenConnections() == 0 || std::chrono::steady_clock::now() >= give_up) {
    io.stop();
    return;
  }
  timer.expires_after(std::chrono::milliseconds(20));
  timer.async_wait([&io, &timer, &core, give_up](const asio::error_code&) {
    StopWhenDrained(io, timer, core, give_up);
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<relay::LoadedConfig> loaded = relay::LoadRelayConfig(args, GetEnv);
  if (!loaded.ok()) {
    std::cerr << "relay: " << loaded.status().message() << "\n\n" << relay::RelayUsage();
    return 2;
  }
  if (loaded->help) {
    std::cout << relay::RelayUsage();
    return 0;
  }
  const relay::RelayConfig& config = loaded->config;
  relay::log::SetLevel(config.log_level);
  std::signal(SIGPIPE, SIG_IGN);

  asio::io_context io(1);
  // Claim SIGTERM/SIGINT before anything can report readiness: a signal that
  // arrives early is then queued for the handler below, not fatal.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::signal_set reload_signals(io, SIGHUP);
  relay::core::SystemClock clock;
  std::unique_ptr<relay::store::AuthStore> auth_store;
  if (!config.data_dir.empty()) {
    absl::StatusOr<std::unique_ptr<relay::store::SqliteAuthStore>> opened =
        relay::store::SqliteAuthStore::Open(config.data_dir + "/relay.db");
    if (!opened.ok()) {
      relay::log::Error(opened.status().message());
      return 1;
    }
    auth_store = *std::move(opened);
  }
  relay::core::RelayCore core(config.core, &clock, auth_store.get());
  if (absl::Status status = core.LoadAuthState(); !status.ok()) {
    relay::log::Error("cannot load authentication state: ", status.message());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<relay::gateway::WsGateway>> created =
      relay::gateway::WsGateway::Create(&io, &core, config.gateway);
  if (!created.ok()) {
    relay::log::Error(created.status().message());
    return 1;
  }
  relay::gateway::WsGateway& gateway = **created;
  if (absl::Status status = gateway.Listen(); !status.ok()) {
    relay::log::Error(status.message());
    return 1;
  }

  relay::CoreThreadRunner runner(&io, absl::Seconds(5));
  relay::admin::AdminService admin(
      [&runner](std::function<void()> work) { return runner.Run(work); }, &core);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(absl::StrCat(config.grpc_host, ":", config.grpc_port),
                           GrpcCredentials(config), &grpc_port);
  builder.RegisterService(&admin);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || grpc_port == 0) {
    relay::log::Error("cannot listen for gRPC on ", config.grpc_host, ":", config.grpc_port);
    return 1;
  }
  grpc_server->GetHealthCheckService()->SetServingStatus(true);
  grpc_server->GetHealthCheckService()->SetServingStatus("relay.v1.Admin", true);

  relay::log::Info("relay ", RELAY_VERSION, " starting: ", config.Describe());
  std::cout << "relay: listening " << gateway.scheme() << " on " << config.gateway.host << ":"
            << gateway.port() << "\n"
            << "relay: listening grpc on " << config.grpc_host << ":" << grpc_port << std::endl;

  // SIGTERM/SIGINT: stop accepting, close clients with 1001, then exit 0.
  // A second signal exits at once.
  std::promise<void> stop_requested;
  asio::steady_timer drain_timer(io);
  bool stopping = false;
  std::function<void(const asio::error_code&, int)> on_signal = [&](const asio::error_code& ec,
                                                                    int signo) {
    if (ec) return;
    if (stopping) {
      relay::log::Warn("second signal ", signo, ": exiting now");
      std::_Exit(1);
    }
    stopping = true;
    relay::log::Info("signal ", signo, ": shutting down");
    grpc_server->GetHealthCheckService()->SetServingStatus(false);
    gateway.Shutdown();
    stop_requested.set_value();
    signals.async_wait(on_signal);
    StopWhenDrained(io, drain_timer, core, std::chrono::steady_clock::now() + kShutdownGrace);
  };
  signals.async_wait(on_signal);

  // SIGHUP: new TLS handshakes use the re-read certificate; open connections
  // keep theirs. A bad new pair is logged and the old one kept.
  std::function<void(const asio::error_code&, int)> on_reload = [&](const asio::error_code& ec,
                                                                    int) {
    if (ec) return;
    if (!config.gateway.tls_enabled()) {
      relay::log::Info("SIGHUP: TLS is off, nothing to reload");
    } else if (absl::Status status = gateway.ReloadTls(); !status.ok()) {
      relay::log::Error("SIGHUP: keeping the current TLS certificate: ", status.message());
    }
    reload_signals.async_wait(on_reload);
  };
  reload_signals.async_wait(on_reload);

  std::thread loop([&io] { io.run(); });
  stop_requested.get_future().wait();
  // gRPC handlers wait on the event loop, so stop gRPC while it still runs.
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  loop.join();
  relay::log::Info("relay stopped");
  return 0;
}
