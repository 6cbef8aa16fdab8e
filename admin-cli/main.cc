// relayctl: the operator CLI for the relay's Admin gRPC API. main only hands
// the process's arguments, environment and streams to RunCli (cli.h).
#include <grpc/support/log.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "admin-cli/cli.h"

int main(int argc, char** argv) {
  // gRPC's own log lines ("E1203 ... Handshake failed ...") would come before
  // relayctl's one-line report, which already carries gRPC's reason. Asked for
  // with GRPC_VERBOSITY (debugging a connection), they stay.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function([](gpr_log_func_args*) {});
  const std::vector<std::string> args(argv + 1, argv + argc);
  return relay::cli::RunCli(args, relay::cli::ProcessEnv(), relay::cli::OpenChannel, absl::Now(),
                            std::cout, std::cerr);
}
