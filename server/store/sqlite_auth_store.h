// SqliteAuthStore: AuthStore in one SQLite database (WAL mode), the file
// relay.db under RELAY_DATA_DIR.
//
// Every SQLite call runs on one worker thread the store owns, never on the
// caller's (the event loop): a write that waits for the database lock (up
// to the busy timeout, when another process holds it) or for the disk then
// delays registrations that need the store, not every connection. The
// worker takes operations from a bounded queue, in order; past the bound an
// operation fails at once with Unavailable. Completion callbacks run on the
// worker thread. The destructor runs what is queued, then joins the worker.
//
// Conditional operations are one transaction each, taken with BEGIN
// IMMEDIATE (the write lock first), and their inserts are INSERT ... ON
// CONFLICT, so that two relays sharing the file resolve a race to one winner.
#ifndef RELAY_SERVER_STORE_SQLITE_AUTH_STORE_H_
#define RELAY_SERVER_STORE_SQLITE_AUTH_STORE_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/store/auth_store.h"

struct sqlite3;

namespace relay::store {

class SqliteAuthStore final : public AuthStore {
 public:
  struct Options {
    // Operations waiting for the worker, at most. Each holds at most a few
    // KB (one record), so the default bounds the queue to ~10 MB; reaching
    // it means the database has not answered for a while.
    std::size_t max_queued_operations = 4096;
    // How long one statement waits for another process's lock on relay.db
    // before it fails (Unavailable).
    absl::Duration busy_timeout = absl::Seconds(1);
  };

  // Opens (creating if needed) `path` and its schema, on the worker thread.
  static absl::StatusOr<std::unique_ptr<SqliteAuthStore>> Open(const std::string& path);
  static absl::StatusOr<std::unique_ptr<SqliteAuthStore>> Open(const std::string& path,
                                                               Options options);
  ~SqliteAuthStore() override;

  // Waits for the worker.
  absl::StatusOr<AuthSnapshot> Load() override;
  void BindIfUnbound(TokenBinding binding, absl::Time now, Done<BindResult> done) override;
  void ClaimSignedMesh(SignedMeshClaim claim, Done<SignedMeshClaimResult> done) override;
  void UseNonceOnce(UsedNonce nonce, absl::Time now, Done<NonceResult> done) override;
  void LookupMesh(std::string mesh_id, Done<MeshAuthState> done) override;
  void SetBindingExpiry(std::string mesh_id, std::optional<absl::Time> expires_at,
                        WriteDone done) override;
  void DeleteBinding(std::string mesh_id, BindingRemoval removal, WriteDone done) override;
  void TouchSignedMesh(std::string mesh_id, absl::Time last_used_at, WriteDone done) override;
  void DeleteSignedMesh(std::string mesh_id, std::optional<absl::Time> unused_since,
                        WriteDone done) override;
  void DeleteNoncesExpiredBy(absl::Time now, WriteDone done) override;

 private:
  class Db;  // the connection and its statements; worker thread only

  explicit SqliteAuthStore(Options options);
  // Queues `op` for the worker; false (op dropped) when the queue is full or
  // the store is stopping.
  bool Submit(std::function<void(Db&)> op);
  // Runs `op` on the worker and answers `done` with its result, or answers
  // Unavailable at once when it cannot be queued.
  template <typename T>
  void Ask(std::function<absl::StatusOr<T>(Db&)> op, Done<T> done);
  void Write(std::function<absl::Status(Db&)> op, WriteDone done);
  void Run();  // the worker thread's loop

  const Options options_;
  std::unique_ptr<Db> db_;  // touched only by the worker thread
  std::mutex mu_;
  std::condition_variable wake_;
  // Guarded by mu_.
  std::deque<std::function<void(Db&)>> queue_;
  bool stopping_ = false;
  std::thread worker_;  // last: starts after the members above exist
};

}  // namespace relay::store

#endif  // RELAY_SERVER_STORE_SQLITE_AUTH_STORE_H_
