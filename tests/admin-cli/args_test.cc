// Tests for admin-cli/args.cc: flags anywhere, address fallback order,
// and every kind of usage error.
#include "admin-cli/args.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace relay::cli {
namespace {

CliOptions ParseOk(const std::vector<std::string>& args, const char* env = nullptr) {
  absl::StatusOr<CliOptions> options = ParseArgs(args, env);
  EXPECT_TRUE(options.ok()) << options.status();
  return options.ok() ? *options : CliOptions{};
}

void ExpectUsageError(const std::vector<std::string>& args, const std::string& message_part) {
  absl::StatusOr<CliOptions> options = ParseArgs(args, nullptr);
  ASSERT_FALSE(options.ok());
  EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(options.status().message().find(message_part), std::string::npos)
      << options.status().message();
}

TEST(ParseArgsTest, DefaultsWithoutFlagsOrEnv) {
  CliOptions options = ParseOk({"stats"});
  EXPECT_EQ(options.command, Command::kStats);
  EXPECT_EQ(options.addr, "127.0.0.1:50051");
  EXPECT_FALSE(options.json);
  EXPECT_EQ(options.timeout, absl::Seconds(5));
  EXPECT_FALSE(options.help);
}

TEST(ParseArgsTest, EveryCommand) {
  EXPECT_EQ(ParseOk({"meshes", "list"}).command, Command::kMeshesList);
  EXPECT_EQ(ParseOk({"stats"}).command, Command::kStats);
  EXPECT_EQ(ParseOk({"health"}).command, Command::kHealth);
  CliOptions show = ParseOk({"meshes", "show", "lobby"});
  EXPECT_EQ(show.command, Command::kMeshesShow);
  EXPECT_EQ(show.mesh_id, "lobby");
}

TEST(ParseArgsTest, FlagsBeforeBetweenAndAfterCommandWords) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--json", "--addr", "h:1", "--timeout", "2", "meshes", "show", "m"},
           {"meshes", "--json", "show", "--addr", "h:1", "m", "--timeout", "2"},
           {"meshes", "show", "m", "--timeout=2", "--addr=h:1", "--json"},
       }) {
    CliOptions options = ParseOk(args);
    EXPECT_EQ(options.command, Command::kMeshesShow);
    EXPECT_EQ(options.mesh_id, "m");
    EXPECT_EQ(options.addr, "h:1");
    EXPECT_TRUE(options.json);
    EXPECT_EQ(options.timeout, absl::Seconds(2));
  }
}

TEST(ParseArgsTest, AddrFromEnvWhenNoFlag) {
  EXPECT_EQ(ParseOk({"stats"}, "relay.internal:7000").addr, "relay.internal:7000");
}

TEST(ParseArgsTest, AddrFlagWinsOverEnv) {
  EXPECT_EQ(ParseOk({"stats", "--addr", "flag:1"}, "env:2").addr, "flag:1");
}

TEST(ParseArgsTest, EmptyEnvCountsAsUnset) {
  EXPECT_EQ(ParseOk({"stats"}, "").addr, "127.0.0.1:50051");
}

TEST(ParseArgsTest, LastRepeatedFlagWins) {
  EXPECT_EQ(ParseOk({"--addr", "a:1", "stats", "--addr", "b:2"}).addr, "b:2");
}

TEST(ParseArgsTest, FractionalTimeout) {
  EXPECT_EQ(ParseOk({"stats", "--timeout", "0.5"}).timeout, absl::Milliseconds(500));
}

TEST(ParseArgsTest, DoubleDashLetsAMeshIdStartWithADash) {
  CliOptions options = ParseOk({"meshes", "show", "--json", "--", "-odd-mesh"});
  EXPECT_EQ(options.mesh_id, "-odd-mesh");
  EXPECT_TRUE(options.json);
}

TEST(ParseArgsTest, HelpAnywhereWinsEvenOverErrors) {
  EXPECT_TRUE(ParseOk({"--help"}).help);
  EXPECT_TRUE(ParseOk({"meshes", "show", "-h"}).help);
  EXPECT_TRUE(ParseOk({"bogus", "--timeout", "x", "--help"}).help);
}

TEST(ParseArgsTest, UsageErrors) {
  ExpectUsageError({}, "missing command");
  ExpectUsageError({"--json"}, "missing command");
  ExpectUsageError({"frobnicate"}, "unknown command \"frobnicate\"");
  ExpectUsageError({"meshes"}, "expected \"list\" or \"show\"");
  ExpectUsageError({"meshes", "delete"}, "unknown subcommand \"delete\"");
  ExpectUsageError({"meshes", "show"}, "missing MESH_ID");
  ExpectUsageError({"meshes", "show", "a", "b"}, "unexpected argument \"b\"");
  ExpectUsageError({"meshes", "list", "extra"}, "unexpected argument \"extra\"");
  ExpectUsageError({"stats", "now"}, "unexpected argument \"now\"");
  ExpectUsageError({"stats", "--verbose"}, "unknown flag \"--verbose\"");
  ExpectUsageError({"stats", "--addr"}, "--addr needs a value");
  ExpectUsageError({"stats", "--addr="}, "--addr must not be empty");
  ExpectUsageError({"stats", "--timeout"}, "--timeout needs a value");
  ExpectUsageError({"stats", "--json=yes"}, "--json takes no value");
}

TEST(ParseArgsTest, TimeoutMustBeAPositiveNumber) {
  for (const char* bad : {"abc", "0", "-1", "nan", "inf", "5s", ""}) {
    ExpectUsageError({"stats", "--timeout", bad}, "--timeout wants a positive number");
  }
}

TEST(UsageTest, NamesEveryCommandAndFlag) {
  const std::string usage = Usage();
  for (const char* part :
       {"meshes list", "meshes show MESH_ID", "stats", "health", "--addr", "--json", "--timeout",
        "--help", "RELAY_ADMIN_ADDR", "127.0.0.1:50051"}) {
    EXPECT_NE(usage.find(part), std::string::npos) << part;
  }
}

}  // namespace
}  // namespace relay::cli
