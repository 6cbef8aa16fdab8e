// Tests for backplane/nats/nats_cluster_view.h against a real nats-server
// with JetStream: two backplanes (two instances) each hold nodes, and the
// view of either lists all of them with the instance holding each; the
// entries of instances with no live lease are left out; the leases carry
// each instance's counts; with NATS gone the view says
// UNAVAILABLE instead of answering a partial list.
#include "backplane/nats/nats_cluster_view.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backplane/nats/nats_names.h"
#include "backplane/nats/proto/presence.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/backplane/nats/nats_server.h"

namespace relay::backplane::nats {
namespace {

using testing::NatsServer;
using testing::WaitFor;

constexpr std::chrono::seconds kTimeout{15};

// Stands in for the core thread: runs what the backplane posts, in order.
class SerialExecutor final : public core::CoreExecutor {
 public:
  SerialExecutor() : thread_([this] { Loop(); }) {}
  ~SerialExecutor() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  void Post(std::function<void()> work) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(work));
    }
    wake_.notify_one();
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [this] { return stopped_ || !queue_.empty(); });
      if (stopped_) return;
      std::function<void()> work = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      work();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopped_ = false;
  std::thread thread_;
};

// One instance: its connection, its backplane, the view over it.
struct Instance {
  Instance(const std::string& url, const std::string& cluster, const std::string& id) {
    NatsSettings settings;
    settings.urls = {url};
    settings.name = "relay " + id;
    connection = *NatsConnection::Connect(settings, [] {});
    ClusterSettings cluster_settings;
    cluster_settings.cluster = cluster;
    cluster_settings.instance_id = id;
    cluster_settings.kv_replicas = 1;
    cluster_settings.max_message_bytes = 64 << 10;
    backplane = std::make_unique<NatsBackplane>(connection.get(), cluster_settings, &executor);
    backplane->Start([](absl::Status) {});
    view = std::make_unique<NatsClusterView>(backplane.get());
  }
  ~Instance() {
    backplane->Stop();
    view.reset();
    backplane.reset();
  }
  // Claims `node` of `mesh` for this instance, as a register would.
  core::NodeClaim Claim(const std::string& mesh, const std::string& node) {
    relay::v1::RosterMember member;
    member.set_node_id(node);
    member.set_name(node + "-name");
    member.add_capabilities("llm");
    member.set_instance(backplane->instance_id());
    std::promise<core::NodeClaim> claimed;
    backplane->ClaimNode(mesh, member, 0, [&](core::NodeClaim c) { claimed.set_value(c); });
    return claimed.get_future().get();
  }

  SerialExecutor executor;
  std::unique_ptr<NatsConnection> connection;
  std::unique_ptr<NatsBackplane> backplane;
  std::unique_ptr<NatsClusterView> view;
};

class NatsClusterViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (NatsServer::FindBinary().empty()) GTEST_SKIP() << "nats-server is not installed";
    NatsServer::Options options;
    options.jetstream = true;
    server_ = std::make_unique<NatsServer>(options);
    ASSERT_TRUE(server_->Start().ok());
    cluster_ = absl::StrCat("v", ::testing::UnitTest::GetInstance()->random_seed());
  }
  std::unique_ptr<Instance> NewInstance(const std::string& id) {
    auto instance = std::make_unique<Instance>(*server_->Url(), cluster_, id);
    EXPECT_TRUE(WaitFor([&] { return instance->backplane->Readiness().ready; }, kTimeout));
    return instance;
  }

  std::unique_ptr<NatsServer> server_;
  std::string cluster_;
};

std::vector<std::string> Held(const std::vector<admin::ClusterNode>& nodes) {
  std::vector<std::string> out;
  for (const admin::ClusterNode& n : nodes)
    out.push_back(n.mesh_id + "/" + n.node_id + "@" + n.instance);
  return out;
}

TEST_F(NatsClusterViewTest, EitherInstanceListsTheNodesBothHoldWithTheirInstance) {
  auto a = NewInstance("ia");
  auto b = NewInstance("ib");
  ASSERT_EQ(a->Claim("m1", "n1").outcome, core::NodeClaim::Outcome::kClaimed);
  ASSERT_EQ(b->Claim("m1", "n2").outcome, core::NodeClaim::Outcome::kClaimed);
  ASSERT_EQ(b->Claim("m.2 *", "n3").outcome, core::NodeClaim::Outcome::kClaimed);

  for (Instance* asked : {a.get(), b.get()}) {
    absl::StatusOr<std::vector<admin::ClusterNode>> all = asked->view->Nodes(std::nullopt);
    ASSERT_TRUE(all.ok()) << all.status();
    EXPECT_THAT(Held(*all), ::testing::ElementsAre("m.2 */n3@ib", "m1/n1@ia", "m1/n2@ib"));
    absl::StatusOr<std::vector<admin::ClusterNode>> one = asked->view->Nodes("m1");
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_THAT(Held(*one), ::testing::ElementsAre("m1/n1@ia", "m1/n2@ib"));
    EXPECT_EQ((*one)[0].name, "n1-name");
    EXPECT_THAT((*one)[0].capabilities, ::testing::ElementsAre("llm"));
  }
  absl::StatusOr<std::vector<admin::ClusterNode>> none = a->view->Nodes("no-such-mesh");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(NatsClusterViewTest, AStoppedInstancesNodesAreNotListed) {
  auto a = NewInstance("ia");
  auto b = NewInstance("ib");
  ASSERT_EQ(a->Claim("m", "n1").outcome, core::NodeClaim::Outcome::kClaimed);
  ASSERT_EQ(b->Claim("m", "n2").outcome, core::NodeClaim::Outcome::kClaimed);
  b.reset();  // its lease becomes a tombstone; its entry may stay until swept
  EXPECT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::vector<admin::ClusterNode>> nodes = a->view->Nodes("m");
        return nodes.ok() && Held(*nodes) == std::vector<std::string>{"m/n1@ia"};
      },
      kTimeout));
}

TEST_F(NatsClusterViewTest, AnEntryOfAnInstanceWithNoLiveLeaseIsNotListed) {
  auto a = NewInstance("ia");
  ASSERT_EQ(a->Claim("m", "n1").outcome, core::NodeClaim::Outcome::kClaimed);
  // What a process that died unseen (never swept) leaves behind.
  KvBucketConfig config;
  config.name = BucketName(cluster_, Bucket::kNodes);
  absl::StatusOr<std::unique_ptr<KvBucket>> nodes = KvBucket::Open(a->connection->raw(), config);
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  relay::nats::v1::NodeEntry ghost;
  ghost.mutable_member()->set_node_id("n2");
  ghost.mutable_member()->set_instance("ghost");
  ghost.set_incarnation(7);
  ASSERT_TRUE((*nodes)->Put(*NodeKey("m", "n2"), ghost.SerializeAsString(), 0).ok());

  absl::StatusOr<std::vector<admin::ClusterNode>> listed = a->view->Nodes("m");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_THAT(Held(*listed), ::testing::ElementsAre("m/n1@ia"));
}

TEST_F(NatsClusterViewTest, LeasesCarryEachInstancesCounts) {
  auto a = NewInstance("ia");
  auto b = NewInstance("ib");
  a->backplane->SetSummary({3, 2, 40});
  b->backplane->SetSummary({5, 4, 7});
  EXPECT_TRUE(WaitFor(
      [&] {
        std::vector<admin::InstanceSummary> live = a->view->LiveInstances();
        return live.size() == 2 && live[1].instance_id == "ib" && live[1].open_sockets == 5 &&
               live[1].registered_peers == 4 && live[1].messages_relayed == 7;
      },
      kTimeout));
  std::vector<admin::InstanceSummary> live = a->view->LiveInstances();
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[0].instance_id, "ia");
  EXPECT_EQ(live[0].registered_peers, 2u);
  EXPECT_GT(live[0].started_at, 0);
}

TEST_F(NatsClusterViewTest, WithNatsGoneTheViewIsUnavailableNotPartial) {
  auto a = NewInstance("ia");
  ASSERT_EQ(a->Claim("m", "n1").outcome, core::NodeClaim::Outcome::kClaimed);
  server_->Stop();
  ASSERT_TRUE(WaitFor([&] { return !a->connection->connected(); }, kTimeout));
  const auto began = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<admin::ClusterNode>> nodes = a->view->Nodes(std::nullopt);
  EXPECT_TRUE(absl::IsUnavailable(nodes.status())) << nodes.status();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(3));
}

}  // namespace
}  // namespace relay::backplane::nats
