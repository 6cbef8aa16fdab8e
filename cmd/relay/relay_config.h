// RelayConfig: every setting of the `relay` binary, loaded from environment
// variables and command-line flags (flags win). Each flag maps one-to-one to
// an env var. One table (relay_config.cc) names every setting with its flag,
// variable, unit, default and one-line doc: --help (RelayUsage), the
// start-up summary (Describe) and the check of README "Configuration"
// (tests/cmd/relay_config_test.cc) all read it, so none can drift.
#ifndef RELAY_CMD_RELAY_RELAY_CONFIG_H_
#define RELAY_CMD_RELAY_RELAY_CONFIG_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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
  // Cluster mode (docs/adr/0009-cluster-on-nats.md): on when nats_urls is
  // set. instance_id is filled in (host name + random suffix) when unset.
  struct Cluster {
    std::vector<std::string> nats_urls;
    std::string nats_creds_file;
    std::string nats_tls_ca_file;
    std::string name = "atmosphere";
    std::string instance_id;
    int kv_replicas = 3;
    bool enabled() const { return !nats_urls.empty(); }
  } cluster;
  // Bearer token the Admin API requires; needed to bind GRPC_HOST off
  // loopback without TLS. Never logged.
  std::string admin_token;
  // gRPC serves TLS with the gateway's certificate (gateway.tls_cert_file and
  // gateway.tls_key_file) whenever the gateway does.

  // `name=value` for every setting, in table order, for the start-up log
  // (the admin token only as set or none).
  std::string Describe() const;
};

// One row of the settings table.
struct SettingInfo {
  absl::string_view name;  // snake_case: the key in Describe()
  absl::string_view flag;  // without the leading "--"
  absl::string_view env;
  // What a value counts: "seconds", "bytes", "connections"... or what it is
  // ("address", "path") for one that is not a quantity.
  absl::string_view unit;
  // As a flag would give it; empty for none (README writes "empty").
  absl::string_view default_value;
  absl::string_view doc;  // one line
};

// Every setting, in the order of --help, Describe() and README.
std::vector<SettingInfo> RelaySettings();

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The outcome of parsing: a config, or --help or --version was asked for.
struct LoadedConfig {
  RelayConfig config;
  bool help = false;
  bool version = false;
};

// InvalidArgument naming the flag or variable at fault.
absl::StatusOr<LoadedConfig> LoadRelayConfig(const std::vector<std::string>& args,
                                             const EnvLookup& env);

std::string RelayUsage();

}  // namespace relay

#endif  // RELAY_CMD_RELAY_RELAY_CONFIG_H_
