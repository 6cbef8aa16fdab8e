#include "server/core/relay_core.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/auth/crypto.h"
#include "server/core/arena_event.h"
#include "server/core/text_rules.h"
#include "server/util/log.h"

namespace relay::core {
namespace {

using relay::v1::ClientEvent;
using relay::v1::ServerEvent;

constexpr absl::string_view kLlmCapability = "llm";

ServerEventPtr MakeEvent(ServerEvent event) {
  return std::make_shared<const ServerEvent>(std::move(event));
}

// The first `n` UTF-8 characters of `s` (the seed server's default name).
std::string FirstChars(absl::string_view s, std::size_t n) {
  std::size_t i = 0;
  for (std::size_t chars = 0; i < s.size() && chars < n; ++chars) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
  }
  return std::string(s.substr(0, i));
}

// `s` quoted for an error message, cut to a readable length (a client may
// send a megabyte-long target; echoing it back helps no one).
std::string QuoteForMessage(absl::string_view s) {
  constexpr std::size_t kMaxChars = 64;
  std::string head = FirstChars(s, kMaxChars);
  const bool cut = head.size() < s.size();
  return absl::StrCat("\"", head, cut ? "...\"" : "\"");
}

// Upper bound of the reconnect hint in server_draining: clients spread their
// reconnects over this window instead of arriving all at once.
constexpr int kMaxReconnectJitterMs = 5000;

}  // namespace

absl::string_view LlmOutcomeName(LlmOutcome outcome) {
  switch (outcome) {
    case LlmOutcome::kAnswered:
      return "answered";
    case LlmOutcome::kNoLlmPeer:
      return "no_llm_peer";
    case LlmOutcome::kTooManyRequests:
      return "too_many_requests";
    case LlmOutcome::kPeerLeft:
      return "peer_left";
    case LlmOutcome::kRequesterLeft:
      return "requester_left";
  }
  return "unknown";
}

absl::string_view TrafficTypeName(TrafficType type) {
  switch (type) {
    case TrafficType::kBroadcast:
      return "broadcast";
    case TrafficType::kDirect:
      return "direct";
    case TrafficType::kLlmRequest:
      return "llm_request";
    case TrafficType::kLlmResponse:
      return "llm_response";
  }
  return "unknown";
}

bool RelayCore::Connection::CanServeLlm() const {
  return std::find(capabilities.begin(), capabilities.end(), kLlmCapability) !=
         capabilities.end();
}

RelayCore::RelayCore(CoreConfig config, const Clock* clock, store::AuthStore* auth_store,
                     CoreExecutor* executor)
    : config_(std::move(config)),
      clock_(clock),
      started_at_(clock->Now()),
      auth_(auth_store != nullptr ? auth_store : &memory_auth_store_, config_, &limit_hits_,
            executor) {}

absl::Status RelayCore::LoadAuthState() { return auth_.Load(clock_->Now()); }

RelayCore::~RelayCore() = default;

ConnectionId RelayCore::Connect(ConnectionInfo info, std::shared_ptr<PeerSink> sink) {
  auto conn = std::make_unique<Connection>();
  conn->id = next_connection_id_++;
  conn->info = std::move(info);
  conn->sink = std::move(sink);
  conn->opened_at = clock_->Now();
  conn->rate_tokens = static_cast<double>(config_.rate_limit_burst);
  conn->rate_byte_tokens = static_cast<double>(config_.rate_limit_burst_bytes);
  conn->rate_refilled_at = conn->opened_at;
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
  const bool by_count = config_.rate_limit_per_second > 0;
  const bool by_bytes = config_.rate_limit_bytes_per_second > 0 && wire_bytes > 0;
  if (!by_count && !by_bytes) return true;
  const absl::Time now = clock_->Now();
  const double elapsed = absl::ToDoubleSeconds(now - conn.rate_refilled_at);
  conn.rate_refilled_at = now;
  if (config_.rate_limit_per_second > 0) {
    conn.rate_tokens = std::min(static_cast<double>(config_.rate_limit_burst),
                                conn.rate_tokens + elapsed * config_.rate_limit_per_second);
  }
  if (config_.rate_limit_bytes_per_second > 0) {
    conn.rate_byte_tokens =
        std::min(static_cast<double>(config_.rate_limit_burst_bytes),
                 conn.rate_byte_tokens + elapsed * config_.rate_limit_bytes_per_second);
  }
  // A message larger than the whole burst waits for a full bucket.
  const double bytes_needed = std::min(static_cast<double>(wire_bytes),
                                       static_cast<double>(config_.rate_limit_burst_bytes));
  const bool count_ok = !by_count || conn.rate_tokens >= 1;
  const bool bytes_ok = !by_bytes || conn.rate_byte_tokens >= bytes_needed;
  if (count_ok && bytes_ok) {
    if (by_count) conn.rate_tokens -= 1;
    if (by_bytes) conn.rate_byte_tokens -= bytes_needed;
    conn.rate_refusals_in_row = 0;
    return true;
  }
  limit_hits_.Add(count_ok ? Limit::kByteRate : Limit::kMessageRate);
  // A client that keeps going after being told is closed: refusals cost us
  // an answer each.
  constexpr std::size_t kMaxRefusalsInRow = 100;
  if (++conn.rate_refusals_in_row == 1) {
    // Once per streak: a flood must not flood the log too.
    log::Event(log::Level::kWarn, "rate_limited")
        .Uint("conn", conn.id)
        .Str("mesh", conn.registered() ? conn.mesh->id : "")
        .Str("node", conn.node_id)
        .Str("limit", count_ok ? "bytes" : "messages")
        .Double("limit_per_second",
                count_ok ? config_.rate_limit_bytes_per_second : config_.rate_limit_per_second);
  }
  const std::size_t max_in_row =
      by_count ? std::min(config_.rate_limit_burst, kMaxRefusalsInRow) : kMaxRefusalsInRow;
  if (conn.rate_refusals_in_row >= max_in_row) {
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
  conn.admitting = true;
  auth_.AdmitRegister(reg, meshes_.count(reg.mesh_id()) > 0, conn.info.client_ip, clock_->Now(),
                      [this, id = conn.id, reg](absl::StatusOr<Admission> admission) {
                        OnAdmitted(id, reg, /*founding=*/false, std::move(admission));
                      });
}

void RelayCore::OnRegisterMesh(Connection& conn, const relay::v1::RegisterMesh& request) {
  const relay::v1::Register& reg = request.peer();
  if (!CheckRegistration(conn, reg)) return;
  conn.admitting = true;
  auth_.AdmitRegisterMesh(request, reg.mesh_id(), meshes_.count(reg.mesh_id()) > 0,
                          conn.info.client_ip, clock_->Now(),
                          [this, id = conn.id, reg](absl::StatusOr<Admission> admission) {
                            OnAdmitted(id, reg, /*founding=*/true, std::move(admission));
                          });
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
  conn->probed_holder = 0;  // a probe's answer serves one admission only
  ReplayHeld(*conn);
}

void RelayCore::RefuseAdmission(Connection& conn, const absl::Status& status) {
  // Bounds of the relay's own state: the client may retry later, unclosed.
  if (absl::IsUnavailable(status)) {
    SendError(conn, ErrorCode::kAuthUnavailable, status.message());
    return;
  }
  if (absl::IsResourceExhausted(status)) {
    log::Event(log::Level::kWarn, "auth_records_rate_limited")
        .Uint("conn", conn.id)
        .Str("client_ip", conn.info.client_ip);
    SendError(conn, ErrorCode::kRateLimited, status.message());
    return;
  }
  log::Event(log::Level::kWarn, "auth_failed")
      .Uint("conn", conn.id)
      .Str("remote", conn.info.remote_address)
      .Str("why", status.message());
  SendError(conn, ErrorCode::kAuthFailed, status.message());
  CloseConnection(conn, CloseReason::kAuthFailed);
}

void RelayCore::Join(Connection& conn, const relay::v1::Register& reg, Admission admission) {
  std::string credential = std::move(admission.credential);
  auto mesh_it = meshes_.find(reg.mesh_id());
  if (mesh_it != meshes_.end()) {
    auto holder_it = mesh_it->second->peers_by_node.find(reg.node_id());
    if (holder_it != mesh_it->second->peers_by_node.end()) {
      Connection& holder = *holder_it->second;
      // Only the same credentials may take a node_id over (a phone that
      // reconnects before the relay noticed its old socket died).
      if (!auth::ConstantTimeEquals(holder.credential, credential)) {
        SendError(conn, ErrorCode::kNodeIdInUse,
                  absl::StrCat("node_id ", QuoteForMessage(reg.node_id()),
                               " is held by another connection with other credentials"));
        return;
      }
      // Equal credentials that prove nothing (an open mesh) are anyone's:
      // the id moves only when its holder is gone. A holder already closing
      // is gone.
      if (!admission.proves_node && !holder.closing && holder.id != conn.probed_holder) {
        if (holder.claimant != 0) {
          SendError(conn, ErrorCode::kNodeIdInUse,
                    absl::StrCat("node_id ", QuoteForMessage(reg.node_id()),
                                 " is held by a connection that is being checked for another "
                                 "claim; retry in a few seconds"));
          return;
        }
        StartTakeoverProbe(conn, holder, reg);
        return;
      }
      LeaveMesh(holder, /*announce=*/false);
      // A holder already closing (e.g. during shutdown) keeps its reason.
      CloseConnection(holder, CloseReason::kReplaced);
    } else if (mesh_it->second->peers_by_join.size() >= config_.max_peers_per_mesh) {
      limit_hits_.Add(Limit::kPeersPerMesh);
      log::Event(log::Level::kWarn, "mesh_full")
          .Uint("conn", conn.id)
          .Str("mesh", reg.mesh_id())
          .Uint("max_peers", config_.max_peers_per_mesh);
      SendError(conn, ErrorCode::kMeshFull,
                absl::StrCat("this mesh already has ", config_.max_peers_per_mesh, " peers"));
      return;
    }
  }
  if (mesh_it == meshes_.end()) {
    auto mesh = std::make_unique<Mesh>();
    mesh->id = reg.mesh_id();
    mesh->created_at = clock_->Now();
    mesh_it = meshes_.emplace(reg.mesh_id(), std::move(mesh)).first;
  }
  Mesh& mesh = *mesh_it->second;

  conn.mesh = &mesh;
  conn.join_seq = mesh.next_join_seq++;
  conn.node_id = reg.node_id();
  conn.name = reg.name().empty() ? FirstChars(reg.node_id(), 8) : reg.name();
  conn.capabilities.assign(reg.capabilities().begin(), reg.capabilities().end());
  conn.credential = std::move(credential);
  conn.joined_at = clock_->Now();
  mesh.peers_by_join.emplace(conn.join_seq, &conn);
  mesh.peers_by_node.emplace(conn.node_id, &conn);
  ++registered_peers_;

  log::Event(log::Level::kInfo, "register")
      .Uint("conn", conn.id)
      .Str("mesh", mesh.id)
      .Str("node", conn.node_id)
      .Str("transport", conn.info.transport)
      .Uint("peers", mesh.peers_by_join.size());

  // The newcomer first learns it joined (the shipped Android app waits for
  // it), then who else is here; the others learn about the newcomer.
  ServerEvent joined;
  joined.mutable_joined()->set_mesh_id(mesh.id);
  joined.mutable_joined()->set_node_count(static_cast<std::uint32_t>(mesh.peers_by_join.size()));
  Deliver(conn, MakeEvent(std::move(joined)));

  ServerEvent peers;
  auto* list = peers.mutable_peers();
  for (const auto& [seq, peer] : mesh.peers_by_join) {
    if (peer != &conn) *list->add_peers() = ToPeerInfo(*peer);
  }
  Deliver(conn, MakeEvent(std::move(peers)));

  ServerEvent announce;
  *announce.mutable_peer_joined()->mutable_peer() = ToPeerInfo(conn);
  Fanout(mesh, &conn, MakeEvent(std::move(announce)));
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
  log::Event(log::Level::kInfo, "takeover_probe")
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
    if (claimant->admitting) return;  // OnAdmitted goes on
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
}

void RelayCore::OnBroadcast(Connection& conn, relay::v1::Broadcast& msg) {
  ArenaEvent event;
  auto* out = event->mutable_message();
  out->set_from(conn.node_id);
  out->set_payload(std::move(*msg.mutable_payload()));
  out->set_broadcast(true);
  Fanout(*conn.mesh, &conn, std::move(event).Share());
}

void RelayCore::OnDirect(Connection& conn, relay::v1::Direct& msg) {
  auto it = conn.mesh->peers_by_node.find(msg.target());
  if (it == conn.mesh->peers_by_node.end()) {
    SendError(conn, ErrorCode::kUnknownTarget,
              absl::StrCat("no peer ", QuoteForMessage(msg.target()), " in this mesh"));
    return;
  }
  ArenaEvent event;
  auto* out = event->mutable_message();
  out->set_from(conn.node_id);
  out->set_payload(std::move(*msg.mutable_payload()));
  Deliver(*it->second, std::move(event).Share());
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
  for (const auto& [seq, peer] : mesh.peers_by_join) {
    if (peer != &conn && !peer->closing && peer->CanServeLlm()) {
      candidates.push_back({seq, peer->id});
    }
  }
  std::optional<ConnectionId> chosen = mesh.llm.Pick(candidates);
  if (!chosen) {
    ++traffic_.llm_outcomes[static_cast<std::size_t>(LlmOutcome::kNoLlmPeer)];
    SendError(conn, ErrorCode::kNoLlmPeer, "no other peer in this mesh has the llm capability",
              req.request_id());
    return;
  }
  mesh.llm.Track(conn.id, req.request_id(), *chosen, clock_->Now());

  ArenaEvent event;
  auto* out = event->mutable_llm_request();
  out->set_from(conn.node_id);
  // A copy: the request lives on the transport's arena (or the heap), the
  // event on its own, and protobuf only swaps within one arena.
  *out->mutable_request() = req;
  Deliver(*Find(*chosen), std::move(event).Share());
}

void RelayCore::OnLlmResponse(Connection& conn, relay::v1::LlmResponse& resp) {
  if (RefuseLongRequestId(conn, resp.request_id())) return;
  auto it = conn.mesh->peers_by_node.find(resp.target());
  if (it == conn.mesh->peers_by_node.end()) {
    SendError(conn, ErrorCode::kUnknownTarget,
              absl::StrCat("no peer ", QuoteForMessage(resp.target()), " in this mesh"), resp.request_id());
    return;
  }
  Connection& target = *it->second;
  absl::Time dispatched_at;
  if (conn.mesh->llm.Settle(target.id, resp.request_id(), conn.id, &dispatched_at)) {
    ++traffic_.llm_outcomes[static_cast<std::size_t>(LlmOutcome::kAnswered)];
    if (llm_round_trip_observer_) llm_round_trip_observer_(clock_->Now() - dispatched_at);
  }

  ArenaEvent event;
  auto* out = event->mutable_llm_response();
  out->set_from(conn.node_id);
  *out->mutable_response() = resp;  // a copy, as in OnLlmRequest
  Deliver(target, std::move(event).Share());
}

void RelayCore::OnPing(Connection& conn) {
  ServerEvent event;
  event.mutable_pong()->set_timestamp(EpochSeconds(clock_->Now()));
  Deliver(conn, MakeEvent(std::move(event)));
}

void RelayCore::OnCapabilitiesUpdate(Connection& conn,
                                     const relay::v1::CapabilitiesUpdate& update) {
  if (std::string invalid = ValidateCapabilities(update.capabilities()); !invalid.empty()) {
    SendError(conn, ErrorCode::kBadMessage, invalid);
    return;
  }
  conn.capabilities.assign(update.capabilities().begin(), update.capabilities().end());
  ServerEvent event;
  auto* out = event.mutable_peer_updated();
  out->set_node_id(conn.node_id);
  *out->mutable_capabilities() = update.capabilities();
  Fanout(*conn.mesh, &conn, MakeEvent(std::move(event)));
}

void RelayCore::Disconnect(ConnectionId id, CloseReason reason) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& conn = *it->second;
  conn.closing = true;
  ++closes_[static_cast<std::size_t>(reason)];
  log::Event(log::Level::kInfo, "leave")
      .Uint("conn", id)
      .Str("mesh", conn.registered() ? conn.mesh->id : "")
      .Str("node", conn.node_id)
      .Str("reason", CloseReasonName(reason))
      .Seconds("connected", clock_->Now() - conn.opened_at);
  if (conn.registered()) LeaveMesh(conn, /*announce=*/true);
  const ConnectionId claimant = conn.claimant;
  if (conn.awaiting_holder != 0) {
    if (Connection* holder = Find(conn.awaiting_holder);
        holder != nullptr && holder->claimant == id) {
      holder->claimant = 0;
    }
  }
  connections_.erase(it);
  // The holder a claimant waited on is gone: its claim goes on.
  if (claimant != 0) OnProbeAnswered(id, claimant, /*answered=*/false);
}

void RelayCore::LeaveMesh(Connection& conn, bool announce) {
  Mesh& mesh = *conn.mesh;
  mesh.peers_by_join.erase(conn.join_seq);
  mesh.peers_by_node.erase(conn.node_id);
  conn.mesh = nullptr;
  --registered_peers_;

  traffic_.llm_outcomes[static_cast<std::size_t>(LlmOutcome::kRequesterLeft)] +=
      mesh.llm.RequestedBy(conn.id);
  mesh.llm.RequesterGone(conn.id);
  for (LlmDispatch::Pending& pending : mesh.llm.ResponderGone(conn.id)) {
    ++traffic_.llm_outcomes[static_cast<std::size_t>(LlmOutcome::kPeerLeft)];
    Connection* requester = Find(pending.requester);
    if (requester == nullptr) continue;
    SendError(*requester, ErrorCode::kLlmPeerLeft,
              absl::StrCat("peer ", conn.node_id, " left before answering"), pending.request_id);
  }
  if (announce) {
    ServerEvent event;
    event.mutable_peer_left()->set_node_id(conn.node_id);
    Fanout(mesh, nullptr, MakeEvent(std::move(event)));
  }
  // A takeover (announce == false) refills the mesh at once: it was never
  // empty for its members or its token binding.
  if (announce && mesh.peers_by_join.empty()) {
    auth_.MeshEmptied(mesh.id, clock_->Now());
    meshes_.erase(mesh.id);
  }
}

void RelayCore::ExpireUnregistered() {
  auth_.Expire(clock_->Now(),
               [this](const std::string& mesh_id) { return meshes_.count(mesh_id) > 0; });
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
    if (conn->closing) continue;
    // One event per connection: each gets its own reconnect hint.
    ServerEvent event;
    auto* draining = event.mutable_server_draining();
    draining->set_grace_seconds(grace_seconds);
    draining->set_reconnect_after_ms(absl::Uniform<std::uint32_t>(jitter_, 0, kMaxReconnectJitterMs));
    Deliver(*conn, MakeEvent(std::move(event)));
    ++told;
  }
  return told;
}

absl::Status RelayCore::Kick(absl::string_view mesh_id, absl::string_view node_id,
                             absl::string_view reason) {
  auto mesh_it = meshes_.find(std::string(mesh_id));
  if (mesh_it == meshes_.end()) {
    return absl::NotFoundError(absl::StrCat("no live mesh ", QuoteForMessage(mesh_id)));
  }
  auto peer_it = mesh_it->second->peers_by_node.find(node_id);
  if (peer_it == mesh_it->second->peers_by_node.end()) {
    return absl::NotFoundError(absl::StrCat("no peer ", QuoteForMessage(node_id), " in mesh ",
                                            QuoteForMessage(mesh_id)));
  }
  Connection& conn = *peer_it->second;
  // Already on its way out (kicked, mesh closed, shutdown...): it keeps its
  // first reason and is not told twice.
  if (conn.closing) return absl::OkStatus();
  SendError(conn, ErrorCode::kKicked,
            reason.empty() ? "an operator closed this connection"
                           : absl::StrCat("an operator closed this connection: ", reason));
  CloseConnection(conn, CloseReason::kKicked);
  return absl::OkStatus();
}

absl::StatusOr<std::size_t> RelayCore::CloseMesh(absl::string_view mesh_id,
                                                 absl::string_view reason) {
  auto mesh_it = meshes_.find(std::string(mesh_id));
  if (mesh_it == meshes_.end()) {
    return absl::NotFoundError(absl::StrCat("no live mesh ", QuoteForMessage(mesh_id)));
  }
  const std::string message = reason.empty()
                                  ? std::string("an operator closed this mesh")
                                  : absl::StrCat("an operator closed this mesh: ", reason);
  std::size_t closed = 0;
  // The mesh goes away once its last peer's Disconnect arrives, later; the
  // map is not changed here.
  for (const auto& [seq, peer] : mesh_it->second->peers_by_join) {
    if (peer->closing) continue;
    SendError(*peer, ErrorCode::kMeshClosed, message);
    CloseConnection(*peer, CloseReason::kMeshClosed);
    ++closed;
  }
  return closed;
}

void RelayCore::Deliver(Connection& to, const ServerEventPtr& event) {
  if (to.closing) {
    drops_.Add(DropReason::kClosing);
    return;
  }
  const SendResult sent = to.sink->Send(event);
  if (!sent.queued()) {
    drops_.Add(sent.reason());
    return;
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

void RelayCore::Fanout(Mesh& mesh, const Connection* except, const ServerEventPtr& event) {
  for (const auto& [seq, peer] : mesh.peers_by_join) {
    if (peer != except) Deliver(*peer, event);
  }
}

RelayCore::Connection* RelayCore::Find(ConnectionId id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second.get();
}

relay::v1::PeerInfo RelayCore::ToPeerInfo(const Connection& conn) const {
  relay::v1::PeerInfo info;
  info.set_node_id(conn.node_id);
  info.set_name(conn.name);
  for (const std::string& cap : conn.capabilities) info.add_capabilities(cap);
  info.set_joined_at(EpochSeconds(conn.joined_at));
  return info;
}

double RelayCore::EpochSeconds(absl::Time t) const {
  return absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

HealthCounts RelayCore::Health() const { return HealthCounts{meshes_.size(), registered_peers_}; }

relay::v1::Stats RelayCore::GetStats() const {
  relay::v1::Stats stats;
  stats.set_uptime_seconds(absl::ToDoubleSeconds(clock_->Now() - started_at_));
  stats.set_active_meshes(static_cast<std::uint32_t>(meshes_.size()));
  stats.set_open_sockets(static_cast<std::uint32_t>(connections_.size()));
  stats.set_registered_peers(static_cast<std::uint32_t>(registered_peers_));
  stats.set_auth_records(static_cast<std::uint32_t>(auth_.records()));
  stats.set_total_connections(total_connections_);
  stats.set_messages_received(messages_received_);
  stats.set_messages_relayed(messages_relayed_);
  stats.set_llm_requests(llm_requests_);
  for (ErrorCode code : kAllErrorCodes) {
    auto* count = stats.add_errors();
    count->set_code(std::string(ErrorCodeName(code)));
    count->set_count(errors_[static_cast<std::size_t>(code)]);
  }
  for (std::size_t i = 0; i < kLimitCount; ++i) {
    auto* count = stats.add_limits();
    count->set_limit(std::string(kLimitNames[i]));
    count->set_count(limit_hits_.Get(static_cast<Limit>(i)));
  }
  for (std::size_t i = 0; i < kDropReasonCount; ++i) {
    auto* count = stats.add_drops();
    count->set_reason(std::string(kDropReasonNames[i]));
    count->set_count(drops_.Get(static_cast<DropReason>(i)));
  }
  for (std::size_t i = 0; i < kCloseReasonCount; ++i) {
    auto* count = stats.add_closes();
    count->set_reason(std::string(CloseReasonName(static_cast<CloseReason>(i))));
    count->set_count(closes_[i]);
  }
#ifdef RELAY_VERSION
  stats.set_version(RELAY_VERSION);
#endif
  return stats;
}

relay::v1::MeshSummary RelayCore::Summarize(const Mesh& mesh) const {
  relay::v1::MeshSummary summary;
  summary.set_mesh_id(mesh.id);
  summary.set_peer_count(static_cast<std::uint32_t>(mesh.peers_by_join.size()));
  summary.set_created_at(EpochSeconds(mesh.created_at));
  summary.set_messages_relayed(mesh.messages_relayed);
  return summary;
}

absl::StatusOr<relay::v1::ListMeshesResponse> RelayCore::ListMeshesPage(
    const relay::v1::ListMeshesRequest& request) const {
  std::size_t offset = 0;
  if (!request.page_token().empty() && !absl::SimpleAtoi(request.page_token(), &offset)) {
    return absl::InvalidArgumentError("page_token was not handed out by this relay");
  }
  std::vector<const Mesh*> order;
  order.reserve(meshes_.size());
  for (const auto& [id, mesh] : meshes_) order.push_back(mesh.get());  // by mesh_id
  using Request = relay::v1::ListMeshesRequest;
  if (request.order() == Request::ORDER_PEERS) {
    std::stable_sort(order.begin(), order.end(), [](const Mesh* a, const Mesh* b) {
      return a->peers_by_join.size() > b->peers_by_join.size();
    });
  } else if (request.order() == Request::ORDER_TRAFFIC) {
    std::stable_sort(order.begin(), order.end(), [](const Mesh* a, const Mesh* b) {
      return a->messages_relayed > b->messages_relayed;
    });
  }
  relay::v1::ListMeshesResponse response;
  response.set_total_meshes(static_cast<std::uint32_t>(order.size()));
  offset = std::min(offset, order.size());  // a token past the end: an empty last page
  const std::size_t end = request.page_size() == 0
                              ? order.size()
                              : offset + std::min<std::size_t>(request.page_size(),
                                                               order.size() - offset);
  for (std::size_t i = offset; i < end; ++i) *response.add_meshes() = Summarize(*order[i]);
  if (end < order.size()) response.set_next_page_token(absl::StrCat(end));
  return response;
}

absl::StatusOr<relay::v1::GetMeshResponse> RelayCore::GetMesh(absl::string_view mesh_id) const {
  auto it = meshes_.find(std::string(mesh_id));
  if (it == meshes_.end()) {
    return absl::NotFoundError(absl::StrCat("no live mesh ", QuoteForMessage(mesh_id)));
  }
  relay::v1::GetMeshResponse response;
  *response.mutable_mesh() = Summarize(*it->second);
  for (const auto& [seq, peer] : it->second->peers_by_join) {
    auto* detail = response.add_peers();
    detail->set_node_id(peer->node_id);
    detail->set_name(peer->name);
    for (const std::string& cap : peer->capabilities) detail->add_capabilities(cap);
    detail->set_joined_at(EpochSeconds(peer->joined_at));
    detail->set_remote_address(peer->info.remote_address);
    detail->set_transport(peer->info.transport);
    detail->set_messages_in(peer->messages_in);
    detail->set_messages_out(peer->messages_out);
    const PeerSink::Counters counters = peer->sink->counters();
    detail->set_bytes_in(counters.bytes_in);
    detail->set_bytes_out(counters.bytes_out);
    detail->set_queued_bytes(counters.queued_bytes);
  }
  return response;
}

}  // namespace relay::core
