// SqliteAuthStore: AuthStore in one SQLite database (WAL mode), the file
// relay.db under RELAY_DATA_DIR. Calls run on the core thread; each write is
// one small statement, so they cost tens of microseconds, and happen only on
// authentication events, never per relayed message.
#ifndef RELAY_SERVER_STORE_SQLITE_AUTH_STORE_H_
#define RELAY_SERVER_STORE_SQLITE_AUTH_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/store/auth_store.h"

struct sqlite3;

namespace relay::store {

class SqliteAuthStore final : public AuthStore {
 public:
  // Opens (creating if needed) `path` and its schema.
  static absl::StatusOr<std::unique_ptr<SqliteAuthStore>> Open(const std::string& path);
  ~SqliteAuthStore() override;

  absl::StatusOr<AuthSnapshot> Load() override;
  absl::Status PutBinding(const TokenBinding& binding) override;
  absl::Status DeleteBinding(absl::string_view mesh_id) override;
  absl::Status PutSignedMesh(const SignedMesh& mesh) override;
  absl::Status DeleteSignedMesh(absl::string_view mesh_id) override;
  absl::Status PutNonce(const UsedNonce& nonce) override;
  absl::Status DeleteNoncesExpiredBy(absl::Time now) override;

 private:
  explicit SqliteAuthStore(sqlite3* db) : db_(db) {}
  absl::Status Exec(const char* sql);
  // Brings a relay.db written by an older relay to the current schema.
  absl::Status Migrate();
  sqlite3* db_;
};

}  // namespace relay::store

#endif  // RELAY_SERVER_STORE_SQLITE_AUTH_STORE_H_
