// Tests for admin-cli/args.cc: flags anywhere, address and token fallback
// order, command flags, and every kind of usage error.
#include "admin-cli/args.h"

#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"

namespace relay::cli {
namespace {

CliOptions ParseOk(const std::vector<std::string>& args, const CliEnv& env = {}) {
  absl::StatusOr<CliOptions> options = ParseArgs(args, env);
  EXPECT_TRUE(options.ok()) << options.status();
  return options.ok() ? *options : CliOptions{};
}

void ExpectUsageError(const std::vector<std::string>& args, const std::string& message_part,
                      const CliEnv& env = {}) {
  absl::StatusOr<CliOptions> options = ParseArgs(args, env);
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
  EXPECT_EQ(options.token, "");
  EXPECT_EQ(options.page_size, 50u);
  EXPECT_EQ(options.page_token, "");
  EXPECT_FALSE(options.all_pages);
  EXPECT_EQ(options.sort, MeshSort::kMesh);
  EXPECT_EQ(options.grace_seconds, 0u);
}

TEST(ParseArgsTest, EveryCommand) {
  EXPECT_EQ(ParseOk({"meshes", "list"}).command, Command::kMeshesList);
  EXPECT_EQ(ParseOk({"stats"}).command, Command::kStats);
  EXPECT_EQ(ParseOk({"health"}).command, Command::kHealth);
  EXPECT_EQ(ParseOk({"drain"}).command, Command::kDrain);
  CliOptions show = ParseOk({"meshes", "show", "lobby"});
  EXPECT_EQ(show.command, Command::kMeshesShow);
  EXPECT_EQ(show.mesh_id, "lobby");
  CliOptions close = ParseOk({"meshes", "close", "lobby"});
  EXPECT_EQ(close.command, Command::kMeshesClose);
  EXPECT_EQ(close.mesh_id, "lobby");
  EXPECT_EQ(close.reason, "");
  CliOptions kick = ParseOk({"peers", "kick", "lobby", "alice"});
  EXPECT_EQ(kick.command, Command::kPeersKick);
  EXPECT_EQ(kick.mesh_id, "lobby");
  EXPECT_EQ(kick.node_id, "alice");
  CliOptions level = ParseOk({"log-level", "DEBUG"});
  EXPECT_EQ(level.command, Command::kLogLevel);
  EXPECT_EQ(level.log_level, "DEBUG") << "passed as typed: the relay judges it";
}

TEST(ParseArgsTest, MeshesListPaging) {
  CliOptions options = ParseOk({"meshes", "list", "--page-size", "2", "--sort", "traffic"});
  EXPECT_EQ(options.page_size, 2u);
  EXPECT_EQ(options.sort, MeshSort::kTraffic);
  EXPECT_EQ(ParseOk({"meshes", "list", "--page-token=4"}).page_token, "4");
  EXPECT_TRUE(ParseOk({"--all", "meshes", "list"}).all_pages);
  EXPECT_EQ(ParseOk({"meshes", "list", "--sort", "peers"}).sort, MeshSort::kPeers);
  EXPECT_EQ(ParseOk({"meshes", "list", "--sort", "mesh"}).sort, MeshSort::kMesh);
  EXPECT_EQ(ParseOk({"meshes", "list", "--page-size", "10000"}).page_size, 10000u);
}

TEST(ParseArgsTest, ReasonForKickAndClose) {
  EXPECT_EQ(ParseOk({"peers", "kick", "m", "n", "--reason", "spamming"}).reason, "spamming");
  EXPECT_EQ(ParseOk({"meshes", "close", "--reason=maintenance", "m"}).reason, "maintenance");
}

TEST(ParseArgsTest, DrainGrace) {
  EXPECT_EQ(ParseOk({"drain", "--grace", "30"}).grace_seconds, 30u);
  EXPECT_EQ(ParseOk({"drain", "--grace", "86400"}).grace_seconds, 86400u);
}

TEST(ParseArgsTest, TokenFromFlagElseEnvironment) {
  EXPECT_EQ(ParseOk({"stats", "--token", "s3cret"}).token, "s3cret");
  EXPECT_EQ(ParseOk({"stats"}, CliEnv{nullptr, nullptr, "from-env"}).token, "from-env");
  EXPECT_EQ(ParseOk({"stats", "--token=flag"}, CliEnv{nullptr, nullptr, "env"}).token, "flag");
  EXPECT_EQ(ParseOk({"stats"}, CliEnv{nullptr, nullptr, ""}).token, "") << "empty is unset";
}

TEST(ParseArgsTest, BadTokenMessageNamesTheSourceNotTheToken) {
  for (const auto& [args, env, source] :
       std::vector<std::tuple<std::vector<std::string>, CliEnv, std::string>>{
           {{"stats", "--token", "sec\nret"}, CliEnv{}, "--token"},
           {{"stats"}, CliEnv{nullptr, nullptr, "sec\x7fret"}, "$RELAY_ADMIN_TOKEN"},
       }) {
    absl::StatusOr<CliOptions> options = ParseArgs(args, env);
    ASSERT_FALSE(options.ok());
    EXPECT_EQ(options.status().message().find("sec"), std::string::npos)
        << options.status().message();
    EXPECT_NE(options.status().message().find(source + " must be printable ASCII"),
              std::string::npos)
        << options.status().message();
  }
  ExpectUsageError({"stats", "--token="}, "--token must not be empty");
}

TEST(ParseArgsTest, CommandFlagsWithAnotherCommandAreUsageErrors) {
  ExpectUsageError({"stats", "--grace", "5"}, "--grace applies only to drain, not stats");
  ExpectUsageError({"meshes", "show", "m", "--all"},
                   "--all applies only to meshes list, not meshes show");
  ExpectUsageError(
      {"stats", "--reason", "x"},
      "--reason applies only to meshes close, meshes unbind, peers kick, drain and log-level, not "
      "stats");
  ExpectUsageError({"health", "--sort", "peers"}, "--sort applies only to meshes list");
  ExpectUsageError({"meshes", "list", "--page-token", "2", "--all"},
                   "--all and --page-token exclude each other");
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
  EXPECT_EQ(ParseOk({"stats"}, CliEnv{"relay.internal:7000"}).addr, "relay.internal:7000");
}

TEST(ParseArgsTest, AddrFlagWinsOverEnv) {
  EXPECT_EQ(ParseOk({"stats", "--addr", "flag:1"}, CliEnv{"env:2"}).addr, "flag:1");
}

TEST(ParseArgsTest, EmptyEnvCountsAsUnset) {
  EXPECT_EQ(ParseOk({"stats"}, CliEnv{""}).addr, "127.0.0.1:50051");
}

TEST(ParseArgsTest, CaFileFromEnvImpliesTls) {
  CliOptions options = ParseOk({"stats"}, CliEnv{nullptr, "/etc/relay/ca.pem"});
  EXPECT_TRUE(options.tls);
  EXPECT_EQ(options.ca_file, "/etc/relay/ca.pem");
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

TEST(ParseArgsTest, VersionNeedsNoCommandButFlagErrorsStillCount) {
  EXPECT_TRUE(ParseOk({"--version"}).version);
  CliOptions json = ParseOk({"--json", "--version"});
  EXPECT_TRUE(json.version && json.json);
  EXPECT_EQ(ParseOk({"--version"}).command, Command::kNone);
  ExpectUsageError({"--version", "--timeout", "x"}, "--timeout wants a positive number");
  ExpectUsageError({"--version=1"}, "--version takes no value");
}

TEST(ParseArgsTest, ReasonGoesWithEveryAction) {
  EXPECT_EQ(ParseOk({"drain", "--reason", "kernel upgrade"}).reason, "kernel upgrade");
  EXPECT_EQ(ParseOk({"log-level", "debug", "--reason=bug 42"}).reason, "bug 42");
  EXPECT_EQ(ParseOk({"peers", "kick", "m", "n", "--reason", "lost"}).reason, "lost");
}

TEST(ParseArgsTest, UsageErrors) {
  ExpectUsageError({}, "missing command");
  ExpectUsageError({"--json"}, "missing command");
  ExpectUsageError({"frobnicate"}, "unknown command \"frobnicate\"");
  ExpectUsageError({"meshes"}, "meshes: expected list, show, close or unbind");
  ExpectUsageError({"meshes", "delete"},
                   "meshes: unknown subcommand \"delete\" (expected list, show, close or unbind)");
  ExpectUsageError({"peers"}, "peers: expected kick");
  ExpectUsageError({"peers", "list"}, "peers: unknown subcommand \"list\"");
  ExpectUsageError({"peers", "kick"}, "peers kick: missing MESH_ID");
  ExpectUsageError({"peers", "kick", "m"}, "peers kick: missing NODE_ID");
  ExpectUsageError({"peers", "kick", "m", "n", "o"}, "unexpected argument \"o\"");
  ExpectUsageError({"meshes", "close"}, "meshes close: missing MESH_ID");
  ExpectUsageError({"log-level"}, "log-level: missing LEVEL");
  ExpectUsageError({"log-level", "debug", "now"}, "unexpected argument \"now\"");
  ExpectUsageError({"drain", "now"}, "unexpected argument \"now\"");
  ExpectUsageError({"meshes", "close", "m", "--reason="}, "--reason must not be empty");
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

TEST(ParseArgsTest, PageSizeIsAWholeNumberUpToTheMaximum) {
  for (const char* bad : {"0", "-1", "abc", "10001", "2.5", ""}) {
    ExpectUsageError({"meshes", "list", "--page-size", bad},
                     "--page-size wants a whole number from 1 to 10000");
  }
}

TEST(ParseArgsTest, GraceIsWholeSecondsUpToADay) {
  for (const char* bad : {"0", "-5", "soon", "86401", "1.5"}) {
    ExpectUsageError({"drain", "--grace", bad}, "--grace wants a whole number from 1 to 86400");
  }
}

TEST(ParseArgsTest, SortIsMeshPeersOrTraffic) {
  ExpectUsageError({"meshes", "list", "--sort", "age"},
                   "--sort wants mesh, peers or traffic, got \"age\"");
}

TEST(UsageTest, NamesEveryCommandAndFlag) {
  const std::string usage = Usage();
  for (const char* part : {"meshes list",
                           "meshes show MESH_ID",
                           "meshes close MESH_ID",
                           "peers kick MESH_ID NODE_ID",
                           "stats",
                           "health",
                           "drain [--grace SECONDS]",
                           "log-level LEVEL",
                           "--page-size",
                           "--page-token",
                           "--all",
                           "--sort mesh|peers|traffic",
                           "--reason TEXT",
                           "--token TOKEN",
                           "RELAY_ADMIN_TOKEN",
                           "--addr",
                           "--json",
                           "--timeout",
                           "--help",
                           "RELAY_ADMIN_ADDR",
                           "127.0.0.1:50051"}) {
    EXPECT_NE(usage.find(part), std::string::npos) << part;
  }
}

}  // namespace
}  // namespace relay::cli
