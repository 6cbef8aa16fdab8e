// Tests for server/core/relay_core.cc: every routing rule of the spec,
// driven through Connect/Handle/Disconnect with recording sinks and a fake
// clock. No sockets, no JSON, no sleeps.
#include "server/core/relay_core.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/client_events.h"
#include "tests/core/fake_backplane.h"
#include "tests/core/fake_clock.h"
#include "tests/core/recording_sink.h"

namespace relay::core {
namespace {

using ::relay::core::testing::BroadcastEvent;
using ::relay::core::testing::CapabilitiesUpdateEvent;
using ::relay::core::testing::DirectEvent;
using ::relay::core::testing::FakeBackplane;
using ::relay::core::testing::FakeClock;
using ::relay::core::testing::LlmRequestEvent;
using ::relay::core::testing::LlmResponseEvent;
using ::relay::core::testing::PingEvent;
using ::relay::core::testing::RecordingSink;
using ::relay::core::testing::RegisterEvent;
using ::relay::core::testing::UnroutedEvent;
using ::relay::v1::ClientEvent;
using ::relay::v1::ServerEvent;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::IsSupersetOf;

struct Peer {
  ConnectionId id = 0;
  std::shared_ptr<RecordingSink> sink;
  std::size_t instance = 0;  // which RelayCore holds its connection
};

double EpochSeconds(absl::Time t) { return absl::ToDoubleSeconds(t - absl::UnixEpoch()); }

std::uint64_t ErrorCount(const relay::v1::Stats& stats, const std::string& code) {
  for (const auto& e : stats.errors()) {
    if (e.code() == code) return e.count();
  }
  ADD_FAILURE() << "no error counter " << code;
  return 0;
}

std::uint64_t CloseCount(const relay::v1::Stats& stats, const std::string& reason) {
  for (const auto& c : stats.closes()) {
    if (c.reason() == reason) return c.count();
  }
  ADD_FAILURE() << "no close counter " << reason;
  return 0;
}

// A sink whose transport reports byte counters (as the WebSocket gateway's).
class CountingSink final : public PeerSink {
 public:
  explicit CountingSink(Counters counters) : counters_(counters) {}
  SendResult Send(const ServerEventPtr&) override { return SendResult::Queued(); }
  void Close(CloseReason) override {}
  Counters counters() const override { return counters_; }

 private:
  Counters counters_;
};

std::uint64_t Deliveries(const TrafficCounters& t, TrafficType type) {
  return t.deliveries[static_cast<std::size_t>(type)];
}
std::uint64_t PayloadBytes(const TrafficCounters& t, TrafficType type) {
  return t.payload_bytes[static_cast<std::size_t>(type)];
}
std::uint64_t Outcomes(const TrafficCounters& t, LlmOutcome outcome) {
  return t.llm_outcomes[static_cast<std::size_t>(outcome)];
}

// Request ids of the llm_peer_left errors a sink received, in order.
std::vector<std::string> LlmPeerLeftIds(const RecordingSink& sink) {
  std::vector<std::string> out;
  for (const ServerEventPtr& e : sink.events) {
    if (e->has_error() && e->error().code() == "llm_peer_left") {
      out.push_back(e->error().request_id());
    }
  }
  return out;
}

// Drives one RelayCore, or several joined by a FakeBackplane with the
// peers spread over them (Open() places each new peer on the next
// instance): the rules must give the same answers either way.
class RelayCoreTest : public ::testing::Test {
 protected:
  // How many instances the peers are spread over.
  virtual int Instances() const { return 1; }

  void SetUp() override { Reset(CoreConfig{}); }

  void Reset(CoreConfig config) {
    cores_.clear();
    bus_ = std::make_unique<FakeBackplane>();
    for (int i = 0; i < Instances(); ++i) {
      Backplane* backplane = Instances() > 1 ? bus_->Add(absl::StrCat("instance-", i)) : nullptr;
      cores_.push_back(std::make_unique<RelayCore>(config, &clock_, nullptr, nullptr, backplane));
    }
    core_ = cores_.front().get();
    next_instance_ = 0;
  }

  Peer Open(const std::string& remote = "10.0.0.1:4000") {
    Peer peer;
    peer.sink = std::make_shared<RecordingSink>();
    peer.instance = next_instance_++ % cores_.size();
    peer.id = cores_[peer.instance]->Connect(ConnectionInfo{remote, "ws"}, peer.sink);
    return peer;
  }

  // The peer's own instance handles the event; then every envelope it
  // caused crosses (FakeBackplane delivers only when asked).
  void Handle(const Peer& peer, const ClientEvent& event, std::size_t wire_bytes = 0) {
    cores_[peer.instance]->Handle(peer.id, event, wire_bytes);
    bus_->DeliverAll();
  }
  void Disconnect(const Peer& peer, CloseReason reason) {
    cores_[peer.instance]->Disconnect(peer.id, reason);
    bus_->DeliverAll();
  }
  void RejectUndecodable(const Peer& peer, ErrorCode code, absl::string_view message,
                         absl::string_view request_id_json = {}) {
    cores_[peer.instance]->RejectUndecodable(peer.id, code, message, request_id_json);
    bus_->DeliverAll();
  }

  // Opens a connection and registers it; the sink starts empty afterwards.
  Peer Join(const std::string& mesh, const std::string& node,
            const std::vector<std::string>& caps = {}, const std::string& token = "") {
    Peer peer = Open();
    Handle(peer, RegisterEvent(mesh, node, caps, token));
    EXPECT_FALSE(peer.sink->events.empty()) << node << " got nothing on register";
    EXPECT_TRUE(!peer.sink->events.empty() && peer.sink->events.front()->has_joined())
        << node << " did not join";
    peer.sink->Clear();
    return peer;
  }

  // Registered peers on every instance.
  std::size_t TotalPeers() const {
    std::size_t peers = 0;
    for (const auto& core : cores_) peers += core->Health().peers;
    return peers;
  }

  void ClearAll(std::initializer_list<Peer*> peers) {
    for (Peer* p : peers) p->sink->Clear();
  }

  FakeClock clock_;
  std::unique_ptr<FakeBackplane> bus_;  // outlives the cores, which use it
  std::vector<std::unique_ptr<RelayCore>> cores_;
  RelayCore* core_ = nullptr;  // the first instance: the views tests read
  std::size_t next_instance_ = 0;
};

// The rules every relay instance must give the same answers for, whether
// the peers share one instance (Local/...) or are spread over two or three
// joined by the backplane (Backplane/...: `ctest -R Backplane`). Left to
// RelayCoreTest (one instance): the views and counters of one instance,
// open-mesh takeover probes (a holder elsewhere cannot be probed from here:
// node_id_in_use), token bindings (per instance until the auth store is
// shared, cluster mode) and the fan-out's one shared event pointer.
class RelayCoreRulesTest : public RelayCoreTest, public ::testing::WithParamInterface<int> {
 protected:
  int Instances() const override { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Local, RelayCoreRulesTest, ::testing::Values(1));
INSTANTIATE_TEST_SUITE_P(Backplane, RelayCoreRulesTest, ::testing::Values(2, 3),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return absl::StrCat(info.param, "Instances");
                         });

// --- register / join -------------------------------------------------------

TEST_P(RelayCoreRulesTest, FirstRegisterAnswersJoinedWithNodeCountOneThenEmptyPeers) {
  Peer alice = Open();

  Handle(alice, RegisterEvent("lobby", "alice"));

  ASSERT_EQ(alice.sink->events.size(), 2u);
  ASSERT_TRUE(alice.sink->events[0]->has_joined());
  EXPECT_EQ(alice.sink->events[0]->joined().mesh_id(), "lobby");
  EXPECT_EQ(alice.sink->events[0]->joined().node_count(), 1u);
  ASSERT_TRUE(alice.sink->events[1]->has_peers());
  EXPECT_EQ(alice.sink->events[1]->peers().peers_size(), 0);
}

TEST_P(RelayCoreRulesTest, RegisterListsTheOtherPeersInJoinOrderWithJoinedAtFromTheClock) {
  const absl::Time t0 = clock_.Now();
  Join("lobby", "alice", {"llm"});
  clock_.Advance(absl::Seconds(5));
  Join("lobby", "bob", {"chat", "x"});
  clock_.Advance(absl::Milliseconds(2500));
  Peer carol = Open();

  Handle(carol, RegisterEvent("lobby", "carol", {}, "", "Carol C"));

  ASSERT_EQ(carol.sink->events.size(), 2u);
  ASSERT_TRUE(carol.sink->events[0]->has_joined());
  EXPECT_EQ(carol.sink->events[0]->joined().node_count(), 3u);
  ASSERT_TRUE(carol.sink->events[1]->has_peers());
  const auto& peers = carol.sink->events[1]->peers().peers();
  ASSERT_EQ(peers.size(), 2);
  EXPECT_EQ(peers[0].node_id(), "alice");
  EXPECT_EQ(peers[0].name(), "alice");
  EXPECT_THAT(peers[0].capabilities(), ElementsAre("llm"));
  EXPECT_DOUBLE_EQ(peers[0].joined_at(), EpochSeconds(t0));
  EXPECT_EQ(peers[1].node_id(), "bob");
  EXPECT_THAT(peers[1].capabilities(), ElementsAre("chat", "x"));
  EXPECT_DOUBLE_EQ(peers[1].joined_at(), EpochSeconds(t0 + absl::Seconds(5)));
}

TEST_P(RelayCoreRulesTest, RegisterAnnouncesPeerJoinedToEveryOtherPeerOnly) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  ClearAll({&alice, &bob});
  Peer carol = Open();

  Handle(carol, RegisterEvent("lobby", "carol", {"llm"}, "", "Carol"));

  for (Peer* p : {&alice, &bob}) {
    ASSERT_EQ(p->sink->events.size(), 1u);
    ASSERT_TRUE(p->sink->events[0]->has_peer_joined());
    const relay::v1::PeerInfo& info = p->sink->events[0]->peer_joined().peer();
    EXPECT_EQ(info.node_id(), "carol");
    EXPECT_EQ(info.name(), "Carol");
    EXPECT_THAT(info.capabilities(), ElementsAre("llm"));
  }
  EXPECT_THAT(carol.sink->OfCase(ServerEvent::kPeerJoined), IsEmpty());
}

TEST_P(RelayCoreRulesTest, JoinViaJoinRegistersLikeRegister) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Open();
  ClientEvent join = RegisterEvent("lobby", "bob");
  join.mutable_register_()->set_via_join(true);

  Handle(bob, join);

  ASSERT_FALSE(bob.sink->events.empty());
  ASSERT_TRUE(bob.sink->events[0]->has_joined());
  EXPECT_EQ(bob.sink->events[0]->joined().node_count(), 2u);
  ASSERT_EQ(alice.sink->OfCase(ServerEvent::kPeerJoined).size(), 1u);
  EXPECT_EQ(TotalPeers(), 2u);
}

TEST_P(RelayCoreRulesTest, DefaultNameIsTheFirstEightCharactersOfNodeId) {
  Peer alice = Join("lobby", "observer");
  Peer bob = Open();

  Handle(bob, RegisterEvent("lobby", "abcdefghijkl"));
  Peer carol = Open();
  Handle(carol, RegisterEvent("lobby", "abc"));

  auto joined = alice.sink->OfCase(ServerEvent::kPeerJoined);
  ASSERT_EQ(joined.size(), 2u);
  EXPECT_EQ(joined[0]->peer_joined().peer().name(), "abcdefgh");
  EXPECT_EQ(joined[1]->peer_joined().peer().name(), "abc");
}

TEST_P(RelayCoreRulesTest, DefaultNameCountsUtf8CharactersNotBytes) {
  Peer alice = Join("lobby", "observer");
  Peer bob = Open();
  // Nine two-byte characters, then a four-byte emoji node id.
  Handle(bob, RegisterEvent("lobby",
                            "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
                            "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"));
  Peer carol = Open();
  Handle(carol, RegisterEvent("lobby",
                              "ab\xF0\x9F\x98\x80"
                              "cdefgh"));

  auto joined = alice.sink->OfCase(ServerEvent::kPeerJoined);
  ASSERT_EQ(joined.size(), 2u);
  EXPECT_EQ(joined[0]->peer_joined().peer().name(),
            "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9");
  EXPECT_EQ(joined[1]->peer_joined().peer().name(),
            "ab\xF0\x9F\x98\x80"
            "cdefg");
}

TEST_P(RelayCoreRulesTest, ExplicitNameIsKept) {
  Peer alice = Join("lobby", "observer");
  Peer bob = Open();

  Handle(bob, RegisterEvent("lobby", "bob-node-123456", {}, "", "Bob's phone"));

  auto joined = alice.sink->OfCase(ServerEvent::kPeerJoined);
  ASSERT_EQ(joined.size(), 1u);
  EXPECT_EQ(joined[0]->peer_joined().peer().name(), "Bob's phone");
}

TEST_F(RelayCoreTest, RegisterWithEmptyNodeIdAnswersBadMessageAndStaysUnregistered) {
  Peer alice = Open();

  Handle(alice, RegisterEvent("lobby", ""));
  Handle(alice, PingEvent());

  EXPECT_THAT(alice.sink->ErrorCodes(), ElementsAre("bad_message", "not_registered"));
  EXPECT_EQ(core_->Health().meshes, 0u);
  EXPECT_EQ(TotalPeers(), 0u);
}

TEST_F(RelayCoreTest, RegisterWithNodeIdOf257BytesAnswersBadMessage) {
  Peer alice = Open();

  Handle(alice, RegisterEvent("lobby", std::string(257, 'n')));

  EXPECT_THAT(alice.sink->ErrorCodes(), ElementsAre("bad_message"));
  EXPECT_THAT(alice.sink->OfCase(ServerEvent::kJoined), IsEmpty());
  EXPECT_EQ(core_->Health().meshes, 0u);
}

TEST_P(RelayCoreRulesTest, RegisterWithNodeIdOf256BytesIsAccepted) {
  Peer alice = Open();

  Handle(alice, RegisterEvent("lobby", std::string(256, 'n')));

  EXPECT_THAT(alice.sink->ErrorCodes(), IsEmpty());
  EXPECT_EQ(alice.sink->OfCase(ServerEvent::kJoined).size(), 1u);
}

TEST_P(RelayCoreRulesTest, RegisterWithTooManyCapabilitiesAnswersBadMessage) {
  Peer alice = Open();
  std::vector<std::string> caps;
  for (int i = 0; i < 65; ++i) caps.push_back("c" + std::to_string(i));

  Handle(alice, RegisterEvent("lobby", "alice", caps));

  EXPECT_THAT(alice.sink->ErrorCodes(), ElementsAre("bad_message"));
  EXPECT_EQ(TotalPeers(), 0u);

  caps.pop_back();  // 64 is the limit
  Handle(alice, RegisterEvent("lobby", "alice", caps));
  EXPECT_EQ(alice.sink->OfCase(ServerEvent::kJoined).size(), 1u);
}

TEST_P(RelayCoreRulesTest, RegisterWithOverlongCapabilityAnswersBadMessage) {
  Peer alice = Open();

  Handle(alice, RegisterEvent("lobby", "alice", {std::string(129, 'c')}));

  EXPECT_THAT(alice.sink->ErrorCodes(), ElementsAre("bad_message"));
  EXPECT_EQ(TotalPeers(), 0u);
}

TEST_F(RelayCoreTest, RegisterTwiceAnswersAlreadyRegistered) {
  Peer alice = Join("lobby", "alice");

  Handle(alice, RegisterEvent("lobby", "alice2"));

  EXPECT_THAT(alice.sink->ErrorCodes(), ElementsAre("already_registered"));
  EXPECT_EQ(TotalPeers(), 1u);
  auto mesh = core_->GetMesh("lobby");
  ASSERT_TRUE(mesh.ok());
  ASSERT_EQ(mesh->peers_size(), 1);
  EXPECT_EQ(mesh->peers(0).node_id(), "alice");
}

// --- leaving ---------------------------------------------------------------

TEST_P(RelayCoreRulesTest, DisconnectAnnouncesPeerLeftToTheRemainingPeers) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  Peer carol = Join("lobby", "carol");
  ClearAll({&alice, &bob, &carol});

  Disconnect(bob, CloseReason::kClientClosed);

  for (Peer* p : {&alice, &carol}) {
    ASSERT_EQ(p->sink->events.size(), 1u);
    ASSERT_TRUE(p->sink->events[0]->has_peer_left());
    EXPECT_EQ(p->sink->events[0]->peer_left().node_id(), "bob");
  }
  EXPECT_THAT(bob.sink->events, IsEmpty());
  EXPECT_EQ(TotalPeers(), 2u);
}

TEST_F(RelayCoreTest, DisconnectOfTheLastPeerRemovesTheMesh) {
  Peer alice = Join("lobby", "alice");
  Join("other", "zed");
  ASSERT_EQ(core_->Health().meshes, 2u);

  Disconnect(alice, CloseReason::kKeepaliveTimeout);

  EXPECT_EQ(core_->Health().meshes, 1u);
  const relay::v1::ListMeshesResponse list = core_->ListMeshes();
  ASSERT_EQ(list.meshes_size(), 1);
  EXPECT_EQ(list.meshes(0).mesh_id(), "other");
  EXPECT_EQ(core_->GetMesh("lobby").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RelayCoreTest, DisconnectOfUnregisteredConnectionAnnouncesNothing) {
  Peer alice = Join("lobby", "alice");
  Peer lurker = Open();

  Disconnect(lurker, CloseReason::kClientClosed);

  EXPECT_THAT(alice.sink->events, IsEmpty());
  EXPECT_EQ(core_->OpenConnections(), 1u);
}

TEST_F(RelayCoreTest, DisconnectOfUnknownIdIsIgnored) {
  Peer alice = Join("lobby", "alice");

  core_->Disconnect(alice.id + 1000, CloseReason::kClientClosed);
  Disconnect(alice, CloseReason::kClientClosed);
  Disconnect(alice, CloseReason::kClientClosed);

  EXPECT_EQ(core_->OpenConnections(), 0u);
  EXPECT_EQ(core_->Health().meshes, 0u);
}

// --- broadcast / direct ----------------------------------------------------

TEST_P(RelayCoreRulesTest, BroadcastReachesEveryOtherPeerButNeverTheSender) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  Peer carol = Join("lobby", "carol");
  ClearAll({&alice, &bob, &carol});

  Handle(alice, BroadcastEvent("{\"x\": [1, 2]}"));

  for (Peer* p : {&bob, &carol}) {
    ASSERT_EQ(p->sink->events.size(), 1u);
    ASSERT_TRUE(p->sink->events[0]->has_message());
    EXPECT_EQ(p->sink->events[0]->message().from(), "alice");
    EXPECT_EQ(p->sink->events[0]->message().payload(), "{\"x\": [1, 2]}");
  }
  EXPECT_THAT(alice.sink->events, IsEmpty());
}

TEST_P(RelayCoreRulesTest, BroadcastAloneInTheMeshIsSilent) {
  Peer alice = Join("lobby", "alice");

  Handle(alice, BroadcastEvent("null"));

  EXPECT_THAT(alice.sink->events, IsEmpty());
}

TEST_F(RelayCoreTest, FanOutGivesTheSameEventPointerToEveryRecipient) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  Peer carol = Join("lobby", "carol");
  ClearAll({&alice, &bob, &carol});

  Handle(alice, BroadcastEvent("1"));
  Peer dave = Join("lobby", "dave");             // peer_joined fan-out
  Disconnect(dave, CloseReason::kClientClosed);  // peer_left fan-out

  ASSERT_EQ(bob.sink->events.size(), 3u);
  ASSERT_EQ(carol.sink->events.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(bob.sink->events[i].get(), carol.sink->events[i].get()) << "event " << i;
  }
  ASSERT_EQ(alice.sink->events.size(), 2u);
  EXPECT_EQ(alice.sink->events[0].get(), bob.sink->events[1].get());
  EXPECT_EQ(alice.sink->events[1].get(), bob.sink->events[2].get());
}

TEST_P(RelayCoreRulesTest, DirectReachesOnlyTheTarget) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  Peer carol = Join("lobby", "carol");
  ClearAll({&alice, &bob, &carol});

  Handle(alice, DirectEvent("carol", "\"hi \\u00e9\""));

  ASSERT_EQ(carol.sink->events.size(), 1u);
  ASSERT_TRUE(carol.sink->events[0]->has_message());
  EXPECT_EQ(carol.sink->events[0]->message().from(), "alice");
  EXPECT_EQ(carol.sink->events[0]->message().payload(), "\"hi \\u00e9\"");
  EXPECT_THAT(bob.sink->events, IsEmpty());
  EXPECT_THAT(alice.sink->events, IsEmpty());
}

TEST_P(RelayCoreRulesTest, DirectToSelfDeliversToSelf) {
  Peer alice = Join("lobby", "alice");

  Handle(alice, DirectEvent("alice", "42"));

  ASSERT_EQ(alice.sink->events.size(), 1u);
  ASSERT_TRUE(alice.sink->events[0]->has_message());
  EXPECT_EQ(alice.sink->events[0]->message().from(), "alice");
  EXPECT_EQ(alice.sink->events[0]->message().payload(), "42");
}

TEST_P(RelayCoreRulesTest, DirectToUnknownTargetAnswersUnknownTarget) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  ClearAll({&alice, &bob});

  Handle(alice, DirectEvent("nobody", "1"));

  EXPECT_THAT(alice.sink->ErrorCodes(), ElementsAre("unknown_target"));
  ASSERT_EQ(alice.sink->events.size(), 1u);
  EXPECT_TRUE(alice.sink->events[0]->error().request_id().empty());
  EXPECT_THAT(bob.sink->events, IsEmpty());
}

TEST_F(RelayCoreTest, MeshesAreIsolated) {
  Peer alice = Join("red", "alice");
  Peer bob = Join("red", "bob");
  Peer other_alice = Join("blue", "alice");  // same node_id, other mesh: fine
  Peer carol = Join("blue", "carol");
  ClearAll({&alice, &bob, &other_alice, &carol});

  Handle(alice, BroadcastEvent("1"));
  Handle(alice, DirectEvent("carol", "2"));

  EXPECT_EQ(bob.sink->OfCase(ServerEvent::kMessage).size(), 1u);
  EXPECT_THAT(other_alice.sink->events, IsEmpty());
  EXPECT_THAT(carol.sink->events, IsEmpty());
  EXPECT_THAT(alice.sink->ErrorCodes(), ElementsAre("unknown_target"));
  EXPECT_EQ(core_->Health().meshes, 2u);
  EXPECT_EQ(TotalPeers(), 4u);
}

// --- llm routing -----------------------------------------------------------

TEST_P(RelayCoreRulesTest, LlmRequestGoesToExactlyOneCapableOtherPeer) {
  Peer asker = Join("lobby", "asker");
  Peer plain = Join("lobby", "plain", {"vision"});
  Peer model = Join("lobby", "model", {"vision", "llm"});
  ClearAll({&asker, &plain, &model});

  Handle(asker, LlmRequestEvent("\"r1\"", "\"prompt\":\"hi\",\"model\":\"m\""));

  ASSERT_EQ(model.sink->events.size(), 1u);
  ASSERT_TRUE(model.sink->events[0]->has_llm_request());
  const auto& delivery = model.sink->events[0]->llm_request();
  EXPECT_EQ(delivery.from(), "asker");
  EXPECT_EQ(delivery.request().request_id(), "\"r1\"");
  EXPECT_EQ(delivery.request().members(), "\"prompt\":\"hi\",\"model\":\"m\"");
  EXPECT_EQ(delivery.request().kind(), relay::v1::LLM_REQUEST_KIND_LLM);
  EXPECT_THAT(plain.sink->events, IsEmpty());
  EXPECT_THAT(asker.sink->events, IsEmpty());
}

TEST_P(RelayCoreRulesTest, LlmRequestNeverGoesToTheRequesterEvenIfCapable) {
  Peer asker = Join("lobby", "asker", {"llm"});
  Peer plain = Join("lobby", "plain");
  ClearAll({&asker, &plain});

  Handle(asker, LlmRequestEvent("7"));

  EXPECT_THAT(asker.sink->OfCase(ServerEvent::kLlmRequest), IsEmpty());
  ASSERT_EQ(asker.sink->events.size(), 1u);
  ASSERT_TRUE(asker.sink->events[0]->has_error());
  EXPECT_EQ(asker.sink->events[0]->error().code(), "no_llm_peer");
  EXPECT_EQ(asker.sink->events[0]->error().request_id(), "7");
  EXPECT_THAT(plain.sink->events, IsEmpty());
}

TEST_P(RelayCoreRulesTest, LlmRequestWithNoCapablePeerAnswersNoLlmPeerWithRequestId) {
  Peer asker = Join("lobby", "asker");

  Handle(asker, LlmRequestEvent("\"abc\""));

  ASSERT_EQ(asker.sink->events.size(), 1u);
  ASSERT_TRUE(asker.sink->events[0]->has_error());
  EXPECT_EQ(asker.sink->events[0]->error().code(), "no_llm_peer");
  EXPECT_EQ(asker.sink->events[0]->error().request_id(), "\"abc\"");
}

TEST_P(RelayCoreRulesTest, LlmRequestGoesToThePeerHoldingFewestOutstandingRequests) {
  Peer asker = Join("lobby", "asker");
  Peer x = Join("lobby", "x", {"llm"});
  Peer y = Join("lobby", "y", {"llm"});

  Handle(asker, LlmRequestEvent("1"));        // x (tie, first in join order)
  Handle(asker, LlmRequestEvent("2"));        // y (x holds 1)
  Handle(y, LlmResponseEvent("asker", "2"));  // y holds 0 again
  Handle(asker, LlmRequestEvent("3"));        // y: fewer than x, though x's turn
  Handle(asker, LlmRequestEvent("4"));        // tie 1-1: round robin -> x

  auto x_got = x.sink->OfCase(ServerEvent::kLlmRequest);
  auto y_got = y.sink->OfCase(ServerEvent::kLlmRequest);
  ASSERT_EQ(x_got.size(), 2u);
  ASSERT_EQ(y_got.size(), 2u);
  EXPECT_EQ(x_got[0]->llm_request().request().request_id(), "1");
  EXPECT_EQ(y_got[0]->llm_request().request().request_id(), "2");
  EXPECT_EQ(y_got[1]->llm_request().request().request_id(), "3");
  EXPECT_EQ(x_got[1]->llm_request().request().request_id(), "4");
}

TEST_P(RelayCoreRulesTest, LlmRequestTiesAreBrokenRoundRobinInJoinOrder) {
  Peer asker = Join("lobby", "asker");
  Peer x = Join("lobby", "x", {"llm"});
  Peer plain = Join("lobby", "plain");
  Peer y = Join("lobby", "y", {"llm"});
  Peer z = Join("lobby", "z", {"llm"});
  std::vector<std::string> order;

  // Every responder answers at once, so all are always tied at zero.
  for (int i = 0; i < 7; ++i) {
    const std::string rid = std::to_string(i);
    Handle(asker, LlmRequestEvent(rid));
    for (Peer* p : {&x, &y, &z}) {
      auto got = p->sink->OfCase(ServerEvent::kLlmRequest);
      if (!got.empty() && got.back()->llm_request().request().request_id() == rid) {
        order.push_back(p == &x ? "x" : p == &y ? "y" : "z");
        Handle(*p, LlmResponseEvent("asker", rid));
      }
    }
  }

  EXPECT_THAT(order, ElementsAre("x", "y", "z", "x", "y", "z", "x"));
  EXPECT_THAT(plain.sink->OfCase(ServerEvent::kLlmRequest), IsEmpty());
}

TEST_P(RelayCoreRulesTest, ChatRequestKeepsItsKind) {
  Peer asker = Join("lobby", "asker");
  Peer model = Join("lobby", "model", {"llm"});
  ClientEvent chat = LlmRequestEvent("\"c\"");
  chat.mutable_llm_request()->set_kind(relay::v1::LLM_REQUEST_KIND_CHAT);

  Handle(asker, chat);

  auto got = model.sink->OfCase(ServerEvent::kLlmRequest);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]->llm_request().request().kind(), relay::v1::LLM_REQUEST_KIND_CHAT);
}

TEST_P(RelayCoreRulesTest, LlmResponseIsDeliveredToTheTargetWithFromAndSettlesTheRequest) {
  Peer asker = Join("lobby", "asker");
  Peer model = Join("lobby", "model", {"llm"});
  Peer bystander = Join("lobby", "bystander");
  Handle(asker, LlmRequestEvent("\"q\""));
  ClearAll({&asker, &model, &bystander});

  Handle(model, LlmResponseEvent("asker", "\"q\"", "\"response\":\"42\",\"x\":1"));

  ASSERT_EQ(asker.sink->events.size(), 1u);
  ASSERT_TRUE(asker.sink->events[0]->has_llm_response());
  const auto& delivery = asker.sink->events[0]->llm_response();
  EXPECT_EQ(delivery.from(), "model");
  EXPECT_EQ(delivery.response().request_id(), "\"q\"");
  EXPECT_EQ(delivery.response().members(), "\"response\":\"42\",\"x\":1");
  EXPECT_THAT(bystander.sink->events, IsEmpty());

  // Settled: the responder leaving no longer fails the request.
  Disconnect(model, CloseReason::kClientClosed);
  EXPECT_THAT(LlmPeerLeftIds(*asker.sink), IsEmpty());
}

TEST_P(RelayCoreRulesTest, LlmResponseToUnknownTargetAnswersUnknownTargetWithRequestId) {
  Peer model = Join("lobby", "model", {"llm"});

  Handle(model, LlmResponseEvent("gone", "\"q9\""));

  ASSERT_EQ(model.sink->events.size(), 1u);
  ASSERT_TRUE(model.sink->events[0]->has_error());
  EXPECT_EQ(model.sink->events[0]->error().code(), "unknown_target");
  EXPECT_EQ(model.sink->events[0]->error().request_id(), "\"q9\"");
}

TEST_P(RelayCoreRulesTest, ResponderLeavingSendsLlmPeerLeftToEachRequesterOldestFirst) {
  Peer r1 = Join("lobby", "r1");
  Peer r2 = Join("lobby", "r2");
  Peer model = Join("lobby", "model", {"llm"});
  Handle(r1, LlmRequestEvent("\"a\""));
  Handle(r2, LlmRequestEvent("\"b\""));
  Handle(r1, LlmRequestEvent("\"c\""));
  Handle(r1, LlmRequestEvent("\"d\""));
  Handle(model, LlmResponseEvent("r1", "\"c\""));  // settled: not reported
  ClearAll({&r1, &r2});

  Disconnect(model, CloseReason::kTransportError);

  EXPECT_THAT(LlmPeerLeftIds(*r1.sink), ElementsAre("\"a\"", "\"d\""));
  EXPECT_THAT(LlmPeerLeftIds(*r2.sink), ElementsAre("\"b\""));
  EXPECT_EQ(r1.sink->OfCase(ServerEvent::kPeerLeft).size(), 1u);
  EXPECT_EQ(r2.sink->OfCase(ServerEvent::kPeerLeft).size(), 1u);
}

// The shipped macOS server joins with its router's capability names, or a
// LlamaFarm project's; only a founder adds "llm". The default
// LLM_CAPABILITIES serves them as the reference relay does.
TEST_P(RelayCoreRulesTest, TheShippedMacsCapabilityNamesServeLlmRequestsByDefault) {
  for (const std::vector<std::string>& caps :
       std::vector<std::vector<std::string>>{{"chat", "embeddings", "completions"},
                                             {"embeddings", "my-llamafarm-project"},
                                             {"llamafarm"}}) {
    Reset(CoreConfig{});
    Peer asker = Join("lobby", "phone");
    Peer mac = Join("lobby", "mac", caps);
    ClearAll({&asker, &mac});
    Handle(asker, LlmRequestEvent("\"r\""));
    EXPECT_EQ(mac.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u) << caps[0];
    EXPECT_THAT(asker.sink->ErrorCodes(), IsEmpty()) << caps[0];
  }
  // Names that only look alike do not: matching is exact and case-sensitive.
  Reset(CoreConfig{});
  Peer asker = Join("lobby", "phone");
  Peer other = Join("lobby", "other", {"embeddings", "chatty", "LlamaFarm", "llm-ish"});
  ClearAll({&asker, &other});
  Handle(asker, LlmRequestEvent("\"r\""));
  EXPECT_THAT(asker.sink->ErrorCodes(), ElementsAre("no_llm_peer"));
  EXPECT_THAT(other.sink->OfCase(ServerEvent::kLlmRequest), IsEmpty());
}

TEST_P(RelayCoreRulesTest, LlmCapabilitiesDecideWhoServesAndCapabilitiesUpdateFollowsThem) {
  CoreConfig config;
  config.llm_capabilities = {"gpu-*"};
  Reset(config);
  Peer asker = Join("lobby", "asker");
  Peer plain = Join("lobby", "plain", {"llm", "chat"});
  ClearAll({&asker, &plain});
  Handle(asker, LlmRequestEvent("1"));
  EXPECT_THAT(asker.sink->ErrorCodes(), ElementsAre("no_llm_peer"));
  EXPECT_THAT(plain.sink->OfCase(ServerEvent::kLlmRequest), IsEmpty());

  Handle(plain, CapabilitiesUpdateEvent({"gpu-a100"}));
  ClearAll({&asker, &plain});
  Handle(asker, LlmRequestEvent("2"));
  EXPECT_EQ(plain.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
  EXPECT_THAT(asker.sink->ErrorCodes(), IsEmpty());
}

TEST_P(RelayCoreRulesTest, RequestsPastTheOutstandingLimitAnswerTooManyRequests) {
  CoreConfig config;
  config.max_outstanding_llm_requests_per_peer = 2;
  Reset(config);
  Peer asker = Join("lobby", "asker");
  Peer model = Join("lobby", "model", {"llm"});
  asker.sink->Clear();

  Handle(asker, LlmRequestEvent("1"));
  Handle(asker, LlmRequestEvent("2"));
  Handle(asker, LlmRequestEvent("3"));

  EXPECT_EQ(model.sink->OfCase(ServerEvent::kLlmRequest).size(), 2u);
  ASSERT_EQ(asker.sink->events.size(), 1u);
  ASSERT_TRUE(asker.sink->events[0]->has_error());
  EXPECT_EQ(asker.sink->events[0]->error().code(), "too_many_requests");
  EXPECT_EQ(asker.sink->events[0]->error().request_id(), "3");

  // One answer frees a slot.
  Handle(model, LlmResponseEvent("asker", "1"));
  asker.sink->Clear();
  Handle(asker, LlmRequestEvent("4"));
  EXPECT_EQ(model.sink->OfCase(ServerEvent::kLlmRequest).size(), 3u);
  EXPECT_THAT(asker.sink->ErrorCodes(), IsEmpty());
}

TEST_P(RelayCoreRulesTest, OutstandingLimitCountsPerRequester) {
  CoreConfig config;
  config.max_outstanding_llm_requests_per_peer = 1;
  Reset(config);
  Peer r1 = Join("lobby", "r1");
  Peer r2 = Join("lobby", "r2");
  Peer model = Join("lobby", "model", {"llm"});

  Handle(r1, LlmRequestEvent("1"));
  Handle(r2, LlmRequestEvent("1"));

  EXPECT_EQ(model.sink->OfCase(ServerEvent::kLlmRequest).size(), 2u);
  EXPECT_THAT(r1.sink->ErrorCodes(), IsEmpty());
  EXPECT_THAT(r2.sink->ErrorCodes(), IsEmpty());
}

// --- capabilities_update ---------------------------------------------------

TEST_F(RelayCoreTest, CapabilitiesUpdateAnnouncesPeerUpdatedAndTheNextRoutingUsesIt) {
  Peer asker = Join("lobby", "asker");
  Peer model = Join("lobby", "model");
  Handle(asker, LlmRequestEvent("1"));
  EXPECT_THAT(asker.sink->ErrorCodes(), ElementsAre("no_llm_peer"));
  ClearAll({&asker, &model});

  Handle(model, CapabilitiesUpdateEvent({"llm", "vision"}));
  Handle(asker, LlmRequestEvent("2"));

  auto updated = asker.sink->OfCase(ServerEvent::kPeerUpdated);
  ASSERT_EQ(updated.size(), 1u);
  EXPECT_EQ(updated[0]->peer_updated().node_id(), "model");
  EXPECT_THAT(updated[0]->peer_updated().capabilities(), ElementsAre("llm", "vision"));
  EXPECT_THAT(model.sink->OfCase(ServerEvent::kPeerUpdated), IsEmpty());
  EXPECT_EQ(model.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
  EXPECT_THAT(asker.sink->ErrorCodes(), IsEmpty());

  // Dropping "llm" takes it out of the very next decision too.
  Handle(model, CapabilitiesUpdateEvent({}));
  Handle(asker, LlmRequestEvent("3"));
  EXPECT_THAT(asker.sink->ErrorCodes(), ElementsAre("no_llm_peer"));
  auto mesh = core_->GetMesh("lobby");
  ASSERT_TRUE(mesh.ok());
  EXPECT_THAT(mesh->peers(1).capabilities(), IsEmpty());
}

TEST_P(RelayCoreRulesTest, CapabilitiesUpdateWithTooManyAnswersBadMessageAndKeepsTheOld) {
  Peer asker = Join("lobby", "asker");
  Peer model = Join("lobby", "model", {"llm"});
  std::vector<std::string> caps(65, "x");

  Handle(model, CapabilitiesUpdateEvent(caps));

  EXPECT_THAT(model.sink->ErrorCodes(), ElementsAre("bad_message"));
  EXPECT_THAT(asker.sink->OfCase(ServerEvent::kPeerUpdated), IsEmpty());
  Handle(asker, LlmRequestEvent("1"));
  EXPECT_EQ(model.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
}

// --- ping ------------------------------------------------------------------

TEST_P(RelayCoreRulesTest, PingAnswersPongWithTheClockTime) {
  Peer alice = Join("lobby", "alice");
  clock_.Advance(absl::Milliseconds(1234));

  Handle(alice, PingEvent());

  ASSERT_EQ(alice.sink->events.size(), 1u);
  ASSERT_TRUE(alice.sink->events[0]->has_pong());
  EXPECT_DOUBLE_EQ(alice.sink->events[0]->pong().timestamp(), EpochSeconds(clock_.Now()));
  EXPECT_DOUBLE_EQ(alice.sink->events[0]->pong().timestamp(), 1'700'000'001.484);
}

// --- before register -------------------------------------------------------

TEST_P(RelayCoreRulesTest, EveryEventBeforeRegisterAnswersNotRegisteredAndRelaysNothing) {
  Peer alice = Join("lobby", "alice", {"llm"});
  Peer lurker = Open();

  Handle(lurker, BroadcastEvent("1"));
  Handle(lurker, DirectEvent("alice", "2"));
  Handle(lurker, PingEvent());
  Handle(lurker, CapabilitiesUpdateEvent({"llm"}));
  Handle(lurker, LlmRequestEvent("\"req\""));
  Handle(lurker, LlmResponseEvent("alice", "17"));

  ASSERT_EQ(lurker.sink->events.size(), 6u);
  for (const ServerEventPtr& e : lurker.sink->events) {
    ASSERT_TRUE(e->has_error());
    EXPECT_EQ(e->error().code(), "not_registered");
  }
  EXPECT_TRUE(lurker.sink->events[0]->error().request_id().empty());
  EXPECT_EQ(lurker.sink->events[4]->error().request_id(), "\"req\"");
  EXPECT_EQ(lurker.sink->events[5]->error().request_id(), "17");
  EXPECT_THAT(alice.sink->events, IsEmpty());
}

// --- unrouted types (gossip, intent, route_request, route_response) --------

TEST_P(RelayCoreRulesTest, UnroutedTypesWithoutRequestIdAreDroppedSilentlyAndCountedByType) {
  Peer phone = Join("lobby", "phone");
  Peer mac = Join("lobby", "mac", {"llm"});
  ClearAll({&phone, &mac});

  Handle(phone, UnroutedEvent(relay::v1::UNROUTED_TYPE_GOSSIP));
  Handle(phone, UnroutedEvent(relay::v1::UNROUTED_TYPE_GOSSIP));
  Handle(phone, UnroutedEvent(relay::v1::UNROUTED_TYPE_ROUTE_RESPONSE));
  Handle(phone, PingEvent());

  ASSERT_EQ(phone.sink->events.size(), 1u);  // the pong: nothing for the gossip
  EXPECT_TRUE(phone.sink->events[0]->has_pong());
  EXPECT_THAT(mac.sink->events, IsEmpty());
  const TrafficCounters& traffic = core_->traffic();
  EXPECT_EQ(traffic.unrouted[static_cast<std::size_t>(UnroutedType::kGossip)], 2u);
  EXPECT_EQ(traffic.unrouted[static_cast<std::size_t>(UnroutedType::kIntent)], 0u);
  EXPECT_EQ(traffic.unrouted[static_cast<std::size_t>(UnroutedType::kRouteResponse)], 1u);
  EXPECT_EQ(core_->GetStats().messages_relayed(), 0u);
}

TEST_P(RelayCoreRulesTest, UnroutedTypeWithRequestIdAnswersUnknownTypeWithItAndReachesNobody) {
  Peer phone = Join("lobby", "phone");
  Peer mac = Join("lobby", "mac", {"llm"});
  ClearAll({&phone, &mac});

  Handle(phone, UnroutedEvent(relay::v1::UNROUTED_TYPE_INTENT, "\"intent-7\""));
  Handle(phone, UnroutedEvent(relay::v1::UNROUTED_TYPE_ROUTE_REQUEST, "12"));

  ASSERT_EQ(phone.sink->events.size(), 2u);
  EXPECT_EQ(phone.sink->events[0]->error().code(), "unknown_type");
  EXPECT_EQ(phone.sink->events[0]->error().request_id(), "\"intent-7\"");
  EXPECT_THAT(phone.sink->events[0]->error().message(), HasSubstr("intent"));
  EXPECT_EQ(phone.sink->events[1]->error().request_id(), "12");
  EXPECT_THAT(phone.sink->events[1]->error().message(), HasSubstr("route_request"));
  EXPECT_THAT(mac.sink->events, IsEmpty());
  EXPECT_EQ(core_->traffic().unrouted[static_cast<std::size_t>(UnroutedType::kIntent)], 1u);
}

TEST_P(RelayCoreRulesTest, UnroutedTypeBeforeRegisterAnswersNotRegisteredAndIsNotCounted) {
  Peer lurker = Open();

  Handle(lurker, UnroutedEvent(relay::v1::UNROUTED_TYPE_GOSSIP));
  Handle(lurker, UnroutedEvent(relay::v1::UNROUTED_TYPE_INTENT, "\"i\""));

  ASSERT_EQ(lurker.sink->events.size(), 2u);
  EXPECT_EQ(lurker.sink->events[0]->error().code(), "not_registered");
  EXPECT_EQ(lurker.sink->events[1]->error().request_id(), "\"i\"");
  EXPECT_EQ(core_->traffic().unrouted[static_cast<std::size_t>(UnroutedType::kGossip)], 0u);
}

TEST_P(RelayCoreRulesTest, UnroutedEventOfNoKnownTypeAnswersUnknownType) {
  Peer phone = Join("lobby", "phone");
  ClearAll({&phone});

  Handle(phone, UnroutedEvent(relay::v1::UNROUTED_TYPE_UNSPECIFIED));
  Handle(phone, UnroutedEvent(static_cast<relay::v1::UnroutedType>(99), "1"));

  ASSERT_EQ(phone.sink->events.size(), 2u);
  EXPECT_EQ(phone.sink->events[0]->error().code(), "unknown_type");
  EXPECT_EQ(phone.sink->events[1]->error().code(), "unknown_type");
  EXPECT_EQ(phone.sink->events[1]->error().request_id(), "1");
}

// --- takeover --------------------------------------------------------------

// A token-bound mesh: every member holds the token, so the same token is
// proof enough and the id moves at once, unprobed.
TEST_F(RelayCoreTest, SameNodeIdWithSameTokenTakesOver) {
  Peer asker = Join("lobby", "asker", {}, "secret");
  Peer old_model = Join("lobby", "model", {"llm"}, "secret");
  Handle(asker, LlmRequestEvent("\"held\""));
  ClearAll({&asker, &old_model});
  Peer new_model = Open();

  Handle(new_model, RegisterEvent("lobby", "model", {"llm"}, "secret"));

  EXPECT_THAT(old_model.sink->closes, ElementsAre(CloseReason::kReplaced));
  EXPECT_THAT(old_model.sink->events, IsEmpty());
  EXPECT_THAT(old_model.sink->probe_timeouts, IsEmpty());
  ASSERT_GE(new_model.sink->events.size(), 2u);
  ASSERT_TRUE(new_model.sink->events[0]->has_joined());
  EXPECT_EQ(new_model.sink->events[0]->joined().node_count(), 2u);
  ASSERT_TRUE(new_model.sink->events[1]->has_peers());
  ASSERT_EQ(new_model.sink->events[1]->peers().peers_size(), 1);
  EXPECT_EQ(new_model.sink->events[1]->peers().peers(0).node_id(), "asker");

  EXPECT_THAT(LlmPeerLeftIds(*asker.sink), ElementsAre("\"held\""));
  EXPECT_THAT(asker.sink->OfCase(ServerEvent::kPeerLeft), IsEmpty());
  auto joined = asker.sink->OfCase(ServerEvent::kPeerJoined);
  ASSERT_EQ(joined.size(), 1u);
  EXPECT_EQ(joined[0]->peer_joined().peer().node_id(), "model");

  // The transport later reports the old socket's end: still no peer_left.
  Disconnect(old_model, CloseReason::kReplaced);
  EXPECT_THAT(asker.sink->OfCase(ServerEvent::kPeerLeft), IsEmpty());
  EXPECT_EQ(TotalPeers(), 2u);

  // The new connection is the one that receives traffic now.
  asker.sink->Clear();
  Handle(asker, DirectEvent("model", "1"));
  EXPECT_EQ(new_model.sink->OfCase(ServerEvent::kMessage).size(), 1u);
  EXPECT_THAT(old_model.sink->events, IsEmpty());
}

// --- open-mesh takeover: proof of absence ----------------------------------

// In an open mesh equal credentials prove nothing: a stranger who knows the
// mesh id must not take "phone-1" over and receive the Mac's directs.
TEST_F(RelayCoreTest, OpenMeshTakeoverOfALiveHolderIsRefusedAfterItsProbeIsAnswered) {
  Peer mac = Join("family", "mac");
  Peer phone = Join("family", "phone-1");
  ClearAll({&mac, &phone});
  Peer stranger = Open();

  Handle(stranger, RegisterEvent("family", "phone-1"));

  ASSERT_EQ(phone.sink->probes.size(), 1u);
  EXPECT_THAT(phone.sink->probe_timeouts, ElementsAre(absl::Seconds(2)));
  EXPECT_THAT(stranger.sink->events, IsEmpty());  // waiting, not refused yet
  ASSERT_TRUE(phone.sink->AnswerProbe(true));

  EXPECT_THAT(stranger.sink->ErrorCodes(), ElementsAre("node_id_in_use"));
  EXPECT_THAT(stranger.sink->closes, IsEmpty());
  EXPECT_THAT(phone.sink->closes, IsEmpty());
  EXPECT_THAT(mac.sink->events, IsEmpty());  // no peer_joined, no peer_left
  Handle(mac, DirectEvent("phone-1", "for the phone"));
  EXPECT_EQ(phone.sink->OfCase(ServerEvent::kMessage).size(), 1u);
  EXPECT_THAT(stranger.sink->OfCase(ServerEvent::kMessage), IsEmpty());
}

// A phone whose old connection died silently gets its id back once the
// probe goes unanswered, without peer_left/peer_joined for the others.
TEST_F(RelayCoreTest, OpenMeshTakeoverOfASilentHolderSucceedsWhenTheProbeTimesOut) {
  Peer mac = Join("family", "mac");
  Peer old_phone = Join("family", "phone-1");
  ClearAll({&mac, &old_phone});
  Peer new_phone = Open();

  Handle(new_phone, RegisterEvent("family", "phone-1"));
  ASSERT_TRUE(old_phone.sink->AnswerProbe(false));

  EXPECT_THAT(old_phone.sink->closes, ElementsAre(CloseReason::kReplaced));
  ASSERT_FALSE(new_phone.sink->events.empty());
  ASSERT_TRUE(new_phone.sink->events[0]->has_joined());
  EXPECT_EQ(new_phone.sink->events[0]->joined().node_count(), 2u);
  EXPECT_THAT(mac.sink->OfCase(ServerEvent::kPeerLeft), IsEmpty());
  EXPECT_EQ(TotalPeers(), 2u);
  Disconnect(old_phone, CloseReason::kReplaced);
  EXPECT_EQ(TotalPeers(), 2u);
  Handle(mac, DirectEvent("phone-1", "1"));
  EXPECT_EQ(new_phone.sink->OfCase(ServerEvent::kMessage).size(), 1u);
}

TEST_F(RelayCoreTest, TakeoverWithoutTokensOnEitherSideIsAllowedOnceTheHolderIsGone) {
  Peer old_alice = Join("lobby", "alice");
  Peer new_alice = Open();

  Handle(new_alice, RegisterEvent("lobby", "alice"));
  ASSERT_EQ(old_alice.sink->probes.size(), 1u);
  // The transport reports the old socket's end before the probe's deadline.
  Disconnect(old_alice, CloseReason::kKeepaliveTimeout);

  ASSERT_FALSE(new_alice.sink->events.empty());
  ASSERT_TRUE(new_alice.sink->events[0]->has_joined());
  EXPECT_EQ(new_alice.sink->events[0]->joined().node_count(), 1u);
  EXPECT_EQ(core_->Health().meshes, 1u);
  EXPECT_EQ(TotalPeers(), 1u);
  // The probe's late answer changes nothing.
  old_alice.sink->AnswerProbe(true);
  EXPECT_EQ(TotalPeers(), 1u);
  EXPECT_EQ(new_alice.sink->OfCase(ServerEvent::kJoined).size(), 1u);
}

// What the claimant pipelines behind its register waits, and is handled in
// order once the probe settles.
TEST_F(RelayCoreTest, EventsPipelinedDuringAProbeAreHandledInOrderAfterIt) {
  Peer mac = Join("family", "mac");
  Peer old_phone = Join("family", "phone-1");
  ClearAll({&mac, &old_phone});
  Peer new_phone = Open();

  Handle(new_phone, RegisterEvent("family", "phone-1"));
  Handle(new_phone, DirectEvent("mac", "first"));
  RejectUndecodable(new_phone, ErrorCode::kBadJson, "not JSON");
  Handle(new_phone, DirectEvent("mac", "second"));
  EXPECT_THAT(mac.sink->events, IsEmpty());
  EXPECT_THAT(new_phone.sink->events, IsEmpty());

  ASSERT_TRUE(old_phone.sink->AnswerProbe(false));

  std::vector<std::string> kinds;
  for (const ServerEventPtr& e : new_phone.sink->events) {
    kinds.push_back(e->has_joined()  ? "joined"
                    : e->has_peers() ? "peers"
                    : e->has_error() ? e->error().code()
                                     : "other");
  }
  EXPECT_THAT(kinds, ElementsAre("joined", "peers", "bad_json"));
  auto got = mac.sink->OfCase(ServerEvent::kMessage);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]->message().payload(), "first");
  EXPECT_EQ(got[1]->message().payload(), "second");
}

TEST_F(RelayCoreTest, EventsPipelinedDuringAProbeAreBounded) {
  CoreConfig config;
  config.max_events_while_registering = 3;
  Reset(config);
  Join("family", "mac");
  Peer old_phone = Join("family", "phone-1");
  Peer new_phone = Open();
  Handle(new_phone, RegisterEvent("family", "phone-1"));
  for (int i = 0; i < 5; ++i) Handle(new_phone, PingEvent());
  EXPECT_THAT(new_phone.sink->ErrorCodes(), ElementsAre("not_registered", "not_registered"));
  new_phone.sink->Clear();
  ASSERT_TRUE(old_phone.sink->AnswerProbe(false));
  EXPECT_EQ(new_phone.sink->OfCase(ServerEvent::kPong).size(), 3u);
}

TEST_F(RelayCoreTest, OneProbeAtATimePerHolderAndAClaimantThatLeavesIsForgotten) {
  Join("family", "mac");
  Peer phone = Join("family", "phone-1");
  Peer first = Open();
  Peer second = Open();
  Handle(first, RegisterEvent("family", "phone-1"));
  Handle(second, RegisterEvent("family", "phone-1"));
  EXPECT_EQ(phone.sink->probes.size(), 1u);
  EXPECT_THAT(second.sink->ErrorCodes(), ElementsAre("node_id_in_use"));

  Disconnect(first, CloseReason::kClientClosed);
  ASSERT_TRUE(phone.sink->AnswerProbe(false));  // nobody waits for it any more
  EXPECT_THAT(phone.sink->closes, IsEmpty());
  EXPECT_EQ(TotalPeers(), 2u);
  // The holder may be probed again for a new claim.
  second.sink->Clear();
  Handle(second, RegisterEvent("family", "phone-1"));
  EXPECT_EQ(phone.sink->probes.size(), 1u);
}

// A transport that cannot probe: the holder is presumed alive.
TEST_F(RelayCoreTest, HolderThatCannotBeProbedKeepsItsId) {
  Join("family", "mac");
  Peer phone = Join("family", "phone-1");
  phone.sink->can_probe = false;
  Peer stranger = Open();
  Handle(stranger, RegisterEvent("family", "phone-1"));
  EXPECT_THAT(stranger.sink->ErrorCodes(), ElementsAre("node_id_in_use"));
  EXPECT_THAT(phone.sink->closes, IsEmpty());
}

TEST_P(RelayCoreRulesTest, SameNodeIdWithAnotherTokenAnswersNodeIdInUseAndTheFirstKeepsWorking) {
  // An open mesh (its first registrant sent no token): tokens then only
  // tell connections apart on takeover.
  Peer bob = Join("lobby", "bob");
  Peer first = Join("lobby", "alice", {}, "token-a");
  ClearAll({&first, &bob});
  Peer intruder = Open();

  Handle(intruder, RegisterEvent("lobby", "alice", {}, "token-b"));

  EXPECT_THAT(intruder.sink->ErrorCodes(), ElementsAre("node_id_in_use"));
  EXPECT_THAT(intruder.sink->closes, IsEmpty());
  EXPECT_THAT(first.sink->closes, IsEmpty());
  EXPECT_THAT(bob.sink->events, IsEmpty());
  Handle(bob, DirectEvent("alice", "1"));
  EXPECT_EQ(first.sink->OfCase(ServerEvent::kMessage).size(), 1u);

  // The newcomer stays unregistered and may pick another node_id.
  intruder.sink->Clear();
  Handle(intruder, PingEvent());
  EXPECT_THAT(intruder.sink->ErrorCodes(), ElementsAre("not_registered"));
  Handle(intruder, RegisterEvent("lobby", "alice2", {}, "token-b"));
  EXPECT_EQ(intruder.sink->OfCase(ServerEvent::kJoined).size(), 1u);
}

TEST_F(RelayCoreTest, FirstTokenBindsTheMeshAndAnotherTokenIsRefusedAndClosed) {
  Peer owner = Join("family", "mac", {}, "secret");
  ClearAll({&owner});
  Peer stranger = Open();

  Handle(stranger, RegisterEvent("family", "phone", {}, "guess"));

  EXPECT_THAT(stranger.sink->ErrorCodes(), ElementsAre("auth_failed"));
  EXPECT_THAT(stranger.sink->closes, ElementsAre(CloseReason::kAuthFailed));
  EXPECT_THAT(owner.sink->events, IsEmpty());
}

TEST_P(RelayCoreRulesTest, TokenAgainstNoTokenAnswersNodeIdInUse) {
  Join("lobby", "alice");
  Peer intruder = Open();

  Handle(intruder, RegisterEvent("lobby", "alice", {}, "t"));

  EXPECT_THAT(intruder.sink->ErrorCodes(), ElementsAre("node_id_in_use"));
}

// --- timeouts and shutdown -------------------------------------------------

TEST_F(RelayCoreTest, RegistrationTimeoutClosesOnlyUnregisteredSocketsAndOnlyAfterTheTimeout) {
  Peer lurker = Open();
  Peer alice = Join("lobby", "alice");

  clock_.Advance(absl::Seconds(30) - absl::Milliseconds(1));
  core_->ExpireUnregistered();
  EXPECT_THAT(lurker.sink->closes, IsEmpty());

  clock_.Advance(absl::Milliseconds(1));
  core_->ExpireUnregistered();
  EXPECT_THAT(lurker.sink->closes, ElementsAre(CloseReason::kRegistrationTimeout));
  EXPECT_THAT(alice.sink->closes, IsEmpty());

  // Asked once only, and a closing socket gets nothing more.
  clock_.Advance(absl::Seconds(5));
  core_->ExpireUnregistered();
  EXPECT_EQ(lurker.sink->closes.size(), 1u);
  Handle(lurker, PingEvent());
  EXPECT_THAT(lurker.sink->events, IsEmpty());
}

TEST_F(RelayCoreTest, RegistrationTimeoutFollowsTheConfig) {
  CoreConfig config;
  config.registration_timeout = absl::Seconds(2);
  Reset(config);
  Peer lurker = Open();

  clock_.Advance(absl::Seconds(1));
  core_->ExpireUnregistered();
  EXPECT_THAT(lurker.sink->closes, IsEmpty());
  clock_.Advance(absl::Seconds(1));
  core_->ExpireUnregistered();
  EXPECT_THAT(lurker.sink->closes, ElementsAre(CloseReason::kRegistrationTimeout));
}

TEST_F(RelayCoreTest, CloseAllAsksEveryConnectionToCloseOnce) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("other", "bob");
  Peer lurker = Open();

  core_->CloseAll(CloseReason::kServerShutdown);
  core_->CloseAll(CloseReason::kServerShutdown);

  for (Peer* p : {&alice, &bob, &lurker}) {
    EXPECT_THAT(p->sink->closes, ElementsAre(CloseReason::kServerShutdown));
  }
}

// --- counters and admin views ---------------------------------------------

TEST_F(RelayCoreTest, MessagesRelayedCountsOnlyUserTrafficDeliveries) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  Peer model = Join("lobby", "model", {"llm"});
  Handle(alice, PingEvent());
  Handle(alice, CapabilitiesUpdateEvent({"x"}));
  Handle(alice, DirectEvent("nobody", "1"));
  ASSERT_EQ(core_->GetStats().messages_relayed(), 0u);

  Handle(alice, BroadcastEvent("1"));             // 2 deliveries
  Handle(alice, DirectEvent("bob", "2"));         // 1
  Handle(alice, LlmRequestEvent("3"));            // 1
  Handle(model, LlmResponseEvent("alice", "3"));  // 1

  const relay::v1::Stats stats = core_->GetStats();
  EXPECT_EQ(stats.messages_relayed(), 5u);
  EXPECT_EQ(stats.llm_requests(), 1u);
  EXPECT_EQ(stats.messages_received(), 3u + 7u);  // 3 registers + 7 events
  const relay::v1::ListMeshesResponse list = core_->ListMeshes();
  ASSERT_EQ(list.meshes_size(), 1);
  EXPECT_EQ(list.meshes(0).messages_relayed(), 5u);
}

TEST_F(RelayCoreTest, StatsCountErrorsByCodeAndListEveryCode) {
  Peer alice = Join("lobby", "alice");
  Peer lurker = Open();
  Handle(lurker, PingEvent());
  Handle(lurker, PingEvent());
  Handle(alice, DirectEvent("nobody", "1"));
  Handle(alice, LlmRequestEvent("1"));
  RejectUndecodable(alice, ErrorCode::kBadJson, "not json");

  const relay::v1::Stats stats = core_->GetStats();

  std::vector<std::string> codes;
  for (const auto& e : stats.errors()) codes.push_back(e.code());
  EXPECT_THAT(codes,
              IsSupersetOf({"bad_json", "bad_message", "unknown_type", "not_registered",
                            "already_registered", "node_id_in_use", "unknown_target", "no_llm_peer",
                            "llm_peer_left", "too_many_requests", "kicked", "mesh_closed"}));
  EXPECT_EQ(codes.size(), kErrorCodeCount);
  EXPECT_EQ(ErrorCount(stats, "not_registered"), 2u);
  EXPECT_EQ(ErrorCount(stats, "unknown_target"), 1u);
  EXPECT_EQ(ErrorCount(stats, "no_llm_peer"), 1u);
  EXPECT_EQ(ErrorCount(stats, "bad_json"), 1u);
  EXPECT_EQ(ErrorCount(stats, "bad_message"), 0u);
}

TEST_F(RelayCoreTest, StatsCountConnectionsSocketsPeersAndUptime) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  Peer lurker = Open();
  Disconnect(bob, CloseReason::kClientClosed);
  clock_.Advance(absl::Seconds(90));

  const relay::v1::Stats stats = core_->GetStats();

  EXPECT_EQ(stats.total_connections(), 3u);
  EXPECT_EQ(stats.open_sockets(), 2u);
  EXPECT_EQ(stats.registered_peers(), 1u);
  EXPECT_EQ(stats.active_meshes(), 1u);
  EXPECT_DOUBLE_EQ(stats.uptime_seconds(), 90.0);
}

TEST_F(RelayCoreTest, RejectUndecodableAnswersTheErrorWithRequestId) {
  Peer lurker = Open();

  RejectUndecodable(lurker, ErrorCode::kBadMessage, "bad target", "\"r\"");

  ASSERT_EQ(lurker.sink->events.size(), 1u);
  ASSERT_TRUE(lurker.sink->events[0]->has_error());
  EXPECT_EQ(lurker.sink->events[0]->error().code(), "bad_message");
  EXPECT_EQ(lurker.sink->events[0]->error().message(), "bad target");
  EXPECT_EQ(lurker.sink->events[0]->error().request_id(), "\"r\"");
  EXPECT_EQ(ErrorCount(core_->GetStats(), "bad_message"), 1u);
}

TEST_F(RelayCoreTest, HealthCountsMeshesAndRegisteredPeers) {
  EXPECT_EQ(core_->Health().meshes, 0u);
  Join("a", "1");
  Join("a", "2");
  Join("b", "1");
  Open();

  EXPECT_EQ(core_->Health().meshes, 2u);
  EXPECT_EQ(TotalPeers(), 3u);
  EXPECT_EQ(core_->OpenConnections(), 4u);
}

TEST_F(RelayCoreTest, ListMeshesIsSortedWithPeerCountAndCreatedAt) {
  const absl::Time t0 = clock_.Now();
  Join("zeta", "1");
  clock_.Advance(absl::Seconds(3));
  Join("alpha", "1");
  Join("alpha", "2");

  const relay::v1::ListMeshesResponse list = core_->ListMeshes();

  ASSERT_EQ(list.meshes_size(), 2);
  EXPECT_EQ(list.meshes(0).mesh_id(), "alpha");
  EXPECT_EQ(list.meshes(0).peer_count(), 2u);
  EXPECT_DOUBLE_EQ(list.meshes(0).created_at(), EpochSeconds(t0 + absl::Seconds(3)));
  EXPECT_EQ(list.meshes(1).mesh_id(), "zeta");
  EXPECT_EQ(list.meshes(1).peer_count(), 1u);
  EXPECT_DOUBLE_EQ(list.meshes(1).created_at(), EpochSeconds(t0));
}

TEST_F(RelayCoreTest, GetMeshDescribesEveryPeerInJoinOrder) {
  const absl::Time t0 = clock_.Now();
  Peer alice = Open("192.0.2.1:5000");
  Handle(alice, RegisterEvent("lobby", "alice", {"llm", "chat"}, "", "Alice"));
  clock_.Advance(absl::Seconds(1));
  Peer bob = Open("192.0.2.2:6000");
  Handle(bob, RegisterEvent("lobby", "bob"));
  Handle(alice, BroadcastEvent("1"));

  absl::StatusOr<relay::v1::GetMeshResponse> mesh = core_->GetMesh("lobby");

  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(mesh->mesh().mesh_id(), "lobby");
  EXPECT_EQ(mesh->mesh().peer_count(), 2u);
  EXPECT_EQ(mesh->mesh().messages_relayed(), 1u);
  ASSERT_EQ(mesh->peers_size(), 2);
  const relay::v1::PeerDetail& a = mesh->peers(0);
  EXPECT_EQ(a.node_id(), "alice");
  EXPECT_EQ(a.name(), "Alice");
  EXPECT_THAT(a.capabilities(), ElementsAre("llm", "chat"));
  EXPECT_DOUBLE_EQ(a.joined_at(), EpochSeconds(t0));
  EXPECT_EQ(a.remote_address(), "192.0.2.1:5000");
  EXPECT_EQ(a.transport(), "ws");
  EXPECT_EQ(a.messages_in(), 2u);
  EXPECT_EQ(mesh->peers(1).node_id(), "bob");
  EXPECT_EQ(mesh->peers(1).remote_address(), "192.0.2.2:6000");
  EXPECT_DOUBLE_EQ(mesh->peers(1).joined_at(), EpochSeconds(t0 + absl::Seconds(1)));
}

TEST_F(RelayCoreTest, GetMeshOfUnknownMeshIsNotFound) {
  Join("lobby", "alice");

  EXPECT_EQ(core_->GetMesh("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(core_->GetMesh("lobby").ok());
}

TEST_F(RelayCoreTest, StatsListEveryCloseReasonIncludingTheOperatorOnes) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  Disconnect(alice, CloseReason::kKicked);
  Disconnect(bob, CloseReason::kMeshClosed);

  const relay::v1::Stats stats = core_->GetStats();

  std::vector<std::string> reasons;
  for (const auto& c : stats.closes()) reasons.push_back(c.reason());
  EXPECT_EQ(reasons.size(), kCloseReasonCount);
  EXPECT_THAT(reasons, IsSupersetOf({"kicked", "mesh_closed", "server_shutdown", "replaced"}));
  EXPECT_EQ(CloseCount(stats, "kicked"), 1u);
  EXPECT_EQ(CloseCount(stats, "mesh_closed"), 1u);
  EXPECT_EQ(CloseCount(stats, "client_closed"), 0u);
}

// --- drain -----------------------------------------------------------------

TEST_F(RelayCoreTest, DrainTellsEveryOpenConnectionOnceWithTheGraceAndAReconnectHint) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("other", "bob");
  Peer lurker = Open();  // not registered yet: told too
  EXPECT_FALSE(core_->draining());

  const std::size_t told = core_->Drain(absl::Seconds(20));

  EXPECT_EQ(told, 3u);
  EXPECT_TRUE(core_->draining());
  for (Peer* p : {&alice, &bob, &lurker}) {
    ASSERT_EQ(p->sink->events.size(), 1u);
    ASSERT_TRUE(p->sink->events[0]->has_server_draining());
    const relay::v1::ServerDraining& draining = p->sink->events[0]->server_draining();
    EXPECT_EQ(draining.grace_seconds(), 20u);
    EXPECT_LT(draining.reconnect_after_ms(), 5000u);
    // Draining only warns: the transport closes them when the grace is over.
    EXPECT_THAT(p->sink->closes, IsEmpty());
  }
}

TEST_F(RelayCoreTest, DrainGivesEachConnectionItsOwnReconnectHint) {
  std::vector<Peer> peers;
  for (int i = 0; i < 40; ++i) peers.push_back(Open());

  core_->Drain(absl::Seconds(5));

  std::vector<std::uint32_t> hints;
  for (const Peer& p : peers) {
    ASSERT_EQ(p.sink->events.size(), 1u);
    hints.push_back(p.sink->events[0]->server_draining().reconnect_after_ms());
    EXPECT_LT(hints.back(), 5000u);
  }
  // 40 draws from [0, 5000) all equal would mean no jitter at all.
  std::sort(hints.begin(), hints.end());
  EXPECT_NE(hints.front(), hints.back());
  // Separate events, not one shared one (each carries its own hint).
  EXPECT_NE(peers[0].sink->events[0].get(), peers[1].sink->events[0].get());
}

TEST_F(RelayCoreTest, DrainSkipsConnectionsAlreadyClosing) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  ASSERT_TRUE(core_->Kick("lobby", "bob", "").ok());
  bob.sink->Clear();

  const std::size_t told = core_->Drain(absl::Seconds(10));

  EXPECT_EQ(told, 1u);
  EXPECT_EQ(alice.sink->OfCase(ServerEvent::kServerDraining).size(), 1u);
  EXPECT_THAT(bob.sink->events, IsEmpty());
}

TEST_F(RelayCoreTest, DrainGraceIsInWholeSecondsAndNeverNegative) {
  Peer a = Open();
  core_->Drain(absl::Seconds(90));
  Peer b = Open();
  core_->Drain(absl::ZeroDuration());
  Peer c = Open();
  core_->Drain(-absl::Seconds(3));

  EXPECT_EQ(a.sink->events[0]->server_draining().grace_seconds(), 90u);
  EXPECT_EQ(b.sink->events[0]->server_draining().grace_seconds(), 0u);
  EXPECT_EQ(c.sink->events[0]->server_draining().grace_seconds(), 0u);
}

TEST_F(RelayCoreTest, TrafficKeepsFlowingWhileDrainingAndTheNoticeIsNotRelayedTraffic) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  core_->Drain(absl::Seconds(20));
  ClearAll({&alice, &bob});
  EXPECT_EQ(core_->GetStats().messages_relayed(), 0u);

  Handle(alice, BroadcastEvent("1"));

  EXPECT_EQ(bob.sink->OfCase(ServerEvent::kMessage).size(), 1u);
  EXPECT_EQ(core_->GetStats().messages_relayed(), 1u);
  EXPECT_TRUE(core_->draining());
}

// --- kick ------------------------------------------------------------------

TEST_F(RelayCoreTest, KickTellsThePeerWhyThenClosesItAsKicked) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  ClearAll({&alice, &bob});

  const absl::Status status = core_->Kick("lobby", "bob", "spamming the mesh");

  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(bob.sink->events.size(), 1u);
  ASSERT_TRUE(bob.sink->events[0]->has_error());
  EXPECT_EQ(bob.sink->events[0]->error().code(), "kicked");
  EXPECT_THAT(bob.sink->events[0]->error().message(), ::testing::HasSubstr("spamming the mesh"));
  EXPECT_THAT(bob.sink->closes, ElementsAre(CloseReason::kKicked));
  // The others learn only once the transport reports the close.
  EXPECT_THAT(alice.sink->events, IsEmpty());
  EXPECT_THAT(alice.sink->closes, IsEmpty());
  EXPECT_EQ(ErrorCount(core_->GetStats(), "kicked"), 1u);

  Disconnect(bob, CloseReason::kKicked);

  auto left = alice.sink->OfCase(ServerEvent::kPeerLeft);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0]->peer_left().node_id(), "bob");
  EXPECT_EQ(CloseCount(core_->GetStats(), "kicked"), 1u);
}

TEST_F(RelayCoreTest, KickWithoutReasonStillExplains) {
  Peer bob = Join("lobby", "bob");

  ASSERT_TRUE(core_->Kick("lobby", "bob", "").ok());

  ASSERT_EQ(bob.sink->events.size(), 1u);
  const std::string& message = bob.sink->events[0]->error().message();
  EXPECT_FALSE(message.empty());
  EXPECT_NE(message.back(), ' ');
  EXPECT_NE(message.back(), ':');
}

TEST_F(RelayCoreTest, KickOfUnknownMeshOrNodeIsNotFoundAndTouchesNoOne) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("other", "bob");

  const absl::Status no_mesh = core_->Kick("nowhere", "alice", "x");
  const absl::Status no_node = core_->Kick("lobby", "carol", "x");
  const absl::Status wrong_mesh = core_->Kick("lobby", "bob", "x");

  EXPECT_EQ(no_mesh.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_mesh.message()), ::testing::HasSubstr("nowhere"));
  EXPECT_EQ(no_node.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_node.message()), ::testing::HasSubstr("carol"));
  EXPECT_EQ(wrong_mesh.code(), absl::StatusCode::kNotFound);
  for (Peer* p : {&alice, &bob}) {
    EXPECT_THAT(p->sink->events, IsEmpty());
    EXPECT_THAT(p->sink->closes, IsEmpty());
  }
  EXPECT_EQ(ErrorCount(core_->GetStats(), "kicked"), 0u);
}

TEST_F(RelayCoreTest, KickedPeerIsNoLongerHeardNorPickedForLlmRequests) {
  Peer asker = Join("lobby", "asker");
  Peer model = Join("lobby", "model", {"llm"});
  ASSERT_TRUE(core_->Kick("lobby", "model", "").ok());
  model.sink->Clear();

  Handle(model, BroadcastEvent("1"));  // before its close completes
  Handle(asker, LlmRequestEvent("\"q\""));

  EXPECT_THAT(asker.sink->OfCase(ServerEvent::kMessage), IsEmpty());
  EXPECT_THAT(asker.sink->ErrorCodes(), ElementsAre("no_llm_peer"));
  EXPECT_THAT(model.sink->events, IsEmpty());
}

TEST_F(RelayCoreTest, KickOfAPeerAlreadyClosingDoesNotCloseItTwice) {
  Peer alice = Join("lobby", "alice");
  ASSERT_TRUE(core_->CloseMesh("lobby", "maintenance").ok());

  (void)core_->Kick("lobby", "alice", "again");

  // One close per connection, with the first reason (as CloseAll and
  // takeover do); no "kicked" error counted that was never sent.
  EXPECT_THAT(alice.sink->closes, ElementsAre(CloseReason::kMeshClosed));
  EXPECT_EQ(ErrorCount(core_->GetStats(), "kicked"), 0u);
}

// --- close mesh ------------------------------------------------------------

TEST_F(RelayCoreTest, CloseMeshTellsEveryPeerThenClosesThemAndCountsThem) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  Peer carol = Join("lobby", "carol");
  Peer dave = Join("other", "dave");
  ClearAll({&alice, &bob, &carol, &dave});

  absl::StatusOr<std::size_t> closed = core_->CloseMesh("lobby", "moving to v2");

  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(*closed, 3u);
  for (Peer* p : {&alice, &bob, &carol}) {
    ASSERT_EQ(p->sink->events.size(), 1u);
    ASSERT_TRUE(p->sink->events[0]->has_error());
    EXPECT_EQ(p->sink->events[0]->error().code(), "mesh_closed");
    EXPECT_THAT(p->sink->events[0]->error().message(), ::testing::HasSubstr("moving to v2"));
    EXPECT_THAT(p->sink->closes, ElementsAre(CloseReason::kMeshClosed));
  }
  EXPECT_THAT(dave.sink->events, IsEmpty());
  EXPECT_THAT(dave.sink->closes, IsEmpty());
  EXPECT_EQ(ErrorCount(core_->GetStats(), "mesh_closed"), 3u);
}

TEST_F(RelayCoreTest, CloseMeshOfUnknownMeshIsNotFound) {
  Peer alice = Join("lobby", "alice");

  absl::StatusOr<std::size_t> closed = core_->CloseMesh("nowhere", "");

  EXPECT_EQ(closed.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(alice.sink->events, IsEmpty());
  EXPECT_THAT(alice.sink->closes, IsEmpty());
}

TEST_F(RelayCoreTest, ClosedMeshGoesAwayWithItsLastPeerWithoutPeerLeftToTheClosingOnes) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  ASSERT_TRUE(core_->CloseMesh("lobby", "").ok());
  ClearAll({&alice, &bob});
  EXPECT_EQ(core_->ListMeshes().meshes_size(), 1);  // until the transport reports

  Disconnect(alice, CloseReason::kMeshClosed);

  EXPECT_THAT(bob.sink->events, IsEmpty());  // already being closed: told nothing more
  Disconnect(bob, CloseReason::kMeshClosed);
  EXPECT_EQ(core_->ListMeshes().meshes_size(), 0);
  EXPECT_EQ(CloseCount(core_->GetStats(), "mesh_closed"), 2u);
}

TEST_F(RelayCoreTest, CloseMeshTwiceClosesNoOneTheSecondTime) {
  Peer alice = Join("lobby", "alice");
  ASSERT_EQ(*core_->CloseMesh("lobby", ""), 1u);

  absl::StatusOr<std::size_t> again = core_->CloseMesh("lobby", "");

  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
  EXPECT_THAT(alice.sink->closes, ElementsAre(CloseReason::kMeshClosed));
}

TEST_F(RelayCoreTest, ClosedMeshKeepsItsTokenBinding) {
  Peer alice = Join("lobby", "alice", {}, "secret");
  ASSERT_TRUE(core_->CloseMesh("lobby", "").ok());
  Disconnect(alice, CloseReason::kMeshClosed);
  Peer stranger = Open();

  Handle(stranger, RegisterEvent("lobby", "mallory", {}, "other"));

  EXPECT_THAT(stranger.sink->ErrorCodes(), ElementsAre("auth_failed"));
}

// --- list meshes: paging and order ----------------------------------------

// Ids of a page's meshes, in order.
std::vector<std::string> MeshIds(const relay::v1::ListMeshesResponse& page) {
  std::vector<std::string> out;
  for (const auto& m : page.meshes()) out.push_back(m.mesh_id());
  return out;
}

relay::v1::ListMeshesRequest PageRequest(
    std::uint32_t size, const std::string& token,
    relay::v1::ListMeshesRequest::Order order = relay::v1::ListMeshesRequest::ORDER_MESH_ID) {
  relay::v1::ListMeshesRequest request;
  request.set_page_size(size);
  request.set_page_token(token);
  request.set_order(order);
  return request;
}

TEST_F(RelayCoreTest, ListMeshesPagesByMeshIdUntilAnEmptyToken) {
  for (const char* mesh : {"e", "c", "a", "d", "b"}) Join(mesh, "1");

  absl::StatusOr<relay::v1::ListMeshesResponse> p1 = core_->ListMeshesPage(PageRequest(2, ""));
  ASSERT_TRUE(p1.ok()) << p1.status();
  absl::StatusOr<relay::v1::ListMeshesResponse> p2 =
      core_->ListMeshesPage(PageRequest(2, p1->next_page_token()));
  ASSERT_TRUE(p2.ok()) << p2.status();
  absl::StatusOr<relay::v1::ListMeshesResponse> p3 =
      core_->ListMeshesPage(PageRequest(2, p2->next_page_token()));
  ASSERT_TRUE(p3.ok()) << p3.status();

  EXPECT_THAT(MeshIds(*p1), ElementsAre("a", "b"));
  EXPECT_THAT(MeshIds(*p2), ElementsAre("c", "d"));
  EXPECT_THAT(MeshIds(*p3), ElementsAre("e"));
  EXPECT_FALSE(p1->next_page_token().empty());
  EXPECT_FALSE(p2->next_page_token().empty());
  EXPECT_EQ(p3->next_page_token(), "");
  for (const auto* page : {&*p1, &*p2, &*p3}) EXPECT_EQ(page->total_meshes(), 5u);
}

TEST_F(RelayCoreTest, ListMeshesPageSizeZeroOrLargerThanAllIsOnePage) {
  for (const char* mesh : {"b", "a", "c"}) Join(mesh, "1");

  absl::StatusOr<relay::v1::ListMeshesResponse> all = core_->ListMeshesPage(PageRequest(0, ""));
  absl::StatusOr<relay::v1::ListMeshesResponse> big = core_->ListMeshesPage(PageRequest(3, ""));

  ASSERT_TRUE(all.ok());
  ASSERT_TRUE(big.ok());
  EXPECT_THAT(MeshIds(*all), ElementsAre("a", "b", "c"));
  EXPECT_EQ(all->next_page_token(), "");
  EXPECT_THAT(MeshIds(*big), ElementsAre("a", "b", "c"));
  EXPECT_EQ(big->next_page_token(), "");
  EXPECT_EQ(big->total_meshes(), 3u);
}

TEST_F(RelayCoreTest, ListMeshesOfAnIdleRelayIsOneEmptyPage) {
  absl::StatusOr<relay::v1::ListMeshesResponse> page = core_->ListMeshesPage(PageRequest(10, ""));

  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->meshes_size(), 0);
  EXPECT_EQ(page->total_meshes(), 0u);
  EXPECT_EQ(page->next_page_token(), "");
}

TEST_F(RelayCoreTest, ListMeshesByPeersIsMostPeersFirstThenMeshId) {
  Join("solo", "1");
  for (const char* node : {"1", "2", "3"}) Join("big", node);
  for (const char* node : {"1", "2"}) Join("pair-b", node);
  for (const char* node : {"1", "2"}) Join("pair-a", node);
  using Request = relay::v1::ListMeshesRequest;

  absl::StatusOr<relay::v1::ListMeshesResponse> all =
      core_->ListMeshesPage(PageRequest(0, "", Request::ORDER_PEERS));
  absl::StatusOr<relay::v1::ListMeshesResponse> first =
      core_->ListMeshesPage(PageRequest(2, "", Request::ORDER_PEERS));
  ASSERT_TRUE(first.ok());
  absl::StatusOr<relay::v1::ListMeshesResponse> second =
      core_->ListMeshesPage(PageRequest(2, first->next_page_token(), Request::ORDER_PEERS));

  ASSERT_TRUE(all.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_THAT(MeshIds(*all), ElementsAre("big", "pair-a", "pair-b", "solo"));
  EXPECT_EQ(all->meshes(0).peer_count(), 3u);
  EXPECT_THAT(MeshIds(*first), ElementsAre("big", "pair-a"));
  EXPECT_THAT(MeshIds(*second), ElementsAre("pair-b", "solo"));
  EXPECT_EQ(second->next_page_token(), "");
}

TEST_F(RelayCoreTest, ListMeshesByTrafficIsMostRelayedFirstThenMeshId) {
  Peer q1 = Join("quiet", "1");
  Join("quiet", "2");
  Peer b1 = Join("busy", "1");
  Join("busy", "2");
  Join("busy", "3");
  Peer c1 = Join("calm", "1");
  Join("calm", "2");
  Join("zero", "1");
  Handle(b1, BroadcastEvent("1"));  // busy: 2
  Handle(b1, BroadcastEvent("2"));  // busy: 4
  Handle(q1, BroadcastEvent("1"));  // quiet: 1
  Handle(c1, BroadcastEvent("1"));  // calm: 1
  using Request = relay::v1::ListMeshesRequest;

  absl::StatusOr<relay::v1::ListMeshesResponse> page =
      core_->ListMeshesPage(PageRequest(0, "", Request::ORDER_TRAFFIC));

  ASSERT_TRUE(page.ok());
  EXPECT_THAT(MeshIds(*page), ElementsAre("busy", "calm", "quiet", "zero"));
  EXPECT_EQ(page->meshes(0).messages_relayed(), 4u);
}

TEST_F(RelayCoreTest, ListMeshesRefusesAPageTokenItDidNotHandOut) {
  Join("a", "1");
  Join("b", "1");

  for (const char* token : {"abc", "-1", "1x", "1.0", "0x1"}) {
    absl::StatusOr<relay::v1::ListMeshesResponse> page =
        core_->ListMeshesPage(PageRequest(1, token));
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
  }
}

TEST_F(RelayCoreTest, ListMeshesTokenPastTheEndIsAnEmptyLastPage) {
  for (const char* mesh : {"a", "b", "c"}) Join(mesh, "1");

  for (const char* token : {"3", "7", "18446744073709551615"}) {
    absl::StatusOr<relay::v1::ListMeshesResponse> page =
        core_->ListMeshesPage(PageRequest(2, token));
    if (!page.ok()) {
      // Refusing such a token is fine too.
      EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
      continue;
    }
    EXPECT_EQ(page->meshes_size(), 0) << token;
    // Never a token that leads back to earlier pages (a client would loop).
    EXPECT_EQ(page->next_page_token(), "") << token;
  }
}

// --- traffic counters ------------------------------------------------------

TEST_F(RelayCoreTest, TrafficCountsDeliveriesAndPayloadBytesByType) {
  Peer alice = Join("lobby", "alice");
  Peer bob = Join("lobby", "bob");
  Peer model = Join("lobby", "model", {"llm"});
  Handle(alice, PingEvent());
  Handle(alice, DirectEvent("nobody", "1"));
  core_->Drain(absl::Seconds(1));
  const TrafficCounters& before = core_->traffic();
  for (TrafficType type : {TrafficType::kBroadcast, TrafficType::kDirect, TrafficType::kLlmRequest,
                           TrafficType::kLlmResponse}) {
    ASSERT_EQ(Deliveries(before, type), 0u) << TrafficTypeName(type);  // notices are not traffic
  }

  Handle(alice, BroadcastEvent("12345"));              // to 2 peers, 5 bytes each
  Handle(alice, DirectEvent("bob", "\"hi\""));         // 4 bytes
  Handle(alice, DirectEvent("bob", "[1,2]"));          // 5 bytes
  Handle(alice, LlmRequestEvent("\"r1\""));            // 4 + 13 bytes
  Handle(model, LlmResponseEvent("alice", "\"r1\""));  // 4 + 15 bytes

  const TrafficCounters& t = core_->traffic();
  EXPECT_EQ(Deliveries(t, TrafficType::kBroadcast), 2u);
  EXPECT_EQ(PayloadBytes(t, TrafficType::kBroadcast), 10u);
  EXPECT_EQ(Deliveries(t, TrafficType::kDirect), 2u);
  EXPECT_EQ(PayloadBytes(t, TrafficType::kDirect), 9u);
  EXPECT_EQ(Deliveries(t, TrafficType::kLlmRequest), 1u);
  EXPECT_EQ(PayloadBytes(t, TrafficType::kLlmRequest), 4u + 13u);
  EXPECT_EQ(Deliveries(t, TrafficType::kLlmResponse), 1u);
  EXPECT_EQ(PayloadBytes(t, TrafficType::kLlmResponse), 4u + 15u);
  // The same deliveries as messages_relayed.
  EXPECT_EQ(core_->GetStats().messages_relayed(), 6u);
}

TEST_P(RelayCoreRulesTest, TrafficAndLlmOutcomeNamesAreStableSnakeCase) {
  EXPECT_EQ(TrafficTypeName(TrafficType::kBroadcast), "broadcast");
  EXPECT_EQ(TrafficTypeName(TrafficType::kDirect), "direct");
  EXPECT_EQ(TrafficTypeName(TrafficType::kLlmRequest), "llm_request");
  EXPECT_EQ(TrafficTypeName(TrafficType::kLlmResponse), "llm_response");
  EXPECT_EQ(LlmOutcomeName(LlmOutcome::kAnswered), "answered");
  EXPECT_EQ(LlmOutcomeName(LlmOutcome::kNoLlmPeer), "no_llm_peer");
  EXPECT_EQ(LlmOutcomeName(LlmOutcome::kTooManyRequests), "too_many_requests");
  EXPECT_EQ(LlmOutcomeName(LlmOutcome::kPeerLeft), "peer_left");
  EXPECT_EQ(LlmOutcomeName(LlmOutcome::kRequesterLeft), "requester_left");
}

TEST_F(RelayCoreTest, LlmOutcomesCountHowEachRequestEnded) {
  CoreConfig config;
  config.max_outstanding_llm_requests_per_peer = 2;
  Reset(config);
  Peer asker = Join("lobby", "asker");
  Peer lonely = Join("empty", "lonely");
  Peer model = Join("lobby", "model", {"llm"});

  Handle(lonely, LlmRequestEvent("\"n\""));  // no_llm_peer
  Handle(asker, LlmRequestEvent("\"a\""));
  Handle(model, LlmResponseEvent("asker", "\"a\""));  // answered
  Handle(model, LlmResponseEvent("asker", "\"a\""));  // a 2nd chunk: not again
  Handle(asker, LlmRequestEvent("\"b\""));
  Handle(asker, LlmRequestEvent("\"c\""));
  Handle(asker, LlmRequestEvent("\"d\""));        // too_many_requests
  Disconnect(model, CloseReason::kClientClosed);  // b, c: peer_left

  const TrafficCounters& t = core_->traffic();
  EXPECT_EQ(Outcomes(t, LlmOutcome::kNoLlmPeer), 1u);
  EXPECT_EQ(Outcomes(t, LlmOutcome::kAnswered), 1u);
  EXPECT_EQ(Outcomes(t, LlmOutcome::kTooManyRequests), 1u);
  EXPECT_EQ(Outcomes(t, LlmOutcome::kPeerLeft), 2u);
  EXPECT_EQ(Outcomes(t, LlmOutcome::kRequesterLeft), 0u);
}

TEST_F(RelayCoreTest, LlmOutcomeRequesterLeftCountsEachUnansweredRequest) {
  Peer asker = Join("lobby", "asker");
  Peer model = Join("lobby", "model", {"llm"});
  Handle(asker, LlmRequestEvent("\"a\""));
  Handle(asker, LlmRequestEvent("\"b\""));
  Handle(asker, LlmRequestEvent("\"c\""));
  Handle(model, LlmResponseEvent("asker", "\"a\""));

  Disconnect(asker, CloseReason::kClientClosed);
  Disconnect(model, CloseReason::kClientClosed);  // holds nothing now

  const TrafficCounters& t = core_->traffic();
  EXPECT_EQ(Outcomes(t, LlmOutcome::kRequesterLeft), 2u);
  EXPECT_EQ(Outcomes(t, LlmOutcome::kPeerLeft), 0u);
  EXPECT_EQ(Outcomes(t, LlmOutcome::kAnswered), 1u);
}

TEST_F(RelayCoreTest, LlmRoundTripObserverSeesTheFakeClockTimeOfTheFirstAnswerOnly) {
  std::vector<absl::Duration> seen;
  core_->set_llm_round_trip_observer([&seen](absl::Duration d) { seen.push_back(d); });
  Peer asker = Join("lobby", "asker");
  Peer model = Join("lobby", "model", {"llm"});

  Handle(asker, LlmRequestEvent("\"a\""));
  clock_.Advance(absl::Milliseconds(250));
  Handle(asker, LlmRequestEvent("\"b\""));
  clock_.Advance(absl::Milliseconds(1000));
  Handle(model, LlmResponseEvent("asker", "\"b\""));  // 1 s after b
  clock_.Advance(absl::Milliseconds(500));
  Handle(model, LlmResponseEvent("asker", "\"b\""));      // 2nd chunk: not observed
  Handle(model, LlmResponseEvent("asker", "\"a\""));      // 1.75 s after a
  Handle(model, LlmResponseEvent("nobody", "\"x\""));     // unknown target
  Handle(model, LlmResponseEvent("asker", "\"never\""));  // no such request

  EXPECT_THAT(seen, ElementsAre(absl::Milliseconds(1000), absl::Milliseconds(1750)));
}

TEST_F(RelayCoreTest, LlmRoundTripWithoutObserverStillAnswers) {
  Peer asker = Join("lobby", "asker");
  Peer model = Join("lobby", "model", {"llm"});
  Handle(asker, LlmRequestEvent("\"a\""));

  Handle(model, LlmResponseEvent("asker", "\"a\""));

  EXPECT_EQ(asker.sink->OfCase(ServerEvent::kLlmResponse).size(), 1u);
  EXPECT_EQ(Outcomes(core_->traffic(), LlmOutcome::kAnswered), 1u);
}

// --- per-peer transport counters --------------------------------------------

TEST_F(RelayCoreTest, GetMeshShowsTheTransportsByteCountersPerPeer) {
  PeerSink::Counters counters;
  counters.bytes_in = 1234;
  counters.bytes_out = 56789;
  counters.queued_bytes = 42;
  ConnectionId counted = core_->Connect(ConnectionInfo{"192.0.2.9:1", "grpc"},
                                        std::make_shared<CountingSink>(counters));
  core_->Handle(counted, RegisterEvent("lobby", "counted"));
  Peer plain = Join("lobby", "plain");  // a sink that counts nothing

  absl::StatusOr<relay::v1::GetMeshResponse> mesh = core_->GetMesh("lobby");

  ASSERT_TRUE(mesh.ok()) << mesh.status();
  ASSERT_EQ(mesh->peers_size(), 2);
  EXPECT_EQ(mesh->peers(0).node_id(), "counted");
  EXPECT_EQ(mesh->peers(0).transport(), "grpc");
  EXPECT_EQ(mesh->peers(0).bytes_in(), 1234u);
  EXPECT_EQ(mesh->peers(0).bytes_out(), 56789u);
  EXPECT_EQ(mesh->peers(0).queued_bytes(), 42u);
  EXPECT_EQ(mesh->peers(1).node_id(), "plain");
  EXPECT_EQ(mesh->peers(1).bytes_in(), 0u);
  EXPECT_EQ(mesh->peers(1).bytes_out(), 0u);
  EXPECT_EQ(mesh->peers(1).queued_bytes(), 0u);
}

}  // namespace
// --- bounds per client (issue: unbounded per-client state) -----------------

TEST_P(RelayCoreRulesTest, NodeIdsThatLookLikeOthersAreRefused) {
  const std::vector<std::string> bad = {
      "\u202e"
      "evil",
      std::string("a\0b", 3),
      "\t",
      " ",
      "phone ",
      " phone",
      "ph\u200bone",
      "\xef\xbb\xbfphone",
      "ph\u2066one",
      "phone\u200f",
      "a\u0085",
      "a\x7f",
      "\xc2\xa0phone"};
  for (const std::string& node : bad) {
    Peer p = Open();
    Handle(p, RegisterEvent("lobby", node));
    EXPECT_THAT(p.sink->ErrorCodes(), ElementsAre("bad_message")) << node;
    EXPECT_THAT(p.sink->OfCase(ServerEvent::kJoined), IsEmpty()) << node;
  }
  // Ordinary ids of any script stay fine, inner spaces too.
  for (const char* node : {"phone-1", "Mac de Lou", "телефон", "手机", "💻"}) {
    Peer p = Open();
    Handle(p, RegisterEvent("lobby", node));
    EXPECT_EQ(p.sink->OfCase(ServerEvent::kJoined).size(), 1u) << node;
  }
  EXPECT_EQ(TotalPeers(), 5u);
}

TEST_P(RelayCoreRulesTest, CapabilitiesAndNamesRefuseHiddenCharacters) {
  Peer p = Open();
  Handle(p, RegisterEvent("lobby", "a", {"llm\u202e"}));
  Handle(p, RegisterEvent("lobby", "a", {" llm"}));
  Handle(p, RegisterEvent("lobby", "a", {""}));
  Handle(p, RegisterEvent("lobby", "a", {}, "", "Lou\u202e"));
  Handle(p, RegisterEvent("lobby", "a", {}, "", "Lou\n"));
  EXPECT_THAT(p.sink->ErrorCodes(), ElementsAre("bad_message", "bad_message", "bad_message",
                                                "bad_message", "bad_message"));
  p.sink->Clear();
  // A name may have spaces and emoji joiners.
  Handle(p, RegisterEvent("lobby", "a", {"llm"}, "", " Lou's 👨‍👩‍👧 "));
  EXPECT_EQ(p.sink->OfCase(ServerEvent::kJoined).size(), 1u);
  p.sink->Clear();
  Handle(p, CapabilitiesUpdateEvent({"chat\u200d"}));
  EXPECT_THAT(p.sink->ErrorCodes(), ElementsAre("bad_message"));
}

TEST_P(RelayCoreRulesTest, RequestIdOverTheIdBoundIsRefusedAndNotKeptOrEchoed) {
  Peer model = Join("lobby", "model", {"llm"});
  Peer asker = Join("lobby", "asker");
  ClearAll({&model, &asker});
  const std::string long_id = "\"" + std::string(300, 'x') + "\"";
  Handle(asker, LlmRequestEvent(long_id));
  ASSERT_THAT(asker.sink->ErrorCodes(), ElementsAre("bad_message"));
  EXPECT_EQ(asker.sink->events[0]->error().request_id(), "");
  EXPECT_THAT(model.sink->events, IsEmpty());
  Handle(model, LlmResponseEvent("asker", long_id));
  EXPECT_THAT(model.sink->ErrorCodes(), ElementsAre("bad_message"));
  // 256 bytes exactly is an id like any other.
  asker.sink->Clear();
  Handle(asker, LlmRequestEvent("\"" + std::string(254, 'y') + "\""));
  EXPECT_EQ(model.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
}

TEST_P(RelayCoreRulesTest, PendingLlmRequestsAreBoundedInBytesPerRequester) {
  CoreConfig config;
  config.max_pending_llm_bytes_per_peer = 10 * (LlmDispatch::kPendingOverheadBytes + 200);
  Reset(config);
  Peer model = Join("lobby", "model", {"llm"});
  Peer asker = Join("lobby", "asker");
  Peer other = Join("lobby", "other");
  for (int i = 0; i < 12; ++i) {
    std::string id =
        absl::StrCat("\"", i, std::string(200 - 2 - absl::StrCat(i).size(), 'x'), "\"");
    Handle(asker, LlmRequestEvent(id));
  }
  EXPECT_EQ(model.sink->OfCase(ServerEvent::kLlmRequest).size(), 10u);
  EXPECT_THAT(asker.sink->ErrorCodes(), ElementsAre("too_many_requests", "too_many_requests"));
  // Another requester has its own budget; an answer frees room.
  Handle(other, LlmRequestEvent("\"o\""));
  EXPECT_EQ(model.sink->OfCase(ServerEvent::kLlmRequest).size(), 11u);
  const std::string first =
      model.sink->OfCase(ServerEvent::kLlmRequest)[0]->llm_request().request().request_id();
  Handle(model, LlmResponseEvent("asker", first));
  asker.sink->Clear();
  Handle(asker, LlmRequestEvent("\"again\""));
  EXPECT_THAT(asker.sink->ErrorCodes(), IsEmpty());
}

TEST_P(RelayCoreRulesTest, ByteRateLimitRefusesThenClosesAndRefills) {
  CoreConfig config;
  config.rate_limit_per_second = 0;  // bytes only
  config.rate_limit_bytes_per_second = 1000;
  config.rate_limit_burst_bytes = 4000;
  Reset(config);
  Peer a = Join("lobby", "a");
  Peer b = Join("lobby", "b");
  for (int i = 0; i < 4; ++i) Handle(a, DirectEvent("b", "x"), 1000);
  EXPECT_EQ(b.sink->OfCase(ServerEvent::kMessage).size(), 4u);
  Handle(a, DirectEvent("b", "x"), 1000);
  ASSERT_THAT(a.sink->ErrorCodes(), ElementsAre("rate_limited"));
  EXPECT_THAT(a.sink->events.back()->error().message(), ::testing::HasSubstr("bytes per second"));
  clock_.Advance(absl::Seconds(1));
  Handle(a, DirectEvent("b", "x"), 1000);
  EXPECT_EQ(b.sink->OfCase(ServerEvent::kMessage).size(), 5u);
  // Small frames are not held back by a byte limit.
  for (int i = 0; i < 10; ++i) Handle(b, DirectEvent("a", "x"), 10);
  EXPECT_EQ(a.sink->OfCase(ServerEvent::kMessage).size(), 10u);
  // One who keeps streaming after being told is closed.
  for (int i = 0; i < 200 && a.sink->closes.empty(); ++i) Handle(a, DirectEvent("b", "x"), 1000);
  EXPECT_THAT(a.sink->closes, ElementsAre(CloseReason::kRateLimited));
}

TEST_P(RelayCoreRulesTest, ByteRateLetsTheLargestMessageThroughOnAFullBucket) {
  CoreConfig config;
  config.rate_limit_bytes_per_second = 100;
  config.rate_limit_burst_bytes = 1000;
  Reset(config);
  Peer a = Join("lobby", "a");
  Peer b = Join("lobby", "b");
  Handle(a, DirectEvent("b", "big"), 5000);  // larger than the burst
  EXPECT_EQ(b.sink->OfCase(ServerEvent::kMessage).size(), 1u);
}

TEST_F(RelayCoreTest, AuthRecordBoundsAnswerWithoutClosing) {
  CoreConfig config;
  config.max_auth_records = 1;
  config.auth_records_per_ip_per_minute = 1000;
  Reset(config);
  Join("bound-1", "a", {}, "secret");
  Peer late = Open();
  Handle(late, RegisterEvent("bound-2", "a", {}, "secret"));
  EXPECT_THAT(late.sink->ErrorCodes(), ElementsAre("auth_unavailable"));
  EXPECT_THAT(late.sink->closes, IsEmpty());
  // An open mesh needs no record.
  Handle(late, RegisterEvent("open", "a"));
  EXPECT_EQ(late.sink->OfCase(ServerEvent::kJoined).size(), 1u);

  CoreConfig per_ip;
  per_ip.auth_records_per_ip_per_minute = 2;
  Reset(per_ip);
  std::vector<std::string> codes;
  for (int i = 0; i < 3; ++i) {
    Peer p = Open();
    Handle(p, RegisterEvent(absl::StrCat("m", i), "a", {}, "t"));
    EXPECT_THAT(p.sink->closes, IsEmpty());
    for (const std::string& c : p.sink->ErrorCodes()) codes.push_back(c);
  }
  EXPECT_THAT(codes, ElementsAre("rate_limited"));
  EXPECT_EQ(core_->auth_records(), 2u);
  EXPECT_EQ(core_->limit_hits().Get(Limit::kAuthRecordsPerIp), 1u);
  EXPECT_EQ(core_->limit_hits().Get(Limit::kAuthRecords), 0u);
}

TEST_F(RelayCoreTest, EveryLimitIsListedInStatsByItsName) {
  CoreConfig config;
  config.rate_limit_bytes_per_second = 10;
  config.rate_limit_burst_bytes = 10;
  Reset(config);
  Peer a = Join("lobby", "a");
  Handle(a, PingEvent(), 10);
  Handle(a, PingEvent(), 10);
  const relay::v1::Stats stats = core_->GetStats();
  ASSERT_EQ(static_cast<std::size_t>(stats.limits_size()), kLimitCount);
  for (std::size_t i = 0; i < kLimitCount; ++i) {
    EXPECT_EQ(stats.limits(i).limit(), LimitName(static_cast<Limit>(i)));
    EXPECT_EQ(stats.limits(i).count(), static_cast<Limit>(i) == Limit::kByteRate ? 1u : 0u)
        << stats.limits(i).limit();
  }
}

}  // namespace relay::core
