// Command line of relayctl: the options and command it names, the parser, and
// the usage text. Pure (no I/O, environment passed in) so it is unit-tested.
//
//   relayctl [--addr HOST:PORT] [--tls] [--ca-file PEM] [--json] [--timeout SECONDS]
//            [--help] COMMAND
//
// Flags may come before, between or after the command words; "--" ends flags.
#ifndef RELAY_ADMIN_CLI_ARGS_H_
#define RELAY_ADMIN_CLI_ARGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace relay::cli {

inline constexpr absl::string_view kDefaultAddr = "127.0.0.1:50051";
inline constexpr char kAddrEnvVar[] = "RELAY_ADMIN_ADDR";  // for std::getenv
inline constexpr char kCaEnvVar[] = "RELAY_ADMIN_CA";
inline constexpr absl::Duration kDefaultTimeout = absl::Seconds(5);

enum class Command {
  kNone,        // only with `help`
  kMeshesList,  // meshes list
  kMeshesShow,  // meshes show MESH_ID
  kStats,       // stats
  kHealth,      // health
};

struct CliOptions {
  // From --addr, else $RELAY_ADMIN_ADDR, else kDefaultAddr.
  std::string addr;
  // TLS to the relay (it serves gRPC over TLS when it has a certificate):
  // --tls, or implied by a CA file.
  bool tls = false;
  // PEM CA bundle to verify the relay with: --ca-file, else $RELAY_ADMIN_CA.
  // Empty with TLS: the system's trusted roots.
  std::string ca_file;
  // Machine-readable JSON on stdout instead of tables.
  bool json = false;
  // Deadline of each rpc, from --timeout SECONDS.
  absl::Duration timeout = kDefaultTimeout;
  // --help was given: print usage and exit 0; the command is then not checked.
  bool help = false;
  Command command = Command::kNone;
  std::string mesh_id;  // for kMeshesShow
};

// Parses `args` (argv without the program name). `env_addr` and `env_ca` are
// the values of $RELAY_ADMIN_ADDR and $RELAY_ADMIN_CA, null (or empty) when
// unset. Returns InvalidArgument with a one-line message for any usage error
// (relayctl exits 2 on it).
absl::StatusOr<CliOptions> ParseArgs(const std::vector<std::string>& args, const char* env_addr,
                                     const char* env_ca = nullptr);

// The --help text, ending with a newline.
std::string Usage();

}  // namespace relay::cli

#endif  // RELAY_ADMIN_CLI_ARGS_H_
