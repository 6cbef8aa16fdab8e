#include "server/core/core_config.h"

namespace relay::core {

absl::Status CoreConfig::Validate() const {
  if (registration_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("registration_timeout must be positive");
  }
  if (max_id_bytes == 0) return absl::InvalidArgumentError("max_id_bytes must be positive");
  if (max_name_bytes == 0) return absl::InvalidArgumentError("max_name_bytes must be positive");
  if (max_capability_bytes == 0) {
    return absl::InvalidArgumentError("max_capability_bytes must be positive");
  }
  if (max_outstanding_llm_requests_per_peer == 0) {
    return absl::InvalidArgumentError("max_outstanding_llm_requests_per_peer must be positive");
  }
  if (max_peers_per_mesh == 0) return absl::InvalidArgumentError("max_peers_per_mesh must be positive");
  if (mesh_binding_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("mesh_binding_grace must not be negative");
  }
  if (rate_limit_per_second < 0) {
    return absl::InvalidArgumentError("rate_limit_per_second must not be negative");
  }
  if (rate_limit_per_second > 0 && rate_limit_burst == 0) {
    return absl::InvalidArgumentError("rate_limit_burst must be positive when rate limiting is on");
  }
  return absl::OkStatus();
}

}  // namespace relay::core
