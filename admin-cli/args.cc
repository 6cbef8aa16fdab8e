// relayctl's argument parser: flags anywhere, then the command words checked
// against the command table, then each command flag against its command
// (see args.h).
#include "admin-cli/args.h"

#include <cmath>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace relay::cli {
namespace {

// A flag's value from "--flag=value" or from the next argument.
absl::StatusOr<std::string> FlagValue(const std::vector<std::string>& args, std::size_t& i,
                                      absl::string_view flag,
                                      const std::optional<std::string>& inline_value) {
  if (inline_value.has_value()) return *inline_value;
  if (i + 1 >= args.size()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " needs a value"));
  }
  return args[++i];
}

absl::StatusOr<absl::Duration> ParseTimeout(absl::string_view text) {
  double seconds = 0;
  // Reject 0 and negatives: a zero deadline fails every call, which reads as
  // "relay unreachable" and would mislead the operator.
  if (!absl::SimpleAtod(text, &seconds) || !std::isfinite(seconds) || seconds <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout wants a positive number of seconds, got \"", text, "\""));
  }
  return absl::Seconds(seconds);
}

// A whole number in [min, max] given to `flag`.
absl::StatusOr<std::uint32_t> ParseBounded(absl::string_view text, std::uint32_t min,
                                           std::uint32_t max, absl::string_view flag) {
  std::uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " wants a whole number from ", min, " to ",
                                                   max, ", got \"", text, "\""));
  }
  return static_cast<std::uint32_t>(value);
}

absl::StatusOr<MeshSort> ParseSort(absl::string_view text) {
  for (MeshSort sort : {MeshSort::kMesh, MeshSort::kPeers, MeshSort::kTraffic}) {
    if (text == MeshSortName(sort)) return sort;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--sort wants mesh, peers or traffic, got \"", text, "\""));
}

// The token travels as an HTTP/2 header value: gRPC fails the call on
// anything else. The message names where it came from, never the token.
absl::Status CheckToken(absl::string_view token, absl::string_view source) {
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(source, " must not be empty"));
  for (char c : token) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, " must be printable ASCII (it is sent as a gRPC header)"));
    }
  }
  return absl::OkStatus();
}

bool IsSet(const char* env) { return env != nullptr && *env != '\0'; }

// --- Flags ------------------------------------------------------------------

// Applies a flag's value to the options (or fails with a usage message).
using FlagSetter = absl::Status (*)(const std::string& value, CliOptions& options);

struct FlagSpec {
  absl::string_view name;
  bool takes_value;
  FlagSetter set;
  // The commands it applies to; empty: every command (a global flag).
  std::vector<Command> commands;
};

absl::Status SetNonEmpty(const std::string& value, absl::string_view flag, std::string& field) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, " must not be empty"));
  field = value;
  return absl::OkStatus();
}

// Boolean flags set one field; a template keeps each a plain function pointer.
template <bool CliOptions::*kField>
absl::Status SetTrue(const std::string& /*value*/, CliOptions& options) {
  options.*kField = true;
  return absl::OkStatus();
}

absl::Status SetCaFile(const std::string& value, CliOptions& options) {
  options.tls = true;
  return SetNonEmpty(value, "--ca-file", options.ca_file);
}

absl::Status SetAddr(const std::string& value, CliOptions& options) {
  return SetNonEmpty(value, "--addr", options.addr);
}

absl::Status SetToken(const std::string& value, CliOptions& options) {
  if (absl::Status status = CheckToken(value, "--token"); !status.ok()) return status;
  options.token = value;
  return absl::OkStatus();
}

absl::Status SetTimeout(const std::string& value, CliOptions& options) {
  absl::StatusOr<absl::Duration> timeout = ParseTimeout(value);
  if (timeout.ok()) options.timeout = *timeout;
  return timeout.status();
}

absl::Status SetPageSize(const std::string& value, CliOptions& options) {
  // 0 would be the relay's "every mesh in one answer": that is --all's job.
  absl::StatusOr<std::uint32_t> size = ParseBounded(value, 1, kMaxPageSize, "--page-size");
  if (size.ok()) options.page_size = *size;
  return size.status();
}

absl::Status SetPageToken(const std::string& value, CliOptions& options) {
  return SetNonEmpty(value, "--page-token", options.page_token);
}

absl::Status SetSort(const std::string& value, CliOptions& options) {
  absl::StatusOr<MeshSort> sort = ParseSort(value);
  if (sort.ok()) options.sort = *sort;
  return sort.status();
}

absl::Status SetReason(const std::string& value, CliOptions& options) {
  return SetNonEmpty(value, "--reason", options.reason);
}

absl::Status SetGrace(const std::string& value, CliOptions& options) {
  // 0 is the relay's "use DRAIN_GRACE_SECONDS", which omitting --grace says.
  absl::StatusOr<std::uint32_t> grace = ParseBounded(value, 1, kMaxGraceSeconds, "--grace");
  if (grace.ok()) options.grace_seconds = *grace;
  return grace.status();
}

const std::vector<FlagSpec>& Flags() {
  static const auto* const flags = new std::vector<FlagSpec>{
      {"--help", false, SetTrue<&CliOptions::help>, {}},
      {"-h", false, SetTrue<&CliOptions::help>, {}},
      {"--version", false, SetTrue<&CliOptions::version>, {}},
      {"--json", false, SetTrue<&CliOptions::json>, {}},
      {"--tls", false, SetTrue<&CliOptions::tls>, {}},
      {"--ca-file", true, SetCaFile, {}},
      {"--addr", true, SetAddr, {}},
      {"--token", true, SetToken, {}},
      {"--timeout", true, SetTimeout, {}},
      {"--page-size", true, SetPageSize, {Command::kMeshesList}},
      {"--page-token", true, SetPageToken, {Command::kMeshesList}},
      {"--all", false, SetTrue<&CliOptions::all_pages>, {Command::kMeshesList}},
      {"--sort", true, SetSort, {Command::kMeshesList}},
      {"--reason",
       true,
       SetReason,
       {Command::kMeshesClose, Command::kMeshesUnbind, Command::kPeersKick, Command::kDrain,
        Command::kLogLevel}},
      {"--grace", true, SetGrace, {Command::kDrain}},
  };
  return *flags;
}

const FlagSpec* FindFlag(absl::string_view name) {
  for (const FlagSpec& flag : Flags()) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

// --- Commands ---------------------------------------------------------------

// A command: the words naming it, then the arguments it takes.
struct CommandSpec {
  std::vector<absl::string_view> words;  // e.g. {"peers", "kick"}
  std::vector<absl::string_view> args;   // e.g. {"MESH_ID", "NODE_ID"}
  Command command;
};

const std::vector<CommandSpec>& Commands() {
  static const auto* const commands = new std::vector<CommandSpec>{
      {{"meshes", "list"}, {}, Command::kMeshesList},
      {{"meshes", "show"}, {"MESH_ID"}, Command::kMeshesShow},
      {{"meshes", "close"}, {"MESH_ID"}, Command::kMeshesClose},
      {{"meshes", "unbind"}, {"MESH_ID"}, Command::kMeshesUnbind},
      {{"peers", "kick"}, {"MESH_ID", "NODE_ID"}, Command::kPeersKick},
      {{"stats"}, {}, Command::kStats},
      {{"health"}, {}, Command::kHealth},
      {{"drain"}, {}, Command::kDrain},
      {{"log-level"}, {"LEVEL"}, Command::kLogLevel},
  };
  return *commands;
}

// "list, show or close": the subcommands of `group`, for its errors.
std::string SubcommandsOf(absl::string_view group) {
  std::vector<std::string> names;
  for (const CommandSpec& spec : Commands()) {
    if (spec.words.size() == 2 && spec.words[0] == group) names.emplace_back(spec.words[1]);
  }
  if (names.size() < 2) return absl::StrJoin(names, "");
  return absl::StrCat(absl::StrJoin(names.begin(), names.end() - 1, ", "), " or ", names.back());
}

// The command whose name `words` start with, or a usage error.
absl::StatusOr<const CommandSpec*> MatchCommand(const std::vector<std::string>& words) {
  if (words.empty()) return absl::InvalidArgumentError("missing command");
  bool group_known = false;
  for (const CommandSpec& spec : Commands()) {
    if (spec.words[0] != words[0]) continue;
    group_known = true;
    if (spec.words.size() == 1 || (words.size() > 1 && words[1] == spec.words[1])) return &spec;
  }
  if (!group_known) {
    return absl::InvalidArgumentError(absl::StrCat("unknown command \"", words[0], "\""));
  }
  if (words.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(words[0], ": expected ", SubcommandsOf(words[0])));
  }
  return absl::InvalidArgumentError(absl::StrCat(words[0], ": unknown subcommand \"", words[1],
                                                 "\" (expected ", SubcommandsOf(words[0]), ")"));
}

// Matches the command words and stores the command's arguments.
absl::Status ParseCommand(const std::vector<std::string>& words, CliOptions& options) {
  absl::StatusOr<const CommandSpec*> matched = MatchCommand(words);
  if (!matched.ok()) return matched.status();
  const CommandSpec& spec = **matched;
  const std::string name = absl::StrJoin(spec.words, " ");
  const std::size_t needed = spec.words.size() + spec.args.size();
  if (words.size() < needed) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": missing ", spec.args[words.size() - spec.words.size()]));
  }
  if (words.size() > needed) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", words[needed], "\" after \"",
                     absl::StrJoin(words.begin(), words.begin() + needed, " "), "\""));
  }
  options.command = spec.command;
  const std::vector<std::string> args(words.begin() + spec.words.size(), words.end());
  switch (spec.command) {
    case Command::kMeshesShow:
    case Command::kMeshesClose:
    case Command::kMeshesUnbind:
      options.mesh_id = args[0];
      break;
    case Command::kPeersKick:
      options.mesh_id = args[0];
      options.node_id = args[1];
      break;
    case Command::kLogLevel:
      options.log_level = args[0];
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

std::string CommandName(Command command) {
  for (const CommandSpec& spec : Commands()) {
    if (spec.command == command) return absl::StrJoin(spec.words, " ");
  }
  return "";
}

// Command flags given with another command; and flags that exclude each other.
absl::Status CheckCommandFlags(const std::vector<const FlagSpec*>& given,
                               const CliOptions& options) {
  for (const FlagSpec* flag : given) {
    if (flag->commands.empty()) continue;
    bool applies = false;
    for (Command command : flag->commands) applies = applies || command == options.command;
    if (!applies) {
      std::vector<std::string> names;
      for (Command command : flag->commands) names.push_back(CommandName(command));
      // "a", "a and b", "a, b and c".
      std::string list = names.back();
      if (names.size() > 1) {
        list = absl::StrCat(absl::StrJoin(names.begin(), names.end() - 1, ", "), " and ", list);
      }
      return absl::InvalidArgumentError(absl::StrCat(flag->name, " applies only to ", list,
                                                     ", not ", CommandName(options.command)));
    }
  }
  if (options.all_pages && !options.page_token.empty()) {
    return absl::InvalidArgumentError("--all and --page-token exclude each other");
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view MeshSortName(MeshSort sort) {
  switch (sort) {
    case MeshSort::kMesh:
      return "mesh";
    case MeshSort::kPeers:
      return "peers";
    case MeshSort::kTraffic:
      return "traffic";
  }
  return "mesh";
}

absl::StatusOr<CliOptions> ParseArgs(const std::vector<std::string>& args, const CliEnv& env) {
  CliOptions options;
  options.addr = IsSet(env.addr) ? env.addr : std::string(kDefaultAddr);
  if (IsSet(env.ca)) {
    options.ca_file = env.ca;
    options.tls = true;
  }
  std::optional<absl::Status> flag_error;  // first one; --help anywhere still wins
  if (IsSet(env.token)) {
    if (absl::Status status = CheckToken(env.token, absl::StrCat("$", kTokenEnvVar));
        !status.ok()) {
      flag_error = status;
    } else {
      options.token = env.token;
    }
  }

  std::vector<std::string> words;
  std::vector<const FlagSpec*> given;
  bool flags_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    // "-" alone and anything after "--" are words (a mesh id may start with "-").
    if (flags_done || arg == "-" || !absl::StartsWith(arg, "-")) {
      words.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (std::size_t eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }

    absl::Status status;
    const FlagSpec* flag = FindFlag(name);
    if (flag == nullptr) {
      status = absl::InvalidArgumentError(absl::StrCat("unknown flag \"", name, "\""));
    } else if (!flag->takes_value) {
      status = inline_value.has_value()
                   ? absl::InvalidArgumentError(absl::StrCat(name, " takes no value"))
                   : flag->set("", options);
    } else {
      absl::StatusOr<std::string> value = FlagValue(args, i, name, inline_value);
      status = value.ok() ? flag->set(*value, options) : value.status();
    }
    if (flag != nullptr) given.push_back(flag);
    if (!status.ok() && !flag_error.has_value()) flag_error = status;
  }

  if (options.help) return options;
  if (flag_error.has_value()) return *flag_error;
  // Like --help, needs no command (`relayctl --version`).
  if (options.version) return options;
  if (absl::Status status = ParseCommand(words, options); !status.ok()) return status;
  if (absl::Status status = CheckCommandFlags(given, options); !status.ok()) return status;
  return options;
}

std::string Usage() {
  return absl::StrCat(
      "Usage: relayctl [flags] COMMAND\n"
      "\n"
      "Commands:\n"
      "  meshes list [--page-size N] [--page-token T | --all] [--sort mesh|peers|traffic]\n"
      "                       live meshes: MESH PEERS AGE MESSAGES, a page of ",
      kDefaultPageSize,
      " by default\n"
      "                       (the next page's --page-token is printed; --all walks them)\n"
      "  meshes show MESH_ID  one mesh and its peers: transport, remote address,\n"
      "                       messages and bytes in/out, queued bytes; how it admits\n"
      "                       peers (open, token-bound since, grace left, or signed)\n"
      "  meshes close MESH_ID [--reason TEXT]\n"
      "                       close every peer of the mesh (error \"mesh_closed\")\n"
      "  meshes unbind MESH_ID [--reason TEXT]\n"
      "                       release the token binding of an empty mesh: its next\n"
      "                       registrant binds it anew (a lost token, a squatter)\n"
      "  peers kick MESH_ID NODE_ID [--reason TEXT]\n"
      "                       close one peer (error \"kicked\")\n"
      "  stats                relay counters, one \"key: value\" per line\n"
      "  health               grpc.health.v1 status (exit 0 only when SERVING)\n"
      "  drain [--grace SECONDS] [--reason TEXT]\n"
      "                       graceful shutdown: peers are told, closed after the grace\n"
      "                       (default: the relay's DRAIN_GRACE_SECONDS), the relay exits\n"
      "  log-level LEVEL [--reason TEXT]\n"
      "                       the relay's log level from now on: trace, debug, info,\n"
      "                       warn, error or off (the relay checks it)\n"
      "  (--reason is told to the peers closed, and logged by the relay with the action)\n"
      "\n"
      "Flags (anywhere on the line):\n"
      "  --addr HOST:PORT     Admin gRPC address (default: $",
      kAddrEnvVar, ", else ", kDefaultAddr,
      ")\n"
      "  --tls                talk TLS (the relay has TLS_CERT_FILE set)\n"
      "  --ca-file PEM        CA bundle to verify the relay with; implies --tls\n"
      "                       (default: $",
      kCaEnvVar,
      ", else the system's roots)\n"
      "  --token TOKEN        the relay's ADMIN_TOKEN, sent on every Admin call but health\n"
      "                       (default: $",
      kTokenEnvVar,
      ", which other local users cannot see in ps)\n"
      "  --json               machine-readable JSON on stdout, one document\n"
      "  --timeout SECONDS    deadline of each call (default: ",
      absl::ToDoubleSeconds(kDefaultTimeout),
      ")\n"
      "  --version            relayctl's version and git commit\n"
      "  --help, -h           this text\n"
      "  --                   ends flags (for an id starting with \"-\")\n"
      "\n"
      "Exit codes: 0 ok, 1 remote error (not found, not serving, refused: bad token,\n"
      "            already draining, bad level...), 2 usage error,\n"
      "            3 cannot reach the relay.\n");
}

}  // namespace relay::cli
