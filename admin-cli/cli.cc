// relayctl's top level: parse, then help, usage error or command (see cli.h).
#include "admin-cli/cli.h"

#include "absl/status/statusor.h"
#include "admin-cli/args.h"
#include "admin-cli/commands.h"

namespace relay::cli {

int RunCli(const std::vector<std::string>& args, const char* env_addr,
           const ChannelFactory& make_channel, absl::Time now, std::ostream& out,
           std::ostream& err) {
  absl::StatusOr<CliOptions> options = ParseArgs(args, env_addr);
  if (!options.ok()) {
    err << "relayctl: " << options.status().message() << "\n\n" << Usage();
    return kExitUsage;
  }
  if (options->help) {
    out << Usage();
    return kExitOk;
  }
  return RunCommand(*options, make_channel(options->addr), now, out, err);
}

}  // namespace relay::cli
