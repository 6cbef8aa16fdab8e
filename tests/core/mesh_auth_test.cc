// MeshAuth: the three admission levels, with keys and signatures made by
// OpenSSL directly (not by the code under test).
#include "server/core/mesh_auth.h"

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/ed25519_key.h"
#include "tests/store/manual_executor.h"
#include "tests/store/scripted_auth_store.h"

namespace relay::core {
namespace {

using ::relay::core::testing::Ed25519Key;
using relay::v1::Register;
using relay::v1::RegisterMesh;

const absl::Time kNow = absl::FromUnixSeconds(1764120000);

Register Reg(absl::string_view mesh, absl::string_view node, absl::string_view token = "") {
  Register reg;
  reg.set_mesh_id(std::string(mesh));
  reg.set_node_id(std::string(node));
  reg.set_token(std::string(token));
  return reg;
}

RegisterMesh Founding(const Ed25519Key& mesh_key, absl::string_view mesh, absl::string_view node) {
  RegisterMesh request;
  request.set_mesh_id(std::string(mesh));
  request.set_mesh_public_key_b64(mesh_key.PublicB64());
  request.set_founder_proof_b64(mesh_key.SignB64(mesh));
  *request.mutable_peer() = Reg(mesh, node);
  return request;
}

// A join for `node` carrying a token signed by `signer` over `canonical`.
Register SignedJoin(const Ed25519Key& signer, absl::string_view mesh, absl::string_view node,
                    absl::string_view nonce, absl::Time expires, absl::string_view bound_node) {
  Register reg = Reg(mesh, node);
  relay::v1::SignedJoinToken* token = reg.mutable_signed_token();
  token->set_present(true);
  token->set_mesh_id(std::string(mesh));
  token->set_node_id(std::string(bound_node));
  token->set_nonce(std::string(nonce));
  token->set_issuer_id("founder");
  token->set_expires_at(absl::ToDoubleSeconds(expires - absl::UnixEpoch()));
  token->set_canonical(absl::StrCat("canonical:", mesh, ":", bound_node, ":", nonce));
  token->set_signature_b64(signer.SignB64(token->canonical()));
  return reg;
}

// The admission's answer, which these tests expect at once (a store that
// answers inline, as MemoryAuthStore does).
absl::StatusOr<Admission> AdmitRegisterNow(MeshAuth& auth, const Register& reg, bool mesh_live,
                                           absl::string_view client_ip, absl::Time now) {
  std::optional<absl::StatusOr<Admission>> result;
  auth.AdmitRegister(reg, mesh_live, client_ip, now,
                     [&result](absl::StatusOr<Admission> a) { result = std::move(a); });
  EXPECT_TRUE(result.has_value()) << "the admission did not complete inline";
  return result ? *std::move(result) : absl::InternalError("the admission did not complete");
}

absl::StatusOr<Admission> AdmitRegisterMeshNow(MeshAuth& auth, const RegisterMesh& request,
                                               absl::string_view url_mesh_id, bool mesh_live,
                                               absl::string_view client_ip, absl::Time now) {
  std::optional<absl::StatusOr<Admission>> result;
  auth.AdmitRegisterMesh(request, url_mesh_id, mesh_live, client_ip, now,
                         [&result](absl::StatusOr<Admission> a) { result = std::move(a); });
  EXPECT_TRUE(result.has_value()) << "the admission did not complete inline";
  return result ? *std::move(result) : absl::InternalError("the admission did not complete");
}

class MeshAuthTest : public ::testing::Test {
 protected:
  store::MemoryAuthStore store_;
  MeshAuth auth_{&store_, CoreConfig{}};
};

TEST_F(MeshAuthTest, FirstRegistrantWithoutTokenMakesAnOpenMesh) {
  EXPECT_TRUE(
      AdmitRegisterNow(auth_, Reg("m", "a"), /*mesh_live=*/false, "203.0.113.1", kNow).ok());
  EXPECT_TRUE(
      AdmitRegisterNow(auth_, Reg("m", "b", "anything"), /*mesh_live=*/true, "203.0.113.1", kNow)
          .ok());
  EXPECT_EQ(auth_.bindings(), 0u);
}

TEST_F(MeshAuthTest, FirstTokenBindsTheMeshAndOtherTokensAreDenied) {
  ASSERT_TRUE(AdmitRegisterNow(auth_, Reg("m", "a", "secret"), false, "203.0.113.1", kNow).ok());
  EXPECT_TRUE(AdmitRegisterNow(auth_, Reg("m", "b", "secret"), true, "203.0.113.1", kNow).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(
      AdmitRegisterNow(auth_, Reg("m", "c", "other"), true, "203.0.113.1", kNow).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(
      AdmitRegisterNow(auth_, Reg("m", "c"), true, "203.0.113.1", kNow).status()));
}

TEST_F(MeshAuthTest, BindingOutlivesTheMeshForTheGraceThenFreesIt) {
  ASSERT_TRUE(AdmitRegisterNow(auth_, Reg("m", "a", "secret"), false, "203.0.113.1", kNow).ok());
  auth_.MeshEmptied("m", kNow);
  auth_.Expire(kNow + absl::Hours(23), [](const std::string&) { return false; });
  EXPECT_FALSE(
      AdmitRegisterNow(auth_, Reg("m", "x", "squat"), false, "203.0.113.1", kNow + absl::Hours(23))
          .ok());
  auth_.Expire(kNow + absl::Hours(25), [](const std::string&) { return false; });
  EXPECT_TRUE(
      AdmitRegisterNow(auth_, Reg("m", "x", "squat"), false, "203.0.113.1", kNow + absl::Hours(25))
          .ok());
}

TEST_F(MeshAuthTest, SameTokenRevivesTheMeshAndStopsTheGraceClock) {
  ASSERT_TRUE(AdmitRegisterNow(auth_, Reg("m", "a", "secret"), false, "203.0.113.1", kNow).ok());
  auth_.MeshEmptied("m", kNow);
  ASSERT_TRUE(
      AdmitRegisterNow(auth_, Reg("m", "a", "secret"), false, "203.0.113.1", kNow + absl::Hours(1))
          .ok());
  auth_.Expire(kNow + absl::Hours(48),
               [](const std::string&) { return false; });  // live again: no expiry
  EXPECT_FALSE(
      AdmitRegisterNow(auth_, Reg("m", "x", "squat"), true, "203.0.113.1", kNow + absl::Hours(48))
          .ok());
}

TEST_F(MeshAuthTest, RegisterMeshVerifiesTheFounderProof) {
  Ed25519Key mesh_key, other;
  RegisterMesh good = Founding(mesh_key, "home", "mac");
  absl::StatusOr<Admission> founder =
      AdmitRegisterMeshNow(auth_, good, "home", /*mesh_live=*/false, "203.0.113.1", kNow);
  ASSERT_TRUE(founder.ok()) << founder.status();
  EXPECT_EQ(founder->credential, "node:mac");
  EXPECT_TRUE(founder->proves_node);

  RegisterMesh forged = Founding(mesh_key, "home2", "mac");
  forged.set_founder_proof_b64(other.SignB64("home2"));
  EXPECT_FALSE(
      AdmitRegisterMeshNow(auth_, forged, "home2", /*mesh_live=*/false, "203.0.113.1", kNow).ok());
}

TEST_F(MeshAuthTest, RegisterMeshForAnotherMeshThanTheUrlIsDenied) {
  Ed25519Key mesh_key;
  EXPECT_FALSE(AdmitRegisterMeshNow(auth_, Founding(mesh_key, "home", "mac"), "elsewhere",
                                    /*mesh_live=*/false, "203.0.113.1", kNow)
                   .ok());
}

TEST_F(MeshAuthTest, FounderRejoinsWithTheSameKeyButAnotherKeyIsDenied) {
  Ed25519Key mesh_key, other;
  ASSERT_TRUE(AdmitRegisterMeshNow(auth_, Founding(mesh_key, "home", "mac"), "home",
                                   /*mesh_live=*/false, "203.0.113.1", kNow)
                  .ok());
  EXPECT_TRUE(AdmitRegisterMeshNow(auth_, Founding(mesh_key, "home", "mac"), "home",
                                   /*mesh_live=*/false, "203.0.113.1", kNow)
                  .ok());
  EXPECT_FALSE(AdmitRegisterMeshNow(auth_, Founding(other, "home", "mac"), "home",
                                    /*mesh_live=*/false, "203.0.113.1", kNow)
                   .ok());
}

TEST_F(MeshAuthTest, NodePublicKeyVerifiesTheProofWhenGiven) {
  Ed25519Key mesh_key, node_key;
  RegisterMesh request = Founding(mesh_key, "home", "mac");
  request.set_node_public_key_b64(node_key.PublicB64());
  request.set_founder_proof_b64(node_key.SignB64("home"));
  EXPECT_TRUE(
      AdmitRegisterMeshNow(auth_, request, "home", /*mesh_live=*/false, "203.0.113.1", kNow).ok());
}

TEST_F(MeshAuthTest, SignedMeshAcceptsValidTokensAndRefusesTheRest) {
  Ed25519Key mesh_key, other;
  ASSERT_TRUE(AdmitRegisterMeshNow(auth_, Founding(mesh_key, "home", "mac"), "home",
                                   /*mesh_live=*/false, "203.0.113.1", kNow)
                  .ok());
  const absl::Time later = kNow + absl::Hours(1);

  absl::StatusOr<Admission> ok =
      AdmitRegisterNow(auth_, SignedJoin(mesh_key, "home", "phone", "n1", later, "phone"), true,
                       "203.0.113.1", kNow);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->credential, "node:phone");

  // Expired, wrong node binding, wrong signer, wrong mesh.
  EXPECT_FALSE(AdmitRegisterNow(
                   auth_,
                   SignedJoin(mesh_key, "home", "phone", "n2", kNow - absl::Seconds(1), "phone"),
                   true, "203.0.113.1", kNow)
                   .ok());
  EXPECT_FALSE(AdmitRegisterNow(auth_, SignedJoin(mesh_key, "home", "tablet", "n3", later, "phone"),
                                true, "203.0.113.1", kNow)
                   .ok());
  EXPECT_FALSE(AdmitRegisterNow(auth_, SignedJoin(other, "home", "phone", "n4", later, "phone"),
                                true, "203.0.113.1", kNow)
                   .ok());
  Register elsewhere = SignedJoin(mesh_key, "home", "phone", "n5", later, "phone");
  elsewhere.mutable_signed_token()->set_mesh_id("other-mesh");
  EXPECT_FALSE(AdmitRegisterNow(auth_, elsewhere, true, "203.0.113.1", kNow).ok());

  // Tampered canonical bytes.
  Register tampered = SignedJoin(mesh_key, "home", "phone", "n6", later, "phone");
  tampered.mutable_signed_token()->set_canonical("something else");
  EXPECT_FALSE(AdmitRegisterNow(auth_, tampered, true, "203.0.113.1", kNow).ok());

  // No token, or a plain string token, on a signed mesh.
  EXPECT_FALSE(AdmitRegisterNow(auth_, Reg("home", "phone"), true, "203.0.113.1", kNow).ok());
  EXPECT_FALSE(
      AdmitRegisterNow(auth_, Reg("home", "phone", "secret"), true, "203.0.113.1", kNow).ok());
}

TEST_F(MeshAuthTest, NonceIsOneNodesUntilItsTokenExpires) {
  Ed25519Key mesh_key;
  ASSERT_TRUE(AdmitRegisterMeshNow(auth_, Founding(mesh_key, "home", "mac"), "home",
                                   /*mesh_live=*/false, "203.0.113.1", kNow)
                  .ok());
  const absl::Time expires = kNow + absl::Hours(1);
  ASSERT_TRUE(AdmitRegisterNow(auth_, SignedJoin(mesh_key, "home", "phone", "n", expires, ""), true,
                               "203.0.113.1", kNow)
                  .ok());
  // The same node reconnecting with the same token is fine.
  EXPECT_TRUE(AdmitRegisterNow(auth_, SignedJoin(mesh_key, "home", "phone", "n", expires, ""), true,
                               "203.0.113.1", kNow)
                  .ok());
  // Another node replaying it is not.
  EXPECT_FALSE(AdmitRegisterNow(auth_, SignedJoin(mesh_key, "home", "tablet", "n", expires, ""),
                                true, "203.0.113.1", kNow)
                   .ok());
}

TEST_F(MeshAuthTest, AFreshNodeKeyCannotReproveAnExistingSignedMesh) {
  Ed25519Key mesh_key, founder_key, stranger_key;
  RegisterMesh founding = Founding(mesh_key, "home", "mac");
  founding.set_node_public_key_b64(founder_key.PublicB64());
  founding.set_founder_proof_b64(founder_key.SignB64("home"));
  ASSERT_TRUE(
      AdmitRegisterMeshNow(auth_, founding, "home", /*mesh_live=*/false, "203.0.113.1", kNow).ok());
  EXPECT_TRUE(
      AdmitRegisterMeshNow(auth_, founding, "home", /*mesh_live=*/false, "203.0.113.1", kNow)
          .ok());  // the founder again

  RegisterMesh stranger = Founding(mesh_key, "home", "mac");  // the public mesh key
  stranger.set_node_public_key_b64(stranger_key.PublicB64());
  stranger.set_founder_proof_b64(stranger_key.SignB64("home"));
  EXPECT_TRUE(absl::IsPermissionDenied(
      AdmitRegisterMeshNow(auth_, stranger, "home", /*mesh_live=*/false, "203.0.113.1", kNow)
          .status()));
}

TEST_F(MeshAuthTest, UnboundTokensNeverShareAnIdentity) {
  Ed25519Key mesh_key;
  ASSERT_TRUE(AdmitRegisterMeshNow(auth_, Founding(mesh_key, "home", "mac"), "home",
                                   /*mesh_live=*/false, "203.0.113.1", kNow)
                  .ok());
  const absl::Time expires = kNow + absl::Hours(1);
  absl::StatusOr<Admission> first = AdmitRegisterNow(
      auth_, SignedJoin(mesh_key, "home", "phone", "n", expires, ""), true, "203.0.113.1", kNow);
  absl::StatusOr<Admission> again = AdmitRegisterNow(
      auth_, SignedJoin(mesh_key, "home", "phone", "n", expires, ""), true, "203.0.113.1", kNow);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_NE(first->credential, again->credential);
}

TEST_F(MeshAuthTest, MalformedTokenIsDeniedWithItsReason) {
  Register reg = Reg("home", "phone");
  reg.mutable_signed_token()->set_present(true);
  reg.mutable_signed_token()->set_malformed("the token needs a numeric expires_at");
  absl::StatusOr<Admission> result = AdmitRegisterNow(auth_, reg, true, "203.0.113.1", kNow);
  EXPECT_TRUE(absl::IsPermissionDenied(result.status()));
  EXPECT_EQ(result.status().message(), "the token needs a numeric expires_at");
}

TEST_F(MeshAuthTest, TokenObjectOnAnUnsignedMeshIsDenied) {
  Ed25519Key key;
  EXPECT_FALSE(AdmitRegisterNow(auth_,
                                SignedJoin(key, "open", "phone", "n", kNow + absl::Hours(1), ""),
                                false, "203.0.113.1", kNow)
                   .ok());
}

TEST_F(MeshAuthTest, RegisterMeshOnATokenBoundMeshIsDenied) {
  Ed25519Key key;
  ASSERT_TRUE(AdmitRegisterNow(auth_, Reg("m", "a", "secret"), false, "203.0.113.1", kNow).ok());
  EXPECT_FALSE(AdmitRegisterMeshNow(auth_, Founding(key, "m", "a"), "m", /*mesh_live=*/false,
                                    "203.0.113.1", kNow)
                   .ok());
}

}  // namespace
// --- bounds (issue: unbounded authentication state) ------------------------

constexpr absl::string_view kIp = "203.0.113.1";
const auto kNoneLive = [](const std::string&) { return false; };

class MeshAuthBoundsTest : public ::testing::Test {
 protected:
  MeshAuth& Make(CoreConfig config) {
    auth_ = std::make_unique<MeshAuth>(&store_, config);
    return *auth_;
  }
  store::MemoryAuthStore store_;
  std::unique_ptr<MeshAuth> auth_;
};

TEST_F(MeshAuthBoundsTest, RegisterMeshOnALiveOpenMeshIsDenied) {
  MeshAuth& auth = Make(CoreConfig{});
  Ed25519Key stranger;
  ASSERT_TRUE(AdmitRegisterNow(auth, Reg("family", "mac"), false, kIp, kNow).ok());
  absl::StatusOr<Admission> taken = AdmitRegisterMeshNow(auth, Founding(stranger, "family", "evil"),
                                                         "family", /*mesh_live=*/true, kIp, kNow);
  EXPECT_TRUE(absl::IsPermissionDenied(taken.status()));
  EXPECT_EQ(auth.signed_meshes(), 0u);
  // Still open: the family's plain registrations keep working.
  EXPECT_TRUE(AdmitRegisterNow(auth, Reg("family", "phone"), true, kIp, kNow).ok());
  // An empty open mesh is free to be signed.
  EXPECT_TRUE(
      AdmitRegisterMeshNow(auth, Founding(stranger, "family", "evil"), "family", false, kIp, kNow)
          .ok());
}

TEST_F(MeshAuthBoundsTest, OpenCredentialsProveNothingOthersDo) {
  MeshAuth& auth = Make(CoreConfig{});
  Ed25519Key key;
  EXPECT_FALSE(AdmitRegisterNow(auth, Reg("open", "a"), false, kIp, kNow)->proves_node);
  EXPECT_FALSE(AdmitRegisterNow(auth, Reg("open", "a", "tok"), true, kIp, kNow)->proves_node);
  EXPECT_TRUE(AdmitRegisterNow(auth, Reg("bound", "a", "tok"), false, kIp, kNow)->proves_node);
  EXPECT_TRUE(
      AdmitRegisterMeshNow(auth, Founding(key, "s", "f"), "s", false, kIp, kNow)->proves_node);
}

TEST_F(MeshAuthBoundsTest, NonceOverItsBoundIsDeniedAndNotKept) {
  MeshAuth& auth = Make(CoreConfig{});
  Ed25519Key key;
  ASSERT_TRUE(AdmitRegisterMeshNow(auth, Founding(key, "s", "f"), "s", false, kIp, kNow).ok());
  const absl::Time expires = kNow + absl::Hours(1);
  EXPECT_TRUE(AdmitRegisterNow(auth, SignedJoin(key, "s", "p", std::string(128, 'n'), expires, ""),
                               true, kIp, kNow)
                  .ok());
  absl::StatusOr<Admission> long_nonce = AdmitRegisterNow(
      auth, SignedJoin(key, "s", "q", std::string(129, 'n'), expires, ""), true, kIp, kNow);
  EXPECT_TRUE(absl::IsPermissionDenied(long_nonce.status()));
  EXPECT_THAT(std::string(long_nonce.status().message()), ::testing::HasSubstr("128 bytes"));
  EXPECT_EQ(auth.nonces(), 1u);
}

TEST_F(MeshAuthBoundsTest, TokenLifetimeIsBoundedFromIssueAndFromNow) {
  CoreConfig config;
  config.max_join_token_lifetime = absl::Hours(24 * 30);
  MeshAuth& auth = Make(config);
  Ed25519Key key;
  ASSERT_TRUE(AdmitRegisterMeshNow(auth, Founding(key, "s", "f"), "s", false, kIp, kNow).ok());
  // Valid until 2096: refused, whatever it claims about its issue.
  absl::StatusOr<Admission> forever =
      AdmitRegisterNow(auth, SignedJoin(key, "s", "p", "n1", absl::FromUnixSeconds(3999999999), ""),
                       true, kIp, kNow);
  EXPECT_TRUE(absl::IsPermissionDenied(forever.status()));
  EXPECT_THAT(std::string(forever.status().message()), ::testing::HasSubstr("30 days"));
  // issued_at claimed in the future, 31 days before its expiry.
  Register forged = SignedJoin(key, "s", "p", "n2", kNow + absl::Hours(24 * 29), "");
  forged.mutable_signed_token()->set_issued_at(absl::ToDoubleSeconds(
      kNow + absl::Hours(24 * 29) - absl::Hours(24 * 31) - absl::UnixEpoch()));
  EXPECT_TRUE(absl::IsPermissionDenied(AdmitRegisterNow(auth, forged, true, kIp, kNow).status()));
  // 30 days exactly is fine.
  Register month = SignedJoin(key, "s", "p", "n3", kNow + absl::Hours(24 * 30), "");
  month.mutable_signed_token()->set_issued_at(absl::ToDoubleSeconds(kNow - absl::UnixEpoch()));
  EXPECT_TRUE(AdmitRegisterNow(auth, month, true, kIp, kNow).ok());
  EXPECT_EQ(auth.nonces(), 1u);
}

TEST_F(MeshAuthBoundsTest, NoncesPerMeshAreBounded) {
  CoreConfig config;
  config.max_nonces_per_mesh = 3;
  config.auth_records_per_ip_per_minute = 100;
  MeshAuth& auth = Make(config);
  Ed25519Key key;
  ASSERT_TRUE(AdmitRegisterMeshNow(auth, Founding(key, "s", "f"), "s", false, kIp, kNow).ok());
  const absl::Time expires = kNow + absl::Hours(1);
  for (int i = 0; i < 3; ++i) {
    const std::string node = absl::StrCat("p", i);
    ASSERT_TRUE(
        AdmitRegisterNow(auth, SignedJoin(key, "s", node, node, expires, ""), true, kIp, kNow)
            .ok());
  }
  absl::StatusOr<Admission> fourth =
      AdmitRegisterNow(auth, SignedJoin(key, "s", "p3", "p3", expires, ""), true, kIp, kNow);
  EXPECT_TRUE(absl::IsPermissionDenied(fourth.status()));
  // A device reusing its own token is a reconnect, not a new nonce.
  EXPECT_TRUE(
      AdmitRegisterNow(auth, SignedJoin(key, "s", "p0", "p0", expires, ""), true, kIp, kNow).ok());
  // Once the tokens expire their nonces go, and room comes back.
  auth.Expire(expires + absl::Seconds(1), kNoneLive);
  EXPECT_EQ(auth.nonces(), 0u);
  EXPECT_TRUE(AdmitRegisterNow(auth, SignedJoin(key, "s", "p3", "p3", expires + absl::Hours(1), ""),
                               true, kIp, expires + absl::Seconds(1))
                  .ok());
}

TEST_F(MeshAuthBoundsTest, RecordsInTotalAreBoundedAndRefusedAsUnavailable) {
  CoreConfig config;
  config.max_auth_records = 3;
  config.auth_records_per_ip_per_minute = 100;
  MeshAuth& auth = Make(config);
  Ed25519Key key;
  ASSERT_TRUE(AdmitRegisterNow(auth, Reg("b1", "a", "t"), false, kIp, kNow).ok());
  ASSERT_TRUE(AdmitRegisterNow(auth, Reg("b2", "a", "t"), false, kIp, kNow).ok());
  ASSERT_TRUE(AdmitRegisterMeshNow(auth, Founding(key, "s", "f"), "s", false, kIp, kNow).ok());
  EXPECT_EQ(auth.records(), 3u);
  EXPECT_TRUE(
      absl::IsUnavailable(AdmitRegisterNow(auth, Reg("b3", "a", "t"), false, kIp, kNow).status()));
  EXPECT_TRUE(absl::IsUnavailable(
      AdmitRegisterMeshNow(auth, Founding(key, "s2", "f"), "s2", false, kIp, kNow).status()));
  EXPECT_TRUE(absl::IsUnavailable(
      AdmitRegisterNow(auth, SignedJoin(key, "s", "p", "n", kNow + absl::Hours(1), ""), true, kIp,
                       kNow)
          .status()));
  // What exists keeps working: the bound mesh's owners, the founder, open meshes.
  EXPECT_TRUE(AdmitRegisterNow(auth, Reg("b1", "c", "t"), true, kIp, kNow).ok());
  EXPECT_TRUE(AdmitRegisterMeshNow(auth, Founding(key, "s", "f"), "s", true, kIp, kNow).ok());
  EXPECT_TRUE(AdmitRegisterNow(auth, Reg("open", "a"), false, kIp, kNow).ok());
  EXPECT_EQ(auth.records(), 3u);
  // A binding past its grace frees a record.
  auth.MeshEmptied("b2", kNow);
  auth.Expire(kNow + absl::Hours(25), kNoneLive);
  EXPECT_TRUE(AdmitRegisterNow(auth, Reg("b3", "a", "t"), false, kIp, kNow + absl::Hours(25)).ok());
}

TEST_F(MeshAuthBoundsTest, CreationsPerIpPerMinuteAreBounded) {
  CoreConfig config;
  config.auth_records_per_ip_per_minute = 2;
  MeshAuth& auth = Make(config);
  ASSERT_TRUE(AdmitRegisterNow(auth, Reg("m1", "a", "t"), false, kIp, kNow).ok());
  ASSERT_TRUE(AdmitRegisterNow(auth, Reg("m2", "a", "t"), false, kIp, kNow).ok());
  absl::StatusOr<Admission> third = AdmitRegisterNow(auth, Reg("m3", "a", "t"), false, kIp, kNow);
  EXPECT_TRUE(absl::IsResourceExhausted(third.status()));
  EXPECT_EQ(auth.bindings(), 2u);
  // Another address is not charged for it; the same one may go on next minute.
  EXPECT_TRUE(AdmitRegisterNow(auth, Reg("m3", "a", "t"), false, "198.51.100.7", kNow).ok());
  auth.Expire(kNow + absl::Seconds(61), kNoneLive);
  EXPECT_TRUE(
      AdmitRegisterNow(auth, Reg("m4", "a", "t"), false, kIp, kNow + absl::Seconds(61)).ok());
}

TEST_F(MeshAuthBoundsTest, FoundersPerMeshAreBounded) {
  CoreConfig config;
  config.max_founders_per_mesh = 2;
  MeshAuth& auth = Make(config);
  Ed25519Key key;
  ASSERT_TRUE(AdmitRegisterMeshNow(auth, Founding(key, "s", "f1"), "s", false, kIp, kNow).ok());
  ASSERT_TRUE(AdmitRegisterMeshNow(auth, Founding(key, "s", "f2"), "s", true, kIp, kNow).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(
      AdmitRegisterMeshNow(auth, Founding(key, "s", "f3"), "s", true, kIp, kNow).status()));
  EXPECT_TRUE(AdmitRegisterMeshNow(auth, Founding(key, "s", "f1"), "s", true, kIp, kNow).ok());
}

TEST_F(MeshAuthBoundsTest, SignedMeshUnusedForItsTtlIsForgotten) {
  CoreConfig config;
  config.signed_mesh_ttl = absl::Hours(24 * 90);
  MeshAuth& auth = Make(config);
  Ed25519Key owner;
  Ed25519Key newcomer;
  ASSERT_TRUE(AdmitRegisterMeshNow(auth, Founding(owner, "s", "f"), "s", false, kIp, kNow).ok());
  const absl::Time expires = kNow + absl::Hours(24 * 20);
  ASSERT_TRUE(
      AdmitRegisterNow(auth, SignedJoin(owner, "s", "p", "n", expires, ""), true, kIp, kNow).ok());
  auth.MeshEmptied("s", kNow);
  // Live meshes are in use: kept however long.
  auth.Expire(kNow + absl::Hours(24 * 91), [](const std::string& id) { return id == "s"; });
  EXPECT_EQ(auth.signed_meshes(), 1u);
  // Joined on day 91: the clock starts again from there.
  const absl::Time day91 = kNow + absl::Hours(24 * 91);
  auth.MeshEmptied("s", day91);
  auth.Expire(day91 + absl::Hours(24 * 89), kNoneLive);
  EXPECT_EQ(auth.signed_meshes(), 1u);
  auth.Expire(day91 + absl::Hours(24 * 90) + absl::Seconds(1), kNoneLive);
  EXPECT_EQ(auth.signed_meshes(), 0u);
  EXPECT_EQ(auth.nonces(), 0u);
  EXPECT_TRUE(AdmitRegisterMeshNow(auth, Founding(newcomer, "s", "x"), "s", false, kIp,
                                   day91 + absl::Hours(24 * 91))
                  .ok());
}

// A relay.db from before the lifetime bound may hold nonces kept until 2096:
// loaded, they are kept no longer than a token may now live.
TEST_F(MeshAuthBoundsTest, LoadedNoncesOfOverlongTokensExpireWithinTheLifetimeBound) {
  CoreConfig config;
  config.max_join_token_lifetime = absl::Hours(24 * 30);
  store::testing::ScriptedAuthStore old_store;  // what such a relay.db loads
  old_store.nonces[{"s", "old"}] = {"s", "old", "p", absl::FromUnixSeconds(3999999999)};
  MeshAuth auth(&old_store, config);
  ASSERT_TRUE(auth.Load(kNow).ok());
  EXPECT_EQ(auth.nonces(), 1u);
  auth.Expire(kNow + absl::Hours(24 * 30) + absl::Seconds(1), kNoneLive);
  EXPECT_EQ(auth.nonces(), 0u);
}

TEST_F(MeshAuthBoundsTest, ExpiryCostsWhatItRemovesNotWhatItKeeps) {
  CoreConfig config;
  config.auth_records_per_ip_per_minute = 100000;
  MeshAuth& auth = Make(config);
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(AdmitRegisterNow(auth, Reg(absl::StrCat("m", i), "a", "t"), false, kIp, kNow).ok());
  }
  auth.MeshEmptied("m7", kNow);
  // Each call pops what is due; nothing else is visited. (Correctness here;
  // bench/ is where time is measured.)
  for (int s = 1; s <= 100; ++s) auth.Expire(kNow + absl::Seconds(s), kNoneLive);
  EXPECT_EQ(auth.bindings(), 20000u);
  auth.Expire(kNow + absl::Hours(25), kNoneLive);
  EXPECT_EQ(auth.bindings(), 19999u);
}

// --- the store decides what creates or consumes a record (issue 11) --------

namespace {

using store::testing::ManualExecutor;
using store::testing::ScriptedAuthStore;

// An admission that may complete later: its answer, once there is one.
struct Pending {
  std::optional<absl::StatusOr<Admission>> result;
  MeshAuth::AdmissionDone Done() {
    return [this](absl::StatusOr<Admission> a) {
      EXPECT_FALSE(result.has_value()) << "an admission completed twice";
      result = std::move(a);
    };
  }
  bool admitted() const { return result && result->ok(); }
  bool denied() const { return result && absl::IsPermissionDenied(result->status()); }
};

class MeshAuthStoreTest : public ::testing::Test {
 protected:
  MeshAuthStoreTest() { store_.hold(true); }
  std::unique_ptr<MeshAuth> Relay(CoreConfig config = {}) {
    config.auth_records_per_ip_per_minute = 100;
    return std::make_unique<MeshAuth>(&store_, config, &hits_, &executor_);
  }
  // Answers waiting store operation `i`, then lets the core thread see it.
  void Answer(std::size_t i = 0) {
    store_.Answer(i);
    executor_.RunAll();
  }
  void AnswerAll() {
    while (store_.waiting() > 0) Answer(0);
  }

  ScriptedAuthStore store_;
  ManualExecutor executor_;
  LimitHits hits_;
};

TEST_F(MeshAuthStoreTest, ABindingCompletesOnlyOnTheStoresAnswerThroughTheExecutor) {
  auto auth = Relay();
  Pending p;
  auth->AdmitRegister(Reg("m", "a", "secret"), false, kIp, kNow, p.Done());
  EXPECT_FALSE(p.result.has_value());
  ASSERT_EQ(store_.waiting(), 1u);
  EXPECT_EQ(store_.what(0), "bind m");
  EXPECT_EQ(auth->bindings(), 0u);
  // The store answers on its own thread after the call returned: the
  // answer waits for the core thread.
  std::thread store_thread([this] { store_.Answer(0); });
  store_thread.join();
  EXPECT_FALSE(p.result.has_value());
  EXPECT_EQ(executor_.pending(), 1u);
  executor_.RunAll();
  ASSERT_TRUE(p.admitted()) << p.result->status();
  EXPECT_TRUE((*p.result)->proves_node);
  EXPECT_EQ(auth->bindings(), 1u);
  EXPECT_EQ(store_.bindings.count("m"), 1u);
  // Now memory knows the binding: the same token is admitted at once.
  EXPECT_TRUE(AdmitRegisterNow(*auth, Reg("m", "b", "secret"), true, kIp, kNow).ok());
  EXPECT_EQ(store_.waiting(), 0u);
}

// A store that brings its answer to the core thread itself (NatsAuthStore
// posts it) is taken as it comes: a second post would only add a hop.
TEST_F(MeshAuthStoreTest, AnAnswerOnTheCoreThreadAfterTheCallIsTakenWithoutAnotherPost) {
  auto auth = Relay();
  Pending p;
  auth->AdmitRegister(Reg("m", "a", "secret"), false, kIp, kNow, p.Done());
  ASSERT_EQ(store_.waiting(), 1u);
  EXPECT_FALSE(p.result.has_value());
  store_.Answer(0);  // this thread is the core thread, in a task of its own
  EXPECT_EQ(executor_.pending(), 0u);
  ASSERT_TRUE(p.admitted()) << p.result->status();
  EXPECT_EQ(auth->bindings(), 1u);
}

// Two connections claim one empty mesh with two tokens: the store's order
// decides, and exactly one of them binds it, whichever answer comes first.
TEST_F(MeshAuthStoreTest, ConcurrentBindingClaimsHaveOneWinnerInEitherOrder) {
  for (std::size_t first : {0u, 1u}) {
    SCOPED_TRACE(first);
    store_.bindings.clear();
    auto auth = Relay();
    Pending claims[2];
    auth->AdmitRegister(Reg("m", "a", "token-a"), false, kIp, kNow, claims[0].Done());
    auth->AdmitRegister(Reg("m", "b", "token-b"), false, kIp, kNow, claims[1].Done());
    ASSERT_EQ(store_.waiting(), 2u);
    Answer(first);
    Answer(0);
    EXPECT_TRUE(claims[first].admitted());
    EXPECT_TRUE(claims[1 - first].denied());
    EXPECT_EQ(auth->bindings(), 1u);
    // Memory and store hold the winner's binding.
    const std::string winner = first == 0 ? "token-a" : "token-b";
    EXPECT_TRUE(AdmitRegisterNow(*auth, Reg("m", "c", winner), true, kIp, kNow).ok());
    EXPECT_TRUE(absl::IsPermissionDenied(
        AdmitRegisterNow(*auth, Reg("m", "d", first == 0 ? "token-b" : "token-a"), true, kIp, kNow)
            .status()));
  }
}

TEST_F(MeshAuthStoreTest, ConcurrentClaimsWithTheSameTokenAreBothAdmitted) {
  auto auth = Relay();
  Pending a, b;
  auth->AdmitRegister(Reg("m", "a", "same"), false, kIp, kNow, a.Done());
  auth->AdmitRegister(Reg("m", "b", "same"), false, kIp, kNow, b.Done());
  AnswerAll();
  EXPECT_TRUE(a.admitted());
  EXPECT_TRUE(b.admitted());
  EXPECT_EQ(auth->bindings(), 1u);
}

// Two relays sharing one store: the second knows nothing of the mesh in
// memory, and its claim finds the first's binding.
TEST_F(MeshAuthStoreTest, TwoRelaysSharingAStoreBindAMeshOnce) {
  auto one = Relay();
  auto two = Relay();
  Pending owner, squatter, member;
  one->AdmitRegister(Reg("m", "a", "secret"), false, kIp, kNow, owner.Done());
  two->AdmitRegister(Reg("m", "x", "guess"), false, kIp, kNow, squatter.Done());
  AnswerAll();
  EXPECT_TRUE(owner.admitted());
  EXPECT_TRUE(squatter.denied());
  two->AdmitRegister(Reg("m", "b", "secret"), false, kIp, kNow, member.Done());
  EXPECT_TRUE(member.admitted()) << "decided from the binding relay two now holds";
  // An open registrant on relay two does not find the mesh open either.
  store_.hold(false);
  auto three = Relay();
  EXPECT_TRUE(absl::IsPermissionDenied(
      AdmitRegisterNow(*three, Reg("m", "y"), /*mesh_live=*/false, kIp, kNow).status()));
}

TEST_F(MeshAuthStoreTest, ConcurrentUsesOfOneNonceHaveOneWinner) {
  Ed25519Key key;
  store_.hold(false);
  auto one = Relay();
  auto two = Relay();
  ASSERT_TRUE(AdmitRegisterMeshNow(*one, Founding(key, "s", "f"), "s", false, kIp, kNow).ok());
  store_.hold(true);
  const absl::Time expires = kNow + absl::Hours(1);
  Pending phone, tablet;
  // Relay two learns the mesh from the store (a lookup), then claims the nonce.
  two->AdmitRegister(SignedJoin(key, "s", "tablet", "n", expires, ""), false, kIp, kNow,
                     tablet.Done());
  ASSERT_EQ(store_.what(0), "lookup s");
  Answer(0);
  one->AdmitRegister(SignedJoin(key, "s", "phone", "n", expires, ""), true, kIp, kNow,
                     phone.Done());
  ASSERT_EQ(store_.waiting(), 2u);
  EXPECT_EQ(store_.what(0), "nonce s/n");
  EXPECT_EQ(store_.what(1), "nonce s/n");
  Answer(1);  // the phone's use reaches the store first
  Answer(0);
  EXPECT_TRUE(phone.admitted());
  EXPECT_TRUE(tablet.denied());
  EXPECT_EQ(one->nonces(), 1u);
  EXPECT_EQ(two->nonces(), 1u);
  // The phone reconnecting through relay two is a reconnect, decided from memory.
  Pending again;
  two->AdmitRegister(SignedJoin(key, "s", "phone", "n", expires, ""), true, kIp, kNow,
                     again.Done());
  EXPECT_TRUE(again.admitted());
}

TEST_F(MeshAuthStoreTest, AFailingStoreRefusesWithUnavailableAndKeepsNothing) {
  CoreConfig config;
  config.max_auth_records = 1;
  auto auth = Relay(config);
  Pending p;
  auth->AdmitRegister(Reg("m", "a", "secret"), false, kIp, kNow, p.Done());
  store_.Fail(0);
  executor_.RunAll();
  ASSERT_TRUE(p.result.has_value());
  EXPECT_TRUE(absl::IsUnavailable(p.result->status())) << p.result->status();
  EXPECT_EQ(auth->records(), 0u);
  // A store that fails at once (inline) refuses the same way, and the
  // claim that failed holds no room: once the store is back, the one record
  // the bound allows can be made.
  store_.fail_all(absl::UnavailableError("disk gone"));
  EXPECT_TRUE(absl::IsUnavailable(
      AdmitRegisterNow(*auth, Reg("m", "a", "secret"), false, kIp, kNow).status()));
  Ed25519Key key;
  EXPECT_TRUE(absl::IsUnavailable(
      AdmitRegisterMeshNow(*auth, Founding(key, "s", "f"), "s", false, kIp, kNow).status()));
  EXPECT_TRUE(
      absl::IsUnavailable(AdmitRegisterNow(*auth, Reg("open", "a"), false, kIp, kNow).status()))
      << "an empty mesh is looked up first: the store may know it";
  store_.fail_all(absl::OkStatus());
  store_.hold(false);
  EXPECT_TRUE(AdmitRegisterNow(*auth, Reg("m", "a", "secret"), false, kIp, kNow).ok());
  EXPECT_EQ(auth->records(), 1u);
}

TEST_F(MeshAuthStoreTest, ClaimsOnTheirWayCountAgainstTheRecordBounds) {
  CoreConfig config;
  config.max_auth_records = 1;
  auto auth = Relay(config);
  Pending first, second;
  auth->AdmitRegister(Reg("m1", "a", "t"), false, kIp, kNow, first.Done());
  auth->AdmitRegister(Reg("m2", "a", "t"), false, kIp, kNow, second.Done());
  EXPECT_EQ(store_.waiting(), 1u) << "the second never reached the store";
  ASSERT_TRUE(second.result.has_value());
  EXPECT_TRUE(absl::IsUnavailable(second.result->status()));
  AnswerAll();
  EXPECT_TRUE(first.admitted());
}

TEST_F(MeshAuthStoreTest, NoncesOnTheirWayCountAgainstTheMeshsBound) {
  CoreConfig config;
  config.max_nonces_per_mesh = 1;
  Ed25519Key key;
  store_.hold(false);
  auto auth = Relay(config);
  ASSERT_TRUE(AdmitRegisterMeshNow(*auth, Founding(key, "s", "f"), "s", false, kIp, kNow).ok());
  store_.hold(true);
  const absl::Time expires = kNow + absl::Hours(1);
  Pending a, b;
  auth->AdmitRegister(SignedJoin(key, "s", "p", "n1", expires, ""), true, kIp, kNow, a.Done());
  auth->AdmitRegister(SignedJoin(key, "s", "q", "n2", expires, ""), true, kIp, kNow, b.Done());
  EXPECT_TRUE(b.denied());
  AnswerAll();
  EXPECT_TRUE(a.admitted());
  EXPECT_EQ(auth->nonces(), 1u);
}

// Found and bind race for one empty mesh, across two relays: one level wins.
TEST_F(MeshAuthStoreTest, SigningAndBindingOneMeshAtOnceLeaveOneLevel) {
  for (std::size_t first : {0u, 1u}) {
    SCOPED_TRACE(first);
    store_.bindings.clear();
    store_.signed_meshes.clear();
    Ed25519Key key;
    auto one = Relay();
    auto two = Relay();
    Pending bind, found;
    one->AdmitRegister(Reg("m", "a", "secret"), false, kIp, kNow, bind.Done());
    two->AdmitRegisterMesh(Founding(key, "m", "f"), "m", false, kIp, kNow, found.Done());
    ASSERT_EQ(store_.waiting(), 2u);
    Answer(first);
    Answer(0);
    EXPECT_NE(bind.admitted(), found.admitted());
    EXPECT_TRUE(bind.denied() || found.denied());
    EXPECT_EQ(store_.bindings.size() + store_.signed_meshes.size(), 1u);
    EXPECT_EQ(first == 0, bind.admitted());
  }
}

// The store's answer to a token's claim comes after an open registrant of
// the same empty mesh was admitted: the mesh went live open first and stays
// open (as if the token had come second), and no binding is left behind.
TEST_F(MeshAuthStoreTest, AClaimAnsweredAfterAnOpenAdmissionFindsTheMeshOpen) {
  auto auth = Relay();
  Pending token, open;
  auth->AdmitRegister(Reg("m", "a", "secret"), false, kIp, kNow, token.Done());
  auth->AdmitRegister(Reg("m", "b"), false, kIp, kNow, open.Done());
  ASSERT_EQ(store_.what(1), "lookup m");
  Answer(1);  // the lookup: nothing known, the mesh is open
  ASSERT_TRUE(open.admitted());
  Answer(0);  // the binding claim: the store made it...
  ASSERT_TRUE(token.admitted());
  EXPECT_FALSE((*token.result)->proves_node) << "an open mesh's token proves nothing";
  EXPECT_EQ((*token.result)->credential.rfind("open:", 0), 0u);
  EXPECT_EQ(auth->bindings(), 0u);
  EXPECT_EQ(store_.bindings.count("m"), 0u) << "...and took it back";
}

// A registrant whose binding was answered late may have left before it
// joined; then nobody empties the mesh, and the binding goes after a grace.
TEST_F(MeshAuthStoreTest, ABindingAnsweredLateGoesAfterAGraceUnlessItsMeshIsLive) {
  auto auth = Relay();
  Pending gone, joined;
  auth->AdmitRegister(Reg("gone", "a", "secret"), false, kIp, kNow, gone.Done());
  auth->AdmitRegister(Reg("joined", "a", "secret"), false, kIp, kNow, joined.Done());
  AnswerAll();
  ASSERT_TRUE(gone.admitted() && joined.admitted());
  const auto only_joined_live = [](const std::string& id) { return id == "joined"; };
  auth->Expire(kNow + absl::Hours(23), only_joined_live);
  EXPECT_EQ(auth->bindings(), 2u) << "a grace holds like a left mesh's";
  auth->Expire(kNow + absl::Hours(25), only_joined_live);
  EXPECT_EQ(auth->bindings(), 1u);
  EXPECT_EQ(store_.bindings.count("gone"), 0u);
  EXPECT_EQ(store_.bindings.count("joined"), 1u);
  // The live one keeps its binding for good, then the usual grace once empty.
  auth->Expire(kNow + absl::Hours(24 * 10), only_joined_live);
  EXPECT_EQ(auth->bindings(), 1u);
  auth->MeshEmptied("joined", kNow + absl::Hours(24 * 10));
  auth->Expire(kNow + absl::Hours(24 * 11) + absl::Seconds(1), kNoneLive);
  EXPECT_EQ(auth->bindings(), 0u);
}

TEST_F(MeshAuthStoreTest, AnAnswerAfterMeshAuthIsGoneIsDropped) {
  auto auth = Relay();
  bool called = false;
  auth->AdmitRegister(Reg("m", "a", "secret"), false, kIp, kNow,
                      [&called](absl::StatusOr<Admission>) { called = true; });
  auth.reset();
  store_.Answer(0);
  executor_.RunAll();
  EXPECT_FALSE(called);
}

TEST_F(MeshAuthStoreTest, ARegisteredMeshOfAnotherRelayIsFoundByLookup) {
  Ed25519Key key;
  store_.hold(false);
  auto one = Relay();
  ASSERT_TRUE(AdmitRegisterMeshNow(*one, Founding(key, "s", "f"), "s", false, kIp, kNow).ok());
  auto two = Relay();
  // Its founder proves it again on relay two (no record is created: the
  // claim finds it and lists the founder already).
  absl::StatusOr<Admission> founder =
      AdmitRegisterMeshNow(*two, Founding(key, "s", "f"), "s", false, kIp, kNow);
  ASSERT_TRUE(founder.ok()) << founder.status();
  EXPECT_EQ(two->signed_meshes(), 1u);
  // Plain registrants of it are refused on a third relay that never saw it.
  auto three = Relay();
  EXPECT_TRUE(absl::IsPermissionDenied(
      AdmitRegisterNow(*three, Reg("s", "x", "token"), false, kIp, kNow).status()));
  EXPECT_TRUE(
      absl::IsPermissionDenied(AdmitRegisterNow(*three, Reg("s", "x"), false, kIp, kNow).status()));
}

TEST_F(MeshAuthTest, OpenCredentialsAreDigestsThatCompareLikeTheTokens) {
  absl::StatusOr<Admission> a = AdmitRegisterNow(auth_, Reg("m", "a", "hunter2"), true, kIp, kNow);
  absl::StatusOr<Admission> b = AdmitRegisterNow(auth_, Reg("m", "b", "hunter2"), true, kIp, kNow);
  absl::StatusOr<Admission> c = AdmitRegisterNow(auth_, Reg("m", "c", "other"), true, kIp, kNow);
  absl::StatusOr<Admission> none = AdmitRegisterNow(auth_, Reg("m", "d"), true, kIp, kNow);
  absl::StatusOr<Admission> none2 = AdmitRegisterNow(auth_, Reg("m", "e"), true, kIp, kNow);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && none.ok() && none2.ok());
  EXPECT_EQ(a->credential.find("hunter2"), std::string::npos) << a->credential;
  EXPECT_EQ(a->credential, b->credential);
  EXPECT_NE(a->credential, c->credential);
  EXPECT_EQ(none->credential, none2->credential);
  EXPECT_NE(none->credential, a->credential);
  EXPECT_NE(a->credential, "token");
}

}  // namespace
}  // namespace relay::core
