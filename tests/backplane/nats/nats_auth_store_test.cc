// NatsAuthStore against a real nats-server with JetStream: each operation
// answers as SqliteAuthStore's (the other store that decides races; the
// same cases as tests/store/sqlite_auth_store_test.cc), two stores on two
// connections (two instances) agree on one winner and see each other's
// records, an outage is Unavailable and never a conflict, any mesh id works,
// and every answer comes through the CoreExecutor. Last, on a three-node
// cluster at R3: races across nodes, and a node's loss.
#include "backplane/nats/nats_auth_store.h"

#include <unistd.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backplane/nats/kv_bucket.h"
#include "backplane/nats/nats_connection.h"
#include "backplane/nats/nats_names.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/mesh_auth.h"
#include "tests/backplane/nats/nats_cluster.h"
#include "tests/backplane/nats/nats_server.h"
#include "tests/store/manual_executor.h"

namespace relay::backplane::nats {
namespace {

using store::AuthStore;
using store::BindResult;
using store::Founder;
using store::MeshAuthState;
using store::NonceResult;
using store::SignedMeshClaim;
using store::SignedMeshClaimResult;
using store::SignedMeshOutcome;
using store::TokenBinding;
using store::UsedNonce;
using store::testing::ManualExecutor;
using testing::NatsCluster;
using testing::NatsServer;

// Generous: the machine may be loaded, but a lost answer must not hang.
constexpr std::chrono::seconds kAnswerTimeout(30);
const absl::Time kNow = absl::FromUnixSeconds(1764120000);

// One answer, set by the callback the executor runs. Shared: an answer
// that comes after its test gave up must not write to a dead frame.
template <typename T>
using Slot = std::shared_ptr<std::optional<T>>;

// Runs the executor (this thread plays the core thread) until every slot
// is filled, or the deadline passes; false then.
template <typename T>
bool RunUntilAnswered(ManualExecutor& executor, const std::vector<Slot<T>>& slots) {
  const auto deadline = std::chrono::steady_clock::now() + kAnswerTimeout;
  const auto all = [&] {
    for (const Slot<T>& s : slots) {
      if (!s->has_value()) return false;
    }
    return true;
  };
  for (;;) {
    executor.RunAll();
    if (all()) return true;
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return false;
    executor.WaitForPost(std::chrono::duration_cast<std::chrono::milliseconds>(left) +
                         std::chrono::milliseconds(1));
  }
}

template <typename T>
Slot<absl::StatusOr<T>> Start(const std::function<void(AuthStore::Done<T>)>& call) {
  auto slot = std::make_shared<std::optional<absl::StatusOr<T>>>();
  call([slot](absl::StatusOr<T> r) { *slot = std::move(r); });
  return slot;
}

template <typename T>
absl::StatusOr<T> Await(ManualExecutor& executor,
                        const std::function<void(AuthStore::Done<T>)>& call) {
  Slot<absl::StatusOr<T>> slot = Start<T>(call);
  if (!RunUntilAnswered<absl::StatusOr<T>>(executor, {slot})) {
    return absl::DeadlineExceededError("the store did not answer");
  }
  return **slot;
}

absl::Status AwaitWrite(ManualExecutor& executor,
                        const std::function<void(AuthStore::WriteDone)>& call) {
  auto slot = std::make_shared<std::optional<absl::Status>>();
  call([slot](absl::Status s) { *slot = std::move(s); });
  if (!RunUntilAnswered<absl::Status>(executor, {slot})) {
    return absl::DeadlineExceededError("the store did not answer");
  }
  return **slot;
}

SignedMeshClaim Claim(const std::string& mesh, const std::string& key, Founder founder,
                      absl::Time now = kNow, std::size_t max_founders = 64) {
  SignedMeshClaim claim;
  claim.proposed = store::SignedMesh{mesh, key, {founder}, now};
  claim.founder = std::move(founder);
  claim.max_founders = max_founders;
  return claim;
}

class NatsAuthStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (NatsServer::FindBinary().empty()) GTEST_SKIP() << "nats-server is not installed";
    absl::Status started = server_.Start();
    ASSERT_TRUE(started.ok()) << started;
    conn_a_ = Connect("a");
    conn_b_ = Connect("b");
    ASSERT_TRUE(conn_a_ && conn_b_);
    a_ = OpenStore(*conn_a_);
    b_ = OpenStore(*conn_b_);
    ASSERT_TRUE(a_ && b_);
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << server_.Log() << "\n";
    // The stores post their last answers while they stop: run them here,
    // while the executor lives.
    a_.reset();
    b_.reset();
    executor_.RunAll();
  }

  std::unique_ptr<NatsConnection> Connect(const std::string& who) {
    NatsSettings settings;
    settings.urls = {*server_.Url()};
    settings.name = absl::StrCat("relay nats_auth_store_test ", who);
    absl::StatusOr<std::unique_ptr<NatsConnection>> conn = NatsConnection::Connect(settings);
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) return nullptr;
    NatsConnection* raw = conn->get();
    EXPECT_TRUE(testing::WaitFor([raw] { return raw->connected(); }, std::chrono::seconds(10)));
    return *std::move(conn);
  }
  std::unique_ptr<NatsAuthStore> OpenStore(NatsConnection& conn,
                                           NatsAuthStoreSettings settings = Settings()) {
    absl::StatusOr<std::unique_ptr<NatsAuthStore>> store =
        NatsAuthStore::Open(conn.raw(), settings, &executor_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  static NatsAuthStoreSettings Settings() {
    NatsAuthStoreSettings settings;
    settings.cluster = "test";
    settings.max_join_token_lifetime = absl::Hours(1);
    return settings;
  }

  absl::StatusOr<BindResult> Bind(AuthStore& store, TokenBinding binding, absl::Time now = kNow) {
    return Await<BindResult>(executor_, [&](AuthStore::Done<BindResult> done) {
      store.BindIfUnbound(binding, now, std::move(done));
    });
  }
  absl::StatusOr<SignedMeshClaimResult> Sign(AuthStore& store, const std::string& mesh,
                                             const std::string& key, Founder founder,
                                             absl::Time now = kNow, std::size_t max_founders = 64) {
    SignedMeshClaim claim = Claim(mesh, key, std::move(founder), now, max_founders);
    return Await<SignedMeshClaimResult>(executor_,
                                        [&](AuthStore::Done<SignedMeshClaimResult> done) {
                                          store.ClaimSignedMesh(claim, std::move(done));
                                        });
  }
  absl::StatusOr<NonceResult> UseNonce(AuthStore& store, UsedNonce nonce, absl::Time now = kNow) {
    return Await<NonceResult>(executor_, [&](AuthStore::Done<NonceResult> done) {
      store.UseNonceOnce(nonce, now, std::move(done));
    });
  }
  absl::StatusOr<MeshAuthState> Lookup(AuthStore& store, const std::string& mesh) {
    return Await<MeshAuthState>(executor_, [&](AuthStore::Done<MeshAuthState> done) {
      store.LookupMesh(mesh, std::move(done));
    });
  }
  absl::Status WriteOp(const std::function<void(AuthStore::WriteDone)>& call) {
    return AwaitWrite(executor_, call);
  }

  static NatsServer::Options JetStream() {
    NatsServer::Options options;
    options.jetstream = true;
    return options;
  }

  NatsServer server_{JetStream()};
  ManualExecutor executor_;  // before the stores: they post to it until they stop
  std::unique_ptr<NatsConnection> conn_a_;
  std::unique_ptr<NatsConnection> conn_b_;
  std::unique_ptr<NatsAuthStore> a_;  // instance A
  std::unique_ptr<NatsAuthStore> b_;  // instance B, same cluster
};

// --- each operation, as SqliteAuthStore answers it ------------------------------

TEST_F(NatsAuthStoreTest, LoadIsEmptyRecordsAreReadPerMesh) {
  ASSERT_TRUE(Bind(*a_, {"m", "s", "h", std::nullopt}).ok());
  absl::StatusOr<store::AuthSnapshot> snapshot = a_->Load();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_TRUE(snapshot->bindings.empty());
  EXPECT_TRUE(snapshot->signed_meshes.empty());
  EXPECT_TRUE(snapshot->nonces.empty());
}

TEST_F(NatsAuthStoreTest, BindIfUnboundAnswersWithTheWinnersBinding) {
  absl::StatusOr<BindResult> first = Bind(*a_, {"m", "salt-1", "hash-1", std::nullopt});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  absl::StatusOr<BindResult> second = Bind(*a_, {"m", "salt-2", "hash-2", std::nullopt});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->created);
  ASSERT_TRUE(second->state.binding.has_value());
  EXPECT_EQ(second->state.binding->mesh_id, "m");
  EXPECT_EQ(second->state.binding->salt, "salt-1");
  EXPECT_EQ(second->state.binding->hash, "hash-1");
  EXPECT_FALSE(second->state.signed_mesh.has_value());
}

TEST_F(NatsAuthStoreTest, ABindingAndASignedMeshExcludeEachOther) {
  ASSERT_TRUE(Bind(*a_, {"bound", "s", "h", std::nullopt}).ok());
  absl::StatusOr<SignedMeshClaimResult> sign = Sign(*a_, "bound", "key", {"f", "key"});
  ASSERT_TRUE(sign.ok()) << sign.status();
  EXPECT_EQ(sign->outcome, SignedMeshOutcome::kBound);
  EXPECT_TRUE(sign->state.binding.has_value());
  EXPECT_FALSE(sign->state.signed_mesh.has_value());

  ASSERT_TRUE(Sign(*a_, "signed", "key", {"f", "key"}).ok());
  absl::StatusOr<BindResult> bind = Bind(*a_, {"signed", "s", "h", std::nullopt});
  ASSERT_TRUE(bind.ok()) << bind.status();
  EXPECT_FALSE(bind->created);
  EXPECT_FALSE(bind->state.binding.has_value());
  ASSERT_TRUE(bind->state.signed_mesh.has_value());
  EXPECT_EQ(bind->state.signed_mesh->mesh_key, "key");
  EXPECT_TRUE(Lookup(*a_, "bound")->binding.has_value());
  EXPECT_FALSE(Lookup(*a_, "signed")->binding.has_value());
}

// A record past its expiry is free, whether or not its instance deleted it
// yet; at its expiry instant it still holds.
TEST_F(NatsAuthStoreTest, RecordsPastTheirExpiryAreFreeToClaim) {
  ASSERT_TRUE(Bind(*a_, {"at", "old", "h", kNow}).ok());
  ASSERT_TRUE(Bind(*a_, {"past", "old", "h", kNow - absl::Seconds(1)}).ok());
  absl::StatusOr<BindResult> held = Bind(*a_, {"at", "new", "h", std::nullopt}, kNow);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_FALSE(held->created);
  EXPECT_EQ(held->state.binding->salt, "old");
  absl::StatusOr<BindResult> taken = Bind(*a_, {"past", "new", "h", std::nullopt}, kNow);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_TRUE(taken->created);
  EXPECT_EQ(taken->state.binding->salt, "new");
  EXPECT_FALSE(taken->state.binding->expires_at.has_value());
  EXPECT_EQ(Lookup(*a_, "past")->binding->salt, "new");

  ASSERT_TRUE(UseNonce(*a_, {"s", "n", "phone", kNow - absl::Seconds(1)}).ok());
  absl::StatusOr<NonceResult> nonce = UseNonce(*a_, {"s", "n", "tablet", kNow + absl::Hours(1)});
  ASSERT_TRUE(nonce.ok()) << nonce.status();
  EXPECT_TRUE(nonce->created);
  EXPECT_EQ(nonce->holder.node_id, "tablet");
  absl::StatusOr<NonceResult> again = UseNonce(*a_, {"s", "n", "laptop", kNow + absl::Hours(1)});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->holder.node_id, "tablet");
  EXPECT_EQ(again->holder.expires_at, kNow + absl::Hours(1));

  // A signed mesh may be founded on a binding past its grace, not on one in it.
  ASSERT_TRUE(Bind(*a_, {"graced", "s", "h", kNow - absl::Seconds(1)}).ok());
  ASSERT_TRUE(Bind(*a_, {"grace", "s", "h", kNow + absl::Seconds(1)}).ok());
  EXPECT_EQ(Sign(*a_, "graced", "key", {"f", "key"})->outcome, SignedMeshOutcome::kFounded);
  EXPECT_EQ(Sign(*a_, "grace", "key", {"f", "key"})->outcome, SignedMeshOutcome::kBound);
  absl::StatusOr<MeshAuthState> graced = Lookup(*a_, "graced");
  ASSERT_TRUE(graced.ok());
  EXPECT_FALSE(graced->binding.has_value());
  ASSERT_TRUE(graced->signed_mesh.has_value());
}

TEST_F(NatsAuthStoreTest, FounderClaimsAreCheckedInTheStore) {
  ASSERT_EQ(Sign(*a_, "s", "key", {"f1", "node-key-1"}, kNow, 2)->outcome,
            SignedMeshOutcome::kFounded);
  EXPECT_EQ(Sign(*a_, "s", "other-key", {"f1", "other-key"}, kNow, 2)->outcome,
            SignedMeshOutcome::kOtherKey);
  // A fresh node key is not this founder's: the mesh key is public.
  EXPECT_EQ(Sign(*a_, "s", "key", {"f1", "fresh-key"}, kNow, 2)->outcome,
            SignedMeshOutcome::kUnprovenKey);
  EXPECT_EQ(Sign(*a_, "s", "key", {"f1", "node-key-1"}, kNow, 2)->outcome,
            SignedMeshOutcome::kFounderSaved);
  absl::StatusOr<SignedMeshClaimResult> second = Sign(*a_, "s", "key", {"f2", "key"}, kNow, 2);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->outcome, SignedMeshOutcome::kFounderSaved);
  ASSERT_TRUE(second->state.signed_mesh.has_value());
  EXPECT_EQ(second->state.signed_mesh->founders.size(), 2u);
  absl::StatusOr<SignedMeshClaimResult> full = Sign(*a_, "s", "key", {"f3", "key"}, kNow, 2);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->outcome, SignedMeshOutcome::kFoundersFull);
  ASSERT_TRUE(full->state.signed_mesh.has_value());
  EXPECT_EQ(full->state.signed_mesh->founders.size(), 2u);
  // A founder's new key, proven with the mesh key, replaces its old one.
  ASSERT_EQ(Sign(*a_, "s", "key", {"f1", "key"}, kNow + absl::Hours(1), 2)->outcome,
            SignedMeshOutcome::kFounderSaved);
  absl::StatusOr<MeshAuthState> after = Lookup(*a_, "s");
  ASSERT_TRUE(after.ok() && after->signed_mesh);
  ASSERT_EQ(after->signed_mesh->founders.size(), 2u);
  EXPECT_EQ(after->signed_mesh->founders[0].node_id, "f1");
  EXPECT_EQ(after->signed_mesh->founders[0].verify_key, "key");
  EXPECT_EQ(after->signed_mesh->founders[1].node_id, "f2");
  EXPECT_EQ(after->signed_mesh->last_used_at, kNow + absl::Hours(1));
}

// Every field comes back as written: raw bytes, expiries, founders in
// order, an unknown last use.
TEST_F(NatsAuthStoreTest, LookupMeshReadsWhatTheStoreHolds) {
  const std::string salt("salt\0x", 6);
  ASSERT_TRUE(
      Bind(*a_, {"bound", salt, "hash", kNow + absl::Hours(1), kNow - absl::Hours(5)}).ok());
  ASSERT_TRUE(Bind(*a_, {"older", salt, "hash", std::nullopt}).ok());  // bound_at unknown
  ASSERT_TRUE(Sign(*a_, "signed", "key", {"mac", "mac-key"}, absl::InfinitePast()).ok());
  ASSERT_TRUE(Sign(*a_, "signed", "key", {"pi", "key"}, absl::InfinitePast()).ok());

  absl::StatusOr<MeshAuthState> bound = Lookup(*a_, "bound");
  ASSERT_TRUE(bound.ok()) << bound.status();
  ASSERT_TRUE(bound->binding && !bound->signed_mesh);
  EXPECT_EQ(bound->binding->mesh_id, "bound");
  EXPECT_EQ(bound->binding->salt, salt);
  EXPECT_EQ(bound->binding->hash, "hash");
  EXPECT_EQ(bound->binding->expires_at, kNow + absl::Hours(1));
  EXPECT_EQ(bound->binding->bound_at, kNow - absl::Hours(5));
  EXPECT_EQ(Lookup(*b_, "older")->binding->bound_at, absl::InfinitePast());

  absl::StatusOr<MeshAuthState> signed_mesh = Lookup(*a_, "signed");
  ASSERT_TRUE(signed_mesh.ok()) << signed_mesh.status();
  ASSERT_TRUE(signed_mesh->signed_mesh && !signed_mesh->binding);
  EXPECT_EQ(signed_mesh->signed_mesh->mesh_id, "signed");
  EXPECT_EQ(signed_mesh->signed_mesh->mesh_key, "key");
  ASSERT_EQ(signed_mesh->signed_mesh->founders.size(), 2u);
  EXPECT_EQ(signed_mesh->signed_mesh->founders[0].verify_key, "mac-key");
  EXPECT_EQ(signed_mesh->signed_mesh->founders[1].node_id, "pi");
  EXPECT_EQ(signed_mesh->signed_mesh->last_used_at, absl::InfinitePast());

  absl::StatusOr<MeshAuthState> open = Lookup(*a_, "open");
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_TRUE(!open->binding && !open->signed_mesh);
}

TEST_F(NatsAuthStoreTest, BindingExpiryStartsAndStops) {
  ASSERT_TRUE(Bind(*a_, {"m", "s", "h", std::nullopt, kNow}).ok());
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) {
                a_->SetBindingExpiry("m", kNow + absl::Hours(24), d);
              }).ok());
  EXPECT_EQ(Lookup(*b_, "m")->binding->expires_at, kNow + absl::Hours(24));
  EXPECT_EQ(Lookup(*b_, "m")->binding->bound_at, kNow);  // rewriting the grace keeps it
  ASSERT_TRUE(
      WriteOp([&](AuthStore::WriteDone d) { a_->SetBindingExpiry("m", std::nullopt, d); }).ok());
  EXPECT_FALSE(Lookup(*b_, "m")->binding->expires_at.has_value());
  // Nothing to change: no binding (a signed mesh is left alone).
  ASSERT_TRUE(Sign(*a_, "signed", "key", {"f", "key"}).ok());
  EXPECT_TRUE(
      WriteOp([&](AuthStore::WriteDone d) { a_->SetBindingExpiry("signed", kNow, d); }).ok());
  EXPECT_TRUE(WriteOp([&](AuthStore::WriteDone d) { a_->SetBindingExpiry("none", kNow, d); }).ok());
  EXPECT_TRUE(Lookup(*a_, "signed")->signed_mesh.has_value());
  EXPECT_FALSE(Lookup(*a_, "none")->binding.has_value());
}

// Instances touch a signed mesh each with its own clock: the last use only
// moves forward.
TEST_F(NatsAuthStoreTest, TouchSignedMeshRecordsTheLatestUse) {
  ASSERT_TRUE(Sign(*a_, "s", "key", {"f", "key"}, absl::InfinitePast()).ok());
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) { a_->TouchSignedMesh("s", kNow, d); }).ok());
  EXPECT_EQ(Lookup(*b_, "s")->signed_mesh->last_used_at, kNow);
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) {
                b_->TouchSignedMesh("s", kNow - absl::Hours(1), d);
              }).ok());
  EXPECT_EQ(Lookup(*a_, "s")->signed_mesh->last_used_at, kNow);
  EXPECT_TRUE(WriteOp([&](AuthStore::WriteDone d) { a_->TouchSignedMesh("none", kNow, d); }).ok());
  EXPECT_FALSE(Lookup(*a_, "none")->signed_mesh.has_value());
}

TEST_F(NatsAuthStoreTest, DeletesRemoveTheirOwnKindOnly) {
  ASSERT_TRUE(Bind(*a_, {"bound", "s", "h", std::nullopt}).ok());
  ASSERT_TRUE(Sign(*a_, "signed", "key", {"f", "key"}).ok());
  // Each delete leaves the other kind alone.
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) {
                a_->DeleteBinding("signed", {"h", std::nullopt}, d);
              }).ok());
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) {
                a_->DeleteSignedMesh("bound", std::nullopt, d);
              }).ok());
  EXPECT_TRUE(Lookup(*a_, "signed")->signed_mesh.has_value());
  EXPECT_TRUE(Lookup(*a_, "bound")->binding.has_value());

  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) {
                b_->DeleteBinding("bound", {"h", std::nullopt}, d);
              }).ok());
  absl::StatusOr<MeshAuthState> gone = Lookup(*a_, "bound");
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_TRUE(!gone->binding && !gone->signed_mesh);
  // Bound again over the delete marker.
  absl::StatusOr<BindResult> again = Bind(*a_, {"bound", "s2", "h2", std::nullopt});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->created);
  // Deleting what is not there is no error.
  EXPECT_TRUE(WriteOp([&](AuthStore::WriteDone d) {
                a_->DeleteBinding("none", {"h", std::nullopt}, d);
              }).ok());
  EXPECT_TRUE(
      WriteOp([&](AuthStore::WriteDone d) { a_->DeleteSignedMesh("none", std::nullopt, d); }).ok());
}

// Another instance revived the binding (a family back through it) or used
// the signed mesh since this one decided to let it go: the store keeps it.
TEST_F(NatsAuthStoreTest, DeletesDecidedOnStaleMemoryLeaveWhatAnotherInstanceRevived) {
  ASSERT_TRUE(Bind(*a_, {"family", "s", "h", std::nullopt}).ok());
  // a's grace ended; b cleared it meanwhile (the mesh lives again there).
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) {
                b_->DeleteBinding("family", {"h", kNow}, d);
              }).ok());
  EXPECT_TRUE(Lookup(*a_, "family")->binding.has_value());
  // Another binding made after a grace is not the one decided on either.
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) {
                a_->DeleteBinding("family", {"other-hash", std::nullopt}, d);
              }).ok());
  EXPECT_TRUE(Lookup(*a_, "family")->binding.has_value());
  // A grace that later started and ended is.
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) {
                b_->SetBindingExpiry("family", kNow - absl::Minutes(1), d);
              }).ok());
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) {
                a_->DeleteBinding("family", {"h", kNow}, d);
              }).ok());
  EXPECT_FALSE(Lookup(*a_, "family")->binding.has_value());

  ASSERT_TRUE(Sign(*a_, "home", "key", {"f", "key"}).ok());
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) { b_->TouchSignedMesh("home", kNow, d); }).ok());
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) {
                a_->DeleteSignedMesh("home", kNow - absl::Hours(1), d);
              }).ok());
  EXPECT_TRUE(Lookup(*a_, "home")->signed_mesh.has_value());
  ASSERT_TRUE(WriteOp([&](AuthStore::WriteDone d) { a_->DeleteSignedMesh("home", kNow, d); }).ok());
  EXPECT_FALSE(Lookup(*a_, "home")->signed_mesh.has_value());
}

// As in SQLite, a signed mesh goes with its used nonces: a new owner of the
// id brings another key, and its tokens may reuse a nonce.
TEST_F(NatsAuthStoreTest, DeleteSignedMeshRemovesItsNoncesAndNoOtherMeshs) {
  ASSERT_TRUE(Sign(*a_, "home", "key", {"f", "key"}).ok());
  ASSERT_TRUE(UseNonce(*a_, {"home", "n1", "phone", kNow + absl::Hours(1)}).ok());
  ASSERT_TRUE(UseNonce(*a_, {"home", "n2", "phone", kNow + absl::Hours(1)}).ok());
  ASSERT_TRUE(UseNonce(*a_, {"other", "n1", "phone", kNow + absl::Hours(1)}).ok());
  ASSERT_TRUE(
      WriteOp([&](AuthStore::WriteDone d) { b_->DeleteSignedMesh("home", std::nullopt, d); }).ok());
  EXPECT_FALSE(Lookup(*a_, "home")->signed_mesh.has_value());
  for (const char* nonce : {"n1", "n2"}) {
    absl::StatusOr<NonceResult> reused =
        UseNonce(*a_, {"home", nonce, "tablet", kNow + absl::Hours(1)});
    ASSERT_TRUE(reused.ok()) << reused.status();
    EXPECT_TRUE(reused->created) << nonce;
  }
  absl::StatusOr<NonceResult> kept =
      UseNonce(*a_, {"other", "n1", "tablet", kNow + absl::Hours(1)});
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE(kept->created);
  EXPECT_EQ(kept->holder.node_id, "phone");
}

TEST_F(NatsAuthStoreTest, OpenRefusesABadClusterNameOrNoExecutor) {
  NatsAuthStoreSettings bad = Settings();
  bad.cluster = "Not.Valid";
  EXPECT_EQ(NatsAuthStore::Open(conn_a_->raw(), bad, &executor_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NatsAuthStore::Open(conn_a_->raw(), Settings(), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(NatsAuthStoreTest, DeleteNoncesExpiredByLeavesThemToTheBucketsMaxAge) {
  ASSERT_TRUE(UseNonce(*a_, {"s", "n", "phone", kNow - absl::Hours(1)}).ok());
  EXPECT_TRUE(WriteOp([&](AuthStore::WriteDone d) { a_->DeleteNoncesExpiredBy(kNow, d); }).ok());
  const KvBucketConfig config = NatsAuthStore::NoncesBucketConfig(Settings());
  EXPECT_EQ(config.name, "relay_test_nonces");
  EXPECT_EQ(config.max_age, absl::Hours(1) + absl::Minutes(1));
  EXPECT_EQ(NatsAuthStore::AuthBucketConfig(Settings()).name, "relay_test_auth");
  EXPECT_EQ(NatsAuthStore::AuthBucketConfig(Settings()).max_age, absl::ZeroDuration());
}

// Instances with other token lifetimes share the nonces bucket: the
// longest lifetime wins, so no nonce is forgotten before its token expires.
TEST_F(NatsAuthStoreTest, TheNoncesBucketKeepsTheLongestLifetimeOfItsInstances) {
  NatsAuthStoreSettings longer = Settings();
  longer.max_join_token_lifetime = absl::Hours(2);
  std::unique_ptr<NatsAuthStore> widened = OpenStore(*conn_a_, longer);
  ASSERT_NE(widened, nullptr);
  NatsAuthStoreSettings shorter = Settings();
  shorter.max_join_token_lifetime = absl::Minutes(30);
  std::unique_ptr<NatsAuthStore> kept = OpenStore(*conn_b_, shorter);
  ASSERT_NE(kept, nullptr);
  absl::StatusOr<std::unique_ptr<KvBucket>> nonces =
      KvBucket::Open(conn_a_->raw(), NatsAuthStore::NoncesBucketConfig(longer));
  ASSERT_TRUE(nonces.ok()) << nonces.status();
  EXPECT_EQ(*(*nonces)->MaxAge(), absl::Hours(2) + absl::Minutes(1));
  // Nonces used before the widening are still held.
  ASSERT_TRUE(UseNonce(*a_, {"s", "n", "phone", kNow + absl::Hours(1)})->created);
  EXPECT_FALSE(UseNonce(*kept, {"s", "n", "tablet", kNow + absl::Hours(1)})->created);
  widened.reset();
  kept.reset();
  executor_.RunAll();
}

// --- two instances ----------------------------------------------------------------

// Two stores on two connections claim the same meshes at once, each from its
// own workers: every mesh ends with one binding, both told the same one.
TEST_F(NatsAuthStoreTest, TwoInstancesRacingToBindHaveOneWinnerAndAgreeOnIt) {
  constexpr int kMeshes = 30;
  std::vector<Slot<absl::StatusOr<BindResult>>> from_a, from_b, all;
  for (int i = 0; i < kMeshes; ++i) {
    const std::string mesh = absl::StrCat("m", i);
    from_a.push_back(Start<BindResult>([&](AuthStore::Done<BindResult> done) {
      a_->BindIfUnbound({mesh, "salt-a", "hash-a", std::nullopt}, kNow, std::move(done));
    }));
    from_b.push_back(Start<BindResult>([&](AuthStore::Done<BindResult> done) {
      b_->BindIfUnbound({mesh, "salt-b", "hash-b", std::nullopt}, kNow, std::move(done));
    }));
    all.push_back(from_a.back());
    all.push_back(from_b.back());
  }
  ASSERT_TRUE(RunUntilAnswered(executor_, all));
  for (int i = 0; i < kMeshes; ++i) {
    const absl::StatusOr<BindResult>& a = **from_a[i];
    const absl::StatusOr<BindResult>& b = **from_b[i];
    ASSERT_TRUE(a.ok() && b.ok()) << a.status() << " " << b.status();
    EXPECT_NE(a->created, b->created) << "mesh " << i;
    ASSERT_TRUE(a->state.binding && b->state.binding);
    EXPECT_EQ(a->state.binding->salt, b->state.binding->salt) << "mesh " << i;
    EXPECT_EQ(a->state.binding->salt, a->created ? "salt-a" : "salt-b");
    EXPECT_EQ(Lookup(*a_, absl::StrCat("m", i))->binding->salt, a->state.binding->salt);
  }
}

TEST_F(NatsAuthStoreTest, TwoInstancesRacingToUseANonceHaveOneWinner) {
  auto ra = Start<NonceResult>([&](AuthStore::Done<NonceResult> done) {
    a_->UseNonceOnce({"s", "n", "phone", kNow + absl::Hours(1)}, kNow, std::move(done));
  });
  auto rb = Start<NonceResult>([&](AuthStore::Done<NonceResult> done) {
    b_->UseNonceOnce({"s", "n", "tablet", kNow + absl::Hours(1)}, kNow, std::move(done));
  });
  ASSERT_TRUE(RunUntilAnswered<absl::StatusOr<NonceResult>>(executor_, {ra, rb}));
  const absl::StatusOr<NonceResult>& a = **ra;
  const absl::StatusOr<NonceResult>& b = **rb;
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << " " << b.status();
  EXPECT_NE(a->created, b->created);
  EXPECT_EQ(a->holder.node_id, b->holder.node_id);
  EXPECT_EQ(a->holder.node_id, a->created ? "phone" : "tablet");
}

TEST_F(NatsAuthStoreTest, AMeshSignedThroughOneInstanceIsSeenByTheOther) {
  ASSERT_EQ(Sign(*a_, "home", "key", {"mac", "mac-key"})->outcome, SignedMeshOutcome::kFounded);
  absl::StatusOr<MeshAuthState> seen = Lookup(*b_, "home");
  ASSERT_TRUE(seen.ok()) << seen.status();
  ASSERT_TRUE(seen->signed_mesh.has_value());
  EXPECT_EQ(seen->signed_mesh->mesh_key, "key");
  ASSERT_EQ(seen->signed_mesh->founders.size(), 1u);
  EXPECT_EQ(seen->signed_mesh->founders[0].node_id, "mac");
  // B cannot found it again under another key, nor bind it.
  EXPECT_EQ(Sign(*b_, "home", "stranger", {"x", "stranger"})->outcome,
            SignedMeshOutcome::kOtherKey);
  EXPECT_FALSE(Bind(*b_, {"home", "s", "h", std::nullopt})->created);
}

TEST_F(NatsAuthStoreTest, ANonceUsedThroughOneInstanceIsRefusedThroughTheOther) {
  ASSERT_TRUE(UseNonce(*a_, {"home", "n1", "phone", kNow + absl::Hours(1)})->created);
  absl::StatusOr<NonceResult> other =
      UseNonce(*b_, {"home", "n1", "tablet", kNow + absl::Hours(1)});
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_FALSE(other->created);
  EXPECT_EQ(other->holder.node_id, "phone");
  // The same node reconnecting through B: it holds the nonce already.
  absl::StatusOr<NonceResult> same = UseNonce(*b_, {"home", "n1", "phone", kNow + absl::Hours(1)});
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->created);
  EXPECT_EQ(same->holder.node_id, "phone");
}

// Founders claimed at once through both instances: every read-decide-write
// that lost a race is decided again from a fresh read, so no founder that
// was answered saved is missing from the record, and only one founding won.
TEST_F(NatsAuthStoreTest, ConcurrentFounderClaimsLoseNoUpdate) {
  constexpr int kPerInstance = 8;
  std::vector<Slot<absl::StatusOr<SignedMeshClaimResult>>> slots;
  std::vector<std::string> founders;
  for (int i = 0; i < kPerInstance; ++i) {
    for (NatsAuthStore* store : {a_.get(), b_.get()}) {
      founders.push_back(absl::StrCat(store == a_.get() ? "a" : "b", i));
      SignedMeshClaim claim = Claim("home", "key", {founders.back(), "key"});
      slots.push_back(
          Start<SignedMeshClaimResult>([&](AuthStore::Done<SignedMeshClaimResult> done) {
            store->ClaimSignedMesh(claim, std::move(done));
          }));
    }
  }
  ASSERT_TRUE(RunUntilAnswered(executor_, slots));
  int founded = 0;
  std::vector<std::string> saved;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const absl::StatusOr<SignedMeshClaimResult>& r = **slots[i];
    if (!r.ok()) {
      // Three lost races in a row: refused, retried by the client.
      EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
      continue;
    }
    ASSERT_TRUE(r->outcome == SignedMeshOutcome::kFounded ||
                r->outcome == SignedMeshOutcome::kFounderSaved)
        << static_cast<int>(r->outcome);
    if (r->outcome == SignedMeshOutcome::kFounded) ++founded;
    saved.push_back(founders[i]);
  }
  EXPECT_EQ(founded, 1);
  absl::StatusOr<MeshAuthState> after = Lookup(*a_, "home");
  ASSERT_TRUE(after.ok() && after->signed_mesh);
  std::vector<std::string> listed;
  for (const Founder& f : after->signed_mesh->founders) listed.push_back(f.node_id);
  EXPECT_THAT(listed, ::testing::IsSupersetOf(saved));
  EXPECT_EQ(listed.size(), saved.size());
}

// MeshAuth on two instances sharing the store: the first token binds the
// mesh cluster-wide, although neither loaded anything at start.
TEST_F(NatsAuthStoreTest, MeshAuthOnTwoInstancesSharesATokenBinding) {
  relay::v1::Register owner;
  owner.set_mesh_id("family");
  owner.set_node_id("mac");
  owner.set_token("secret");
  const auto admit = [this](core::MeshAuth& auth,
                            const relay::v1::Register& reg) -> absl::StatusOr<core::Admission> {
    auto slot = std::make_shared<std::optional<absl::StatusOr<core::Admission>>>();
    auth.AdmitRegister(reg, false, "203.0.113.1", kNow,
                       [slot](absl::StatusOr<core::Admission> a) { *slot = std::move(a); });
    if (!RunUntilAnswered<absl::StatusOr<core::Admission>>(executor_, {slot})) {
      return absl::DeadlineExceededError("no answer");
    }
    return **slot;
  };
  core::MeshAuth on_a(a_.get(), core::CoreConfig{}, nullptr, &executor_);
  core::MeshAuth on_b(b_.get(), core::CoreConfig{}, nullptr, &executor_);
  ASSERT_TRUE(on_a.Load(kNow).ok());
  ASSERT_TRUE(on_b.Load(kNow).ok());
  ASSERT_TRUE(admit(on_a, owner).ok());
  relay::v1::Register squatter = owner;
  squatter.set_token("guess");
  EXPECT_TRUE(absl::IsPermissionDenied(admit(on_b, squatter).status()));
  EXPECT_TRUE(admit(on_b, owner).ok());
  relay::v1::Register open = owner;
  open.set_token("");
  EXPECT_TRUE(absl::IsPermissionDenied(admit(on_b, open).status()));
}

// With the cluster-wide roster, `mesh_live` is true on instance B while the
// mesh's members are on A, and B's memory holds nothing of the mesh (Load()
// reads nothing in cluster mode). A shared store makes MeshAuth look the
// mesh up before deciding, so B refuses a stranger to A's bound or signed
// mesh instead of taking the live mesh for an open one.
TEST_F(NatsAuthStoreTest, ALiveMeshRecordedThroughAnotherInstanceIsNotAdmittedOpen) {
  const auto admit = [this](core::MeshAuth& auth, const relay::v1::Register& reg,
                            bool mesh_live) -> absl::StatusOr<core::Admission> {
    auto slot = std::make_shared<std::optional<absl::StatusOr<core::Admission>>>();
    auth.AdmitRegister(reg, mesh_live, "203.0.113.1", kNow,
                       [slot](absl::StatusOr<core::Admission> a) { *slot = std::move(a); });
    if (!RunUntilAnswered<absl::StatusOr<core::Admission>>(executor_, {slot})) {
      return absl::DeadlineExceededError("no answer");
    }
    return **slot;
  };
  core::MeshAuth on_a(a_.get(), core::CoreConfig{}, nullptr, &executor_);
  core::MeshAuth on_b(b_.get(), core::CoreConfig{}, nullptr, &executor_);
  ASSERT_TRUE(on_a.Load(kNow).ok());
  ASSERT_TRUE(on_b.Load(kNow).ok());
  relay::v1::Register owner;
  owner.set_mesh_id("family");
  owner.set_node_id("mac");
  owner.set_token("secret");
  ASSERT_TRUE(admit(on_a, owner, /*mesh_live=*/false).ok());  // A binds it; mac is on A
  relay::v1::Register squatter = owner;
  squatter.set_node_id("intruder");
  squatter.set_token("guess");
  // On B the mesh is live (mac, through A), and B's memory is empty.
  absl::StatusOr<core::Admission> squatted = admit(on_b, squatter, /*mesh_live=*/true);
  EXPECT_TRUE(absl::IsPermissionDenied(squatted.status())) << squatted.status();
  ASSERT_TRUE(Sign(*a_, "signed", "key", {"f", "key"}).ok());
  relay::v1::Register tokenless;
  tokenless.set_mesh_id("signed");
  tokenless.set_node_id("intruder");
  absl::StatusOr<core::Admission> walked_in = admit(on_b, tokenless, /*mesh_live=*/true);
  EXPECT_TRUE(absl::IsPermissionDenied(walked_in.status())) << walked_in.status();
}

// --- ids, limits, outages, threads ---------------------------------------------

// Mesh and node ids are encoded into keys: NATS's separators and wildcards,
// spaces, any script and any byte are ids like others, and no two collide.
TEST_F(NatsAuthStoreTest, AnyMeshIdWorksAndNoTwoCollide) {
  const std::vector<std::string> ids = {"a",
                                        "a.b",
                                        "a.*",
                                        "*",
                                        ">",
                                        "a.>",
                                        "a b",
                                        " ",
                                        "家族のメッシュ",
                                        "ñandú",
                                        "a\tb",
                                        "$KV.x",
                                        std::string("nul\0byte", 8)};
  for (const std::string& id : ids) {
    absl::StatusOr<BindResult> bound = Bind(*a_, {id, id, "h", std::nullopt});
    ASSERT_TRUE(bound.ok()) << absl::CHexEscape(id) << ": " << bound.status();
    EXPECT_TRUE(bound->created) << absl::CHexEscape(id);
    absl::StatusOr<NonceResult> used = UseNonce(*a_, {id, id, id, kNow + absl::Hours(1)});
    ASSERT_TRUE(used.ok()) << absl::CHexEscape(id) << ": " << used.status();
    EXPECT_TRUE(used->created) << absl::CHexEscape(id);
  }
  for (const std::string& id : ids) {
    absl::StatusOr<MeshAuthState> state = Lookup(*b_, id);
    ASSERT_TRUE(state.ok()) << absl::CHexEscape(id) << ": " << state.status();
    ASSERT_TRUE(state->binding.has_value()) << absl::CHexEscape(id);
    EXPECT_EQ(state->binding->salt, id);
    absl::StatusOr<NonceResult> held = UseNonce(*b_, {id, id, "other", kNow + absl::Hours(1)});
    ASSERT_TRUE(held.ok());
    EXPECT_FALSE(held->created);
    EXPECT_EQ(held->holder.node_id, id);
  }
  // A signed mesh whose id holds the wildcards goes with its own nonces only.
  ASSERT_TRUE(Sign(*a_, "*", "key", {"f", "key"}).ok());
  ASSERT_TRUE(
      WriteOp([&](AuthStore::WriteDone d) { a_->DeleteSignedMesh("*", std::nullopt, d); }).ok());
  EXPECT_FALSE(UseNonce(*a_, {">", ">", "other", kNow + absl::Hours(1)})->created);
  EXPECT_FALSE(UseNonce(*a_, {"a.*", "a.*", "other", kNow + absl::Hours(1)})->created);
}

// A key holding what no relay wrote (another program, a newer format) is
// refused as such, DataLoss, and never taken for an empty mesh.
TEST_F(NatsAuthStoreTest, AValueThatIsNoRecordIsDataLossNotAnOpenMesh) {
  absl::StatusOr<std::unique_ptr<KvBucket>> auth =
      KvBucket::Open(conn_a_->raw(), NatsAuthStore::AuthBucketConfig(Settings()));
  ASSERT_TRUE(auth.ok()) << auth.status();
  ASSERT_TRUE((*auth)->Create(*MeshKey("garbage"), "\xff\xff not a record").ok());
  ASSERT_TRUE((*auth)->Create(*MeshKey("empty"), "").ok());
  for (const char* mesh : {"garbage", "empty"}) {
    EXPECT_EQ(Lookup(*a_, mesh).status().code(), absl::StatusCode::kDataLoss) << mesh;
    EXPECT_EQ(Bind(*a_, {mesh, "s", "h", std::nullopt}).status().code(),
              absl::StatusCode::kDataLoss)
        << mesh;
    EXPECT_EQ(Sign(*a_, mesh, "key", {"f", "key"}).status().code(), absl::StatusCode::kDataLoss)
        << mesh;
  }
}

TEST_F(NatsAuthStoreTest, AMeshIdOverTheKeyLimitIsInvalidArgument) {
  const std::string long_id(800, 'm');  // 1068 characters of base64url
  EXPECT_EQ(Bind(*a_, {long_id, "s", "h", std::nullopt}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Sign(*a_, long_id, "key", {"f", "key"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UseNonce(*a_, {long_id, "n", "f", kNow}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Lookup(*a_, long_id).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteOp([&](AuthStore::WriteDone d) {
              a_->DeleteBinding(long_id, {"h", std::nullopt}, d);
            }).code(),
            absl::StatusCode::kInvalidArgument);
  // The connection survives: a key that long never reached NATS.
  EXPECT_TRUE(Bind(*a_, {"after", "s", "h", std::nullopt}).ok());
}

TEST_F(NatsAuthStoreTest, WithNatsGoneEveryAnswerIsUnavailableAndAfterARestartItWorksAgain) {
  ASSERT_TRUE(Bind(*a_, {"kept", "s", "h", std::nullopt}).ok());
  ASSERT_TRUE(Sign(*a_, "signed", "key", {"f", "key"}).ok());
  server_.Stop();
  ASSERT_TRUE(testing::WaitFor([&] { return !conn_a_->connected(); }, std::chrono::seconds(10)));
  // Refused at once, not after each call's timeout.
  const auto started = std::chrono::steady_clock::now();
  const auto unavailable = [](const absl::Status& status) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  };
  unavailable(Bind(*a_, {"kept", "s2", "h2", std::nullopt}).status());
  unavailable(Bind(*a_, {"new", "s", "h", std::nullopt}).status());
  unavailable(Sign(*a_, "signed", "key", {"g", "key"}).status());
  unavailable(UseNonce(*a_, {"signed", "n", "f", kNow + absl::Hours(1)}).status());
  unavailable(Lookup(*a_, "kept").status());
  unavailable(WriteOp([&](AuthStore::WriteDone d) { a_->SetBindingExpiry("kept", kNow, d); }));
  unavailable(WriteOp([&](AuthStore::WriteDone d) {
    a_->DeleteBinding("kept", {"h", std::nullopt}, d);
  }));
  unavailable(WriteOp([&](AuthStore::WriteDone d) { a_->TouchSignedMesh("signed", kNow, d); }));
  unavailable(
      WriteOp([&](AuthStore::WriteDone d) { a_->DeleteSignedMesh("signed", std::nullopt, d); }));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));

  ASSERT_TRUE(server_.Start().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return conn_a_->connected(); }, std::chrono::seconds(10)));
  // JetStream recovers its streams after the port opens: wait for an answer.
  ASSERT_TRUE(testing::WaitFor([&] { return Lookup(*a_, "kept").ok(); }, std::chrono::seconds(30),
                               std::chrono::milliseconds(100)));
  absl::StatusOr<MeshAuthState> kept = Lookup(*a_, "kept");
  ASSERT_TRUE(kept.ok() && kept->binding);
  EXPECT_EQ(kept->binding->salt, "s");  // nothing was written while NATS was gone
  EXPECT_FALSE(kept->binding->expires_at.has_value());
  // Refused before any write reached nats.c's reconnect buffer: none
  // landed after the reconnect.
  EXPECT_TRUE(Bind(*a_, {"new", "s", "h", std::nullopt})->created);
  EXPECT_TRUE(UseNonce(*a_, {"signed", "n", "f", kNow + absl::Hours(1)})->created);
  EXPECT_EQ(Sign(*a_, "signed", "key", {"g", "key"})->outcome, SignedMeshOutcome::kFounderSaved);
}

// Every answer is posted to the executor, even a refusal: nothing runs
// until the core thread runs what was posted.
TEST_F(NatsAuthStoreTest, EveryAnswerComesThroughTheExecutor) {
  const std::thread::id core_thread = std::this_thread::get_id();
  auto answered_on = std::make_shared<std::optional<std::thread::id>>();
  a_->LookupMesh("m", [answered_on](absl::StatusOr<MeshAuthState>) {
    *answered_on = std::this_thread::get_id();
  });
  ASSERT_TRUE(executor_.WaitForPost(kAnswerTimeout));
  EXPECT_FALSE(answered_on->has_value());
  executor_.RunAll();
  ASSERT_TRUE(answered_on->has_value());
  EXPECT_EQ(**answered_on, core_thread);

  auto wrote = std::make_shared<bool>(false);
  a_->DeleteNoncesExpiredBy(kNow, [wrote](absl::Status) { *wrote = true; });
  EXPECT_FALSE(*wrote);  // posted, not run inline
  executor_.RunAll();
  EXPECT_TRUE(*wrote);
}

// Past the queue's bound an operation is refused at once, Unavailable, and
// through the executor too.
TEST_F(NatsAuthStoreTest, AFullQueueRefusesUnavailable) {
  NatsAuthStoreSettings settings = Settings();
  settings.max_queued_operations = 2;  // one per worker
  std::unique_ptr<NatsAuthStore> store = OpenStore(*conn_a_, settings);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(server_.Pause().ok());  // the first operations wait for NATS
  std::vector<Slot<absl::StatusOr<MeshAuthState>>> slots;
  for (int i = 0; i < 20; ++i) {
    slots.push_back(Start<MeshAuthState>([&](AuthStore::Done<MeshAuthState> done) {
      store->LookupMesh(absl::StrCat("m", i), std::move(done));
    }));
  }
  // Two workers, each running one and queueing one: the other 16 or more
  // were refused, and their refusals are posted already.
  EXPECT_GE(executor_.pending(), 16u);
  ASSERT_TRUE(server_.Resume().ok());
  ASSERT_TRUE(RunUntilAnswered(executor_, slots));
  int refused = 0;
  for (const auto& slot : slots) {
    if (!(*slot)->ok()) {
      EXPECT_EQ((*slot)->status().code(), absl::StatusCode::kUnavailable) << (*slot)->status();
      ++refused;
    }
  }
  EXPECT_GE(refused, 16);
  store.reset();
  executor_.RunAll();
}

// A full bucket refuses a write (it never drops an older record): the
// answer is Unavailable, not a conflict.
TEST_F(NatsAuthStoreTest, AFullBucketRefusesNewRecordsUnavailable) {
  NatsAuthStoreSettings settings = Settings();
  settings.cluster = "small";
  settings.nonces_max_bytes = 4096;
  std::unique_ptr<NatsAuthStore> store = OpenStore(*conn_a_, settings);
  ASSERT_NE(store, nullptr);
  absl::Status refused;
  int used = 0;
  for (; used < 200 && refused.ok(); ++used) {
    absl::StatusOr<NonceResult> r =
        UseNonce(*store, {"home", absl::StrCat("n", used), "phone", kNow + absl::Hours(1)});
    if (!r.ok()) refused = r.status();
  }
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_GT(used, 1);
  // The first nonce is still held: nothing was discarded to make room.
  absl::StatusOr<NonceResult> first =
      UseNonce(*store, {"home", "n0", "tablet", kNow + absl::Hours(1)});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->created);
  store.reset();
  executor_.RunAll();
}

// A hung NATS (the socket open, nothing answering) at shutdown: the first
// queued operation waits its timeout, the rest are answered Unavailable at
// once instead of each waiting too.
TEST_F(NatsAuthStoreTest, DestructionWithNatsHungAnswersTheRestUnavailableAtOnce) {
  std::unique_ptr<NatsAuthStore> store = OpenStore(*conn_a_);
  ASSERT_TRUE(Bind(*store, {"m", "s", "h", std::nullopt}).ok());
  ASSERT_TRUE(server_.Pause().ok());
  auto unavailable = std::make_shared<int>(0);
  constexpr int kQueued = 20;
  for (int i = 0; i < kQueued; ++i) {
    store->SetBindingExpiry("m", kNow, [unavailable](absl::Status s) {
      EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
      ++*unavailable;
    });
  }
  const auto started = std::chrono::steady_clock::now();
  store.reset();
  // One timeout (kNatsKvWaitMs, 2 s) and some slack; 20 would be 40 s.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  executor_.RunAll();
  EXPECT_EQ(*unavailable, kQueued);
  ASSERT_TRUE(server_.Resume().ok());
}

// Stopping answers what is queued: the writes nobody waits for are made.
TEST_F(NatsAuthStoreTest, DestructionAnswersWhatIsQueued) {
  std::unique_ptr<NatsAuthStore> store = OpenStore(*conn_a_);
  ASSERT_TRUE(Bind(*store, {"m", "s", "h", std::nullopt}).ok());
  auto answered = std::make_shared<int>(0);
  for (int i = 0; i < 20; ++i) {
    store->SetBindingExpiry("m", kNow + absl::Seconds(i), [answered](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      ++*answered;
    });
  }
  store.reset();
  executor_.RunAll();
  EXPECT_EQ(*answered, 20);
  EXPECT_EQ(Lookup(*a_, "m")->binding->expires_at, kNow + absl::Seconds(19));
}

// --- on a three-node NATS cluster, buckets at R3 --------------------------------

class NatsAuthStoreClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (NatsServer::FindBinary().empty()) return;
    cluster_ = new NatsCluster();
    start_status_ = new absl::Status(cluster_->Start());
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete start_status_;
    start_status_ = nullptr;
  }
  void SetUp() override {
    if (cluster_ == nullptr) GTEST_SKIP() << "nats-server is not installed";
    ASSERT_TRUE(start_status_->ok()) << *start_status_;
    for (int i = 0; i < cluster_->size(); ++i) {
      if (!cluster_->running(i)) {
        ASSERT_TRUE(cluster_->Restart(i).ok()) << cluster_->LogTails();
      }
    }
    absl::Status ready = cluster_->WaitReady();
    ASSERT_TRUE(ready.ok()) << ready;
  }
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) std::cerr << cluster_->LogTails() << "\n";
    stores_.clear();
    connections_.clear();
    executor_.RunAll();
  }

  // A store on a connection given every node, `first_node` first (nats.c
  // may still pick another).
  NatsAuthStore* OpenOn(int first_node, const std::string& cluster_name) {
    NatsSettings settings;
    settings.urls = {cluster_->url(first_node)};
    for (int i = 0; i < cluster_->size(); ++i) {
      if (i != first_node) settings.urls.push_back(cluster_->url(i));
    }
    settings.name = absl::StrCat("relay nats_auth_store_test node ", first_node);
    absl::StatusOr<std::unique_ptr<NatsConnection>> conn = NatsConnection::Connect(settings);
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) return nullptr;
    NatsConnection* raw = conn->get();
    EXPECT_TRUE(testing::WaitFor([raw] { return raw->connected(); }, std::chrono::seconds(10)));
    connections_.push_back(*std::move(conn));
    NatsAuthStoreSettings store_settings;
    store_settings.cluster = cluster_name;
    store_settings.replicas = 3;
    absl::StatusOr<std::unique_ptr<NatsAuthStore>> store =
        NatsAuthStore::Open(raw->raw(), store_settings, &executor_);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return nullptr;
    stores_.push_back(*std::move(store));
    return stores_.back().get();
  }
  absl::StatusOr<MeshAuthState> Lookup(AuthStore& store, const std::string& mesh) {
    return Await<MeshAuthState>(executor_, [&](AuthStore::Done<MeshAuthState> done) {
      store.LookupMesh(mesh, std::move(done));
    });
  }
  // Fresh buckets per test: the cluster's store outlives a test.
  static std::string FreshClusterName() {
    static int run = 0;
    return absl::StrCat("r3-", ::getpid() % 100000, "-", ++run);
  }

  static NatsCluster* cluster_;
  static absl::Status* start_status_;
  ManualExecutor executor_;
  std::vector<std::unique_ptr<NatsConnection>> connections_;  // outlive their stores
  std::vector<std::unique_ptr<NatsAuthStore>> stores_;
};

NatsCluster* NatsAuthStoreClusterTest::cluster_ = nullptr;
absl::Status* NatsAuthStoreClusterTest::start_status_ = nullptr;

// Two instances, each connected to the cluster, race for each mesh at R3:
// one winner each, both told the same one. Then the node under the first
// instance dies: it
// fails over to another node and reads every record, which two nodes still
// hold, and the survivors take new writes.
TEST_F(NatsAuthStoreClusterTest, RacesHaveOneWinnerAcrossNodesAndRecordsSurviveANodesLoss) {
  const std::string name = FreshClusterName();
  NatsAuthStore* a = OpenOn(0, name);
  NatsAuthStore* b = OpenOn(1, name);
  ASSERT_TRUE(a && b);
  constexpr int kMeshes = 10;
  std::vector<Slot<absl::StatusOr<BindResult>>> from_a, from_b, all;
  for (int i = 0; i < kMeshes; ++i) {
    const std::string mesh = absl::StrCat("m", i);
    from_a.push_back(Start<BindResult>([&](AuthStore::Done<BindResult> done) {
      a->BindIfUnbound({mesh, "salt-a", "h", std::nullopt}, kNow, std::move(done));
    }));
    from_b.push_back(Start<BindResult>([&](AuthStore::Done<BindResult> done) {
      b->BindIfUnbound({mesh, "salt-b", "h", std::nullopt}, kNow, std::move(done));
    }));
    all.push_back(from_a.back());
    all.push_back(from_b.back());
  }
  ASSERT_TRUE(RunUntilAnswered(executor_, all));
  std::vector<std::string> winners;
  for (int i = 0; i < kMeshes; ++i) {
    const absl::StatusOr<BindResult>& ra = **from_a[i];
    const absl::StatusOr<BindResult>& rb = **from_b[i];
    ASSERT_TRUE(ra.ok() && rb.ok()) << ra.status() << " " << rb.status();
    EXPECT_NE(ra->created, rb->created) << "mesh " << i;
    EXPECT_EQ(ra->state.binding->salt, rb->state.binding->salt) << "mesh " << i;
    winners.push_back(ra->state.binding->salt);
  }

  // nats.c shuffles its server list: find the node A is on.
  NatsConnection& on_a = *connections_[0];
  char url[256] = {0};
  ASSERT_EQ(natsConnection_GetConnectedUrl(on_a.raw(), url, sizeof(url)), NATS_OK);
  const int a_node = cluster_->NodeOfUrl(url);
  ASSERT_GE(a_node, 0) << url;
  cluster_->Stop(a_node);
  ASSERT_TRUE(testing::WaitFor([&] { return on_a.reconnects() >= 1 && on_a.connected(); },
                               std::chrono::seconds(20)));
  // The streams elect new leaders among the two nodes left.
  ASSERT_TRUE(testing::WaitFor([&] { return Lookup(*a, "m0").ok(); }, std::chrono::seconds(30),
                               std::chrono::milliseconds(100)));
  for (int i = 0; i < kMeshes; ++i) {
    absl::StatusOr<MeshAuthState> state = Lookup(*a, absl::StrCat("m", i));
    ASSERT_TRUE(state.ok() && state->binding) << state.status();
    EXPECT_EQ(state->binding->salt, winners[i]);
  }
  absl::StatusOr<BindResult> fresh =
      Await<BindResult>(executor_, [&](AuthStore::Done<BindResult> done) {
        b->BindIfUnbound({"after", "s", "h", std::nullopt}, kNow, std::move(done));
      });
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_TRUE(fresh->created);
  EXPECT_EQ(Lookup(*a, "after")->binding->salt, "s");
}

}  // namespace
}  // namespace relay::backplane::nats
