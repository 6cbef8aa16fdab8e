#include "server/store/sqlite_auth_store.h"

#include <sqlite3.h>

#include <future>
#include <map>
#include <tuple>
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
  expires_at REAL,            -- NULL while the mesh has peers
  bound_at   REAL             -- NULL: written before it was recorded
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

// relay.db files from before signed meshes recorded their last use, and
// token bindings their creation.
constexpr const char* kAddLastUsedAt = "ALTER TABLE signed_meshes ADD COLUMN last_used_at REAL";
constexpr const char* kAddBoundAt = "ALTER TABLE token_bindings ADD COLUMN bound_at REAL";

double ToEpoch(absl::Time t) { return absl::ToDoubleSeconds(t - absl::UnixEpoch()); }
absl::Time FromEpoch(double s) { return absl::UnixEpoch() + absl::Seconds(s); }
// A signed mesh's last use, or a binding's creation, as stored: NULL for
// unknown (InfinitePast).
std::optional<absl::Time> KnownTime(absl::Time t) {
  if (t == absl::InfinitePast()) return std::nullopt;
  return t;
}

// A failed SQLite call: Unavailable when the database is locked by another
// connection past the busy timeout (worth a retry), else Internal.
absl::Status SqliteError(sqlite3* db, int code, absl::string_view what) {
  std::string message = absl::StrCat("sqlite ", what, ": ", sqlite3_errmsg(db));
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

// One prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    code_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    if (code_ != SQLITE_OK) stmt_ = nullptr;
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
  Statement& OptionalTime(int i, std::optional<absl::Time> t) {
    return t ? Real(i, ToEpoch(*t)) : Null(i);
  }
  // Runs a statement that returns no rows.
  absl::Status Run() {
    if (!ok()) return SqliteError(db_, code_, "prepare");
    code_ = sqlite3_step(stmt_);
    return code_ == SQLITE_DONE ? absl::OkStatus() : SqliteError(db_, code_, "step");
  }
  // Steps to the next row; false at the end or on an error (then status()).
  bool Next() {
    if (!ok()) return false;
    code_ = sqlite3_step(stmt_);
    return code_ == SQLITE_ROW;
  }
  // After the rows: whether they were all read.
  absl::Status status() const {
    if (!ok()) return SqliteError(db_, code_, "prepare");
    return code_ == SQLITE_DONE || code_ == SQLITE_ROW ? absl::OkStatus()
                                                       : SqliteError(db_, code_, "step");
  }
  std::string Column(int i) const {
    const void* data = sqlite3_column_blob(stmt_, i);
    return data == nullptr ? std::string()
                           : std::string(static_cast<const char*>(data),
                                         static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)));
  }
  bool IsNull(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
  double RealColumn(int i) const { return sqlite3_column_double(stmt_, i); }
  std::optional<absl::Time> OptionalTimeColumn(int i) const {
    if (IsNull(i)) return std::nullopt;
    return FromEpoch(RealColumn(i));
  }
  // KnownTime's column read back: NULL is InfinitePast (unknown).
  absl::Time KnownTimeColumn(int i) const {
    return OptionalTimeColumn(i).value_or(absl::InfinitePast());
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int code_ = SQLITE_OK;
};

}  // namespace

// The connection and every statement on it. Lives on the worker thread.
class SqliteAuthStore::Db {
 public:
  ~Db() { sqlite3_close(db_); }

  absl::Status Open(const std::string& path, absl::Duration busy_timeout) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
      return absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", message));
    }
    sqlite3_busy_timeout(db_, static_cast<int>(absl::ToInt64Milliseconds(busy_timeout)));
    if (absl::Status status = Exec(kSchema); !status.ok()) {
      return absl::UnavailableError(absl::StrCat("cannot prepare ", path, ": ", status.message()));
    }
    if (absl::Status status = Migrate(); !status.ok()) {
      return absl::UnavailableError(absl::StrCat("cannot migrate ", path, ": ", status.message()));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<AuthSnapshot> Load() {
    AuthSnapshot snapshot;
    {
      Statement s(db_, "SELECT mesh_id, salt, hash, expires_at, bound_at FROM token_bindings");
      while (s.Next()) {
        snapshot.bindings.push_back(TokenBinding{s.Column(0), s.Column(1), s.Column(2),
                                                 s.OptionalTimeColumn(3), s.KnownTimeColumn(4)});
      }
      if (absl::Status st = s.status(); !st.ok()) return st;
    }
    std::map<std::string, SignedMesh> meshes;
    {
      Statement s(db_, "SELECT mesh_id, mesh_key, last_used_at FROM signed_meshes");
      while (s.Next()) {
        SignedMesh& m = meshes[s.Column(0)];
        m.mesh_id = s.Column(0);
        m.mesh_key = s.Column(1);
        m.last_used_at = s.KnownTimeColumn(2);
      }
      if (absl::Status st = s.status(); !st.ok()) return st;
    }
    {
      Statement s(db_, "SELECT mesh_id, node_id, verify_key FROM founders ORDER BY rowid");
      while (s.Next()) {
        auto it = meshes.find(s.Column(0));
        if (it != meshes.end()) it->second.founders.push_back(Founder{s.Column(1), s.Column(2)});
      }
      if (absl::Status st = s.status(); !st.ok()) return st;
    }
    for (auto& [id, mesh] : meshes) snapshot.signed_meshes.push_back(std::move(mesh));
    {
      Statement s(db_, "SELECT mesh_id, nonce, node_id, expires_at FROM used_nonces");
      while (s.Next()) {
        snapshot.nonces.push_back(
            UsedNonce{s.Column(0), s.Column(1), s.Column(2), FromEpoch(s.RealColumn(3))});
      }
      if (absl::Status st = s.status(); !st.ok()) return st;
    }
    return snapshot;
  }

  absl::StatusOr<BindResult> BindIfUnbound(const TokenBinding& binding, absl::Time now) {
    BindResult result;
    absl::Status status = InTransaction([&]() -> absl::Status {
      absl::StatusOr<std::optional<SignedMesh>> signed_mesh = ReadSigned(binding.mesh_id);
      if (!signed_mesh.ok()) return signed_mesh.status();
      if (*signed_mesh) {
        result.state.signed_mesh = std::move(**signed_mesh);
        return absl::OkStatus();
      }
      // A binding past its grace is free, whether or not its relay has
      // deleted it yet.
      Statement s(db_,
                  "INSERT INTO token_bindings (mesh_id, salt, hash, expires_at, bound_at) "
                  "VALUES (?1, ?2, ?3, ?4, ?6) ON CONFLICT (mesh_id) DO UPDATE SET "
                  "salt = excluded.salt, hash = excluded.hash, expires_at = excluded.expires_at, "
                  "bound_at = excluded.bound_at "
                  "WHERE token_bindings.expires_at IS NOT NULL AND token_bindings.expires_at < ?5");
      s.Text(1, binding.mesh_id).Blob(2, binding.salt).Blob(3, binding.hash);
      s.OptionalTime(4, binding.expires_at).Real(5, ToEpoch(now));
      s.OptionalTime(6, KnownTime(binding.bound_at));
      if (absl::Status st = s.Run(); !st.ok()) return st;
      result.created = sqlite3_changes(db_) > 0;
      absl::StatusOr<std::optional<TokenBinding>> winner = ReadBinding(binding.mesh_id);
      if (!winner.ok()) return winner.status();
      result.state.binding = std::move(*winner);
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    return result;
  }

  absl::StatusOr<SignedMeshClaimResult> ClaimSignedMesh(const SignedMeshClaim& claim) {
    const SignedMesh& proposed = claim.proposed;
    const std::string& mesh_id = proposed.mesh_id;
    const absl::Time now = proposed.last_used_at;
    SignedMeshClaimResult result;
    absl::Status status = InTransaction([&]() -> absl::Status {
      absl::StatusOr<std::optional<TokenBinding>> binding = ReadBinding(mesh_id);
      if (!binding.ok()) return binding.status();
      if (*binding && (!(*binding)->expires_at || *(*binding)->expires_at >= now)) {
        result.outcome = SignedMeshOutcome::kBound;
        result.state.binding = std::move(**binding);
        return absl::OkStatus();
      }
      if (*binding) {  // past its grace: the id is free
        if (absl::Status st = Run("DELETE FROM token_bindings WHERE mesh_id = ?", mesh_id);
            !st.ok()) {
          return st;
        }
      }
      Statement insert(db_,
                       "INSERT INTO signed_meshes (mesh_id, mesh_key, last_used_at) "
                       "VALUES (?, ?, ?) ON CONFLICT (mesh_id) DO NOTHING");
      insert.Text(1, mesh_id).Blob(2, proposed.mesh_key).OptionalTime(3, KnownTime(now));
      if (absl::Status st = insert.Run(); !st.ok()) return st;
      if (sqlite3_changes(db_) > 0) {
        result.outcome = SignedMeshOutcome::kFounded;
        // Rows an earlier mesh of this id left (its nonces were checked
        // against its key; a new owner brings another).
        for (const char* sql : {"DELETE FROM founders WHERE mesh_id = ?",
                                "DELETE FROM used_nonces WHERE mesh_id = ?"}) {
          if (absl::Status st = Run(sql, mesh_id); !st.ok()) return st;
        }
      } else {
        absl::StatusOr<std::optional<SignedMesh>> existing = ReadSigned(mesh_id);
        if (!existing.ok()) return existing.status();
        if (!*existing) return absl::InternalError("signed mesh vanished inside a transaction");
        result.outcome =
            CheckFounderClaim(**existing, proposed.mesh_key, claim.founder, claim.max_founders);
      }
      if (result.outcome == SignedMeshOutcome::kFounded ||
          result.outcome == SignedMeshOutcome::kFounderSaved) {
        Statement founder(db_,
                          "INSERT INTO founders (mesh_id, node_id, verify_key) VALUES (?, ?, ?) "
                          "ON CONFLICT (mesh_id, node_id) DO UPDATE SET "
                          "verify_key = excluded.verify_key");
        founder.Text(1, mesh_id).Text(2, claim.founder.node_id).Blob(3, claim.founder.verify_key);
        if (absl::Status st = founder.Run(); !st.ok()) return st;
        Statement touch(db_, "UPDATE signed_meshes SET last_used_at = ? WHERE mesh_id = ?");
        touch.OptionalTime(1, KnownTime(now)).Text(2, mesh_id);
        if (absl::Status st = touch.Run(); !st.ok()) return st;
      }
      absl::StatusOr<std::optional<SignedMesh>> after = ReadSigned(mesh_id);
      if (!after.ok()) return after.status();
      result.state.signed_mesh = std::move(*after);
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    return result;
  }

  absl::StatusOr<NonceResult> UseNonceOnce(const UsedNonce& nonce, absl::Time now) {
    NonceResult result;
    absl::Status status = InTransaction([&]() -> absl::Status {
      // A use whose token has expired holds the nonce no longer.
      Statement s(db_,
                  "INSERT INTO used_nonces (mesh_id, nonce, node_id, expires_at) "
                  "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (mesh_id, nonce) DO UPDATE SET "
                  "node_id = excluded.node_id, expires_at = excluded.expires_at "
                  "WHERE used_nonces.expires_at < ?5");
      s.Text(1, nonce.mesh_id).Text(2, nonce.nonce).Text(3, nonce.node_id);
      s.Real(4, ToEpoch(nonce.expires_at)).Real(5, ToEpoch(now));
      if (absl::Status st = s.Run(); !st.ok()) return st;
      result.created = sqlite3_changes(db_) > 0;
      Statement holder(
          db_, "SELECT node_id, expires_at FROM used_nonces WHERE mesh_id = ? AND nonce = ?");
      holder.Text(1, nonce.mesh_id).Text(2, nonce.nonce);
      if (!holder.Next()) {
        absl::Status st = holder.status();
        return st.ok() ? absl::InternalError("used nonce vanished inside a transaction") : st;
      }
      result.holder =
          UsedNonce{nonce.mesh_id, nonce.nonce, holder.Column(0), FromEpoch(holder.RealColumn(1))};
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    return result;
  }

  absl::StatusOr<MeshAuthState> LookupMesh(const std::string& mesh_id) {
    MeshAuthState state;
    // A read transaction: both tables as of one moment.
    absl::Status status = InTransaction(
        [&]() -> absl::Status {
          absl::StatusOr<std::optional<TokenBinding>> binding = ReadBinding(mesh_id);
          if (!binding.ok()) return binding.status();
          absl::StatusOr<std::optional<SignedMesh>> signed_mesh = ReadSigned(mesh_id);
          if (!signed_mesh.ok()) return signed_mesh.status();
          state.binding = std::move(*binding);
          state.signed_mesh = std::move(*signed_mesh);
          return absl::OkStatus();
        },
        "BEGIN");
    if (!status.ok()) return status;
    return state;
  }

  absl::Status SetBindingExpiry(const std::string& mesh_id, std::optional<absl::Time> expires_at) {
    Statement s(db_, "UPDATE token_bindings SET expires_at = ? WHERE mesh_id = ?");
    s.OptionalTime(1, expires_at).Text(2, mesh_id);
    return s.Run();
  }

  absl::Status DeleteBinding(const std::string& mesh_id, const BindingRemoval& removal) {
    // The condition in the statement: another process on this relay.db may
    // have revived or replaced the binding since it was decided on.
    Statement s(db_,
                "DELETE FROM token_bindings WHERE mesh_id = ?1 AND hash = ?2 AND "
                "(?3 IS NULL OR (expires_at IS NOT NULL AND expires_at <= ?3))");
    s.Text(1, mesh_id).Blob(2, removal.hash).OptionalTime(3, removal.expired_by);
    return s.Run();
  }

  absl::Status TouchSignedMesh(const std::string& mesh_id, absl::Time last_used_at) {
    Statement s(db_, "UPDATE signed_meshes SET last_used_at = ? WHERE mesh_id = ?");
    s.Real(1, ToEpoch(last_used_at)).Text(2, mesh_id);
    return s.Run();
  }

  absl::Status DeleteSignedMesh(const std::string& mesh_id,
                                std::optional<absl::Time> unused_since) {
    return InTransaction([&]() -> absl::Status {
      Statement mesh(db_,
                     "DELETE FROM signed_meshes WHERE mesh_id = ?1 AND "
                     "(?2 IS NULL OR last_used_at IS NULL OR last_used_at <= ?2)");
      mesh.Text(1, mesh_id).OptionalTime(2, unused_since);
      if (absl::Status st = mesh.Run(); !st.ok()) return st;
      // Used since: it stays, founders and nonces with it.
      if (unused_since && sqlite3_changes(db_) == 0) return absl::OkStatus();
      for (const char* sql : {"DELETE FROM founders WHERE mesh_id = ?",
                              "DELETE FROM used_nonces WHERE mesh_id = ?"}) {
        if (absl::Status st = Run(sql, mesh_id); !st.ok()) return st;
      }
      return absl::OkStatus();
    });
  }

  absl::Status DeleteNoncesExpiredBy(absl::Time now) {
    Statement s(db_, "DELETE FROM used_nonces WHERE expires_at < ?");
    s.Real(1, ToEpoch(now));
    return s.Run();
  }

 private:
  absl::Status Exec(const char* sql) {
    char* error = nullptr;
    const int code = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
    if (code != SQLITE_OK) {
      absl::Status status = SqliteError(db_, code, error != nullptr ? error : "exec");
      sqlite3_free(error);
      return status;
    }
    return absl::OkStatus();
  }

  // One statement with one text parameter.
  absl::Status Run(const char* sql, absl::string_view arg) {
    Statement s(db_, sql);
    s.Text(1, arg);
    return s.Run();
  }

  // `body` inside one transaction, committed when it succeeds. BEGIN
  // IMMEDIATE takes the write lock first, so what `body` reads cannot change
  // before it writes (another relay on the same file waits, or we do).
  absl::Status InTransaction(const std::function<absl::Status()>& body,
                             const char* begin = "BEGIN IMMEDIATE") {
    if (absl::Status st = Exec(begin); !st.ok()) return st;
    absl::Status status = body();
    if (status.ok()) {
      status = Exec("COMMIT");
      if (status.ok()) return status;
    }
    (void)Exec("ROLLBACK");
    return status;
  }

  absl::StatusOr<std::optional<TokenBinding>> ReadBinding(const std::string& mesh_id) {
    Statement s(db_,
                "SELECT salt, hash, expires_at, bound_at FROM token_bindings WHERE mesh_id = ?");
    s.Text(1, mesh_id);
    if (!s.Next()) {
      if (absl::Status st = s.status(); !st.ok()) return st;
      return std::optional<TokenBinding>();
    }
    return std::optional<TokenBinding>(TokenBinding{mesh_id, s.Column(0), s.Column(1),
                                                    s.OptionalTimeColumn(2), s.KnownTimeColumn(3)});
  }

  absl::StatusOr<std::optional<SignedMesh>> ReadSigned(const std::string& mesh_id) {
    SignedMesh mesh;
    {
      Statement s(db_, "SELECT mesh_key, last_used_at FROM signed_meshes WHERE mesh_id = ?");
      s.Text(1, mesh_id);
      if (!s.Next()) {
        if (absl::Status st = s.status(); !st.ok()) return st;
        return std::optional<SignedMesh>();
      }
      mesh.mesh_id = mesh_id;
      mesh.mesh_key = s.Column(0);
      mesh.last_used_at = s.KnownTimeColumn(1);
    }
    Statement s(db_, "SELECT node_id, verify_key FROM founders WHERE mesh_id = ? ORDER BY rowid");
    s.Text(1, mesh_id);
    while (s.Next()) mesh.founders.push_back(Founder{s.Column(0), s.Column(1)});
    if (absl::Status st = s.status(); !st.ok()) return st;
    return std::optional<SignedMesh>(std::move(mesh));
  }

  // Brings a relay.db written by an older relay to the current schema.
  absl::Status Migrate() {
    for (const auto& [table, column, add] : {std::tuple<const char*, const char*, const char*>{
                                                 "signed_meshes", "last_used_at", kAddLastUsedAt},
                                             {"token_bindings", "bound_at", kAddBoundAt}}) {
      absl::StatusOr<bool> has = HasColumn(table, column);
      if (!has.ok()) return has.status();
      if (!*has) {
        if (absl::Status st = Exec(add); !st.ok()) return st;
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<bool> HasColumn(const char* table, absl::string_view column) {
    Statement s(db_, absl::StrCat("PRAGMA table_info(", table, ")").c_str());
    bool has = false;
    while (s.Next()) has = has || s.Column(1) == column;
    if (absl::Status st = s.status(); !st.ok()) return st;
    return has;
  }

  sqlite3* db_ = nullptr;
};

SqliteAuthStore::SqliteAuthStore(Options options)
    : options_(options), db_(std::make_unique<Db>()), worker_([this] { Run(); }) {}

absl::StatusOr<std::unique_ptr<SqliteAuthStore>> SqliteAuthStore::Open(const std::string& path) {
  return Open(path, Options{});
}

absl::StatusOr<std::unique_ptr<SqliteAuthStore>> SqliteAuthStore::Open(const std::string& path,
                                                                       Options options) {
  std::unique_ptr<SqliteAuthStore> store(new SqliteAuthStore(options));
  std::promise<absl::Status> opened;
  std::future<absl::Status> result = opened.get_future();
  const absl::Duration busy_timeout = options.busy_timeout;
  store->Submit(
      [&opened, &path, busy_timeout](Db& db) { opened.set_value(db.Open(path, busy_timeout)); });
  if (absl::Status status = result.get(); !status.ok()) return status;
  return store;
}

SqliteAuthStore::~SqliteAuthStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

bool SqliteAuthStore::Submit(std::function<void(Db&)> op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= options_.max_queued_operations) return false;
    queue_.push_back(std::move(op));
  }
  wake_.notify_one();
  return true;
}

void SqliteAuthStore::Run() {
  for (;;) {
    std::function<void(Db&)> op;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      // Stopping still runs what was queued: those writes are what a restart
      // will find.
      if (queue_.empty()) break;
      op = std::move(queue_.front());
      queue_.pop_front();
    }
    op(*db_);
  }
  db_.reset();  // sqlite3_close on the thread that used the connection
}

namespace {
absl::Status QueueFull(std::size_t limit) {
  return absl::UnavailableError(absl::StrCat("the authentication store has ", limit,
                                             " operations waiting for relay.db; retry later"));
}
}  // namespace

template <typename T>
void SqliteAuthStore::Ask(std::function<absl::StatusOr<T>(Db&)> op, Done<T> done) {
  // Shared so that a refused closure leaves `done` here to answer.
  auto answer = std::make_shared<Done<T>>(std::move(done));
  if (!Submit([op = std::move(op), answer](Db& db) { (*answer)(op(db)); })) {
    (*answer)(QueueFull(options_.max_queued_operations));
  }
}

void SqliteAuthStore::Write(std::function<absl::Status(Db&)> op, WriteDone done) {
  auto answer = std::make_shared<WriteDone>(std::move(done));
  if (!Submit([op = std::move(op), answer](Db& db) { (*answer)(op(db)); })) {
    (*answer)(QueueFull(options_.max_queued_operations));
  }
}

absl::StatusOr<AuthSnapshot> SqliteAuthStore::Load() {
  std::promise<absl::StatusOr<AuthSnapshot>> loaded;
  std::future<absl::StatusOr<AuthSnapshot>> result = loaded.get_future();
  if (!Submit([&loaded](Db& db) { loaded.set_value(db.Load()); })) {
    return QueueFull(options_.max_queued_operations);
  }
  return result.get();
}

void SqliteAuthStore::BindIfUnbound(TokenBinding binding, absl::Time now, Done<BindResult> done) {
  Ask<BindResult>(
      [binding = std::move(binding), now](Db& db) { return db.BindIfUnbound(binding, now); },
      std::move(done));
}

void SqliteAuthStore::ClaimSignedMesh(SignedMeshClaim claim, Done<SignedMeshClaimResult> done) {
  Ask<SignedMeshClaimResult>(
      [claim = std::move(claim)](Db& db) { return db.ClaimSignedMesh(claim); }, std::move(done));
}

void SqliteAuthStore::UseNonceOnce(UsedNonce nonce, absl::Time now, Done<NonceResult> done) {
  Ask<NonceResult>([nonce = std::move(nonce), now](Db& db) { return db.UseNonceOnce(nonce, now); },
                   std::move(done));
}

void SqliteAuthStore::LookupMesh(std::string mesh_id, Done<MeshAuthState> done) {
  Ask<MeshAuthState>([mesh_id = std::move(mesh_id)](Db& db) { return db.LookupMesh(mesh_id); },
                     std::move(done));
}

void SqliteAuthStore::SetBindingExpiry(std::string mesh_id, std::optional<absl::Time> expires_at,
                                       WriteDone done) {
  Write([mesh_id = std::move(mesh_id),
         expires_at](Db& db) { return db.SetBindingExpiry(mesh_id, expires_at); },
        std::move(done));
}

void SqliteAuthStore::DeleteBinding(std::string mesh_id, BindingRemoval removal, WriteDone done) {
  Write([mesh_id = std::move(mesh_id),
         removal = std::move(removal)](Db& db) { return db.DeleteBinding(mesh_id, removal); },
        std::move(done));
}

void SqliteAuthStore::TouchSignedMesh(std::string mesh_id, absl::Time last_used_at,
                                      WriteDone done) {
  Write([mesh_id = std::move(mesh_id),
         last_used_at](Db& db) { return db.TouchSignedMesh(mesh_id, last_used_at); },
        std::move(done));
}

void SqliteAuthStore::DeleteSignedMesh(std::string mesh_id, std::optional<absl::Time> unused_since,
                                       WriteDone done) {
  Write([mesh_id = std::move(mesh_id),
         unused_since](Db& db) { return db.DeleteSignedMesh(mesh_id, unused_since); },
        std::move(done));
}

void SqliteAuthStore::DeleteNoncesExpiredBy(absl::Time now, WriteDone done) {
  Write([now](Db& db) { return db.DeleteNoncesExpiredBy(now); }, std::move(done));
}

}  // namespace relay::store
