// RelayCore's side of the backplane: what it tells other instances and what
// it does with what they tell it (server/core/backplane.h). A relay alone
// (NullBackplane) never reaches most of this file.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/auth/crypto.h"
#include "server/core/lent_delivery.h"
#include "server/core/member_fields.h"
#include "server/core/relay_core.h"
#include "server/core/text_rules.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::core {
namespace {

absl::Time TimeOf(double epoch_seconds) { return absl::UnixEpoch() + absl::Seconds(epoch_seconds); }

}  // namespace

relay::v1::BackplaneEnvelope RelayCore::Envelope(const Mesh& mesh) const {
  relay::v1::BackplaneEnvelope envelope;
  envelope.set_mesh_id(mesh.id);
  envelope.set_from_instance(backplane_->instance_id());
  return envelope;
}

relay::v1::BackplaneEnvelope RelayCore::LlmLoadEnvelope(const Mesh& mesh,
                                                        const Member& member) const {
  relay::v1::BackplaneEnvelope envelope = Envelope(mesh);
  envelope.mutable_llm_load()->set_node_id(member.node_id);
  envelope.mutable_llm_load()->set_held(static_cast<std::uint32_t>(mesh.llm.HeldBy(member.id)));
  return envelope;
}

relay::v1::RosterMember RelayCore::ToRosterMember(const Member& member) const {
  relay::v1::RosterMember out;
  SetMemberFields(member, out);
  out.set_credential_digest(member.credential_digest);
  out.set_proves_node(member.proves_node);
  out.set_join_seq(member.key.seq);
  out.set_instance(member.instance());
  out.set_revision(member.revision);
  return out;
}

void RelayCore::PublishMember(Mesh& mesh, const Member& member, bool claimed) {
  relay::v1::BackplaneEnvelope envelope = Envelope(mesh);
  if (claimed) {
    *envelope.mutable_member_claimed() = ToRosterMember(member);
  } else {
    *envelope.mutable_member_updated() = ToRosterMember(member);
  }
  if (!backplane_->Publish(envelope)) {
    log::Event(log::Level::kWarn, log::LogEvent::kBackplaneUnreachable).Str("mesh", mesh.id);
  }
}

void RelayCore::PublishLlmLoad(Mesh& mesh, const std::vector<MemberId>& responders) {
  if (mesh.roster.remote_instances().empty()) return;
  for (const auto& [key, member] : mesh.roster.in_join_order()) {
    if (std::find(responders.begin(), responders.end(), member->id) == responders.end()) continue;
    backplane_->Publish(LlmLoadEnvelope(mesh, *member));
  }
}

bool RelayCore::SendRemote(Mesh& mesh, const Member& member, const ServerEventPtr& event) {
  LentDelivery lent(mesh.id, *event);
  lent.delivery().set_target_node(member.node_id);
  if (backplane_->Send(member.instance(), lent.envelope())) return true;
  drops_.Add(DropReason::kUnreachable);
  return false;
}

void RelayCore::RefuseUnreachable(Connection& sender, const Member* target,
                                  absl::string_view request_id_json) {
  SendError(sender, ErrorCode::kClusterUnavailable,
            target == nullptr
                ? "the broadcast reached the peers on this relay instance only: the others "
                  "cannot be reached now; retry later"
                : absl::StrCat("peer ", QuoteForMessage(target->node_id),
                               " is on another relay instance, which cannot be reached now; "
                               "nothing was delivered, retry later"),
            request_id_json);
}

void RelayCore::ClaimNode(Connection& conn, std::uint64_t expected_revision) {
  Connection::PendingClaim& claim = *conn.claim;
  ++claim.attempts;
  // Copies: the answer may come after the connection, or its mesh, is gone.
  const std::string mesh_id = conn.joining->id;
  const std::string node_id = claim.reg.node_id();
  backplane_->ClaimNode(mesh_id, claim.entry, expected_revision,
                        [this, id = conn.id, mesh_id, node_id](NodeClaim answer) {
                          OnClaimAnswered(id, mesh_id, node_id, std::move(answer));
                        });
}

void RelayCore::OnClaimAnswered(ConnectionId id, const std::string& mesh_id,
                                const std::string& node_id, NodeClaim answer) {
  Connection* conn = Find(id);
  if (conn == nullptr || !conn->claim || conn->closing) {
    // Gone, or going, while its claim was out: an entry won for nobody goes
    // back at once, or the node_id would stay taken by no one.
    if (answer.outcome == NodeClaim::Outcome::kClaimed) backplane_->ReleaseNode(mesh_id, node_id);
    if (conn == nullptr || !conn->claim) return;
    conn->claim.reset();
  } else {
    switch (answer.outcome) {
      case NodeClaim::Outcome::kClaimed: {
        Connection::PendingClaim claim = *std::move(conn->claim);
        conn->claim.reset();
        // Whoever holds it here now (the roster moved while the claim was out).
        Member* holder = conn->joining->roster.Find(node_id);
        if (holder != nullptr && !holder->local() && holder->revision > answer.revision) {
          // Taken over from this claim by another instance before its
          // answer came back: the entry is theirs, nothing to give back.
          SendError(*conn, ErrorCode::kNodeIdInUse,
                    absl::StrCat("node_id ", QuoteForMessage(node_id),
                                 " was taken over by a connection to another relay instance"));
          break;
        }
        CompleteJoin(*conn, claim.reg, std::move(claim.admission), answer.revision, holder);
        break;
      }
      case NodeClaim::Outcome::kHeld:
        OnClaimHeld(*conn, answer);
        if (conn->claim) return;  // claimed again, or its holder probed: the answer goes on
        break;
      case NodeClaim::Outcome::kUnavailable:
        RefuseClaimUnavailable(*conn, "the cluster cannot be reached now");
        break;
    }
  }
  EndClaim(*conn);
}

void RelayCore::EndClaim(Connection& conn) {
  conn.probed_holder = 0;  // a probe's answer serves one admission only
  EndJoining(conn);
  ReplayHeld(conn);
}

void RelayCore::OnClaimHeld(Connection& conn, const NodeClaim& answer) {
  Connection::PendingClaim& claim = *conn.claim;
  const relay::v1::RosterMember& holder = answer.holder;
  bool take_over = false;
  if (answer.revision == 0 || !answer.holder_live) {
    // Gone meanwhile, or written by an instance that is not alive: absent.
    take_over = true;
  } else if (holder.instance() == backplane_->instance_id()) {
    // Held here: the rules of a local takeover (credentials, liveness
    // probe) decide, on this instance's own connection.
    Member* local = conn.joining->roster.Find(claim.reg.node_id());
    if (local != nullptr && local->local() &&
        !MayTakeOverLocal(conn, claim.reg, claim.admission, *local)) {
      conn.claim.reset();
      return;
    }
    // Or written here for a connection gone since: absent, as for a dead
    // instance (its release, if any, is ahead of this claim).
    take_over = true;
  } else if (claim.admission.proves_node &&
             auth::ConstantTimeEquals(holder.credential_digest(), claim.admission.credential)) {
    // Its instance closes the old connection as replaced when it hears of
    // this claim (OnRemoteClaim).
    take_over = true;
  }
  if (!take_over) {
    if (auth::ConstantTimeEquals(holder.credential_digest(), claim.admission.credential)) {
      // Equal credentials that prove nothing (an open mesh): the id moves
      // only once its holder is gone, which its instance finds out.
      StartRemoteProbe(conn, answer);
      return;
    }
    SendError(conn, ErrorCode::kNodeIdInUse,
              absl::StrCat("node_id ", QuoteForMessage(claim.reg.node_id()),
                           " is held by another connection with other credentials"));
    conn.claim.reset();
    return;
  }
  if (claim.attempts >= limits::kMaxNodeClaimAttempts) {
    // Each attempt lost to another claimant's write at the revision read.
    RefuseClaimUnavailable(conn, "other claims of this node_id kept winning");
    return;
  }
  ClaimNode(conn, answer.revision);
}

void RelayCore::RefuseClaimUnavailable(Connection& conn, absl::string_view why) {
  const std::string node_id = conn.claim->reg.node_id();
  log::Event(log::Level::kWarn, ErrorCodeName(ErrorCode::kClusterUnavailable))
      .Uint("conn", conn.id)
      .Str("mesh", conn.claim->reg.mesh_id())
      .Str("node", node_id)
      .Str("why", why);
  conn.claim.reset();
  SendError(
      conn, ErrorCode::kClusterUnavailable,
      absl::StrCat("node_id ", QuoteForMessage(node_id), " could not be claimed cluster-wide (",
                   why, "); this connection is not registered, retry later"));
}

void RelayCore::OnEnvelope(std::shared_ptr<relay::v1::BackplaneEnvelope> shared) {
  const relay::v1::BackplaneEnvelope& envelope = *shared;
  // Answered whether or not the mesh is followed here: a holder gone with
  // its mesh is an answer too.
  if (envelope.has_probe_request()) return OnProbeRequest(envelope);
  if (envelope.has_probe_result()) return OnProbeResult(envelope);
  auto it = meshes_.find(envelope.mesh_id());
  if (it == meshes_.end()) {
    // Not followed here any more: whoever it was for left meanwhile.
    if (envelope.has_delivery()) drops_.Add(DropReason::kClosing);
    return;
  }
  Mesh& mesh = *it->second;
  using Kind = relay::v1::BackplaneEnvelope;
  switch (envelope.kind_case()) {
    case Kind::kMemberClaimed:
      OnRemoteClaim(mesh, envelope.member_claimed());
      break;
    case Kind::kMemberReleased: {
      const Member* member = mesh.roster.Find(envelope.member_released().node_id());
      // Only its holder's release counts: a newer claim may have moved it.
      if (member != nullptr && !member->local() && member->instance() == envelope.from_instance()) {
        RemoveMember(mesh, member->node_id, envelope.member_released().announce());
      }
      break;
    }
    case Kind::kMemberUpdated: {
      const relay::v1::RosterMember& updated = envelope.member_updated();
      Member* member = mesh.roster.Find(updated.node_id());
      if (member == nullptr || member->local() || member->instance() != updated.instance()) break;
      SetCapabilities(*member, updated.capabilities(), config_.llm_capabilities);
      relay::v1::ServerEvent event;
      event.mutable_peer_updated()->set_node_id(member->node_id);
      *event.mutable_peer_updated()->mutable_capabilities() = updated.capabilities();
      Fanout(mesh, member, std::make_shared<const relay::v1::ServerEvent>(std::move(event)));
      break;
    }
    case Kind::kDelivery:
      OnRemoteDelivery(mesh, shared);
      break;
    case Kind::kLlmLoad:
      if (Member* member = mesh.roster.Find(envelope.llm_load().node_id()); member != nullptr) {
        mesh.roster.SetLlmHeldElsewhere(*member, envelope.from_instance(),
                                        envelope.llm_load().held());
      }
      break;
    case Kind::kRosterRequest:
      OnRosterRequest(mesh, envelope.from_instance());
      break;
    case Kind::kProbeRequest:  // handled above
    case Kind::kProbeResult:
    case Kind::kRosterEnd:  // the backplane's own marker
    case Kind::KIND_NOT_SET:
      break;
  }
}

void RelayCore::OnRemoteClaim(Mesh& mesh, const relay::v1::RosterMember& claimed) {
  join_clock_ = std::max(join_clock_, claimed.join_seq());
  const JoinKey key{claimed.join_seq(), claimed.instance()};
  if (Member* existing = mesh.roster.Find(claimed.node_id()); existing != nullptr) {
    if (existing->key == key) return;  // known already (a roster reply)
    // Revisions order the claims of one node entry. An older one is a
    // claim retransmitted after a newer takeover already arrived: taking it
    // would give the id back to the connection that lost it.
    const bool ordered = claimed.revision() != 0 && existing->revision != 0;
    if (ordered && claimed.revision() < existing->revision) return;
    if (!existing->local()) {
      RemoveMember(mesh, existing->node_id, /*announce=*/false);
    } else if ((ordered && claimed.revision() > existing->revision) ||
               (existing->credential_digest == claimed.credential_digest() &&
                claimed.proves_node())) {
      // Taken over from another instance (the node entry it won says so, or
      // the credentials do): this connection was replaced.
      Connection& held_by = ConnectionOf(*existing);
      LeaveMesh(held_by, /*announce=*/false);
      CloseConnection(held_by, CloseReason::kReplaced);
    } else {
      // Two instances admitted one node_id at once. Claims of the node
      // entry rule this out in cluster mode; kept as a defence (a claim
      // with no revision, from a backplane that does not write entries).
      log::Event(log::Level::kWarn, log::LogEvent::kNodeClaimConflict)
          .Str("mesh", mesh.id)
          .Str("node", claimed.node_id())
          .Str("instance", claimed.instance());
      return;
    }
  } else if (mesh.roster.size() >= config_.max_peers_per_mesh) {
    log::Event(log::Level::kWarn, log::LogEvent::kMeshFullRemote).Str("mesh", mesh.id);
  }
  Member record;
  record.node_id = claimed.node_id();
  record.name = claimed.name();
  SetCapabilities(record, claimed.capabilities(), config_.llm_capabilities);
  record.joined_at = TimeOf(claimed.joined_at());
  record.credential_digest = claimed.credential_digest();
  record.proves_node = claimed.proves_node();
  record.key = key;
  record.revision = claimed.revision();
  record.id = next_member_id_++;
  NoteMemberJoined(mesh, record.joined_at);
  Member& member = mesh.roster.Add(std::move(record));
  relay::v1::ServerEvent announce;
  *announce.mutable_peer_joined()->mutable_peer() = ToPeerInfo(member);
  Fanout(mesh, &member, std::make_shared<const relay::v1::ServerEvent>(std::move(announce)));
  MaybeForgetMesh(mesh);  // a takeover may have moved the last member held here
}

void RelayCore::OnRemoteDelivery(Mesh& mesh,
                                 const std::shared_ptr<relay::v1::BackplaneEnvelope>& envelope) {
  const relay::v1::RemoteDelivery& delivery = envelope->delivery();
  const ServerEventPtr event(envelope, &delivery.event());
  if (delivery.target_node().empty()) {
    const Member* except = mesh.roster.Find(delivery.except_node());
    Fanout(mesh, except, event);
    return;
  }
  const Member* target = mesh.roster.Find(delivery.target_node());
  if (target == nullptr || !target->local()) {
    drops_.Add(DropReason::kClosing);  // it left while the event crossed
    return;
  }
  Connection& to = ConnectionOf(*target);
  if (event->has_llm_response()) {
    if (const Member* responder = mesh.roster.Find(event->llm_response().from());
        responder != nullptr) {
      SettleLlmRequest(mesh, to, event->llm_response().response().request_id(), *responder);
    }
  }
  Deliver(to, event);
}

void RelayCore::OnRosterRequest(Mesh& mesh, const std::string& from_instance) {
  for (const auto& [key, member] : mesh.roster.in_join_order()) {
    if (!member->local()) continue;
    relay::v1::BackplaneEnvelope claim = Envelope(mesh);
    *claim.mutable_member_claimed() = ToRosterMember(*member);
    backplane_->Send(from_instance, claim);
    if (mesh.llm.HeldBy(member->id) > 0) {
      backplane_->Send(from_instance, LlmLoadEnvelope(mesh, *member));
    }
  }
  relay::v1::BackplaneEnvelope end = Envelope(mesh);
  end.mutable_roster_end();
  backplane_->Send(from_instance, end);
}

void RelayCore::OnInstanceGone(const std::string& instance_id) {
  log::Event(log::Level::kWarn, log::LogEvent::kInstanceGone).Str("instance", instance_id);
  // Claimants waiting on a holder there: its entry is a dead instance's now.
  std::vector<ConnectionId> probing;
  for (const auto& [id, conn] : connections_) {
    if (conn->claim && conn->claim->remote_probe &&
        conn->claim->remote_probe->instance == instance_id) {
      probing.push_back(id);
    }
  }
  for (ConnectionId id : probing) {
    Connection* conn = Find(id);
    if (conn == nullptr || !conn->claim || !conn->claim->remote_probe) continue;
    conn->claim->remote_probe.reset();
    ClaimAgain(*conn, /*expected_revision=*/0);
  }
  std::vector<std::string> mesh_ids;
  for (const auto& [id, mesh] : meshes_) {
    if (mesh->roster.remote_instances().count(instance_id) > 0) mesh_ids.push_back(id);
  }
  for (const std::string& mesh_id : mesh_ids) {
    auto it = meshes_.find(mesh_id);
    if (it == meshes_.end()) continue;
    Mesh& mesh = *it->second;
    std::vector<std::string> gone;
    for (const auto& [key, member] : mesh.roster.in_join_order()) {
      if (!member->local() && member->instance() == instance_id) gone.push_back(member->node_id);
      // What it had dispatched is no longer outstanding anywhere.
      mesh.roster.SetLlmHeldElsewhere(*member, instance_id, 0);
    }
    for (const std::string& node_id : gone) {
      if (meshes_.count(mesh_id) == 0) break;
      RemoveMember(mesh, node_id, /*announce=*/true);
    }
  }
}

// --- Open-mesh takeover across instances ---------------------------------------
//
// The claimant's instance asks the holder's (ProbeRequest), which probes
// its connection as for a local claimant and answers (ProbeResult). A
// silent holder's entry is then claimed at the revision probed, so a holder
// that re-registered meanwhile is not taken over by this answer.

void RelayCore::StartRemoteProbe(Connection& conn, const NodeClaim& held) {
  Connection::PendingClaim& claim = *conn.claim;
  if (claim.attempts >= limits::kMaxNodeClaimAttempts) {
    RefuseClaimUnavailable(conn, "its holder kept changing");
    return;
  }
  const std::string& instance = held.holder.instance();
  relay::v1::BackplaneEnvelope envelope = Envelope(*conn.joining);
  relay::v1::ProbeRequest* request = envelope.mutable_probe_request();
  request->set_node_id(claim.reg.node_id());
  request->set_revision(held.revision);
  request->set_probe_id(conn.id);
  if (!backplane_->Send(instance, envelope)) {
    RefuseClaimUnavailable(conn, "the relay instance holding it cannot be reached");
    return;
  }
  log::Event(log::Level::kInfo, log::LogEvent::kTakeoverProbe)
      .Uint("conn", conn.id)
      .Str("holder_instance", instance)
      .Str("mesh", claim.reg.mesh_id())
      .Str("node", claim.reg.node_id());
  claim.remote_probe = Connection::PendingClaim::RemoteProbe{
      instance, held.revision,
      clock_->Now() + config_.takeover_probe_timeout + limits::kRemoteProbeSlack};
}

void RelayCore::OnProbeRequest(const relay::v1::BackplaneEnvelope& envelope) {
  using relay::v1::ProbeResult;
  const relay::v1::ProbeRequest& request = envelope.probe_request();
  const std::string& from = envelope.from_instance();
  auto it = meshes_.find(envelope.mesh_id());
  const Member* member = it == meshes_.end() ? nullptr : it->second->roster.Find(request.node_id());
  if (member == nullptr || !member->local() || member->revision != request.revision()) {
    return AnswerProbe(from, envelope.mesh_id(), request, ProbeResult::NOT_HERE);
  }
  Connection& holder = ConnectionOf(*member);
  // A suspended session's holder has no transport: it cannot answer.
  if (holder.closing || holder.suspended) {
    return AnswerProbe(from, envelope.mesh_id(), request, ProbeResult::SILENT);
  }
  if (holder.claimant != 0 || holder.remote_claimant) {
    return AnswerProbe(from, envelope.mesh_id(), request, ProbeResult::BUSY);
  }
  const ConnectionId holder_id = holder.id;
  const std::uint64_t probe_id = request.probe_id();
  const bool started = holder.sink->Probe(config_.takeover_probe_timeout,
                                          [this, holder_id, probe_id](bool answered) {
                                            OnRemoteProbeAnswered(holder_id, probe_id, answered);
                                          });
  if (!started) {
    // The transport cannot tell: presumed alive, as for a local claimant.
    return AnswerProbe(from, envelope.mesh_id(), request, ProbeResult::ALIVE);
  }
  log::Event(log::Level::kInfo, log::LogEvent::kTakeoverProbe)
      .Uint("holder", holder_id)
      .Str("claimant_instance", from)
      .Str("mesh", envelope.mesh_id())
      .Str("node", request.node_id());
  holder.remote_claimant = Connection::RemoteClaimant{from, envelope.mesh_id(), request};
}

void RelayCore::OnRemoteProbeAnswered(ConnectionId holder_id, std::uint64_t probe_id,
                                      bool answered) {
  Connection* holder = Find(holder_id);
  // Gone meanwhile: Disconnect answered for it.
  if (holder == nullptr || !holder->remote_claimant ||
      holder->remote_claimant->request.probe_id() != probe_id) {
    return;
  }
  Connection::RemoteClaimant claimant = *std::move(holder->remote_claimant);
  holder->remote_claimant.reset();
  const bool alive = answered && holder->registered() && !holder->closing;
  AnswerProbe(claimant.instance, claimant.mesh_id, claimant.request,
              alive ? relay::v1::ProbeResult::ALIVE : relay::v1::ProbeResult::SILENT);
}

void RelayCore::AnswerProbe(const std::string& instance, const std::string& mesh_id,
                            const relay::v1::ProbeRequest& request,
                            relay::v1::ProbeResult::Answer answer) {
  relay::v1::BackplaneEnvelope envelope;
  envelope.set_mesh_id(mesh_id);
  envelope.set_from_instance(backplane_->instance_id());
  relay::v1::ProbeResult* result = envelope.mutable_probe_result();
  result->set_node_id(request.node_id());
  result->set_probe_id(request.probe_id());
  result->set_revision(request.revision());
  result->set_answer(answer);
  // Lost, the claimant's deadline answers for it.
  backplane_->Send(instance, envelope);
}

void RelayCore::OnProbeResult(const relay::v1::BackplaneEnvelope& envelope) {
  using relay::v1::ProbeResult;
  const ProbeResult& result = envelope.probe_result();
  Connection* conn = Find(result.probe_id());
  if (conn == nullptr || !conn->claim || !conn->claim->remote_probe) return;
  const Connection::PendingClaim::RemoteProbe probe = *conn->claim->remote_probe;
  // Only the answer to the probe this claim waits for.
  if (probe.instance != envelope.from_instance() || probe.revision != result.revision() ||
      conn->claim->reg.node_id() != result.node_id()) {
    return;
  }
  conn->claim->remote_probe.reset();
  const std::string node = QuoteForMessage(result.node_id());
  if (conn->closing) {
    conn->claim.reset();
  } else {
    switch (result.answer()) {
      case ProbeResult::SILENT:
        return ClaimAgain(*conn, probe.revision);
      case ProbeResult::NOT_HERE:
        // Moved or released since the entry was read: read it again.
        return ClaimAgain(*conn, /*expected_revision=*/0);
      case ProbeResult::BUSY:
        SendError(*conn, ErrorCode::kNodeIdInUse,
                  absl::StrCat("node_id ", node,
                               " is held by a connection that is being checked for another "
                               "claim; retry in a few seconds"));
        break;
      default:  // ALIVE, and anything newer than this relay: presumed alive
        SendError(*conn, ErrorCode::kNodeIdInUse,
                  absl::StrCat("node_id ", node,
                               " is held by a live connection (it answered a liveness check)"));
        break;
    }
    conn->claim.reset();
  }
  EndClaim(*conn);
}

void RelayCore::ClaimAgain(Connection& conn, std::uint64_t expected_revision) {
  if (conn.claim->attempts >= limits::kMaxNodeClaimAttempts) {
    RefuseClaimUnavailable(conn, "its holder kept changing");
    EndClaim(conn);
    return;
  }
  ClaimNode(conn, expected_revision);
}

void RelayCore::ExpireRemoteProbes() {
  const absl::Time now = clock_->Now();
  std::vector<ConnectionId> late;
  for (const auto& [id, conn] : connections_) {
    if (conn->claim && conn->claim->remote_probe && conn->claim->remote_probe->deadline <= now) {
      late.push_back(id);
    }
  }
  for (ConnectionId id : late) {
    Connection* conn = Find(id);
    if (conn == nullptr || !conn->claim || !conn->claim->remote_probe) continue;
    const std::string node = QuoteForMessage(conn->claim->reg.node_id());
    conn->claim.reset();
    if (!conn->closing) {
      SendError(*conn, ErrorCode::kNodeIdInUse,
                absl::StrCat("node_id ", node,
                             " is held by a connection on another relay instance, which did not "
                             "answer a liveness check in time; retry in a few seconds"));
    }
    EndClaim(*conn);
  }
}

}  // namespace relay::core
