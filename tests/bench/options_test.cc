// Tests of bench/relay-bench/options: modes, defaults per mode, refusals, the
// --servers list and where clients go on several servers.
#include "bench/relay-bench/options.h"

#include <vector>

#include "gtest/gtest.h"

namespace relay::bench {
namespace {

bool Parse(std::vector<std::string> args, BenchOptions* o, std::string* error) {
  args.insert(args.begin(), "relay-bench");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  bool help = false;
  return ParseOptions(static_cast<int>(argv.size()), argv.data(), o, &help, error);
}

TEST(OptionsTest, ParsesModeAndFlags) {
  BenchOptions o;
  std::string error;
  ASSERT_TRUE(Parse({"pairs", "--port", "9000", "--pairs=7", "--window", "3", "--rate", "5000",
                     "--server-pid", "123", "--quiet"},
                    &o, &error))
      << error;
  EXPECT_EQ(o.mode, Mode::kPairs);
  EXPECT_EQ(o.port, 9000);
  EXPECT_EQ(o.pairs, 7);
  EXPECT_EQ(o.window, 3);
  EXPECT_DOUBLE_EQ(o.rate, 5000);
  EXPECT_EQ(o.server_pid, 123);
  EXPECT_TRUE(o.quiet);
}

TEST(OptionsTest, ConnectionsDefaultPerMode) {
  BenchOptions idle, echo;
  std::string error;
  ASSERT_TRUE(Parse({"idle"}, &idle, &error));
  EXPECT_EQ(idle.connections, 10000);
  ASSERT_TRUE(Parse({"echo"}, &echo, &error));
  EXPECT_EQ(echo.connections, 100);
  EXPECT_EQ(echo.server, ServerKind::kEcho);
}

TEST(OptionsTest, RefusesBadInput) {
  BenchOptions o;
  std::string error;
  EXPECT_FALSE(Parse({}, &o, &error));
  EXPECT_FALSE(Parse({"nope"}, &o, &error));
  EXPECT_FALSE(Parse({"pairs", "--bogus", "1"}, &o, &error));
  EXPECT_FALSE(Parse({"pairs", "--pairs", "0"}, &o, &error));
  EXPECT_FALSE(Parse({"pairs", "--payload-bytes", "10"}, &o, &error));  // below the minimum
  EXPECT_FALSE(Parse({"pairs", "--window"}, &o, &error));
  EXPECT_FALSE(Parse({"pairs", "--server", "echo"}, &o, &error));  // relay-only mode
  EXPECT_FALSE(Parse({"echo", "--server", "relay"}, &o, &error));
}

TEST(OptionsTest, WithoutServersTheListIsHostAndPort) {
  BenchOptions o;
  std::string error;
  ASSERT_TRUE(Parse({"pairs", "--host", "127.0.0.9", "--port", "9000"}, &o, &error)) << error;
  ASSERT_EQ(o.ServerList().size(), 1u);
  EXPECT_EQ(o.ServerList()[0].host, "127.0.0.9");
  EXPECT_EQ(o.ServerList()[0].port, 9000);
}

TEST(OptionsTest, ServersTakesACommaListAndRepeats) {
  BenchOptions o;
  std::string error;
  ASSERT_TRUE(Parse({"pairs", "--servers", "127.0.0.1:9001,:9002", "--servers=9003", "--server",
                     "relay"},
                    &o, &error))
      << error;
  const std::vector<ServerAddress> list = o.ServerList();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].port, 9001);
  EXPECT_EQ(list[1].host, "127.0.0.1");
  EXPECT_EQ(list[1].port, 9002);
  EXPECT_EQ(list[2].port, 9003);
  EXPECT_EQ(o.server, ServerKind::kRelay);  // --server keeps its meaning
}

TEST(OptionsTest, ServersRefusesBadItems) {
  BenchOptions o;
  std::string error;
  EXPECT_FALSE(Parse({"pairs", "--servers", ""}, &o, &error));
  EXPECT_FALSE(Parse({"pairs", "--servers", "9001,"}, &o, &error));
  EXPECT_FALSE(Parse({"pairs", "--servers", "9001,,9002"}, &o, &error));
  EXPECT_FALSE(Parse({"pairs", "--servers", "localhost:9001"}, &o, &error));  // IPv4 only
  EXPECT_FALSE(Parse({"pairs", "--servers", "127.0.0.1:0"}, &o, &error));
  EXPECT_FALSE(Parse({"pairs", "--servers", "127.0.0.1:70000"}, &o, &error));
  EXPECT_FALSE(Parse({"pairs", "--servers", "127.0.0.1:"}, &o, &error));
}

TEST(OptionsTest, PresenceModeNeedsTheRelay) {
  BenchOptions o;
  std::string error;
  ASSERT_TRUE(Parse({"presence", "--concurrency", "4"}, &o, &error)) << error;
  EXPECT_EQ(o.mode, Mode::kPresence);
  EXPECT_EQ(o.concurrency, 4);
  EXPECT_FALSE(Parse({"presence", "--server", "echo"}, &o, &error));
}

TEST(PlacementTest, TheEndsOfEveryPairAreOnDifferentServers) {
  for (int servers = 2; servers <= 5; ++servers) {
    std::vector<int> senders(servers), receivers(servers);
    for (int pair = 0; pair < 100; ++pair) {
      const int a = PairSenderServer(pair, servers), b = PairReceiverServer(pair, servers);
      ASSERT_GE(a, 0);
      ASSERT_LT(a, servers);
      ASSERT_GE(b, 0);
      ASSERT_LT(b, servers);
      EXPECT_NE(a, b) << "pair " << pair << " of " << servers << " servers";
      ++senders[a];
      ++receivers[b];
    }
    // Round robin: every server holds its share of each end, within one.
    for (int s = 0; s < servers; ++s) {
      EXPECT_LE(100 / servers, senders[s]);
      EXPECT_LE(senders[s], 100 / servers + 1);
      EXPECT_LE(100 / servers, receivers[s]);
      EXPECT_LE(receivers[s], 100 / servers + 1);
    }
  }
}

TEST(PlacementTest, OneServerTakesEverything) {
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(PairSenderServer(i, 1), 0);
    EXPECT_EQ(PairReceiverServer(i, 1), 0);
    EXPECT_EQ(FanoutReceiverServer(i, 1), 0);
    EXPECT_EQ(RoundRobinServer(i, 1), 0);
    EXPECT_EQ(RoundRobinServer(i, 0), 0);
  }
}

TEST(PlacementTest, FanoutReceiversSpreadOverEveryServer) {
  std::vector<int> count(3);
  for (int r = 0; r < 100; ++r) ++count[FanoutReceiverServer(r, 3)];
  EXPECT_EQ(count, (std::vector<int>{34, 33, 33}));
}

}  // namespace
}  // namespace relay::bench
