// CoreConfig: every limit of the relay core, with its default and why.
#ifndef RELAY_SERVER_CORE_CORE_CONFIG_H_
#define RELAY_SERVER_CORE_CORE_CONFIG_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace relay::core {

struct CoreConfig {
  // A socket that has not registered by then is closed: it holds resources
  // without being a peer.
  absl::Duration registration_timeout = absl::Seconds(30);
  // node_id and mesh_id bytes: ids are names, not documents.
  std::size_t max_id_bytes = 256;
  // Display name bytes.
  std::size_t max_name_bytes = 256;
  // Capabilities per peer and bytes per capability.
  std::size_t max_capabilities = 64;
  std::size_t max_capability_bytes = 128;
  // llm requests one peer may have waiting for an answer; bounds the
  // dispatcher's memory when a responder never answers.
  std::size_t max_outstanding_llm_requests_per_peer = 1024;
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

  // OK, or InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_CORE_CONFIG_H_
