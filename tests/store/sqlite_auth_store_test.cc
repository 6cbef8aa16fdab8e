// SqliteAuthStore: what is written survives reopening the database, which
// is what lets signed meshes, token bindings and nonces survive a restart.
#include "server/store/sqlite_auth_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/mesh_auth.h"

namespace relay::store {
namespace {

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
  std::unique_ptr<SqliteAuthStore> Open() {
    absl::StatusOr<std::unique_ptr<SqliteAuthStore>> store = SqliteAuthStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  std::string dir_;
  std::string path_;
};

const absl::Time kNow = absl::FromUnixSeconds(1764120000);

// The admission's answer, which SqliteAuthStore gives at once: it is
// synchronous, so without an executor MeshAuth completes inline.
absl::Status AdmitNow(core::MeshAuth& auth, const relay::v1::Register& reg) {
  std::optional<absl::StatusOr<core::Admission>> result;
  auth.AdmitRegister(reg, /*mesh_live=*/false, "203.0.113.1", kNow,
                     [&result](absl::StatusOr<core::Admission> a) { result = std::move(a); });
  EXPECT_TRUE(result.has_value()) << "the admission did not complete inline";
  return result ? result->status() : absl::InternalError("the admission did not complete");
}

TEST_F(SqliteAuthStoreTest, EverythingWrittenIsLoadedAfterReopening) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->PutBinding({"bound", std::string("salt\0x", 6), "hash", std::nullopt}).ok());
    ASSERT_TRUE(store->PutBinding({"graced", "s", "h", kNow + absl::Hours(1)}).ok());
    ASSERT_TRUE(store->PutSignedMesh({"home", "mesh-key", {{"mac", "mac-key"}, {"pi", "pi-key"}}}).ok());
    ASSERT_TRUE(store->PutNonce({"home", "n1", "phone", kNow + absl::Hours(2)}).ok());
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
    } else {
      EXPECT_EQ(b.mesh_id, "graced");
      ASSERT_TRUE(b.expires_at.has_value());
      EXPECT_EQ(*b.expires_at, kNow + absl::Hours(1));
    }
  }
  ASSERT_EQ(snapshot->signed_meshes.size(), 1u);
  EXPECT_EQ(snapshot->signed_meshes[0].mesh_key, "mesh-key");
  EXPECT_EQ(snapshot->signed_meshes[0].founders.size(), 2u);
  ASSERT_EQ(snapshot->nonces.size(), 1u);
  EXPECT_EQ(snapshot->nonces[0].node_id, "phone");
  EXPECT_EQ(snapshot->nonces[0].expires_at, kNow + absl::Hours(2));
}

TEST_F(SqliteAuthStoreTest, DeletesAreDurable) {
  {
    auto store = Open();
    ASSERT_TRUE(store->PutBinding({"m", "s", "h", std::nullopt}).ok());
    ASSERT_TRUE(store->PutNonce({"home", "old", "a", kNow}).ok());
    ASSERT_TRUE(store->PutNonce({"home", "new", "b", kNow + absl::Hours(1)}).ok());
    ASSERT_TRUE(store->DeleteBinding("m").ok());
    ASSERT_TRUE(store->DeleteNoncesExpiredBy(kNow + absl::Seconds(1)).ok());
  }
  absl::StatusOr<AuthSnapshot> snapshot = Open()->Load();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_TRUE(snapshot->bindings.empty());
  ASSERT_EQ(snapshot->nonces.size(), 1u);
  EXPECT_EQ(snapshot->nonces[0].nonce, "new");
}

TEST_F(SqliteAuthStoreTest, TokenBindingSurvivesARestartOfMeshAuth) {
  relay::v1::Register owner;
  owner.set_mesh_id("family");
  owner.set_node_id("mac");
  owner.set_token("secret");
  {
    auto store = Open();
    core::MeshAuth auth(store.get(), core::CoreConfig{});
    ASSERT_TRUE(auth.Load(kNow).ok());
    ASSERT_TRUE(AdmitNow(auth, owner).ok());
  }
  auto store = Open();
  core::MeshAuth auth(store.get(), core::CoreConfig{});
  ASSERT_TRUE(auth.Load(kNow).ok());
  relay::v1::Register squatter = owner;
  squatter.set_token("guess");
  EXPECT_TRUE(absl::IsPermissionDenied(AdmitNow(auth, squatter)));
  EXPECT_TRUE(AdmitNow(auth, owner).ok());
}

TEST_F(SqliteAuthStoreTest, OpeningAnUnwritablePathFails) {
  absl::StatusOr<std::unique_ptr<SqliteAuthStore>> store =
      SqliteAuthStore::Open("/nonexistent-dir/relay.db");
  EXPECT_FALSE(store.ok());
}

}  // namespace
TEST_F(SqliteAuthStoreTest, SignedMeshLastUseSurvivesAndDeleteRemovesItsNoncesToo) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    SignedMesh mesh{"home", "mesh-key", {{"mac", "mac-key"}}, kNow};
    ASSERT_TRUE(store->PutSignedMesh(mesh).ok());
    ASSERT_TRUE(store->PutSignedMesh({"other", "k2", {{"pi", "pi-key"}}}).ok());
    ASSERT_TRUE(store->PutNonce({"home", "n1", "phone", kNow + absl::Hours(2)}).ok());
    ASSERT_TRUE(store->PutNonce({"other", "n2", "phone", kNow + absl::Hours(2)}).ok());
  }
  {
    auto store = Open();
    absl::StatusOr<AuthSnapshot> snapshot = store->Load();
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    ASSERT_EQ(snapshot->signed_meshes.size(), 2u);
    for (const SignedMesh& m : snapshot->signed_meshes) {
      EXPECT_EQ(m.last_used_at, m.mesh_id == "home" ? kNow : absl::InfinitePast()) << m.mesh_id;
    }
    ASSERT_TRUE(store->DeleteSignedMesh("home").ok());
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
                           "INSERT INTO signed_meshes VALUES ('old', 'key');",
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
    ASSERT_TRUE(store->PutSignedMesh({"old", "key", {}, kNow}).ok());
  }
  auto store = Open();
  absl::StatusOr<AuthSnapshot> snapshot = store->Load();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ(snapshot->signed_meshes[0].last_used_at, kNow);
}

}  // namespace relay::store
