// Tests for backplane/nats/instance_links.h against a real nats-server:
// items arrive once each and in order, through a NATS restart that loses
// what was in flight, and to a receiver that restarted under the same id.
#include "backplane/nats/instance_links.h"

#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "relay/v1/relay.pb.h"
#include "tests/backplane/nats/nats_server.h"

namespace relay::backplane::nats {
namespace {

using testing::NatsServer;
using testing::WaitFor;

constexpr std::chrono::seconds kTimeout{20};

// An item whose envelope says `n` (as its mesh id).
std::string Numbered(int n) {
  relay::v1::BackplaneEnvelope envelope;
  envelope.set_mesh_id(std::to_string(n));
  return EnvelopeItem(envelope);
}

// One instance: a connection and its links, recording what arrives.
class Endpoint {
 public:
  Endpoint(const std::string& url, const std::string& id, std::uint64_t incarnation) {
    NatsSettings settings;
    settings.urls = {url};
    settings.name = "relay " + id;
    connection_ = *NatsConnection::Connect(settings, [this] {
      if (links_ != nullptr && connection_->connected()) links_->ResendAll();
    });
    links_ = std::make_unique<InstanceLinks>(
        connection_.get(), "test", id, incarnation, [this](InstanceLinks::Received received) {
          std::lock_guard<std::mutex> lock(mu_);
          if (received.restarted) ++restarts_;
          for (const auto& item : received.items) {
            relay::v1::BackplaneEnvelope envelope;
            envelope.ParseFromArray(item.bytes.data(), static_cast<int>(item.bytes.size()));
            got_.push_back(envelope.mesh_id());
          }
        });
  }
  absl::Status Start() {
    if (!WaitFor([&] { return connection_->connected(); }, kTimeout)) {
      return absl::UnavailableError("not connected");
    }
    return links_->Start();
  }
  std::vector<std::string> got() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }
  int restarts() {
    std::lock_guard<std::mutex> lock(mu_);
    return restarts_;
  }
  InstanceLinks& links() { return *links_; }
  NatsConnection& connection() { return *connection_; }

 private:
  // Declared first, so destroyed last: a delivery still running while the
  // links stop writes here.
  std::mutex mu_;
  std::vector<std::string> got_;
  int restarts_ = 0;
  std::unique_ptr<NatsConnection> connection_;
  std::unique_ptr<InstanceLinks> links_;
};

std::vector<std::string> Range(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(std::to_string(i));
  return out;
}

class InstanceLinksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (NatsServer::FindBinary().empty()) GTEST_SKIP() << "nats-server is not installed";
    ASSERT_TRUE(server_.Start().ok());
    url_ = *server_.Url();
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << server_.Log() << "\n";
  }
  NatsServer server_;
  std::string url_;
};

TEST_F(InstanceLinksTest, ItemsArriveOnceEachInOrder) {
  Endpoint a(url_, "a", 1);
  Endpoint b(url_, "b", 2);
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(b.Start().ok());
  constexpr int kItems = 20000;
  for (int i = 0; i < kItems; ++i) ASSERT_TRUE(a.links().Send("b", Numbered(i), true));
  ASSERT_TRUE(WaitFor([&] { return b.got().size() >= kItems; }, kTimeout)) << b.got().size();
  EXPECT_EQ(b.got(), Range(0, kItems));
  EXPECT_EQ(b.restarts(), 0);
}

TEST_F(InstanceLinksTest, WhatANatsRestartLostIsResentAndNothingRepeats) {
  Endpoint a(url_, "a", 1);
  Endpoint b(url_, "b", 2);
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(b.Start().ok());
  constexpr int kBefore = 3000;
  constexpr int kAfter = 3000;
  for (int i = 0; i < kBefore; ++i) ASSERT_TRUE(a.links().Send("b", Numbered(i), false));
  ASSERT_TRUE(server_.Restart().ok());
  for (int i = kBefore; i < kBefore + kAfter; ++i) a.links().Send("b", Numbered(i), false);
  ASSERT_TRUE(WaitFor([&] { return b.got().size() >= kBefore + kAfter; }, kTimeout))
      << b.got().size();
  EXPECT_EQ(b.got(), Range(0, kBefore + kAfter));
  EXPECT_EQ(b.restarts(), 0);
}

TEST_F(InstanceLinksTest, DeliveriesAreRefusedWhileDisconnectedPresenceIsNot) {
  Endpoint a(url_, "a", 1);
  ASSERT_TRUE(a.Start().ok());
  server_.Stop();
  ASSERT_TRUE(WaitFor([&] { return !a.connection().connected(); }, kTimeout));
  EXPECT_FALSE(a.links().Send("b", Numbered(1), /*refusable=*/true));
  EXPECT_TRUE(a.links().Send("b", Numbered(2), /*refusable=*/false));
}

TEST_F(InstanceLinksTest, AReceiverThatRestartedGetsWhatItHadNotAcknowledged) {
  Endpoint a(url_, "a", 1);
  auto b = std::make_unique<Endpoint>(url_, "b", 2);
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(b->Start().ok());
  for (int i = 0; i < 100; ++i) a.links().Send("b", Numbered(i), true);
  ASSERT_TRUE(WaitFor([&] { return b->got().size() >= 100; }, kTimeout));
  // Let the acks land, so the old process's stream is fully acknowledged.
  ASSERT_TRUE(WaitFor([&] { return a.links().counters().frames_sent > 0; }, kTimeout));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  b.reset();
  Endpoint b2(url_, "b", 3);  // the same id, a new process
  ASSERT_TRUE(b2.Start().ok());
  for (int i = 100; i < 200; ++i) a.links().Send("b", Numbered(i), true);
  ASSERT_TRUE(WaitFor([&] { return b2.got().size() >= 100; }, kTimeout)) << b2.got().size();
  EXPECT_EQ(b2.got(), Range(100, 200));
}

}  // namespace
}  // namespace relay::backplane::nats
