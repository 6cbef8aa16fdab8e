// Human-readable renderings of Admin responses: ages, sizes, the meshes table
// and its paging footer, one mesh with its peers, stats lines, health status,
// and the one-line reports of the operator's actions. `now` is passed in so
// ages are testable without a clock.
#ifndef RELAY_ADMIN_CLI_FORMAT_H_
#define RELAY_ADMIN_CLI_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "admin-cli/args.h"
#include "grpc/health/v1/health.pb.h"
#include "relay/v1/relay.pb.h"

namespace relay::cli {

// Elapsed time in its largest whole unit, truncated: "5s", "3m", "2h", "4d".
// Negative ages (clock skew between relay and operator) read "0s".
std::string FormatAge(absl::Duration age);

// A byte count in its largest binary unit, truncated, for tables: "0B",
// "1023B", "1.5KiB", "12MiB" (one decimal below 10 units, none above).
std::string FormatBytes(std::uint64_t bytes);

// Age of an event stamped `epoch_seconds` (seconds since the Unix epoch) at `now`.
std::string FormatAgeSince(double epoch_seconds, absl::Time now);

// MESH  PEERS  AGE  MESSAGES table (header only when there is no mesh).
std::string FormatMeshList(const relay::v1::ListMeshesResponse& response, absl::Time now);

// What follows the table: how many of how many meshes were shown and, when
// there are more, the command line for the next page (with `options`' sort
// and page size). Empty when the table shows every mesh.
std::string FormatMeshListFooter(const relay::v1::ListMeshesResponse& response,
                                 const CliOptions& options);

// "Mesh: ID  Peers: N  Age: A  Messages: M", a blank line, then the
// NODE NAME CAPABILITIES TRANSPORT REMOTE JOINED MSGS_IN MSGS_OUT BYTES_IN
// BYTES_OUT QUEUED table (JOINED is an age, bytes are FormatBytes sizes).
// From a cluster (a peer on an instance other than "local"), an INSTANCE
// column after NODE says which instance holds each peer; peers held
// elsewhere have no transport, address or counters here ("-", 0).
std::string FormatMeshDetail(const relay::v1::GetMeshResponse& response, absl::Time now);
// One "Auth: ..." line: open, token-bound (since, grace left) or signed.
std::string FormatMeshAuth(const relay::v1::MeshAuthInfo& auth, bool has_peers, absl::Time now);
// What `meshes unbind` did.
std::string FormatUnbind(absl::string_view mesh_id);

// "key: value" lines, values aligned. Keys are GET /stats' names
// (active_connections, total_messages_relayed...), one "errors.<code>" line
// per error code, "closes.<reason>" per close reason, "refused.<reason>",
// "limits.<limit>" and "drops.<reason>" likewise; cluster mode adds
// "instance_id" and "cluster.*".
std::string FormatStats(const relay::v1::Stats& stats);

// --json stats: the document GET /stats serves, with its names and shapes
// (errors, closes, refused, limits, drops as {name: count} objects), plus
// cluster mode's "cluster" and, as aliases, relayctl 1.0's names
// registered_peers, messages_received, messages_relayed and llm_requests.
// Followed by a newline.
std::string FormatStatsJson(const relay::v1::Stats& stats);

// "SERVING", "NOT_SERVING", ... and a newline.
std::string FormatHealth(const grpc::health::v1::HealthCheckResponse& response);

// "kicked NODE from MESH".
std::string FormatKick(absl::string_view mesh_id, absl::string_view node_id);

// "closed mesh MESH: N peers closed".
std::string FormatCloseMesh(absl::string_view mesh_id,
                            const relay::v1::CloseMeshResponse& response);

// "draining: N connections told to reconnect elsewhere; closed in Gs, then
// the relay exits".
std::string FormatDrain(const relay::v1::DrainResponse& response);

// "log level: PREVIOUS -> LEVEL".
std::string FormatLogLevel(absl::string_view previous, absl::string_view level);

}  // namespace relay::cli

#endif  // RELAY_ADMIN_CLI_FORMAT_H_
