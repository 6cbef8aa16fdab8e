// CoreConfig: every limit of the relay core, with its default and why. The
// settings (README "Configuration") have their defaults here; the fixed
// limits take theirs from server/limits.h, where their why is, and are
// fields only so that tests can shrink them.
#ifndef RELAY_SERVER_CORE_CORE_CONFIG_H_
#define RELAY_SERVER_CORE_CORE_CONFIG_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/core/llm_capabilities.h"
#include "server/limits.h"

namespace relay::core {

struct CoreConfig {
  // A socket that has not registered by then is closed: it holds resources
  // without being a peer.
  absl::Duration registration_timeout = absl::Seconds(30);
  // node_id, mesh_id and request_id bytes.
  std::size_t max_id_bytes = limits::kMaxIdBytes;
  // Display name bytes.
  std::size_t max_name_bytes = limits::kMaxNameBytes;
  // Capabilities per peer and bytes per capability.
  std::size_t max_capabilities = limits::kMaxCapabilities;
  std::size_t max_capability_bytes = limits::kMaxCapabilityBytes;
  // Capability patterns that make a peer serve llm_request / chat_request
  // (LLM_CAPABILITIES; llm_capabilities.h: exact names, `*` globs). Every
  // instance of a cluster must use the same list: each judges the members
  // other instances hold by its own.
  std::vector<std::string> llm_capabilities = DefaultLlmCapabilities();
  // llm requests one peer may have waiting for an answer.
  std::size_t max_outstanding_llm_requests_per_peer = limits::kMaxOutstandingLlmRequestsPerPeer;
  // Peers in one mesh; a family's devices, not a broadcast audience.
  std::size_t max_peers_per_mesh = 1000;
  // How long a token-bound mesh stays bound after its last peer left, so
  // nobody can squat it while its owners reconnect.
  absl::Duration mesh_binding_grace = absl::Hours(24);
  // Per-connection message rate (token bucket): sustained messages per
  // second and burst. Generous: a device may push 10,000 messages back to
  // back, but not flood forever. A client over it gets rate_limited errors;
  // after min(rate_limit_burst, 100) refusals in a row it is closed.
  // 0 disables.
  double rate_limit_per_second = 1000;
  std::size_t rate_limit_burst = 20000;
  // Per-connection byte rate (token bucket on the wire bytes of the messages
  // a client sends): one client must not keep the event loop busy parsing
  // megabytes for everyone else. 1 MiB/s sustained is some fifty times what a
  // phone streaming an LLM answer sends; the burst lets a device push 16 MiB
  // at once. The burst must hold the largest message. 0 disables.
  double rate_limit_bytes_per_second = 1 << 20;
  std::size_t rate_limit_burst_bytes = std::size_t{16} << 20;

  // Open-mesh takeover: a registration that proves no more than the live
  // holder of its node_id (an open mesh proves nothing) gets the id only if
  // the holder does not answer a liveness probe within this. A phone whose
  // old connection really died gets its id back this fast.
  absl::Duration takeover_probe_timeout = absl::Seconds(2);
  // What a connection may pipeline while its registration waits for that
  // probe: events and their wire bytes (one message always fits).
  std::size_t max_events_while_registering = limits::kMaxEventsWhileRegistering;
  std::size_t max_bytes_while_registering = limits::kMaxBytesWhileRegistering;

  // Bytes of the llm requests one peer has waiting for an answer (each
  // counts its request_id plus limits::kPendingLlmOverheadBytes): the dispatcher
  // keeps every waiting request_id, so the count bound alone is not enough.
  std::size_t max_pending_llm_bytes_per_peer = std::size_t{128} << 10;

  // Signed join tokens. The nonce is kept until the token expires, so both
  // are bounded: a nonce is a random value, not a document; a token may not
  // be valid for longer than this (from its issued_at, and from now).
  std::size_t max_nonce_bytes = 128;
  absl::Duration max_join_token_lifetime = absl::Hours(24 * 30);
  // Founders (node ids with the key they proved with) kept per signed mesh.
  std::size_t max_founders_per_mesh = limits::kMaxFoundersPerMesh;
  // Used nonces kept per mesh (a family's devices each use one token).
  std::size_t max_nonces_per_mesh = 1000;
  // Authentication records in total: token bindings, signed meshes and used
  // nonces (each at most ~1.2 KB in memory and in relay.db). Past it no new
  // mesh can be bound or signed and no new nonce used: auth_unavailable.
  std::size_t max_auth_records = 100000;
  // New authentication records (a binding, a signed mesh, a nonce) one
  // client IP may create per minute: creating them is cheap for a client
  // and each lasts (24 h, 90 days, 30 days). Over it: rate_limited.
  std::size_t auth_records_per_ip_per_minute = 20;
  // A signed mesh nobody has joined or re-proved for this long is forgotten
  // (anyone may then register the id again).
  absl::Duration signed_mesh_ttl = absl::Hours(24 * 90);

  // Resume sessions (docs/protocol.md, "Resume"). How long a session whose
  // connection dropped waits for its client: a phone changing networks is
  // back within seconds; past a minute the others should see it gone.
  // 0 turns resume off (joins answer without a session).
  absl::Duration resume_window = absl::Seconds(60);
  // What one session keeps for replay (frames its client has not
  // acknowledged): bytes (the memory each frame holds,
  // its arena included, plus limits::kResumeFrameOverheadBytes) and frames. Past either, the session
  // ends (resume_overflow): a minute of a busy mesh's traffic fits.
  std::size_t resume_buffer_bytes = std::size_t{1} << 20;
  std::size_t resume_buffer_frames = 4096;
  // Sessions this instance keeps (live and suspended): past it, a join
  // that asks for resume gets none.
  std::size_t max_resume_sessions = 10000;
  // Bytes all sessions may keep for replay together: what resume may cost
  // this instance whatever its clients do. Past it, the session that would
  // grow ends (resume_overflow).
  std::size_t max_resume_memory_bytes = std::size_t{256} << 20;

  // OK, or InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_CORE_CONFIG_H_
