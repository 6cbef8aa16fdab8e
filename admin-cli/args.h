// Command line of relayctl: the options and command it names, the parser, and
// the usage text. Pure (no I/O, environment passed in) so it is unit-tested.
//
//   relayctl [--addr HOST:PORT] [--tls] [--ca-file PEM] [--token TOKEN] [--json]
//            [--timeout SECONDS] [--help] [--version] COMMAND [command flags]
//
// Flags may come before, between or after the command words; "--" ends flags.
// Command flags (--page-size, --reason, --grace...) are refused with any
// command but their own, so a typo never silently does something else.
#ifndef RELAY_ADMIN_CLI_ARGS_H_
#define RELAY_ADMIN_CLI_ARGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace relay::cli {

inline constexpr absl::string_view kDefaultAddr = "127.0.0.1:50051";
inline constexpr char kAddrEnvVar[] = "RELAY_ADMIN_ADDR";  // for std::getenv
inline constexpr char kCaEnvVar[] = "RELAY_ADMIN_CA";
inline constexpr char kTokenEnvVar[] = "RELAY_ADMIN_TOKEN";
inline constexpr absl::Duration kDefaultTimeout = absl::Seconds(5);
// A screenful: big enough that most relays fit one page, small enough that a
// relay with 100k meshes does not print them all by accident.
inline constexpr std::uint32_t kDefaultPageSize = 50;
// The relay answers a whole page in one message; past this a page could hit
// gRPC's 4 MiB default receive limit (a summary is ~60 bytes).
inline constexpr std::uint32_t kMaxPageSize = 10000;

// drain --grace: a day. A longer grace is more likely a typo than a plan, and
// the relay refuses new connections all that time.
inline constexpr std::uint32_t kMaxGraceSeconds = 24 * 60 * 60;

enum class Command {
  kNone,          // only with `help`
  kMeshesList,    // meshes list
  kMeshesShow,    // meshes show MESH_ID
  kMeshesClose,   // meshes close MESH_ID
  kMeshesUnbind,  // meshes unbind MESH_ID
  kPeersKick,     // peers kick MESH_ID NODE_ID
  kStats,         // stats
  kHealth,        // health
  kDrain,         // drain
  kLogLevel,      // log-level LEVEL
};

// `meshes list --sort`: the relay's ListMeshesRequest.Order.
enum class MeshSort {
  kMesh,     // ascending mesh id (default)
  kPeers,    // most peers first
  kTraffic,  // most messages relayed first
};

// The environment relayctl reads; null or empty means unset.
struct CliEnv {
  const char* addr = nullptr;   // $RELAY_ADMIN_ADDR
  const char* ca = nullptr;     // $RELAY_ADMIN_CA
  const char* token = nullptr;  // $RELAY_ADMIN_TOKEN
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
  // The relay's ADMIN_TOKEN: --token, else $RELAY_ADMIN_TOKEN. Sent as
  // "authorization: Bearer <token>" on every Admin call (not on health).
  // Never printed.
  std::string token;
  // Machine-readable JSON on stdout instead of tables.
  bool json = false;
  // Deadline of each rpc, from --timeout SECONDS.
  absl::Duration timeout = kDefaultTimeout;
  // --help was given: print usage and exit 0; the command is then not checked.
  bool help = false;
  // --version was given: print relayctl's version and git commit and exit 0
  // (JSON with --json); the command is then not checked, as with --help.
  bool version = false;
  Command command = Command::kNone;
  std::string mesh_id;  // meshes show/close, peers kick
  std::string node_id;  // peers kick
  // peers kick, meshes close (told to the peers), drain, log-level: --reason,
  // logged by the relay with the action.
  std::string reason;

  // meshes list: --page-size, --page-token (from a previous page) or --all
  // (every page, fetched page-size at a time), --sort.
  std::uint32_t page_size = kDefaultPageSize;
  std::string page_token;
  bool all_pages = false;
  MeshSort sort = MeshSort::kMesh;

  // drain --grace SECONDS; 0: the relay's DRAIN_GRACE_SECONDS.
  std::uint32_t grace_seconds = 0;

  // log-level LEVEL, passed as typed: the relay validates it (INVALID_ARGUMENT,
  // exit 1), so relayctl never refuses a level a newer relay accepts.
  std::string log_level;
};

// Parses `args` (argv without the program name) with `env` as fallbacks.
// Returns InvalidArgument with a one-line message for any usage error
// (relayctl exits 2 on it); the message never contains the token.
absl::StatusOr<CliOptions> ParseArgs(const std::vector<std::string>& args, const CliEnv& env = {});

// "mesh", "peers" or "traffic": the --sort value naming `sort`.
absl::string_view MeshSortName(MeshSort sort);

// The --help text, ending with a newline.
std::string Usage();

}  // namespace relay::cli

#endif  // RELAY_ADMIN_CLI_ARGS_H_
