// relayctl: the operator CLI for the relay's Admin gRPC API. main only hands
// the process's arguments, environment and streams to RunCli (cli.h).
#include <iostream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "admin-cli/cli.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  return relay::cli::RunCli(args, relay::cli::ProcessEnv(), relay::cli::OpenChannel, absl::Now(),
                            std::cout, std::cerr);
}
