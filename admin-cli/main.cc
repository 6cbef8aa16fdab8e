// relayctl: the operator CLI for the relay's Admin gRPC API. main only hands
// the process's arguments, environment and streams to RunCli (cli.h).
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "admin-cli/args.h"
#include "admin-cli/cli.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  // The Admin API listens on loopback without TLS (spec: 127.0.0.1:50051).
  auto make_channel = [](const std::string& target) -> std::shared_ptr<grpc::ChannelInterface> {
    return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  };
  return relay::cli::RunCli(args, std::getenv(relay::cli::kAddrEnvVar), make_channel, absl::Now(),
                            std::cout, std::cerr);
}
