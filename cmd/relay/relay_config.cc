#include "cmd/relay/relay_config.h"

#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backplane/nats/nats_connection.h"
#include "backplane/nats/nats_names.h"
#include "server/core/llm_capabilities.h"
#include "server/limits.h"

namespace relay {
namespace {

// Sanity bounds of what a setting may be given: far past any sensible value,
// low enough that the arithmetic on it cannot overflow.
constexpr std::uint64_t kMaxSettingSeconds = 24 * 3600 * 365;  // a year
constexpr std::uint64_t kMaxSettingCount = 100000000;          // connections, peers, records
constexpr std::uint64_t kMaxSettingMessageBytes = std::uint64_t{1} << 30;
constexpr std::uint64_t kMaxSettingBufferBytes = std::uint64_t{1} << 36;
constexpr std::uint64_t kMaxSettingRateBytes = std::uint64_t{1} << 40;
constexpr std::uint64_t kMaxSettingNonceBytes = 65536;
constexpr std::uint64_t kMaxSettingDays = 36500;

// One setting: its row of the table, how a value is applied to a config,
// and how a config's value is shown (Describe).
struct Setting {
  SettingInfo info;
  absl::Status (*apply)(const std::string& value, RelayConfig* config);
  std::string (*show)(const RelayConfig& config);
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
  absl::StatusOr<std::uint64_t> n = ParseUnsigned(value, kMaxSettingSeconds);
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

absl::Status SetRate(const std::string& value, std::uint64_t max, double* out) {
  absl::StatusOr<std::uint64_t> n = ParseUnsigned(value, max);
  if (!n.ok()) return n.status();
  *out = static_cast<double>(*n);
  return absl::OkStatus();
}

// The booleans: 1 or true, 0 or false (any case), as REUSE_PORT=1 reads in
// a unit file or a shell.
absl::Status SetBool(const std::string& value, bool* out) {
  if (value == "1" || absl::EqualsIgnoreCase(value, "true")) {
    *out = true;
  } else if (value == "0" || absl::EqualsIgnoreCase(value, "false")) {
    *out = false;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", value, "\" is not a boolean: 1, true, 0 or false"));
  }
  return absl::OkStatus();
}

std::string OrNone(const std::string& value) { return value.empty() ? "none" : value; }

// The table. README "Configuration" lists the same rows in the same order
// (tests/cmd/relay_config_test.cc compares them).
const Setting kSettings[] = {
    {{"host", "host", "HOST", "address", "0.0.0.0",
      "address of the WebSocket + HTTP listener, an IP address"},
     [](const std::string& v, RelayConfig* c) {
       c->gateway.host = v;
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return c.gateway.host; }},
    {{"port", "port", "PORT", "port", "8765",
      "port of the WebSocket + HTTP listener; 0 picks a free one"},
     [](const std::string& v, RelayConfig* c) { return SetPort(v, &c->gateway.port); },
     [](const RelayConfig& c) { return absl::StrCat(c.gateway.port); }},
    {{"reuse_port", "reuse-port", "REUSE_PORT", "boolean", "0",
      "1: SO_REUSEPORT on the WebSocket + HTTP listener, so several relays on one host share "
      "--port (each with its own --grpc-port); for cluster mode only, alone they split meshes"},
     [](const std::string& v, RelayConfig* c) { return SetBool(v, &c->gateway.reuse_port); },
     [](const RelayConfig& c) { return std::string(c.gateway.reuse_port ? "true" : "false"); }},
    {{"grpc_host", "grpc-host", "GRPC_HOST", "address", "127.0.0.1",
      "address of the gRPC listener (Admin, gRPC peers, health); off loopback it needs "
      "--admin-token or TLS"},
     [](const std::string& v, RelayConfig* c) {
       c->grpc_host = v;
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return c.grpc_host; }},
    {{"grpc_port", "grpc-port", "GRPC_PORT", "port", "50051",
      "port of the gRPC listener; 0 picks a free one"},
     [](const std::string& v, RelayConfig* c) { return SetPort(v, &c->grpc_port); },
     [](const RelayConfig& c) { return absl::StrCat(c.grpc_port); }},
    {{"log_level", "log-level", "LOG_LEVEL", "level", "info",
      "trace, debug, info, warn, error or off"},
     [](const std::string& v, RelayConfig* c) {
       absl::StatusOr<log::Level> level = log::ParseLevel(v);
       if (!level.ok()) return level.status();
       c->log_level = *level;
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return std::string(log::LevelName(c.log_level)); }},
    {{"log_format", "log-format", "LOG_FORMAT", "format", "text",
      "text, or json for one JSON object per line"},
     [](const std::string& v, RelayConfig* c) {
       absl::StatusOr<log::Format> format = log::ParseFormat(v);
       if (!format.ok()) return format.status();
       c->log_format = *format;
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return std::string(log::FormatName(c.log_format)); }},
    {{"admin_token", "admin-token", "ADMIN_TOKEN", "token", "",
      "bearer token the gRPC Admin API requires; needed to bind --grpc-host off loopback "
      "without TLS"},
     [](const std::string& v, RelayConfig* c) {
       c->admin_token = v;
       return absl::OkStatus();
     },
     // Never the token itself.
     [](const RelayConfig& c) { return std::string(c.admin_token.empty() ? "none" : "set"); }},
    {{"drain_grace", "drain-grace-seconds", "DRAIN_GRACE_SECONDS", "seconds", "20",
      "on SIGTERM or relayctl drain: how long peers keep working after server_draining before "
      "the 1001 close"},
     [](const std::string& v, RelayConfig* c) { return SetSeconds(v, &c->drain_grace); },
     [](const RelayConfig& c) { return absl::FormatDuration(c.drain_grace); }},
    {{"registration_timeout", "registration-timeout-seconds", "REGISTRATION_TIMEOUT_SECONDS",
      "seconds", "30", "a socket that has not registered by then is closed with 1008"},
     [](const std::string& v, RelayConfig* c) {
       return SetSeconds(v, &c->core.registration_timeout);
     },
     [](const RelayConfig& c) { return absl::FormatDuration(c.core.registration_timeout); }},
    {{"max_message_bytes", "max-message-bytes", "MAX_MESSAGE_BYTES", "bytes", "1048576",
      "largest message a client may send; bigger closes with 1009"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingMessageBytes, &c->gateway.max_message_bytes);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.gateway.max_message_bytes); }},
    {{"keepalive", "keepalive-seconds", "KEEPALIVE_SECONDS", "seconds", "30",
      "a WebSocket ping every interval; a peer that misses 2 in a row is dropped; 0 disables"},
     [](const std::string& v, RelayConfig* c) {
       return SetSeconds(v, &c->gateway.keepalive_interval);
     },
     [](const RelayConfig& c) { return absl::FormatDuration(c.gateway.keepalive_interval); }},
    {{"handshake_timeout", "handshake-timeout-seconds", "HANDSHAKE_TIMEOUT_SECONDS", "seconds",
      "10",
      "a client must send its whole HTTP upgrade request within this (slowloris); at least 1"},
     [](const std::string& v, RelayConfig* c) {
       return SetSeconds(v, &c->gateway.handshake_timeout);
     },
     [](const RelayConfig& c) { return absl::FormatDuration(c.gateway.handshake_timeout); }},
    {{"max_queued_bytes_per_connection", "max-queued-bytes-per-connection",
      "MAX_QUEUED_BYTES_PER_CONNECTION", "bytes", "8388608",
      "bytes queued for one client it has not read yet; more closes it with 1013; at least "
      "max-message-bytes"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingBufferBytes, &c->gateway.max_queued_bytes_per_connection);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.gateway.max_queued_bytes_per_connection); }},
    {{"max_connections", "max-connections", "MAX_CONNECTIONS", "connections", "10000",
      "open WebSocket connections in total; one more upgrade gets HTTP 503"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingCount, &c->gateway.max_connections);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.gateway.max_connections); }},
    {{"max_connections_per_ip", "max-connections-per-ip", "MAX_CONNECTIONS_PER_IP", "connections",
      "100", "open WebSocket connections per client IP; more get HTTP 503; 0: no limit"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingCount, &c->gateway.max_connections_per_ip);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.gateway.max_connections_per_ip); }},
    {{"max_pending_handshakes", "max-pending-handshakes", "MAX_PENDING_HANDSHAKES", "connections",
      "4096",
      "TCP connections still in their handshake (no HTTP request answered yet); more are closed "
      "at once; 0: no limit"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingCount, &c->gateway.max_pending_handshakes);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.gateway.max_pending_handshakes); }},
    {{"max_pending_handshakes_per_ip", "max-pending-handshakes-per-ip",
      "MAX_PENDING_HANDSHAKES_PER_IP", "connections", "256",
      "the same per TCP peer address (TRUSTED_PROXIES exempt); 0: no limit"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingCount, &c->gateway.max_pending_handshakes_per_ip);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.gateway.max_pending_handshakes_per_ip); }},
    {{"trusted_proxies", "trusted-proxies", "TRUSTED_PROXIES", "IPs/CIDRs", "",
      "comma-separated IPs/CIDRs of proxies whose X-Forwarded-For names the client"},
     [](const std::string& v, RelayConfig* c) {
       absl::StatusOr<gateway::net::TrustedProxies> trusted =
           gateway::net::TrustedProxies::Parse(v);
       if (!trusted.ok()) return trusted.status();
       c->gateway.trusted_proxies = *std::move(trusted);
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return OrNone(c.gateway.trusted_proxies.ToString()); }},
    {{"allowed_origins", "allowed-origins", "ALLOWED_ORIGINS", "origins", "*",
      "comma-separated exact origins (https://app.example.com) whose browser pages may connect; "
      "others get HTTP 403; upgrades without Origin always may; *: any"},
     [](const std::string& v, RelayConfig* c) {
       absl::StatusOr<gateway::net::OriginPolicy> origins = gateway::net::OriginPolicy::Parse(v);
       if (!origins.ok()) return origins.status();
       c->gateway.allowed_origins = *std::move(origins);
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return c.gateway.allowed_origins.ToString(); }},
    {{"tls_cert_file", "tls-cert-file", "TLS_CERT_FILE", "path", "",
      "PEM certificate chain; with --tls-key-file serves wss://, https:// and gRPC over TLS"},
     [](const std::string& v, RelayConfig* c) {
       c->gateway.tls_cert_file = v;
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return OrNone(c.gateway.tls_cert_file); }},
    {{"tls_key_file", "tls-key-file", "TLS_KEY_FILE", "path", "",
      "PEM private key (unencrypted) of --tls-cert-file; set both or neither"},
     [](const std::string& v, RelayConfig* c) {
       c->gateway.tls_key_file = v;
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return OrNone(c.gateway.tls_key_file); }},
    {{"data_dir", "data-dir", "RELAY_DATA_DIR", "path", "",
      "directory for relay.db (SQLite): signed meshes, token bindings and used nonces survive "
      "restarts; unset keeps them in memory only"},
     [](const std::string& v, RelayConfig* c) {
       c->data_dir = v;
       return absl::OkStatus();
     },
     [](const RelayConfig& c) {
       return c.data_dir.empty() ? std::string("none (auth state in memory)") : c.data_dir;
     }},
    {{"nats_url", "nats-url", "NATS_URL", "URLs", "",
      "comma-separated nats:// or tls:// servers: turns cluster mode on (instances sharing "
      "NATS and RELAY_CLUSTER share every mesh); unset: a relay alone"},
     [](const std::string& v, RelayConfig* c) {
       if (v.empty()) {
         c->cluster.nats_urls.clear();
         return absl::OkStatus();
       }
       absl::StatusOr<std::vector<std::string>> urls =
           backplane::nats::NatsConnection::ParseNatsUrls(v);
       if (!urls.ok()) return urls.status();
       c->cluster.nats_urls = *std::move(urls);
       return absl::OkStatus();
     },
     [](const RelayConfig& c) {
       return c.cluster.enabled() ? absl::StrJoin(c.cluster.nats_urls, ",")
                                  : std::string("none (a relay alone)");
     }},
    {{"nats_creds_file", "nats-creds-file", "NATS_CREDS_FILE", "path", "",
      "NATS credentials file (JWT and NKey seed) for a secured NATS"},
     [](const std::string& v, RelayConfig* c) {
       c->cluster.nats_creds_file = v;
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return OrNone(c.cluster.nats_creds_file); }},
    {{"nats_tls_ca_file", "nats-tls-ca-file", "NATS_TLS_CA_FILE", "path", "",
      "PEM CA certificates to verify NATS servers by; set, the connection uses TLS"},
     [](const std::string& v, RelayConfig* c) {
       c->cluster.nats_tls_ca_file = v;
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return OrNone(c.cluster.nats_tls_ca_file); }},
    {{"relay_cluster", "relay-cluster", "RELAY_CLUSTER", "name", "atmosphere",
      "cluster name, [a-z0-9_-]{1,32}: instances on one NATS share meshes only within one name"},
     [](const std::string& v, RelayConfig* c) {
       if (absl::Status s = backplane::nats::ValidateClusterName(v); !s.ok()) return s;
       c->cluster.name = v;
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return c.cluster.name; }},
    {{"relay_instance_id", "relay-instance-id", "RELAY_INSTANCE_ID", "name", "",
      "this instance's id in the cluster, [A-Za-z0-9_-]{1,64}, unique among running instances; "
      "unset: the host name plus a random suffix"},
     [](const std::string& v, RelayConfig* c) {
       if (!v.empty()) {
         if (absl::Status s = backplane::nats::ValidateInstanceId(v); !s.ok()) return s;
       }
       c->cluster.instance_id = v;
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return OrNone(c.cluster.instance_id); }},
    {{"nats_kv_replicas", "nats-kv-replicas", "NATS_KV_REPLICAS", "replicas", "3",
      "copies JetStream keeps of the cluster's KV buckets: 3 for a 3-node NATS, 1 for a single "
      "server"},
     [](const std::string& v, RelayConfig* c) {
       absl::StatusOr<std::uint64_t> n = ParseUnsigned(v, 5);
       if (!n.ok()) return n.status();
       if (*n < 1) return absl::InvalidArgumentError("must be from 1 to 5");
       c->cluster.kv_replicas = static_cast<int>(*n);
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return absl::StrCat(c.cluster.kv_replicas); }},
    {{"mesh_binding_grace", "mesh-binding-grace-seconds", "MESH_BINDING_GRACE_SECONDS", "seconds",
      "86400", "how long a token-bound mesh stays bound after its last peer left"},
     [](const std::string& v, RelayConfig* c) {
       return SetSeconds(v, &c->core.mesh_binding_grace);
     },
     [](const RelayConfig& c) { return absl::FormatDuration(c.core.mesh_binding_grace); }},
    {{"rate_limit_per_second", "rate-limit-per-second", "RATE_LIMIT_PER_SECOND", "messages/second",
      "1000", "messages per second one connection may send, sustained; 0 disables"},
     [](const std::string& v, RelayConfig* c) {
       return SetRate(v, kMaxSettingCount, &c->core.rate_limit_per_second);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.rate_limit_per_second); }},
    {{"rate_limit_burst", "rate-limit-burst", "RATE_LIMIT_BURST", "messages", "20000",
      "messages one connection may send at once above the sustained rate"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingCount, &c->core.rate_limit_burst);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.rate_limit_burst); }},
    {{"max_peers_per_mesh", "max-peers-per-mesh", "MAX_PEERS_PER_MESH", "peers", "1000",
      "registered peers in one mesh; more are refused with mesh_full"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingCount, &c->core.max_peers_per_mesh);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.max_peers_per_mesh); }},
    {{"rate_limit_bytes_per_second", "rate-limit-bytes-per-second", "RATE_LIMIT_BYTES_PER_SECOND",
      "bytes/second", "1048576",
      "bytes per second one connection may send, sustained (wire bytes of its messages); 0 "
      "disables"},
     [](const std::string& v, RelayConfig* c) {
       return SetRate(v, kMaxSettingRateBytes, &c->core.rate_limit_bytes_per_second);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.rate_limit_bytes_per_second); }},
    {{"rate_limit_burst_bytes", "rate-limit-burst-bytes", "RATE_LIMIT_BURST_BYTES", "bytes",
      "16777216",
      "bytes one connection may send at once above the sustained rate; at least "
      "max-message-bytes"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingRateBytes, &c->core.rate_limit_burst_bytes);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.rate_limit_burst_bytes); }},
    {{"takeover_probe", "takeover-probe-seconds", "TAKEOVER_PROBE_SECONDS", "seconds", "2",
      "open mesh: how long the live holder of a node_id has to answer a ping before another "
      "connection may take the id over"},
     [](const std::string& v, RelayConfig* c) {
       return SetSeconds(v, &c->core.takeover_probe_timeout);
     },
     [](const RelayConfig& c) { return absl::FormatDuration(c.core.takeover_probe_timeout); }},
    {{"llm_capabilities", "llm-capabilities", "LLM_CAPABILITIES", "names", "llm,chat,*llamafarm*",
      "comma-separated capability names (* matches any run) that make a peer serve llm_request "
      "and chat_request; the same on every instance of a cluster"},
     [](const std::string& v, RelayConfig* c) {
       absl::StatusOr<std::vector<std::string>> patterns =
           core::ParseLlmCapabilities(v, c->core.max_capability_bytes);
       if (!patterns.ok()) return patterns.status();
       c->core.llm_capabilities = *std::move(patterns);
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return absl::StrJoin(c.core.llm_capabilities, ","); }},
    {{"max_pending_llm_bytes_per_peer", "max-pending-llm-bytes-per-peer",
      "MAX_PENDING_LLM_BYTES_PER_PEER", "bytes", "131072",
      "bytes of request_id (plus 64 each) of the llm requests one peer may have waiting; more "
      "get too_many_requests"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingBufferBytes, &c->core.max_pending_llm_bytes_per_peer);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.max_pending_llm_bytes_per_peer); }},
    {{"max_nonce_bytes", "max-nonce-bytes", "MAX_NONCE_BYTES", "bytes", "128",
      "longest join-token nonce; longer is refused with auth_failed"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingNonceBytes, &c->core.max_nonce_bytes);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.max_nonce_bytes); }},
    {{"max_join_token_lifetime", "max-join-token-lifetime-seconds",
      "MAX_JOIN_TOKEN_LIFETIME_SECONDS", "seconds", "2592000",
      "longest a join token may be valid (expires_at - issued_at, and from now); longer is "
      "refused with auth_failed"},
     [](const std::string& v, RelayConfig* c) {
       return SetSeconds(v, &c->core.max_join_token_lifetime);
     },
     [](const RelayConfig& c) { return absl::FormatDuration(c.core.max_join_token_lifetime); }},
    {{"max_nonces_per_mesh", "max-nonces-per-mesh", "MAX_NONCES_PER_MESH", "nonces", "1000",
      "used join-token nonces kept per signed mesh; a join with a new one past it is refused "
      "with auth_failed"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingCount, &c->core.max_nonces_per_mesh);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.max_nonces_per_mesh); }},
    {{"max_auth_records", "max-auth-records", "MAX_AUTH_RECORDS", "records", "100000",
      "token bindings, signed meshes and used nonces kept in total; past it new ones get "
      "auth_unavailable"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingCount, &c->core.max_auth_records);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.max_auth_records); }},
    {{"resume_window", "resume-window-seconds", "RESUME_WINDOW_SECONDS", "seconds", "60",
      "how long a resume session whose connection dropped waits for its client; 0 turns "
      "resume off"},
     [](const std::string& v, RelayConfig* c) { return SetSeconds(v, &c->core.resume_window); },
     [](const RelayConfig& c) { return absl::FormatDuration(c.core.resume_window); }},
    {{"resume_buffer_bytes", "resume-buffer-bytes", "RESUME_BUFFER_BYTES", "bytes", "1048576",
      "bytes one resume session keeps for replay (frames its client has not acknowledged); "
      "past it the session ends"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingBufferBytes, &c->core.resume_buffer_bytes);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.resume_buffer_bytes); }},
    {{"resume_buffer_frames", "resume-buffer-frames", "RESUME_BUFFER_FRAMES", "frames", "4096",
      "frames one resume session keeps for replay; past it the session ends"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingCount, &c->core.resume_buffer_frames);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.resume_buffer_frames); }},
    {{"max_resume_sessions", "max-resume-sessions", "MAX_RESUME_SESSIONS", "sessions", "10000",
      "resume sessions this instance keeps, live or suspended; past it joins get none"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingCount, &c->core.max_resume_sessions);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.max_resume_sessions); }},
    {{"max_resume_memory_bytes", "max-resume-memory-bytes", "MAX_RESUME_MEMORY_BYTES", "bytes",
      "268435456",
      "bytes all resume sessions keep for replay together; past it the session that would grow "
      "ends"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingBufferBytes, &c->core.max_resume_memory_bytes);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.max_resume_memory_bytes); }},
    {{"auth_records_per_ip_per_minute", "auth-records-per-ip-per-minute",
      "AUTH_RECORDS_PER_IP_PER_MINUTE", "records/minute", "20",
      "token bindings, signed meshes and nonce uses one client IP may create per minute; more "
      "get rate_limited"},
     [](const std::string& v, RelayConfig* c) {
       return SetCount(v, kMaxSettingCount, &c->core.auth_records_per_ip_per_minute);
     },
     [](const RelayConfig& c) { return absl::StrCat(c.core.auth_records_per_ip_per_minute); }},
    {{"signed_mesh_ttl", "signed-mesh-ttl-days", "SIGNED_MESH_TTL_DAYS", "days", "90",
      "a signed mesh nobody joined or re-proved for this many days is forgotten"},
     [](const std::string& v, RelayConfig* c) {
       absl::StatusOr<std::uint64_t> n = ParseUnsigned(v, kMaxSettingDays);
       if (!n.ok()) return n.status();
       c->core.signed_mesh_ttl = absl::Hours(24 * static_cast<std::int64_t>(*n));
       return absl::OkStatus();
     },
     [](const RelayConfig& c) { return absl::FormatDuration(c.core.signed_mesh_ttl); }},
};

bool IsLoopbackHost(absl::string_view host) {
  return host == "localhost" || absl::StartsWith(host, "127.") || host == "::1" || host == "[::1]";
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
  if (config.cluster.enabled() && !config.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "data-dir (RELAY_DATA_DIR) and nats-url (NATS_URL) exclude each other: in cluster mode "
        "authentication state lives in NATS, shared by every instance");
  }
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
  std::string out;
  for (const Setting& s : kSettings) {
    absl::StrAppend(&out, out.empty() ? "" : " ", s.info.name, "=", s.show(*this));
  }
  return out;
}

std::vector<SettingInfo> RelaySettings() {
  std::vector<SettingInfo> out;
  for (const Setting& s : kSettings) out.push_back(s.info);
  return out;
}

std::string RelayUsage() {
  std::string out =
      "usage: relay [--flag value | --flag=value]...\n"
      "Atmosphere relay: WebSocket mesh relay with a gRPC admin plane.\n"
      "Each flag can also be set by the environment variable shown; flags win.\n\n";
  for (const Setting& s : kSettings) {
    const SettingInfo& i = s.info;
    absl::StrAppend(&out, "  --", i.flag, " (", i.env, "): ", i.unit, ", default ",
                    i.default_value.empty() ? "none" : i.default_value, "\n      ", i.doc, "\n");
  }
  absl::StrAppend(&out, "  --help\n      print this and exit\n");
  absl::StrAppend(&out, "  --version\n      print the version and git commit, and exit\n");
  return out;
}

absl::StatusOr<LoadedConfig> LoadRelayConfig(const std::vector<std::string>& args,
                                             const EnvLookup& env) {
  LoadedConfig loaded;
  RelayConfig& config = loaded.config;
  // --help and --version answer whatever else is set: an operator asks for
  // them precisely when a setting (often in the environment) is wrong.
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      loaded.help = true;
      return loaded;
    }
    if (arg == "--version") {
      loaded.version = true;
      return loaded;
    }
  }
  for (const Setting& s : kSettings) {
    if (std::optional<std::string> value = env(std::string(s.info.env)); value.has_value()) {
      if (absl::Status st = s.apply(*value, &config); !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(s.info.env, ": ", st.message()));
      }
    }
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
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
    for (const Setting& s : kSettings) {
      if (name == s.info.flag) setting = &s;
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
  if (config.cluster.enabled() && config.cluster.instance_id.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
    config.cluster.instance_id = backplane::nats::DefaultInstanceId(host);
  }
  return loaded;
}

}  // namespace relay
