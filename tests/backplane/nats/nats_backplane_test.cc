// Tests for backplane/nats/nats_backplane.h: real RelayCores, each on its
// own core thread and its own NATS connection, joined through one real
// nats-server with JetStream, as relay instances are. What is asserted is
// what their clients see: one mesh whichever instance a peer reached, its
// traffic in order, a dead instance's peers leaving, and a clear error for
// what cannot cross.
#include "backplane/nats/nats_backplane.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/clock.h"
#include "server/core/relay_core.h"
#include "tests/backplane/nats/nats_server.h"
#include "tests/core/client_events.h"

namespace relay::backplane::nats {
namespace {

using core::testing::BroadcastEvent;
using core::testing::DirectEvent;
using core::testing::RegisterEvent;
using testing::NatsServer;
using testing::WaitFor;

constexpr std::chrono::seconds kTimeout{15};

// The core's one thread: runs what is posted, in order.
class CoreThread final : public core::CoreExecutor {
 public:
  CoreThread() : thread_([this] { Loop(); }) {}
  ~CoreThread() override { Stop(); }
  void Post(std::function<void()> work) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    queue_.push_back(std::move(work));
    wake_.notify_one();
  }
  template <typename F>
  auto Run(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    Post([&task] { task(); });
    return result.get();
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      wake_.notify_one();
    }
    thread_.join();
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

// What one client saw, readable from the test thread.
class Client final : public core::PeerSink {
 public:
  core::SendResult Send(const core::ServerEventPtr& event) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(*event);
    return core::SendResult::Queued();
  }
  void Close(core::CloseReason reason) override {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = reason;
  }
  std::vector<relay::v1::ServerEvent> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  // Peers seen to join and leave, in order: "+b", "-b".
  std::vector<std::string> presence() const {
    std::vector<std::string> out;
    for (const auto& e : events()) {
      if (e.has_peer_joined()) out.push_back("+" + e.peer_joined().peer().node_id());
      if (e.has_peer_left()) out.push_back("-" + e.peer_left().node_id());
    }
    return out;
  }
  // Payloads of directs and broadcasts, in arrival order.
  std::vector<std::string> payloads() const {
    std::vector<std::string> out;
    for (const auto& e : events()) {
      if (e.has_message()) out.push_back(e.message().payload());
    }
    return out;
  }
  bool Saw(const std::function<bool(const relay::v1::ServerEvent&)>& match) const {
    for (const auto& e : events()) {
      if (match(e)) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mu_;
  std::vector<relay::v1::ServerEvent> events_;
  std::optional<core::CloseReason> closed_;
};

// One relay instance: its core on its thread, its NATS connection, its
// backplane.
class Instance {
 public:
  Instance(const std::string& url, const std::string& cluster, const std::string& id) {
    NatsSettings settings;
    settings.urls = {url};
    settings.name = "relay " + id;
    connection_ = *NatsConnection::Connect(settings, [this] {
      std::lock_guard<std::mutex> lock(callbacks_mu_);
      if (backplane_for_callbacks_ != nullptr) backplane_for_callbacks_->OnConnectionChange();
    });
    ClusterSettings cluster_settings;
    cluster_settings.cluster = cluster;
    cluster_settings.instance_id = id;
    cluster_settings.kv_replicas = 1;
    cluster_settings.max_message_bytes = 64 << 10;
    backplane_ = std::make_unique<NatsBackplane>(connection_.get(), cluster_settings, &thread_);
    core_ = std::make_unique<core::RelayCore>(core::CoreConfig{}, &clock_, nullptr, &thread_,
                                              backplane_.get());
    {
      std::lock_guard<std::mutex> lock(callbacks_mu_);
      backplane_for_callbacks_ = backplane_.get();
    }
    backplane_->Start([this](absl::Status fatal) {
      std::lock_guard<std::mutex> lock(callbacks_mu_);
      fatal_ = fatal;
    });
  }
  ~Instance() { Kill(); }
  bool Ready() { return backplane_ != nullptr && backplane_->Readiness().ready; }

  std::shared_ptr<Client> Join(const std::string& mesh, const std::string& node) {
    auto client = std::make_shared<Client>();
    thread_.Run([&] {
      core::ConnectionId id = core_->Connect({"127.0.0.1:1", "ws", "127.0.0.1"}, client);
      ids_[client.get()] = id;
      core_->Handle(id, RegisterEvent(mesh, node));
    });
    return client;
  }
  void Handle(const std::shared_ptr<Client>& client, relay::v1::ClientEvent event) {
    thread_.Run([&] { core_->Handle(ids_.at(client.get()), event); });
  }
  void Leave(const std::shared_ptr<Client>& client) {
    thread_.Run(
        [&] { core_->Disconnect(ids_.at(client.get()), core::CloseReason::kClientClosed); });
  }
  // A graceful stop: members released, lease marked stopped.
  void Stop() {
    thread_.Run([&] { core_->CloseAll(core::CloseReason::kServerShutdown); });
    thread_.Run([&] {
      for (const auto& [client, id] : ids_)
        core_->Disconnect(id, core::CloseReason::kServerShutdown);
    });
    backplane_->Stop();
    Kill();
  }
  // As a SIGKILL: nothing is said to anyone.
  void Kill() {
    thread_.Stop();
    {
      std::lock_guard<std::mutex> lock(callbacks_mu_);
      backplane_for_callbacks_ = nullptr;
    }
    backplane_.reset();
    core_.reset();
    connection_.reset();
  }
  std::optional<absl::Status> fatal() {
    std::lock_guard<std::mutex> lock(callbacks_mu_);
    return fatal_;
  }

 private:
  core::SystemClock clock_;
  CoreThread thread_;
  std::unique_ptr<NatsConnection> connection_;
  std::unique_ptr<NatsBackplane> backplane_;
  std::unique_ptr<core::RelayCore> core_;
  std::map<Client*, core::ConnectionId> ids_;
  std::optional<absl::Status> fatal_;
  std::mutex callbacks_mu_;
  NatsBackplane* backplane_for_callbacks_ = nullptr;
};

class NatsBackplaneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (NatsServer::FindBinary().empty()) return;
    NatsServer::Options options;
    options.jetstream = true;
    server_ = new NatsServer(options);
    ASSERT_TRUE(server_->Start().ok());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (server_ == nullptr) GTEST_SKIP() << "nats-server is not installed";
    // A cluster of its own per test: its own buckets and subjects.
    cluster_ =
        absl::StrCat("t", ::testing::UnitTest::GetInstance()->random_seed(), "_", counter_++);
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << server_->Log() << "\n";
  }
  std::unique_ptr<Instance> NewInstance(const std::string& id) {
    auto instance = std::make_unique<Instance>(*server_->Url(), cluster_, id);
    EXPECT_TRUE(WaitFor([&] { return instance->Ready(); }, kTimeout)) << id << " not ready";
    return instance;
  }

  // a on `one`, then b on `two`, both in mesh "m", once a has seen b join.
  std::pair<std::shared_ptr<Client>, std::shared_ptr<Client>> JoinAcross(Instance& one,
                                                                         Instance& two) {
    auto a = one.Join("m", "a");
    EXPECT_TRUE(WaitFor([&] { return a->Saw([](auto& e) { return e.has_joined(); }); }, kTimeout));
    auto b = two.Join("m", "b");
    EXPECT_TRUE(WaitFor([&] { return a->presence().size() == 1; }, kTimeout));
    return {a, b};
  }

  static NatsServer* server_;
  static int counter_;
  std::string cluster_;
};
NatsServer* NatsBackplaneTest::server_ = nullptr;
int NatsBackplaneTest::counter_ = 0;

TEST_F(NatsBackplaneTest, PeersOnTwoInstancesShareOneMesh) {
  auto one = NewInstance("one");
  auto two = NewInstance("two");
  auto a = one->Join("family", "a");
  ASSERT_TRUE(WaitFor([&] { return a->Saw([](auto& e) { return e.has_joined(); }); }, kTimeout));
  auto b = two->Join("family", "b");
  ASSERT_TRUE(WaitFor([&] { return b->Saw([](auto& e) { return e.has_peers(); }); }, kTimeout));
  EXPECT_TRUE(b->Saw([](const relay::v1::ServerEvent& e) {
    return e.has_peers() && e.peers().peers_size() == 1 && e.peers().peers(0).node_id() == "a";
  })) << "b's peers list must name a, held by the other instance";
  ASSERT_TRUE(WaitFor([&] { return a->presence() == std::vector<std::string>{"+b"}; }, kTimeout));

  one->Handle(a, DirectEvent("b", "\"to b\""));
  two->Handle(b, DirectEvent("a", "\"to a\""));
  one->Handle(a, BroadcastEvent("\"to all\""));
  ASSERT_TRUE(WaitFor([&] { return b->payloads().size() == 2; }, kTimeout));
  EXPECT_THAT(b->payloads(), ::testing::ElementsAre("\"to b\"", "\"to all\""));
  ASSERT_TRUE(WaitFor([&] { return a->payloads().size() == 1; }, kTimeout));
  EXPECT_THAT(a->payloads(), ::testing::ElementsAre("\"to a\""));

  two->Leave(b);
  ASSERT_TRUE(WaitFor(
      [&] {
        return a->presence() == std::vector<std::string>{"+b", "-b"};
      },
      kTimeout));
}

TEST_F(NatsBackplaneTest, OneSendersMixedTrafficArrivesInOrderOnAnotherInstance) {
  auto one = NewInstance("one");
  auto two = NewInstance("two");
  const auto joined = JoinAcross(*one, *two);
  ASSERT_FALSE(HasFailure());
  auto a = joined.first;
  auto b = joined.second;
  constexpr int kMessages = 1000;
  std::vector<std::string> sent;
  for (int i = 0; i < kMessages; ++i) {
    const std::string payload = std::to_string(i);
    sent.push_back(payload);
    one->Handle(a, i % 3 == 0 ? BroadcastEvent(payload) : DirectEvent("b", payload));
  }
  ASSERT_TRUE(WaitFor([&] { return b->payloads().size() >= kMessages; }, kTimeout))
      << b->payloads().size();
  EXPECT_EQ(b->payloads(), sent);
}

TEST_F(NatsBackplaneTest, AKilledInstancesPeersLeaveEverywhereWithinTenSeconds) {
  auto one = NewInstance("one");
  auto two = NewInstance("two");
  const auto joined = JoinAcross(*one, *two);
  ASSERT_FALSE(HasFailure());
  auto a = joined.first;
  auto b = joined.second;
  const auto killed = std::chrono::steady_clock::now();
  two->Kill();
  ASSERT_TRUE(WaitFor(
      [&] {
        return a->presence() == std::vector<std::string>{"+b", "-b"};
      },
      std::chrono::seconds(10)))
      << "no peer_left within 10 s of the kill";
  std::cerr << "peer_left after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - killed)
                   .count()
            << " ms\n";
  // The survivor still relays.
  auto c = one->Join("m", "c");
  ASSERT_TRUE(WaitFor([&] { return a->presence().size() == 3; }, kTimeout));
  one->Handle(c, DirectEvent("a", "\"still here\""));
  ASSERT_TRUE(WaitFor([&] { return a->payloads().size() == 1; }, kTimeout));
}

TEST_F(NatsBackplaneTest, AGracefulStopIsAnnouncedAtOnce) {
  auto one = NewInstance("one");
  auto two = NewInstance("two");
  const auto joined = JoinAcross(*one, *two);
  ASSERT_FALSE(HasFailure());
  auto a = joined.first;
  auto b = joined.second;
  two->Stop();
  // Well inside the 6 s a silent instance takes to be declared dead.
  ASSERT_TRUE(WaitFor(
      [&] {
        return a->presence() == std::vector<std::string>{"+b", "-b"};
      },
      std::chrono::seconds(3)));
}

TEST_F(NatsBackplaneTest, ASecondProcessWithTheSameInstanceIdRefusesToStart) {
  auto one = NewInstance("same");
  Instance twin(*server_->Url(), cluster_, "same");
  ASSERT_TRUE(WaitFor([&] { return twin.fatal().has_value(); }, kTimeout));
  EXPECT_THAT(twin.fatal()->message(), ::testing::HasSubstr("instance_id_in_use"));
  EXPECT_FALSE(twin.Ready());
  EXPECT_TRUE(one->Ready());
}

TEST_F(NatsBackplaneTest, ARestartedInstanceTakesItsIdBackAndRejoins) {
  auto one = NewInstance("one");
  auto a = one->Join("m", "a");
  ASSERT_TRUE(WaitFor([&] { return a->Saw([](auto& e) { return e.has_joined(); }); }, kTimeout));
  {
    auto two = NewInstance("two");
    auto b = two->Join("m", "b");
    ASSERT_TRUE(WaitFor([&] { return a->presence().size() == 1; }, kTimeout));
    two->Stop();
  }
  auto again = NewInstance("two");
  auto b = again->Join("m", "b");
  ASSERT_TRUE(WaitFor(
      [&] {
        return a->presence() == std::vector<std::string>{"+b", "-b", "+b"};
      },
      kTimeout));
  again->Handle(b, DirectEvent("a", "\"back\""));
  ASSERT_TRUE(WaitFor([&] { return a->payloads().size() == 1; }, kTimeout));
}

TEST_F(NatsBackplaneTest, WithNatsGoneADirectToAnotherInstanceIsRefusedToItsSender) {
  auto one = NewInstance("one");
  auto two = NewInstance("two");
  const auto joined = JoinAcross(*one, *two);
  ASSERT_FALSE(HasFailure());
  auto a = joined.first;
  auto b = joined.second;
  server_->Stop();
  ASSERT_TRUE(WaitFor([&] { return !one->Ready(); }, kTimeout));
  one->Handle(a, DirectEvent("b", "\"lost?\""));
  EXPECT_TRUE(a->Saw([](const relay::v1::ServerEvent& e) {
    return e.has_error() && e.error().code() == "cluster_unavailable";
  }));
  ASSERT_TRUE(server_->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return one->Ready() && two->Ready(); }, kTimeout));
  // Nobody was declared gone for NATS's outage, and traffic flows again.
  EXPECT_EQ(a->presence(), std::vector<std::string>{"+b"});
  one->Handle(a, DirectEvent("b", "\"after\""));
  ASSERT_TRUE(WaitFor([&] { return b->payloads().size() == 1; }, kTimeout));
  EXPECT_THAT(b->payloads(), ::testing::ElementsAre("\"after\""));
}

}  // namespace
}  // namespace relay::backplane::nats

namespace relay::backplane::nats {
namespace {

TEST_F(NatsBackplaneTest, TwoInstancesRacingForOneNodeIdAdmitExactlyOne) {
  auto one = NewInstance("one");
  auto two = NewInstance("two");
  for (int round = 0; round < 5; ++round) {
    const std::string mesh = absl::StrCat("race", round);
    auto first = one->Join(mesh, "n");
    auto second = two->Join(mesh, "n");
    auto decided = [](const std::shared_ptr<Client>& c) {
      return c->Saw([](auto& e) { return e.has_joined() || e.has_error(); });
    };
    ASSERT_TRUE(WaitFor([&] { return decided(first) && decided(second); }, kTimeout)) << round;
    const bool first_joined = first->Saw([](auto& e) { return e.has_joined(); });
    const bool second_joined = second->Saw([](auto& e) { return e.has_joined(); });
    EXPECT_NE(first_joined, second_joined) << "round " << round << ": exactly one may hold n";
    const auto& loser = first_joined ? second : first;
    EXPECT_TRUE(loser->Saw([](const relay::v1::ServerEvent& e) {
      return e.has_error() && e.error().code() == "node_id_in_use";
    })) << round;
  }
}

}  // namespace
}  // namespace relay::backplane::nats
