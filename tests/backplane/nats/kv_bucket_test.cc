// Tests for backplane/nats/kv_bucket.h against a real nats-server with
// JetStream: the conflicts a compare-and-set must report as ABORTED and
// nothing else, deletes at a revision, recreating a deleted key, watching,
// purging by filter, widening a max age, the bucket configs NATS refuses, and a server that is
// gone.
#include "backplane/nats/kv_bucket.h"

#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backplane/nats/nats_connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/backplane/nats/nats_server.h"

namespace relay::backplane::nats {
namespace {

using ::testing::HasSubstr;
using testing::NatsServer;

class KvBucketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (NatsServer::FindBinary().empty()) GTEST_SKIP() << "nats-server is not installed";
    absl::Status started = server_.Start();
    ASSERT_TRUE(started.ok()) << started;
    connection_ = Connect();
    ASSERT_TRUE(
        testing::WaitFor([&] { return connection_->connected(); }, std::chrono::seconds(10)));
    absl::StatusOr<std::unique_ptr<KvBucket>> bucket = KvBucket::Open(connection_->raw(), config_);
    ASSERT_TRUE(bucket.ok()) << bucket.status();
    bucket_ = std::move(*bucket);
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << server_.Log() << "\n";
  }
  std::unique_ptr<NatsConnection> Connect() {
    NatsSettings settings;
    settings.urls = {*server_.Url()};
    settings.name = "relay kv_bucket_test";
    absl::StatusOr<std::unique_ptr<NatsConnection>> conn = NatsConnection::Connect(settings);
    EXPECT_TRUE(conn.ok()) << conn.status();
    return std::move(*conn);
  }

  NatsServer server_{JetStream()};
  static NatsServer::Options JetStream() {
    NatsServer::Options options;
    options.jetstream = true;
    return options;
  }
  KvBucketConfig config_{.name = "relay_test_kv"};
  std::unique_ptr<NatsConnection> connection_;
  std::unique_ptr<KvBucket> bucket_;
};

TEST_F(KvBucketTest, CreateWinsOnceAndReportsTheSecondAsAConflict) {
  absl::StatusOr<std::uint64_t> first = bucket_->Create("mesh.a", "one");
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::uint64_t> second = bucket_->Create("mesh.a", "two");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAborted) << second.status();
  absl::StatusOr<KvEntry> entry = bucket_->Get("mesh.a");
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->value, "one");
  EXPECT_EQ(entry->revision, *first);
  EXPECT_FALSE(entry->deleted);
}

TEST_F(KvBucketTest, PutAtAStaleRevisionIsAConflictAndChangesNothing) {
  absl::StatusOr<std::uint64_t> first = bucket_->Create("k", "v1");
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::uint64_t> second = bucket_->Put("k", "v2", *first);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GT(*second, *first);
  EXPECT_EQ(bucket_->Put("k", "v3", *first).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(bucket_->Put("k", "v3", 0).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(bucket_->Get("k")->value, "v2");
}

TEST_F(KvBucketTest, DeleteAtARevisionAndCreateAgainOverTheMarker) {
  absl::StatusOr<std::uint64_t> first = bucket_->Create("k", "held");
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::uint64_t> second = bucket_->Put("k", "moved", *first);
  ASSERT_TRUE(second.ok());
  // A delete by whoever wrote `first` must not remove the newer entry.
  EXPECT_EQ(bucket_->Delete("k", *first).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(bucket_->Get("k")->value, "moved");
  ASSERT_TRUE(bucket_->Delete("k", *second).ok());
  absl::StatusOr<KvEntry> marker = bucket_->Get("k");
  ASSERT_TRUE(marker.ok()) << marker.status();
  EXPECT_TRUE(marker->deleted);
  absl::StatusOr<std::uint64_t> again = bucket_->Create("k", "new");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(bucket_->Get("k")->value, "new");
}

TEST_F(KvBucketTest, PurgeRemovesTheMatchingKeysOnlyAndTheyCanBeCreatedAgain) {
  ASSERT_TRUE(bucket_->Create("m1.a", "1").ok());
  ASSERT_TRUE(bucket_->Create("m1.b", "2").ok());
  ASSERT_TRUE(bucket_->Create("m2.a", "3").ok());
  ASSERT_TRUE(bucket_->Purge("m1.*").ok());
  EXPECT_EQ(bucket_->Get("m1.a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(bucket_->Get("m1.b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(bucket_->Get("m2.a")->value, "3");
  EXPECT_TRUE(bucket_->Put("m1.a", "again", 0).ok());
  // Nothing to purge is no error.
  EXPECT_TRUE(bucket_->Purge("m3.*").ok());
}

TEST_F(KvBucketTest, AKeyNeverWrittenIsNotFound) {
  EXPECT_EQ(bucket_->Get("nobody").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(KvBucketTest, ConnectionsRacingToCreateOneKeyHaveExactlyOneWinner) {
  constexpr int kRacers = 4;
  constexpr int kRounds = 20;
  std::vector<std::unique_ptr<NatsConnection>> connections;
  std::vector<std::unique_ptr<KvBucket>> buckets;
  for (int i = 0; i < kRacers; ++i) {
    connections.push_back(Connect());
    ASSERT_TRUE(testing::WaitFor([&] { return connections.back()->connected(); },
                                 std::chrono::seconds(10)));
    absl::StatusOr<std::unique_ptr<KvBucket>> bucket =
        KvBucket::Open(connections.back()->raw(), config_);
    ASSERT_TRUE(bucket.ok()) << bucket.status();
    buckets.push_back(std::move(*bucket));
  }
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "race" + std::to_string(round);
    std::atomic<int> winners{0};
    std::atomic<int> conflicts{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kRacers; ++i) {
      threads.emplace_back([&, i] {
        absl::StatusOr<std::uint64_t> created = buckets[i]->Create(key, std::to_string(i));
        if (created.ok()) ++winners;
        if (absl::IsAborted(created.status())) ++conflicts;
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(winners.load(), 1) << key;
    EXPECT_EQ(conflicts.load(), kRacers - 1) << key;
  }
}

TEST_F(KvBucketTest, WatchGivesTheInitialValuesThenTheirEndThenChanges) {
  ASSERT_TRUE(bucket_->Create("a", "1").ok());
  ASSERT_TRUE(bucket_->Create("b", "2").ok());
  absl::StatusOr<std::unique_ptr<KvBucket::Watch>> watch = bucket_->WatchAll();
  ASSERT_TRUE(watch.ok()) << watch.status();
  std::vector<std::string> initial;
  for (;;) {
    absl::StatusOr<std::optional<KvEntry>> next = (*watch)->Next(absl::Seconds(5));
    ASSERT_TRUE(next.ok()) << next.status();
    if (!next->has_value()) break;
    initial.push_back((*next)->key + "=" + (*next)->value);
  }
  EXPECT_THAT(initial, ::testing::UnorderedElementsAre("a=1", "b=2"));
  EXPECT_EQ((*watch)->Next(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  absl::StatusOr<KvEntry> a = bucket_->Get("a");
  ASSERT_TRUE(bucket_->Delete("a", a->revision).ok());
  absl::StatusOr<std::optional<KvEntry>> change = (*watch)->Next(absl::Seconds(5));
  ASSERT_TRUE(change.ok()) << change.status();
  ASSERT_TRUE(change->has_value());
  EXPECT_EQ((*change)->key, "a");
  EXPECT_TRUE((*change)->deleted);
}

TEST_F(KvBucketTest, ABucketWithOtherSettingsIsSharedAndSaysSo) {
  KvBucketConfig other = config_;
  other.max_age = absl::Hours(1);
  bool differs = false;
  absl::StatusOr<std::unique_ptr<KvBucket>> bucket =
      KvBucket::Open(connection_->raw(), other, &differs);
  ASSERT_TRUE(bucket.ok()) << bucket.status();
  EXPECT_TRUE(differs);
  ASSERT_TRUE(bucket_->Create("shared", "x").ok());
  EXPECT_EQ((*bucket)->Get("shared")->value, "x");
}

TEST_F(KvBucketTest, WidenMaxAgeRaisesItNeverLowersIt) {
  KvBucketConfig aging{.name = "relay_test_aging", .max_age = absl::Hours(1)};
  absl::StatusOr<std::unique_ptr<KvBucket>> bucket = KvBucket::Open(connection_->raw(), aging);
  ASSERT_TRUE(bucket.ok()) << bucket.status();
  EXPECT_EQ(*(*bucket)->MaxAge(), absl::Hours(1));
  EXPECT_EQ(*(*bucket)->WidenMaxAge(absl::Hours(2)), absl::Hours(2));
  EXPECT_EQ(*(*bucket)->MaxAge(), absl::Hours(2));
  EXPECT_EQ(*(*bucket)->WidenMaxAge(absl::Minutes(30)), absl::Hours(2));
  EXPECT_EQ(*(*bucket)->MaxAge(), absl::Hours(2));
  // Entries written before still read and write the same.
  ASSERT_TRUE((*bucket)->Create("k", "v").ok());
  EXPECT_EQ((*bucket)->Get("k")->value, "v");
  // A bucket whose entries never age out has the longest max age already.
  EXPECT_EQ(*bucket_->WidenMaxAge(absl::Hours(1)), absl::ZeroDuration());
}

TEST_F(KvBucketTest, ReplicasOverASingleServerNameTheSetting) {
  KvBucketConfig replicated{.name = "relay_test_r3", .replicas = 3};
  absl::StatusOr<std::unique_ptr<KvBucket>> bucket = KvBucket::Open(connection_->raw(), replicated);
  EXPECT_EQ(bucket.status().code(), absl::StatusCode::kInvalidArgument) << bucket.status();
  EXPECT_THAT(bucket.status().message(), HasSubstr("NATS_KV_REPLICAS"));
}

TEST_F(KvBucketTest, WithNatsGoneEveryCallIsUnavailableNotAConflict) {
  absl::StatusOr<std::uint64_t> first = bucket_->Create("k", "v");
  ASSERT_TRUE(first.ok());
  server_.Stop();
  ASSERT_TRUE(
      testing::WaitFor([&] { return !connection_->connected(); }, std::chrono::seconds(10)));
  EXPECT_EQ(bucket_->Get("k").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(bucket_->Put("k", "w", *first).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(bucket_->Create("new", "w").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(bucket_->Delete("k", *first).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(bucket_->Purge("k").code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace relay::backplane::nats
