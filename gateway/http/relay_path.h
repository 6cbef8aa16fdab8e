// Parses the WebSocket resource "/relay/{mesh_id}" into a mesh id.
#ifndef RELAY_GATEWAY_HTTP_RELAY_PATH_H_
#define RELAY_GATEWAY_HTTP_RELAY_PATH_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace relay::gateway {

// `resource` is the request target (path and optional query). Returns the
// percent-decoded mesh id; NotFound for any other path; InvalidArgument for
// a mesh id that is empty, longer than `max_bytes`, not UTF-8, or holds
// control characters.
absl::StatusOr<std::string> ParseRelayPath(absl::string_view resource, std::size_t max_bytes);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_HTTP_RELAY_PATH_H_
