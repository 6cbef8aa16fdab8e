// Tests for cmd/relay/relay_config.cc: defaults, env vars, flags (which win),
// --flag=value, and every way a setting can be refused.
#include "cmd/relay/relay_config.h"

#include <cctype>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const EnvLookup kNoEnv = Env({});

RelayConfig MustLoad(const std::vector<std::string>& args, const EnvLookup& env = kNoEnv) {
  absl::StatusOr<LoadedConfig> loaded = LoadRelayConfig(args, env);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return RelayConfig{};
  EXPECT_FALSE(loaded->help);
  return loaded->config;
}

absl::Status LoadError(const std::vector<std::string>& args, const EnvLookup& env = kNoEnv) {
  absl::StatusOr<LoadedConfig> loaded = LoadRelayConfig(args, env);
  EXPECT_FALSE(loaded.ok()) << "accepted";
  return loaded.status();
}

TEST(RelayConfigTest, DefaultsMatchTheSpec) {
  const RelayConfig config = MustLoad({});

  EXPECT_EQ(config.gateway.host, "0.0.0.0");
  EXPECT_EQ(config.gateway.port, 8765);
  EXPECT_EQ(config.grpc_host, "127.0.0.1");
  EXPECT_EQ(config.grpc_port, 50051);
  EXPECT_EQ(config.log_level, log::Level::kInfo);
  EXPECT_EQ(config.core.registration_timeout, absl::Seconds(30));
  EXPECT_EQ(config.gateway.max_message_bytes, 1048576u);
  EXPECT_EQ(config.gateway.keepalive_interval, absl::Seconds(30));
}

TEST(RelayConfigTest, EnvironmentSetsEverySetting) {
  const RelayConfig config = MustLoad({}, Env({{"PORT", "9000"},
                                               {"HOST", "127.0.0.2"},
                                               {"GRPC_PORT", "9001"},
                                               {"GRPC_HOST", "0.0.0.0"},
                                               {"ADMIN_TOKEN", "t"},
                                               {"LOG_LEVEL", "debug"},
                                               {"LOG_FORMAT", "json"},
                                               {"DRAIN_GRACE_SECONDS", "9"},
                                               {"REGISTRATION_TIMEOUT_SECONDS", "5"},
                                               {"MAX_MESSAGE_BYTES", "2048"},
                                               {"KEEPALIVE_SECONDS", "0"}}));

  EXPECT_EQ(config.gateway.port, 9000);
  EXPECT_EQ(config.gateway.host, "127.0.0.2");
  EXPECT_EQ(config.grpc_port, 9001);
  EXPECT_EQ(config.grpc_host, "0.0.0.0");
  EXPECT_EQ(config.log_level, log::Level::kDebug);
  EXPECT_EQ(config.log_format, log::Format::kJson);
  EXPECT_EQ(config.drain_grace, absl::Seconds(9));
  EXPECT_EQ(config.admin_token, "t");
  EXPECT_EQ(config.core.registration_timeout, absl::Seconds(5));
  EXPECT_EQ(config.gateway.max_message_bytes, 2048u);
  EXPECT_EQ(config.gateway.keepalive_interval, absl::ZeroDuration());
}

TEST(RelayConfigTest, FlagsSetEverySetting) {
  const RelayConfig config =
      MustLoad({"--port", "1", "--host", "::1", "--grpc-port", "2", "--grpc-host", "10.0.0.1",
                "--log-level", "error", "--registration-timeout-seconds", "7",
                "--max-message-bytes", "4096", "--keepalive-seconds", "15", "--admin-token", "t"});

  EXPECT_EQ(config.gateway.port, 1);
  EXPECT_EQ(config.gateway.host, "::1");
  EXPECT_EQ(config.grpc_port, 2);
  EXPECT_EQ(config.grpc_host, "10.0.0.1");
  EXPECT_EQ(config.log_level, log::Level::kError);
  EXPECT_EQ(config.core.registration_timeout, absl::Seconds(7));
  EXPECT_EQ(config.gateway.max_message_bytes, 4096u);
  EXPECT_EQ(config.gateway.keepalive_interval, absl::Seconds(15));
}

TEST(RelayConfigTest, HardeningDefaultsMatchTheSpec) {
  const RelayConfig config = MustLoad({});

  EXPECT_EQ(config.data_dir, "");  // auth state in memory
  EXPECT_EQ(config.core.mesh_binding_grace, absl::Hours(24));
  EXPECT_EQ(config.core.rate_limit_per_second, 1000);
  EXPECT_EQ(config.core.rate_limit_burst, 20000u);
  EXPECT_EQ(config.core.max_peers_per_mesh, 1000u);
  EXPECT_EQ(config.gateway.handshake_timeout, absl::Seconds(10));
  EXPECT_EQ(config.gateway.max_queued_bytes_per_connection, std::size_t{8} << 20);
  EXPECT_EQ(config.gateway.max_connections, 10000u);
  EXPECT_EQ(config.gateway.max_connections_per_ip, 100u);
  EXPECT_EQ(config.gateway.max_pending_handshakes, 4096u);
  EXPECT_EQ(config.gateway.max_pending_handshakes_per_ip, 256u);
  EXPECT_FALSE(config.gateway.tls_enabled());
  // Every origin, as before ALLOWED_ORIGINS existed: the relay authenticates by token.
  EXPECT_TRUE(config.gateway.allowed_origins.allows_any());
}

// Each hardening setting, from its variable and from its flag.
struct HardeningCase {
  std::string flag;
  std::string variable;
  std::string value;
  std::function<bool(const RelayConfig&)> applied;
};

std::vector<HardeningCase> HardeningCases() {
  return {
      {"--data-dir", "RELAY_DATA_DIR", "/var/lib/relay",
       [](const RelayConfig& c) { return c.data_dir == "/var/lib/relay"; }},
      {"--mesh-binding-grace-seconds", "MESH_BINDING_GRACE_SECONDS", "60",
       [](const RelayConfig& c) { return c.core.mesh_binding_grace == absl::Seconds(60); }},
      {"--rate-limit-per-second", "RATE_LIMIT_PER_SECOND", "0",
       [](const RelayConfig& c) { return c.core.rate_limit_per_second == 0; }},
      {"--rate-limit-burst", "RATE_LIMIT_BURST", "7",
       [](const RelayConfig& c) { return c.core.rate_limit_burst == 7; }},
      {"--max-peers-per-mesh", "MAX_PEERS_PER_MESH", "3",
       [](const RelayConfig& c) { return c.core.max_peers_per_mesh == 3; }},
      {"--handshake-timeout-seconds", "HANDSHAKE_TIMEOUT_SECONDS", "2",
       [](const RelayConfig& c) { return c.gateway.handshake_timeout == absl::Seconds(2); }},
      {"--max-queued-bytes-per-connection", "MAX_QUEUED_BYTES_PER_CONNECTION", "2097152",
       [](const RelayConfig& c) { return c.gateway.max_queued_bytes_per_connection == 2097152; }},
      {"--max-connections", "MAX_CONNECTIONS", "5",
       [](const RelayConfig& c) { return c.gateway.max_connections == 5; }},
      {"--max-connections-per-ip", "MAX_CONNECTIONS_PER_IP", "0",
       [](const RelayConfig& c) { return c.gateway.max_connections_per_ip == 0; }},
      {"--max-pending-handshakes", "MAX_PENDING_HANDSHAKES", "8",
       [](const RelayConfig& c) { return c.gateway.max_pending_handshakes == 8; }},
      {"--max-pending-handshakes-per-ip", "MAX_PENDING_HANDSHAKES_PER_IP", "0",
       [](const RelayConfig& c) { return c.gateway.max_pending_handshakes_per_ip == 0; }},
      {"--trusted-proxies", "TRUSTED_PROXIES", "10.0.0.0/8,::1",
       [](const RelayConfig& c) {
         return c.gateway.trusted_proxies.Contains(*gateway::net::IpAddress::Parse("10.1.2.3")) &&
                !c.gateway.trusted_proxies.Contains(*gateway::net::IpAddress::Parse("11.0.0.1"));
       }},
      {"--allowed-origins", "ALLOWED_ORIGINS",
       " https://app.example.com, HTTPS://Status.Example:443",
       [](const RelayConfig& c) {
         const gateway::net::OriginPolicy& o = c.gateway.allowed_origins;
         return o.ToString() == "https://app.example.com,https://status.example" &&
                o.AllowsUpgrade("https://status.example") &&
                !o.AllowsUpgrade("https://evil.test") && o.AllowsUpgrade("");
       }},
  };
}

TEST(RelayConfigTest, HardeningSettingsFromFlagsAndFromEnvironment) {
  for (const HardeningCase& c : HardeningCases()) {
    EXPECT_TRUE(c.applied(MustLoad({c.flag, c.value}))) << c.flag;
    EXPECT_TRUE(c.applied(MustLoad({}, Env({{c.variable, c.value}})))) << c.variable;
    EXPECT_FALSE(c.applied(MustLoad({}))) << c.flag << " default already has the test value";
  }
}

TEST(RelayConfigTest, BadHardeningValuesAreRefusedNamingTheSetting) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--rate-limit-per-second", "-1"}, "rate-limit-per-second"},
      {{"--rate-limit-per-second", "fast"}, "rate-limit-per-second"},
      {{"--rate-limit-burst", "0"}, "rate_limit_burst"},  // with the rate limit on
      {{"--max-peers-per-mesh", "0"}, "max_peers_per_mesh"},
      {{"--mesh-binding-grace-seconds", "-5"}, "mesh-binding-grace-seconds"},
      {{"--handshake-timeout-seconds", "0"}, "handshake-timeout-seconds"},
      {{"--max-connections", "0"}, "max-connections"},
      {{"--max-pending-handshakes", "-1"}, "max-pending-handshakes"},
      {{"--max-pending-handshakes-per-ip", "many"}, "max-pending-handshakes-per-ip"},
      {{"--max-queued-bytes-per-connection", "1000"}, "max-queued-bytes-per-connection"},
      {{"--trusted-proxies", "10.0.0.0/33"}, "trusted-proxies"},
      {{"--allowed-origins", "https://app.example.com/"}, "allowed-origins"},
      {{"--allowed-origins", "null"}, "allowed-origins"},
      {{"--allowed-origins", "*,https://app.example.com"}, "allowed-origins"},
      {{"--allowed-origins", "https://*.example.com"}, "allowed-origins"},
      {{"--allowed-origins", "app.example.com"}, "allowed-origins"},
      {{"--tls-cert-file", "cert.pem"}, "tls-key-file"},
  };
  for (const auto& [args, named] : bad) {
    const absl::Status status = LoadError(args);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << args[0];
    EXPECT_THAT(status.message(), HasSubstr(named)) << args[0];
  }
  // A burst of 0 is fine once the rate limit is off.
  EXPECT_EQ(
      MustLoad({"--rate-limit-per-second", "0", "--rate-limit-burst", "0"}).core.rate_limit_burst,
      0u);
}

// The bounds a stranger would otherwise push on (issue 10): defaults as
// documented, each from its flag and its variable, bad values named.
TEST(RelayConfigTest, PerClientBoundDefaultsMatchTheDocs) {
  const RelayConfig config = MustLoad({});
  EXPECT_EQ(config.core.rate_limit_bytes_per_second, 1 << 20);
  EXPECT_EQ(config.core.rate_limit_burst_bytes, std::size_t{16} << 20);
  EXPECT_EQ(config.core.takeover_probe_timeout, absl::Seconds(2));
  EXPECT_EQ(config.core.max_pending_llm_bytes_per_peer, std::size_t{128} << 10);
  EXPECT_EQ(config.core.max_nonce_bytes, 128u);
  EXPECT_EQ(config.core.max_join_token_lifetime, absl::Hours(24 * 30));
  EXPECT_EQ(config.core.max_nonces_per_mesh, 1000u);
  EXPECT_EQ(config.core.max_auth_records, 100000u);
  EXPECT_EQ(config.core.auth_records_per_ip_per_minute, 20u);
  EXPECT_EQ(config.core.signed_mesh_ttl, absl::Hours(24 * 90));
}

TEST(RelayConfigTest, PerClientBoundsFromFlagsAndFromEnvironment) {
  const std::vector<HardeningCase> cases = {
      {"--rate-limit-bytes-per-second", "RATE_LIMIT_BYTES_PER_SECOND", "0",
       [](const RelayConfig& c) { return c.core.rate_limit_bytes_per_second == 0; }},
      {"--rate-limit-burst-bytes", "RATE_LIMIT_BURST_BYTES", "33554432",
       [](const RelayConfig& c) { return c.core.rate_limit_burst_bytes == 33554432u; }},
      {"--takeover-probe-seconds", "TAKEOVER_PROBE_SECONDS", "5",
       [](const RelayConfig& c) { return c.core.takeover_probe_timeout == absl::Seconds(5); }},
      {"--max-pending-llm-bytes-per-peer", "MAX_PENDING_LLM_BYTES_PER_PEER", "4096",
       [](const RelayConfig& c) { return c.core.max_pending_llm_bytes_per_peer == 4096u; }},
      {"--max-nonce-bytes", "MAX_NONCE_BYTES", "64",
       [](const RelayConfig& c) { return c.core.max_nonce_bytes == 64u; }},
      {"--max-join-token-lifetime-seconds", "MAX_JOIN_TOKEN_LIFETIME_SECONDS", "3600",
       [](const RelayConfig& c) { return c.core.max_join_token_lifetime == absl::Hours(1); }},
      {"--max-nonces-per-mesh", "MAX_NONCES_PER_MESH", "10",
       [](const RelayConfig& c) { return c.core.max_nonces_per_mesh == 10u; }},
      {"--max-auth-records", "MAX_AUTH_RECORDS", "50",
       [](const RelayConfig& c) { return c.core.max_auth_records == 50u; }},
      {"--auth-records-per-ip-per-minute", "AUTH_RECORDS_PER_IP_PER_MINUTE", "3",
       [](const RelayConfig& c) { return c.core.auth_records_per_ip_per_minute == 3u; }},
      {"--signed-mesh-ttl-days", "SIGNED_MESH_TTL_DAYS", "7",
       [](const RelayConfig& c) { return c.core.signed_mesh_ttl == absl::Hours(24 * 7); }},
  };
  for (const HardeningCase& c : cases) {
    EXPECT_TRUE(c.applied(MustLoad({c.flag, c.value}))) << c.flag;
    EXPECT_TRUE(c.applied(MustLoad({}, Env({{c.variable, c.value}})))) << c.variable;
    EXPECT_FALSE(c.applied(MustLoad({}))) << c.flag << " default already has the test value";
    EXPECT_THAT(RelayUsage(), HasSubstr(c.variable));
  }
}

TEST(RelayConfigTest, LlmCapabilitiesDefaultToTheShippedClientsNamesAndAreRead) {
  EXPECT_THAT(MustLoad({}).core.llm_capabilities, ElementsAre("llm", "chat", "*llamafarm*"));
  EXPECT_THAT(MustLoad({"--llm-capabilities", "gpu-*, llm"}).core.llm_capabilities,
              ElementsAre("gpu-*", "llm"));
  EXPECT_THAT(MustLoad({}, Env({{"LLM_CAPABILITIES", "serve"}})).core.llm_capabilities,
              ElementsAre("serve"));
  for (const char* bad : {"", "llm,,chat"}) {
    const absl::Status status = LoadError({"--llm-capabilities", bad});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("--llm-capabilities")) << bad;
  }
  EXPECT_THAT(RelayUsage(), HasSubstr("LLM_CAPABILITIES"));
}

TEST(RelayConfigTest, BadPerClientBoundsAreRefusedNamingTheSetting) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--rate-limit-burst-bytes", "1000"}, "rate-limit-burst-bytes"},  // < max message
      {{"--takeover-probe-seconds", "0"}, "takeover_probe_timeout"},
      {{"--max-pending-llm-bytes-per-peer", "0"}, "max_pending_llm_bytes_per_peer"},
      {{"--max-nonce-bytes", "0"}, "max_nonce_bytes"},
      {{"--max-join-token-lifetime-seconds", "0"}, "max_join_token_lifetime"},
      {{"--max-nonces-per-mesh", "0"}, "max_nonces_per_mesh"},
      {{"--max-auth-records", "0"}, "max_auth_records"},
      {{"--auth-records-per-ip-per-minute", "0"}, "auth_records_per_ip_per_minute"},
      {{"--signed-mesh-ttl-days", "0"}, "signed_mesh_ttl"},
      {{"--signed-mesh-ttl-days", "forever"}, "signed-mesh-ttl-days"},
  };
  for (const auto& [args, named] : bad) {
    const absl::Status status = LoadError(args);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << args[0];
    EXPECT_THAT(status.message(), HasSubstr(named)) << args[0];
  }
  // Without a byte limit the burst does not matter.
  EXPECT_TRUE(
      LoadRelayConfig({"--rate-limit-bytes-per-second", "0", "--rate-limit-burst-bytes", "1000"},
                      kNoEnv)
          .ok());
}

TEST(RelayConfigTest, FlagsWinOverEnvironment) {
  const RelayConfig config =
      MustLoad({"--port", "7000", "--log-level", "warn"},
               Env({{"PORT", "9000"}, {"LOG_LEVEL", "trace"}, {"GRPC_PORT", "9001"}}));

  EXPECT_EQ(config.gateway.port, 7000);
  EXPECT_EQ(config.log_level, log::Level::kWarn);
  EXPECT_EQ(config.grpc_port, 9001);  // env still applies where no flag is given
}

TEST(RelayConfigTest, FlagEqualsValueForm) {
  const RelayConfig config =
      MustLoad({"--port=0", "--log-level=off", "--grpc-host=::", "--admin-token=t"});

  EXPECT_EQ(config.gateway.port, 0);
  EXPECT_EQ(config.log_level, log::Level::kOff);
  EXPECT_EQ(config.grpc_host, "::");
}

TEST(RelayConfigTest, LastFlagWins) {
  EXPECT_EQ(MustLoad({"--port", "1", "--port=2"}).gateway.port, 2);
}

TEST(RelayConfigTest, EveryLogLevelIsAccepted) {
  const std::vector<std::pair<std::string, log::Level>> levels = {
      {"trace", log::Level::kTrace}, {"debug", log::Level::kDebug}, {"info", log::Level::kInfo},
      {"warn", log::Level::kWarn},   {"error", log::Level::kError}, {"off", log::Level::kOff}};
  for (const auto& [name, level] : levels) {
    EXPECT_EQ(MustLoad({"--log-level", name}).log_level, level) << name;
  }
}

TEST(RelayConfigTest, UnknownFlagIsRefused) {
  const absl::Status status = LoadError({"--portt", "1"});

  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("portt"));
}

TEST(RelayConfigTest, PositionalArgumentIsRefused) {
  EXPECT_EQ(LoadError({"serve"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadError({"-port", "1"}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RelayConfigTest, FlagWithoutValueIsRefused) {
  const absl::Status status = LoadError({"--port"});

  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("port"));
}

TEST(RelayConfigTest, BadNumbersAreRefusedNamingTheFlag) {
  for (const char* bad : {"abc", "-1", "1.5", "", "12x", "0x10"}) {
    const absl::Status status = LoadError({"--grpc-port", bad});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("grpc-port")) << bad;
  }
  EXPECT_EQ(LoadError({"--registration-timeout-seconds", "soon"}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadError({"--max-message-bytes", "1MB"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadError({"--keepalive-seconds", "-5"}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RelayConfigTest, BadEnvironmentValueIsRefusedNamingTheVariable) {
  const absl::Status status = LoadError({}, Env({{"PORT", "http"}}));

  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("PORT"));
}

TEST(RelayConfigTest, PortOutOfRangeIsRefused) {
  EXPECT_EQ(MustLoad({"--port", "65535"}).gateway.port, 65535);
  EXPECT_EQ(LoadError({"--port", "65536"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadError({"--grpc-port", "70000"}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadError({}, Env({{"GRPC_PORT", "99999999999"}})).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RelayConfigTest, BadLogLevelIsRefused) {
  const absl::Status status = LoadError({"--log-level", "loud"});

  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("log-level"));
  EXPECT_EQ(LoadError({}, Env({{"LOG_LEVEL", "verbose"}})).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RelayConfigTest, ZeroRegistrationTimeoutIsRefused) {
  EXPECT_EQ(LoadError({"--registration-timeout-seconds", "0"}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RelayConfigTest, TinyMaxMessageBytesIsRefused) {
  EXPECT_EQ(LoadError({"--max-message-bytes", "10"}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RelayConfigTest, HelpIsReportedAndUsageListsEveryFlagWithItsVariable) {
  absl::StatusOr<LoadedConfig> loaded = LoadRelayConfig({"--port", "1", "--help"}, kNoEnv);

  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->help);
  const std::string usage = RelayUsage();
  for (const char* item :
       {"--port", "PORT", "--host", "HOST", "--grpc-port", "GRPC_PORT", "--grpc-host", "GRPC_HOST",
        "--log-level", "LOG_LEVEL", "--registration-timeout-seconds",
        "REGISTRATION_TIMEOUT_SECONDS", "--max-message-bytes", "MAX_MESSAGE_BYTES",
        "--keepalive-seconds", "KEEPALIVE_SECONDS", "--help"}) {
    EXPECT_THAT(usage, HasSubstr(item));
  }
}

TEST(RelayConfigTest, HelpWinsOverLaterBadFlags) {
  absl::StatusOr<LoadedConfig> loaded = LoadRelayConfig({"--help", "--bogus"}, kNoEnv);

  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->help);
}

TEST(RelayConfigTest, VersionIsReportedAndListedInUsage) {
  absl::StatusOr<LoadedConfig> loaded = LoadRelayConfig({"--port", "1", "--version"}, kNoEnv);

  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->version);
  EXPECT_FALSE(loaded->help);
  EXPECT_THAT(RelayUsage(), HasSubstr("--version"));
}

// An operator asks for --version or --help when something is wrong, often a
// setting in the environment: they answer whatever the rest says.
TEST(RelayConfigTest, VersionAndHelpAnswerDespiteBadEnvironmentAndFlags) {
  const EnvLookup bad_env = Env({{"PORT", "abc"}, {"LOG_LEVEL", "loud"}});
  absl::StatusOr<LoadedConfig> version =
      LoadRelayConfig({"--grpc-port", "x", "--version"}, bad_env);
  absl::StatusOr<LoadedConfig> help = LoadRelayConfig({"--bogus", "--help"}, bad_env);

  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_TRUE(version->version);
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_TRUE(help->help);
  EXPECT_FALSE(LoadRelayConfig({"--port", "1"}, bad_env).ok());
}

TEST(RelayConfigTest, DescribeNamesTheEffectiveSettings) {
  const std::string text = MustLoad({"--port", "1234", "--grpc-port", "4321"}).Describe();

  EXPECT_THAT(text, HasSubstr("port=1234"));
  EXPECT_THAT(text, HasSubstr("grpc_port=4321"));
}

// --- REUSE_PORT: several relays on one WebSocket port ---------------------

TEST(RelayConfigTest, ReusePortIsOffByDefault) {
  const RelayConfig config = MustLoad({});

  EXPECT_FALSE(config.gateway.reuse_port);
  EXPECT_THAT(config.Describe(), HasSubstr(" reuse_port=false "));
}

TEST(RelayConfigTest, ReusePortFromFlagOrEnvironmentAsOneOrTrueInAnyCase) {
  for (const std::string on : {"1", "true", "TRUE", "True"}) {
    EXPECT_TRUE(MustLoad({"--reuse-port", on}).gateway.reuse_port) << on;
    EXPECT_TRUE(MustLoad({"--reuse-port=" + on}).gateway.reuse_port) << on;
    EXPECT_TRUE(MustLoad({}, Env({{"REUSE_PORT", on}})).gateway.reuse_port) << on;
  }
  for (const std::string off : {"0", "false", "FALSE"}) {
    EXPECT_FALSE(MustLoad({"--reuse-port", off}).gateway.reuse_port) << off;
    EXPECT_FALSE(MustLoad({}, Env({{"REUSE_PORT", off}})).gateway.reuse_port) << off;
  }
  EXPECT_THAT(MustLoad({"--reuse-port", "1"}).Describe(), HasSubstr(" reuse_port=true "));
}

TEST(RelayConfigTest, ReusePortFlagWinsOverEnvironment) {
  EXPECT_FALSE(MustLoad({"--reuse-port", "0"}, Env({{"REUSE_PORT", "1"}})).gateway.reuse_port);
  EXPECT_TRUE(MustLoad({"--reuse-port", "1"}, Env({{"REUSE_PORT", "0"}})).gateway.reuse_port);
}

TEST(RelayConfigTest, ReusePortOtherThanABooleanIsRefusedNamingTheSetting) {
  // Not guessed: "yes", "on" or an empty value could be a typo for either.
  for (const std::string bad : {"", "yes", "on", "2", "-1", "1 ", "truee"}) {
    const absl::Status flag = LoadError({"--reuse-port", bad});
    EXPECT_EQ(flag.code(), absl::StatusCode::kInvalidArgument) << '"' << bad << '"';
    EXPECT_THAT(flag.message(), HasSubstr("--reuse-port")) << '"' << bad << '"';
    EXPECT_THAT(flag.message(), HasSubstr("not a boolean")) << '"' << bad << '"';
    const absl::Status env = LoadError({}, Env({{"REUSE_PORT", bad}}));
    EXPECT_THAT(env.message(), HasSubstr("REUSE_PORT")) << '"' << bad << '"';
  }
}

// --- operations plane: log format, drain grace, admin token ---------------

TEST(RelayConfigTest, OperationsDefaults) {
  const RelayConfig config = MustLoad({});

  EXPECT_EQ(config.log_format, log::Format::kText);
  EXPECT_EQ(config.drain_grace, absl::Seconds(20));
  EXPECT_EQ(config.admin_token, "");
}

TEST(RelayConfigTest, LogFormatFromFlagOrEnvironmentInAnyCase) {
  EXPECT_EQ(MustLoad({"--log-format", "json"}).log_format, log::Format::kJson);
  EXPECT_EQ(MustLoad({"--log-format=JSON"}).log_format, log::Format::kJson);
  EXPECT_EQ(MustLoad({}, Env({{"LOG_FORMAT", "json"}})).log_format, log::Format::kJson);
  EXPECT_EQ(MustLoad({"--log-format", "text"}, Env({{"LOG_FORMAT", "json"}})).log_format,
            log::Format::kText);
}

TEST(RelayConfigTest, BadLogFormatIsRefusedNamingTheSetting) {
  const absl::Status flag = LoadError({"--log-format", "xml"});
  const absl::Status env = LoadError({}, Env({{"LOG_FORMAT", "logfmt"}}));

  EXPECT_EQ(flag.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(flag.message(), HasSubstr("log-format"));
  EXPECT_THAT(flag.message(), HasSubstr("xml"));
  EXPECT_EQ(env.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(env.message(), HasSubstr("LOG_FORMAT"));
}

TEST(RelayConfigTest, DrainGraceFromFlagOrEnvironment) {
  EXPECT_EQ(MustLoad({"--drain-grace-seconds", "45"}).drain_grace, absl::Seconds(45));
  EXPECT_EQ(MustLoad({}, Env({{"DRAIN_GRACE_SECONDS", "3"}})).drain_grace, absl::Seconds(3));
  EXPECT_EQ(MustLoad({"--drain-grace-seconds=7"}, Env({{"DRAIN_GRACE_SECONDS", "3"}})).drain_grace,
            absl::Seconds(7));
}

TEST(RelayConfigTest, BadDrainGraceIsRefusedNamingTheSetting) {
  for (const char* bad : {"-1", "soon", "1.5", ""}) {
    const absl::Status status = LoadError({"--drain-grace-seconds", bad});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("drain-grace-seconds")) << bad;
  }
  EXPECT_THAT(LoadError({}, Env({{"DRAIN_GRACE_SECONDS", "x"}})).message(),
              HasSubstr("DRAIN_GRACE_SECONDS"));
}

TEST(RelayConfigTest, AdminTokenFromFlagOrEnvironment) {
  EXPECT_EQ(MustLoad({"--admin-token", "flag-token"}).admin_token, "flag-token");
  EXPECT_EQ(MustLoad({}, Env({{"ADMIN_TOKEN", "env-token"}})).admin_token, "env-token");
  EXPECT_EQ(MustLoad({"--admin-token=a=b"}, Env({{"ADMIN_TOKEN", "env-token"}})).admin_token,
            "a=b");
}

TEST(RelayConfigTest, GrpcHostOnLoopbackNeedsNoTokenNorTls) {
  for (const char* host :
       {"127.0.0.1", "127.0.0.53", "127.255.255.254", "localhost", "::1", "[::1]"}) {
    EXPECT_EQ(MustLoad({"--grpc-host", host}).grpc_host, host);
  }
}

TEST(RelayConfigTest, GrpcHostOffLoopbackWithoutTokenOrTlsIsRefused) {
  for (const char* host :
       {"0.0.0.0", "::", "10.0.0.1", "192.168.1.20", "relay.example.com", "128.0.0.1", "::2"}) {
    const absl::Status status = LoadError({"--grpc-host", host});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << host;
    EXPECT_THAT(status.message(), HasSubstr("grpc-host")) << host;
    EXPECT_THAT(status.message(), HasSubstr(host)) << host;
    EXPECT_THAT(status.message(), HasSubstr("admin-token")) << host;
  }
  // From the environment too.
  EXPECT_EQ(LoadError({}, Env({{"GRPC_HOST", "0.0.0.0"}})).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RelayConfigTest, GrpcHostOffLoopbackIsAcceptedWithATokenOrWithTls) {
  EXPECT_EQ(MustLoad({"--grpc-host", "0.0.0.0", "--admin-token", "t"}).grpc_host, "0.0.0.0");
  EXPECT_EQ(MustLoad({"--grpc-host", "0.0.0.0"}, Env({{"ADMIN_TOKEN", "t"}})).grpc_host, "0.0.0.0");
  EXPECT_EQ(MustLoad({"--grpc-host", "10.0.0.1", "--tls-cert-file", "cert.pem", "--tls-key-file",
                      "key.pem"})
                .grpc_host,
            "10.0.0.1");
}

TEST(RelayConfigTest, GrpcHostOffLoopbackWithAnEmptyTokenIsRefused) {
  const absl::Status status = LoadError({"--grpc-host", "0.0.0.0", "--admin-token", ""});

  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("admin-token"));
}

TEST(RelayConfigTest, DescribeSaysWhetherAnAdminTokenIsSetButNeverShowsIt) {
  const std::string with_token =
      MustLoad({"--admin-token", "hunter2-very-secret", "--grpc-host", "0.0.0.0"}).Describe();
  const std::string without = MustLoad({}).Describe();

  EXPECT_THAT(with_token, HasSubstr("admin_token=set"));
  EXPECT_THAT(with_token, ::testing::Not(HasSubstr("hunter2")));
  EXPECT_THAT(without, HasSubstr("admin_token=none"));
}

TEST(RelayConfigTest, DescribeNamesLogFormatAndDrainGrace) {
  const std::string text =
      MustLoad({"--log-format", "json", "--drain-grace-seconds", "45"}).Describe();

  EXPECT_THAT(text, HasSubstr("log_format=json"));
  EXPECT_THAT(text, HasSubstr("drain_grace=45s"));
  EXPECT_THAT(MustLoad({}).Describe(), HasSubstr("log_format=text"));
}

TEST(RelayConfigTest, UsageListsTheOperationsSettings) {
  const std::string usage = RelayUsage();

  for (const char* item : {"--log-format", "LOG_FORMAT", "--drain-grace-seconds",
                           "DRAIN_GRACE_SECONDS", "--admin-token", "ADMIN_TOKEN"}) {
    EXPECT_THAT(usage, HasSubstr(item));
  }
}

// --- the settings table: help, Describe and README come from it -----------

TEST(RelayConfigTest, SettingsTableNamesEachSettingOnceInEachSpelling) {
  std::set<std::string> names, flags, envs;
  for (const SettingInfo& s : RelaySettings()) {
    const std::string name(s.name);
    EXPECT_TRUE(names.insert(name).second) << name;
    EXPECT_TRUE(flags.insert(std::string(s.flag)).second) << s.flag;
    EXPECT_TRUE(envs.insert(std::string(s.env)).second) << s.env;
    for (char c : s.name) EXPECT_TRUE(std::islower(c) || c == '_') << s.name;
    for (char c : s.flag) EXPECT_TRUE(std::islower(c) || c == '-') << s.flag;
    for (char c : s.env) EXPECT_TRUE(std::isupper(c) || c == '_') << s.env;
    EXPECT_FALSE(s.unit.empty()) << s.flag;
    EXPECT_FALSE(s.doc.empty()) << s.flag;
    EXPECT_EQ(s.doc.find('\n'), absl::string_view::npos) << s.flag << ": one line";
  }
}

TEST(RelayConfigTest, EverySettingAppearsInHelpWithItsVariableUnitDefaultAndDoc) {
  const std::string usage = RelayUsage();
  for (const SettingInfo& s : RelaySettings()) {
    const std::string line =
        absl::StrCat("  --", s.flag, " (", s.env, "): ", s.unit, ", default ",
                     s.default_value.empty() ? "none" : s.default_value, "\n      ", s.doc, "\n");
    EXPECT_THAT(usage, HasSubstr(line)) << s.flag;
  }
}

// The keys of Describe()'s `key=value` pairs, in order (no value has " k=").
std::vector<std::string> DescribedKeys(const std::string& text) {
  std::vector<std::string> keys;
  for (absl::string_view word : absl::StrSplit(text, ' ')) {
    const std::size_t eq = word.find('=');
    if (eq == absl::string_view::npos || eq == 0) continue;
    const absl::string_view key = word.substr(0, eq);
    bool identifier = true;
    for (char c : key) identifier = identifier && (std::islower(c) || c == '_');
    if (identifier) keys.emplace_back(key);
  }
  return keys;
}

TEST(RelayConfigTest, DescribeShowsEverySettingOnceInTableOrder) {
  std::vector<std::string> want;
  for (const SettingInfo& s : RelaySettings()) want.emplace_back(s.name);

  EXPECT_EQ(DescribedKeys(MustLoad({}).Describe()), want);
  // Also with every value set to something else than its default.
  EXPECT_EQ(DescribedKeys(MustLoad({"--data-dir", "/var/lib/relay", "--tls-cert-file", "c.pem",
                                    "--tls-key-file", "k.pem", "--trusted-proxies", "10.0.0.0/8"})
                              .Describe()),
            want);
}

TEST(RelayConfigTest, DescribeShowsTheValueInEffect) {
  const std::string text = MustLoad({"--data-dir", "/var/lib/relay", "--max-connections", "77",
                                     "--keepalive-seconds", "0", "--signed-mesh-ttl-days", "2"})
                               .Describe();

  EXPECT_THAT(text, HasSubstr("data_dir=/var/lib/relay"));
  EXPECT_THAT(text, HasSubstr("max_connections=77"));
  EXPECT_THAT(text, HasSubstr("keepalive=0"));
  EXPECT_THAT(text, HasSubstr("signed_mesh_ttl=48h"));
  EXPECT_THAT(MustLoad({}).Describe(), HasSubstr("data_dir=none (auth state in memory)"));
}

TEST(RelayConfigTest, EveryDocumentedDefaultIsTheRealDefault) {
  const std::string defaults = MustLoad({}).Describe();
  for (const SettingInfo& s : RelaySettings()) {
    // Giving a setting its documented default must change nothing.
    EXPECT_EQ(MustLoad({absl::StrCat("--", s.flag), std::string(s.default_value)}).Describe(),
              defaults)
        << "--" << s.flag << " documents default \"" << s.default_value << "\"";
  }
}

// README "Configuration": | `--flag` | `ENV` | `default` (or empty) | Meaning |
struct ReadmeRow {
  std::string flag, env, default_value;
};

std::vector<ReadmeRow> ReadmeConfigurationRows() {
  std::ifstream in(RELAY_SOURCE_DIR "/README.md");
  EXPECT_TRUE(in.good()) << "cannot read " << RELAY_SOURCE_DIR "/README.md";
  std::vector<ReadmeRow> rows;
  bool in_section = false;
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "## ")) in_section = line == "## Configuration";
    if (!in_section || !absl::StartsWith(line, "| `--")) continue;
    std::vector<std::string> cells = absl::StrSplit(line, '|');
    // "", flag, env, default, meaning..., ""
    if (cells.size() < 5) {
      ADD_FAILURE() << "short row: " << line;
      continue;
    }
    auto code = [](absl::string_view cell) {
      cell = absl::StripAsciiWhitespace(cell);
      if (cell == "empty") return std::string();
      absl::ConsumePrefix(&cell, "`");
      absl::ConsumeSuffix(&cell, "`");
      return std::string(cell);
    };
    const std::string flag = code(cells[1]);
    rows.push_back({std::string(absl::StripPrefix(flag, "--")), code(cells[2]), code(cells[3])});
  }
  return rows;
}

TEST(RelayConfigTest, ReadmeConfigurationTableIsTheSettingsTable) {
  const std::vector<ReadmeRow> readme = ReadmeConfigurationRows();
  const std::vector<SettingInfo> table = RelaySettings();

  ASSERT_EQ(readme.size(), table.size()) << "README \"Configuration\" rows vs the settings table";
  for (std::size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(readme[i].flag, table[i].flag) << "row " << i;
    EXPECT_EQ(readme[i].env, table[i].env) << "--" << table[i].flag;
    EXPECT_EQ(readme[i].default_value, table[i].default_value) << "--" << table[i].flag;
  }
}

}  // namespace
}  // namespace relay
