// LogEvent: the name of every structured log line (log::Event) that is not
// also a counter's name, as one enum and one table. Operators search and
// count these names (docs/operations.md "Logs" lists each one), so they are
// stable; never rename one.
//
// A line about something the relay also counts is named by that counter's
// own name function, never by a literal: a close as
// core::CloseReasonName(kSlowConsumer), a refusal answered with an error as
// core::ErrorCodeName(kRateLimited / kAuthFailed / kMeshFull). Then the log,
// /stats and /metrics cannot disagree on a spelling.
#ifndef RELAY_SERVER_UTIL_LOG_EVENTS_H_
#define RELAY_SERVER_UTIL_LOG_EVENTS_H_

#include <array>
#include <cstddef>

#include "absl/strings/string_view.h"

namespace relay::log {

enum class LogEvent {
  kConnect,                 // a transport accepted a connection (ws, wss, grpc)
  kRegister,                // a connection joined a mesh
  kLeave,                   // a registered connection left its mesh, with the close reason
  kTakeoverProbe,           // a node_id's holder is asked whether it is alive
  kAuthRecordsFull,         // MAX_AUTH_RECORDS reached: no new binding, signed mesh or nonce
  kAuthRecordsRateLimited,  // one client IP created too many auth records this minute
  kSignedMeshExpired,       // a signed mesh unused for SIGNED_MESH_TTL_DAYS was forgotten
  kConnectionLimit,         // an upgrade was refused: MAX_CONNECTIONS(_PER_IP)
  kHandshakeLimit,        // a TCP connection was closed at accept: MAX_PENDING_HANDSHAKES(_PER_IP)
  kAcceptBackoff,         // accept() ran out of fds or memory: pausing
  kAcceptResumed,         // accepting again after an accept_backoff
  kDrain,                 // a graceful shutdown began
  kDrainClose,            // its grace is over: the remaining connections are closed
  kAuthStoreUnavailable,  // the auth store did not answer a registration (auth_unavailable)
  kInstanceGone,          // another relay instance is gone: its members left
  kBackplaneUnreachable,  // a roster change could not reach the mesh's other instances
  kNodeClaimConflict,     // two instances admitted one node_id at once
  kMeshFullRemote,        // another instance's member joined a mesh already full here
  kBackplaneReset,        // a link to an instance dropped unacked frames: rosters resync
  kNatsUnreachable,       // cluster mode cannot reach NATS (at start, or lost): not ready
  kRosterTimeout,         // an instance did not answer a roster request in time
  kInstanceFenced,        // this instance was declared dead by the others: it stops
  kKvConfigDiffers,       // a KV bucket exists with other settings: shared as it is
  kDeadInstanceSwept,     // what a dead instance left in the KV buckets was removed
  kListening,             // a listener is bound and accepting (the "relay: listening" line)
  kGrpcLog,               // a line gRPC's own runtime logged, in the relay's format
  kConfigInvalid,         // the relay refused to start: a setting is wrong
  kAdminKick,             // an operator kicked a peer (relayctl peers kick)
  kAdminCloseMesh,        // an operator closed a mesh (relayctl meshes close)
  kAdminDrain,            // an operator started a drain (relayctl drain)
  kAdminLogLevel,         // an operator changed LOG_LEVEL (relayctl log-level)
  kAdminUnbind,           // an operator released a mesh's token binding (relayctl meshes unbind)
  kAdminRefused,          // an Admin call without the right ADMIN_TOKEN was refused
  kSuspend,               // a resume client's connection dropped: its session waits for it
  kResume,                // a resume client reconnected and its session continued
  kSessionEnd,            // a resume session ended (expired, overflow, closed, replaced)
};

// One entry per LogEvent, in order: the compiler checks the table is whole.
inline constexpr std::array<absl::string_view, 36> kLogEventNames = {
    "connect",
    "register",
    "leave",
    "takeover_probe",
    "auth_records_full",
    "auth_records_rate_limited",
    "signed_mesh_expired",
    "connection_limit",
    "handshake_limit",
    "accept_backoff",
    "accept_resumed",
    "drain",
    "drain_close",
    "auth_store_unavailable",
    "instance_gone",
    "backplane_unreachable",
    "node_claim_conflict",
    "mesh_full_remote",
    "backplane_reset",
    "nats_unreachable",
    "roster_timeout",
    "instance_fenced",
    "kv_config_differs",
    "dead_instance_swept",
    "listening",
    "grpc_log",
    "config_invalid",
    "admin_kick",
    "admin_close_mesh",
    "admin_drain",
    "admin_log_level",
    "admin_unbind",
    "admin_refused",
    "suspend",
    "resume",
    "session_end",
};
inline constexpr std::size_t kLogEventCount = kLogEventNames.size();
static_assert(static_cast<std::size_t>(LogEvent::kSessionEnd) + 1 == kLogEventCount,
              "kLogEventNames must name every LogEvent");

inline absl::string_view LogEventName(LogEvent event) {
  return kLogEventNames[static_cast<std::size_t>(event)];
}

}  // namespace relay::log

#endif  // RELAY_SERVER_UTIL_LOG_EVENTS_H_
