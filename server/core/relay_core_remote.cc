// RelayCore's side of the backplane: what it tells other instances and what
// it does with what they tell it (server/core/backplane.h). A relay alone
// (NullBackplane) never reaches most of this file.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/auth/crypto.h"
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
  relay::v1::BackplaneEnvelope envelope = Envelope(mesh);
  relay::v1::RemoteDelivery* delivery = envelope.mutable_delivery();
  delivery->set_target_node(member.node_id);
  *delivery->mutable_event() = *event;
  if (backplane_->Send(member.instance(), envelope)) return true;
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
        if (conn->claim) return;  // claimed again: its answer goes on
        break;
      case NodeClaim::Outcome::kUnavailable:
        RefuseClaimUnavailable(*conn, "the cluster cannot be reached now");
        break;
    }
  }
  conn->probed_holder = 0;  // a probe's answer serves one admission only
  EndJoining(*conn);
  ReplayHeld(*conn);
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
    // An open mesh's holder elsewhere cannot be probed from here: presumed
    // alive.
    const bool same =
        auth::ConstantTimeEquals(holder.credential_digest(), claim.admission.credential);
    SendError(conn, ErrorCode::kNodeIdInUse,
              absl::StrCat("node_id ", QuoteForMessage(claim.reg.node_id()),
                           same ? " is held by a live connection"
                                : " is held by another connection with other credentials"));
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

void RelayCore::OnEnvelope(const relay::v1::BackplaneEnvelope& envelope) {
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
      member->capabilities.assign(updated.capabilities().begin(), updated.capabilities().end());
      relay::v1::ServerEvent event;
      event.mutable_peer_updated()->set_node_id(member->node_id);
      *event.mutable_peer_updated()->mutable_capabilities() = updated.capabilities();
      Fanout(mesh, member, std::make_shared<const relay::v1::ServerEvent>(std::move(event)));
      break;
    }
    case Kind::kDelivery:
      OnRemoteDelivery(mesh, envelope.delivery());
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
  record.capabilities.assign(claimed.capabilities().begin(), claimed.capabilities().end());
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

void RelayCore::OnRemoteDelivery(Mesh& mesh, const relay::v1::RemoteDelivery& delivery) {
  auto event = std::make_shared<const relay::v1::ServerEvent>(delivery.event());
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

}  // namespace relay::core
