// Tests for RelayCore's resume sessions (relay_core_resume.cc) over sinks
// that number frames, with a fake clock: suspension, replay, resends, acks,
// the window, the bounds, and who may continue a session.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "relay/v1/relay.pb.h"
#include "server/core/relay_core.h"
#include "tests/core/client_events.h"
#include "tests/core/fake_clock.h"

namespace relay::core {
namespace {

using relay::v1::ClientEvent;
using relay::v1::ServerEvent;
using ::testing::ElementsAre;
using testing::FakeClock;
using testing::RegisterEvent;

// A transport that numbers frames, as the WebSocket gateway does.
class SequencingSink final : public PeerSink {
 public:
  struct Sent {
    ServerEventPtr event;
    std::uint64_t seq;  // 0: outside the stream
  };
  SendResult Send(const ServerEventPtr& event) override { return Record(event, 0); }
  bool supports_resume() const override { return resume; }
  SendResult SendSequenced(const ServerEventPtr& event, std::uint64_t seq) override {
    return Record(event, seq);
  }
  void Close(CloseReason reason) override {
    closes.push_back(reason);
    open = false;
  }

  std::vector<std::uint64_t> Seqs() const {
    std::vector<std::uint64_t> out;
    for (const Sent& s : sent) out.push_back(s.seq);
    return out;
  }
  // Payloads of the message frames, in order.
  std::vector<std::string> Payloads() const {
    std::vector<std::string> out;
    for (const Sent& s : sent) {
      if (s.event->has_message()) out.push_back(s.event->message().payload());
    }
    return out;
  }
  std::vector<const ServerEvent*> OfCase(ServerEvent::EventCase c) const {
    std::vector<const ServerEvent*> out;
    for (const Sent& s : sent) {
      if (s.event->event_case() == c) out.push_back(s.event.get());
    }
    return out;
  }
  std::vector<std::string> ErrorCodes() const {
    std::vector<std::string> out;
    for (const Sent& s : sent) {
      if (s.event->has_error()) out.push_back(s.event->error().code());
    }
    return out;
  }

  std::vector<Sent> sent;
  std::vector<CloseReason> closes;
  bool resume = true;
  bool open = true;

 private:
  SendResult Record(const ServerEventPtr& event, std::uint64_t seq) {
    if (!open) return SendResult::Dropped(DropReason::kClosing);
    sent.push_back({event, seq});
    return SendResult::Queued();
  }
};

struct Peer {
  ConnectionId id = 0;
  std::shared_ptr<SequencingSink> sink;
  std::uint64_t next_seq = 1;  // the client's own counter
};

ClientEvent WithSeq(ClientEvent event, std::uint64_t seq) {
  event.set_seq(seq);
  return event;
}

ClientEvent Broadcast(const std::string& payload) {
  ClientEvent event;
  event.mutable_broadcast()->set_payload(payload);
  return event;
}

ClientEvent Direct(const std::string& target, const std::string& payload) {
  ClientEvent event;
  event.mutable_direct()->set_target(target);
  event.mutable_direct()->set_payload(payload);
  return event;
}

ClientEvent Ack(std::uint64_t seq) {
  ClientEvent event;
  event.mutable_ack()->set_seq(seq);
  return event;
}

class RelayCoreResumeTest : public ::testing::Test {
 protected:
  void SetUp() override { Reset(Config()); }

  static CoreConfig Config() {
    CoreConfig config;
    config.resume_window = absl::Seconds(60);
    return config;
  }

  void Reset(CoreConfig config) { core_ = std::make_unique<RelayCore>(config, &clock_); }

  Peer Open(bool can_resume = true) {
    Peer peer;
    peer.sink = std::make_shared<SequencingSink>();
    peer.sink->resume = can_resume;
    peer.id = core_->Connect(ConnectionInfo{"10.0.0.1:4000", "ws"}, peer.sink);
    return peer;
  }

  // Registers with "resume": true; returns the session id ("" for none).
  std::string Join(Peer& peer, const std::string& node, const std::string& token = "",
                   const std::string& mesh = "m") {
    ClientEvent event = RegisterEvent(mesh, node, {}, token);
    event.mutable_register_()->mutable_resume()->set_requested(true);
    core_->Handle(peer.id, event);
    const auto joined = peer.sink->OfCase(ServerEvent::kJoined);
    if (joined.empty() || !joined.back()->joined().has_session()) return "";
    return joined.back()->joined().session().id();
  }

  Peer JoinPlain(const std::string& node, const std::string& mesh = "m") {
    Peer peer = Open();
    core_->Handle(peer.id, RegisterEvent(mesh, node));
    return peer;
  }

  // Reconnects `node` asking for `session` after `last_seq`.
  Peer Resume(const std::string& node, const std::string& session, std::uint64_t last_seq,
              const std::string& token = "", const std::string& mesh = "m") {
    Peer peer = Open();
    ClientEvent event = RegisterEvent(mesh, node, {}, token);
    auto* resume = event.mutable_register_()->mutable_resume();
    resume->set_requested(true);
    resume->set_session_id(session);
    resume->set_last_seq(last_seq);
    core_->Handle(peer.id, event);
    return peer;
  }

  void Send(Peer& peer, ClientEvent event) {
    core_->Handle(peer.id, WithSeq(std::move(event), peer.next_seq++));
  }

  relay::v1::ResumeStats Stats() const { return core_->GetStats().resume(); }
  std::uint64_t Ended(const std::string& reason) const {
    const relay::v1::ResumeStats stats = Stats();
    for (const auto& e : stats.ended()) {
      if (e.reason() == reason) return e.count();
    }
    ADD_FAILURE() << "no session end " << reason;
    return 0;
  }

  FakeClock clock_;
  std::unique_ptr<RelayCore> core_;
};

TEST_F(RelayCoreResumeTest, JoinedOpensTheStreamAndFramesAreNumberedFromOne) {
  Peer other = JoinPlain("tablet");
  Peer phone = Open();
  const std::string session = Join(phone, "phone");
  ASSERT_EQ(session.size(), 32u);
  const auto* joined = phone.sink->OfCase(ServerEvent::kJoined)[0];
  EXPECT_EQ(joined->joined().session().window_seconds(), 60u);
  core_->Handle(other.id, Broadcast("1"));  // a plain client: no seq
  core_->Handle(other.id, Broadcast("2"));
  // joined outside the stream; then peers 1, and the two messages 2, 3.
  EXPECT_THAT(phone.sink->Seqs(), ElementsAre(0, 1, 2, 3));
  // The plain client sees no numbers at all.
  for (const auto& s : other.sink->sent) EXPECT_EQ(s.seq, 0u);
}

TEST_F(RelayCoreResumeTest, NoSessionWhenTheTransportCannotNumberOrResumeIsOff) {
  Peer grpc = Open(/*can_resume=*/false);
  EXPECT_EQ(Join(grpc, "grpc-peer"), "");
  CoreConfig off = Config();
  off.resume_window = absl::ZeroDuration();
  Reset(off);
  Peer phone = Open();
  EXPECT_EQ(Join(phone, "phone"), "");
  EXPECT_THAT(phone.sink->Seqs(), ElementsAre(0, 0));
}

TEST_F(RelayCoreResumeTest, ASuspendedPeerStaysAndGetsWhatItMissedOnceInOrder) {
  Peer tablet = JoinPlain("tablet");
  Peer phone = Open();
  const std::string session = Join(phone, "phone");
  tablet.sink->sent.clear();
  core_->Handle(tablet.id, Direct("phone", "a"));  // seq 2 (peers was 1)
  core_->Disconnect(phone.id, CloseReason::kTransportError);
  EXPECT_EQ(Stats().suspended(), 1u);
  core_->Handle(tablet.id, Direct("phone", "b"));  // kept: 3
  core_->Handle(tablet.id, Broadcast("c"));        // kept: 4
  EXPECT_TRUE(tablet.sink->ErrorCodes().empty());
  EXPECT_TRUE(tablet.sink->OfCase(ServerEvent::kPeerLeft).empty());

  // The client had handled up to seq 2 ("a").
  Peer back = Resume("phone", session, 2);
  const auto resumed = back.sink->OfCase(ServerEvent::kResumed);
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0]->resumed().replayed(), 2u);
  EXPECT_EQ(resumed[0]->resumed().session().id(), session);
  EXPECT_THAT(back.sink->Seqs(), ElementsAre(0, 3, 4));
  EXPECT_THAT(back.sink->Payloads(), ElementsAre("b", "c"));
  core_->Handle(tablet.id, Direct("phone", "d"));
  EXPECT_THAT(back.sink->Seqs(), ElementsAre(0, 3, 4, 5));
  EXPECT_TRUE(tablet.sink->OfCase(ServerEvent::kPeerLeft).empty());
  EXPECT_TRUE(tablet.sink->OfCase(ServerEvent::kPeerJoined).empty());
  EXPECT_EQ(Stats().resumed(), 1u);
  EXPECT_EQ(Stats().replayed_frames(), 2u);
  EXPECT_EQ(Stats().suspended(), 0u);
  EXPECT_EQ(core_->OpenConnections(), 2u);
}

TEST_F(RelayCoreResumeTest, AHalfOpenConnectionIsClosedResumedWhenItsClientIsBack) {
  Peer phone = Open();
  const std::string session = Join(phone, "phone");
  Peer back = Resume("phone", session, 1);
  EXPECT_THAT(phone.sink->closes, ElementsAre(CloseReason::kResumed));
  EXPECT_EQ(back.sink->OfCase(ServerEvent::kResumed).size(), 1u);
  // Its end, when the transport reports it, is nobody's business.
  Peer tablet = JoinPlain("tablet");
  core_->Disconnect(phone.id, CloseReason::kClientClosed);
  EXPECT_TRUE(tablet.sink->OfCase(ServerEvent::kPeerLeft).empty());
  core_->Handle(tablet.id, Direct("phone", "x"));
  EXPECT_THAT(back.sink->Payloads(), ElementsAre("x"));
}

TEST_F(RelayCoreResumeTest, ResendsAreDroppedAndAcknowledged) {
  Peer tablet = JoinPlain("tablet");
  Peer phone = Open();
  Join(phone, "phone");
  core_->Handle(phone.id, WithSeq(Direct("tablet", "1"), 1));
  core_->Handle(phone.id, WithSeq(Direct("tablet", "2"), 2));
  core_->Handle(phone.id, WithSeq(Direct("tablet", "1"), 1));  // resent
  core_->Handle(phone.id, WithSeq(Direct("tablet", "2"), 2));
  EXPECT_THAT(tablet.sink->Payloads(), ElementsAre("1", "2"));
  EXPECT_EQ(Stats().duplicates(), 2u);
  // The ack comes with the next tick, once.
  EXPECT_TRUE(phone.sink->OfCase(ServerEvent::kAck).empty());
  core_->ServiceResumeSessions();
  core_->ServiceResumeSessions();
  const auto acks = phone.sink->OfCase(ServerEvent::kAck);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0]->ack().seq(), 2u);
}

TEST_F(RelayCoreResumeTest, AcksComeAtOnceAfter64Frames) {
  Peer tablet = JoinPlain("tablet");
  Peer phone = Open();
  Join(phone, "phone");
  for (int i = 0; i < 64; ++i) Send(phone, Direct("tablet", "x"));
  auto acks = phone.sink->OfCase(ServerEvent::kAck);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0]->ack().seq(), 64u);
  Send(phone, Direct("tablet", "x"));
  EXPECT_EQ(phone.sink->OfCase(ServerEvent::kAck).size(), 1u);
}

TEST_F(RelayCoreResumeTest, AFrameWithoutSeqIsRefusedAndNotHandled) {
  Peer tablet = JoinPlain("tablet");
  Peer phone = Open();
  Join(phone, "phone");
  core_->Handle(phone.id, Direct("tablet", "unnumbered"));
  ClientEvent bad = Direct("tablet", "bad");
  bad.set_seq_invalid(true);
  core_->Handle(phone.id, bad);
  EXPECT_THAT(phone.sink->ErrorCodes(), ElementsAre("seq_required", "seq_required"));
  EXPECT_TRUE(tablet.sink->Payloads().empty());
}

TEST_F(RelayCoreResumeTest, ClientAcksForgetFramesAndAnAckPastTheStreamIsRefused) {
  Peer tablet = JoinPlain("tablet");
  Peer phone = Open();
  const std::string session = Join(phone, "phone");
  for (int i = 0; i < 3; ++i) core_->Handle(tablet.id, Broadcast("b"));  // 2..4
  EXPECT_EQ(Stats().buffered_frames(), 4u);
  core_->Handle(phone.id, Ack(3));
  EXPECT_EQ(Stats().buffered_frames(), 1u);
  core_->Handle(phone.id, Ack(99));
  EXPECT_THAT(phone.sink->ErrorCodes(), ElementsAre("bad_message"));
  // Frames it acknowledged cannot be asked for again: a fresh session.
  core_->Disconnect(phone.id, CloseReason::kTransportError);
  Peer back = Resume("phone", session, 1);
  const auto joined = back.sink->OfCase(ServerEvent::kJoined);
  ASSERT_EQ(joined.size(), 1u);
  EXPECT_TRUE(joined[0]->joined().resume_refused());
  EXPECT_NE(joined[0]->joined().session().id(), session);
}

TEST_F(RelayCoreResumeTest, AnAckWithoutASessionIsUnknown) {
  Peer tablet = JoinPlain("tablet");
  core_->Handle(tablet.id, Ack(1));
  EXPECT_THAT(tablet.sink->ErrorCodes(), ElementsAre("unknown_type"));
}

TEST_F(RelayCoreResumeTest, PastTheWindowTheSessionEndsAndTheOthersSeePeerLeft) {
  Peer tablet = JoinPlain("tablet");
  Peer phone = Open();
  const std::string session = Join(phone, "phone");
  core_->Disconnect(phone.id, CloseReason::kKeepaliveTimeout);
  clock_.Advance(absl::Seconds(59));
  core_->ServiceResumeSessions();
  EXPECT_TRUE(tablet.sink->OfCase(ServerEvent::kPeerLeft).empty());
  clock_.Advance(absl::Seconds(1) + absl::Milliseconds(1));
  core_->ServiceResumeSessions();
  ASSERT_EQ(tablet.sink->OfCase(ServerEvent::kPeerLeft).size(), 1u);
  EXPECT_EQ(Ended("expired"), 1u);
  EXPECT_EQ(Stats().sessions(), 0u);
  EXPECT_EQ(core_->Health().peers, 1u);
  Peer back = Resume("phone", session, 1);
  EXPECT_TRUE(back.sink->OfCase(ServerEvent::kJoined)[0]->joined().resume_refused());
  EXPECT_EQ(Stats().resume_refused(), 1u);
}

TEST_F(RelayCoreResumeTest, AGoodbyeOrARelayCloseEndsTheSessionAtOnce) {
  Peer tablet = JoinPlain("tablet");
  Peer phone = Open();
  Join(phone, "phone");
  core_->Disconnect(phone.id, CloseReason::kClientClosed, /*client_said_goodbye=*/true);
  EXPECT_EQ(tablet.sink->OfCase(ServerEvent::kPeerLeft).size(), 1u);
  Peer laptop = Open();
  Join(laptop, "laptop");
  ASSERT_TRUE(core_->Kick("m", "laptop", "").ok());
  core_->Disconnect(laptop.id, CloseReason::kKicked);
  EXPECT_EQ(tablet.sink->OfCase(ServerEvent::kPeerLeft).size(), 2u);
  EXPECT_EQ(Ended("closed"), 2u);
  EXPECT_EQ(Stats().sessions(), 0u);
}

TEST_F(RelayCoreResumeTest, KickingASuspendedPeerEndsItsSession) {
  Peer tablet = JoinPlain("tablet");
  Peer phone = Open();
  Join(phone, "phone");
  core_->Disconnect(phone.id, CloseReason::kTransportError);
  ASSERT_TRUE(core_->Kick("m", "phone", "bye").ok());
  core_->ServiceResumeSessions();
  EXPECT_EQ(tablet.sink->OfCase(ServerEvent::kPeerLeft).size(), 1u);
  EXPECT_EQ(Stats().sessions(), 0u);
  EXPECT_EQ(Stats().suspended(), 0u);
}

TEST_F(RelayCoreResumeTest, ASuspendedSessionPastItsBufferEnds) {
  CoreConfig config = Config();
  config.resume_buffer_frames = 5;
  Reset(config);
  Peer tablet = JoinPlain("tablet");
  Peer phone = Open();
  const std::string session = Join(phone, "phone");  // peers: 1 frame kept
  core_->Disconnect(phone.id, CloseReason::kTransportError);
  for (int i = 0; i < 10; ++i) core_->Handle(tablet.id, Direct("phone", "x"));
  EXPECT_EQ(Stats().sessions(), 0u);  // freed at once
  EXPECT_EQ(Stats().buffered_bytes(), 0u);
  core_->ServiceResumeSessions();
  EXPECT_EQ(tablet.sink->OfCase(ServerEvent::kPeerLeft).size(), 1u);
  EXPECT_EQ(Ended("overflow"), 1u);
  EXPECT_GE(core_->drops().Get(DropReason::kResumeOverflow), 1u);
  Peer back = Resume("phone", session, 0);
  EXPECT_TRUE(back.sink->OfCase(ServerEvent::kJoined)[0]->joined().resume_refused());
}

TEST_F(RelayCoreResumeTest, TheMemoryBudgetBoundsEverySessionTogether) {
  CoreConfig config = Config();
  config.max_resume_memory_bytes = 4096;
  Reset(config);
  Peer tablet = JoinPlain("tablet");
  Peer a = Open();
  Join(a, "a");
  Peer b = Open();
  Join(b, "b");
  core_->Disconnect(a.id, CloseReason::kTransportError);
  core_->Disconnect(b.id, CloseReason::kTransportError);
  for (int i = 0; i < 100; ++i) core_->Handle(tablet.id, Broadcast(std::string(100, 'x')));
  EXPECT_LE(Stats().buffered_bytes(), 4096u);
  EXPECT_GE(core_->limit_hits().Get(Limit::kResumeMemory), 1u);
  EXPECT_GE(Ended("overflow"), 1u);
}

TEST_F(RelayCoreResumeTest, ASessionIsOnlyItsOwnNodesInItsMeshWithItsCredentials) {
  Peer tablet = JoinPlain("tablet");
  Peer phone = Open();
  const std::string session = Join(phone, "phone", "token-1");
  core_->Disconnect(phone.id, CloseReason::kTransportError);
  core_->Handle(tablet.id, Direct("phone", "secret"));

  Peer eve = Resume("eve", session, 0);
  EXPECT_TRUE(eve.sink->OfCase(ServerEvent::kJoined)[0]->joined().resume_refused());
  EXPECT_TRUE(eve.sink->Payloads().empty());
  Peer elsewhere = Resume("phone", session, 0, "", "other-mesh");
  EXPECT_TRUE(elsewhere.sink->OfCase(ServerEvent::kJoined)[0]->joined().resume_refused());
  EXPECT_TRUE(elsewhere.sink->Payloads().empty());
  Peer guess = Resume("phone", std::string(32, '0'), 0, "token-1");
  // A guess with the right credentials is a fresh registration of the
  // node: it takes the id over from the suspended session.
  EXPECT_TRUE(guess.sink->OfCase(ServerEvent::kJoined)[0]->joined().resume_refused());
  EXPECT_TRUE(guess.sink->Payloads().empty());
  core_->ServiceResumeSessions();
  EXPECT_EQ(Ended("replaced"), 1u);
  EXPECT_TRUE(tablet.sink->OfCase(ServerEvent::kPeerLeft).empty());
  Peer late = Resume("phone", session, 0, "token-1");
  EXPECT_TRUE(late.sink->OfCase(ServerEvent::kResumed).empty());
}

TEST_F(RelayCoreResumeTest, LlmRequestsGoToASuspendedResponderOnlyWhenNoOneElseCan) {
  Peer asker = JoinPlain("asker");
  Peer mac = Open();
  ClientEvent reg = RegisterEvent("m", "mac", {"llm"});
  reg.mutable_register_()->mutable_resume()->set_requested(true);
  core_->Handle(mac.id, reg);
  const std::string session = mac.sink->OfCase(ServerEvent::kJoined)[0]->joined().session().id();
  core_->Disconnect(mac.id, CloseReason::kTransportError);
  ClientEvent req;
  req.mutable_llm_request()->set_request_id("\"r1\"");
  core_->Handle(asker.id, req);
  EXPECT_TRUE(asker.sink->ErrorCodes().empty());  // kept for the mac
  Peer pi = Open();
  core_->Handle(pi.id, RegisterEvent("m", "pi", {"llm"}));
  req.mutable_llm_request()->set_request_id("\"r2\"");
  core_->Handle(asker.id, req);
  ASSERT_EQ(pi.sink->OfCase(ServerEvent::kLlmRequest).size(), 1u);
  // The window passes: what the mac held fails.
  clock_.Advance(absl::Seconds(61));
  core_->ServiceResumeSessions();
  EXPECT_THAT(asker.sink->ErrorCodes(), ElementsAre("llm_peer_left"));
}

TEST_F(RelayCoreResumeTest, ARequesterThatResumesGetsItsAnswer) {
  Peer pi = JoinPlain("pi");
  core_->Handle(pi.id, [] {
    ClientEvent e;
    e.mutable_capabilities_update()->add_capabilities("llm");
    return e;
  }());
  Peer phone = Open();
  const std::string session = Join(phone, "phone");
  ClientEvent req;
  req.mutable_llm_request()->set_request_id("\"r1\"");
  Send(phone, req);
  core_->Disconnect(phone.id, CloseReason::kTransportError);
  Peer back = Resume("phone", session, 1);
  ClientEvent resp;
  resp.mutable_llm_response()->set_request_id("\"r1\"");
  resp.mutable_llm_response()->set_target("phone");
  core_->Handle(pi.id, resp);
  EXPECT_EQ(back.sink->OfCase(ServerEvent::kLlmResponse).size(), 1u);
  EXPECT_EQ(core_->traffic().llm_outcomes[static_cast<std::size_t>(LlmOutcome::kAnswered)], 1u);
}

}  // namespace
}  // namespace relay::core
