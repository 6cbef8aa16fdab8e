// relay: the one-process Atmosphere relay. Parses config, wires the core,
// the WebSocket gateway, gRPC peers and the gRPC admin plane, and runs them
// until a drain (SIGTERM/SIGINT or `relayctl drain`) ends (see
// docs/threading.md for the threads and shutdown order). SIGHUP reloads the
// TLS certificate.
#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <grpc/support/log.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "asio/io_context.hpp"
#include "asio/post.hpp"
#include "asio/signal_set.hpp"
#include "asio/steady_timer.hpp"
#include "backplane/nats/cluster_metrics.h"
#include "backplane/nats/deferred_auth_store.h"
#include "backplane/nats/nats_backplane.h"
#include "backplane/nats/nats_cluster_view.h"
#include "backplane/nats/nats_connection.h"
#include "cmd/relay/build_info.h"
#include "cmd/relay/core_thread_runner.h"
#include "cmd/relay/drain_controller.h"
#include "cmd/relay/listen_line.h"
#include "cmd/relay/relay_config.h"
#include "gateway/admission/connection_slots.h"
#include "gateway/admission/refusal.h"
#include "gateway/grpc/attach_service.h"
#include "gateway/ws/ws_gateway.h"
#include "server/admin/admin_service.h"
#include "server/core/clock.h"
#include "server/core/core_executor.h"
#include "server/core/relay_core.h"
#include "server/limits.h"
#include "server/store/sqlite_auth_store.h"
#include "server/util/log.h"

namespace {

// Health service names: the whole server and the peer-facing service.
constexpr const char* kRelayCoreService = "relay.v1.RelayCore";
constexpr const char* kAdminService = "relay.v1.Admin";

// Plaintext, or TLS with the gateway's certificate and key.
std::shared_ptr<grpc::ServerCredentials> GrpcCredentials(const relay::RelayConfig& config) {
  if (!config.gateway.tls_enabled()) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      config.gateway.tls_key_file, config.gateway.tls_cert_file,
      relay::limits::kGrpcCertificateRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  return grpc::experimental::TlsServerCredentials(options);
}

// Brings work finished on another thread (the auth store's worker) back to
// the event loop, the core's one thread.
class EventLoopExecutor final : public relay::core::CoreExecutor {
 public:
  explicit EventLoopExecutor(asio::io_context* io) : io_(io) {}
  void Post(std::function<void()> work) override { asio::post(*io_, std::move(work)); }

 private:
  asio::io_context* const io_;
};

std::optional<std::string> GetEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// gRPC's own log lines as `grpc_log` events. gRPC filters them by
// GRPC_VERBOSITY (default: errors only) before calling this.
void LogGrpcLine(gpr_log_func_args* args) {
  relay::log::Level level = relay::log::Level::kError;
  if (args->severity == GPR_LOG_SEVERITY_INFO) level = relay::log::Level::kInfo;
  if (args->severity == GPR_LOG_SEVERITY_DEBUG) level = relay::log::Level::kDebug;
  relay::log::Event(level, relay::log::LogEvent::kGrpcLog)
      .Str("file", args->file != nullptr ? args->file : "")
      .Int("line", args->line)
      .Str("text", args->message != nullptr ? args->message : "");
}

// LOG_FORMAT=json (or --log-format json) was asked for, even if the config
// as a whole did not load: its error is then a JSON line too.
bool AsksForJsonLogs(const std::vector<std::string>& args) {
  bool json = false;
  if (const char* env = std::getenv("LOG_FORMAT"); env != nullptr) {
    json = relay::log::ParseFormat(env).value_or(relay::log::Format::kText) ==
           relay::log::Format::kJson;
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string value;
    if (args[i] == "--log-format" && i + 1 < args.size()) {
      value = args[i + 1];
    } else if (absl::StartsWith(args[i], "--log-format=")) {
      value = args[i].substr(std::string("--log-format=").size());
    } else {
      continue;
    }
    json = relay::log::ParseFormat(value).value_or(relay::log::Format::kText) ==
           relay::log::Format::kJson;
  }
  return json;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // gRPC's runtime logs through the relay's log (LOG_FORMAT, LOG_LEVEL), so
  // that a JSON log holds no plain line. Before any gRPC object exists.
  gpr_set_log_function(LogGrpcLine);
  absl::StatusOr<relay::LoadedConfig> loaded = relay::LoadRelayConfig(args, GetEnv);
  if (!loaded.ok()) {
    if (AsksForJsonLogs(args)) {
      relay::log::SetFormat(relay::log::Format::kJson);
      relay::log::Event(relay::log::Level::kError, relay::log::LogEvent::kConfigInvalid)
          .Str("why", loaded.status().message());
    } else {
      std::cerr << "relay: " << loaded.status().message() << "\n\n" << relay::RelayUsage();
    }
    return 2;
  }
  if (loaded->help) {
    std::cout << relay::RelayUsage();
    return 0;
  }
  if (loaded->version) {
    std::cout << relay::build_info::VersionLine("relay") << "\n";
    return 0;
  }
  const relay::RelayConfig& config = loaded->config;
  relay::log::SetLevel(config.log_level);
  relay::log::SetFormat(config.log_format);
  std::signal(SIGPIPE, SIG_IGN);

  asio::io_context io(1);
  // Claim SIGTERM/SIGINT before anything can report readiness: a signal that
  // arrives early is then queued for the handler below, not fatal.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::signal_set reload_signals(io, SIGHUP);
  relay::core::SystemClock clock;
  // Declared before the store: the store's last answers (it runs its queue
  // when destroyed) are posted through it.
  EventLoopExecutor core_executor(&io);
  // Cluster mode's NATS connection, declared before what uses it (the auth
  // store, the backplane), so it is closed after them.
  std::unique_ptr<relay::backplane::nats::NatsConnection> nats;
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
  // Cluster mode: one NATS connection, and the backplane over it. Neither
  // blocks start-up: with NATS unreachable the relay serves its own peers
  // and /ready says why it is not ready, while nats.c keeps trying.
  std::unique_ptr<relay::backplane::nats::NatsBackplane> backplane;
  // The Admin API's cluster-wide meshes view, over the backplane.
  std::unique_ptr<relay::backplane::nats::NatsClusterView> cluster_view;
  // nats.c's state callbacks reach the backplane through this, under a lock,
  // so that none runs into a backplane being destroyed (they may come until
  // the connection is closed, after the backplane).
  std::mutex backplane_for_callbacks_mu;
  relay::backplane::nats::NatsBackplane* backplane_for_callbacks = nullptr;
  if (config.cluster.enabled()) {
    relay::backplane::nats::NatsSettings nats_settings;
    nats_settings.urls = config.cluster.nats_urls;
    nats_settings.creds_file = config.cluster.nats_creds_file;
    nats_settings.tls_ca_file = config.cluster.nats_tls_ca_file;
    nats_settings.name = "relay " + config.cluster.instance_id;
    absl::StatusOr<std::unique_ptr<relay::backplane::nats::NatsConnection>> connected =
        relay::backplane::nats::NatsConnection::Connect(nats_settings, [&] {
          std::lock_guard<std::mutex> lock(backplane_for_callbacks_mu);
          if (backplane_for_callbacks != nullptr) backplane_for_callbacks->OnConnectionChange();
        });
    if (!connected.ok()) {
      relay::log::Error("cluster: ", connected.status().message());
      return 1;
    }
    nats = *std::move(connected);
    relay::backplane::nats::ClusterSettings cluster_settings;
    cluster_settings.cluster = config.cluster.name;
    cluster_settings.instance_id = config.cluster.instance_id;
    cluster_settings.kv_replicas = config.cluster.kv_replicas;
    cluster_settings.max_message_bytes = config.gateway.max_message_bytes;
    backplane = std::make_unique<relay::backplane::nats::NatsBackplane>(
        nats.get(), cluster_settings, &core_executor);
    // Token bindings, signed meshes and used nonces, shared by every
    // instance (RELAY_DATA_DIR is refused beside NATS_URL).
    relay::backplane::nats::NatsAuthStoreSettings auth_settings;
    auth_settings.cluster = config.cluster.name;
    auth_settings.replicas = config.cluster.kv_replicas;
    auth_settings.max_join_token_lifetime = config.core.max_join_token_lifetime;
    auto deferred_auth = std::make_unique<relay::backplane::nats::DeferredAuthStore>(
        nats.get(), auth_settings, &core_executor);
    // Until the shared store opens every registration would be refused
    // auth_unavailable, so the instance is not ready to take peers.
    backplane->RequireAlso("opening the cluster's authentication store",
                           [store = deferred_auth.get()] { return store->opened(); });
    auth_store = std::move(deferred_auth);
    cluster_view = std::make_unique<relay::backplane::nats::NatsClusterView>(backplane.get());
    std::lock_guard<std::mutex> lock(backplane_for_callbacks_mu);
    backplane_for_callbacks = backplane.get();
  }
  // relay.db is read and written on the store's worker thread, and the
  // backplane works on its own threads; their answers come back to the
  // event loop. Without either everything is answered inline.
  const bool off_loop = auth_store != nullptr || backplane != nullptr;
  relay::core::RelayCore core(config.core, &clock, auth_store.get(),
                              off_loop ? &core_executor : nullptr, backplane.get());
  if (absl::Status status = core.LoadAuthState(); !status.ok()) {
    relay::log::Error("cannot load authentication state: ", status.message());
    return 1;
  }
  // One admission policy for WebSocket and gRPC peers together.
  relay::gateway::ConnectionSlots slots(config.gateway.max_connections,
                                        config.gateway.max_connections_per_ip);
  relay::gateway::RefusalCounts refused;
  absl::StatusOr<std::unique_ptr<relay::gateway::WsGateway>> created =
      relay::gateway::WsGateway::Create(&io, &core, config.gateway, &slots, &refused);
  if (!created.ok()) {
    relay::log::Error(created.status().message());
    return 1;
  }
  relay::gateway::WsGateway& gateway = **created;
  // Cluster mode: reads the backplane's readiness and makes gRPC health
  // follow it (set once gRPC runs). On the event loop only.
  std::function<std::string()> refresh_readiness;
  if (backplane != nullptr) {
    // /ready also brings gRPC health up to date (refresh_readiness, below),
    // so no probe ever sees one ready and the other not.
    gateway.SetReadinessCheck(
        [&] { return refresh_readiness ? refresh_readiness() : backplane->Readiness().reason; });
    gateway.metrics()->cluster_series = [&nats, &backplane](relay::metrics::PrometheusText* out) {
      relay::backplane::nats::WriteClusterMetrics(*nats, *backplane, out);
    };
  }
  if (absl::Status status = gateway.Listen(); !status.ok()) {
    relay::log::Error(status.message());
    return 1;
  }

  relay::CoreThreadRunner runner(&io, relay::limits::kCoreCallDeadline);
  relay::gateway::RelayMetrics* metrics = gateway.metrics();
  metrics->commit = relay::build_info::Commit();
  metrics->max_connections = config.gateway.max_connections;
  metrics->max_auth_records = config.core.max_auth_records;
  core.set_llm_round_trip_observer([metrics](absl::Duration round_trip) {
    metrics->llm_round_trip.Observe(absl::ToDoubleSeconds(round_trip));
  });
  relay::gateway::AttachService attach(
      &io, &core,
      relay::gateway::AttachOptions{config.gateway.max_queued_bytes_per_connection, metrics, &slots,
                                    &refused});
  std::unique_ptr<grpc::Server> grpc_server;
  std::promise<void> stop_requested;
  bool stop_signalled = false;
  relay::DrainController::Hooks drain_hooks;
  drain_hooks.stop_accepting = [&] {
    grpc_server->GetHealthCheckService()->SetServingStatus(false);
    attach.StopAccepting();
  };
  // In a cluster the service goes on elsewhere: 1012 tells clients to
  // reconnect now (through the load balancer, to another instance).
  drain_hooks.close_all = [&] {
    gateway.Shutdown(backplane != nullptr ? relay::core::CloseReason::kServiceRestart
                                          : relay::core::CloseReason::kServerShutdown);
  };
  drain_hooks.on_closing = [&] {
    if (!stop_signalled) {
      stop_signalled = true;
      stop_requested.set_value();
    }
  };
  // Deadlines of the drain are monotonic: a wall clock step must not cut
  // or stretch the grace.
  relay::core::SteadyClock steady_clock;
  relay::DrainController drain(&io, &core, &steady_clock, config.drain_grace,
                               relay::limits::kDrainCloseTimeout, std::move(drain_hooks));
  relay::admin::AdminService admin(
      [&runner](std::function<void()> work) { return runner.Run(work); }, &core,
      [&runner, &drain](absl::Duration grace) -> absl::StatusOr<relay::admin::DrainResult> {
        auto result = std::make_shared<absl::StatusOr<relay::admin::DrainResult>>(
            absl::UnavailableError("the relay's event loop did not answer in time"));
        absl::Status ran =
            runner.Run([&drain, result, grace] { *result = drain.Begin(grace, "relayctl drain"); });
        if (!ran.ok()) return ran;
        return *result;
      },
      config.admin_token, cluster_view.get());
  // The transports' refusals, counted outside the core: GetStats lists them
  // as /stats does.
  admin.set_stats_extension([&refused](relay::v1::Stats* stats) {
    for (std::size_t i = 0; i < relay::gateway::kRefusalCount; ++i) {
      const auto refusal = static_cast<relay::gateway::Refusal>(i);
      relay::v1::RefusalCount* count = stats->add_refused();
      count->set_reason(std::string(relay::gateway::RefusalName(refusal)));
      count->set_count(refused.Get(refusal));
    }
  });
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(relay::HostPort(config.grpc_host, config.grpc_port),
                           GrpcCredentials(config), &grpc_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.gateway.max_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, relay::limits::kGrpcKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, relay::limits::kGrpcKeepaliveTimeoutMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // gRPC sets SO_REUSEPORT by default: a second relay on the same GRPC_PORT
  // would start and take half the admin calls and gRPC peers. Each instance
  // has its own gRPC port, REUSE_PORT or not; a taken one fails the start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&admin);
  builder.RegisterService(&attach);
  grpc_server = builder.BuildAndStart();
  if (grpc_server == nullptr || grpc_port == 0) {
    relay::log::Error("cannot listen for gRPC on ",
                      relay::HostPort(config.grpc_host, config.grpc_port),
                      " (another process holds it, or it is not an address of this host)");
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = grpc_server->GetHealthCheckService();
  auto set_serving = [health](bool serving) {
    health->SetServingStatus(serving);
    health->SetServingStatus(kRelayCoreService, serving);
    health->SetServingStatus(kAdminService, serving);
  };
  set_serving(backplane == nullptr);
  // Cluster mode: gRPC health follows the backplane's readiness (what
  // /ready shows) until a drain takes it down for good.
  asio::steady_timer readiness_timer(io);
  bool serving_now = backplane == nullptr;
  refresh_readiness = [&]() -> std::string {
    const relay::backplane::nats::ClusterReadiness readiness = backplane->Readiness();
    // A drain took health down for good: left alone.
    if (!core.draining() && readiness.ready != serving_now) {
      serving_now = readiness.ready;
      set_serving(serving_now);
    }
    return readiness.reason;
  };
  std::function<void()> watch_readiness = [&] {
    refresh_readiness();
    readiness_timer.expires_after(std::chrono::milliseconds(250));
    readiness_timer.async_wait([&](const asio::error_code& ec) {
      if (!ec && !core.draining()) watch_readiness();
    });
  };
  if (backplane != nullptr) {
    backplane->Start([](absl::Status fatal) {
      // Nothing sensible is left to do: a supervisor starts the relay again
      // (a fenced instance comes back as a new incarnation).
      relay::log::Error("cluster: ", fatal.message());
      std::_Exit(1);
    });
    // Posted: the loop is not running yet, and /ready's calls run on it.
    asio::post(io, [&] { watch_readiness(); });
  }
  // Cluster mode: this instance's counts ride on its lease (rewritten every
  // second by the lease thread), so any instance can show the cluster's
  // totals without asking the others. Read here, on the core thread, which
  // owns the counts; SetSummary only stores them under the leases' lock.
  asio::steady_timer summary_timer(io);
  std::function<void()> publish_summary = [&] {
    const relay::v1::Stats stats = core.GetStats();
    relay::backplane::nats::InstanceLeases::Summary summary;
    summary.connections = stats.open_sockets();
    summary.peers = stats.registered_peers();
    summary.messages_relayed = stats.messages_relayed();
    backplane->SetSummary(summary);
    summary_timer.expires_after(std::chrono::seconds(1));
    // Stops with the drain, as the readiness timer does: the event loop
    // must run out of work for the relay to exit.
    summary_timer.async_wait([&](const asio::error_code& ec) {
      if (!ec && !core.draining()) publish_summary();
    });
  };
  if (backplane != nullptr) asio::post(io, publish_summary);

  relay::log::Info(relay::build_info::VersionLine("relay"), " starting: ", config.Describe());
  std::cout << relay::ListeningLine(config.log_format, gateway.scheme(), config.gateway.host,
                                    gateway.port(), absl::Now())
            << relay::ListeningLine(config.log_format, "grpc", config.grpc_host, grpc_port,
                                    absl::Now())
            << std::flush;

  // SIGTERM/SIGINT: drain (DrainController), then exit 0. A second signal
  // exits at once.
  std::function<void(const asio::error_code&, int)> on_signal = [&](const asio::error_code& ec,
                                                                    int signo) {
    if (ec) return;
    const char* name = signo == SIGINT ? "SIGINT" : "SIGTERM";
    if (drain.draining()) {
      relay::log::Warn(name, " again: exiting now, without waiting for the drain");
      std::_Exit(1);
    }
    absl::StatusOr<relay::admin::DrainResult> began = drain.Begin(absl::ZeroDuration(), name);
    // A person at a terminal pressed Ctrl-C: say why the relay does not stop
    // at once, and how to make it.
    const absl::Duration grace = began.ok() ? began->grace : config.drain_grace;
    const std::size_t connections = began.ok() ? began->connections : 0;
    relay::log::Warn(name, ": draining, clients get up to ", absl::ToInt64Seconds(grace),
                     " s to finish (", connections,
                     connections == 1 ? " connection" : " connections",
                     "); press Ctrl-C again (or send another SIGTERM) to quit at once");
    signals.async_wait(on_signal);
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
  grpc_server->Shutdown(std::chrono::system_clock::now() +
                        absl::ToChronoMilliseconds(relay::limits::kGrpcShutdownDeadline));
  loop.join();
  // Every member was released on the loop; tell the cluster this instance
  // stopped (at once, instead of after its silence).
  if (backplane != nullptr) {
    backplane->Stop();
    std::lock_guard<std::mutex> lock(backplane_for_callbacks_mu);
    backplane_for_callbacks = nullptr;
  }
  relay::log::Info("relay stopped");
  return 0;
}
