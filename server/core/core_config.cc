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
  if (max_peers_per_mesh == 0)
    return absl::InvalidArgumentError("max_peers_per_mesh must be positive");
  if (mesh_binding_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("mesh_binding_grace must not be negative");
  }
  if (rate_limit_per_second < 0) {
    return absl::InvalidArgumentError("rate_limit_per_second must not be negative");
  }
  if (rate_limit_per_second > 0 && rate_limit_burst == 0) {
    return absl::InvalidArgumentError("rate_limit_burst must be positive when rate limiting is on");
  }
  if (rate_limit_bytes_per_second < 0) {
    return absl::InvalidArgumentError("rate_limit_bytes_per_second must not be negative");
  }
  if (rate_limit_bytes_per_second > 0 && rate_limit_burst_bytes == 0) {
    return absl::InvalidArgumentError(
        "rate_limit_burst_bytes must be positive when byte rate limiting is on");
  }
  if (takeover_probe_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("takeover_probe_timeout must be positive");
  }
  if (max_events_while_registering == 0) {
    return absl::InvalidArgumentError("max_events_while_registering must be positive");
  }
  if (max_pending_llm_bytes_per_peer == 0) {
    return absl::InvalidArgumentError("max_pending_llm_bytes_per_peer must be positive");
  }
  if (max_nonce_bytes == 0) return absl::InvalidArgumentError("max_nonce_bytes must be positive");
  if (max_join_token_lifetime <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_join_token_lifetime must be positive");
  }
  if (max_nonces_per_mesh == 0) {
    return absl::InvalidArgumentError("max_nonces_per_mesh must be positive");
  }
  if (max_auth_records == 0) return absl::InvalidArgumentError("max_auth_records must be positive");
  if (llm_capabilities.empty()) {
    return absl::InvalidArgumentError("llm_capabilities must name at least one capability");
  }
  for (const std::string& pattern : llm_capabilities) {
    if (pattern.empty()) return absl::InvalidArgumentError("llm_capabilities has an empty name");
  }
  if (auth_records_per_ip_per_minute == 0) {
    return absl::InvalidArgumentError("auth_records_per_ip_per_minute must be positive");
  }
  if (signed_mesh_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("signed_mesh_ttl must be positive");
  }
  if (resume_window < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("resume_window must not be negative");
  }
  if (resume_buffer_bytes == 0 || resume_buffer_frames == 0 || max_resume_sessions == 0 ||
      max_resume_memory_bytes == 0) {
    return absl::InvalidArgumentError(
        "resume_buffer_bytes, resume_buffer_frames, max_resume_sessions and "
        "max_resume_memory_bytes must be positive");
  }
  return absl::OkStatus();
}

}  // namespace relay::core
