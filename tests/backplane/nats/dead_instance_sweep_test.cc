// Tests for backplane/nats/dead_instance_sweep.h against a real nats-server
// with JetStream: exactly the dead incarnation's node entries and follow
// marks go, everyone else's stay, and NATS gone is Unavailable.
#include "backplane/nats/dead_instance_sweep.h"

#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backplane/nats/nats_connection.h"
#include "backplane/nats/proto/presence.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/backplane/nats/nats_server.h"

namespace relay::backplane::nats {
namespace {

using ::testing::ElementsAre;
using testing::NatsServer;

class DeadInstanceSweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (NatsServer::FindBinary().empty()) GTEST_SKIP() << "nats-server is not installed";
    absl::Status started = server_.Start();
    ASSERT_TRUE(started.ok()) << started;
    NatsSettings settings;
    settings.urls = {*server_.Url()};
    settings.name = "relay dead_instance_sweep_test";
    absl::StatusOr<std::unique_ptr<NatsConnection>> conn = NatsConnection::Connect(settings);
    ASSERT_TRUE(conn.ok()) << conn.status();
    connection_ = std::move(*conn);
    ASSERT_TRUE(
        testing::WaitFor([&] { return connection_->connected(); }, std::chrono::seconds(10)));
    nodes_ = Open("relay_sweep_nodes");
    follow_ = Open("relay_sweep_follow");
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << server_.Log() << "\n";
  }
  std::unique_ptr<KvBucket> Open(const std::string& name) {
    KvBucketConfig config;
    config.name = name;
    absl::StatusOr<std::unique_ptr<KvBucket>> bucket = KvBucket::Open(connection_->raw(), config);
    EXPECT_TRUE(bucket.ok()) << bucket.status();
    return bucket.ok() ? std::move(*bucket) : nullptr;
  }

  void PutNode(const std::string& key, const std::string& instance, std::uint64_t incarnation) {
    relay::nats::v1::NodeEntry entry;
    entry.mutable_member()->set_node_id(key);
    entry.mutable_member()->set_instance(instance);
    entry.set_incarnation(incarnation);
    ASSERT_TRUE(nodes_->Create(key, entry.SerializeAsString()).ok()) << key;
  }
  void PutFollow(const std::string& key,
                 const std::vector<std::pair<std::string, std::uint64_t>>& followers) {
    relay::nats::v1::Followers value;
    for (const auto& [id, incarnation] : followers) {
      auto* f = value.add_followers();
      f->set_instance_id(id);
      f->set_incarnation(incarnation);
    }
    ASSERT_TRUE(follow_->Create(key, value.SerializeAsString()).ok()) << key;
  }
  bool Present(const KvBucket& bucket, const std::string& key) {
    absl::StatusOr<KvEntry> entry = bucket.Get(key);
    return entry.ok() && !entry->deleted;
  }
  // A follow entry's followers, as id/incarnation.
  std::vector<std::string> FollowersOf(const std::string& key) {
    std::vector<std::string> out;
    absl::StatusOr<KvEntry> entry = follow_->Get(key);
    if (!entry.ok() || entry->deleted) return out;
    relay::nats::v1::Followers value;
    EXPECT_TRUE(value.ParseFromString(entry->value));
    for (const auto& f : value.followers()) {
      out.push_back(f.instance_id() + "/" + std::to_string(f.incarnation()));
    }
    return out;
  }

  NatsServer server_{JetStream()};
  static NatsServer::Options JetStream() {
    NatsServer::Options options;
    options.jetstream = true;
    return options;
  }
  std::unique_ptr<NatsConnection> connection_;
  std::unique_ptr<KvBucket> nodes_;
  std::unique_ptr<KvBucket> follow_;
};

TEST_F(DeadInstanceSweepTest, OnlyTheDeadIncarnationsEntriesAndMarksGo) {
  PutNode("m1.phone", "a", 1);
  PutNode("m1.mac", "b", 7);
  PutNode("m2.tablet", "a", 1);
  PutNode("m3.watch", "a", 2);  // the same id, a later process: alive
  PutFollow("m1", {{"a", 1}, {"b", 7}});
  PutFollow("m2", {{"a", 1}});
  PutFollow("m3", {{"a", 2}});

  absl::StatusOr<SweepCounts> swept = SweepDeadInstance(*nodes_, *follow_, "a", 1);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(swept->nodes, 2u);
  EXPECT_EQ(swept->follows, 2u);
  EXPECT_FALSE(Present(*nodes_, "m1.phone"));
  EXPECT_FALSE(Present(*nodes_, "m2.tablet"));
  EXPECT_TRUE(Present(*nodes_, "m1.mac"));
  EXPECT_TRUE(Present(*nodes_, "m3.watch"));
  EXPECT_THAT(FollowersOf("m1"), ElementsAre("b/7"));
  EXPECT_FALSE(Present(*follow_, "m2"));
  EXPECT_THAT(FollowersOf("m3"), ElementsAre("a/2"));

  // Twice is harmless: nothing of it is left.
  swept = SweepDeadInstance(*nodes_, *follow_, "a", 1);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(swept->nodes, 0u);
  EXPECT_EQ(swept->follows, 0u);
}

TEST_F(DeadInstanceSweepTest, AnEntryTakenOverSinceItsInstanceDiedStays) {
  PutNode("m.phone", "a", 1);
  absl::StatusOr<KvEntry> read = nodes_->Get("m.phone");
  ASSERT_TRUE(read.ok());
  relay::nats::v1::NodeEntry successor;
  successor.mutable_member()->set_node_id("phone");
  successor.mutable_member()->set_instance("b");
  successor.set_incarnation(3);
  ASSERT_TRUE(nodes_->Put("m.phone", successor.SerializeAsString(), read->revision).ok());

  absl::StatusOr<SweepCounts> swept = SweepDeadInstance(*nodes_, *follow_, "a", 1);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(swept->nodes, 0u);
  ASSERT_TRUE(Present(*nodes_, "m.phone"));
  relay::nats::v1::NodeEntry kept;
  ASSERT_TRUE(kept.ParseFromString(nodes_->Get("m.phone")->value));
  EXPECT_EQ(kept.member().instance(), "b");
}

TEST_F(DeadInstanceSweepTest, EmptyBucketsSweepToNothing) {
  absl::StatusOr<SweepCounts> swept = SweepDeadInstance(*nodes_, *follow_, "a", 1);
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(swept->nodes, 0u);
  EXPECT_EQ(swept->follows, 0u);
}

TEST_F(DeadInstanceSweepTest, WithNatsGoneItIsUnavailable) {
  PutNode("m.phone", "a", 1);
  server_.Stop();
  ASSERT_TRUE(
      testing::WaitFor([&] { return !connection_->connected(); }, std::chrono::seconds(10)));
  absl::StatusOr<SweepCounts> swept = SweepDeadInstance(*nodes_, *follow_, "a", 1);
  EXPECT_EQ(swept.status().code(), absl::StatusCode::kUnavailable) << swept.status();
}

}  // namespace
}  // namespace relay::backplane::nats
