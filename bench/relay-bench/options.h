// Command line of relay-bench: `relay-bench MODE [--flag value]...`. Every
// knob of every mode lives in BenchOptions with its default; ParseOptions
// fills it and rejects unknown flags and bad values.
#ifndef RELAY_BENCH_RELAY_BENCH_OPTIONS_H_
#define RELAY_BENCH_RELAY_BENCH_OPTIONS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace relay::bench {

enum class Mode { kPairs, kFanout, kLlm, kEcho, kIdle, kChurn, kPresence, kResume };
enum class ServerKind { kRelay, kEcho };

// One server of --servers: an IPv4 address and a port.
struct ServerAddress {
  std::string host = "127.0.0.1";
  int port = 8765;
  bool operator==(const ServerAddress& o) const { return host == o.host && port == o.port; }
};

struct BenchOptions {
  Mode mode = Mode::kPairs;
  // Server: ws://host:port; relay paths are /relay/{mesh_id}, echo paths /.
  std::string host = "127.0.0.1";
  int port = 8765;
  // Cluster mode: the instances clients are spread over (--servers), in order; empty: just
  // host:port. ServerList() is what the drivers use.
  std::vector<ServerAddress> servers;
  ServerKind server = ServerKind::kRelay;  // idle and churn run against either
  pid_t server_pid = 0;                    // 0: no CPU / RSS / fd figures

  double duration_s = 5;   // measured window
  double warmup_s = 1;     // load before the window, not measured
  double drain_timeout_s = 10;  // after the window: wait this long for in-flight messages
  double setup_timeout_s = 60;  // connecting and registering every client
  std::size_t payload_bytes = 64;  // bench payload (JSON string contents for the relay)

  int pairs = 100;      // pairs: P meshes of two peers, A sends direct to B
  int window = 16;      // closed loop: messages in flight per pair / connection / requester
  double rate = 0;      // open loop: total messages per second (0: closed loop)
  double cut_rate = 0;  // resume: connections cut (and resumed) per second
  int receivers = 100;  // fanout: N receivers of one broadcaster
  int meshes = 50;      // llm: meshes of requester(s) and capable peer(s)
  int requesters = 1;   // llm: per mesh
  int responders = 1;   // llm: capable peers per mesh
  int connections = -1;  // echo (default 100) and idle (default 10000)
  int concurrency = 64;  // churn: connections cycling at once; presence: joiners at once
  double settle_s = 1;   // idle, churn: pause before sampling server memory
  double hold_s = 2;     // idle: keep the connections after measuring, then check them
  int source_ips = 0;    // churn/idle: spread clients over 127.0.0.2.. (0: kernel's choice)
  int connect_concurrency = 256;  // handshakes + registrations in flight while connecting

  std::string label;     // tag of the machine-readable line
  std::string json_out;  // append the machine-readable line to this file
  bool quiet = false;    // no human table

  // --servers if given, else {host:port}: never empty.
  std::vector<ServerAddress> ServerList() const;
};

// Parses one --servers value: comma-separated `host:port`, `:port` or `port`
// (host 127.0.0.1), appended to *out. False on an empty item, a bad port or a
// host that is not an IPv4 address.
bool ParseServerList(const std::string& text, std::vector<ServerAddress>* out);

// Where the clients go, by index into ServerList() of `servers` entries
// (round robin, so that the two ends of a pair never share an instance when
// there are 2+):
//   pairs:    the sender of pair i on i % n, its receiver on (i + 1) % n;
//   fanout:   the broadcaster on 0, receiver i on i % n;
//   presence: joiner slot k on k % n, its observer on (k + 1) % n;
//   any other client: its serial (order of creation) % n.
int PairSenderServer(int pair, int servers);
int PairReceiverServer(int pair, int servers);
int FanoutReceiverServer(int receiver, int servers);
int RoundRobinServer(int index, int servers);

// Parses argv; on failure returns false with `*error`. `--help` sets *help.
bool ParseOptions(int argc, char** argv, BenchOptions* options, bool* help, std::string* error);
std::string Usage();
const char* ModeName(Mode mode);
const char* ServerName(ServerKind kind);

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_OPTIONS_H_
