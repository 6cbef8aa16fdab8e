// relayctl's argument parser: flags anywhere, then the command words checked
// against the command table (see args.h).
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

// Matches the command words against the command table.
absl::Status ParseCommand(const std::vector<std::string>& words, CliOptions& options) {
  if (words.empty()) return absl::InvalidArgumentError("missing command");
  auto too_many = [&](std::size_t expected) -> absl::Status {
    if (words.size() <= expected) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", words[expected], "\" after \"",
                     absl::StrJoin(words.begin(), words.begin() + expected, " "), "\""));
  };
  const std::string& verb = words[0];
  if (verb == "stats") {
    options.command = Command::kStats;
    return too_many(1);
  }
  if (verb == "health") {
    options.command = Command::kHealth;
    return too_many(1);
  }
  if (verb != "meshes") {
    return absl::InvalidArgumentError(absl::StrCat("unknown command \"", verb, "\""));
  }
  if (words.size() < 2) return absl::InvalidArgumentError("meshes: expected \"list\" or \"show\"");
  if (words[1] == "list") {
    options.command = Command::kMeshesList;
    return too_many(2);
  }
  if (words[1] == "show") {
    if (words.size() < 3) return absl::InvalidArgumentError("meshes show: missing MESH_ID");
    options.command = Command::kMeshesShow;
    options.mesh_id = words[2];
    return too_many(3);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("meshes: unknown subcommand \"", words[1], "\" (expected list or show)"));
}

}  // namespace

absl::StatusOr<CliOptions> ParseArgs(const std::vector<std::string>& args, const char* env_addr,
                                     const char* env_ca) {
  CliOptions options;
  options.addr = (env_addr != nullptr && *env_addr != '\0') ? env_addr : std::string(kDefaultAddr);
  if (env_ca != nullptr && *env_ca != '\0') {
    options.ca_file = env_ca;
    options.tls = true;
  }

  std::vector<std::string> words;
  std::optional<absl::Status> flag_error;  // first one; --help anywhere still wins
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
    if (name == "--help" || name == "-h") {
      options.help = true;
    } else if (name == "--json") {
      if (inline_value.has_value()) status = absl::InvalidArgumentError("--json takes no value");
      options.json = true;
    } else if (name == "--tls") {
      if (inline_value.has_value()) status = absl::InvalidArgumentError("--tls takes no value");
      options.tls = true;
    } else if (name == "--ca-file") {
      absl::StatusOr<std::string> value = FlagValue(args, i, name, inline_value);
      if (!value.ok()) {
        status = value.status();
      } else if (value->empty()) {
        status = absl::InvalidArgumentError("--ca-file must not be empty");
      } else {
        options.ca_file = *std::move(value);
        options.tls = true;
      }
    } else if (name == "--addr") {
      absl::StatusOr<std::string> value = FlagValue(args, i, name, inline_value);
      if (!value.ok()) {
        status = value.status();
      } else if (value->empty()) {
        status = absl::InvalidArgumentError("--addr must not be empty");
      } else {
        options.addr = *std::move(value);
      }
    } else if (name == "--timeout") {
      absl::StatusOr<std::string> value = FlagValue(args, i, name, inline_value);
      absl::StatusOr<absl::Duration> timeout =
          value.ok() ? ParseTimeout(*value) : absl::StatusOr<absl::Duration>(value.status());
      if (timeout.ok()) {
        options.timeout = *timeout;
      } else {
        status = timeout.status();
      }
    } else {
      status = absl::InvalidArgumentError(absl::StrCat("unknown flag \"", name, "\""));
    }
    if (!status.ok() && !flag_error.has_value()) flag_error = status;
  }

  if (options.help) return options;
  if (flag_error.has_value()) return *flag_error;
  if (absl::Status status = ParseCommand(words, options); !status.ok()) return status;
  return options;
}

std::string Usage() {
  return absl::StrCat(
      "Usage: relayctl [flags] COMMAND\n"
      "\n"
      "Commands:\n"
      "  meshes list          live meshes: MESH PEERS AGE MESSAGES\n"
      "  meshes show MESH_ID  one mesh and its peers (exit 1 when no such mesh)\n"
      "  stats                relay counters, one \"key: value\" per line\n"
      "  health               grpc.health.v1 status (exit 0 only when SERVING)\n"
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
      "  --json               machine-readable JSON on stdout\n"
      "  --timeout SECONDS    deadline of each call (default: ",
      absl::ToDoubleSeconds(kDefaultTimeout),
      ")\n"
      "  --help, -h           this text\n"
      "  --                   ends flags (for a MESH_ID starting with \"-\")\n"
      "\n"
      "Exit codes: 0 ok, 1 remote error (not found, not serving), 2 usage error,\n"
      "            3 cannot reach the relay.\n");
}

}  // namespace relay::cli
