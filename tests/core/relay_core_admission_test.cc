// RelayCore while MeshAuth waits for the auth store (asynchronous
// admission): a registration that creates or consumes a record waits for
// the store's answer without stalling anyone, keeps what it pipelines, and
// ends cleanly however the answer goes (or if it never comes). Driven
// through Connect/Handle/Disconnect with recording sinks, a fake clock, a
// store that answers when the test says (ScriptedAuthStore) and an executor
// the test runs (ManualExecutor). No threads, no sleeps.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/relay_core.h"
#include "tests/core/client_events.h"
#include "tests/core/ed25519_key.h"
#include "tests/core/fake_clock.h"
#include "tests/core/recording_sink.h"
#include "tests/store/manual_executor.h"
#include "tests/store/scripted_auth_store.h"

namespace relay::core {
namespace {

using ::relay::core::testing::BroadcastEvent;
using ::relay::core::testing::DirectEvent;
using ::relay::core::testing::Ed25519Key;
using ::relay::core::testing::FakeClock;
using ::relay::core::testing::PingEvent;
using ::relay::core::testing::RecordingSink;
using ::relay::core::testing::RegisterEvent;
using ::relay::core::testing::RegisterMeshEvent;
using ::relay::core::testing::SignedJoinEvent;
using ::relay::store::testing::ManualExecutor;
using ::relay::store::testing::ScriptedAuthStore;
using ::relay::v1::ServerEvent;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// What a sink saw, one word each: the event's kind, an error's code, a
// message's payload ("message:<payload>"), a peer_joined's node.
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
      case ServerEvent::kJoined:
        out.push_back("joined");
        break;
      case ServerEvent::kPeers:
        out.push_back("peers");
        break;
      case ServerEvent::kPong:
        out.push_back("pong");
        break;
      case ServerEvent::kMeshRegistered:
        out.push_back("mesh_registered");
        break;
      case ServerEvent::kPeerLeft:
        out.push_back(absl::StrCat("peer_left:", e->peer_left().node_id()));
        break;
      default:
        out.push_back(absl::StrCat("event ", static_cast<int>(e->event_case())));
    }
  }
  return out;
}

std::uint64_t ErrorCount(const relay::v1::Stats& stats, const std::string& code) {
  for (const auto& e : stats.errors()) {
    if (e.code() == code) return e.count();
  }
  ADD_FAILURE() << "no error counter " << code;
  return 0;
}

struct Peer {
  ConnectionId id = 0;
  std::shared_ptr<RecordingSink> sink;
};

// One relay on the shared store and executor.
class Relay {
 public:
  Relay(const FakeClock* clock, ScriptedAuthStore* store, ManualExecutor* executor)
      : core(CoreConfig{}, clock, store, executor) {}

  Peer Connect(const std::string& ip = "203.0.113.1") {
    Peer p;
    p.sink = std::make_shared<RecordingSink>();
    p.id = core.Connect(ConnectionInfo{ip + ":5000", "ws", ip}, p.sink);
    return p;
  }

  RelayCore core;
};

class RelayCoreAdmissionTest : public ::testing::Test {
 protected:
  RelayCoreAdmissionTest() { store_.hold(true); }

  // Answers waiting store operation `i`, then runs what it posted to the
  // core thread.
  void Answer(std::size_t i = 0) {
    ASSERT_LT(i, store_.waiting());
    store_.Answer(i);
    executor_.RunAll();
  }
  void Fail(std::size_t i = 0) {
    ASSERT_LT(i, store_.waiting());
    store_.Fail(i);
    executor_.RunAll();
  }
  // A registered member of an open mesh (its first registrant's lookup is
  // answered at once).
  Peer Joined(Relay& relay, const std::string& mesh, const std::string& node,
              const std::string& token = "") {
    Peer p = relay.Connect();
    relay.core.Handle(p.id, RegisterEvent(mesh, node, {}, token));
    while (store_.waiting() > 0) Answer(0);
    EXPECT_EQ(Seen(*p.sink).at(0), "joined") << node;
    p.sink->Clear();
    return p;
  }

  FakeClock clock_;
  ScriptedAuthStore store_;
  ManualExecutor executor_;
  Relay relay_{&clock_, &store_, &executor_};
};

TEST_F(RelayCoreAdmissionTest, ASlowStoreDoesNotStallOtherConnections) {
  Peer mac = Joined(relay_, "family", "mac");
  Peer phone = Joined(relay_, "family", "phone");
  mac.sink->Clear();
  // A registrant binding another mesh waits for the store...
  Peer claimant = relay_.Connect();
  relay_.core.Handle(claimant.id, RegisterEvent("bound", "x", {}, "secret"));
  ASSERT_EQ(store_.waiting(), 1u);
  EXPECT_EQ(store_.what(0), "bind bound");
  EXPECT_THAT(claimant.sink->events, IsEmpty());
  // ...and meanwhile the family's messages go through.
  relay_.core.Handle(mac.id, BroadcastEvent("\"hi\""));
  relay_.core.Handle(phone.id, DirectEvent("mac", "\"hello\""));
  relay_.core.Handle(phone.id, PingEvent());
  EXPECT_THAT(Seen(*phone.sink), ElementsAre("message:\"hi\"", "pong"));
  EXPECT_THAT(Seen(*mac.sink), ElementsAre("message:\"hello\""));
  // A second registrant of the family, whose admission memory decides,
  // does not wait behind the claim either.
  Peer tablet = relay_.Connect();
  relay_.core.Handle(tablet.id, RegisterEvent("family", "tablet"));
  EXPECT_THAT(Seen(*tablet.sink), ElementsAre("joined", "peers"));
  EXPECT_EQ(relay_.core.Health().peers, 3u);

  Answer();
  EXPECT_THAT(Seen(*claimant.sink), ElementsAre("joined", "peers"));
  EXPECT_EQ(relay_.core.Health().meshes, 2u);
}

// What the first registrant of a mesh pipelines while the store decides
// its binding is handled, in order, once it has joined.
TEST_F(RelayCoreAdmissionTest, EventsPipelinedAfterRegisterAreHandledInOrderAfterAdmission) {
  Peer p = relay_.Connect();
  relay_.core.Handle(p.id, RegisterEvent("m", "a", {}, "secret"));
  relay_.core.Handle(p.id, PingEvent());
  relay_.core.Handle(p.id, DirectEvent("nobody", "\"x\""));
  relay_.core.Handle(p.id, BroadcastEvent("\"alone\""));
  relay_.core.RejectUndecodable(p.id, ErrorCode::kBadJson, "not JSON");
  relay_.core.Handle(p.id, RegisterEvent("m", "a", {}, "secret"));
  EXPECT_THAT(p.sink->events, IsEmpty());
  Answer();
  EXPECT_THAT(Seen(*p.sink), ElementsAre("joined", "peers", "pong", "unknown_target", "bad_json",
                                         "already_registered"));
}

// A client that keeps writing behind a registration the store is deciding
// is asked to stop (its transport stops reading, TCP slows it) from the
// first held event until what was held has been handled; once, not per
// event.
TEST_F(RelayCoreAdmissionTest, ReadingPausesWhileEventsAreHeldAndResumesOnceHandled) {
  Peer p = relay_.Connect();
  relay_.core.Handle(p.id, RegisterEvent("m", "a", {}, "secret"));
  EXPECT_THAT(p.sink->reading, IsEmpty());  // nothing held yet
  relay_.core.Handle(p.id, PingEvent());
  relay_.core.Handle(p.id, PingEvent());
  EXPECT_THAT(p.sink->reading, ElementsAre(false));
  Answer();
  EXPECT_THAT(Seen(*p.sink), ElementsAre("joined", "peers", "pong", "pong"));
  EXPECT_THAT(p.sink->reading, ElementsAre(false, true));
  relay_.core.Handle(p.id, PingEvent());
  EXPECT_THAT(p.sink->reading, ElementsAre(false, true));
}

// Refused after the wait (it lost the race for the binding): what it held
// is dropped with the connection, and reading resumes so the transport can
// read the client's close frame.
TEST_F(RelayCoreAdmissionTest, ARefusedRegistrationResumesReadingForTheClose) {
  Peer winner = relay_.Connect();
  Peer loser = relay_.Connect();
  relay_.core.Handle(winner.id, RegisterEvent("m", "a", {}, "token-a"));
  relay_.core.Handle(loser.id, RegisterEvent("m", "b", {}, "token-b"));
  for (int i = 0; i < 3; ++i) relay_.core.Handle(loser.id, BroadcastEvent("\"x\""));
  ASSERT_EQ(store_.waiting(), 2u);
  EXPECT_THAT(loser.sink->reading, ElementsAre(false));
  EXPECT_THAT(winner.sink->reading, IsEmpty());
  Answer(0);
  Answer(0);
  EXPECT_THAT(Seen(*loser.sink), ElementsAre("auth_failed"));
  EXPECT_THAT(loser.sink->closes, ElementsAre(CloseReason::kAuthFailed));
  EXPECT_THAT(loser.sink->reading, ElementsAre(false, true));
  EXPECT_THAT(Seen(*winner.sink), ElementsAre("joined", "peers"));
}

// A member joining a live signed mesh with a new nonce waits for the store
// while the mesh goes on; what it pipelined reaches the others after its
// peer_joined, in order.
TEST_F(RelayCoreAdmissionTest, AJoinWaitingForItsNonceKeepsItsMessagesInOrder) {
  Ed25519Key key;
  Peer founder = relay_.Connect();
  relay_.core.Handle(founder.id, RegisterMeshEvent(key, "home", "mac"));
  ASSERT_EQ(store_.what(0), "sign home");
  Answer();
  ASSERT_THAT(Seen(*founder.sink), ElementsAre("mesh_registered", "joined", "peers"));
  founder.sink->Clear();

  Peer phone = relay_.Connect();
  relay_.core.Handle(phone.id, SignedJoinEvent(key, "home", "phone", "n1", clock_.Now()));
  ASSERT_EQ(store_.waiting(), 1u);
  EXPECT_EQ(store_.what(0), "nonce home/n1");
  relay_.core.Handle(phone.id, BroadcastEvent("1"));
  relay_.core.Handle(phone.id, DirectEvent("mac", "2"));
  relay_.core.Handle(phone.id, BroadcastEvent("3"));
  relay_.core.Handle(founder.id, BroadcastEvent("\"founder talks\""));
  EXPECT_THAT(Seen(*founder.sink), IsEmpty()) << "nothing from the phone yet";
  EXPECT_THAT(phone.sink->events, IsEmpty());

  Answer();
  EXPECT_THAT(Seen(*founder.sink),
              ElementsAre("peer_joined:phone", "message:1", "message:2", "message:3"));
  EXPECT_THAT(Seen(*phone.sink), ElementsAre("joined", "peers"));
}

TEST_F(RelayCoreAdmissionTest, AFailingStoreRefusesCleanlyWithAuthUnavailable) {
  Peer mac = Joined(relay_, "family", "mac");
  Peer claimant = relay_.Connect();
  relay_.core.Handle(claimant.id, RegisterEvent("bound", "x", {}, "secret"));
  relay_.core.Handle(claimant.id, BroadcastEvent("\"early\""));
  Fail();
  // Refused, not closed; what it pipelined is then handled as for any
  // unregistered connection.
  EXPECT_THAT(Seen(*claimant.sink), ElementsAre("auth_unavailable", "not_registered"));
  EXPECT_THAT(claimant.sink->closes, IsEmpty());
  EXPECT_EQ(ErrorCount(relay_.core.GetStats(), "auth_unavailable"), 1u);
  EXPECT_EQ(relay_.core.auth_records(), 0u);
  // Everyone else is served.
  Peer phone = Joined(relay_, "family", "phone");
  relay_.core.Handle(mac.id, BroadcastEvent("\"still here\""));
  EXPECT_THAT(Seen(*phone.sink), ElementsAre("message:\"still here\""));

  // A store that fails at once refuses the same way.
  store_.fail_all(absl::UnavailableError("disk gone"));
  claimant.sink->Clear();
  relay_.core.Handle(claimant.id, RegisterEvent("bound", "x", {}, "secret"));
  EXPECT_THAT(Seen(*claimant.sink), ElementsAre("auth_unavailable"));

  // The same connection retries once the store is back, and gets in.
  store_.fail_all(absl::OkStatus());
  claimant.sink->Clear();
  relay_.core.Handle(claimant.id, RegisterEvent("bound", "x", {}, "secret"));
  Answer();
  EXPECT_THAT(Seen(*claimant.sink), ElementsAre("joined", "peers"));
  EXPECT_EQ(relay_.core.auth_records(), 1u);
}

// Two connections claim one empty mesh with two tokens while the store has
// not answered either: one binds it and joins, the other is refused
// (auth_failed, closed), whichever answer comes first.
TEST_F(RelayCoreAdmissionTest, ConcurrentClaimsOfOneBindingHaveOneWinnerInEitherOrder) {
  for (std::size_t first : {0u, 1u}) {
    SCOPED_TRACE(first);
    ScriptedAuthStore store;
    store.hold(true);
    ManualExecutor executor;
    Relay relay(&clock_, &store, &executor);
    Peer claimants[2] = {relay.Connect(), relay.Connect()};
    relay.core.Handle(claimants[0].id, RegisterEvent("m", "a", {}, "token-a"));
    relay.core.Handle(claimants[1].id, RegisterEvent("m", "b", {}, "token-b"));
    ASSERT_EQ(store.waiting(), 2u);
    store.Answer(first);
    executor.RunAll();
    store.Answer(0);
    executor.RunAll();
    const Peer& winner = claimants[first];
    const Peer& loser = claimants[1 - first];
    EXPECT_THAT(Seen(*winner.sink), ElementsAre("joined", "peers"));
    EXPECT_THAT(Seen(*loser.sink), ElementsAre("auth_failed"));
    EXPECT_THAT(loser.sink->closes, ElementsAre(CloseReason::kAuthFailed));
    EXPECT_EQ(relay.core.Health().peers, 1u);
    EXPECT_EQ(store.bindings.size(), 1u);
  }
}

// The same race between two relays sharing one store (a mesh's first two
// devices reached two instances).
TEST_F(RelayCoreAdmissionTest, TwoRelaysClaimingOneBindingHaveOneWinnerInEitherOrder) {
  for (std::size_t first : {0u, 1u}) {
    SCOPED_TRACE(first);
    ScriptedAuthStore store;
    store.hold(true);
    ManualExecutor executor;
    Relay one(&clock_, &store, &executor);
    Relay two(&clock_, &store, &executor);
    Peer a = one.Connect();
    Peer b = two.Connect();
    one.core.Handle(a.id, RegisterEvent("m", "a", {}, "token-a"));
    two.core.Handle(b.id, RegisterEvent("m", "b", {}, "token-b"));
    ASSERT_EQ(store.waiting(), 2u);
    store.Answer(first);
    executor.RunAll();
    store.Answer(0);
    executor.RunAll();
    const bool a_won = first == 0;
    const std::vector<std::string> joined = {"joined", "peers"};
    const std::vector<std::string> refused = {"auth_failed"};
    EXPECT_EQ(Seen(*a.sink), a_won ? joined : refused);
    EXPECT_EQ(Seen(*b.sink), a_won ? refused : joined);
    EXPECT_EQ(one.core.Health().peers + two.core.Health().peers, 1u);
    // A later device with the winner's token gets into the loser's relay.
    Relay& losers = a_won ? two : one;
    Peer later = losers.Connect();
    losers.core.Handle(later.id, RegisterEvent("m", "c", {}, a_won ? "token-a" : "token-b"));
    EXPECT_THAT(Seen(*later.sink), ElementsAre("joined", "peers"));
  }
}

// A connection that leaves while its admission is with the store is
// forgotten: nothing reaches its sink, nothing joins, nothing breaks. The
// binding its claim made holds for a grace, as if it had joined and left.
TEST_F(RelayCoreAdmissionTest, AConnectionThatLeavesWhileItsAdmissionIsPendingIsForgotten) {
  Peer gone = relay_.Connect();
  relay_.core.Handle(gone.id, RegisterEvent("m", "a", {}, "secret"));
  relay_.core.Handle(gone.id, BroadcastEvent("\"never\""));
  relay_.core.Disconnect(gone.id, CloseReason::kClientClosed);
  EXPECT_EQ(relay_.core.OpenConnections(), 0u);
  Answer();
  EXPECT_THAT(gone.sink->events, IsEmpty());
  EXPECT_THAT(gone.sink->closes, IsEmpty());
  EXPECT_EQ(relay_.core.Health().meshes, 0u);
  EXPECT_EQ(relay_.core.Health().peers, 0u);

  Peer squatter = relay_.Connect();
  relay_.core.Handle(squatter.id, RegisterEvent("m", "x", {}, "guess"));
  EXPECT_THAT(Seen(*squatter.sink), ElementsAre("auth_failed"));
  Peer owner = relay_.Connect();
  relay_.core.Handle(owner.id, RegisterEvent("m", "a", {}, "secret"));
  EXPECT_THAT(Seen(*owner.sink), ElementsAre("joined", "peers"));
  relay_.core.Disconnect(owner.id, CloseReason::kClientClosed);

  // A grace after the last leave, the mesh is free again.
  clock_.Advance(CoreConfig{}.mesh_binding_grace + absl::Seconds(1));
  relay_.core.ExpireUnregistered();
  Peer newcomer = relay_.Connect();
  relay_.core.Handle(newcomer.id, RegisterEvent("m", "y", {}, "guess"));
  Answer();
  EXPECT_THAT(Seen(*newcomer.sink), ElementsAre("joined", "peers"));
}

// A registrant that leaves before joining: its binding goes a grace after
// the claim, though no MeshEmptied ever came for it.
TEST_F(RelayCoreAdmissionTest, ABindingWhoseRegistrantNeverJoinedGoesAfterAGrace) {
  Peer gone = relay_.Connect();
  relay_.core.Handle(gone.id, RegisterEvent("m", "a", {}, "secret"));
  relay_.core.Disconnect(gone.id, CloseReason::kTransportError);
  Answer();
  EXPECT_EQ(relay_.core.auth_records(), 1u);
  clock_.Advance(CoreConfig{}.mesh_binding_grace + absl::Seconds(1));
  relay_.core.ExpireUnregistered();
  EXPECT_EQ(relay_.core.auth_records(), 0u);
  EXPECT_EQ(store_.bindings.count("m"), 0u);
}

TEST_F(RelayCoreAdmissionTest, AStoreThatNeverAnswersEndsInTheRegistrationTimeout) {
  Peer p = relay_.Connect();
  relay_.core.Handle(p.id, RegisterEvent("m", "a", {}, "secret"));
  clock_.Advance(CoreConfig{}.registration_timeout + absl::Seconds(1));
  relay_.core.ExpireUnregistered();
  EXPECT_THAT(p.sink->closes, ElementsAre(CloseReason::kRegistrationTimeout));
  relay_.core.Disconnect(p.id, CloseReason::kRegistrationTimeout);
  Answer();  // late: nobody is there to join
  EXPECT_THAT(p.sink->events, IsEmpty());
  EXPECT_EQ(relay_.core.Health().peers, 0u);
}

// An open registrant admitted while a token's claim on the same empty mesh
// was out: the mesh is open (it went live first), the token's holder joins
// it as an open member, and no binding is left.
TEST_F(RelayCoreAdmissionTest, AClaimAnsweredAfterTheMeshWentLiveOpenJoinsItOpen) {
  Peer token = relay_.Connect();
  Peer open = relay_.Connect();
  relay_.core.Handle(token.id, RegisterEvent("m", "a", {}, "secret"));
  relay_.core.Handle(open.id, RegisterEvent("m", "b"));
  ASSERT_EQ(store_.waiting(), 2u);
  Answer(1);  // the open one's lookup
  EXPECT_THAT(Seen(*open.sink), ElementsAre("joined", "peers"));
  Answer(0);
  EXPECT_THAT(Seen(*token.sink), ElementsAre("joined", "peers"));
  EXPECT_EQ(relay_.core.auth_records(), 0u);
  EXPECT_TRUE(store_.bindings.empty());
  Peer third = relay_.Connect();
  relay_.core.Handle(third.id, RegisterEvent("m", "c"));
  EXPECT_THAT(Seen(*third.sink), ElementsAre("joined", "peers"));
}

// core_events_fuzz: a mesh's created_at was stamped when its first
// registration arrived, so a binding that took the store a while to decide
// showed an older mesh than the one its members joined; and a mesh that
// emptied while another registration was pending kept its first life's time.
// Users see a mesh from its first member on, so that is its creation.
TEST_F(RelayCoreAdmissionTest, AMeshIsCreatedWhenItsFirstMemberJoins) {
  const auto created_at = [this](const std::string& mesh) {
    absl::StatusOr<relay::v1::GetMeshResponse> view = relay_.core.GetMesh(mesh);
    EXPECT_TRUE(view.ok()) << view.status();
    return view.ok() ? view->mesh().created_at() : -1.0;
  };
  const auto seconds = [](absl::Time t) { return absl::ToDoubleSeconds(t - absl::UnixEpoch()); };
  Peer first = relay_.Connect();
  relay_.core.Handle(first.id, RegisterEvent("m", "a", {}, "secret"));
  clock_.Advance(absl::Milliseconds(250));
  Answer();
  ASSERT_THAT(Seen(*first.sink), ElementsAre("joined", "peers"));
  EXPECT_EQ(created_at("m"), seconds(clock_.Now()));
  ASSERT_EQ(relay_.core.ListMeshes().meshes_size(), 1);
  EXPECT_EQ(relay_.core.ListMeshes().meshes(0).created_at(), seconds(clock_.Now()));

  // The next registrant waits for its nonce while the only member leaves:
  // the mesh object stays for it, but the mesh it joins is a new one.
  Ed25519Key key;
  Peer founder = relay_.Connect();
  relay_.core.Handle(founder.id, RegisterMeshEvent(key, "signed", "founder"));
  Answer();
  Peer joiner = relay_.Connect();
  relay_.core.Handle(joiner.id, SignedJoinEvent(key, "signed", "phone", "n1", clock_.Now()));
  ASSERT_EQ(store_.waiting(), 1u);
  relay_.core.Disconnect(founder.id, CloseReason::kClientClosed);
  clock_.Advance(absl::Seconds(3));
  Answer();
  ASSERT_THAT(Seen(*joiner.sink), ElementsAre("joined", "peers"));
  EXPECT_EQ(created_at("signed"), seconds(clock_.Now()));
}

}  // namespace
}  // namespace relay::core
