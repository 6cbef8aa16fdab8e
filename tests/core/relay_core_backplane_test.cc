// What only a mesh spread over instances can show: an instance lost, a
// broadcast crossing once per instance, order per sender and receiver under
// any interleaving between instances, a takeover across instances, a late
// roster. Cores are joined by FakeBackplane; no sockets, no sleeps.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/relay_core.h"
#include "tests/core/client_events.h"
#include "tests/core/fake_backplane.h"
#include "tests/core/fake_clock.h"
#include "tests/core/recording_sink.h"

namespace relay::core {
namespace {

using ::relay::core::testing::BroadcastEvent;
using ::relay::core::testing::DirectEvent;
using ::relay::core::testing::FakeBackplane;
using ::relay::core::testing::FakeClock;
using ::relay::core::testing::LlmRequestEvent;
using ::relay::core::testing::LlmResponseEvent;
using ::relay::core::testing::RecordingSink;
using ::relay::core::testing::RegisterEvent;
using ::relay::v1::BackplaneEnvelope;
using ::relay::v1::ClientEvent;
using ::relay::v1::ServerEvent;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct Peer {
  std::size_t instance = 0;
  ConnectionId id = 0;
  std::shared_ptr<RecordingSink> sink;
};

// Payloads of the messages a sink got, in order.
std::vector<std::string> Payloads(const RecordingSink& sink) {
  std::vector<std::string> out;
  for (const auto& e : sink.events) {
    if (e->has_message()) out.push_back(e->message().payload());
  }
  return out;
}

std::vector<std::string> PeerIds(const ServerEvent& peers) {
  std::vector<std::string> out;
  for (const auto& p : peers.peers().peers()) out.push_back(p.node_id());
  return out;
}

class BackplaneTest : public ::testing::Test {
 protected:
  void Start(int instances) {
    for (int i = 0; i < instances; ++i) {
      names_.push_back(absl::StrCat("i", i));
      cores_.push_back(std::make_unique<RelayCore>(CoreConfig{}, &clock_, nullptr, nullptr,
                                                   bus_.Add(names_.back())));
    }
  }
  void SetUp() override { Start(3); }

  Peer Open(std::size_t instance) {
    Peer peer{instance, 0, std::make_shared<RecordingSink>()};
    peer.id = cores_[instance]->Connect(ConnectionInfo{"10.0.0.1:4000", "ws"}, peer.sink);
    return peer;
  }
  void Send(const Peer& peer, const ClientEvent& event) {
    cores_[peer.instance]->Handle(peer.id, event);
  }
  Peer Joined(std::size_t instance, const std::string& mesh, const std::string& node,
              const std::vector<std::string>& caps = {}, const std::string& token = "") {
    Peer peer = Open(instance);
    Send(peer, RegisterEvent(mesh, node, caps, token));
    bus_.DeliverAll();
    EXPECT_FALSE(peer.sink->OfCase(ServerEvent::kJoined).empty()) << node << " did not join";
    peer.sink->Clear();
    return peer;
  }

  FakeClock clock_;
  FakeBackplane bus_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<RelayCore>> cores_;
};

TEST_F(BackplaneTest, ALostInstancesPeersLeaveAndTheRequestsTheyHeldFail) {
  Peer phone = Joined(0, "home", "phone");
  Peer mac = Joined(1, "home", "mac", {"llm"});
  Peer tablet = Joined(2, "home", "tablet");
  Send(phone, LlmRequestEvent("\"r1\""));
  bus_.DeliverAll();
  ASSERT_EQ(mac.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
  phone.sink->Clear();
  tablet.sink->Clear();

  bus_.Kill("i1");

  for (Peer* p : {&phone, &tablet}) {
    auto left = p->sink->OfCase(ServerEvent::kPeerLeft);
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0]->peer_left().node_id(), "mac");
  }
  EXPECT_THAT(phone.sink->ErrorCodes(), ElementsAre("llm_peer_left"));
  EXPECT_THAT(tablet.sink->ErrorCodes(), IsEmpty());
  // No capable peer anywhere now: refused at once.
  phone.sink->Clear();
  Send(phone, LlmRequestEvent("\"r2\""));
  bus_.DeliverAll();
  EXPECT_THAT(phone.sink->ErrorCodes(), ElementsAre("no_llm_peer"));
}

TEST_F(BackplaneTest, ABroadcastCrossesToEachOtherInstanceOnceWhateverItsMembers) {
  Peer sender = Joined(0, "big", "sender");
  std::vector<Peer> others;
  for (int i = 0; i < 5; ++i) others.push_back(Joined(1, "big", absl::StrCat("b", i)));
  for (int i = 0; i < 3; ++i) others.push_back(Joined(2, "big", absl::StrCat("c", i)));
  const std::size_t before_1 = bus_.Sent("i0", "i1", BackplaneEnvelope::kDelivery);
  const std::size_t before_2 = bus_.Sent("i0", "i2", BackplaneEnvelope::kDelivery);

  Send(sender, BroadcastEvent("\"hello\""));
  bus_.DeliverAll();

  EXPECT_EQ(bus_.Sent("i0", "i1", BackplaneEnvelope::kDelivery) - before_1, 1u);
  EXPECT_EQ(bus_.Sent("i0", "i2", BackplaneEnvelope::kDelivery) - before_2, 1u);
  for (const Peer& p : others) EXPECT_THAT(Payloads(*p.sink), ElementsAre("\"hello\""));
  EXPECT_THAT(Payloads(*sender.sink), IsEmpty());
}

TEST_F(BackplaneTest, OrderPerSenderAndReceiverHoldsUnderAnyInterleavingOfInstances) {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    FakeBackplane bus;
    bus.Shuffle(seed);
    std::vector<std::unique_ptr<RelayCore>> cores;
    for (int i = 0; i < 3; ++i) {
      cores.push_back(std::make_unique<RelayCore>(CoreConfig{}, &clock_, nullptr, nullptr,
                                                  bus.Add(absl::StrCat("i", i))));
    }
    std::vector<Peer> peers;
    for (int i = 0; i < 3; ++i) {
      Peer p{static_cast<std::size_t>(i), 0, std::make_shared<RecordingSink>()};
      p.id = cores[i]->Connect(ConnectionInfo{"10.0.0.1:4000", "ws"}, p.sink);
      cores[i]->Handle(p.id, RegisterEvent("m", absl::StrCat("n", i)));
      bus.DeliverAll();
      peers.push_back(p);
    }
    // n0 and n1 both send to n2, mixing broadcasts and directs; nothing is
    // delivered until all is sent, then in a seeded interleaving.
    for (int k = 0; k < 10; ++k) {
      for (int s = 0; s < 2; ++s) {
        const std::string payload = absl::StrCat("\"", s, ":", k, "\"");
        cores[s]->Handle(peers[s].id,
                         k % 2 == 0 ? BroadcastEvent(payload) : DirectEvent("n2", payload));
      }
    }
    bus.DeliverAll();
    std::vector<int> next(2, 0);
    for (const std::string& payload : Payloads(*peers[2].sink)) {
      const int s = payload[1] - '0';
      EXPECT_EQ(payload, absl::StrCat("\"", s, ":", next[s], "\"")) << "seed " << seed;
      ++next[s];
    }
    EXPECT_EQ(next[0], 10) << "seed " << seed;
    EXPECT_EQ(next[1], 10) << "seed " << seed;
    cores.clear();
  }
}

TEST_F(BackplaneTest, AProvenNodeIdTakenOverOnAnotherInstanceClosesTheOldConnectionAsReplaced) {
  // A signed-in identity proves the node on any instance; an unbound open
  // credential does not (see RelayCoreTest's probe tests). A shared token
  // binding comes with the shared auth store: here the same token binds on
  // each instance the first time, which proves the node alike.
  Peer old_conn = Joined(0, "family", "phone", {}, "t");
  Peer watcher = Joined(2, "family", "mac");
  (void)watcher;
  // Instance 1 sees a live mesh it never bound: its token proves nothing
  // there, so the claim is refused rather than guessed.
  Peer claimant = Open(1);
  Send(claimant, RegisterEvent("family", "phone", {}, "t"));
  bus_.DeliverAll();
  EXPECT_THAT(claimant.sink->ErrorCodes(), ElementsAre("node_id_in_use"));
  EXPECT_THAT(old_conn.sink->closes, IsEmpty());
}

TEST_F(BackplaneTest, ALateInstanceLearnsTheRosterBeforeItsFirstPeerJoins) {
  Peer a = Joined(0, "m", "a", {"llm"});
  Peer b = Joined(1, "m", "b");
  Peer c = Open(2);
  Send(c, RegisterEvent("m", "c"));
  // Nothing crossed yet: c waits for the roster, and says nothing.
  EXPECT_THAT(c.sink->events, IsEmpty());
  Send(c, LlmRequestEvent("\"early\""));  // pipelined: held until c has joined
  bus_.DeliverAll();

  ASSERT_GE(c.sink->events.size(), 2u);
  ASSERT_TRUE(c.sink->events[0]->has_joined());
  EXPECT_EQ(c.sink->events[0]->joined().node_count(), 3u);
  ASSERT_TRUE(c.sink->events[1]->has_peers());
  EXPECT_THAT(PeerIds(*c.sink->events[1]), ElementsAre("a", "b"));
  EXPECT_EQ(a.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
  EXPECT_EQ(b.sink->OfCase(ServerEvent::kPeerJoined).size(), 1u);
}

TEST_F(BackplaneTest, LlmLoadFromEveryInstanceCountsTowardsTheFewestOutstandingRule) {
  Peer r0 = Joined(0, "m", "r0");
  Peer r1 = Joined(1, "m", "r1");
  Peer x = Joined(2, "m", "x", {"llm"});
  Peer y = Joined(2, "m", "y", {"llm"});
  // r0 gives x two requests, r1 then gives two: each must go to y first,
  // which holds fewer cluster-wide, though r1's instance dispatched none.
  Send(r0, LlmRequestEvent("\"a\""));
  bus_.DeliverAll();
  Send(r0, LlmRequestEvent("\"b\""));
  bus_.DeliverAll();
  ASSERT_EQ(x.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
  ASSERT_EQ(y.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
  x.sink->Clear();
  y.sink->Clear();
  Send(r1, LlmRequestEvent("\"c\""));
  bus_.DeliverAll();
  Send(r1, LlmRequestEvent("\"d\""));
  bus_.DeliverAll();
  EXPECT_EQ(x.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
  EXPECT_EQ(y.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
}

TEST_F(BackplaneTest, AMemberLeavingElsewhereIsAnnouncedOnceAndItsMeshIsForgottenWithItsLastPeer) {
  Peer a = Joined(0, "m", "a");
  Peer b = Joined(1, "m", "b");
  cores_[1]->Disconnect(b.id, CloseReason::kClientClosed);
  bus_.DeliverAll();
  auto left = a.sink->OfCase(ServerEvent::kPeerLeft);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0]->peer_left().node_id(), "b");
  EXPECT_EQ(cores_[1]->Health().meshes, 0u);
  EXPECT_EQ(cores_[0]->Health().meshes, 1u);
  // A direct to the member that left is unknown now, on every instance.
  Send(a, DirectEvent("b", "\"x\""));
  bus_.DeliverAll();
  EXPECT_THAT(a.sink->ErrorCodes(), ElementsAre("unknown_target"));
}

TEST_F(BackplaneTest, ADirectToAPeerThatLeftWhileItCrossedIsCountedAsDropped) {
  Peer a = Joined(0, "m", "a");
  Peer b = Joined(1, "m", "b");
  Send(a, DirectEvent("b", "\"late\""));
  cores_[1]->Disconnect(b.id, CloseReason::kClientClosed);
  bus_.DeliverAll();
  const relay::v1::Stats stats = cores_[1]->GetStats();
  std::uint64_t closing = 0;
  for (const auto& d : stats.drops()) closing += d.reason() == "closing" ? d.count() : 0;
  EXPECT_EQ(closing, 1u);
  EXPECT_THAT(a.sink->ErrorCodes(), IsEmpty());
}

// Nothing is lost silently: while the link to another instance is down,
// what must cross it is refused to its sender with cluster_unavailable (and
// counted as an unreachable drop); what stays on the instance is delivered;
// an llm request refused so is not left waiting for an answer. When the
// link is back, traffic flows again.
TEST_F(BackplaneTest, WhatCannotCrossToAnotherInstanceIsRefusedToItsSender) {
  Peer phone = Joined(0, "home", "phone");
  Peer tablet = Joined(0, "home", "tablet");
  Peer mac = Joined(1, "home", "mac", {"llm"});
  bus_.Cut("i1");

  Send(phone, DirectEvent("mac", "\"hi\""));
  Send(phone, BroadcastEvent("\"all\""));
  Send(phone, LlmRequestEvent("\"r1\""));
  bus_.DeliverAll();
  auto errors = phone.sink->OfCase(ServerEvent::kError);
  ASSERT_EQ(errors.size(), 3u);
  for (const auto& e : errors) EXPECT_EQ(e->error().code(), "cluster_unavailable");
  EXPECT_THAT(errors[0]->error().message(), ::testing::HasSubstr("\"mac\""));
  EXPECT_EQ(errors[2]->error().request_id(), "\"r1\"");
  EXPECT_THAT(Payloads(*tablet.sink), ElementsAre("\"all\""));
  EXPECT_THAT(mac.sink->events, IsEmpty());
  std::uint64_t unreachable = 0;
  const relay::v1::Stats stats = cores_[0]->GetStats();
  for (const auto& d : stats.drops()) {
    unreachable += d.reason() == "unreachable" ? d.count() : 0;
  }
  EXPECT_EQ(unreachable, 3u);
  // The answer of the mac, over the cut link, is refused to the mac.
  Send(mac, LlmResponseEvent("phone", "\"r0\""));
  EXPECT_THAT(mac.sink->ErrorCodes(), ElementsAre("cluster_unavailable"));

  bus_.Cut("i1", false);
  phone.sink->Clear();
  Send(phone, LlmRequestEvent("\"r2\""));
  Send(phone, DirectEvent("mac", "\"again\""));
  bus_.DeliverAll();
  EXPECT_THAT(phone.sink->ErrorCodes(), IsEmpty());
  ASSERT_EQ(mac.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
  EXPECT_EQ(mac.sink->OfCase(ServerEvent::kLlmRequest)[0]->llm_request().request().request_id(),
            "\"r2\"");
  EXPECT_THAT(Payloads(*mac.sink), ElementsAre("\"again\""));
  // Only r2 waits at the mac: r1 was never tracked, so the mac leaving
  // fails r2 alone.
  cores_[1]->Disconnect(mac.id, CloseReason::kClientClosed);
  bus_.DeliverAll();
  auto failed = phone.sink->OfCase(ServerEvent::kError);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]->error().code(), "llm_peer_left");
  EXPECT_EQ(failed[0]->error().request_id(), "\"r2\"");
}

}  // namespace
}  // namespace relay::core
