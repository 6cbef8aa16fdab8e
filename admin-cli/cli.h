// RunCli: all of relayctl but the process itself: parse the command line,
// print usage or a usage error, open the channel, run the command. main.cc
// hands it argv, the environment and real streams; tests hand it strings and
// an in-process channel.
#ifndef RELAY_ADMIN_CLI_CLI_H_
#define RELAY_ADMIN_CLI_CLI_H_

#include <grpcpp/impl/channel_interface.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "admin-cli/args.h"

namespace relay::cli {

// Opens a channel to "HOST:PORT" (or any gRPC target string).
using ChannelFactory =
    std::function<std::shared_ptr<grpc::ChannelInterface>(const std::string& target)>;

// Opens a channel as the options ask (address, TLS, CA file). An error (an
// unreadable CA file) makes relayctl print it and exit kExitUsage.
using SecureChannelFactory =
    std::function<absl::StatusOr<std::shared_ptr<grpc::ChannelInterface>>(const CliOptions&)>;

// `args` is argv without the program name, `env` the environment variables
// relayctl reads. Returns the exit code (commands.h): usage errors print the
// message and the usage text to `err` and return kExitUsage.
int RunCli(const std::vector<std::string>& args, const CliEnv& env,
           const SecureChannelFactory& make_channel, absl::Time now, std::ostream& out,
           std::ostream& err);

// The same, for callers that only pick the target (tests with an in-process
// channel): transport security is theirs.
int RunCli(const std::vector<std::string>& args, const CliEnv& env,
           const ChannelFactory& make_channel, absl::Time now, std::ostream& out,
           std::ostream& err);

// $RELAY_ADMIN_ADDR, $RELAY_ADMIN_CA and $RELAY_ADMIN_TOKEN of this process.
CliEnv ProcessEnv();

// relayctl's real channel: plaintext, or TLS verifying the relay against
// options.ca_file (else the system's roots).
absl::StatusOr<std::shared_ptr<grpc::ChannelInterface>> OpenChannel(const CliOptions& options);

}  // namespace relay::cli

#endif  // RELAY_ADMIN_CLI_CLI_H_
