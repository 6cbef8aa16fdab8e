// RelayConfig: every setting of the `relay` binary, loaded from environment
// variables and command-line flags (flags win). Each flag maps one-to-one to
// an env var; --help lists them with defaults (docs: README "Configuration").
#ifndef RELAY_CMD_RELAY_RELAY_CONFIG_H_
#define RELAY_CMD_RELAY_RELAY_CONFIG_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/ws/gateway_config.h"
#include "server/core/core_config.h"
#include "server/util/log.h"

namespace relay {

struct RelayConfig {
  gateway::GatewayConfig gateway;
  core::CoreConfig core;
  std::string grpc_host = "127.0.0.1";
  std::uint16_t grpc_port = 50051;
  log::Level log_level = log::Level::kInfo;
  log::Format log_format = log::Format::kText;
  // Where durable authentication state lives (relay.db); empty: in memory.
  std::string data_dir;
  // SIGTERM / `relayctl drain`: how long peers get between server_draining
  // and the 1001 close.
  absl::Duration drain_grace = absl::Seconds(20);
  // Bearer token the Admin API requires; needed to bind GRPC_HOST off
  // loopback without TLS. Never logged.
  std::string admin_token;
  // gRPC serves TLS with the gateway's certificate (gateway.tls_cert_file and
  // gateway.tls_key_file) whenever the gateway does.

  // One line per setting, for the start-up log.
  std::string Describe() const;
};

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The outcome of parsing: a config, or --help was asked for (help_text set).
struct LoadedConfig {
  RelayConfig config;
  bool help = false;
};

// InvalidArgument naming the flag or variable at fault.
absl::StatusOr<LoadedConfig> LoadRelayConfig(const std::vector<std::string>& args,
                                             const EnvLookup& env);

std::string RelayUsage();

}  // namespace relay

#endif  // RELAY_CMD_RELAY_RELAY_CONFIG_H_
