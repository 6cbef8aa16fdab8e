// RelayCore: the single owner of relay state (meshes, peers, pending llm
// requests, counters) and of every routing rule of docs/protocol.md.
//
// It speaks relay.v1 protobuf events only: no JSON, no sockets. A transport
// (the WebSocket gateway, later gRPC Attach) calls Connect() for each new
// connection with a PeerSink, feeds decoded ClientEvents to Handle(), and
// reports the end of the connection with Disconnect().
//
// Threading: not thread-safe. Every method runs on the one core thread (the
// gateway's event loop); other threads post work to it (docs/threading.md).
// Start reading at Handle().
#ifndef RELAY_SERVER_CORE_RELAY_CORE_H_
#define RELAY_SERVER_CORE_RELAY_CORE_H_

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "relay/v1/relay.pb.h"
#include "server/core/backplane.h"
#include "server/core/clock.h"
#include "server/core/close_reason.h"
#include "server/core/connection_id.h"
#include "server/core/core_config.h"
#include "server/core/core_executor.h"
#include "server/core/delivery.h"
#include "server/core/error_code.h"
#include "server/core/expiry_queue.h"
#include "server/core/limit.h"
#include "server/core/llm_dispatch.h"
#include "server/core/mesh_auth.h"
#include "server/core/mesh_roster.h"
#include "server/core/peer_sink.h"
#include "server/core/rate_limiter.h"
#include "server/core/resume_session.h"
#include "server/core/traffic.h"
#include "server/store/auth_store.h"

namespace relay::core {

// What a transport knows about a connection when it opens.
struct ConnectionInfo {
  std::string remote_address;  // "ip:port"
  std::string transport;       // "ws", "wss" or "grpc"
  // The client's IP (behind a trusted proxy, the one it forwarded): what
  // per-IP bounds count by.
  std::string client_ip = {};
};

// Small, cheap counts for health probes.
struct HealthCounts {
  std::size_t meshes = 0;
  std::size_t peers = 0;  // registered connections
};

class RelayCore final : private BackplaneListener {
 public:
  // `clock` must outlive the core, and so must `auth_store` when given
  // (without one, authentication state lives in memory only) and
  // `executor`, through which work done on other threads (the auth store's)
  // comes back to the core thread.
  // `backplane` (optional, outliving the core) joins it to the cores of
  // other instances; without one it is a relay alone (NullBackplane).
  RelayCore(CoreConfig config, const Clock* clock, store::AuthStore* auth_store = nullptr,
            CoreExecutor* executor = nullptr, Backplane* backplane = nullptr);
  RelayCore(const RelayCore&) = delete;
  RelayCore& operator=(const RelayCore&) = delete;
  ~RelayCore();

  // A transport accepted a connection. The core keeps `sink` until
  // Disconnect(). Never fails.
  ConnectionId Connect(ConnectionInfo info, std::shared_ptr<PeerSink> sink);

  // One decoded client event, `wire_bytes` long as the client sent it (for
  // the byte rate limit; 0 counts nothing). Every answer (deliveries,
  // errors) goes out through the sinks before this returns, except while the
  // connection's registration waits (for its mesh's roster, the auth store's
  // answer or a takeover probe): its events are then held, in order, and
  // handled once it is decided.
  void Handle(ConnectionId id, const relay::v1::ClientEvent& event, std::size_t wire_bytes = 0);
  // The same, for a caller that is done with `event`: relayed payloads are
  // moved into the outgoing event instead of copied (the hot path).
  void Handle(ConnectionId id, relay::v1::ClientEvent&& event, std::size_t wire_bytes = 0);

  // The same in two steps, so that a transport decodes only what the rate
  // limits let through: AdmitFrame counts a frame of `wire_bytes` and checks
  // the connection's rate limits (false: refused, answered or closed; do not
  // decode it), then HandleAdmitted / RejectAdmitted handle what it was.
  bool AdmitFrame(ConnectionId id, std::size_t wire_bytes);
  void HandleAdmitted(ConnectionId id, relay::v1::ClientEvent&& event, std::size_t wire_bytes);
  void RejectAdmitted(ConnectionId id, ErrorCode code, absl::string_view message,
                      absl::string_view request_id_json, std::size_t wire_bytes);

  // The transport could not decode a frame into a ClientEvent (bad_json,
  // bad_message, unknown_type): answers the sender with an error and counts
  // it. `request_id_json` is the raw request_id when it could be read.
  void RejectUndecodable(ConnectionId id, ErrorCode code, absl::string_view message,
                         absl::string_view request_id_json = {}, std::size_t wire_bytes = 0);

  // The connection ended (any reason). Announces peer_left, fails requests it
  // held, removes an emptied mesh. Unknown ids are ignored.
  // A resume client's connection that dropped (anything but a close the
  // client asked for, `client_said_goodbye`, or one the relay decided) is
  // suspended instead: its member stays and its frames are kept until it
  // reconnects or RESUME_WINDOW_SECONDS pass (docs/protocol.md, "Resume").
  void Disconnect(ConnectionId id, CloseReason reason, bool client_said_goodbye = false);

  // Resume sessions' timers, every limits::kResumeAckInterval: the acks
  // owed to clients, sessions past their window, and suspended sessions
  // whose end was asked meanwhile.
  void ServiceResumeSessions();

  // Loads persisted authentication state (signed meshes, token bindings,
  // used nonces). Call once, before the first connection.
  absl::Status LoadAuthState();

  // Periodic housekeeping, about once a second: closes connections that
  // have not registered within the registration timeout, and forgets
  // expired token bindings and nonces.
  void ExpireUnregistered();

  // Asks every connection to close for `reason` (shutdown).
  void CloseAll(CloseReason reason);

  // Graceful shutdown, first step: every open connection is sent
  // server_draining (grace, jittered reconnect hint) and the core is marked
  // draining. Connections keep working; the caller closes them (CloseAll)
  // when the grace is over. Returns how many were told.
  std::size_t Drain(absl::Duration grace);
  bool draining() const { return draining_; }

  // Operator actions. The peer(s) get error `kicked` / `mesh_closed` with
  // `reason` in its message, then are closed. NOT_FOUND when absent.
  absl::Status Kick(absl::string_view mesh_id, absl::string_view node_id, absl::string_view reason);
  absl::StatusOr<std::size_t> CloseMesh(absl::string_view mesh_id, absl::string_view reason);
  // How `mesh_id` admits registrations, for the Admin API (MeshAuth::Describe):
  // `done` runs once on the core thread, perhaps inline.
  void DescribeMeshAuth(const std::string& mesh_id, MeshAuth::DescribeDone done);
  // Releases the token binding of an empty mesh (MeshAuth::Unbind); `done`
  // runs once on the core thread, perhaps inline.
  void UnbindMesh(const std::string& mesh_id, std::function<void(absl::Status)> done);

  // Called with the time from dispatch to the first answer of each answered
  // llm request (metrics). Optional.
  void set_llm_round_trip_observer(std::function<void(absl::Duration)> observer) {
    llm_round_trip_observer_ = std::move(observer);
  }

  // Read-only views for HTTP and Admin.
  HealthCounts Health() const;
  // Transport connections (suspended resume sessions have none).
  std::size_t OpenConnections() const { return connections_.size() - suspended_sessions_; }
  relay::v1::Stats GetStats() const;
  // Paged and sorted (relay::v1::ListMeshesRequest); INVALID_ARGUMENT for a
  // page token this relay did not hand out.
  absl::StatusOr<relay::v1::ListMeshesResponse> ListMeshesPage(
      const relay::v1::ListMeshesRequest& request) const;
  // Every live mesh, by mesh_id.
  relay::v1::ListMeshesResponse ListMeshes() const { return *ListMeshesPage({}); }
  const TrafficCounters& traffic() const { return traffic_; }
  // Refusals by each per-client bound.
  const LimitHits& limit_hits() const { return limit_hits_; }
  // Deliveries dropped (not handed to a connection), by reason.
  const DropCounts& drops() const { return drops_; }
  // Authentication records kept (bindings, signed meshes, used nonces).
  std::size_t auth_records() const { return auth_.records(); }
  absl::StatusOr<relay::v1::GetMeshResponse> GetMesh(absl::string_view mesh_id) const;

 private:
  struct Mesh;

  // A message that arrived while its connection's registration waited for a
  // takeover probe, kept to be handled in order afterwards.
  struct HeldEvent {
    relay::v1::ClientEvent event;
    std::size_t wire_bytes = 0;
    // Set for a frame the transport could not decode: the error to answer.
    std::optional<ErrorCode> undecodable;
    std::string message;
    std::string request_id_json;
  };

  // State of one transport connection.
  struct Connection : LocalConnection {
    ConnectionId id = 0;
    ConnectionInfo info;
    std::shared_ptr<PeerSink> sink;
    absl::Time opened_at;
    bool closing = false;  // Close() asked; no more deliveries

    // Set once registered: its mesh and its record in the mesh's roster.
    Mesh* mesh = nullptr;
    Member* member = nullptr;
    std::string node_id;

    // Between register and the end of its join: the mesh it joins (its
    // roster, when it must first be fetched, and its admission pending).
    Mesh* joining = nullptr;
    std::optional<relay::v1::Register> awaiting_roster;
    std::optional<relay::v1::RegisterMesh> awaiting_roster_founding;

    // Rate limits (token buckets on messages and on bytes).
    std::optional<RateLimiter> rate;

    // Open-mesh takeover. A claimant's registration waits for the probe of
    // `awaiting_holder` (pending_register and what it pipelines are kept);
    // a holder being probed names its one `claimant`. `probed_holder`: the
    // holder the claimant's re-run registration may take over unprobed.
    ConnectionId awaiting_holder = 0;
    relay::v1::Register pending_register;
    std::deque<HeldEvent> held;
    std::size_t held_bytes = 0;
    bool reading_paused = false;  // PeerSink::SetReading(false) while events are held
    ConnectionId claimant = 0;
    ConnectionId probed_holder = 0;
    // The auth store is deciding this connection's registration; what it
    // pipelines meanwhile is held as for a claimant.
    bool admitting = false;
    // Cluster mode: admitted, and waiting for its node entry's claim
    // (Backplane::ClaimNode); what it pipelines is held meanwhile.
    struct PendingClaim {
      relay::v1::Register reg;
      Admission admission;
      relay::v1::RosterMember entry;  // what it writes, the same each attempt
      // No default member initializer: clang refuses one in a class nested
      // this deep before RelayCore is complete (std::optional asks whether
      // it is constructible then). claim.emplace() value-initializes it: 0.
      int attempts;
      // An open mesh's holder on another instance, asked whether it is
      // alive (ProbeRequest); the claim waits for the ProbeResult.
      struct RemoteProbe {
        std::string instance;
        std::uint64_t revision;  // the holder's entry, claimed at it when silent
        absl::Time deadline;     // then presumed alive
      };
      std::optional<RemoteProbe> remote_probe;
    };
    std::optional<PendingClaim> claim;
    // On the holder's instance: the claimant elsewhere this connection is
    // being probed for (a ProbeRequest), answered when the probe ends.
    struct RemoteClaimant {
      std::string instance;
      std::string mesh_id;
      relay::v1::ProbeRequest request;
    };
    std::optional<RemoteClaimant> remote_claimant;

    std::uint64_t messages_in = 0;
    std::uint64_t messages_out = 0;

    // Resume (relay_core_resume.cc): its session, from a join that asked
    // for one. While `suspended`, the transport is gone (`sink` drops
    // everything) and deliveries only go into the session.
    std::unique_ptr<ResumeSession> session;
    bool suspended = false;
    // The registration asked to continue a session it could not: its
    // joined says "resumed": false.
    bool resume_refused = false;

    bool registered() const { return mesh != nullptr; }
    // Its registration is not decided yet: events wait in `held`.
    bool waiting() const {
      return admitting || awaiting_holder != 0 || awaiting_roster || claim.has_value();
    }
  };

  struct Mesh {
    std::string id;
    std::uint64_t serial = 0;  // tells a mesh apart from one followed again later
    // Users see a mesh from its first member until its last one leaves (a
    // takeover's successor refills it at once: it never empties). The object
    // lives longer, kept by registrations waiting for roster or admission,
    // so a mesh that empties while one waits starts a new life when it joins.
    bool live = false;
    absl::Time created_at;  // when its first member joined, this life
    MeshRoster roster;
    // False until the backplane knows the members other instances hold.
    bool roster_ready = false;
    std::vector<ConnectionId> awaiting_roster;
    // Connections between register and the end of their join: the mesh is
    // kept for them even while it has no member here.
    std::size_t joining = 0;
    std::uint64_t messages_relayed = 0;  // this life
    LlmDispatch llm;
  };

  // Handle() after the rate check: one event on its way to its handler.
  void Dispatch(Connection& conn, relay::v1::ClientEvent&& event);
  // Dispatch after a resume session's seq checks.
  void DispatchEvent(Connection& conn, relay::v1::ClientEvent&& event);
  void OnRegister(Connection& conn, const relay::v1::Register& reg);
  void OnRegisterMesh(Connection& conn, const relay::v1::RegisterMesh& request);
  // After the checks: waits for the mesh's roster when it is not known here
  // yet, then asks MeshAuth.
  void BeginRegistration(Connection& conn, const relay::v1::Register& reg,
                         const relay::v1::RegisterMesh* founding);
  void Admit(Connection& conn, const relay::v1::Register& reg,
             const relay::v1::RegisterMesh* founding);
  void OnRosterReady(const std::string& mesh_id, std::uint64_t serial);
  // `conn` no longer joins its mesh (joined, refused or gone).
  void EndJoining(Connection& conn);
  // Forgets a mesh with no member here and no one joining it.
  void MaybeForgetMesh(Mesh& mesh);
  // Call before adding a member that joined at `joined_at` (a remote one
  // may have joined before this instance saw the mesh).
  static void NoteMemberJoined(Mesh& mesh, absl::Time joined_at);
  // MeshAuth answered `id`'s registration (inline or later): joins it, or
  // refuses, then handles what it pipelined meanwhile.
  void OnAdmitted(ConnectionId id, const relay::v1::Register& reg, bool founding,
                  absl::StatusOr<Admission> admission);
  // Adds an admitted registrant to its mesh (taking the node_id over when
  // the credentials match, after a probe when they prove nothing) and sends
  // joined/peers/peer_joined. In cluster mode the node entry is claimed
  // first (ClaimNode), and the join completes when the claim is answered.
  void Join(Connection& conn, const relay::v1::Register& reg, Admission admission);
  // May `conn` take `reg`'s node_id from `holder`, a member this instance
  // holds? False when it may not (node_id_in_use answered) or not yet (a
  // liveness probe of the holder started).
  bool MayTakeOverLocal(Connection& conn, const relay::v1::Register& reg,
                        const Admission& admission, Member& holder);
  // The node_id is `conn`'s now (claimed at `revision` in cluster mode):
  // `holder`, its member in the roster if any, leaves silently, then
  // AddMember.
  void CompleteJoin(Connection& conn, const relay::v1::Register& reg, Admission admission,
                    std::uint64_t revision, Member* holder);
  void AddMember(Connection& conn, const relay::v1::Register& reg, Admission admission,
                 std::uint64_t revision);
  void RefuseMeshFull(Connection& conn, const std::string& mesh_id);
  // Cluster mode: asks for conn.claim's entry at `expected_revision`.
  void ClaimNode(Connection& conn, std::uint64_t expected_revision);
  void OnClaimAnswered(ConnectionId id, const std::string& mesh_id, const std::string& node_id,
                       NodeClaim answer);
  // The entry is held: claims it again when the rules let `conn` take it
  // over (conn.claim stays set), or answers why not (conn.claim reset).
  void OnClaimHeld(Connection& conn, const NodeClaim& answer);
  // Refuses a registration whose node entry could not be claimed:
  // cluster_unavailable, the connection stays open and may retry.
  void RefuseClaimUnavailable(Connection& conn, absl::string_view why);
  // Refuses an admission: auth_failed (then close), auth_unavailable or
  // rate_limited, as `status` says.
  void RefuseAdmission(Connection& conn, const absl::Status& status);
  // Takes a token from the connection's buckets (one message, `wire_bytes`
  // bytes); false (and answers or closes) when it is over its rate.
  bool AdmitByRate(Connection& conn, std::size_t wire_bytes);

  // Takeover probes: `claimant` waits while `holder` is asked whether it
  // is alive; the answer (or the holder's end) resumes the claimant.
  void StartTakeoverProbe(Connection& claimant, Connection& holder, const relay::v1::Register& reg);
  void OnProbeAnswered(ConnectionId holder_id, ConnectionId claimant_id, bool answered);
  // The same across instances (relay_core_remote.cc): the claimant asks the
  // holder's instance, which probes its connection and answers.
  void StartRemoteProbe(Connection& claimant, const NodeClaim& held);
  void OnProbeRequest(const relay::v1::BackplaneEnvelope& envelope);
  void OnRemoteProbeAnswered(ConnectionId holder_id, std::uint64_t probe_id, bool answered);
  void AnswerProbe(const std::string& instance, const std::string& mesh_id,
                   const relay::v1::ProbeRequest& request, relay::v1::ProbeResult::Answer answer);
  // Claims again after a remote probe (at the silent holder's revision, or
  // afresh), within kMaxNodeClaimAttempts.
  void ClaimAgain(Connection& conn, std::uint64_t expected_revision);
  void OnProbeResult(const relay::v1::BackplaneEnvelope& envelope);
  // Claimants whose holder's instance did not answer in time: presumed alive.
  void ExpireRemoteProbes();
  // What ends every claim: the join is decided, what was held is handled.
  void EndClaim(Connection& conn);
  // Keeps an event of a claimant that is waiting (bounded), or refuses it.
  void Hold(Connection& conn, HeldEvent held);
  // Handles what a claimant held, in order, until it waits again or closes.
  void ReplayHeld(Connection& conn);
  void OnBroadcast(Connection& conn, relay::v1::Broadcast& msg);
  void OnDirect(Connection& conn, relay::v1::Direct& msg);
  void OnLlmRequest(Connection& conn, relay::v1::LlmRequest& req);
  void OnLlmResponse(Connection& conn, relay::v1::LlmResponse& resp);
  // `responder` answered `requester`'s request: counts and forgets it.
  void SettleLlmRequest(Mesh& mesh, Connection& requester, absl::string_view request_id,
                        const Member& responder);
  // A request_id over max_id_bytes: bad_message (not echoed), counted; true
  // when refused. The dispatcher would keep such an id until the answer.
  bool RefuseLongRequestId(Connection& conn, absl::string_view request_id);
  void OnPing(Connection& conn);
  void OnCapabilitiesUpdate(Connection& conn, const relay::v1::CapabilitiesUpdate& update);
  void OnUnrouted(Connection& conn, const relay::v1::Unrouted& unrouted);

  // What register and register_mesh check before authentication: the
  // connection is not registered yet and the fields are valid. Otherwise
  // answers the error and returns false.
  bool CheckRegistration(Connection& conn, const relay::v1::Register& reg);
  // Validates register fields; empty string when valid, else the reason.
  std::string ValidateRegister(const relay::v1::Register& reg) const;
  std::string ValidateCapabilities(
      const google::protobuf::RepeatedPtrField<std::string>& caps) const;

  // Removes `conn` from its mesh: peer_left to the others (unless
  // `announce` is false), llm_peer_left to requesters it held, mesh removed
  // when empty (except on takeover, `announce` false, which refills it).
  void LeaveMesh(Connection& conn, bool announce);
  // Removes `node_id` (local or remote) from `mesh`'s roster with the same
  // consequences; a local member's connection must have left first.
  void RemoveMember(Mesh& mesh, std::string node_id, bool announce);

  // Resume sessions (relay_core_resume.cc).
  // Opens `conn`'s session when its registration asked for one and the
  // relay can keep it; false when it cannot (off, transport, bounds).
  bool OpenSession(Connection& conn, const relay::v1::Register& reg);
  // A registration that asks to continue a session: continues it on `conn`
  // (the old connection is closed "resumed" or was gone) and returns true,
  // or returns false: the join goes on as a fresh one.
  bool TryResume(Connection& conn, const relay::v1::Register& reg, const Admission& admission);
  // Would `reason` (with or without the client's own close frame) suspend
  // a session rather than end it?
  static bool Suspends(CloseReason reason, bool client_said_goodbye);
  void Suspend(Connection& conn);
  // Forgets `conn`'s session (its frames freed), counted as `why`.
  void DropSession(Connection& conn, SessionEnd why);
  // A suspended connection ends for good, as Disconnect would have ended
  // it: its member leaves (peer_left) unless it left already.
  void EndSuspended(ConnectionId id);
  // The client frame's seq, in a session: true to handle the frame, false
  // when it was answered (seq_required) or dropped (a resend).
  bool AdmitSeq(Connection& conn, const relay::v1::ClientEvent& event);
  // A client frame of a session was handled: an ack is owed.
  void NoteHandled(Connection& conn);
  void SendAck(Connection& conn);
  void OnAck(Connection& conn, const relay::v1::Ack& ack);
  // What a kept frame counts against the resume bounds.
  static std::size_t FrameBytes(const relay::v1::ServerEvent& event);
  relay::v1::SessionInfo SessionInfoOf(const ResumeSession& session) const;

  // The backplane (relay_core_remote.cc).
  void OnEnvelope(std::shared_ptr<relay::v1::BackplaneEnvelope> envelope) override;
  void OnInstanceGone(const std::string& instance_id) override;
  void OnRemoteClaim(Mesh& mesh, const relay::v1::RosterMember& claimed);
  // `envelope` holds a delivery; its event is shared with the recipients.
  void OnRemoteDelivery(Mesh& mesh, const std::shared_ptr<relay::v1::BackplaneEnvelope>& envelope);
  void OnRosterRequest(Mesh& mesh, const std::string& from_instance);
  // Hands `event` to `member`'s instance; false (counted as a drop) when
  // the backplane cannot carry it now.
  bool SendRemote(Mesh& mesh, const Member& member, const ServerEventPtr& event);
  // Tells `sender` that its event for `target` (nullptr: a broadcast's
  // other instances) could not cross: cluster_unavailable.
  void RefuseUnreachable(Connection& sender, const Member* target,
                         absl::string_view request_id_json = {});
  // Announces a local member's claim or update to the mesh's other instances.
  void PublishMember(Mesh& mesh, const Member& member, bool claimed);
  // Tells other instances this instance's llm load at each of `responders`.
  void PublishLlmLoad(Mesh& mesh, const std::vector<MemberId>& responders);
  relay::v1::RosterMember ToRosterMember(const Member& member) const;
  relay::v1::BackplaneEnvelope Envelope(const Mesh& mesh) const;
  // This instance's llm load at `member`, for the mesh's other instances.
  relay::v1::BackplaneEnvelope LlmLoadEnvelope(const Mesh& mesh, const Member& member) const;

  // Delivery: every outgoing event passes here (counting and closing checks).
  // `in_stream` false: a frame outside a resume session's numbered stream
  // (joined, resumed, ack), neither numbered nor kept.
  void Deliver(Connection& to, const ServerEventPtr& event, bool in_stream = true);
  // An error event; `request_id_json` is echoed when within the id bound.
  void SendError(Connection& to, ErrorCode code, absl::string_view message,
                 absl::string_view request_id_json = {});
  // The one way the core ends a connection: no more deliveries, and the
  // transport is asked to close (a connection already closing keeps its
  // first reason).
  void CloseConnection(Connection& conn, CloseReason reason);
  // Every member of `mesh` held here but `except` (may be null).
  void Fanout(Mesh& mesh, const Member* except, const ServerEventPtr& event);

  Connection* Find(ConnectionId id);
  // The connection of a member this instance holds (member.local()).
  static Connection& ConnectionOf(const Member& member) {
    return *static_cast<Connection*>(member.connection);
  }
  relay::v1::PeerInfo ToPeerInfo(const Member& member) const;
  std::size_t LiveMeshes() const;
  relay::v1::MeshSummary Summarize(const Mesh& mesh) const;

  const CoreConfig config_;
  const RateLimits rate_limits_;
  const Clock* const clock_;
  NullBackplane null_backplane_;
  Backplane* const backplane_;
  const absl::Time started_at_;
  store::MemoryAuthStore memory_auth_store_;
  LimitHits limit_hits_;  // before auth_, which counts into it
  MeshAuth auth_;

  ConnectionId next_connection_id_ = 1;
  MemberId next_member_id_ = 1;
  std::uint64_t next_mesh_serial_ = 1;
  std::uint64_t join_clock_ = 0;  // Lamport clock of joins (JoinKey)
  absl::flat_hash_map<ConnectionId, std::unique_ptr<Connection>> connections_;
  std::map<std::string, std::unique_ptr<Mesh>> meshes_;  // sorted for listing
  std::size_t registered_peers_ = 0;

  // Counters since start.
  std::uint64_t total_connections_ = 0;
  std::uint64_t messages_received_ = 0;
  std::uint64_t messages_relayed_ = 0;
  std::uint64_t llm_requests_ = 0;
  std::array<std::uint64_t, kErrorCodeCount> errors_{};
  std::array<std::uint64_t, kCloseReasonCount> closes_{};
  TrafficCounters traffic_;
  DropCounts drops_;
  std::function<void(absl::Duration)> llm_round_trip_observer_;
  bool draining_ = false;
  absl::BitGen jitter_;  // reconnect hints

  // Resume sessions: by id, the connection holding each; the suspended
  // ones' expiry; acks owed at the next tick; suspended connections whose
  // end was asked (CloseConnection), ended at the next tick.
  std::shared_ptr<PeerSink> suspended_sink_;
  ResumeBudget resume_budget_;
  absl::flat_hash_map<std::string, ConnectionId> sessions_;
  ExpiryQueue<ConnectionId> session_expiry_;
  absl::flat_hash_set<ConnectionId> acks_owed_;
  std::vector<ConnectionId> suspended_to_end_;
  std::size_t suspended_sessions_ = 0;
  std::uint64_t resumes_ = 0;
  std::uint64_t resumes_refused_ = 0;
  std::uint64_t replayed_frames_ = 0;
  std::uint64_t duplicate_frames_ = 0;
  SessionEndCounts sessions_ended_;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_RELAY_CORE_H_
