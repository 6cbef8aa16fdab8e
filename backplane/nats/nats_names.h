// The names cluster mode uses on NATS (docs/adr/0009-cluster-on-nats.md,
// "Subjects and keys"): the cluster and instance names operators choose,
// each instance's inbox subject, the JetStream KV buckets, and the keys of
// meshes, nodes and nonces. Mesh and node ids may hold any bytes ('.', '*',
// '>', spaces, any script), so they are always encoded, never passed
// through: base64url without padding (RFC 4648 section 5), whose alphabet
// is valid both in a subject token and in a KV key.
#ifndef RELAY_BACKPLANE_NATS_NATS_NAMES_H_
#define RELAY_BACKPLANE_NATS_NATS_NAMES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace relay::backplane::nats {

// RELAY_CLUSTER: [a-z0-9_-]{1,32}. InvalidArgument says what is wrong.
absl::Status ValidateClusterName(absl::string_view cluster);
// RELAY_INSTANCE_ID: [A-Za-z0-9_-]{1,64}.
absl::Status ValidateInstanceId(absl::string_view instance_id);
// The default RELAY_INSTANCE_ID: `host_name` with every character outside
// [A-Za-z0-9_-] made '-', cut to 48 characters, then '-' and 8 random
// [a-z0-9] (so two processes on one host differ). A valid instance id.
std::string DefaultInstanceId(absl::string_view host_name);

// One subject token or key part for an id: never empty, never more than
// 4 * ceil(id.size() / 3) characters. InvalidArgument for an empty id.
absl::StatusOr<std::string> IdToken(absl::string_view id);
// The id a token was made from; InvalidArgument when it is not one.
absl::StatusOr<std::string> IdFromToken(absl::string_view token);

// relay.<cluster>.i.<instance_id>: where every frame for that instance goes.
std::string InboxSubject(absl::string_view cluster, absl::string_view instance_id);

// The KV buckets of one cluster, relay_<cluster>_<kind>.
enum class Bucket {
  kInstances,  // one lease per instance
  kNodes,      // one entry per registered node: who holds it
  kFollow,     // one entry per mesh: the instances following it
  kAuth,       // one entry per mesh: its token binding or signed-mesh record
  kNonces,     // one entry per used join-token nonce
};
std::string BucketName(absl::string_view cluster, Bucket bucket);

// Keys (each InvalidArgument for an empty id or a key over
// limits::kMaxNatsKeyChars, before any call reaches NATS).
absl::StatusOr<std::string> MeshKey(absl::string_view mesh_id);
absl::StatusOr<std::string> NodeKey(absl::string_view mesh_id, absl::string_view node_id);
// A nonce is keyed by its SHA-256: nonces may be long (MAX_NONCE_BYTES).
absl::StatusOr<std::string> NonceKey(absl::string_view mesh_id, absl::string_view nonce);
// The filter matching every NonceKey of `mesh_id` ("<mesh_tok>.*").
absl::StatusOr<std::string> MeshNoncesFilter(absl::string_view mesh_id);
// The filter matching every NodeKey of `mesh_id` ("<mesh_tok>.*").
absl::StatusOr<std::string> MeshNodesFilter(absl::string_view mesh_id);

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_NATS_NAMES_H_
