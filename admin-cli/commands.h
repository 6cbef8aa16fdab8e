// The relayctl commands: one Admin or Health rpc each, the answer printed as
// a table or JSON, and the process exit code. Output goes to the streams
// given and the channel is passed in, so tests run the commands against an
// in-process server.
#ifndef RELAY_ADMIN_CLI_COMMANDS_H_
#define RELAY_ADMIN_CLI_COMMANDS_H_

#include <grpcpp/impl/channel_interface.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <ostream>

#include "absl/time/time.h"
#include "admin-cli/args.h"

namespace relay::cli {

// relayctl's exit codes (the spec's relayctl section).
enum ExitCode : int {
  kExitOk = 0,
  kExitRemoteError = 1,  // the relay answered: not found, not serving, other errors
  kExitUsage = 2,        // bad command line
  kExitUnreachable = 3,  // no answer: connection failed or deadline passed
};

// kExitUnreachable for UNAVAILABLE and DEADLINE_EXCEEDED, kExitOk for OK,
// kExitRemoteError for every other code.
int ExitCodeFor(const grpc::Status& status);

// Runs `options.command` against the relay behind `channel`: the result goes
// to `out`, diagnostics (one "relayctl: ..." line) to `err`. `now` dates the
// ages of the human output. Returns the exit code.
int RunCommand(const CliOptions& options, const std::shared_ptr<grpc::ChannelInterface>& channel,
               absl::Time now, std::ostream& out, std::ostream& err);

}  // namespace relay::cli

#endif  // RELAY_ADMIN_CLI_COMMANDS_H_
