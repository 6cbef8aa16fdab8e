#include "server/core/relay_core.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/auth/crypto.h"
#include "server/core/arena_event.h"
#include "server/core/lent_delivery.h"
#include "server/core/member_fields.h"
#include "server/core/text_rules.h"
#include "server/core/unrouted_wire.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::core {
namespace {

using relay::v1::ClientEvent;
using relay::v1::ServerEvent;

ServerEventPtr MakeEvent(ServerEvent event) {
  return std::make_shared<const ServerEvent>(std::move(event));
}

}  // namespace

RelayCore::RelayCore(CoreConfig config, const Clock* clock, store::AuthStore* auth_store,
                     CoreExecutor* executor, Backplane* backplane)
    : config_(std::move(config)),
      rate_limits_{config_.rate_limit_per_second, config_.rate_limit_burst,
                   config_.rate_limit_bytes_per_second, config_.rate_limit_burst_bytes},
      clock_(clock),
      backplane_(backplane != nullptr ? backplane : &null_backplane_),
      started_at_(clock->Now()),
      auth_(auth_store != nullptr ? auth_store : &memory_auth_store_, config_, &limit_hits_,
            executor) {
  resume_budget_.max_bytes = config_.max_resume_memory_bytes;
  backplane_->SetListener(this);
  if (backplane_->clustered()) {
    auth_.SetClusterLiveness(
        [this](const std::string& mesh_id, std::function<void(absl::StatusOr<bool>)> done) {
          backplane_->MeshHasMembers(mesh_id, std::move(done));
        });
  }
}

absl::Status RelayCore::LoadAuthState() { return auth_.Load(clock_->Now()); }

RelayCore::~RelayCore() = default;

ConnectionId RelayCore::Connect(ConnectionInfo info, std::shared_ptr<PeerSink> sink) {
  auto conn = std::make_unique<Connection>();
  conn->id = next_connection_id_++;
  conn->info = std::move(info);
  conn->sink = std::move(sink);
  conn->opened_at = clock_->Now();
  conn->rate.emplace(rate_limits_, conn->opened_at);
  const ConnectionId id = conn->id;
  connections_.emplace(id, std::move(conn));
  ++total_connections_;
  return id;
}

void RelayCore::Handle(ConnectionId id, const ClientEvent& event, std::size_t wire_bytes) {
  ClientEvent copy = event;
  Handle(id, std::move(copy), wire_bytes);
}

void RelayCore::Handle(ConnectionId id, ClientEvent&& event, std::size_t wire_bytes) {
  if (AdmitFrame(id, wire_bytes)) HandleAdmitted(id, std::move(event), wire_bytes);
}

bool RelayCore::AdmitFrame(ConnectionId id, std::size_t wire_bytes) {
  Connection* conn = Find(id);
  if (conn == nullptr || conn->closing) return false;
  ++messages_received_;
  ++conn->messages_in;
  return AdmitByRate(*conn, wire_bytes);
}

void RelayCore::HandleAdmitted(ConnectionId id, ClientEvent&& event, std::size_t wire_bytes) {
  Connection* conn = Find(id);
  if (conn == nullptr || conn->closing) return;
  if (conn->waiting()) {
    HeldEvent held;
    held.event = std::move(event);
    held.wire_bytes = wire_bytes;
    Hold(*conn, std::move(held));
    return;
  }
  Dispatch(*conn, std::move(event));
}

void RelayCore::Dispatch(Connection& conn, ClientEvent&& event) {
  if (conn.session == nullptr) {
    DispatchEvent(conn, std::move(event));
    return;
  }
  if (!AdmitSeq(conn, event)) return;
  const bool numbered = !event.has_ack();
  DispatchEvent(conn, std::move(event));
  if (numbered) NoteHandled(conn);
}

void RelayCore::DispatchEvent(Connection& conn, ClientEvent&& event) {
  if (event.has_register_()) {
    OnRegister(conn, event.register_());
    return;
  }
  if (event.has_register_mesh()) {
    OnRegisterMesh(conn, event.register_mesh());
    return;
  }
  if (!conn.registered()) {
    absl::string_view request_id;
    if (event.has_llm_request()) request_id = event.llm_request().request_id();
    if (event.has_llm_response()) request_id = event.llm_response().request_id();
    if (event.has_unrouted()) request_id = event.unrouted().request_id();
    SendError(conn, ErrorCode::kNotRegistered, "register (or join) before sending anything else",
              request_id);
    return;
  }
  switch (event.event_case()) {
    case ClientEvent::kBroadcast:
      OnBroadcast(conn, *event.mutable_broadcast());
      break;
    case ClientEvent::kDirect:
      OnDirect(conn, *event.mutable_direct());
      break;
    case ClientEvent::kLlmRequest:
      OnLlmRequest(conn, *event.mutable_llm_request());
      break;
    case ClientEvent::kLlmResponse:
      OnLlmResponse(conn, *event.mutable_llm_response());
      break;
    case ClientEvent::kPing:
      OnPing(conn);
      break;
    case ClientEvent::kCapabilitiesUpdate:
      OnCapabilitiesUpdate(conn, event.capabilities_update());
      break;
    case ClientEvent::kUnrouted:
      OnUnrouted(conn, event.unrouted());
      break;
    case ClientEvent::kAck:
      OnAck(conn, event.ack());
      break;
    case ClientEvent::kRegister:  // handled above
    case ClientEvent::kRegisterMesh:
    case ClientEvent::EVENT_NOT_SET:
      SendError(conn, ErrorCode::kBadMessage, "empty event");
      break;
  }
}

void RelayCore::RejectUndecodable(ConnectionId id, ErrorCode code, absl::string_view message,
                                  absl::string_view request_id_json, std::size_t wire_bytes) {
  if (AdmitFrame(id, wire_bytes)) RejectAdmitted(id, code, message, request_id_json, wire_bytes);
}

void RelayCore::RejectAdmitted(ConnectionId id, ErrorCode code, absl::string_view message,
                               absl::string_view request_id_json, std::size_t wire_bytes) {
  Connection* conn = Find(id);
  if (conn == nullptr || conn->closing) return;
  if (conn->waiting()) {
    HeldEvent held;
    held.wire_bytes = wire_bytes;
    held.undecodable = code;
    held.message = std::string(message);
    held.request_id_json = std::string(request_id_json);  // SendError bounds its echo
    Hold(*conn, std::move(held));
    return;
  }
  SendError(*conn, code, message, request_id_json);
}

bool RelayCore::AdmitByRate(Connection& conn, std::size_t wire_bytes) {
  const RateLimiter::Verdict verdict = conn.rate->Admit(rate_limits_, wire_bytes, clock_->Now());
  if (verdict == RateLimiter::Verdict::kAdmitted) return true;
  const bool by_count = config_.rate_limit_per_second > 0;
  const bool count_ok = verdict == RateLimiter::Verdict::kOverBytes;
  limit_hits_.Add(count_ok ? Limit::kByteRate : Limit::kMessageRate);
  // A client that keeps going after being told is closed: refusals cost us
  // an answer each (limits::kMaxRefusalsInRow).
  if (conn.rate->refusals_in_row() == 1) {
    // Once per streak: a flood must not flood the log too.
    log::Event(log::Level::kWarn, ErrorCodeName(ErrorCode::kRateLimited))
        .Uint("conn", conn.id)
        .Str("mesh", conn.registered() ? conn.mesh->id : "")
        .Str("node", conn.node_id)
        .Str("limit", count_ok ? "bytes" : "messages")
        .Double("limit_per_second",
                count_ok ? config_.rate_limit_bytes_per_second : config_.rate_limit_per_second);
  }
  const std::size_t max_in_row = by_count
                                     ? std::min(config_.rate_limit_burst, limits::kMaxRefusalsInRow)
                                     : limits::kMaxRefusalsInRow;
  if (conn.rate->refusals_in_row() >= max_in_row) {
    CloseConnection(conn, CloseReason::kRateLimited);
    return false;
  }
  SendError(conn, ErrorCode::kRateLimited,
            count_ok ? absl::StrCat("over the limit of ", config_.rate_limit_bytes_per_second,
                                    " bytes per second; this message was not processed")
                     : absl::StrCat("over the limit of ", config_.rate_limit_per_second,
                                    " messages per second; this message was not processed"));
  return false;
}

std::string RelayCore::ValidateCapabilities(
    const google::protobuf::RepeatedPtrField<std::string>& caps) const {
  if (static_cast<std::size_t>(caps.size()) > config_.max_capabilities) {
    return absl::StrCat("at most ", config_.max_capabilities, " capabilities");
  }
  for (const std::string& cap : caps) {
    if (cap.empty() || cap.size() > config_.max_capability_bytes) {
      return absl::StrCat("a capability is 1 to ", config_.max_capability_bytes, " bytes");
    }
    if (absl::string_view problem = IdentifierProblem(cap); !problem.empty()) {
      // Not echoed, as for node_id: it may not be valid text at all.
      return absl::StrCat("a capability ", problem);
    }
  }
  return "";
}

std::string RelayCore::ValidateRegister(const relay::v1::Register& reg) const {
  if (reg.mesh_id().empty() || reg.mesh_id().size() > config_.max_id_bytes) {
    return absl::StrCat("mesh_id must be 1 to ", config_.max_id_bytes, " bytes");
  }
  if (reg.node_id().empty() || reg.node_id().size() > config_.max_id_bytes) {
    return absl::StrCat("node_id must be a string of 1 to ", config_.max_id_bytes, " bytes");
  }
  if (absl::string_view problem = IdentifierProblem(reg.node_id()); !problem.empty()) {
    // Not echoed: the point is that it does not read as what it is.
    return absl::StrCat("node_id ", problem);
  }
  if (reg.name().size() > config_.max_name_bytes) {
    return absl::StrCat("name must be at most ", config_.max_name_bytes, " bytes");
  }
  if (absl::string_view problem = NameProblem(reg.name()); !problem.empty()) {
    return absl::StrCat("name ", problem);
  }
  return ValidateCapabilities(reg.capabilities());
}

bool RelayCore::CheckRegistration(Connection& conn, const relay::v1::Register& reg) {
  if (conn.registered()) {
    SendError(conn, ErrorCode::kAlreadyRegistered,
              absl::StrCat("this connection is already registered as ", conn.node_id));
    return false;
  }
  if (std::string invalid = ValidateRegister(reg); !invalid.empty()) {
    SendError(conn, ErrorCode::kBadMessage, invalid);
    return false;
  }
  return true;
}

void RelayCore::OnRegister(Connection& conn, const relay::v1::Register& reg) {
  if (!CheckRegistration(conn, reg)) return;
  BeginRegistration(conn, reg, nullptr);
}

void RelayCore::OnRegisterMesh(Connection& conn, const relay::v1::RegisterMesh& request) {
  if (!CheckRegistration(conn, request.peer())) return;
  BeginRegistration(conn, request.peer(), &request);
}

void RelayCore::BeginRegistration(Connection& conn, const relay::v1::Register& reg,
                                  const relay::v1::RegisterMesh* founding) {
  auto it = meshes_.find(reg.mesh_id());
  if (it == meshes_.end()) {
    auto mesh = std::make_unique<Mesh>();
    mesh->id = reg.mesh_id();
    mesh->serial = next_mesh_serial_++;
    it = meshes_.emplace(reg.mesh_id(), std::move(mesh)).first;
  }
  Mesh& mesh = *it->second;
  conn.joining = &mesh;
  ++mesh.joining;
  if (mesh.roster_ready) {
    Admit(conn, reg, founding);
    return;
  }
  // The members other instances hold must be known before any rule reads
  // the roster (node_id taken? mesh full? live?).
  conn.awaiting_roster = reg;
  if (founding != nullptr) conn.awaiting_roster_founding = *founding;
  mesh.awaiting_roster.push_back(conn.id);
  if (mesh.awaiting_roster.size() == 1) {
    // A copy: a backplane that answers inline may end the mesh before
    // Subscribe returns.
    const std::string mesh_id = mesh.id;
    backplane_->Subscribe(
        mesh_id, [this, mesh_id, serial = mesh.serial] { OnRosterReady(mesh_id, serial); });
  }
}

void RelayCore::OnRosterReady(const std::string& mesh_id, std::uint64_t serial) {
  auto it = meshes_.find(mesh_id);
  // Forgotten meanwhile (everyone waiting left), perhaps followed again.
  if (it == meshes_.end() || it->second->serial != serial) return;
  Mesh& mesh = *it->second;
  mesh.roster_ready = true;
  std::vector<ConnectionId> waiting = std::move(mesh.awaiting_roster);
  mesh.awaiting_roster.clear();
  for (ConnectionId id : waiting) {
    Connection* conn = Find(id);
    if (conn == nullptr || !conn->awaiting_roster) continue;
    relay::v1::Register reg = *std::move(conn->awaiting_roster);
    std::optional<relay::v1::RegisterMesh> founding = std::move(conn->awaiting_roster_founding);
    conn->awaiting_roster.reset();
    conn->awaiting_roster_founding.reset();
    if (conn->closing) {
      EndJoining(*conn);
      continue;
    }
    // May end the mesh here (a refused registration was its only reason).
    Admit(*conn, reg, founding ? &*founding : nullptr);
    if (!conn->waiting()) ReplayHeld(*conn);
  }
}

void RelayCore::Admit(Connection& conn, const relay::v1::Register& reg,
                      const relay::v1::RegisterMesh* founding) {
  conn.admitting = true;
  const bool live = !conn.joining->roster.empty();
  auto done = [this, id = conn.id, reg,
               is_founding = founding != nullptr](absl::StatusOr<Admission> admission) {
    OnAdmitted(id, reg, is_founding, std::move(admission));
  };
  if (founding != nullptr) {
    auth_.AdmitRegisterMesh(*founding, reg.mesh_id(), live, conn.info.client_ip, clock_->Now(),
                            std::move(done));
  } else {
    auth_.AdmitRegister(reg, live, conn.info.client_ip, clock_->Now(), std::move(done));
  }
}

void RelayCore::EndJoining(Connection& conn) {
  Mesh* mesh = conn.joining;
  if (mesh == nullptr) return;
  conn.joining = nullptr;
  --mesh->joining;
  MaybeForgetMesh(*mesh);
}

void RelayCore::NoteMemberJoined(Mesh& mesh, absl::Time joined_at) {
  if (!mesh.live || joined_at < mesh.created_at) mesh.created_at = joined_at;
  mesh.live = true;
}

void RelayCore::MaybeForgetMesh(Mesh& mesh) {
  if (mesh.roster.local_members() > 0 || mesh.joining > 0) return;
  // Remote members are forgotten with it: this instance no longer follows
  // the mesh.
  const std::string id = mesh.id;  // the key must outlive the erase
  backplane_->Unsubscribe(id);
  meshes_.erase(id);
}

void RelayCore::OnAdmitted(ConnectionId id, const relay::v1::Register& reg, bool founding,
                           absl::StatusOr<Admission> admission) {
  Connection* conn = Find(id);
  if (conn == nullptr) return;  // gone while its admission was decided
  conn->admitting = false;
  if (!conn->closing) {
    if (!admission.ok()) {
      RefuseAdmission(*conn, admission.status());
    } else {
      if (founding) {
        ServerEvent registered;
        registered.mutable_mesh_registered()->set_mesh_id(reg.mesh_id());
        Deliver(*conn, MakeEvent(std::move(registered)));
      }
      Join(*conn, reg, *std::move(admission));
    }
  }
  if (conn->claim) return;  // OnClaimAnswered ends the join
  conn->probed_holder = 0;  // a probe's answer serves one admission only
  EndJoining(*conn);
  ReplayHeld(*conn);
}

void RelayCore::RefuseAdmission(Connection& conn, const absl::Status& status) {
  // Bounds of the relay's own state: the client may retry later, unclosed.
  if (absl::IsUnavailable(status)) {
    SendError(conn, ErrorCode::kAuthUnavailable, status.message());
    return;
  }
  if (absl::IsResourceExhausted(status)) {
    log::Event(log::Level::kWarn, log::LogEvent::kAuthRecordsRateLimited)
        .Uint("conn", conn.id)
        .Str("client_ip", conn.info.client_ip);
    SendError(conn, ErrorCode::kRateLimited, status.message());
    return;
  }
  log::Event(log::Level::kWarn, ErrorCodeName(ErrorCode::kAuthFailed))
      .Uint("conn", conn.id)
      .Str("remote", conn.info.remote_address)
      .Str("why", status.message());
  SendError(conn, ErrorCode::kAuthFailed, status.message());
  CloseConnection(conn, CloseReason::kAuthFailed);
}

void RelayCore::Join(Connection& conn, const relay::v1::Register& reg, Admission admission) {
  Mesh& mesh = *conn.joining;  // kept while the connection joins it
  if (TryResume(conn, reg, admission)) return;
  Member* holder = mesh.roster.Find(reg.node_id());
  std::uint64_t expected_revision = 0;
  if (holder != nullptr && holder->local()) {
    if (!MayTakeOverLocal(conn, reg, admission, *holder)) return;
    // Its entry, as this instance wrote it: a claim at that revision takes
    // over exactly the holder just judged.
    expected_revision = holder->revision;
  } else if (holder == nullptr && mesh.roster.size() >= config_.max_peers_per_mesh) {
    RefuseMeshFull(conn, reg.mesh_id());
    return;
  }
  if (!backplane_->clustered()) {
    CompleteJoin(conn, reg, std::move(admission), /*revision=*/0, holder);
    return;
  }
  // Cluster-wide, the node entry decides (ADR 0009, section 3). A holder on
  // another instance is judged on what the entry says (its credentials, its
  // instance's liveness), so the first claim writes only an absent entry
  // and the answer names the holder.
  Connection::PendingClaim& claim = conn.claim.emplace();
  claim.reg = reg;
  claim.entry.set_node_id(reg.node_id());
  claim.entry.set_name(reg.name().empty() ? FirstChars(reg.node_id(), 8) : reg.name());
  *claim.entry.mutable_capabilities() = reg.capabilities();
  claim.entry.set_joined_at(ToEpochSeconds(clock_->Now()));
  claim.entry.set_credential_digest(admission.credential);
  claim.entry.set_proves_node(admission.proves_node);
  claim.entry.set_instance(backplane_->instance_id());
  claim.admission = std::move(admission);
  ClaimNode(conn, expected_revision);
}

bool RelayCore::MayTakeOverLocal(Connection& conn, const relay::v1::Register& reg,
                                 const Admission& admission, Member& holder) {
  // Only the same credentials may take a node_id over (a phone that
  // reconnects before the relay noticed its old socket died). Never a
  // secret (MeshAuth keeps an open mesh's token as its SHA-256).
  if (!auth::ConstantTimeEquals(holder.credential_digest, admission.credential)) {
    SendError(conn, ErrorCode::kNodeIdInUse,
              absl::StrCat("node_id ", QuoteForMessage(reg.node_id()),
                           " is held by another connection with other credentials"));
    return false;
  }
  Connection& held_by = ConnectionOf(holder);
  // Equal credentials that prove nothing (an open mesh) are anyone's: the
  // id moves only when its holder is gone. A holder already closing is gone.
  // A suspended session's holder has no transport left to ask.
  if (admission.proves_node || held_by.closing || held_by.suspended ||
      held_by.id == conn.probed_holder) {
    return true;
  }
  if (held_by.claimant != 0 || held_by.remote_claimant) {
    SendError(conn, ErrorCode::kNodeIdInUse,
              absl::StrCat("node_id ", QuoteForMessage(reg.node_id()),
                           " is held by a connection that is being checked for another "
                           "claim; retry in a few seconds"));
    return false;
  }
  StartTakeoverProbe(conn, held_by, reg);
  return false;
}

void RelayCore::RefuseMeshFull(Connection& conn, const std::string& mesh_id) {
  limit_hits_.Add(Limit::kPeersPerMesh);
  log::Event(log::Level::kWarn, ErrorCodeName(ErrorCode::kMeshFull))
      .Uint("conn", conn.id)
      .Str("mesh", mesh_id)
      .Uint("max_peers", config_.max_peers_per_mesh);
  SendError(conn, ErrorCode::kMeshFull,
            absl::StrCat("this mesh already has ", config_.max_peers_per_mesh, " peers"));
}

void RelayCore::CompleteJoin(Connection& conn, const relay::v1::Register& reg, Admission admission,
                             std::uint64_t revision, Member* holder) {
  Mesh& mesh = *conn.joining;
  if (holder != nullptr) {
    if (holder->local()) {
      Connection& held_by = ConnectionOf(*holder);
      LeaveMesh(held_by, /*announce=*/false);
      // A holder already closing (e.g. during shutdown) keeps its reason.
      CloseConnection(held_by, CloseReason::kReplaced);
    } else {
      // Its instance closes it as replaced when it hears of this claim.
      RemoveMember(mesh, reg.node_id(), /*announce=*/false);
    }
  } else if (mesh.roster.size() >= config_.max_peers_per_mesh) {
    // Filled up while the claim was out: the entry won goes back.
    if (backplane_->clustered()) backplane_->ReleaseNode(mesh.id, reg.node_id());
    RefuseMeshFull(conn, reg.mesh_id());
    return;
  }
  AddMember(conn, reg, std::move(admission), revision);
}

void RelayCore::AddMember(Connection& conn, const relay::v1::Register& reg, Admission admission,
                          std::uint64_t revision) {
  Mesh& mesh = *conn.joining;
  Member record;
  record.node_id = reg.node_id();
  record.name = reg.name().empty() ? FirstChars(reg.node_id(), 8) : reg.name();
  SetCapabilities(record, reg.capabilities(), config_.llm_capabilities);
  record.joined_at = clock_->Now();
  record.credential_digest = std::move(admission.credential);
  record.proves_node = admission.proves_node;
  record.key = JoinKey{++join_clock_, backplane_->instance_id()};
  record.revision = revision;
  record.connection = &conn;
  record.id = next_member_id_++;
  NoteMemberJoined(mesh, record.joined_at);
  Member& member = mesh.roster.Add(std::move(record));
  conn.mesh = &mesh;
  conn.member = &member;
  conn.node_id = reg.node_id();
  ++registered_peers_;
  if (backplane_->clustered()) PublishMember(mesh, member, /*claimed=*/true);

  log::Event(log::Level::kInfo, log::LogEvent::kRegister)
      .Uint("conn", conn.id)
      .Str("mesh", mesh.id)
      .Str("node", conn.node_id)
      .Str("transport", conn.info.transport)
      .Uint("peers", mesh.roster.size());

  // The newcomer first learns it joined (the shipped Android app waits for
  // it), then who else is here; the others learn about the newcomer.
  ServerEvent joined;
  joined.mutable_joined()->set_mesh_id(mesh.id);
  joined.mutable_joined()->set_node_count(static_cast<std::uint32_t>(mesh.roster.size()));
  if (OpenSession(conn, reg))
    *joined.mutable_joined()->mutable_session() = SessionInfoOf(*conn.session);
  if (conn.resume_refused) {
    ++resumes_refused_;
    joined.mutable_joined()->set_resume_refused(true);
  }
  // Outside the numbered stream: it opens it.
  Deliver(conn, MakeEvent(std::move(joined)), /*in_stream=*/false);

  ServerEvent peers;
  auto* list = peers.mutable_peers();
  for (const auto& [key, peer] : mesh.roster.in_join_order()) {
    if (peer != &member) *list->add_peers() = ToPeerInfo(*peer);
  }
  Deliver(conn, MakeEvent(std::move(peers)));

  ServerEvent announce;
  *announce.mutable_peer_joined()->mutable_peer() = ToPeerInfo(member);
  Fanout(mesh, &member, MakeEvent(std::move(announce)));
}

void RelayCore::StartTakeoverProbe(Connection& claimant, Connection& holder,
                                   const relay::v1::Register& reg) {
  const ConnectionId holder_id = holder.id;
  const ConnectionId claimant_id = claimant.id;
  const bool started = holder.sink->Probe(config_.takeover_probe_timeout,
                                          [this, holder_id, claimant_id](bool answered) {
                                            OnProbeAnswered(holder_id, claimant_id, answered);
                                          });
  if (!started) {
    // The transport cannot tell: the holder is presumed alive.
    SendError(
        claimant, ErrorCode::kNodeIdInUse,
        absl::StrCat("node_id ", QuoteForMessage(reg.node_id()), " is held by a live connection"));
    return;
  }
  log::Event(log::Level::kInfo, log::LogEvent::kTakeoverProbe)
      .Uint("conn", claimant_id)
      .Uint("holder", holder_id)
      .Str("mesh", reg.mesh_id())
      .Str("node", reg.node_id());
  holder.claimant = claimant_id;
  claimant.awaiting_holder = holder_id;
  claimant.pending_register = reg;
}

void RelayCore::OnProbeAnswered(ConnectionId holder_id, ConnectionId claimant_id, bool answered) {
  Connection* holder = Find(holder_id);
  if (holder != nullptr && holder->claimant == claimant_id) holder->claimant = 0;
  Connection* claimant = Find(claimant_id);
  if (claimant == nullptr || claimant->awaiting_holder != holder_id) return;  // settled already
  claimant->awaiting_holder = 0;
  relay::v1::Register reg = std::move(claimant->pending_register);
  claimant->pending_register.Clear();
  if (claimant->closing) return;
  if (answered && holder != nullptr && holder->registered() && !holder->closing) {
    SendError(*claimant, ErrorCode::kNodeIdInUse,
              absl::StrCat("node_id ", QuoteForMessage(reg.node_id()),
                           " is held by a live connection (it answered a liveness check)"));
  } else {
    // Admitted again from scratch: the mesh may have changed meanwhile.
    // OnAdmitted forgets probed_holder and replays what was held.
    claimant->probed_holder = holder_id;
    OnRegister(*claimant, reg);
    if (claimant->admitting || claimant->claim) return;  // OnAdmitted / OnClaimAnswered go on
    claimant->probed_holder = 0;
  }
  ReplayHeld(*claimant);
}

void RelayCore::Hold(Connection& conn, HeldEvent held) {
  const bool fits = conn.held.empty() ||
                    (conn.held.size() < config_.max_events_while_registering &&
                     conn.held_bytes + held.wire_bytes <= config_.max_bytes_while_registering);
  if (!fits) {
    limit_hits_.Add(Limit::kEventsWhileRegistering);
    SendError(conn, ErrorCode::kNotRegistered,
              absl::StrCat("the registration is still being checked; at most ",
                           config_.max_events_while_registering, " messages (",
                           config_.max_bytes_while_registering,
                           " bytes) wait for it; this message was not processed"));
    return;
  }
  conn.held_bytes += held.wire_bytes;
  conn.held.push_back(std::move(held));
  if (!conn.reading_paused) {
    conn.reading_paused = true;
    conn.sink->SetReading(false);
  }
}

void RelayCore::ReplayHeld(Connection& conn) {
  while (!conn.waiting() && !conn.closing && !conn.held.empty()) {
    HeldEvent held = std::move(conn.held.front());
    conn.held.pop_front();
    conn.held_bytes -= held.wire_bytes;
    if (held.undecodable) {
      SendError(conn, *held.undecodable, held.message, held.request_id_json);
    } else {
      Dispatch(conn, std::move(held.event));
    }
  }
  if (conn.closing) {
    conn.held.clear();
    conn.held_bytes = 0;
  }
  // Closing too: the transport must read the client's close frame.
  if (conn.held.empty() && conn.reading_paused) {
    conn.reading_paused = false;
    conn.sink->SetReading(true);
  }
}

void RelayCore::OnBroadcast(Connection& conn, relay::v1::Broadcast& msg) {
  ArenaEvent event;
  auto* out = event->mutable_message();
  out->set_from(conn.node_id);
  out->set_payload(std::move(*msg.mutable_payload()));
  out->set_broadcast(true);
  ServerEventPtr shared = std::move(event).Share();
  Fanout(*conn.mesh, conn.member, shared);
  if (!conn.mesh->roster.remote_instances().empty()) {
    // Once to each instance holding members, never once per member.
    LentDelivery lent(conn.mesh->id, *shared);
    lent.delivery().set_except_node(conn.node_id);
    if (!backplane_->Publish(lent.envelope())) {
      drops_.Add(DropReason::kUnreachable);
      RefuseUnreachable(conn, nullptr);
    }
  }
}

void RelayCore::OnDirect(Connection& conn, relay::v1::Direct& msg) {
  Member* target = conn.mesh->roster.Find(msg.target());
  if (target == nullptr) {
    SendError(conn, ErrorCode::kUnknownTarget,
              absl::StrCat("no peer ", QuoteForMessage(msg.target()), " in this mesh"));
    return;
  }
  ArenaEvent event;
  auto* out = event->mutable_message();
  out->set_from(conn.node_id);
  out->set_payload(std::move(*msg.mutable_payload()));
  if (target->local()) {
    Deliver(ConnectionOf(*target), std::move(event).Share());
  } else if (!SendRemote(*conn.mesh, *target, std::move(event).Share())) {
    RefuseUnreachable(conn, target);
  }
}

bool RelayCore::RefuseLongRequestId(Connection& conn, absl::string_view request_id) {
  if (request_id.size() <= config_.max_id_bytes) return false;
  limit_hits_.Add(Limit::kRequestIdBytes);
  SendError(conn, ErrorCode::kBadMessage,
            absl::StrCat("request_id must be at most ", config_.max_id_bytes, " bytes"));
  return true;
}

void RelayCore::OnLlmRequest(Connection& conn, relay::v1::LlmRequest& req) {
  ++llm_requests_;
  Mesh& mesh = *conn.mesh;
  if (RefuseLongRequestId(conn, req.request_id())) return;
  if (mesh.llm.RequestedBy(conn.id) >= config_.max_outstanding_llm_requests_per_peer) {
    limit_hits_.Add(Limit::kPendingLlmRequests);
    ++traffic_.llm_outcomes[static_cast<std::size_t>(LlmOutcome::kTooManyRequests)];
    SendError(conn, ErrorCode::kTooManyRequests,
              absl::StrCat("at most ", config_.max_outstanding_llm_requests_per_peer,
                           " llm requests may wait for an answer at once"),
              req.request_id());
    return;
  }
  if (mesh.llm.RequestedBytesBy(conn.id) + LlmDispatch::PendingBytes(req.request_id()) >
      config_.max_pending_llm_bytes_per_peer) {
    limit_hits_.Add(Limit::kPendingLlmBytes);
    ++traffic_.llm_outcomes[static_cast<std::size_t>(LlmOutcome::kTooManyRequests)];
    SendError(conn, ErrorCode::kTooManyRequests,
              absl::StrCat("the llm requests waiting for an answer may hold at most ",
                           config_.max_pending_llm_bytes_per_peer,
                           " bytes of request_id and bookkeeping at once"),
              req.request_id());
    return;
  }
  std::vector<LlmDispatch::Candidate> candidates;
  std::vector<Member*> candidate_members;  // beside `candidates`, index for index
  std::vector<LlmDispatch::Candidate> suspended;
  std::vector<Member*> suspended_members;
  for (const auto& [key, peer] : mesh.roster.in_join_order()) {
    if (peer == conn.member || !peer->CanServeLlm()) continue;
    const Connection* held = peer->local() ? &ConnectionOf(*peer) : nullptr;
    if (held != nullptr && held->closing) continue;
    const bool waiting = held != nullptr && held->suspended;
    (waiting ? suspended : candidates).push_back({key, peer->id, peer->llm_held_elsewhere_total});
    (waiting ? suspended_members : candidate_members).push_back(peer);
  }
  // A responder whose connection dropped gets a request only when no
  // connected one can take it: it answers once it is back, or the request
  // fails with llm_peer_left when its session ends.
  if (candidates.empty()) {
    candidates.swap(suspended);
    candidate_members.swap(suspended_members);
  }
  std::optional<MemberId> chosen = mesh.llm.Pick(candidates);
  if (!chosen) {
    ++traffic_.llm_outcomes[static_cast<std::size_t>(LlmOutcome::kNoLlmPeer)];
    SendError(conn, ErrorCode::kNoLlmPeer, "no other peer in this mesh has the llm capability",
              req.request_id());
    return;
  }
  Member* responder = nullptr;
  for (std::size_t i = 0; responder == nullptr; ++i) {
    if (candidates[i].id == *chosen) responder = candidate_members[i];
  }

  ArenaEvent event;
  auto* out = event->mutable_llm_request();
  out->set_from(conn.node_id);
  // A copy: the request lives on the transport's arena (or the heap), the
  // event on its own, and protobuf only swaps within one arena.
  *out->mutable_request() = req;
  if (responder->local()) {
    Deliver(ConnectionOf(*responder), std::move(event).Share());
  } else if (!SendRemote(mesh, *responder, std::move(event).Share())) {
    // Not tracked: no answer can come for it.
    ++traffic_.llm_outcomes[static_cast<std::size_t>(LlmOutcome::kClusterUnavailable)];
    RefuseUnreachable(conn, responder, req.request_id());
    return;
  }
  // Tracked after the send: the core thread handles the answer only later.
  mesh.llm.Track(conn.id, req.request_id(), *chosen, clock_->Now());
  if (backplane_->clustered()) PublishLlmLoad(mesh, {*chosen});
}

void RelayCore::OnLlmResponse(Connection& conn, relay::v1::LlmResponse& resp) {
  if (RefuseLongRequestId(conn, resp.request_id())) return;
  Member* target = conn.mesh->roster.Find(resp.target());
  if (target == nullptr) {
    SendError(conn, ErrorCode::kUnknownTarget,
              absl::StrCat("no peer ", QuoteForMessage(resp.target()), " in this mesh"),
              resp.request_id());
    return;
  }
  ArenaEvent event;
  auto* out = event->mutable_llm_response();
  out->set_from(conn.node_id);
  *out->mutable_response() = resp;  // a copy, as in OnLlmRequest
  if (target->local()) {
    Connection& requester = ConnectionOf(*target);
    SettleLlmRequest(*conn.mesh, requester, resp.request_id(), *conn.member);
    Deliver(requester, std::move(event).Share());
  } else if (!SendRemote(*conn.mesh, *target, std::move(event).Share())) {
    // The requester's instance settles it (it dispatched the request).
    RefuseUnreachable(conn, target, resp.request_id());
  }
}

void RelayCore::SettleLlmRequest(Mesh& mesh, Connection& requester, absl::string_view request_id,
                                 const Member& responder) {
  absl::Time dispatched_at;
  if (!mesh.llm.Settle(requester.id, request_id, responder.id, &dispatched_at)) return;
  ++traffic_.llm_outcomes[static_cast<std::size_t>(LlmOutcome::kAnswered)];
  if (llm_round_trip_observer_) llm_round_trip_observer_(clock_->Now() - dispatched_at);
  if (backplane_->clustered()) PublishLlmLoad(mesh, {responder.id});
}

void RelayCore::OnPing(Connection& conn) {
  ServerEvent event;
  event.mutable_pong()->set_timestamp(ToEpochSeconds(clock_->Now()));
  Deliver(conn, MakeEvent(std::move(event)));
}

void RelayCore::OnUnrouted(Connection& conn, const relay::v1::Unrouted& unrouted) {
  const std::optional<UnroutedType> type = UnroutedTypeFromWire(unrouted.type());
  if (!type) {
    SendError(conn, ErrorCode::kUnknownType, "unknown unrouted message type",
              unrouted.request_id());
    return;
  }
  ++traffic_.unrouted[static_cast<std::size_t>(*type)];
  // Shipped clients send these for peers that never answer here; an error
  // for each would show to the user as the app's last error. A sender that
  // waits for an answer (it gave a request_id) learns at once that none comes.
  if (unrouted.request_id().empty()) return;
  SendError(conn, ErrorCode::kUnknownType,
            absl::StrCat("this relay does not route \"", UnroutedTypeName(*type), "\" messages"),
            unrouted.request_id());
}

void RelayCore::OnCapabilitiesUpdate(Connection& conn,
                                     const relay::v1::CapabilitiesUpdate& update) {
  if (std::string invalid = ValidateCapabilities(update.capabilities()); !invalid.empty()) {
    SendError(conn, ErrorCode::kBadMessage, invalid);
    return;
  }
  SetCapabilities(*conn.member, update.capabilities(), config_.llm_capabilities);
  ServerEvent event;
  auto* out = event.mutable_peer_updated();
  out->set_node_id(conn.node_id);
  *out->mutable_capabilities() = update.capabilities();
  Fanout(*conn.mesh, conn.member, MakeEvent(std::move(event)));
  if (backplane_->clustered()) PublishMember(*conn.mesh, *conn.member, /*claimed=*/false);
}

void RelayCore::Disconnect(ConnectionId id, CloseReason reason, bool client_said_goodbye) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& conn = *it->second;
  if (conn.suspended) return;  // its transport reported its end already
  ++closes_[static_cast<std::size_t>(reason)];
  // The relay closes what it decided to close (CloseConnection ends the
  // session first); only a connection that broke waits for its client.
  const bool suspend = conn.session != nullptr && conn.registered() && !conn.closing &&
                       Suspends(reason, client_said_goodbye);
  log::Event(log::Level::kInfo, suspend ? log::LogEvent::kSuspend : log::LogEvent::kLeave)
      .Uint("conn", id)
      .Str("mesh", conn.registered() ? conn.mesh->id : "")
      .Str("node", conn.node_id)
      .Str("reason", CloseReasonName(reason))
      .Seconds("connected", clock_->Now() - conn.opened_at);
  if (suspend) {
    Suspend(conn);
  } else {
    conn.closing = true;
    DropSession(conn, SessionEnd::kClosed);
    if (conn.registered()) LeaveMesh(conn, /*announce=*/true);
    EndJoining(conn);
  }
  const ConnectionId claimant = std::exchange(conn.claimant, 0);
  // A claimant elsewhere waits on this holder: gone is silent.
  std::optional<Connection::RemoteClaimant> remote_claimant = std::move(conn.remote_claimant);
  conn.remote_claimant.reset();
  if (conn.awaiting_holder != 0) {
    if (Connection* holder = Find(conn.awaiting_holder);
        holder != nullptr && holder->claimant == id) {
      holder->claimant = 0;
    }
  }
  if (!suspend) connections_.erase(it);
  // The holder a claimant waited on is gone: its claim goes on.
  if (claimant != 0) OnProbeAnswered(id, claimant, /*answered=*/false);
  if (remote_claimant) {
    AnswerProbe(remote_claimant->instance, remote_claimant->mesh_id, remote_claimant->request,
                relay::v1::ProbeResult::SILENT);
  }
}

void RelayCore::LeaveMesh(Connection& conn, bool announce) {
  Mesh& mesh = *conn.mesh;
  const std::string node_id = conn.node_id;
  conn.mesh = nullptr;
  conn.member = nullptr;
  --registered_peers_;

  // What it asked for has no one to go to.
  std::vector<MemberId> asked;
  if (backplane_->clustered()) asked = mesh.llm.RespondersOf(conn.id);
  traffic_.llm_outcomes[static_cast<std::size_t>(LlmOutcome::kRequesterLeft)] +=
      mesh.llm.RequestedBy(conn.id);
  mesh.llm.RequesterGone(conn.id);
  if (!asked.empty()) PublishLlmLoad(mesh, asked);
  // A takeover's successor claims the id on its own; no release for it
  // (its entry is the successor's now).
  if (backplane_->clustered() && announce) {
    backplane_->ReleaseNode(mesh.id, node_id);
    relay::v1::BackplaneEnvelope envelope = Envelope(mesh);
    envelope.mutable_member_released()->set_node_id(node_id);
    envelope.mutable_member_released()->set_announce(true);
    backplane_->Publish(envelope);
  }
  RemoveMember(mesh, node_id, announce);
}

void RelayCore::RemoveMember(Mesh& mesh, std::string node_id, bool announce) {
  Member* member = mesh.roster.Find(node_id);
  if (member == nullptr) return;
  const MemberId id = member->id;
  mesh.roster.Remove(node_id);
  for (LlmDispatch::Pending& pending : mesh.llm.ResponderGone(id)) {
    ++traffic_.llm_outcomes[static_cast<std::size_t>(LlmOutcome::kPeerLeft)];
    Connection* requester = Find(pending.requester);
    if (requester == nullptr) continue;
    SendError(*requester, ErrorCode::kLlmPeerLeft,
              absl::StrCat("peer ", node_id, " left before answering"), pending.request_id);
  }
  if (announce) {
    ServerEvent event;
    event.mutable_peer_left()->set_node_id(node_id);
    Fanout(mesh, nullptr, MakeEvent(std::move(event)));
  }
  // A takeover (announce == false) refills the mesh at once: it was never
  // empty for its members or its token binding.
  if (!announce) return;
  if (mesh.roster.empty()) {
    auth_.MeshEmptied(mesh.id, clock_->Now());
    mesh.live = false;
    mesh.messages_relayed = 0;
  }
  MaybeForgetMesh(mesh);
}

void RelayCore::ExpireUnregistered() {
  auth_.Expire(clock_->Now(), [this](const std::string& mesh_id) {
    auto it = meshes_.find(mesh_id);
    return it != meshes_.end() && !it->second->roster.empty();
  });
  ExpireRemoteProbes();
  const absl::Time deadline = clock_->Now() - config_.registration_timeout;
  for (auto& [id, conn] : connections_) {
    if (!conn->registered() && !conn->closing && conn->opened_at <= deadline) {
      CloseConnection(*conn, CloseReason::kRegistrationTimeout);
    }
  }
}

void RelayCore::CloseConnection(Connection& conn, CloseReason reason) {
  if (conn.closing) return;
  conn.closing = true;
  // What the relay closes does not wait for a reconnect.
  DropSession(conn, SessionEndFor(reason));
  if (conn.suspended) {
    // Ended at the next tick, not here: callers may be walking the roster.
    suspended_to_end_.push_back(conn.id);
    return;
  }
  conn.sink->Close(reason);
}

void RelayCore::CloseAll(CloseReason reason) {
  for (auto& [id, conn] : connections_) CloseConnection(*conn, reason);
}

std::size_t RelayCore::Drain(absl::Duration grace) {
  draining_ = true;
  const auto grace_seconds =
      static_cast<std::uint32_t>(std::max<std::int64_t>(0, absl::ToInt64Seconds(grace)));
  std::size_t told = 0;
  for (auto& [id, conn] : connections_) {
    if (conn->closing || conn->suspended) continue;
    // One event per connection: each gets its own reconnect hint.
    ServerEvent event;
    auto* draining = event.mutable_server_draining();
    draining->set_grace_seconds(grace_seconds);
    draining->set_reconnect_after_ms(
        absl::Uniform<std::uint32_t>(jitter_, 0, limits::kMaxReconnectJitterMs));
    Deliver(*conn, MakeEvent(std::move(event)));
    ++told;
  }
  return told;
}

absl::Status RelayCore::Kick(absl::string_view mesh_id, absl::string_view node_id,
                             absl::string_view reason) {
  auto mesh_it = meshes_.find(std::string(mesh_id));
  if (mesh_it == meshes_.end() || mesh_it->second->roster.empty()) {
    return absl::NotFoundError(absl::StrCat("no live mesh ", QuoteForMessage(mesh_id)));
  }
  const Member* member = mesh_it->second->roster.Find(node_id);
  if (member == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no peer ", QuoteForMessage(node_id), " in mesh ", QuoteForMessage(mesh_id)));
  }
  if (!member->local()) {
    return absl::NotFoundError(absl::StrCat("peer ", QuoteForMessage(node_id),
                                            " is connected to relay instance ",
                                            QuoteForMessage(member->instance()), ", not this one"));
  }
  Connection& conn = ConnectionOf(*member);
  // Already on its way out (kicked, mesh closed, shutdown...): it keeps its
  // first reason and is not told twice.
  if (conn.closing) return absl::OkStatus();
  SendError(conn, ErrorCode::kKicked,
            reason.empty() ? "an operator closed this connection"
                           : absl::StrCat("an operator closed this connection: ", reason));
  CloseConnection(conn, CloseReason::kKicked);
  return absl::OkStatus();
}

void RelayCore::DescribeMeshAuth(const std::string& mesh_id, MeshAuth::DescribeDone done) {
  auth_.Describe(mesh_id, clock_->Now(), std::move(done));
}

void RelayCore::UnbindMesh(const std::string& mesh_id, std::function<void(absl::Status)> done) {
  auto mesh = meshes_.find(mesh_id);
  const bool live = mesh != meshes_.end() && !mesh->second->roster.empty();
  auth_.Unbind(mesh_id, live, std::move(done));
}

absl::StatusOr<std::size_t> RelayCore::CloseMesh(absl::string_view mesh_id,
                                                 absl::string_view reason) {
  auto mesh_it = meshes_.find(std::string(mesh_id));
  if (mesh_it == meshes_.end() || mesh_it->second->roster.empty()) {
    return absl::NotFoundError(absl::StrCat("no live mesh ", QuoteForMessage(mesh_id)));
  }
  const std::string message = reason.empty()
                                  ? std::string("an operator closed this mesh")
                                  : absl::StrCat("an operator closed this mesh: ", reason);
  std::size_t closed = 0;
  // The mesh goes away once its last peer's Disconnect arrives, later; the
  // map is not changed here.
  for (const auto& [key, member] : mesh_it->second->roster.in_join_order()) {
    if (!member->local()) continue;  // its own instance closes it
    Connection& peer = ConnectionOf(*member);
    if (peer.closing) continue;
    SendError(peer, ErrorCode::kMeshClosed, message);
    CloseConnection(peer, CloseReason::kMeshClosed);
    ++closed;
  }
  return closed;
}

void RelayCore::Deliver(Connection& to, const ServerEventPtr& event, bool in_stream) {
  if (to.closing) {
    drops_.Add(DropReason::kClosing);
    return;
  }
  if (to.session != nullptr && in_stream) {
    ResumeSession::Overflow overflow;
    const std::uint64_t seq = to.session->Append(event, FrameBytes(*event), &overflow);
    if (seq == 0) {
      // Nothing after this frame could be replayed in order: the session
      // ends (and with it the connection, or the wait for it).
      drops_.Add(DropReason::kResumeOverflow);
      if (overflow == ResumeSession::Overflow::kBudget) limit_hits_.Add(Limit::kResumeMemory);
      log::Event(log::Level::kWarn, DropReasonName(DropReason::kResumeOverflow))
          .Uint("conn", to.id)
          .Str("mesh", to.registered() ? to.mesh->id : "")
          .Str("node", to.node_id)
          .Str("bound", overflow == ResumeSession::Overflow::kBudget ? "memory" : "session")
          .Uint("unacked_bytes", to.session->unacked_bytes())
          .Uint("unacked_frames", to.session->unacked().size());
      CloseConnection(to, CloseReason::kResumeOverflow);
      return;
    }
    // Kept until acknowledged: a frame the transport cannot take now (it
    // is closing) is replayed when the client resumes, so it is no drop.
    if (!to.suspended) to.sink->SendSequenced(event, seq);
  } else {
    const SendResult sent = to.sink->Send(event);
    if (!sent.queued()) {
      drops_.Add(sent.reason());
      return;
    }
  }
  ++to.messages_out;
  // "Relayed" counts user traffic only, not the relay's own notices.
  std::optional<TrafficType> type;
  std::size_t payload_bytes = 0;
  switch (event->event_case()) {
    case ServerEvent::kMessage:
      type = event->message().broadcast() ? TrafficType::kBroadcast : TrafficType::kDirect;
      payload_bytes = event->message().payload().size();
      break;
    case ServerEvent::kLlmRequest:
      type = TrafficType::kLlmRequest;
      payload_bytes = event->llm_request().request().request_id().size() +
                      event->llm_request().request().members().size();
      break;
    case ServerEvent::kLlmResponse:
      type = TrafficType::kLlmResponse;
      payload_bytes = event->llm_response().response().request_id().size() +
                      event->llm_response().response().members().size();
      break;
    default:
      break;
  }
  if (type) {
    ++messages_relayed_;
    if (to.mesh != nullptr) ++to.mesh->messages_relayed;
    ++traffic_.deliveries[static_cast<std::size_t>(*type)];
    traffic_.payload_bytes[static_cast<std::size_t>(*type)] += payload_bytes;
  }
}

void RelayCore::SendError(Connection& to, ErrorCode code, absl::string_view message,
                          absl::string_view request_id_json) {
  ++errors_[static_cast<std::size_t>(code)];
  ServerEvent event;
  auto* error = event.mutable_error();
  error->set_code(std::string(ErrorCodeName(code)));
  error->set_message(std::string(message));
  // An over-long id is not echoed: it was refused for its size.
  if (request_id_json.size() <= config_.max_id_bytes) {
    error->set_request_id(std::string(request_id_json));
  }
  Deliver(to, MakeEvent(std::move(event)));
}

void RelayCore::Fanout(Mesh& mesh, const Member* except, const ServerEventPtr& event) {
  for (const auto& [key, member] : mesh.roster.in_join_order()) {
    if (member != except && member->local()) Deliver(ConnectionOf(*member), event);
  }
}

RelayCore::Connection* RelayCore::Find(ConnectionId id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second.get();
}

relay::v1::PeerInfo RelayCore::ToPeerInfo(const Member& member) const {
  relay::v1::PeerInfo info;
  SetMemberFields(member, info);
  return info;
}

}  // namespace relay::core
