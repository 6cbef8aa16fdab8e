// Human-readable renderings of Admin responses: ages, the meshes table, one
// mesh with its peers, stats lines, health status. `now` is passed in so ages
// are testable without a clock.
#ifndef RELAY_ADMIN_CLI_FORMAT_H_
#define RELAY_ADMIN_CLI_FORMAT_H_

#include <string>

#include "absl/time/time.h"
#include "grpc/health/v1/health.pb.h"
#include "relay/v1/relay.pb.h"

namespace relay::cli {

// Elapsed time in its largest whole unit, truncated: "5s", "3m", "2h", "4d".
// Negative ages (clock skew between relay and operator) read "0s".
std::string FormatAge(absl::Duration age);

// Age of an event stamped `epoch_seconds` (seconds since the Unix epoch) at `now`.
std::string FormatAgeSince(double epoch_seconds, absl::Time now);

// MESH  PEERS  AGE  MESSAGES table (header only when there is no mesh).
std::string FormatMeshList(const relay::v1::ListMeshesResponse& response, absl::Time now);

// "Mesh: ID  Peers: N  Age: A  Messages: M", a blank line, then the
// NODE  NAME  CAPABILITIES  JOINED  REMOTE table (JOINED is an age).
std::string FormatMeshDetail(const relay::v1::GetMeshResponse& response, absl::Time now);

// "key: value" lines, values aligned; keys are the proto field names, one
// "errors.<code>" line per error code.
std::string FormatStats(const relay::v1::Stats& stats);

// "SERVING", "NOT_SERVING", ... and a newline.
std::string FormatHealth(const grpc::health::v1::HealthCheckResponse& response);

}  // namespace relay::cli

#endif  // RELAY_ADMIN_CLI_FORMAT_H_
