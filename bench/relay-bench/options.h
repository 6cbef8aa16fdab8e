// Command line of relay-bench: `relay-bench MODE [--flag value]...`. Every
// knob of every mode lives in BenchOptions with its default; ParseOptions
// fills it and rejects unknown flags and bad values.
#ifndef RELAY_BENCH_RELAY_BENCH_OPTIONS_H_
#define RELAY_BENCH_RELAY_BENCH_OPTIONS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace relay::bench {

enum class Mode { kPairs, kFanout, kLlm, kEcho, kIdle, kChurn };
enum class ServerKind { kRelay, kEcho };

struct BenchOptions {
  Mode mode = Mode::kPairs;
  // Server: ws://host:port; relay paths are /relay/{mesh_id}, echo paths /.
  std::string host = "127.0.0.1";
  int port = 8765;
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
  int receivers = 100;  // fanout: N receivers of one broadcaster
  int meshes = 50;      // llm: meshes of requester(s) and capable peer(s)
  int requesters = 1;   // llm: per mesh
  int responders = 1;   // llm: capable peers per mesh
  int connections = -1;  // echo (default 100) and idle (default 10000)
  int concurrency = 64;  // churn: connections cycling at once
  double settle_s = 1;   // idle, churn: pause before sampling server memory
  double hold_s = 2;     // idle: keep the connections after measuring, then check them
  int source_ips = 0;    // churn/idle: spread clients over 127.0.0.2.. (0: kernel's choice)
  int connect_concurrency = 256;  // handshakes + registrations in flight while connecting

  std::string label;     // tag of the machine-readable line
  std::string json_out;  // append the machine-readable line to this file
  bool quiet = false;    // no human table
};

// Parses argv; on failure returns false with `*error`. `--help` sets *help.
bool ParseOptions(int argc, char** argv, BenchOptions* options, bool* help, std::string* error);
std::string Usage();
const char* ModeName(Mode mode);
const char* ServerName(ServerKind kind);

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_OPTIONS_H_
