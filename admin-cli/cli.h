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

#include "absl/time/time.h"

namespace relay::cli {

// Opens a channel to "HOST:PORT" (or any gRPC target string).
using ChannelFactory =
    std::function<std::shared_ptr<grpc::ChannelInterface>(const std::string& target)>;

// `args` is argv without the program name, `env_addr` $RELAY_ADMIN_ADDR (null
// when unset). Returns the exit code (commands.h): usage errors print the
// message and the usage text to `err` and return kExitUsage.
int RunCli(const std::vector<std::string>& args, const char* env_addr,
           const ChannelFactory& make_channel, absl::Time now, std::ostream& out,
           std::ostream& err);

}  // namespace relay::cli

#endif  // RELAY_ADMIN_CLI_CLI_H_
