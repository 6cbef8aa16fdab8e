// RelayCore's resume sessions (docs/protocol.md, "Resume"): opening one at
// join, numbering both directions, suspending it when its connection drops,
// continuing it on a new connection, and ending it (window, bounds, a close
// the client or the relay asked for).
//
// A suspended session keeps its Connection (and so its member, its llm
// bookkeeping, its place in the roster): only the transport is gone. Every
// rule that delivers still calls Deliver, which keeps the frame in the
// session instead of sending it.
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/auth/crypto.h"
#include "server/core/relay_core.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::core {
namespace {

using relay::v1::ClientEvent;
using relay::v1::ServerEvent;

// What a suspended connection's deliveries meet if one ever bypassed the
// session: nothing is sent, nothing closes (there is no transport).
class SuspendedSink final : public PeerSink {
 public:
  SendResult Send(const ServerEventPtr&) override {
    return SendResult::Dropped(DropReason::kClosing);
  }
  void Close(CloseReason) override {}
};

}  // namespace

std::size_t RelayCore::FrameBytes(const ServerEvent& event) {
  // What keeping the event costs in memory, not its size on the wire: an
  // event on an arena (a relayed message, or a delivery from another
  // instance, whose whole envelope it keeps) holds the arena's blocks.
  // Counted in full by every session that keeps it: an upper bound.
  const google::protobuf::Arena* arena = event.GetArena();
  const std::size_t held = arena != nullptr ? static_cast<std::size_t>(arena->SpaceAllocated()) +
                                                  sizeof(google::protobuf::Arena)
                                            : event.SpaceUsedLong();
  return held + limits::kResumeFrameOverheadBytes;
}

relay::v1::SessionInfo RelayCore::SessionInfoOf(const ResumeSession& session) const {
  relay::v1::SessionInfo info;
  info.set_id(session.id());
  info.set_window_seconds(static_cast<std::uint32_t>(absl::ToInt64Seconds(config_.resume_window)));
  return info;
}

bool RelayCore::Suspends(CloseReason reason, bool client_said_goodbye) {
  // A client that closed on purpose left; one whose connection just broke
  // (a network change, a dead socket, a backlog it could not read) is
  // coming back.
  if (client_said_goodbye) return false;
  switch (reason) {
    case CloseReason::kClientClosed:  // TCP ended without a close frame
    case CloseReason::kKeepaliveTimeout:
    case CloseReason::kTransportError:
    case CloseReason::kSlowConsumer:
      return true;
    default:
      return false;
  }
}

bool RelayCore::OpenSession(Connection& conn, const relay::v1::Register& reg) {
  if (!reg.resume().requested() || config_.resume_window <= absl::ZeroDuration() ||
      !conn.sink->supports_resume()) {
    return false;
  }
  if (sessions_.size() >= config_.max_resume_sessions) {
    limit_hits_.Add(Limit::kResumeSessions);
    log::Event(log::Level::kWarn, LimitName(Limit::kResumeSessions))
        .Uint("conn", conn.id)
        .Uint("max_sessions", config_.max_resume_sessions);
    return false;
  }
  std::string id;
  do {
    id = absl::BytesToHexString(auth::RandomBytes(limits::kResumeSessionIdBytes));
  } while (sessions_.contains(id));  // 2^-128: never, but never twice either
  conn.session = std::make_unique<ResumeSession>(
      id, ResumeSession::Bounds{config_.resume_buffer_bytes, config_.resume_buffer_frames},
      &resume_budget_);
  sessions_.emplace(std::move(id), conn.id);
  return true;
}

bool RelayCore::TryResume(Connection& conn, const relay::v1::Register& reg,
                          const Admission& admission) {
  const relay::v1::ResumeRequest& ask = reg.resume();
  if (!ask.requested() || ask.session_id().empty()) return false;
  conn.resume_refused = true;  // unless it is continued below
  if (config_.resume_window <= absl::ZeroDuration() || !conn.sink->supports_resume()) {
    return false;
  }
  auto found = sessions_.find(ask.session_id());
  if (found == sessions_.end()) return false;
  Connection* old = Find(found->second);
  // Only the node that opened it, in its mesh, with its credentials: a
  // session id alone is not enough (and another node's id gets nothing).
  if (old == nullptr || old->closing || old->session == nullptr || !old->registered() ||
      old->mesh != conn.joining || old->node_id != reg.node_id() ||
      !auth::ConstantTimeEquals(old->member->credential_digest, admission.credential) ||
      !old->session->CanReplayAfter(ask.last_seq())) {
    return false;
  }
  Mesh& mesh = *old->mesh;
  Member& member = *old->member;
  const ConnectionId old_id = old->id;
  const bool was_suspended = old->suspended;

  // The member, its requests and its session move to the new connection.
  mesh.llm.RenameRequester(old_id, conn.id);
  conn.mesh = &mesh;
  conn.member = &member;
  conn.node_id = old->node_id;
  member.connection = &conn;
  conn.session = std::move(old->session);
  found->second = conn.id;
  old->mesh = nullptr;
  old->member = nullptr;
  acks_owed_.erase(old_id);
  if (was_suspended) {
    session_expiry_.Cancel(old_id);
    --suspended_sessions_;
    connections_.erase(old_id);  // no transport is left to report its end
  } else {
    // Half-open: the client is already here on a new connection.
    CloseConnection(*old, CloseReason::kResumed);
  }
  conn.resume_refused = false;

  ResumeSession& session = *conn.session;
  session.Unsuspend();
  session.Acknowledge(ask.last_seq());
  ++resumes_;
  log::Event(log::Level::kInfo, log::LogEvent::kResume)
      .Uint("conn", conn.id)
      .Uint("previous_conn", old_id)
      .Str("mesh", mesh.id)
      .Str("node", conn.node_id)
      .Uint("replayed", session.unacked().size())
      .Str("transport", conn.info.transport);

  ServerEvent resumed;
  auto* out = resumed.mutable_resumed();
  *out->mutable_session() = SessionInfoOf(session);
  out->set_last_seq(session.client_seq());
  out->set_replayed(session.unacked().size());
  session.MarkClientSeqAcked();
  session.ClearAckRequest();
  Deliver(conn, std::make_shared<const ServerEvent>(std::move(resumed)), /*in_stream=*/false);
  // Straight to the transport, with their original seq: they are kept
  // already. One the transport refuses (it is closing) stays kept.
  for (const ResumeSession::Frame& frame : session.unacked()) {
    if (conn.closing || !conn.sink->SendSequenced(frame.event, frame.seq).queued()) break;
    ++replayed_frames_;
  }
  return true;
}

void RelayCore::Suspend(Connection& conn) {
  const absl::Time now = clock_->Now();
  conn.suspended = true;
  if (suspended_sink_ == nullptr) suspended_sink_ = std::make_shared<SuspendedSink>();
  conn.sink = suspended_sink_;
  conn.session->Suspend(now);
  session_expiry_.Schedule(conn.id, now + config_.resume_window);
  acks_owed_.erase(conn.id);
  ++suspended_sessions_;
}

void RelayCore::DropSession(Connection& conn, SessionEnd why) {
  if (conn.session == nullptr) return;
  sessions_ended_.Add(why);
  log::Event(why == SessionEnd::kOverflow ? log::Level::kWarn : log::Level::kInfo,
             log::LogEvent::kSessionEnd)
      .Uint("conn", conn.id)
      .Str("mesh", conn.registered() ? conn.mesh->id : "")
      .Str("node", conn.node_id)
      .Str("why", SessionEndName(why))
      .Uint("unacked_frames", conn.session->unacked().size());
  sessions_.erase(conn.session->id());
  acks_owed_.erase(conn.id);
  session_expiry_.Cancel(conn.id);
  conn.session.reset();
}

void RelayCore::EndSuspended(ConnectionId id) {
  auto it = connections_.find(id);
  if (it == connections_.end() || !it->second->suspended) return;
  Connection& conn = *it->second;
  conn.closing = true;
  DropSession(conn, SessionEnd::kClosed);  // counted already when its end was asked
  --suspended_sessions_;
  if (conn.registered()) LeaveMesh(conn, /*announce=*/true);
  connections_.erase(it);
}

void RelayCore::ServiceResumeSessions() {
  if (!acks_owed_.empty()) {
    std::vector<ConnectionId> owed(acks_owed_.begin(), acks_owed_.end());
    acks_owed_.clear();
    for (ConnectionId id : owed) {
      Connection* conn = Find(id);
      if (conn != nullptr && conn->session != nullptr && !conn->suspended && !conn->closing &&
          conn->session->ack_owed()) {
        SendAck(*conn);
      }
    }
  }
  for (ConnectionId id : session_expiry_.PopDue(clock_->Now())) {
    Connection* conn = Find(id);
    if (conn == nullptr || !conn->suspended) continue;
    DropSession(*conn, SessionEnd::kExpired);
    EndSuspended(id);
  }
  std::vector<ConnectionId> ending = std::move(suspended_to_end_);
  suspended_to_end_.clear();
  for (ConnectionId id : ending) EndSuspended(id);
}

bool RelayCore::AdmitSeq(Connection& conn, const ClientEvent& event) {
  if (event.has_ack()) return true;  // acks are not numbered
  if (event.seq_invalid() || event.seq() == 0) {
    SendError(conn, ErrorCode::kSeqRequired,
              absl::StrCat("in a resume session every message but \"ack\" needs \"seq\", an "
                           "integer from 1 to ",
                           limits::kMaxResumeSeq, " counted up by the client"));
    return false;
  }
  if (!conn.session->Receive(event.seq())) {
    // A resend of what was handled already: dropped, and acknowledged so
    // that the client forgets it.
    ++duplicate_frames_;
    conn.session->RequestAck();
    acks_owed_.insert(conn.id);
    return false;
  }
  return true;
}

void RelayCore::NoteHandled(Connection& conn) {
  if (conn.session == nullptr || conn.closing) return;
  if (conn.session->received_since_ack() >= limits::kResumeAckEveryFrames) {
    SendAck(conn);
  } else {
    acks_owed_.insert(conn.id);
  }
}

void RelayCore::SendAck(Connection& conn) {
  ResumeSession& session = *conn.session;
  ServerEvent event;
  event.mutable_ack()->set_seq(session.client_seq());
  session.MarkClientSeqAcked();
  session.ClearAckRequest();
  Deliver(conn, std::make_shared<const ServerEvent>(std::move(event)), /*in_stream=*/false);
}

void RelayCore::OnAck(Connection& conn, const relay::v1::Ack& ack) {
  if (conn.session == nullptr) {
    SendError(conn, ErrorCode::kUnknownType,
              "\"ack\" is for resume sessions (register or join with \"resume\": true)");
    return;
  }
  if (!conn.session->Acknowledge(ack.seq())) {
    SendError(conn, ErrorCode::kBadMessage,
              absl::StrCat("ack for seq ", ack.seq(), ", but the last frame sent was seq ",
                           conn.session->last_sent()));
  }
}

}  // namespace relay::core
