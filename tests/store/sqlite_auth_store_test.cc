// SqliteAuthStore: what is written survives reopening the database, which
// is what lets signed meshes, token bindings and nonces survive a restart;
// its conditional operations have one winner even across two connections
// (two relays on one file); and every statement runs on its worker thread,
// so a locked database stalls that thread, never the caller.
#include "server/store/sqlite_auth_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/mesh_auth.h"
#include "tests/store/manual_executor.h"

namespace relay::store {
namespace {

// Generous: the machine may be loaded, but a lost answer must not hang.
constexpr std::chrono::seconds kAnswerTimeout(30);

// Waits for one answer of the store's worker thread.
template <typename T>
absl::StatusOr<T> Wait(const std::function<void(AuthStore::Done<T>)>& call) {
  auto answer = std::make_shared<std::promise<absl::StatusOr<T>>>();
  std::future<absl::StatusOr<T>> result = answer->get_future();
  call([answer](absl::StatusOr<T> r) { answer->set_value(std::move(r)); });
  if (result.wait_for(kAnswerTimeout) != std::future_status::ready) {
    return absl::DeadlineExceededError("the store did not answer");
  }
  return result.get();
}

absl::Status WaitWrite(const std::function<void(AuthStore::WriteDone)>& call) {
  auto answer = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = answer->get_future();
  call([answer](absl::Status s) { answer->set_value(std::move(s)); });
  if (result.wait_for(kAnswerTimeout) != std::future_status::ready) {
    return absl::DeadlineExceededError("the store did not answer");
  }
  return result.get();
}

const absl::Time kNow = absl::FromUnixSeconds(1764120000);

// Two connections on one file wait for each other's write lock: patiently,
// on a loaded machine.
SqliteAuthStore::Options Patient() {
  SqliteAuthStore::Options options;
  options.busy_timeout = absl::Seconds(30);
  return options;
}

absl::StatusOr<BindResult> Bind(AuthStore& store, TokenBinding binding, absl::Time now = kNow) {
  return Wait<BindResult>([&](AuthStore::Done<BindResult> done) {
    store.BindIfUnbound(binding, now, std::move(done));
  });
}

absl::StatusOr<SignedMeshClaimResult> Sign(AuthStore& store, const std::string& mesh,
                                           const std::string& key, Founder founder,
                                           absl::Time now = kNow, std::size_t max_founders = 64) {
  SignedMeshClaim claim;
  claim.proposed = SignedMesh{mesh, key, {founder}, now};
  claim.founder = std::move(founder);
  claim.max_founders = max_founders;
  return Wait<SignedMeshClaimResult>([&](AuthStore::Done<SignedMeshClaimResult> done) {
    store.ClaimSignedMesh(claim, std::move(done));
  });
}

absl::StatusOr<NonceResult> UseNonce(AuthStore& store, UsedNonce nonce, absl::Time now = kNow) {
  return Wait<NonceResult>(
      [&](AuthStore::Done<NonceResult> done) { store.UseNonceOnce(nonce, now, std::move(done)); });
}

class SqliteAuthStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/relay-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = absl::StrCat(dir_, "/relay.db");
  }
  void TearDown() override {
    for (const char* suffix : {"", "-wal", "-shm"}) unlink(absl::StrCat(path_, suffix).c_str());
    rmdir(dir_.c_str());
  }
  std::unique_ptr<SqliteAuthStore> Open(SqliteAuthStore::Options options = {}) {
    absl::StatusOr<std::unique_ptr<SqliteAuthStore>> store = SqliteAuthStore::Open(path_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  std::string dir_;
  std::string path_;
};

TEST_F(SqliteAuthStoreTest, EverythingWrittenIsLoadedAfterReopening) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(Bind(*store, {"bound", std::string("salt\0x", 6), "hash", std::nullopt,
                              kNow - absl::Hours(3)})
                    .ok());
    ASSERT_TRUE(Bind(*store, {"graced", "s", "h", kNow + absl::Hours(1)}).ok());
    ASSERT_TRUE(Sign(*store, "home", "mesh-key", {"mac", "mac-key"}).ok());
    // A second founder proves with the mesh key itself.
    ASSERT_TRUE(Sign(*store, "home", "mesh-key", {"pi", "mesh-key"}).ok());
    ASSERT_TRUE(UseNonce(*store, {"home", "n1", "phone", kNow + absl::Hours(2)}).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<AuthSnapshot> snapshot = store->Load();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_EQ(snapshot->bindings.size(), 2u);
  for (const TokenBinding& b : snapshot->bindings) {
    if (b.mesh_id == "bound") {
      EXPECT_EQ(b.salt, std::string("salt\0x", 6));
      EXPECT_EQ(b.hash, "hash");
      EXPECT_FALSE(b.expires_at.has_value());
      EXPECT_EQ(b.bound_at, kNow - absl::Hours(3));
    } else {
      EXPECT_EQ(b.mesh_id, "graced");
      ASSERT_TRUE(b.expires_at.has_value());
      EXPECT_EQ(*b.expires_at, kNow + absl::Hours(1));
      EXPECT_EQ(b.bound_at, absl::InfinitePast());  // not known: stored as NULL
    }
  }
  ASSERT_EQ(snapshot->signed_meshes.size(), 1u);
  EXPECT_EQ(snapshot->signed_meshes[0].mesh_key, "mesh-key");
  ASSERT_EQ(snapshot->signed_meshes[0].founders.size(), 2u);
  EXPECT_EQ(snapshot->signed_meshes[0].founders[0].verify_key, "mac-key");
  ASSERT_EQ(snapshot->nonces.size(), 1u);
  EXPECT_EQ(snapshot->nonces[0].node_id, "phone");
  EXPECT_EQ(snapshot->nonces[0].expires_at, kNow + absl::Hours(2));
}

TEST_F(SqliteAuthStoreTest, DeletesAreDurable) {
  {
    auto store = Open();
    ASSERT_TRUE(Bind(*store, {"m", "s", "h", std::nullopt}).ok());
    ASSERT_TRUE(UseNonce(*store, {"home", "old", "a", kNow}).ok());
    ASSERT_TRUE(UseNonce(*store, {"home", "new", "b", kNow + absl::Hours(1)}).ok());
    ASSERT_TRUE(WaitWrite([&](AuthStore::WriteDone d) {
                  store->DeleteBinding("m", {"h", std::nullopt}, d);
                }).ok());
    ASSERT_TRUE(WaitWrite([&](AuthStore::WriteDone d) {
                  store->DeleteNoncesExpiredBy(kNow + absl::Seconds(1), d);
                }).ok());
  }
  absl::StatusOr<AuthSnapshot> snapshot = Open()->Load();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_TRUE(snapshot->bindings.empty());
  ASSERT_EQ(snapshot->nonces.size(), 1u);
  EXPECT_EQ(snapshot->nonces[0].nonce, "new");
}

// Two relays on one relay.db: one decided to let a binding or a signed mesh
// go from its memory while the other revived or used it.
TEST_F(SqliteAuthStoreTest, DeletesLeaveWhatWasRevivedOrUsedSince) {
  auto store = Open();
  ASSERT_TRUE(Bind(*store, {"m", "s", "h", std::nullopt}).ok());
  ASSERT_TRUE(WaitWrite([&](AuthStore::WriteDone d) {
                store->DeleteBinding("m", {"h", kNow}, d);
              }).ok());
  ASSERT_TRUE(WaitWrite([&](AuthStore::WriteDone d) {
                store->DeleteBinding("m", {"other", std::nullopt}, d);
              }).ok());
  EXPECT_EQ(store->Load()->bindings.size(), 1u);  // no grace ran; another hash
  ASSERT_TRUE(WaitWrite([&](AuthStore::WriteDone d) {
                store->SetBindingExpiry("m", kNow - absl::Minutes(1), d);
              }).ok());
  ASSERT_TRUE(WaitWrite([&](AuthStore::WriteDone d) {
                store->DeleteBinding("m", {"h", kNow}, d);
              }).ok());
  EXPECT_TRUE(store->Load()->bindings.empty());

  ASSERT_TRUE(Sign(*store, "home", "mesh-key", {"mac", "mac-key"}, kNow).ok());
  ASSERT_TRUE(UseNonce(*store, {"home", "n", "a", kNow + absl::Hours(1)}).ok());
  ASSERT_TRUE(WaitWrite([&](AuthStore::WriteDone d) {
                store->DeleteSignedMesh("home", kNow - absl::Hours(1), d);
              }).ok());
  absl::StatusOr<AuthSnapshot> kept = store->Load();
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->signed_meshes.size(), 1u);
  EXPECT_EQ(kept->nonces.size(), 1u);  // its nonces stay with it
  ASSERT_TRUE(
      WaitWrite([&](AuthStore::WriteDone d) { store->DeleteSignedMesh("home", kNow, d); }).ok());
  EXPECT_TRUE(store->Load()->signed_meshes.empty());
  EXPECT_TRUE(store->Load()->nonces.empty());
}

TEST_F(SqliteAuthStoreTest, BindingExpiryStartsAndStops) {
  auto store = Open();
  ASSERT_TRUE(Bind(*store, {"m", "s", "h", std::nullopt}).ok());
  ASSERT_TRUE(WaitWrite([&](AuthStore::WriteDone d) {
                store->SetBindingExpiry("m", kNow + absl::Hours(24), d);
              }).ok());
  EXPECT_EQ(store->Load()->bindings[0].expires_at, kNow + absl::Hours(24));
  ASSERT_TRUE(WaitWrite([&](AuthStore::WriteDone d) {
                store->SetBindingExpiry("m", std::nullopt, d);
              }).ok());
  EXPECT_FALSE(store->Load()->bindings[0].expires_at.has_value());
}

// MeshAuth on SQLite: the store answers on its worker, the answer comes back
// through the executor, and the binding survives a restart.
TEST_F(SqliteAuthStoreTest, TokenBindingSurvivesARestartOfMeshAuth) {
  relay::v1::Register owner;
  owner.set_mesh_id("family");
  owner.set_node_id("mac");
  owner.set_token("secret");
  // Answers on the executor's thread (this one), waiting for the worker.
  const auto admit = [](core::MeshAuth& auth, testing::ManualExecutor& executor,
                        const relay::v1::Register& reg) -> absl::StatusOr<core::Admission> {
    std::optional<absl::StatusOr<core::Admission>> result;
    auth.AdmitRegister(reg, false, "203.0.113.1", kNow,
                       [&result](absl::StatusOr<core::Admission> a) { result = std::move(a); });
    while (!result) {
      if (!executor.WaitForPost(kAnswerTimeout)) return absl::DeadlineExceededError("no answer");
      executor.RunAll();
    }
    return *result;
  };
  {
    auto store = Open();
    testing::ManualExecutor executor;
    core::MeshAuth auth(store.get(), core::CoreConfig{}, nullptr, &executor);
    ASSERT_TRUE(auth.Load(kNow).ok());
    ASSERT_TRUE(admit(auth, executor, owner).ok());
  }
  auto store = Open();
  testing::ManualExecutor executor;
  core::MeshAuth auth(store.get(), core::CoreConfig{}, nullptr, &executor);
  ASSERT_TRUE(auth.Load(kNow).ok());
  relay::v1::Register squatter = owner;
  squatter.set_token("guess");
  EXPECT_TRUE(absl::IsPermissionDenied(admit(auth, executor, squatter).status()));
  EXPECT_TRUE(admit(auth, executor, owner).ok());
}

TEST_F(SqliteAuthStoreTest, OpeningAnUnwritablePathFails) {
  absl::StatusOr<std::unique_ptr<SqliteAuthStore>> store =
      SqliteAuthStore::Open("/nonexistent-dir/relay.db");
  EXPECT_FALSE(store.ok());
}

TEST_F(SqliteAuthStoreTest, SignedMeshLastUseSurvivesAndDeleteRemovesItsNoncesToo) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(Sign(*store, "home", "mesh-key", {"mac", "mac-key"}, kNow).ok());
    ASSERT_TRUE(Sign(*store, "other", "k2", {"pi", "pi-key"}, absl::InfinitePast()).ok());
    ASSERT_TRUE(UseNonce(*store, {"home", "n1", "phone", kNow + absl::Hours(2)}).ok());
    ASSERT_TRUE(UseNonce(*store, {"other", "n2", "phone", kNow + absl::Hours(2)}).ok());
  }
  {
    auto store = Open();
    absl::StatusOr<AuthSnapshot> snapshot = store->Load();
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    ASSERT_EQ(snapshot->signed_meshes.size(), 2u);
    for (const SignedMesh& m : snapshot->signed_meshes) {
      EXPECT_EQ(m.last_used_at, m.mesh_id == "home" ? kNow : absl::InfinitePast()) << m.mesh_id;
    }
    ASSERT_TRUE(WaitWrite([&](AuthStore::WriteDone d) {
                  store->DeleteSignedMesh("home", std::nullopt, d);
                }).ok());
  }
  auto store = Open();
  absl::StatusOr<AuthSnapshot> snapshot = store->Load();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_EQ(snapshot->signed_meshes.size(), 1u);
  EXPECT_EQ(snapshot->signed_meshes[0].mesh_id, "other");
  ASSERT_EQ(snapshot->nonces.size(), 1u);
  EXPECT_EQ(snapshot->nonces[0].mesh_id, "other");
}

// A relay.db written before signed meshes recorded their last use opens,
// keeps its rows, and records last use from then on.
TEST_F(SqliteAuthStoreTest, DatabaseOfAnOlderRelayIsMigrated) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE signed_meshes (mesh_id TEXT PRIMARY KEY, mesh_key BLOB "
                           "NOT NULL);"
                           "INSERT INTO signed_meshes VALUES ('old', 'key');"
                           "CREATE TABLE token_bindings (mesh_id TEXT PRIMARY KEY, salt BLOB NOT "
                           "NULL, hash BLOB NOT NULL, expires_at REAL);"
                           "INSERT INTO token_bindings VALUES ('family', 's', 'h', NULL);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    absl::StatusOr<AuthSnapshot> snapshot = store->Load();
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    ASSERT_EQ(snapshot->signed_meshes.size(), 1u);
    EXPECT_EQ(snapshot->signed_meshes[0].mesh_key, "key");
    EXPECT_EQ(snapshot->signed_meshes[0].last_used_at, absl::InfinitePast());
    ASSERT_EQ(snapshot->bindings.size(), 1u);
    EXPECT_EQ(snapshot->bindings[0].hash, "h");
    EXPECT_EQ(snapshot->bindings[0].bound_at, absl::InfinitePast());
    ASSERT_TRUE(
        WaitWrite([&](AuthStore::WriteDone d) { store->TouchSignedMesh("old", kNow, d); }).ok());
  }
  auto store = Open();
  absl::StatusOr<AuthSnapshot> snapshot = store->Load();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ(snapshot->signed_meshes[0].last_used_at, kNow);
}

// --- conditional operations ---------------------------------------------

TEST_F(SqliteAuthStoreTest, BindIfUnboundAnswersWithTheWinnersBinding) {
  auto store = Open();
  absl::StatusOr<BindResult> first = Bind(*store, {"m", "salt-1", "hash-1", std::nullopt});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  absl::StatusOr<BindResult> second = Bind(*store, {"m", "salt-2", "hash-2", std::nullopt});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->created);
  ASSERT_TRUE(second->state.binding.has_value());
  EXPECT_EQ(second->state.binding->salt, "salt-1");
  EXPECT_EQ(second->state.binding->hash, "hash-1");
  EXPECT_FALSE(second->state.signed_mesh.has_value());
}

// Two connections on one file (two relays): each claims the same meshes at
// once from its own worker; every mesh ends with one binding, and both were
// told the same one.
TEST_F(SqliteAuthStoreTest, ConcurrentBindingsOnTwoConnectionsHaveOneWinnerEach) {
  auto one = Open(Patient());
  auto two = Open(Patient());
  ASSERT_TRUE(one && two);
  constexpr int kMeshes = 40;
  std::vector<std::future<absl::StatusOr<BindResult>>> from_one, from_two;
  const auto claim = [](SqliteAuthStore& store, TokenBinding binding) {
    auto answer = std::make_shared<std::promise<absl::StatusOr<BindResult>>>();
    std::future<absl::StatusOr<BindResult>> result = answer->get_future();
    store.BindIfUnbound(std::move(binding), kNow, [answer](absl::StatusOr<BindResult> r) {
      answer->set_value(std::move(r));
    });
    return result;
  };
  for (int i = 0; i < kMeshes; ++i) {
    const std::string mesh = absl::StrCat("m", i);
    from_one.push_back(claim(*one, {mesh, "salt-one", "hash-one", std::nullopt}));
    from_two.push_back(claim(*two, {mesh, "salt-two", "hash-two", std::nullopt}));
  }
  for (int i = 0; i < kMeshes; ++i) {
    ASSERT_EQ(from_one[i].wait_for(kAnswerTimeout), std::future_status::ready);
    ASSERT_EQ(from_two[i].wait_for(kAnswerTimeout), std::future_status::ready);
    absl::StatusOr<BindResult> a = from_one[i].get();
    absl::StatusOr<BindResult> b = from_two[i].get();
    ASSERT_TRUE(a.ok() && b.ok()) << a.status() << " " << b.status();
    EXPECT_NE(a->created, b->created) << "mesh " << i;
    ASSERT_TRUE(a->state.binding && b->state.binding);
    EXPECT_EQ(a->state.binding->salt, b->state.binding->salt);
    EXPECT_EQ(a->state.binding->salt, a->created ? "salt-one" : "salt-two");
  }
}

TEST_F(SqliteAuthStoreTest, ConcurrentNonceUsesOnTwoConnectionsHaveOneWinner) {
  auto one = Open(Patient());
  auto two = Open(Patient());
  ASSERT_TRUE(one && two);
  const auto use = [](SqliteAuthStore& store, UsedNonce nonce) {
    auto answer = std::make_shared<std::promise<absl::StatusOr<NonceResult>>>();
    std::future<absl::StatusOr<NonceResult>> result = answer->get_future();
    store.UseNonceOnce(std::move(nonce), kNow, [answer](absl::StatusOr<NonceResult> r) {
      answer->set_value(std::move(r));
    });
    return result;
  };
  auto a = use(*one, {"s", "n", "phone", kNow + absl::Hours(1)});
  auto b = use(*two, {"s", "n", "tablet", kNow + absl::Hours(1)});
  ASSERT_EQ(a.wait_for(kAnswerTimeout), std::future_status::ready);
  ASSERT_EQ(b.wait_for(kAnswerTimeout), std::future_status::ready);
  absl::StatusOr<NonceResult> ra = a.get();
  absl::StatusOr<NonceResult> rb = b.get();
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_NE(ra->created, rb->created);
  EXPECT_EQ(ra->holder.node_id, rb->holder.node_id);
  EXPECT_EQ(ra->holder.node_id, ra->created ? "phone" : "tablet");
}

TEST_F(SqliteAuthStoreTest, ABindingAndASignedMeshExcludeEachOther) {
  auto store = Open();
  ASSERT_TRUE(Bind(*store, {"bound", "s", "h", std::nullopt}).ok());
  absl::StatusOr<SignedMeshClaimResult> sign = Sign(*store, "bound", "key", {"f", "key"});
  ASSERT_TRUE(sign.ok());
  EXPECT_EQ(sign->outcome, SignedMeshOutcome::kBound);
  EXPECT_TRUE(sign->state.binding.has_value());
  EXPECT_FALSE(sign->state.signed_mesh.has_value());

  ASSERT_TRUE(Sign(*store, "signed", "key", {"f", "key"}).ok());
  absl::StatusOr<BindResult> bind = Bind(*store, {"signed", "s", "h", std::nullopt});
  ASSERT_TRUE(bind.ok());
  EXPECT_FALSE(bind->created);
  EXPECT_FALSE(bind->state.binding.has_value());
  ASSERT_TRUE(bind->state.signed_mesh.has_value());
  EXPECT_EQ(bind->state.signed_mesh->mesh_key, "key");
  EXPECT_EQ(store->Load()->bindings.size(), 1u);
}

// A record past its expiry is free, whether or not its relay deleted it
// yet (another relay may have stopped before it could); at its expiry
// instant it still holds.
TEST_F(SqliteAuthStoreTest, RecordsPastTheirExpiryAreFreeToClaim) {
  auto store = Open();
  ASSERT_TRUE(Bind(*store, {"at", "old", "h", kNow}).ok());
  ASSERT_TRUE(Bind(*store, {"past", "old", "h", kNow - absl::Seconds(1)}).ok());
  EXPECT_FALSE(Bind(*store, {"at", "new", "h", std::nullopt}, kNow)->created);
  absl::StatusOr<BindResult> taken = Bind(*store, {"past", "new", "h", std::nullopt}, kNow);
  ASSERT_TRUE(taken.ok());
  EXPECT_TRUE(taken->created);
  EXPECT_EQ(taken->state.binding->salt, "new");
  EXPECT_FALSE(taken->state.binding->expires_at.has_value());

  ASSERT_TRUE(UseNonce(*store, {"s", "n", "phone", kNow - absl::Seconds(1)}).ok());
  absl::StatusOr<NonceResult> nonce = UseNonce(*store, {"s", "n", "tablet", kNow + absl::Hours(1)});
  ASSERT_TRUE(nonce.ok());
  EXPECT_TRUE(nonce->created);
  EXPECT_EQ(nonce->holder.node_id, "tablet");

  // A signed mesh may be founded on a binding past its grace.
  ASSERT_TRUE(Bind(*store, {"graced", "s", "h", kNow - absl::Seconds(1)}).ok());
  absl::StatusOr<SignedMeshClaimResult> sign = Sign(*store, "graced", "key", {"f", "key"});
  ASSERT_TRUE(sign.ok());
  EXPECT_EQ(sign->outcome, SignedMeshOutcome::kFounded);
}

TEST_F(SqliteAuthStoreTest, FounderClaimsAreCheckedInTheStore) {
  auto store = Open();
  ASSERT_EQ(Sign(*store, "s", "key", {"f1", "node-key-1"}, kNow, 2)->outcome,
            SignedMeshOutcome::kFounded);
  EXPECT_EQ(Sign(*store, "s", "other-key", {"f1", "other-key"}, kNow, 2)->outcome,
            SignedMeshOutcome::kOtherKey);
  // A fresh node key is not this founder's: the mesh key is public.
  EXPECT_EQ(Sign(*store, "s", "key", {"f1", "fresh-key"}, kNow, 2)->outcome,
            SignedMeshOutcome::kUnprovenKey);
  EXPECT_EQ(Sign(*store, "s", "key", {"f1", "node-key-1"}, kNow, 2)->outcome,
            SignedMeshOutcome::kFounderSaved);
  EXPECT_EQ(Sign(*store, "s", "key", {"f2", "key"}, kNow, 2)->outcome,
            SignedMeshOutcome::kFounderSaved);
  absl::StatusOr<SignedMeshClaimResult> full = Sign(*store, "s", "key", {"f3", "key"}, kNow, 2);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->outcome, SignedMeshOutcome::kFoundersFull);
  ASSERT_TRUE(full->state.signed_mesh.has_value());
  EXPECT_EQ(full->state.signed_mesh->founders.size(), 2u);
}

TEST_F(SqliteAuthStoreTest, LookupMeshReadsWhatTheStoreHolds) {
  auto store = Open();
  ASSERT_TRUE(Bind(*store, {"bound", "s", "h", std::nullopt}).ok());
  ASSERT_TRUE(Sign(*store, "signed", "key", {"f", "key"}).ok());
  const auto lookup = [&](const std::string& id) {
    return Wait<MeshAuthState>(
        [&](AuthStore::Done<MeshAuthState> done) { store->LookupMesh(id, std::move(done)); });
  };
  absl::StatusOr<MeshAuthState> bound = lookup("bound");
  ASSERT_TRUE(bound.ok());
  EXPECT_TRUE(bound->binding && !bound->signed_mesh);
  absl::StatusOr<MeshAuthState> signed_mesh = lookup("signed");
  ASSERT_TRUE(signed_mesh.ok());
  ASSERT_TRUE(signed_mesh->signed_mesh && !signed_mesh->binding);
  EXPECT_EQ(signed_mesh->signed_mesh->founders.size(), 1u);
  absl::StatusOr<MeshAuthState> open = lookup("open");
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(!open->binding && !open->signed_mesh);
}

// --- the worker thread ------------------------------------------------------

TEST_F(SqliteAuthStoreTest, AnswersComeFromTheWorkerThreadNotTheCallers) {
  auto store = Open();
  auto answered_on = std::make_shared<std::promise<std::thread::id>>();
  std::future<std::thread::id> thread = answered_on->get_future();
  store->LookupMesh("m", [answered_on](absl::StatusOr<MeshAuthState>) {
    answered_on->set_value(std::this_thread::get_id());
  });
  ASSERT_EQ(thread.wait_for(kAnswerTimeout), std::future_status::ready);
  EXPECT_NE(thread.get(), std::this_thread::get_id());
}

// Another process holds relay.db's write lock: the worker waits for it (up
// to the busy timeout), the caller does not, and past the queue's bound an
// operation fails at once, Unavailable. Once the lock goes, what was
// queued completes.
TEST_F(SqliteAuthStoreTest, ALockedDatabaseStallsTheWorkerNotTheCallerAndTheQueueIsBounded) {
  SqliteAuthStore::Options options;
  options.max_queued_operations = 2;
  options.busy_timeout = absl::Seconds(60);  // longer than this test
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  struct Answer {
    std::promise<absl::StatusOr<BindResult>> promise;
    std::future<absl::StatusOr<BindResult>> future = promise.get_future();
  };
  std::vector<std::shared_ptr<Answer>> accepted;
  absl::Status refused;
  for (int i = 0; i < 10 && refused.ok(); ++i) {
    auto answer = std::make_shared<Answer>();
    store->BindIfUnbound(
        {absl::StrCat("m", i), "s", "h", std::nullopt}, kNow,
        [answer](absl::StatusOr<BindResult> r) { answer->promise.set_value(std::move(r)); });
    if (answer->future.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      refused = answer->future.get().status();  // answered inline: refused
      ASSERT_FALSE(refused.ok());
    } else {
      accepted.push_back(answer);
    }
  }
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
  // One running (waiting for the lock) and the two queued, or the two queued
  // before the worker took the first.
  EXPECT_GE(accepted.size(), 2u);
  EXPECT_LE(accepted.size(), 3u);
  for (const auto& a : accepted) {
    EXPECT_NE(a->future.wait_for(std::chrono::seconds(0)), std::future_status::ready)
        << "answered while the database is locked";
  }

  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  for (const auto& a : accepted) {
    ASSERT_EQ(a->future.wait_for(kAnswerTimeout), std::future_status::ready);
    absl::StatusOr<BindResult> result = a->future.get();
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(result->created);
  }
}

TEST_F(SqliteAuthStoreTest, AnOperationThatCannotTakeTheLockFailsUnavailable) {
  SqliteAuthStore::Options options;
  options.busy_timeout = absl::Milliseconds(1);
  auto store = Open(options);
  ASSERT_NE(store, nullptr);
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  absl::StatusOr<BindResult> result = Bind(*store, {"m", "s", "h", std::nullopt});
  EXPECT_TRUE(absl::IsUnavailable(result.status())) << result.status();
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE(Bind(*store, {"m", "s", "h", std::nullopt}).ok());
}

// Writes nobody waited for are not lost at shutdown: the destructor runs
// the queue before it joins the worker.
TEST_F(SqliteAuthStoreTest, DestructionRunsWhatIsQueued) {
  {
    auto store = Open();
    ASSERT_TRUE(Bind(*store, {"m", "s", "h", std::nullopt}).ok());
    for (int i = 0; i < 100; ++i) {
      store->SetBindingExpiry("m", kNow + absl::Seconds(i), [](absl::Status) {});
    }
    store->DeleteNoncesExpiredBy(kNow, [](absl::Status) {});
  }
  absl::StatusOr<AuthSnapshot> snapshot = Open()->Load();
  ASSERT_TRUE(snapshot.ok());
  ASSERT_EQ(snapshot->bindings.size(), 1u);
  EXPECT_EQ(snapshot->bindings[0].expires_at, kNow + absl::Seconds(99));
}

}  // namespace
}  // namespace relay::store
