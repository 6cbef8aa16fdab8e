// Tests for admin-cli/cli.cc: what the process does with its arguments and
// environment: usage errors exit 2, --help exits 0, the address reaches the
// channel (flag, then $RELAY_ADMIN_ADDR, then the default), the token reaches
// the relay (flag, then $RELAY_ADMIN_TOKEN) and is never printed.
#include "admin-cli/cli.h"

#include <sstream>
#include <string>
#include <vector>

#include "admin-cli/commands.h"
#include "gtest/gtest.h"
#include "tests/admin-cli/fake_admin_server.h"

namespace relay::cli {
namespace {

class CliTest : public ::testing::Test {
 protected:
  int Run(const std::vector<std::string>& args, const char* env_addr = nullptr,
          const char* env_token = nullptr) {
    auto make_channel = [this](const std::string& target) {
      targets_.push_back(target);
      return server_.Channel();
    };
    return RunCli(args, CliEnv{env_addr, nullptr, env_token}, make_channel, absl::Now(), out_,
                  err_);
  }

  testing::FakeAdminServer server_;
  std::vector<std::string> targets_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CliTest, BadUsageExits2WithMessageAndUsageOnStderr) {
  EXPECT_EQ(Run({"meshes", "show"}), kExitUsage);
  EXPECT_EQ(err_.str().rfind("relayctl: meshes show: missing MESH_ID\n", 0), 0u) << err_.str();
  EXPECT_NE(err_.str().find("Usage: relayctl"), std::string::npos);
  EXPECT_EQ(out_.str(), "");
  EXPECT_TRUE(targets_.empty()) << "no connection on a usage error";
}

TEST_F(CliTest, BadUsageUnderJsonAlsoPrintsAnErrorObjectOnStdout) {
  EXPECT_EQ(Run({"--json", "meshes", "show"}), kExitUsage);
  EXPECT_EQ(out_.str(),
            "{\"error\":{\"code\":\"usage\",\"message\":\"meshes show: missing MESH_ID\"}}\n");
  EXPECT_NE(err_.str().find("Usage: relayctl"), std::string::npos);
  // After "--" it is a word, not the flag.
  out_.str("");
  EXPECT_EQ(Run({"stats", "--", "--json"}), kExitUsage);
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CliTest, NoArgumentsIsAUsageError) {
  EXPECT_EQ(Run({}), kExitUsage);
  EXPECT_NE(err_.str().find("Usage: relayctl"), std::string::npos);
}

TEST_F(CliTest, HelpExits0WithUsageOnStdout) {
  EXPECT_EQ(Run({"stats", "--help"}), kExitOk);
  EXPECT_EQ(out_.str().rfind("Usage: relayctl", 0), 0u);
  EXPECT_EQ(err_.str(), "");
  EXPECT_TRUE(targets_.empty());
}

TEST_F(CliTest, VersionExits0WithoutConnecting) {
  EXPECT_EQ(Run({"--version"}), kExitOk);
  EXPECT_EQ(out_.str().rfind("relayctl 1.", 0), 0u) << out_.str();
  EXPECT_NE(out_.str().find(" (commit "), std::string::npos) << out_.str();
  EXPECT_EQ(err_.str(), "");
  EXPECT_TRUE(targets_.empty());
}

TEST_F(CliTest, VersionAsJson) {
  EXPECT_EQ(Run({"--version", "--json"}), kExitOk);
  EXPECT_EQ(out_.str().rfind("{\"version\":\"1.", 0), 0u) << out_.str();
  EXPECT_NE(out_.str().find(",\"commit\":\""), std::string::npos) << out_.str();
}

TEST_F(CliTest, DefaultAddress) {
  EXPECT_EQ(Run({"health"}), kExitOk);
  EXPECT_EQ(targets_, std::vector<std::string>{"127.0.0.1:50051"});
}

TEST_F(CliTest, AddressFromEnvironment) {
  EXPECT_EQ(Run({"health"}, "relay.internal:7000"), kExitOk);
  EXPECT_EQ(targets_, std::vector<std::string>{"relay.internal:7000"});
}

TEST_F(CliTest, AddressFlagAfterCommandWinsOverEnvironment) {
  EXPECT_EQ(Run({"health", "--addr", "flag:1"}, "env:2"), kExitOk);
  EXPECT_EQ(targets_, std::vector<std::string>{"flag:1"});
}

TEST_F(CliTest, JsonFlagBeforeCommand) {
  EXPECT_EQ(Run({"--json", "health"}), kExitOk);
  EXPECT_EQ(out_.str(), "{\"status\":\"SERVING\"}\n");
}

TEST_F(CliTest, TokenFromEnvironmentIsSentAsBearer) {
  server_.admin.required_token = "s3cret";
  EXPECT_EQ(Run({"stats"}, nullptr, "s3cret"), kExitOk) << err_.str();
  EXPECT_EQ(server_.admin.authorizations, std::vector<std::string>{"Bearer s3cret"});
}

TEST_F(CliTest, TokenFlagWinsOverEnvironment) {
  server_.admin.required_token = "right";
  EXPECT_EQ(Run({"--token", "right", "meshes", "list"}, nullptr, "wrong"), kExitOk) << err_.str();
  EXPECT_EQ(server_.admin.authorizations, std::vector<std::string>{"Bearer right"});
}

TEST_F(CliTest, WrongTokenExits1WithoutPrintingIt) {
  server_.admin.required_token = "right";
  EXPECT_EQ(Run({"stats"}, nullptr, "hunter2"), kExitRemoteError);
  EXPECT_EQ(err_.str().find("hunter2"), std::string::npos) << err_.str();
  EXPECT_EQ(out_.str().find("hunter2"), std::string::npos) << out_.str();
  EXPECT_NE(err_.str().find("the token given was refused"), std::string::npos) << err_.str();
}

TEST_F(CliTest, BadTokenIsAUsageErrorThatDoesNotEchoIt) {
  EXPECT_EQ(Run({"stats"}, nullptr, "hunter\t2"), kExitUsage);
  EXPECT_EQ(err_.str().find("hunter"), std::string::npos) << err_.str();
  EXPECT_TRUE(targets_.empty());
}

TEST_F(CliTest, HealthWorksWithoutTheToken) {
  server_.admin.required_token = "s3cret";
  EXPECT_EQ(Run({"health"}), kExitOk);
  EXPECT_EQ(out_.str(), "SERVING\n");
}

}  // namespace
}  // namespace relay::cli
