// Every fixed limit of the relay in one place: the bounds, timeouts and
// intervals an operator cannot set (those are the settings of README
// "Configuration", tabled in cmd/relay/relay_config.cc). Each name carries its
// unit and each value a line on why it is what it is, after nats-server's
// server/const.go. Header-only and dependency-free but for absl/time, so the
// core, the gateways and cmd/ all read from here.
//
// A config field that tests shrink (CoreConfig, GatewayConfig) takes its
// default from here; code with no such field reads the constant itself.
#ifndef RELAY_SERVER_LIMITS_H_
#define RELAY_SERVER_LIMITS_H_

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"

namespace relay::limits {

// --- What one client may send ----------------------------------------------

// node_id, mesh_id (in the URL, in register, in a gRPC Attach) and
// request_id: ids are names, not documents, and the relay keeps every one it
// is given (rosters, pending llm requests) as long as it lives.
inline constexpr std::size_t kMaxIdBytes = 256;
// A peer's display name: shown to every other peer of its mesh.
inline constexpr std::size_t kMaxNameBytes = 256;
// Capabilities one peer may announce, and the bytes of each: a handful of
// words like "llm", copied into every peers / peer_joined its mesh is sent.
inline constexpr std::size_t kMaxCapabilities = 64;
inline constexpr std::size_t kMaxCapabilityBytes = 128;
// llm requests one peer may have waiting for an answer: bounds the
// dispatcher's memory when a responder never answers.
inline constexpr std::size_t kMaxOutstandingLlmRequestsPerPeer = 1024;
// What one waiting llm request costs beyond its request_id (map entry, key,
// assignment), roughly: MAX_PENDING_LLM_BYTES_PER_PEER counts both.
inline constexpr std::size_t kPendingLlmOverheadBytes = 64;
// What a connection may pipeline while its registration is decided (a
// takeover probe, the auth store): events and their wire bytes. A client
// that registers and sends at once is served; one that streams before it is
// admitted holds no more than this (one message always fits).
inline constexpr std::size_t kMaxEventsWhileRegistering = 64;
inline constexpr std::size_t kMaxBytesWhileRegistering = std::size_t{1} << 20;
// Founders (node ids with the key they proved with) kept per signed mesh: a
// family's devices, each kept as long as the mesh.
inline constexpr std::size_t kMaxFoundersPerMesh = 64;
// How stale a signed mesh's persisted last use may get before it is written
// again: its TTL (SIGNED_MESH_TTL_DAYS) is counted in days, a write per join
// would be waste.
inline constexpr absl::Duration kSignedMeshLastUsePersistInterval = absl::Hours(24);
// The window of AUTH_RECORDS_PER_IP_PER_MINUTE's budget (the setting's unit).
inline constexpr absl::Duration kAuthRecordCreationWindow = absl::Minutes(1);
// Rate-limit refusals in a row (each answered with an error) before the
// connection is closed 1008: a client that ignores rate_limited costs an
// answer per message. With the message rate on, min(RATE_LIMIT_BURST, this).
inline constexpr std::size_t kMaxRefusalsInRow = 100;

// --- JSON the gateway reads -------------------------------------------------

// Nesting in one client message (the message object is level 1): the reader
// recurses, so depth is stack; real messages nest two or three levels.
inline constexpr std::size_t kMaxJsonDepth = 64;
// Members of each JSON object of a message, at every level: each one costs
// the event loop work, so a 1 MB frame of 100,000 tiny members is refused
// (bad_message) as soon as it crosses this, not read in full.
inline constexpr std::size_t kMaxJsonMembersPerObject = 1024;
// Longest client text (an unknown type, a duplicate member name) an error
// message quotes back; longer is left out: errors stay small.
inline constexpr std::size_t kMaxEchoedBytes = 64;
// The same in UTF-8 characters, for the core's quotes (a target node id):
// longer is cut and ends in "...".
inline constexpr std::size_t kMaxQuotedChars = 64;

// --- WebSocket + HTTP listener ----------------------------------------------

// TCP connections the kernel queues before accept (listen(2) backlog):
// during a reconnect storm or an accept back-off clients wait there instead
// of being refused. Linux caps it at net.core.somaxconn (4096 since 5.4).
inline constexpr int kListenBacklogConnections = 1024;
// Pings a peer may leave unanswered in a row before it is dropped
// (keepalive_timeout): one lost pong is a hiccup, two a vanished phone.
inline constexpr int kMaxMissedPongs = 2;
// How long a connection the relay closes has to answer the close frame
// before its TCP connection is cut: a stuck peer never answers.
inline constexpr absl::Duration kCloseHandshakeTimeout = absl::Seconds(2);
// After a connection ends, how long its socket keeps reading (and dropping)
// what the client still sends, so that the close does not reset the
// connection before the client read the close frame (lingering_closer.h),
// and how many sockets may linger at once (each holds an fd).
inline constexpr absl::Duration kLingerTimeout = absl::Seconds(2);
inline constexpr std::size_t kMaxLingeringSockets = 1024;
// How often unregistered sockets are checked against the registration
// timeout (and expired auth records dropped): a timeout of seconds needs no
// finer grain.
inline constexpr absl::Duration kHousekeepingInterval = absl::Seconds(1);
// After accept() fails for want of fds or memory, the pause before the next
// try: a retry at once fails again as fast as the loop can spin.
inline constexpr absl::Duration kAcceptBackoff = absl::Milliseconds(100);
// Retry-After of the 503 `draining` answer: about the window the
// server_draining reconnect hint spreads clients over.
inline constexpr int kDrainingRetryAfterSeconds = 5;
// Upper bound of the reconnect hint in server_draining (reconnect_after_ms,
// uniform from 0): clients spread their reconnects over this window instead
// of arriving at the next instance all at once.
inline constexpr int kMaxReconnectJitterMs = 5000;
// The smallest MAX_MESSAGE_BYTES accepted: below it a register with a token
// and a few capabilities would not fit.
inline constexpr std::size_t kMinMaxMessageBytes = 1024;

// --- gRPC listener ----------------------------------------------------------

// gRPC's keepalive for Attach peers: a ping after this much silence, and the
// stream is dropped (peer_left) when none is answered in the timeout. The
// WebSocket keepalive's role; gRPC's own mechanism.
inline constexpr int kGrpcKeepaliveTimeMs = 30000;
inline constexpr int kGrpcKeepaliveTimeoutMs = 20000;
// gRPC has no reload call: it re-reads the TLS certificate files this often
// (and keeps the old pair while the new files do not match each other).
inline constexpr unsigned int kGrpcCertificateRefreshSeconds = 10;
// How long gRPC's own shutdown waits for calls in flight at exit before it
// cancels them: an Admin call or a stream's last write takes milliseconds.
inline constexpr absl::Duration kGrpcShutdownDeadline = absl::Seconds(2);
// How long a gRPC thread waits for the event loop to run an Admin call (a
// stats read, a kick) before answering UNAVAILABLE: a loop that busy is
// better reported than waited on.
inline constexpr absl::Duration kCoreCallDeadline = absl::Seconds(5);

// --- Graceful shutdown --------------------------------------------------------

// After the drain grace, how long the relay waits for clients to finish
// their close handshakes before it exits anyway.
inline constexpr absl::Duration kDrainCloseTimeout = absl::Seconds(5);
// How often the drain looks whether everyone already left (to exit early).
inline constexpr absl::Duration kDrainPollInterval = absl::Milliseconds(20);

// --- Cluster mode (NATS, docs/adr/0009-cluster-on-nats.md) -------------------

// Claims one registration may make of its node entry (Backplane::ClaimNode):
// a takeover needs two (read the holder, write at its revision); each
// further one follows a race lost to another claimant. Past this, the join
// answers cluster_unavailable rather than spin against a busy key.
inline constexpr int kMaxNodeClaimAttempts = 3;

// How much longer than the probe itself (TAKEOVER_PROBE_TIMEOUT) a claimant
// waits for the answer of a holder's instance: two backplane hops, each
// resent after 500 ms when lost. Past it the holder is presumed alive
// (node_id_in_use), as for a transport that cannot probe.
inline constexpr absl::Duration kRemoteProbeSlack = absl::Seconds(3);

// A token binding or signed mesh due to go is let go only once the cluster
// says the mesh has no members anywhere; when it cannot say (NATS away),
// the record is kept and the question asked again after this.
inline constexpr absl::Duration kClusterLivenessRetry = absl::Minutes(1);

// Longest KV key the NATS adapter asks for. A direct get names the key twice
// in its subject, and a protocol line over nats-server's 4096 bytes closes
// the client's connection for good; a node key of two 256-byte ids encoded
// is 685 characters.
inline constexpr std::size_t kMaxNatsKeyChars = 1024;
// RELAY_CLUSTER and RELAY_INSTANCE_ID are used as given in subjects and
// bucket names: short, so every name built from them stays readable.
inline constexpr std::size_t kMaxClusterNameChars = 32;
inline constexpr std::size_t kMaxInstanceIdChars = 64;

// The NATS connection's timing (docs/adr/0009-cluster-on-nats.md, section 5),
// in milliseconds as nats.c takes them.
// Between reconnect attempts to one server: short, so a NATS restart costs
// the cluster well under a second of refused deliveries.
inline constexpr int kNatsReconnectWaitMs = 250;
// Random extra wait per attempt (plain, TLS), so a cluster's relays do not
// all reconnect to a restarted server in the same instant.
inline constexpr int kNatsReconnectJitterMs = 100;
inline constexpr int kNatsReconnectJitterTlsMs = 1000;
// A ping every second and two unanswered ones drop the connection: a paused
// or dead NATS node is left in about 3 s, well inside kInstanceDeadAfter's
// 6 s (nats.c's default interval is 2 min).
inline constexpr int kNatsPingIntervalMs = 1000;
inline constexpr int kNatsMaxPingsOut = 2;
// How long one socket write may block: nats.c's default blocks forever, and
// a write stuck on a paused server holds the connection lock, so the ping
// timer could never notice.
inline constexpr int kNatsWriteDeadlineMs = 2000;
// How long one KV call (a get, a compare-and-set) waits for JetStream's
// answer before it counts as unavailable: past a JetStream leader election
// at R3 on a healthy cluster, yet short enough that a registration that
// cannot be claimed is answered while the client still waits.
inline constexpr int kNatsKvWaitMs = 2000;

// Instance leases (docs/adr/0009-cluster-on-nats.md, section 3). An instance
// rewrites its lease this often...
inline constexpr absl::Duration kInstanceHeartbeatInterval = absl::Seconds(1);
// ...and one whose lease has not moved for this long is declared dead: six
// missed beats, past a NATS reconnect (about 3 s), inside issue 12's 10 s
// from a SIGKILL to peer_left everywhere.
inline constexpr absl::Duration kInstanceDeadAfter = absl::Seconds(6);
// How often silent leases are looked for.
inline constexpr absl::Duration kInstanceSweepInterval = absl::Milliseconds(500);
// An instance declares others dead only while its own writes show up in
// its watch within this: otherwise it is the one cut off.
inline constexpr absl::Duration kLeaseEchoFreshness = absl::Seconds(2);
// Tombstones and the leases of a cluster stopped whole age out after this
// (the instances bucket's MaxAge); a live lease is rewritten long before.
inline constexpr absl::Duration kInstanceLeaseMaxAge = absl::Hours(24);
// How long joining a mesh waits for the other instances' rosters of it.
inline constexpr absl::Duration kRosterWait = absl::Seconds(5);

// Between two instances (docs/adr/0009-cluster-on-nats.md, section 2).
// Frames sent and not yet acknowledged, per destination instance: what a
// lost frame can be resent from. Past it, deliveries to that instance are
// refused (cluster_unavailable); past 4x (presence is never refused), the
// link is reset and both sides resynchronise their rosters.
inline constexpr std::size_t kBackplaneResendWindowBytes = 16u << 20;
// How often a receiver acknowledges, and may ask again for a missing frame:
// short beside kBackplaneRetransmitAfter, so an idle link never resends what
// arrived.
inline constexpr absl::Duration kBackplaneAckInterval = absl::Milliseconds(50);
// With no acknowledgement for this long, the sender resends what is unacked.
inline constexpr absl::Duration kBackplaneRetransmitAfter = absl::Milliseconds(500);
// Envelopes queued for one instance are batched into frames of at most this
// (a single envelope may be larger: it travels alone).
inline constexpr std::size_t kBackplaneMaxFrameBytes = 64u << 10;

// --- Resume sessions (docs/protocol.md, "Resume") ---------------------------

// A session id's random bytes (128 bits, shown as 32 hex digits): not
// guessable within any number of tries a relay would answer.
inline constexpr std::size_t kResumeSessionIdBytes = 16;
// The relay acknowledges a resume client's frames at most this often, or
// after this many frames, whichever comes first: often enough that a
// client's resend buffer stays small, rarely enough to cost nothing.
inline constexpr absl::Duration kResumeAckInterval = absl::Milliseconds(100);
inline constexpr std::uint64_t kResumeAckEveryFrames = 64;
// What one kept frame costs beyond the memory of its event (the deque entry,
// the shared event's control block): RESUME_BUFFER_BYTES and
// MAX_RESUME_MEMORY_BYTES count both, so a flood of tiny frames is bounded.
inline constexpr std::size_t kResumeFrameOverheadBytes = 64;
// The largest client seq (and "last_seq"): JSON numbers are exact up to
// 2^53 in every client language.
inline constexpr std::uint64_t kMaxResumeSeq = (std::uint64_t{1} << 53) - 1;

}  // namespace relay::limits

#endif  // RELAY_SERVER_LIMITS_H_
