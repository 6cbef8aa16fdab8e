// Cluster-wide ownership of a node_id (docs/adr/0009-cluster-on-nats.md,
// section 3): in cluster mode a registration joins only once its node
// entry is claimed (Backplane::ClaimNode), and the core's rules decide what
// a held entry means (a dead holder, the same proven credentials, a holder
// on this instance, anyone else). Cores are joined by FakeBackplane, whose
// shared node map decides claims when delivered, so races happen in
// process. Every test asserts what the clients see, through their sinks.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/crypto.h"
#include "server/core/relay_core.h"
#include "server/limits.h"
#include "tests/core/client_events.h"
#include "tests/core/fake_backplane.h"
#include "tests/core/fake_clock.h"
#include "tests/core/recording_sink.h"
#include "tests/store/scripted_auth_store.h"

namespace relay::core {
namespace {

using ::relay::core::testing::BroadcastEvent;
using ::relay::core::testing::DirectEvent;
using ::relay::core::testing::FakeBackplane;
using ::relay::core::testing::FakeClock;
using ::relay::core::testing::PingEvent;
using ::relay::core::testing::RecordingSink;
using ::relay::core::testing::RegisterEvent;
using ::relay::store::testing::ScriptedAuthStore;
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

// What a sink saw, one word each: the event's kind, an error's code, a
// message's payload ("message:<payload>"), a peer_joined's or peer_left's
// node.
std::vector<std::string> Seen(const RecordingSink& sink) {
  std::vector<std::string> out;
  for (const ServerEventPtr& e : sink.events) {
    switch (e->event_case()) {
      case ServerEvent::kError:
        out.push_back(e->error().code());
        break;
      case ServerEvent::kMessage:
        out.push_back(absl::StrCat("message:", e->message().payload()));
        break;
      case ServerEvent::kPeerJoined:
        out.push_back(absl::StrCat("peer_joined:", e->peer_joined().peer().node_id()));
        break;
      case ServerEvent::kPeerLeft:
        out.push_back(absl::StrCat("peer_left:", e->peer_left().node_id()));
        break;
      case ServerEvent::kJoined:
        out.push_back("joined");
        break;
      case ServerEvent::kPeers:
        out.push_back("peers");
        break;
      case ServerEvent::kPong:
        out.push_back("pong");
        break;
      default:
        out.push_back(absl::StrCat("event ", static_cast<int>(e->event_case())));
    }
  }
  return out;
}

class ClaimTest : public ::testing::Test {
 protected:
  // `instances` cores on one bus; with `store`, they share it (a token
  // binding then proves the node on every instance, as the NATS auth store
  // will make it).
  void Start(int instances, ScriptedAuthStore* store = nullptr) {
    for (int i = 0; i < instances; ++i) {
      names_.push_back(absl::StrCat("i", i));
      cores_.push_back(std::make_unique<RelayCore>(CoreConfig{}, &clock_, store, nullptr,
                                                   bus_.Add(names_.back())));
      if (store != nullptr) {
        ASSERT_TRUE(cores_.back()->LoadAuthState().ok());
      }
    }
  }
  // A store in which mesh "family" is bound to token "t", loaded by every
  // core.
  void StartBound(int instances) {
    store::TokenBinding binding;
    binding.mesh_id = "family";
    binding.salt = "salt";
    binding.hash = auth::SaltedSha256(binding.salt, "t");
    store_.bindings["family"] = binding;
    Start(instances, &store_);
  }

  Peer Open(std::size_t instance) {
    Peer peer{instance, 0, std::make_shared<RecordingSink>()};
    peer.id = cores_[instance]->Connect(ConnectionInfo{"10.0.0.1:4000", "ws"}, peer.sink);
    return peer;
  }
  void Send(const Peer& peer, const ClientEvent& event) {
    cores_[peer.instance]->Handle(peer.id, event);
  }
  Peer Joined(std::size_t instance, const std::string& mesh, const std::string& node,
              const std::string& token = "") {
    Peer peer = Open(instance);
    Send(peer, RegisterEvent(mesh, node, {}, token));
    bus_.DeliverAll();
    EXPECT_FALSE(peer.sink->OfCase(ServerEvent::kJoined).empty()) << node << " did not join";
    peer.sink->Clear();
    return peer;
  }
  // The instance GetMesh on `at` says holds `node`, "" when not listed.
  std::string HolderSeenBy(std::size_t at, const std::string& mesh, const std::string& node) {
    absl::StatusOr<relay::v1::GetMeshResponse> got = cores_[at]->GetMesh(mesh);
    if (!got.ok()) return "";
    std::string holder;
    for (const auto& p : got->peers()) {
      if (p.node_id() == node) {
        EXPECT_TRUE(holder.empty()) << node << " listed twice on " << names_[at];
        holder = p.instance();
      }
    }
    return holder;
  }

  FakeClock clock_;
  FakeBackplane bus_;  // outlives the cores, which use it
  ScriptedAuthStore store_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<RelayCore>> cores_;
};

TEST_F(ClaimTest, TwoInstancesRacingForOneNodeIdWithOtherCredentialsJoinExactlyOne) {
  // Both claims are in flight at once: neither instance's roster knows the
  // other's claimant when it claims. Any interleaving gives one winner.
  for (unsigned seed = 1; seed <= 20; ++seed) {
    FakeBackplane bus;
    bus.Shuffle(seed);
    std::vector<std::unique_ptr<RelayCore>> cores;
    std::vector<Peer> peers;
    auto open = [&](std::size_t i) {
      Peer p{i, 0, std::make_shared<RecordingSink>()};
      p.id = cores[i]->Connect(ConnectionInfo{"10.0.0.1:4000", "ws"}, p.sink);
      return p;
    };
    for (int i = 0; i < 2; ++i) {
      cores.push_back(std::make_unique<RelayCore>(CoreConfig{}, &clock_, nullptr, nullptr,
                                                  bus.Add(absl::StrCat("i", i))));
    }
    // A member on each instance, so that both follow the mesh already.
    Peer x = open(0);
    cores[0]->Handle(x.id, RegisterEvent("m", "x"));
    bus.DeliverAll();
    Peer y = open(1);
    cores[1]->Handle(y.id, RegisterEvent("m", "y"));
    bus.DeliverAll();
    x.sink->Clear();
    y.sink->Clear();

    Peer a = open(0);
    Peer b = open(1);
    cores[0]->Handle(a.id, RegisterEvent("m", "n", {}, "token-a"));
    cores[1]->Handle(b.id, RegisterEvent("m", "n", {}, "token-b"));
    bus.DeliverAll();

    const bool a_won = !a.sink->OfCase(ServerEvent::kJoined).empty();
    const Peer& winner = a_won ? a : b;
    const Peer& loser = a_won ? b : a;
    EXPECT_THAT(Seen(*winner.sink), ElementsAre("joined", "peers")) << "seed " << seed;
    EXPECT_THAT(Seen(*loser.sink), ElementsAre("node_id_in_use")) << "seed " << seed;
    EXPECT_THAT(loser.sink->closes, IsEmpty()) << "seed " << seed;  // it may pick another id
    for (const Peer* p : {&x, &y}) {
      EXPECT_THAT(Seen(*p->sink), ElementsAre("peer_joined:n")) << "seed " << seed;
    }
    ASSERT_NE(bus.Node("m", "n"), nullptr);
    EXPECT_EQ(bus.Node("m", "n")->holder, a_won ? "i0" : "i1") << "seed " << seed;
    // The winner is reachable from either side.
    cores[0]->Handle(x.id, DirectEvent("n", "\"hi\""));
    bus.DeliverAll();
    EXPECT_THAT(Seen(*winner.sink), ElementsAre("joined", "peers", "message:\"hi\""))
        << "seed " << seed;
    cores.clear();
  }
}

TEST_F(ClaimTest, TheSameProvenCredentialsOnAnotherInstanceTakeOverAndReplaceTheOldConnection) {
  StartBound(3);
  Peer old_phone = Joined(0, "family", "phone", "t");
  Peer watcher = Joined(2, "family", "mac", "t");
  Peer phone = Open(1);
  Send(phone, RegisterEvent("family", "phone", {}, "t"));
  bus_.DeliverAll();

  EXPECT_THAT(Seen(*phone.sink), ElementsAre("joined", "peers"));
  ASSERT_EQ(phone.sink->events[1]->peers().peers_size(), 1);
  EXPECT_EQ(phone.sink->events[1]->peers().peers(0).node_id(), "mac");
  EXPECT_THAT(old_phone.sink->closes, ElementsAre(CloseReason::kReplaced));
  EXPECT_THAT(old_phone.sink->ErrorCodes(), IsEmpty());
  // The mesh never lost its phone: no peer_left, only the new connection.
  EXPECT_THAT(Seen(*watcher.sink), ElementsAre("peer_joined:phone"));
  EXPECT_EQ(HolderSeenBy(2, "family", "phone"), "i1");
  ASSERT_NE(bus_.Node("family", "phone"), nullptr);
  EXPECT_EQ(bus_.Node("family", "phone")->holder, "i1");

  // The old connection's end, when its transport reports it, gives nothing
  // back: the entry is the new connection's.
  cores_[0]->Disconnect(old_phone.id, CloseReason::kReplaced);
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*watcher.sink), ElementsAre("peer_joined:phone"));
  ASSERT_NE(bus_.Node("family", "phone"), nullptr);
  EXPECT_EQ(bus_.Node("family", "phone")->holder, "i1");
  Send(watcher, DirectEvent("phone", "\"still here?\""));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*phone.sink), ElementsAre("joined", "peers", "message:\"still here?\""));
}

TEST_F(ClaimTest, ADeadInstancesNodeIdIsTakenOverWhateverTheCredentials) {
  Start(3);
  Peer watcher = Joined(0, "m", "watcher");
  Peer phone = Joined(1, "m", "phone", "old-token");
  (void)phone;
  watcher.sink->Clear();
  bus_.Kill("i1");
  EXPECT_THAT(Seen(*watcher.sink), ElementsAre("peer_left:phone"));
  // The entry outlives its instance; only the claim's answer (holder not
  // live) says it is free.
  ASSERT_NE(bus_.Node("m", "phone"), nullptr);
  EXPECT_EQ(bus_.Node("m", "phone")->holder, "i1");

  const std::size_t claims_before = bus_.claims();
  Peer successor = Open(2);
  Send(successor, RegisterEvent("m", "phone", {}, "new-token"));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*successor.sink), ElementsAre("joined", "peers"));
  EXPECT_THAT(Seen(*watcher.sink), ElementsAre("peer_left:phone", "peer_joined:phone"));
  EXPECT_EQ(bus_.Node("m", "phone")->holder, "i2");
  // One claim finds the dead holder, one takes its entry over at its
  // revision.
  EXPECT_EQ(bus_.claims() - claims_before, 2u);
}

TEST_F(ClaimTest, AClaimTheClusterCannotAnswerIsRefusedAndTheSameConnectionMayRetry) {
  Start(2);
  Peer watcher = Joined(0, "m", "watcher");
  bus_.Cut("i1");
  Peer phone = Open(1);
  Send(phone, RegisterEvent("m", "phone"));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*phone.sink), ElementsAre("cluster_unavailable"));
  EXPECT_THAT(phone.sink->closes, IsEmpty());
  EXPECT_THAT(watcher.sink->events, IsEmpty());
  EXPECT_EQ(bus_.Node("m", "phone"), nullptr);
  // Not registered: anything else is refused as before any register.
  Send(phone, PingEvent());
  EXPECT_THAT(Seen(*phone.sink), ElementsAre("cluster_unavailable", "not_registered"));

  bus_.Cut("i1", false);
  phone.sink->Clear();
  Send(phone, RegisterEvent("m", "phone"));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*phone.sink), ElementsAre("joined", "peers"));
  EXPECT_THAT(Seen(*watcher.sink), ElementsAre("peer_joined:phone"));
}

TEST_F(ClaimTest, EventsPipelinedWhileTheClaimWaitsAreHandledInOrderAfterJoined) {
  Start(2);
  Peer a = Joined(0, "m", "a");
  Peer c = Joined(1, "m", "c");  // i1 follows the mesh: b waits for its claim only
  a.sink->Clear();
  Peer b = Open(1);
  Send(b, RegisterEvent("m", "b"));
  Send(b, DirectEvent("a", "\"1\""));
  Send(b, BroadcastEvent("\"2\""));
  Send(b, PingEvent());
  // Nothing is answered while the claim is out, and nothing is refused.
  EXPECT_THAT(b.sink->events, IsEmpty());
  bus_.DeliverAll();

  EXPECT_THAT(Seen(*b.sink), ElementsAre("joined", "peers", "pong"));
  EXPECT_THAT(Seen(*a.sink), ElementsAre("peer_joined:b", "message:\"1\"", "message:\"2\""));
  EXPECT_THAT(Seen(*c.sink), ElementsAre("peer_joined:b", "message:\"2\""));
}

TEST_F(ClaimTest, AConnectionGoneWhileItsClaimWaitsGivesTheNodeIdBack) {
  Start(2);
  Peer a = Joined(0, "m", "a");
  Peer c = Joined(1, "m", "c");
  a.sink->Clear();
  Peer b = Open(1);
  Send(b, RegisterEvent("m", "b", {}, "token-b"));
  cores_[1]->Disconnect(b.id, CloseReason::kClientClosed);
  bus_.DeliverAll();  // the claim is won for nobody, then given back

  EXPECT_EQ(bus_.Node("m", "b"), nullptr);
  EXPECT_THAT(a.sink->events, IsEmpty());
  EXPECT_THAT(c.sink->events, IsEmpty());
  // Anyone may have it now, whatever their credentials.
  Peer other = Open(0);
  Send(other, RegisterEvent("m", "b", {}, "token-other"));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*other.sink), ElementsAre("joined", "peers"));
}

TEST_F(ClaimTest, AStaleClaimRetransmittedAfterATakeoverIsIgnored) {
  StartBound(3);
  Peer first = Joined(0, "family", "phone", "t");
  Peer watcher = Joined(2, "family", "mac", "t");
  Peer second = Joined(1, "family", "phone", "t");
  ASSERT_THAT(first.sink->closes, ElementsAre(CloseReason::kReplaced));
  cores_[0]->Disconnect(first.id, CloseReason::kReplaced);
  bus_.DeliverAll();
  watcher.sink->Clear();
  second.sink->Clear();

  // The first connection's claim arrives again, late, at the instance that
  // now holds the id and at one that only watches.
  auto claim_of_first = [&](const std::string& to) {
    for (const BackplaneEnvelope& e :
         bus_.SentEnvelopes("i0", to, BackplaneEnvelope::kMemberClaimed)) {
      if (e.member_claimed().node_id() == "phone") return e;
    }
    ADD_FAILURE() << "no claim of phone from i0 to " << to;
    return BackplaneEnvelope();
  };
  bus_.Inject("i0", "i1", claim_of_first("i1"));
  bus_.Inject("i0", "i2", claim_of_first("i2"));
  bus_.DeliverAll();

  EXPECT_THAT(second.sink->closes, IsEmpty());
  EXPECT_THAT(second.sink->events, IsEmpty());
  EXPECT_THAT(watcher.sink->events, IsEmpty());
  EXPECT_EQ(HolderSeenBy(2, "family", "phone"), "i1");
  Send(watcher, DirectEvent("phone", "\"to the second\""));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*second.sink), ElementsAre("message:\"to the second\""));
  EXPECT_THAT(watcher.sink->ErrorCodes(), IsEmpty());
}

TEST_F(ClaimTest, AClaimThatKeepsLosingRacesAnswersClusterUnavailableAfterThreeAttempts) {
  Start(2);
  Peer watcher = Joined(0, "m", "watcher");
  const std::size_t claims_before = bus_.claims();
  bus_.LoseNextClaims(3);
  Peer phone = Open(1);
  Send(phone, RegisterEvent("m", "phone"));
  bus_.DeliverAll();
  EXPECT_EQ(bus_.claims() - claims_before, 3u);
  EXPECT_THAT(Seen(*phone.sink), ElementsAre("cluster_unavailable"));
  EXPECT_THAT(phone.sink->closes, IsEmpty());
  EXPECT_THAT(watcher.sink->events, IsEmpty());

  // The last winner's instance is not live: a retry takes its entry over.
  phone.sink->Clear();
  Send(phone, RegisterEvent("m", "phone"));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*phone.sink), ElementsAre("joined", "peers"));
  EXPECT_EQ(bus_.Node("m", "phone")->holder, "i1");
}

TEST_F(ClaimTest, AHolderOnTheSameInstanceIsProbedThenItsEntryIsClaimedAtItsRevision) {
  Start(2);
  Peer watcher = Joined(1, "m", "watcher");
  Peer old_phone = Joined(0, "m", "phone", "t");  // open mesh: equal tokens prove nothing
  watcher.sink->Clear();
  const std::uint64_t old_revision = bus_.Node("m", "phone")->revision;
  Peer phone = Open(0);
  Send(phone, RegisterEvent("m", "phone", {}, "t"));
  bus_.DeliverAll();
  EXPECT_THAT(phone.sink->events, IsEmpty());  // waits for the probe
  ASSERT_TRUE(old_phone.sink->AnswerProbe(false));
  bus_.DeliverAll();

  EXPECT_THAT(Seen(*phone.sink), ElementsAre("joined", "peers"));
  EXPECT_THAT(old_phone.sink->closes, ElementsAre(CloseReason::kReplaced));
  EXPECT_THAT(Seen(*watcher.sink), ElementsAre("peer_joined:phone"));
  ASSERT_NE(bus_.Node("m", "phone"), nullptr);
  EXPECT_GT(bus_.Node("m", "phone")->revision, old_revision);
  EXPECT_EQ(HolderSeenBy(1, "m", "phone"), "i0");
}

// --- A token binding lets go only when the family left every instance ----------

// One instance's memory sees its own members only. Here the family left
// through i0 (whose memory started the grace) and came back through i1.
class BindingGraceTest : public ClaimTest {
 protected:
  // Three instances on a shared store; "family" bound to "t". Its phone
  // left through i0 (whose memory starts the grace) and, an hour later,
  // came back through i1.
  Peer LeftThroughI0AndBackThroughI1() {
    store_.set_shared(true);
    StartBound(3);
    Peer phone = Joined(0, "family", "phone", "t");
    cores_[0]->Disconnect(phone.id, CloseReason::kClientClosed);
    bus_.DeliverAll();
    EXPECT_TRUE(store_.bindings.at("family").expires_at.has_value());
    clock_.Advance(absl::Hours(1));
    Peer back = Joined(1, "family", "phone", "t");
    EXPECT_FALSE(store_.bindings.at("family").expires_at.has_value());  // it lives again
    return back;
  }
  void ExpireEverywhere() {
    for (auto& core : cores_) core->ExpireUnregistered();
    bus_.DeliverAll();
  }
};

TEST_F(BindingGraceTest, ABindingOutlivesAGraceOneInstanceStartedWhileTheFamilyLivesOnAnother) {
  Peer back = LeftThroughI0AndBackThroughI1();
  clock_.Advance(CoreConfig{}.mesh_binding_grace);
  ExpireEverywhere();
  ASSERT_EQ(store_.bindings.count("family"), 1u);
  Peer stranger = Open(2);
  Send(stranger, RegisterEvent("family", "laptop", {}, "guess"));
  bus_.DeliverAll();
  EXPECT_THAT(stranger.sink->ErrorCodes(), ElementsAre("auth_failed"));
  Send(back, PingEvent());
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*back.sink), ElementsAre("pong"));
}

TEST_F(BindingGraceTest, ABindingGoesAGraceAfterTheFamilyLeftItsLastInstance) {
  Peer back = LeftThroughI0AndBackThroughI1();
  cores_[1]->Disconnect(back.id, CloseReason::kClientClosed);  // i1's grace: an hour later
  bus_.DeliverAll();

  // i0's grace ends first: the store's later one stands.
  clock_.Advance(CoreConfig{}.mesh_binding_grace - absl::Minutes(30));
  ExpireEverywhere();
  ASSERT_EQ(store_.bindings.count("family"), 1u);
  Peer early = Open(2);
  Send(early, RegisterEvent("family", "laptop", {}, "new-owner"));
  bus_.DeliverAll();
  EXPECT_THAT(early.sink->ErrorCodes(), ElementsAre("auth_failed"));

  clock_.Advance(absl::Hours(1));
  ExpireEverywhere();
  EXPECT_EQ(store_.bindings.count("family"), 0u);
  Peer owner = Open(2);
  Send(owner, RegisterEvent("family", "laptop", {}, "new-owner"));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*owner.sink), ElementsAre("joined", "peers"));
}

TEST_F(BindingGraceTest, ABindingIsKeptWhileTheClusterCannotSayWhetherItsMeshLives) {
  store_.set_shared(true);
  StartBound(2);
  Peer phone = Joined(0, "family", "phone", "t");
  cores_[0]->Disconnect(phone.id, CloseReason::kClientClosed);
  bus_.DeliverAll();
  bus_.Cut("i0");
  clock_.Advance(CoreConfig{}.mesh_binding_grace + absl::Seconds(1));
  cores_[0]->ExpireUnregistered();
  bus_.DeliverAll();
  EXPECT_EQ(store_.bindings.count("family"), 1u);
  // Asked again once the cluster answers.
  bus_.Cut("i0", false);
  clock_.Advance(limits::kClusterLivenessRetry + absl::Seconds(1));
  cores_[0]->ExpireUnregistered();
  bus_.DeliverAll();
  EXPECT_EQ(store_.bindings.count("family"), 0u);
}

// --- An open mesh's holder on another instance is probed there ------------------

class RemoteProbeTest : public ClaimTest {
 protected:
  // An open mesh "m" with `phone` held on i0 (token "t" proves nothing),
  // a watcher on i2, and a claimant of the same id with the same token on
  // i1, its registration sent and every envelope delivered.
  void SetUp() override {
    Start(3);
    watcher_ = Joined(2, "m", "watcher");
    old_phone_ = Joined(0, "m", "phone", "t");
    watcher_.sink->Clear();
    claimant_ = Open(1);
    Send(claimant_, RegisterEvent("m", "phone", {}, "t"));
    bus_.DeliverAll();
  }

  Peer watcher_;
  Peer old_phone_;
  Peer claimant_;
};

TEST_F(RemoteProbeTest, AHolderThatDoesNotAnswerIsReplacedAndTheMeshSeesOnlyTheNewConnection) {
  EXPECT_THAT(claimant_.sink->events, IsEmpty());  // waits for the probe over there
  ASSERT_EQ(old_phone_.sink->probes.size(), 1u);
  EXPECT_EQ(old_phone_.sink->probe_timeouts[0], CoreConfig{}.takeover_probe_timeout);
  const std::uint64_t old_revision = bus_.Node("m", "phone")->revision;
  ASSERT_TRUE(old_phone_.sink->AnswerProbe(false));
  bus_.DeliverAll();

  EXPECT_THAT(Seen(*claimant_.sink), ElementsAre("joined", "peers"));
  EXPECT_THAT(old_phone_.sink->closes, ElementsAre(CloseReason::kReplaced));
  EXPECT_THAT(Seen(*watcher_.sink), ElementsAre("peer_joined:phone"));
  EXPECT_EQ(bus_.Node("m", "phone")->holder, "i1");
  EXPECT_GT(bus_.Node("m", "phone")->revision, old_revision);
  EXPECT_EQ(HolderSeenBy(2, "m", "phone"), "i1");
  Send(watcher_, DirectEvent("phone", "\"found you\""));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*claimant_.sink), ElementsAre("joined", "peers", "message:\"found you\""));
}

TEST_F(RemoteProbeTest, AHolderThatAnswersKeepsItsNodeIdAndTheClaimantMayRetryLater) {
  ASSERT_TRUE(old_phone_.sink->AnswerProbe(true));
  bus_.DeliverAll();

  EXPECT_THAT(claimant_.sink->ErrorCodes(), ElementsAre("node_id_in_use"));
  EXPECT_THAT(claimant_.sink->closes, IsEmpty());
  EXPECT_THAT(old_phone_.sink->closes, IsEmpty());
  EXPECT_THAT(Seen(*watcher_.sink), IsEmpty());
  EXPECT_EQ(bus_.Node("m", "phone")->holder, "i0");
  Send(watcher_, DirectEvent("phone", "\"still yours\""));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*old_phone_.sink), ElementsAre("message:\"still yours\""));

  // Once the holder stops answering, the same connection gets the id.
  claimant_.sink->Clear();
  Send(claimant_, RegisterEvent("m", "phone", {}, "t"));
  bus_.DeliverAll();
  ASSERT_TRUE(old_phone_.sink->AnswerProbe(false));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*claimant_.sink), ElementsAre("joined", "peers"));
}

TEST_F(RemoteProbeTest, OtherCredentialsAreRefusedWithoutProbingTheHolder) {
  ASSERT_TRUE(old_phone_.sink->AnswerProbe(true));
  bus_.DeliverAll();
  Peer stranger = Open(1);
  Send(stranger, RegisterEvent("m", "phone", {}, "guess"));
  bus_.DeliverAll();
  EXPECT_THAT(stranger.sink->ErrorCodes(), ElementsAre("node_id_in_use"));
  EXPECT_THAT(old_phone_.sink->probes, IsEmpty());
  EXPECT_EQ(bus_.Node("m", "phone")->holder, "i0");
}

TEST_F(RemoteProbeTest, ASecondClaimantWhileTheHolderIsProbedIsToldToRetry) {
  Peer second = Open(2);
  Send(second, RegisterEvent("m", "phone", {}, "t"));
  bus_.DeliverAll();
  EXPECT_THAT(second.sink->ErrorCodes(), ElementsAre("node_id_in_use"));
  EXPECT_EQ(old_phone_.sink->probes.size(), 1u);  // one probe, for the first claimant

  ASSERT_TRUE(old_phone_.sink->AnswerProbe(false));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*claimant_.sink), ElementsAre("joined", "peers"));
  EXPECT_EQ(bus_.Node("m", "phone")->holder, "i1");
}

TEST_F(RemoteProbeTest, AHolderThatLeavesDuringTheProbeLeavesItsIdToTheClaimant) {
  cores_[0]->Disconnect(old_phone_.id, CloseReason::kClientClosed);
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*claimant_.sink), ElementsAre("joined", "peers"));
  EXPECT_EQ(bus_.Node("m", "phone")->holder, "i1");
  // It left for real, then the claimant joined.
  EXPECT_THAT(Seen(*watcher_.sink), ElementsAre("peer_left:phone", "peer_joined:phone"));
}

TEST_F(RemoteProbeTest, AHolderWhoseInstanceDiesDuringTheProbeIsTakenOver) {
  bus_.Kill("i0");
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*claimant_.sink), ElementsAre("joined", "peers"));
  EXPECT_EQ(bus_.Node("m", "phone")->holder, "i1");
  EXPECT_THAT(Seen(*watcher_.sink), ElementsAre("peer_left:phone", "peer_joined:phone"));
}

TEST_F(RemoteProbeTest,
       NoAnswerFromTheHoldersInstanceInTimeIsNodeIdInUseAndALateOneChangesNothing) {
  clock_.Advance(CoreConfig{}.takeover_probe_timeout + limits::kRemoteProbeSlack);
  cores_[1]->ExpireUnregistered();
  EXPECT_THAT(claimant_.sink->ErrorCodes(), ElementsAre("node_id_in_use"));

  // The holder's answer comes after all: the claim it was for is over.
  ASSERT_TRUE(old_phone_.sink->AnswerProbe(false));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*claimant_.sink), ElementsAre("node_id_in_use"));
  EXPECT_THAT(old_phone_.sink->closes, IsEmpty());
  EXPECT_EQ(bus_.Node("m", "phone")->holder, "i0");
}

TEST_F(RemoteProbeTest, WhatTheClaimantPipelinesWaitsForTheProbeAndIsHandledInOrderAfterJoined) {
  Send(claimant_, DirectEvent("watcher", "\"1\""));
  Send(claimant_, DirectEvent("watcher", "\"2\""));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*watcher_.sink), IsEmpty());
  ASSERT_TRUE(old_phone_.sink->AnswerProbe(false));
  bus_.DeliverAll();
  EXPECT_THAT(Seen(*watcher_.sink),
              ElementsAre("peer_joined:phone", "message:\"1\"", "message:\"2\""));
}

TEST_F(RemoteProbeTest, AForgedProbeResultForAnotherConnectionIsIgnored) {
  // Another instance answers for a probe it was never asked: only the
  // holder's instance's answer, for the revision probed, counts.
  BackplaneEnvelope forged;
  forged.set_mesh_id("m");
  forged.set_from_instance("i2");
  forged.mutable_probe_result()->set_node_id("phone");
  forged.mutable_probe_result()->set_probe_id(claimant_.id);
  forged.mutable_probe_result()->set_revision(bus_.Node("m", "phone")->revision);
  forged.mutable_probe_result()->set_answer(relay::v1::ProbeResult::SILENT);
  bus_.Inject("i2", "i1", forged);
  bus_.DeliverAll();
  EXPECT_THAT(claimant_.sink->events, IsEmpty());
  EXPECT_EQ(bus_.Node("m", "phone")->holder, "i0");
}

}  // namespace
}  // namespace relay::core
