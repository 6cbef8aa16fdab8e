// MeshAuth: who may register into a mesh (docs/security.md). Three levels,
// decided by a mesh's first registrant:
//   open        - no token: anyone may join;
//   token-bound - a string token: later registrants must present the same
//                 one (salted SHA-256, constant-time compare); the binding
//                 outlives the mesh's last peer by a grace period;
//   signed      - register_mesh proves an Ed25519 mesh key; members join
//                 with tokens signed by it (expiry, node binding, nonces).
// Keeps its state in memory and writes it through to an AuthStore so it
// survives restarts when a data directory is configured.
//
// Threading: core thread only, like RelayCore.
#ifndef RELAY_SERVER_CORE_MESH_AUTH_H_
#define RELAY_SERVER_CORE_MESH_AUTH_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "relay/v1/relay.pb.h"
#include "server/store/auth_store.h"

namespace relay::core {

class MeshAuth {
 public:
  // `store` must outlive MeshAuth.
  MeshAuth(store::AuthStore* store, absl::Duration binding_grace);

  // Loads persisted state; call once before use. Bindings of meshes that
  // were live when the relay stopped start their grace at `now`.
  absl::Status Load(absl::Time now);

  // May `reg` register into reg.mesh_id()? `mesh_live` tells whether the
  // mesh has peers now. Returns the credential identity to compare on node_id
  // takeover, or PermissionDenied with the reason to tell the client.
  absl::StatusOr<std::string> AdmitRegister(const relay::v1::Register& reg, bool mesh_live,
                                            absl::Time now);

  // A founder's register_mesh for the mesh in the URL. Returns the
  // credential identity, or PermissionDenied / InvalidArgument.
  absl::StatusOr<std::string> AdmitRegisterMesh(const relay::v1::RegisterMesh& request,
                                                absl::string_view url_mesh_id);

  // The mesh lost its last peer: a token binding starts its grace period.
  void MeshEmptied(const std::string& mesh_id, absl::Time now);

  // Forgets bindings past their grace and nonces past their token's expiry.
  void Expire(absl::Time now);

  std::size_t signed_meshes() const { return signed_.size(); }
  std::size_t bindings() const { return bindings_.size(); }

 private:
  absl::StatusOr<std::string> AdmitSignedJoin(const relay::v1::Register& reg, absl::Time now);
  void Persist(absl::Status status);

  store::AuthStore* const store_;
  const absl::Duration binding_grace_;
  absl::flat_hash_map<std::string, store::TokenBinding> bindings_;
  absl::flat_hash_map<std::string, store::SignedMesh> signed_;
  // (mesh_id, nonce) -> who used it and until when.
  std::map<std::pair<std::string, std::string>, store::UsedNonce> nonces_;
  std::uint64_t unbound_joins_ = 0;  // makes unbound-token identities unique
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_MESH_AUTH_H_
