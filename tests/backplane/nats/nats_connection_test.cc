// Tests for backplane/nats/nats_connection.h against a real nats-server
// (tests/backplane/nats/nats_server.h): NATS_URL parsing, connecting, losing
// the server and getting it back on the same port, starting while NATS is
// unreachable, and a hung server noticed by pings. State changes are polled
// with a deadline; only the ADR's generous bounds are asserted as timings.
#include "backplane/nats/nats_connection.h"

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/backplane/nats/nats_server.h"

namespace relay::backplane::nats {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::NatsServer;
using testing::WaitFor;

constexpr std::chrono::seconds kStateTimeout{10};

TEST(ParseNatsUrlsTest, AcceptsCommaSeparatedUrlsAndTrimsSpaces) {
  absl::StatusOr<std::vector<std::string>> urls =
      NatsConnection::ParseNatsUrls("nats://127.0.0.1:4222, nats://127.0.0.1:4223");
  ASSERT_TRUE(urls.ok()) << urls.status();
  EXPECT_THAT(*urls, ElementsAre("nats://127.0.0.1:4222", "nats://127.0.0.1:4223"));

  urls = NatsConnection::ParseNatsUrls(" tls://nats.example:4222 ");
  ASSERT_TRUE(urls.ok()) << urls.status();
  EXPECT_THAT(*urls, ElementsAre("tls://nats.example:4222"));
}

TEST(ParseNatsUrlsTest, RefusesEmptyListsEmptyEntriesAndOtherSchemes) {
  for (const char* bad :
       {"", "  ", "nats://a,,nats://b", "nats://a,", "http://x", "nats://", "127.0.0.1:4222"}) {
    absl::StatusOr<std::vector<std::string>> urls = NatsConnection::ParseNatsUrls(bad);
    EXPECT_EQ(urls.status().code(), absl::StatusCode::kInvalidArgument) << "\"" << bad << "\"";
    EXPECT_THAT(urls.status().message(), HasSubstr("NATS_URL")) << "\"" << bad << "\"";
  }
  EXPECT_THAT(NatsConnection::ParseNatsUrls("http://x").status().message(), HasSubstr("http://x"));
}

class NatsConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (NatsServer::FindBinary().empty()) GTEST_SKIP() << "nats-server is not installed";
    absl::StatusOr<std::string> url = server_.Url();
    ASSERT_TRUE(url.ok()) << url.status();
    settings_.urls = {*url};
    settings_.name = "relay nats_connection_test";
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << server_.Log() << "\n";
  }

  absl::StatusOr<std::unique_ptr<NatsConnection>> Connect() {
    return NatsConnection::Connect(settings_, [this] { state_changes_.fetch_add(1); });
  }

  NatsServer server_;
  NatsSettings settings_;
  std::atomic<int> state_changes_{0};
};

TEST_F(NatsConnectionTest, ConnectsToARunningServer) {
  ASSERT_TRUE(server_.Start().ok()) << server_.Log();
  absl::StatusOr<std::unique_ptr<NatsConnection>> conn = Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  EXPECT_TRUE((*conn)->connected());
  ASSERT_NE((*conn)->raw(), nullptr);
  EXPECT_EQ(natsConnection_Status((*conn)->raw()), NATS_CONN_STATUS_CONNECTED);
  EXPECT_EQ((*conn)->reconnects(), 0u);
  EXPECT_EQ((*conn)->disconnects(), 0u);
}

TEST_F(NatsConnectionTest, NoticesTheServerGoneAndReconnectsOnItsReturn) {
  ASSERT_TRUE(server_.Start().ok()) << server_.Log();
  absl::StatusOr<std::unique_ptr<NatsConnection>> conn = Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  NatsConnection& c = **conn;
  ASSERT_TRUE(c.connected());

  server_.Stop();
  ASSERT_TRUE(WaitFor([&] { return !c.connected(); }, kStateTimeout));
  ASSERT_TRUE(WaitFor([&] { return c.disconnects() == 1; }, kStateTimeout));
  EXPECT_EQ(c.reconnects(), 0u);

  ASSERT_TRUE(server_.Start().ok()) << server_.Log();
  ASSERT_TRUE(WaitFor([&] { return c.connected(); }, kStateTimeout));
  EXPECT_EQ(c.reconnects(), 1u);
  EXPECT_EQ(c.disconnects(), 1u);
  EXPECT_GE(state_changes_.load(), 2);
}

TEST_F(NatsConnectionTest, StartsWhileNatsIsUnreachableAndConnectsWhenItComes) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<NatsConnection>> conn = Connect();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(conn.ok()) << conn.status();
  EXPECT_LT(took, std::chrono::seconds(2));
  NatsConnection& c = **conn;
  EXPECT_FALSE(c.connected());
  ASSERT_NE(c.raw(), nullptr);

  ASSERT_TRUE(server_.Start().ok()) << server_.Log();
  ASSERT_TRUE(WaitFor([&] { return c.connected(); }, kStateTimeout));
  EXPECT_GE(state_changes_.load(), 1);
}

TEST_F(NatsConnectionTest, NoticesAHungServerByPingsAndRecovers) {
  ASSERT_TRUE(server_.Start().ok()) << server_.Log();
  absl::StatusOr<std::unique_ptr<NatsConnection>> conn = Connect();
  ASSERT_TRUE(conn.ok()) << conn.status();
  NatsConnection& c = **conn;
  ASSERT_TRUE(c.connected());

  // The socket stays open: only the ping timer (1 s, 2 outstanding) can tell.
  ASSERT_TRUE(server_.Pause().ok());
  ASSERT_TRUE(WaitFor([&] { return !c.connected(); }, kStateTimeout));
  EXPECT_EQ(c.disconnects(), 1u);

  ASSERT_TRUE(server_.Resume().ok());
  ASSERT_TRUE(WaitFor([&] { return c.connected(); }, kStateTimeout));
  EXPECT_EQ(c.reconnects(), 1u);
}

TEST_F(NatsConnectionTest, AMissingCredsFileFailsConnectNamingTheFile) {
  ASSERT_TRUE(server_.Start().ok()) << server_.Log();
  settings_.creds_file = "/nonexistent/relay-test.creds";
  absl::StatusOr<std::unique_ptr<NatsConnection>> conn = Connect();
  ASSERT_FALSE(conn.ok());
  EXPECT_THAT(conn.status().message(), HasSubstr("/nonexistent/relay-test.creds"));
}

TEST_F(NatsConnectionTest, AnUnreadableTlsCaFileFailsConnectWithNatsText) {
  settings_.tls_ca_file = "/nonexistent/relay-test-ca.pem";
  absl::StatusOr<std::unique_ptr<NatsConnection>> conn = Connect();
  ASSERT_FALSE(conn.ok());
  EXPECT_THAT(conn.status().message(), HasSubstr("/nonexistent/relay-test-ca.pem"));
}

}  // namespace
}  // namespace relay::backplane::nats
