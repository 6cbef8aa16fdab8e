// AuthStore: where mesh authentication state that must survive a restart
// lives (token bindings, signed meshes and their founders, used join-token
// nonces). MeshAuth keeps the working copy in memory and writes through.
//
// Two implementations: MemoryAuthStore (nothing survives a restart; the
// default when no RELAY_DATA_DIR is set) and SqliteAuthStore.
#ifndef RELAY_SERVER_STORE_AUTH_STORE_H_
#define RELAY_SERVER_STORE_AUTH_STORE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace relay::store {

struct TokenBinding {
  std::string mesh_id;
  std::string salt;  // raw bytes
  std::string hash;  // SHA-256(salt || token), raw bytes
  // Set once the mesh is empty: the binding is forgotten after it.
  std::optional<absl::Time> expires_at;
};

struct Founder {
  std::string node_id;
  std::string verify_key;  // raw Ed25519 public key that proved the founding
};

struct SignedMesh {
  std::string mesh_id;
  std::string mesh_key;  // raw Ed25519 public key that signs join tokens
  std::vector<Founder> founders;
  // Last join or founding, as last written (at most a day stale); the mesh
  // is forgotten SIGNED_MESH_TTL_DAYS after it. InfinitePast: unknown (a
  // row from before it was recorded).
  absl::Time last_used_at = absl::InfinitePast();
};

struct UsedNonce {
  std::string mesh_id;
  std::string nonce;
  std::string node_id;   // the node that used it
  absl::Time expires_at;  // the token's expiry: kept until then
};

struct AuthSnapshot {
  std::vector<TokenBinding> bindings;
  std::vector<SignedMesh> signed_meshes;
  std::vector<UsedNonce> nonces;
};

class AuthStore {
 public:
  virtual ~AuthStore() = default;
  virtual absl::StatusOr<AuthSnapshot> Load() = 0;
  virtual absl::Status PutBinding(const TokenBinding& binding) = 0;
  virtual absl::Status DeleteBinding(absl::string_view mesh_id) = 0;
  virtual absl::Status PutSignedMesh(const SignedMesh& mesh) = 0;
  // Removes the signed mesh, its founders and its used nonces.
  virtual absl::Status DeleteSignedMesh(absl::string_view mesh_id) = 0;
  virtual absl::Status PutNonce(const UsedNonce& nonce) = 0;
  virtual absl::Status DeleteNoncesExpiredBy(absl::Time now) = 0;
};

// Keeps nothing: state lives only in MeshAuth's memory.
class MemoryAuthStore final : public AuthStore {
 public:
  absl::StatusOr<AuthSnapshot> Load() override { return AuthSnapshot{}; }
  absl::Status PutBinding(const TokenBinding&) override { return absl::OkStatus(); }
  absl::Status DeleteBinding(absl::string_view) override { return absl::OkStatus(); }
  absl::Status PutSignedMesh(const SignedMesh&) override { return absl::OkStatus(); }
  absl::Status DeleteSignedMesh(absl::string_view) override { return absl::OkStatus(); }
  absl::Status PutNonce(const UsedNonce&) override { return absl::OkStatus(); }
  absl::Status DeleteNoncesExpiredBy(absl::Time) override { return absl::OkStatus(); }
};

}  // namespace relay::store

#endif  // RELAY_SERVER_STORE_AUTH_STORE_H_
