// Against a real three-node nats-server cluster with JetStream
// (tests/backplane/nats/nats_cluster.h): the cluster forms, a NatsConnection
// given every node's URL fails over when its node dies, and an R3 KV bucket
// takes a key's create once, seen from connections on different nodes.
// One cluster serves the whole suite (start-up is the expensive part); each
// test begins by waiting for the full cluster, so none depends on another.
#include "tests/backplane/nats/nats_cluster.h"

#include <nats/nats.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backplane/nats/nats_connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/backplane/nats/nats_server.h"

namespace relay::backplane::nats {
namespace {

using ::testing::HasSubstr;
using testing::NatsCluster;
using testing::NatsServer;
using testing::WaitFor;

constexpr std::chrono::seconds kStateTimeout{10};

// The URL nats.c is connected to now, or "" when none.
std::string ConnectedUrl(NatsConnection& conn) {
  char buf[256] = {0};
  if (natsConnection_GetConnectedUrl(conn.raw(), buf, sizeof(buf)) != NATS_OK) return "";
  return buf;
}

class NatsClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (NatsServer::FindBinary().empty()) return;
    cluster_ = new NatsCluster();
    start_status_ = new absl::Status(cluster_->Start());
  }
  static void TearDownTestSuite() {
    delete cluster_;  // kills every node by PID and reaps it
    cluster_ = nullptr;
    delete start_status_;
    start_status_ = nullptr;
  }

  void SetUp() override {
    if (cluster_ == nullptr) GTEST_SKIP() << "nats-server is not installed";
    ASSERT_TRUE(start_status_->ok()) << *start_status_;
    // A test that failed half-way may have left a node down or paused.
    for (int i = 0; i < cluster_->size(); ++i) {
      if (!cluster_->running(i)) {
        ASSERT_TRUE(cluster_->Restart(i).ok()) << cluster_->LogTails();
      } else {
        ASSERT_TRUE(cluster_->Resume(i).ok());
      }
    }
    absl::Status ready = cluster_->WaitReady();
    ASSERT_TRUE(ready.ok()) << ready;
  }
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) std::cerr << cluster_->LogTails() << "\n";
  }

  static absl::StatusOr<std::unique_ptr<NatsConnection>> Connect(std::vector<std::string> urls) {
    NatsSettings settings;
    settings.urls = std::move(urls);
    settings.name = "relay nats_cluster_test";
    return NatsConnection::Connect(settings);
  }

  static NatsCluster* cluster_;
  static absl::Status* start_status_;
};

NatsCluster* NatsClusterTest::cluster_ = nullptr;
absl::Status* NatsClusterTest::start_status_ = nullptr;

TEST_F(NatsClusterTest, FormsWithARouteBetweenEveryPairOfNodes) {
  ASSERT_EQ(cluster_->size(), 3);
  for (int i = 0; i < cluster_->size(); ++i) {
    absl::StatusOr<int> routes = cluster_->NumRoutes(i);
    ASSERT_TRUE(routes.ok()) << "node " << i << ": " << routes.status();
    EXPECT_EQ(*routes, 2) << "node " << i;
    absl::StatusOr<NatsCluster::HttpResponse> health =
        NatsCluster::HttpGet(cluster_->monitor_port(i), "/healthz");
    ASSERT_TRUE(health.ok()) << health.status();
    EXPECT_EQ(health->status, 200) << "node " << i << ": " << health->body;
  }
}

TEST_F(NatsClusterTest, AConnectionGivenEveryNodeFailsOverWhenItsNodeDies) {
  absl::StatusOr<std::unique_ptr<NatsConnection>> conn = Connect(cluster_->urls());
  ASSERT_TRUE(conn.ok()) << conn.status();
  NatsConnection& c = **conn;
  ASSERT_TRUE(WaitFor([&] { return c.connected(); }, kStateTimeout));
  const std::string first_url = ConnectedUrl(c);
  const int first = cluster_->NodeOfUrl(first_url);
  ASSERT_GE(first, 0) << "connected to \"" << first_url << "\"";

  cluster_->Stop(first);
  ASSERT_TRUE(WaitFor([&] { return c.reconnects() == 1 && c.connected(); }, kStateTimeout))
      << "reconnects " << c.reconnects() << ", disconnects " << c.disconnects();
  EXPECT_EQ(c.disconnects(), 1u);
  const int second = cluster_->NodeOfUrl(ConnectedUrl(c));
  EXPECT_GE(second, 0);
  EXPECT_NE(second, first);
  EXPECT_EQ(natsConnection_Flush(c.raw()), NATS_OK);  // the new node answers

  ASSERT_TRUE(cluster_->Restart(first).ok()) << cluster_->LogTails();
  absl::Status ready = cluster_->WaitReady();
  ASSERT_TRUE(ready.ok()) << ready;
  EXPECT_TRUE(c.connected());
  EXPECT_EQ(c.reconnects(), 1u);
}

// Owns what nats.c hands out for one connection's KV use.
struct Kv {
  jsCtx* js = nullptr;
  kvStore* kv = nullptr;
  ~Kv() {
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
  }
};

std::string LastNatsError() {
  const char* text = nats_GetLastError(nullptr);
  return text == nullptr ? "" : text;
}

TEST_F(NatsClusterTest, AReplicatedKvBucketTakesAKeysCreateOnceAcrossNodes) {
  // Each connection is given one node only, so they sit on different ones.
  absl::StatusOr<std::unique_ptr<NatsConnection>> a = Connect({cluster_->url(0)});
  absl::StatusOr<std::unique_ptr<NatsConnection>> b = Connect({cluster_->url(1)});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(WaitFor([&] { return (*a)->connected() && (*b)->connected(); }, kStateTimeout));
  ASSERT_EQ(cluster_->NodeOfUrl(ConnectedUrl(**a)), 0);
  ASSERT_EQ(cluster_->NodeOfUrl(ConnectedUrl(**b)), 1);

  // A fresh bucket per run of the test: the store outlives a test.
  static int run = 0;
  const std::string bucket = absl::StrCat("relay_cluster_test_", ::getpid(), "_", ++run);
  Kv on_a;
  Kv on_b;
  ASSERT_EQ(natsConnection_JetStream(&on_a.js, (*a)->raw(), nullptr), NATS_OK) << LastNatsError();
  ASSERT_EQ(natsConnection_JetStream(&on_b.js, (*b)->raw(), nullptr), NATS_OK) << LastNatsError();

  kvConfig config;
  ASSERT_EQ(kvConfig_Init(&config), NATS_OK);
  config.Bucket = bucket.c_str();
  config.History = 1;
  config.StorageType = js_FileStorage;
  config.Replicas = 3;
  ASSERT_EQ(js_CreateKeyValue(&on_a.kv, on_a.js, &config), NATS_OK) << LastNatsError();
  ASSERT_EQ(js_KeyValue(&on_b.kv, on_b.js, bucket.c_str()), NATS_OK) << LastNatsError();

  uint64_t rev = 0;
  ASSERT_EQ(kvStore_Create(&rev, on_a.kv, "mesh-1", "a", 1), NATS_OK) << LastNatsError();
  EXPECT_EQ(rev, 1u);

  // The second create, through another node, is refused: the key exists.
  uint64_t rev_b = 0;
  const natsStatus conflict = kvStore_Create(&rev_b, on_b.kv, "mesh-1", "b", 1);
  EXPECT_EQ(conflict, NATS_ERR) << natsStatus_GetText(conflict);
  EXPECT_THAT(LastNatsError(), HasSubstr("wrong last sequence"));
  EXPECT_EQ(rev_b, 0u);

  // And B reads A's value.
  kvEntry* entry = nullptr;
  ASSERT_EQ(kvStore_Get(&entry, on_b.kv, "mesh-1"), NATS_OK) << LastNatsError();
  EXPECT_EQ(kvEntry_ValueString(entry), std::string("a"));
  EXPECT_EQ(kvEntry_Revision(entry), rev);
  kvEntry_Destroy(entry);

  EXPECT_EQ(js_DeleteKeyValue(on_a.js, bucket.c_str()), NATS_OK) << LastNatsError();
}

}  // namespace
}  // namespace relay::backplane::nats
