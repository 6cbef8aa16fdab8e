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

  // OK, or InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_CORE_CONFIG_H_
