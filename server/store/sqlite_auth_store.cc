#include "server/store/sqlite_auth_store.h"

#include <sqlite3.h>

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"

namespace relay::store {
namespace {

constexpr const char* kSchema = R"sql(
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS token_bindings (
  mesh_id    TEXT PRIMARY KEY,
  salt       BLOB NOT NULL,
  hash       BLOB NOT NULL,
  expires_at REAL             -- NULL while the mesh has peers
);
CREATE TABLE IF NOT EXISTS signed_meshes (
  mesh_id      TEXT PRIMARY KEY,
  mesh_key     BLOB NOT NULL,
  last_used_at REAL             -- NULL: written before it was recorded
);
CREATE TABLE IF NOT EXISTS founders (
  mesh_id    TEXT NOT NULL,
  node_id    TEXT NOT NULL,
  verify_key BLOB NOT NULL,
  PRIMARY KEY (mesh_id, node_id)
);
CREATE TABLE IF NOT EXISTS used_nonces (
  mesh_id    TEXT NOT NULL,
  nonce      TEXT NOT NULL,
  node_id    TEXT NOT NULL,
  expires_at REAL NOT NULL,
  PRIMARY KEY (mesh_id, nonce)
);
CREATE INDEX IF NOT EXISTS used_nonces_by_expiry ON used_nonces (expires_at);
)sql";

// relay.db files from before signed meshes recorded their last use.
constexpr const char* kAddLastUsedAt = "ALTER TABLE signed_meshes ADD COLUMN last_used_at REAL";

double ToEpoch(absl::Time t) { return absl::ToDoubleSeconds(t - absl::UnixEpoch()); }
absl::Time FromEpoch(double s) { return absl::UnixEpoch() + absl::Seconds(s); }

// One prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  Statement& Text(int i, absl::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Blob(int i, absl::string_view v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Real(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Statement& Null(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  // Runs a statement that returns no rows.
  absl::Status Run() {
    if (!ok()) return Error("prepare");
    return sqlite3_step(stmt_) == SQLITE_DONE ? absl::OkStatus() : Error("step");
  }
  // Steps to the next row; false at the end.
  bool Next() { return ok() && sqlite3_step(stmt_) == SQLITE_ROW; }
  std::string Column(int i) const {
    const void* data = sqlite3_column_blob(stmt_, i);
    return data == nullptr ? std::string()
                           : std::string(static_cast<const char*>(data),
                                         static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)));
  }
  bool IsNull(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
  double RealColumn(int i) const { return sqlite3_column_double(stmt_, i); }

 private:
  absl::Status Error(const char* what) const {
    return absl::InternalError(absl::StrCat("sqlite ", what, ": ", sqlite3_errmsg(db_)));
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteAuthStore>> SqliteAuthStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", message));
  }
  sqlite3_busy_timeout(db, 1000);
  std::unique_ptr<SqliteAuthStore> store(new SqliteAuthStore(db));
  if (absl::Status status = store->Exec(kSchema); !status.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot prepare ", path, ": ", status.message()));
  }
  if (absl::Status status = store->Migrate(); !status.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot migrate ", path, ": ", status.message()));
  }
  return store;
}

SqliteAuthStore::~SqliteAuthStore() { sqlite3_close(db_); }

absl::Status SqliteAuthStore::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    absl::Status status = absl::InternalError(error != nullptr ? error : "sqlite error");
    sqlite3_free(error);
    return status;
  }
  return absl::OkStatus();
}

absl::Status SqliteAuthStore::Migrate() {
  bool has_last_used = false;
  {
    Statement s(db_, "PRAGMA table_info(signed_meshes)");
    if (!s.ok()) return absl::InternalError(sqlite3_errmsg(db_));
    while (s.Next()) has_last_used = has_last_used || s.Column(1) == "last_used_at";
  }
  return has_last_used ? absl::OkStatus() : Exec(kAddLastUsedAt);
}

absl::StatusOr<AuthSnapshot> SqliteAuthStore::Load() {
  AuthSnapshot snapshot;
  {
    Statement s(db_, "SELECT mesh_id, salt, hash, expires_at FROM token_bindings");
    if (!s.ok()) return absl::InternalError(sqlite3_errmsg(db_));
    while (s.Next()) {
      TokenBinding b{s.Column(0), s.Column(1), s.Column(2), std::nullopt};
      if (!s.IsNull(3)) b.expires_at = FromEpoch(s.RealColumn(3));
      snapshot.bindings.push_back(std::move(b));
    }
  }
  std::map<std::string, SignedMesh> meshes;
  {
    Statement s(db_, "SELECT mesh_id, mesh_key, last_used_at FROM signed_meshes");
    if (!s.ok()) return absl::InternalError(sqlite3_errmsg(db_));
    while (s.Next()) {
      SignedMesh& m = meshes[s.Column(0)];
      m.mesh_id = s.Column(0);
      m.mesh_key = s.Column(1);
      if (!s.IsNull(2)) m.last_used_at = FromEpoch(s.RealColumn(2));
    }
  }
  {
    Statement s(db_, "SELECT mesh_id, node_id, verify_key FROM founders");
    if (!s.ok()) return absl::InternalError(sqlite3_errmsg(db_));
    while (s.Next()) {
      auto it = meshes.find(s.Column(0));
      if (it != meshes.end()) it->second.founders.push_back(Founder{s.Column(1), s.Column(2)});
    }
  }
  for (auto& [id, mesh] : meshes) snapshot.signed_meshes.push_back(std::move(mesh));
  {
    Statement s(db_, "SELECT mesh_id, nonce, node_id, expires_at FROM used_nonces");
    if (!s.ok()) return absl::InternalError(sqlite3_errmsg(db_));
    while (s.Next()) {
      snapshot.nonces.push_back(
          UsedNonce{s.Column(0), s.Column(1), s.Column(2), FromEpoch(s.RealColumn(3))});
    }
  }
  return snapshot;
}

absl::Status SqliteAuthStore::PutBinding(const TokenBinding& binding) {
  Statement s(db_,
              "INSERT OR REPLACE INTO token_bindings (mesh_id, salt, hash, expires_at) "
              "VALUES (?, ?, ?, ?)");
  s.Text(1, binding.mesh_id).Blob(2, binding.salt).Blob(3, binding.hash);
  if (binding.expires_at) {
    s.Real(4, ToEpoch(*binding.expires_at));
  } else {
    s.Null(4);
  }
  return s.Run();
}

absl::Status SqliteAuthStore::DeleteBinding(absl::string_view mesh_id) {
  Statement s(db_, "DELETE FROM token_bindings WHERE mesh_id = ?");
  s.Text(1, mesh_id);
  return s.Run();
}

absl::Status SqliteAuthStore::PutSignedMesh(const SignedMesh& mesh) {
  if (absl::Status st = Exec("BEGIN"); !st.ok()) return st;
  Statement m(db_,
              "INSERT OR REPLACE INTO signed_meshes (mesh_id, mesh_key, last_used_at) "
              "VALUES (?, ?, ?)");
  m.Text(1, mesh.mesh_id).Blob(2, mesh.mesh_key);
  if (mesh.last_used_at == absl::InfinitePast()) {
    m.Null(3);
  } else {
    m.Real(3, ToEpoch(mesh.last_used_at));
  }
  absl::Status status = m.Run();
  for (const Founder& f : mesh.founders) {
    if (!status.ok()) break;
    Statement s(db_,
                "INSERT OR REPLACE INTO founders (mesh_id, node_id, verify_key) VALUES (?, ?, ?)");
    s.Text(1, mesh.mesh_id).Text(2, f.node_id).Blob(3, f.verify_key);
    status = s.Run();
  }
  absl::Status end = Exec(status.ok() ? "COMMIT" : "ROLLBACK");
  return status.ok() ? end : status;
}

absl::Status SqliteAuthStore::DeleteSignedMesh(absl::string_view mesh_id) {
  if (absl::Status st = Exec("BEGIN"); !st.ok()) return st;
  absl::Status status = absl::OkStatus();
  for (const char* sql :
       {"DELETE FROM signed_meshes WHERE mesh_id = ?", "DELETE FROM founders WHERE mesh_id = ?",
        "DELETE FROM used_nonces WHERE mesh_id = ?"}) {
    if (!status.ok()) break;
    Statement s(db_, sql);
    s.Text(1, mesh_id);
    status = s.Run();
  }
  absl::Status end = Exec(status.ok() ? "COMMIT" : "ROLLBACK");
  return status.ok() ? end : status;
}

absl::Status SqliteAuthStore::PutNonce(const UsedNonce& nonce) {
  Statement s(db_,
              "INSERT OR REPLACE INTO used_nonces (mesh_id, nonce, node_id, expires_at) "
              "VALUES (?, ?, ?, ?)");
  s.Text(1, nonce.mesh_id).Text(2, nonce.nonce).Text(3, nonce.node_id).Real(4,
                                                                           ToEpoch(nonce.expires_at));
  return s.Run();
}

absl::Status SqliteAuthStore::DeleteNoncesExpiredBy(absl::Time now) {
  Statement s(db_, "DELETE FROM used_nonces WHERE expires_at < ?");
  s.Real(1, ToEpoch(now));
  return s.Run();
}

}  // namespace relay::store
