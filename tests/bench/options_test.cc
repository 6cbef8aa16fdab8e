// Tests of bench/relay-bench/options: modes, defaults per mode, and refusals.
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

}  // namespace
}  // namespace relay::bench
