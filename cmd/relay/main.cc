// relay: the one-process Atmosphere relay. Parses config, wires the core,
// the WebSocket gateway and the gRPC admin plane, and runs them until
// SIGTERM/SIGINT (see docs/threading.md for the threads and shutdown order).
#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

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
#include "server/util/log.h"

namespace {

// Longest a graceful shutdown waits for clients to finish closing.
constexpr auto kShutdownGrace = std::chrono::seconds(5);

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
  relay::core::SystemClock clock;
  relay::core::RelayCore core(config.core, &clock);
  relay::gateway::WsGateway gateway(&io, &core, config.gateway);
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
                           grpc::InsecureServerCredentials(), &grpc_port);
  builder.RegisterService(&admin);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || grpc_port == 0) {
    relay::log::Error("cannot listen for gRPC on ", config.grpc_host, ":", config.grpc_port);
    return 1;
  }
  grpc_server->GetHealthCheckService()->SetServingStatus(true);
  grpc_server->GetHealthCheckService()->SetServingStatus("relay.v1.Admin", true);

  relay::log::Info("relay ", RELAY_VERSION, " starting: ", config.Describe());
  std::cout << "relay: listening ws on " << config.gateway.host << ":" << gateway.port() << "\n"
            << "relay: listening grpc on " << config.grpc_host << ":" << grpc_port << std::endl;

  // SIGTERM/SIGINT: stop accepting, close clients with 1001, then exit 0.
  // A second signal exits at once.
  std::promise<void> stop_requested;
  asio::steady_timer drain_timer(io);
  bool stopping = false;
  std::function<void(const asio::error_code&, int)> on_signal =
      [&](const asio::error_code& ec, int signo) {
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
        StopWhenDrained(io, drain_timer, core,
                        std::chrono::steady_clock::now() + kShutdownGrace);
      };
  signals.async_wait(on_signal);

  std::thread loop([&io] { io.run(); });
  stop_requested.get_future().wait();
  // gRPC handlers wait on the event loop, so stop gRPC while it still runs.
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  loop.join();
  relay::log::Info("relay stopped");
  return 0;
}
