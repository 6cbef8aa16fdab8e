#include "cmd/relay/relay_config.h"

#include <cstdlib>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/limits.h"

namespace relay {
namespace {

// One setting: its flag, its env var, its help, and how to apply a value.
struct Setting {
  const char* flag;  // without the leading "--"
  const char* env;
  const char* help;
  std::function<absl::Status(const std::string& value, RelayConfig* config)> apply;
};

absl::StatusOr<std::uint64_t> ParseUnsigned(const std::string& value, std::uint64_t max) {
  std::uint64_t n;
  if (!absl::SimpleAtoi(value, &n) || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", value, "\" is not a whole number from 0 to ", max));
  }
  return n;
}

absl::Status SetPort(const std::string& value, std::uint16_t* port) {
  absl::StatusOr<std::uint64_t> n = ParseUnsigned(value, 65535);
  if (!n.ok()) return n.status();
  *port = static_cast<std::uint16_t>(*n);
  return absl::OkStatus();
}

absl::Status SetSeconds(const std::string& value, absl::Duration* out) {
  absl::StatusOr<std::uint64_t> n = ParseUnsigned(value, 24 * 3600 * 365);
  if (!n.ok()) return n.status();
  *out = absl::Seconds(static_cast<std::int64_t>(*n));
  return absl::OkStatus();
}

absl::Status SetCount(const std::string& value, std::uint64_t max, std::size_t* out) {
  absl::StatusOr<std::uint64_t> n = ParseUnsigned(value, max);
  if (!n.ok()) return n.status();
  *out = static_cast<std::size_t>(*n);
  return absl::OkStatus();
}

const std::vector<Setting>& Settings() {
  static const auto* settings = new std::vector<Setting>{
      {"port", "PORT", "WebSocket + HTTP port (0 picks a free one) [8765]",
       [](const std::string& v, RelayConfig* c) { return SetPort(v, &c->gateway.port); }},
      {"host", "HOST", "WebSocket + HTTP bind address, an IP address [0.0.0.0]",
       [](const std::string& v, RelayConfig* c) {
         c->gateway.host = v;
         return absl::OkStatus();
       }},
      {"grpc-port", "GRPC_PORT", "gRPC admin + health port (0 picks a free one) [50051]",
       [](const std::string& v, RelayConfig* c) { return SetPort(v, &c->grpc_port); }},
      {"grpc-host", "GRPC_HOST", "gRPC admin bind address [127.0.0.1]",
       [](const std::string& v, RelayConfig* c) {
         c->grpc_host = v;
         return absl::OkStatus();
       }},
      {"log-level", "LOG_LEVEL", "trace, debug, info, warn, error or off [info]",
       [](const std::string& v, RelayConfig* c) {
         absl::StatusOr<log::Level> level = log::ParseLevel(v);
         if (!level.ok()) return level.status();
         c->log_level = *level;
         return absl::OkStatus();
       }},
      {"log-format", "LOG_FORMAT", "text, or json for one JSON object per line [text]",
       [](const std::string& v, RelayConfig* c) {
         absl::StatusOr<log::Format> format = log::ParseFormat(v);
         if (!format.ok()) return format.status();
         c->log_format = *format;
         return absl::OkStatus();
       }},
      {"drain-grace-seconds", "DRAIN_GRACE_SECONDS",
       "on SIGTERM or relayctl drain: seconds peers get (after server_draining) before the "
       "1001 close [20]",
       [](const std::string& v, RelayConfig* c) { return SetSeconds(v, &c->drain_grace); }},
      {"admin-token", "ADMIN_TOKEN",
       "bearer token the gRPC Admin API requires; needed to bind --grpc-host off loopback "
       "without TLS [none]",
       [](const std::string& v, RelayConfig* c) {
         c->admin_token = v;
         return absl::OkStatus();
       }},
      {"registration-timeout-seconds", "REGISTRATION_TIMEOUT_SECONDS",
       "close sockets that have not registered by then [30]",
       [](const std::string& v, RelayConfig* c) {
         return SetSeconds(v, &c->core.registration_timeout);
       }},
      {"max-message-bytes", "MAX_MESSAGE_BYTES",
       "largest message a client may send; bigger closes with 1009 [1048576]",
       [](const std::string& v, RelayConfig* c) {
         absl::StatusOr<std::uint64_t> n = ParseUnsigned(v, std::uint64_t{1} << 30);
         if (!n.ok()) return n.status();
         c->gateway.max_message_bytes = static_cast<std::size_t>(*n);
         return absl::OkStatus();
       }},
      {"keepalive-seconds", "KEEPALIVE_SECONDS",
       "server ping interval; a peer missing 2 in a row is dropped; 0 disables [30]",
       [](const std::string& v, RelayConfig* c) {
         return SetSeconds(v, &c->gateway.keepalive_interval);
       }},
      {"handshake-timeout-seconds", "HANDSHAKE_TIMEOUT_SECONDS",
       "a client must send its HTTP request within this (slowloris) [10]",
       [](const std::string& v, RelayConfig* c) {
         return SetSeconds(v, &c->gateway.handshake_timeout);
       }},
      {"max-queued-bytes-per-connection", "MAX_QUEUED_BYTES_PER_CONNECTION",
       "bytes queued for one client it has not read yet; more closes it with 1013 [8388608]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, std::uint64_t{1} << 36, &c->gateway.max_queued_bytes_per_connection);
       }},
      {"max-connections", "MAX_CONNECTIONS",
       "WebSocket connections at once; more are refused with HTTP 503 [10000]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, 100000000, &c->gateway.max_connections);
       }},
      {"max-connections-per-ip", "MAX_CONNECTIONS_PER_IP",
       "WebSocket connections at once from one client IP; more get HTTP 503; 0: no limit [100]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, 100000000, &c->gateway.max_connections_per_ip);
       }},
      {"max-pending-handshakes", "MAX_PENDING_HANDSHAKES",
       "TCP connections still in their handshake (no HTTP request answered yet); more are "
       "closed at once; 0: no limit [4096]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, 100000000, &c->gateway.max_pending_handshakes);
       }},
      {"max-pending-handshakes-per-ip", "MAX_PENDING_HANDSHAKES_PER_IP",
       "the same per TCP peer address (TRUSTED_PROXIES exempt); 0: no limit [256]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, 100000000, &c->gateway.max_pending_handshakes_per_ip);
       }},
      {"trusted-proxies", "TRUSTED_PROXIES",
       "comma-separated IPs/CIDRs of proxies whose X-Forwarded-For names the client [none]",
       [](const std::string& v, RelayConfig* c) {
         absl::StatusOr<gateway::net::TrustedProxies> trusted =
             gateway::net::TrustedProxies::Parse(v);
         if (!trusted.ok()) return trusted.status();
         c->gateway.trusted_proxies = *std::move(trusted);
         return absl::OkStatus();
       }},
      {"tls-cert-file", "TLS_CERT_FILE",
       "PEM certificate chain; with --tls-key-file serves wss://, https:// and gRPC over TLS "
       "[none]",
       [](const std::string& v, RelayConfig* c) {
         c->gateway.tls_cert_file = v;
         return absl::OkStatus();
       }},
      {"tls-key-file", "TLS_KEY_FILE", "PEM private key (unencrypted) of --tls-cert-file [none]",
       [](const std::string& v, RelayConfig* c) {
         c->gateway.tls_key_file = v;
         return absl::OkStatus();
       }},
      {"data-dir", "RELAY_DATA_DIR",
       "directory for relay.db (SQLite): signed meshes, token bindings and used nonces survive "
       "restarts; unset keeps them in memory only [none]",
       [](const std::string& v, RelayConfig* c) {
         c->data_dir = v;
         return absl::OkStatus();
       }},
      {"mesh-binding-grace-seconds", "MESH_BINDING_GRACE_SECONDS",
       "how long a token-bound mesh stays bound after its last peer left [86400]",
       [](const std::string& v, RelayConfig* c) {
         return SetSeconds(v, &c->core.mesh_binding_grace);
       }},
      {"rate-limit-per-second", "RATE_LIMIT_PER_SECOND",
       "messages per second one connection may send, sustained; 0 disables [1000]",
       [](const std::string& v, RelayConfig* c) {
         std::uint64_t n = 0;
         if (absl::Status st = SetCount(v, 100000000, &n); !st.ok()) return st;
         c->core.rate_limit_per_second = static_cast<double>(n);
         return absl::OkStatus();
       }},
      {"rate-limit-burst", "RATE_LIMIT_BURST",
       "messages one connection may send at once above the sustained rate [20000]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, 100000000, &c->core.rate_limit_burst);
       }},
      {"max-peers-per-mesh", "MAX_PEERS_PER_MESH",
       "registered peers in one mesh; more are refused with mesh_full [1000]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, 100000000, &c->core.max_peers_per_mesh);
       }},
      {"rate-limit-bytes-per-second", "RATE_LIMIT_BYTES_PER_SECOND",
       "bytes per second one connection may send, sustained (wire bytes of its messages); 0 "
       "disables [1048576]",
       [](const std::string& v, RelayConfig* c) {
         std::uint64_t n = 0;
         if (absl::Status st = SetCount(v, std::uint64_t{1} << 40, &n); !st.ok()) return st;
         c->core.rate_limit_bytes_per_second = static_cast<double>(n);
         return absl::OkStatus();
       }},
      {"rate-limit-burst-bytes", "RATE_LIMIT_BURST_BYTES",
       "bytes one connection may send at once above the sustained rate; at least "
       "max-message-bytes [16777216]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, std::uint64_t{1} << 40, &c->core.rate_limit_burst_bytes);
       }},
      {"takeover-probe-seconds", "TAKEOVER_PROBE_SECONDS",
       "open mesh: how long the live holder of a node_id has to answer a ping before another "
       "connection may take the id over [2]",
       [](const std::string& v, RelayConfig* c) {
         return SetSeconds(v, &c->core.takeover_probe_timeout);
       }},
      {"max-pending-llm-bytes-per-peer", "MAX_PENDING_LLM_BYTES_PER_PEER",
       "bytes of request_id (plus 64 each) of the llm requests one peer may have waiting; more "
       "get too_many_requests [131072]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, std::uint64_t{1} << 36, &c->core.max_pending_llm_bytes_per_peer);
       }},
      {"max-nonce-bytes", "MAX_NONCE_BYTES",
       "longest join-token nonce; longer is refused with auth_failed [128]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, 65536, &c->core.max_nonce_bytes);
       }},
      {"max-join-token-lifetime-seconds", "MAX_JOIN_TOKEN_LIFETIME_SECONDS",
       "longest a join token may be valid (expires_at - issued_at, and from now); longer is "
       "refused with auth_failed [2592000]",
       [](const std::string& v, RelayConfig* c) {
         return SetSeconds(v, &c->core.max_join_token_lifetime);
       }},
      {"max-nonces-per-mesh", "MAX_NONCES_PER_MESH",
       "used join-token nonces kept per signed mesh; a join with a new one past it is refused "
       "with auth_failed [1000]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, 100000000, &c->core.max_nonces_per_mesh);
       }},
      {"max-auth-records", "MAX_AUTH_RECORDS",
       "token bindings, signed meshes and used nonces kept in total; past it new ones get "
       "auth_unavailable [100000]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, 100000000, &c->core.max_auth_records);
       }},
      {"auth-records-per-ip-per-minute", "AUTH_RECORDS_PER_IP_PER_MINUTE",
       "token bindings, signed meshes and nonce uses one client IP may create per minute; more "
       "get rate_limited [20]",
       [](const std::string& v, RelayConfig* c) {
         return SetCount(v, 100000000, &c->core.auth_records_per_ip_per_minute);
       }},
      {"signed-mesh-ttl-days", "SIGNED_MESH_TTL_DAYS",
       "a signed mesh nobody joined or re-proved for this many days is forgotten [90]",
       [](const std::string& v, RelayConfig* c) {
         absl::StatusOr<std::uint64_t> n = ParseUnsigned(v, 36500);
         if (!n.ok()) return n.status();
         c->core.signed_mesh_ttl = absl::Hours(24 * static_cast<std::int64_t>(*n));
         return absl::OkStatus();
       }},
  };
  return *settings;
}

bool IsLoopbackHost(absl::string_view host) {
  return host == "localhost" || absl::StartsWith(host, "127.") || host == "::1" ||
         host == "[::1]";
}

absl::Status Validate(const RelayConfig& config) {
  if (absl::Status s = config.core.Validate(); !s.ok()) return s;
  if (config.gateway.max_message_bytes < limits::kMinMaxMessageBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("max-message-bytes must be at least ", limits::kMinMaxMessageBytes));
  }
  if (config.grpc_host.empty()) return absl::InvalidArgumentError("grpc-host must not be empty");
  const gateway::GatewayConfig& gw = config.gateway;
  if (gw.handshake_timeout < absl::Seconds(1)) {
    return absl::InvalidArgumentError("handshake-timeout-seconds must be at least 1");
  }
  // Smaller would close every peer that is sent two big messages in a row.
  if (gw.max_queued_bytes_per_connection < gw.max_message_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("max-queued-bytes-per-connection (", gw.max_queued_bytes_per_connection,
                     ") must be at least max-message-bytes (", gw.max_message_bytes, ")"));
  }
  // A message that never fits the byte bucket could only ever pass on a full
  // one; the burst must hold the largest message.
  if (config.core.rate_limit_bytes_per_second > 0 &&
      config.core.rate_limit_burst_bytes < gw.max_message_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("rate-limit-burst-bytes (", config.core.rate_limit_burst_bytes,
                     ") must be at least max-message-bytes (", gw.max_message_bytes, ")"));
  }
  if (gw.max_connections < 1) {
    return absl::InvalidArgumentError("max-connections must be at least 1");
  }
  if (gw.tls_cert_file.empty() != gw.tls_key_file.empty()) {
    return absl::InvalidArgumentError("tls-cert-file and tls-key-file must be set together");
  }
  // The Admin API can kick peers and stop the relay: off loopback it needs
  // a token or TLS.
  if (!IsLoopbackHost(config.grpc_host) && config.admin_token.empty() && !gw.tls_enabled()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "grpc-host ", config.grpc_host,
        " is not loopback: set admin-token (ADMIN_TOKEN) or TLS so that not anyone who can "
        "reach it may drive the Admin API"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string RelayConfig::Describe() const {
  return absl::StrCat(
      "host=", gateway.host, " port=", gateway.port, " grpc_host=", grpc_host,
      " grpc_port=", grpc_port, " log_level=", log::LevelName(log_level),
      " log_format=", log::FormatName(log_format),
      " drain_grace=", absl::FormatDuration(drain_grace),
      " admin_token=", admin_token.empty() ? "none" : "set",
      " registration_timeout=", absl::FormatDuration(core.registration_timeout),
      " max_message_bytes=", gateway.max_message_bytes,
      " keepalive=", absl::FormatDuration(gateway.keepalive_interval),
      " handshake_timeout=", absl::FormatDuration(gateway.handshake_timeout),
      " max_queued_bytes_per_connection=", gateway.max_queued_bytes_per_connection,
      " max_connections=", gateway.max_connections,
      " max_connections_per_ip=", gateway.max_connections_per_ip,
      " max_pending_handshakes=", gateway.max_pending_handshakes,
      " max_pending_handshakes_per_ip=", gateway.max_pending_handshakes_per_ip, " trusted_proxies=",
      gateway.trusted_proxies.empty() ? "none" : gateway.trusted_proxies.ToString(),
      " tls=", gateway.tls_enabled() ? gateway.tls_cert_file : "off",
      " data_dir=", data_dir.empty() ? "none (auth state in memory)" : data_dir,
      " mesh_binding_grace=", absl::FormatDuration(core.mesh_binding_grace),
      " rate_limit_per_second=", core.rate_limit_per_second,
      " rate_limit_burst=", core.rate_limit_burst, " max_peers_per_mesh=", core.max_peers_per_mesh,
      " rate_limit_bytes_per_second=", core.rate_limit_bytes_per_second,
      " rate_limit_burst_bytes=", core.rate_limit_burst_bytes,
      " takeover_probe=", absl::FormatDuration(core.takeover_probe_timeout),
      " max_pending_llm_bytes_per_peer=", core.max_pending_llm_bytes_per_peer,
      " max_nonce_bytes=", core.max_nonce_bytes,
      " max_join_token_lifetime=", absl::FormatDuration(core.max_join_token_lifetime),
      " max_nonces_per_mesh=", core.max_nonces_per_mesh,
      " max_auth_records=", core.max_auth_records,
      " auth_records_per_ip_per_minute=", core.auth_records_per_ip_per_minute,
      " signed_mesh_ttl=", absl::FormatDuration(core.signed_mesh_ttl));
}

std::string RelayUsage() {
  std::string out =
      "usage: relay [--flag value | --flag=value]...\n"
      "Atmosphere relay: WebSocket mesh relay with a gRPC admin plane.\n"
      "Each flag can also be set by the environment variable shown; flags win.\n\n";
  for (const Setting& s : Settings()) {
    absl::StrAppend(&out, "  --", s.flag, " (", s.env, ")\n      ", s.help, "\n");
  }
  absl::StrAppend(&out, "  --help\n      print this and exit\n");
  return out;
}

absl::StatusOr<LoadedConfig> LoadRelayConfig(const std::vector<std::string>& args,
                                             const EnvLookup& env) {
  LoadedConfig loaded;
  RelayConfig& config = loaded.config;
  for (const Setting& s : Settings()) {
    if (std::optional<std::string> value = env(s.env); value.has_value()) {
      if (absl::Status st = s.apply(*value, &config); !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(s.env, ": ", st.message()));
      }
    }
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      loaded.help = true;
      return loaded;
    }
    if (!absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (const std::size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const Setting* setting = nullptr;
    for (const Setting& s : Settings()) {
      if (name == s.flag) setting = &s;
    }
    if (setting == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    if (absl::Status st = setting->apply(value, &config); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", st.message()));
    }
  }
  if (absl::Status st = Validate(config); !st.ok()) return st;
  return loaded;
}

}  // namespace relay
