// relay-bench command line (see options.h).
#include "bench/relay-bench/options.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>

namespace relay::bench {

namespace {

bool ParseDouble(const std::string& text, double min, double* out) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= min)) return false;
  *out = v;
  return true;
}

bool ParseInt(const std::string& text, long min, long max, long* out) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

std::vector<ServerAddress> BenchOptions::ServerList() const {
  if (!servers.empty()) return servers;
  ServerAddress one;
  one.host = host;
  one.port = port;
  return {one};
}

bool ParseServerList(const std::string& text, std::vector<ServerAddress>* out) {
  std::vector<ServerAddress> parsed;
  std::size_t begin = 0;
  while (true) {
    const std::size_t comma = text.find(',', begin);
    const std::string item =
        text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    ServerAddress server;
    const std::size_t colon = item.rfind(':');
    std::string port_text = item;
    if (colon != std::string::npos) {
      if (colon > 0) server.host = item.substr(0, colon);
      port_text = item.substr(colon + 1);
    }
    long port;
    in_addr ignored{};
    if (!ParseInt(port_text, 1, 65535, &port) ||
        inet_pton(AF_INET, server.host.c_str(), &ignored) != 1) {
      return false;
    }
    server.port = static_cast<int>(port);
    parsed.push_back(server);
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  out->insert(out->end(), parsed.begin(), parsed.end());
  return true;
}

int RoundRobinServer(int index, int servers) { return servers <= 1 ? 0 : index % servers; }
int PairSenderServer(int pair, int servers) { return RoundRobinServer(pair, servers); }
int PairReceiverServer(int pair, int servers) { return RoundRobinServer(pair + 1, servers); }
int FanoutReceiverServer(int receiver, int servers) { return RoundRobinServer(receiver, servers); }

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kPairs:
      return "pairs";
    case Mode::kFanout:
      return "fanout";
    case Mode::kLlm:
      return "llm";
    case Mode::kEcho:
      return "echo";
    case Mode::kIdle:
      return "idle";
    case Mode::kChurn:
      return "churn";
    case Mode::kPresence:
      return "presence";
    case Mode::kResume:
      return "resume";
  }
  return "?";
}

const char* ServerName(ServerKind kind) { return kind == ServerKind::kRelay ? "relay" : "echo"; }

std::string Usage() {
  return R"(usage: relay-bench MODE [--flag value]...
Load generator for the Atmosphere relay (and a plain WebSocket echo server, the ceiling).
Every delivery is checked: a lost, duplicated or reordered message, an `error` from the relay or an
unexpected close fails the run (exit code 1). Exit code 2: bad usage or setup failure.

modes:
  pairs    P meshes of two peers; A sends direct to B. Closed loop (W in flight per pair) or
           open loop (--rate R messages/s in total, latency from the scheduled send time)
  fanout   one mesh, N receivers and one broadcaster, W broadcasts in flight
  llm      M meshes of requester(s) and capable peer(s); llm_request -> llm_response round trips
  echo     C connections to an echo server, W in flight each (or --rate); round trips
  idle     C connections held open (relay: registered, meshes of two); server RSS before/after
  churn    K concurrent connect + register + leave cycles; server RSS and fds before/after
  presence K mesh slots, each an observer and a joiner (on different servers with --servers):
           the joiner registers under a fresh node id, leaves and again; latency: register sent
           -> the observer's peer_joined (presence convergence); rate: joins/s (each counted
           when `joined` arrives); every join must reach its observer exactly once
  resume   pairs whose ends are resume clients (seq both ways, acks); with --cut-rate R, R times a
           second one receiver loses its TCP connection abruptly and resumes its session: every
           message must still arrive exactly once, in order (resumes: `connections`)

Cluster mode: --servers spreads the clients over several relay instances, round robin: the two
ends of each pair on different instances, fan-out receivers over all (the broadcaster on the
first), presence observers on the next instance after their joiner's, any other client (llm,
idle, churn) on the next instance in the order they are made. A sender waits until its instance
knows its receivers (`peers` / `peer_joined`) before the load starts.

flags:
  --host H (127.0.0.1)  --port N (8765)  --server relay|echo (idle, churn; relay)
  --servers H:P,H:P,... (repeatable; `:P` or `P` for 127.0.0.1): clients spread over these
                        instead of --host/--port
  --server-pid PID      server process for CPU %, RSS and fds from /proc
  --duration S (5)      --warmup S (1)  --drain-timeout S (10)  --setup-timeout S (60)
  --payload-bytes N (64, min 42)
  --pairs P (100)  --window W (16)  --rate R (0 = closed loop)  --cut-rate R (resume: 0)
  --receivers N (100)  --meshes M (50)  --requesters N (1)  --responders N (1)
  --connections C (echo 100, idle 10000)  --concurrency K (churn, presence: 64)
  --settle S (1)  --hold S (2)  --source-ips N (0)  --connect-concurrency N (256)
  --label NAME  --json-out FILE (append the RESULT line)  --quiet
)";
}

bool ParseOptions(int argc, char** argv, BenchOptions* o, bool* help, std::string* error) {
  *help = false;
  if (argc < 2) {
    *error = "missing MODE";
    return false;
  }
  const std::string mode = argv[1];
  if (mode == "--help" || mode == "-h") {
    *help = true;
    return true;
  }
  static const std::map<std::string, Mode> kModes = {
      {"pairs", Mode::kPairs},       {"fanout", Mode::kFanout}, {"llm", Mode::kLlm},
      {"echo", Mode::kEcho},         {"idle", Mode::kIdle},     {"churn", Mode::kChurn},
      {"presence", Mode::kPresence}, {"resume", Mode::kResume}};
  const auto it = kModes.find(mode);
  if (it == kModes.end()) {
    *error = "unknown mode \"" + mode + "\"";
    return false;
  }
  o->mode = it->second;
  if (o->mode == Mode::kEcho) o->server = ServerKind::kEcho;

  auto dbl = [](double* field, double min) {
    return [field, min](const std::string& v) { return ParseDouble(v, min, field); };
  };
  auto integer = [](int* field, long min, long max) {
    return [field, min, max](const std::string& v) {
      long x;
      if (!ParseInt(v, min, max, &x)) return false;
      *field = static_cast<int>(x);
      return true;
    };
  };
  const std::map<std::string, std::function<bool(const std::string&)>> flags = {
      {"--host",
       [o](const std::string& v) {
         o->host = v;
         return !v.empty();
       }},
      {"--port", integer(&o->port, 1, 65535)},
      {"--servers", [o](const std::string& v) { return ParseServerList(v, &o->servers); }},
      {"--server",
       [o](const std::string& v) {
         if (v == "relay")
           o->server = ServerKind::kRelay;
         else if (v == "echo")
           o->server = ServerKind::kEcho;
         else
           return false;
         return true;
       }},
      {"--server-pid",
       [o](const std::string& v) {
         long x;
         if (!ParseInt(v, 1, 1L << 30, &x)) return false;
         o->server_pid = static_cast<pid_t>(x);
         return true;
       }},
      {"--duration", dbl(&o->duration_s, 0.01)},
      {"--warmup", dbl(&o->warmup_s, 0)},
      {"--drain-timeout", dbl(&o->drain_timeout_s, 0.1)},
      {"--setup-timeout", dbl(&o->setup_timeout_s, 1)},
      {"--payload-bytes",
       [o](const std::string& v) {
         long x;
         if (!ParseInt(v, 42, 1 << 20, &x)) return false;
         o->payload_bytes = static_cast<std::size_t>(x);
         return true;
       }},
      {"--pairs", integer(&o->pairs, 1, 1 << 20)},
      {"--window", integer(&o->window, 1, 1 << 20)},
      {"--rate", dbl(&o->rate, 0)},
      {"--cut-rate", dbl(&o->cut_rate, 0)},
      {"--receivers", integer(&o->receivers, 1, 1 << 20)},
      {"--meshes", integer(&o->meshes, 1, 1 << 20)},
      {"--requesters", integer(&o->requesters, 1, 1 << 20)},
      {"--responders", integer(&o->responders, 1, 1 << 20)},
      {"--connections", integer(&o->connections, 1, 1 << 22)},
      {"--concurrency", integer(&o->concurrency, 1, 1 << 20)},
      {"--settle", dbl(&o->settle_s, 0)},
      {"--hold", dbl(&o->hold_s, 0)},
      {"--source-ips", integer(&o->source_ips, 0, 250)},
      {"--connect-concurrency", integer(&o->connect_concurrency, 1, 1 << 20)},
      {"--label",
       [o](const std::string& v) {
         o->label = v;
         return true;
       }},
      {"--json-out",
       [o](const std::string& v) {
         o->json_out = v;
         return !v.empty();
       }},
  };
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return true;
    }
    if (arg == "--quiet") {
      o->quiet = true;
      continue;
    }
    std::string value;
    const std::size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      *error = arg + " needs a value";
      return false;
    }
    const auto flag = flags.find(arg);
    if (flag == flags.end()) {
      *error = "unknown flag " + arg;
      return false;
    }
    if (!flag->second(value)) {
      *error = "bad value for " + arg + ": \"" + value + "\"";
      return false;
    }
  }
  if (o->connections < 0) o->connections = o->mode == Mode::kIdle ? 10000 : 100;
  if (o->mode == Mode::kEcho && o->server != ServerKind::kEcho) {
    *error = "echo mode runs against an echo server only";
    return false;
  }
  if ((o->mode == Mode::kPairs || o->mode == Mode::kFanout || o->mode == Mode::kLlm ||
       o->mode == Mode::kPresence || o->mode == Mode::kResume) &&
      o->server != ServerKind::kRelay) {
    *error = std::string(ModeName(o->mode)) + " mode needs the relay";
    return false;
  }
  return true;
}

}  // namespace relay::bench
