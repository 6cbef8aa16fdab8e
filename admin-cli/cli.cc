// relayctl's top level: parse, then help, usage error or command (see cli.h).
#include "admin-cli/cli.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "admin-cli/commands.h"
#include "admin-cli/json_output.h"
#include "cmd/relay/build_info.h"

namespace relay::cli {
namespace {

// --json among the flags of a command line ParseArgs refused: its usage error
// is then a JSON document on stdout too.
bool AsksForJson(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--") return false;
    if (arg == "--json") return true;
  }
  return false;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, const CliEnv& env,
           const SecureChannelFactory& make_channel, absl::Time now, std::ostream& out,
           std::ostream& err) {
  absl::StatusOr<CliOptions> options = ParseArgs(args, env);
  if (!options.ok()) {
    err << "relayctl: " << options.status().message() << "\n\n" << Usage();
    if (AsksForJson(args)) out << JsonError("usage", options.status().message());
    return kExitUsage;
  }
  if (options->help) {
    out << Usage();
    return kExitOk;
  }
  if (options->version) {
    if (options->json) {
      JsonObject json;
      json.Add("version", build_info::Version()).Add("commit", build_info::Commit());
      out << json.ToString();
    } else {
      out << build_info::VersionLine("relayctl") << "\n";
    }
    return kExitOk;
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelInterface>> channel = make_channel(*options);
  if (!channel.ok()) {
    err << "relayctl: " << channel.status().message() << "\n";
    if (options->json) out << JsonError("usage", channel.status().message());
    return kExitUsage;
  }
  return RunCommand(*options, *channel, now, out, err);
}

int RunCli(const std::vector<std::string>& args, const CliEnv& env,
           const ChannelFactory& make_channel, absl::Time now, std::ostream& out,
           std::ostream& err) {
  return RunCli(
      args, env,
      [&make_channel](
          const CliOptions& options) -> absl::StatusOr<std::shared_ptr<grpc::ChannelInterface>> {
        return make_channel(options.addr);
      },
      now, out, err);
}

CliEnv ProcessEnv() {
  return CliEnv{std::getenv(kAddrEnvVar), std::getenv(kCaEnvVar), std::getenv(kTokenEnvVar)};
}

absl::StatusOr<std::shared_ptr<grpc::ChannelInterface>> OpenChannel(const CliOptions& options) {
  if (!options.tls) {
    // The Admin API listens on loopback without TLS unless the relay has a certificate.
    return grpc::CreateChannel(options.addr, grpc::InsecureChannelCredentials());
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    std::ifstream file(options.ca_file, std::ios::binary);
    std::stringstream pem;
    pem << file.rdbuf();
    if (!file || pem.str().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--ca-file ", options.ca_file, ": cannot read it"));
    }
    ssl.pem_root_certs = pem.str();
  }
  return grpc::CreateChannel(options.addr, grpc::SslCredentials(ssl));
}

}  // namespace relay::cli
