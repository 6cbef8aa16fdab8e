// MeshAuth: the three admission levels, with keys and signatures made by
// OpenSSL directly (not by the code under test).
#include "server/core/mesh_auth.h"

#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace relay::core {
namespace {

using relay::v1::Register;
using relay::v1::RegisterMesh;

class Ed25519Key {
 public:
  Ed25519Key() {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
    EVP_PKEY_keygen_init(ctx);
    EVP_PKEY_keygen(ctx, &key_);
    EVP_PKEY_CTX_free(ctx);
  }
  ~Ed25519Key() { EVP_PKEY_free(key_); }

  std::string PublicB64() const {
    unsigned char raw[32];
    size_t len = sizeof(raw);
    EVP_PKEY_get_raw_public_key(key_, raw, &len);
    return absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(raw), len));
  }
  std::string SignB64(absl::string_view message) const {
    unsigned char sig[64];
    size_t len = sizeof(sig);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_);
    EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(message.data()),
                   message.size());
    EVP_MD_CTX_free(ctx);
    return absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(sig), len));
  }

 private:
  EVP_PKEY* key_ = nullptr;
};

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

class MeshAuthTest : public ::testing::Test {
 protected:
  store::MemoryAuthStore store_;
  MeshAuth auth_{&store_, absl::Hours(24)};
};

TEST_F(MeshAuthTest, FirstRegistrantWithoutTokenMakesAnOpenMesh) {
  EXPECT_TRUE(auth_.AdmitRegister(Reg("m", "a"), /*mesh_live=*/false, kNow).ok());
  EXPECT_TRUE(auth_.AdmitRegister(Reg("m", "b", "anything"), /*mesh_live=*/true, kNow).ok());
  EXPECT_EQ(auth_.bindings(), 0u);
}

TEST_F(MeshAuthTest, FirstTokenBindsTheMeshAndOtherTokensAreDenied) {
  ASSERT_TRUE(auth_.AdmitRegister(Reg("m", "a", "secret"), false, kNow).ok());
  EXPECT_TRUE(auth_.AdmitRegister(Reg("m", "b", "secret"), true, kNow).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(auth_.AdmitRegister(Reg("m", "c", "other"), true, kNow).status()));
  EXPECT_TRUE(absl::IsPermissionDenied(auth_.AdmitRegister(Reg("m", "c"), true, kNow).status()));
}

TEST_F(MeshAuthTest, BindingOutlivesTheMeshForTheGraceThenFreesIt) {
  ASSERT_TRUE(auth_.AdmitRegister(Reg("m", "a", "secret"), false, kNow).ok());
  auth_.MeshEmptied("m", kNow);
  auth_.Expire(kNow + absl::Hours(23));
  EXPECT_FALSE(auth_.AdmitRegister(Reg("m", "x", "squat"), false, kNow + absl::Hours(23)).ok());
  auth_.Expire(kNow + absl::Hours(25));
  EXPECT_TRUE(auth_.AdmitRegister(Reg("m", "x", "squat"), false, kNow + absl::Hours(25)).ok());
}

TEST_F(MeshAuthTest, SameTokenRevivesTheMeshAndStopsTheGraceClock) {
  ASSERT_TRUE(auth_.AdmitRegister(Reg("m", "a", "secret"), false, kNow).ok());
  auth_.MeshEmptied("m", kNow);
  ASSERT_TRUE(auth_.AdmitRegister(Reg("m", "a", "secret"), false, kNow + absl::Hours(1)).ok());
  auth_.Expire(kNow + absl::Hours(48));  // live again: no expiry
  EXPECT_FALSE(auth_.AdmitRegister(Reg("m", "x", "squat"), true, kNow + absl::Hours(48)).ok());
}

TEST_F(MeshAuthTest, RegisterMeshVerifiesTheFounderProof) {
  Ed25519Key mesh_key, other;
  RegisterMesh good = Founding(mesh_key, "home", "mac");
  absl::StatusOr<std::string> founder = auth_.AdmitRegisterMesh(good, "home");
  ASSERT_TRUE(founder.ok()) << founder.status();
  EXPECT_EQ(*founder, "node:mac");

  RegisterMesh forged = Founding(mesh_key, "home2", "mac");
  forged.set_founder_proof_b64(other.SignB64("home2"));
  EXPECT_FALSE(auth_.AdmitRegisterMesh(forged, "home2").ok());
}

TEST_F(MeshAuthTest, RegisterMeshForAnotherMeshThanTheUrlIsDenied) {
  Ed25519Key mesh_key;
  EXPECT_FALSE(auth_.AdmitRegisterMesh(Founding(mesh_key, "home", "mac"), "elsewhere").ok());
}

TEST_F(MeshAuthTest, FounderRejoinsWithTheSameKeyButAnotherKeyIsDenied) {
  Ed25519Key mesh_key, other;
  ASSERT_TRUE(auth_.AdmitRegisterMesh(Founding(mesh_key, "home", "mac"), "home").ok());
  EXPECT_TRUE(auth_.AdmitRegisterMesh(Founding(mesh_key, "home", "mac"), "home").ok());
  EXPECT_FALSE(auth_.AdmitRegisterMesh(Founding(other, "home", "mac"), "home").ok());
}

TEST_F(MeshAuthTest, NodePublicKeyVerifiesTheProofWhenGiven) {
  Ed25519Key mesh_key, node_key;
  RegisterMesh request = Founding(mesh_key, "home", "mac");
  request.set_node_public_key_b64(node_key.PublicB64());
  request.set_founder_proof_b64(node_key.SignB64("home"));
  EXPECT_TRUE(auth_.AdmitRegisterMesh(request, "home").ok());
}

TEST_F(MeshAuthTest, SignedMeshAcceptsValidTokensAndRefusesTheRest) {
  Ed25519Key mesh_key, other;
  ASSERT_TRUE(auth_.AdmitRegisterMesh(Founding(mesh_key, "home", "mac"), "home").ok());
  const absl::Time later = kNow + absl::Hours(1);

  absl::StatusOr<std::string> ok =
      auth_.AdmitRegister(SignedJoin(mesh_key, "home", "phone", "n1", later, "phone"), true, kNow);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, "node:phone");

  // Expired, wrong node binding, wrong signer, wrong mesh.
  EXPECT_FALSE(auth_.AdmitRegister(SignedJoin(mesh_key, "home", "phone", "n2", kNow - absl::Seconds(1), "phone"), true, kNow).ok());
  EXPECT_FALSE(auth_.AdmitRegister(SignedJoin(mesh_key, "home", "tablet", "n3", later, "phone"), true, kNow).ok());
  EXPECT_FALSE(auth_.AdmitRegister(SignedJoin(other, "home", "phone", "n4", later, "phone"), true, kNow).ok());
  Register elsewhere = SignedJoin(mesh_key, "home", "phone", "n5", later, "phone");
  elsewhere.mutable_signed_token()->set_mesh_id("other-mesh");
  EXPECT_FALSE(auth_.AdmitRegister(elsewhere, true, kNow).ok());

  // Tampered canonical bytes.
  Register tampered = SignedJoin(mesh_key, "home", "phone", "n6", later, "phone");
  tampered.mutable_signed_token()->set_canonical("something else");
  EXPECT_FALSE(auth_.AdmitRegister(tampered, true, kNow).ok());

  // No token, or a plain string token, on a signed mesh.
  EXPECT_FALSE(auth_.AdmitRegister(Reg("home", "phone"), true, kNow).ok());
  EXPECT_FALSE(auth_.AdmitRegister(Reg("home", "phone", "secret"), true, kNow).ok());
}

TEST_F(MeshAuthTest, NonceIsOneNodesUntilItsTokenExpires) {
  Ed25519Key mesh_key;
  ASSERT_TRUE(auth_.AdmitRegisterMesh(Founding(mesh_key, "home", "mac"), "home").ok());
  const absl::Time expires = kNow + absl::Hours(1);
  ASSERT_TRUE(auth_.AdmitRegister(SignedJoin(mesh_key, "home", "phone", "n", expires, ""), true, kNow).ok());
  // The same node reconnecting with the same token is fine.
  EXPECT_TRUE(auth_.AdmitRegister(SignedJoin(mesh_key, "home", "phone", "n", expires, ""), true, kNow).ok());
  // Another node replaying it is not.
  EXPECT_FALSE(auth_.AdmitRegister(SignedJoin(mesh_key, "home", "tablet", "n", expires, ""), true, kNow).ok());
}

TEST_F(MeshAuthTest, AFreshNodeKeyCannotReproveAnExistingSignedMesh) {
  Ed25519Key mesh_key, founder_key, stranger_key;
  RegisterMesh founding = Founding(mesh_key, "home", "mac");
  founding.set_node_public_key_b64(founder_key.PublicB64());
  founding.set_founder_proof_b64(founder_key.SignB64("home"));
  ASSERT_TRUE(auth_.AdmitRegisterMesh(founding, "home").ok());
  EXPECT_TRUE(auth_.AdmitRegisterMesh(founding, "home").ok());  // the founder again

  RegisterMesh stranger = Founding(mesh_key, "home", "mac");  // the public mesh key
  stranger.set_node_public_key_b64(stranger_key.PublicB64());
  stranger.set_founder_proof_b64(stranger_key.SignB64("home"));
  EXPECT_TRUE(absl::IsPermissionDenied(auth_.AdmitRegisterMesh(stranger, "home").status()));
}

TEST_F(MeshAuthTest, UnboundTokensNeverShareAnIdentity) {
  Ed25519Key mesh_key;
  ASSERT_TRUE(auth_.AdmitRegisterMesh(Founding(mesh_key, "home", "mac"), "home").ok());
  const absl::Time expires = kNow + absl::Hours(1);
  absl::StatusOr<std::string> first =
      auth_.AdmitRegister(SignedJoin(mesh_key, "home", "phone", "n", expires, ""), true, kNow);
  absl::StatusOr<std::string> again =
      auth_.AdmitRegister(SignedJoin(mesh_key, "home", "phone", "n", expires, ""), true, kNow);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_NE(*first, *again);
}

TEST_F(MeshAuthTest, MalformedTokenIsDeniedWithItsReason) {
  Register reg = Reg("home", "phone");
  reg.mutable_signed_token()->set_present(true);
  reg.mutable_signed_token()->set_malformed("the token needs a numeric expires_at");
  absl::StatusOr<std::string> result = auth_.AdmitRegister(reg, true, kNow);
  EXPECT_TRUE(absl::IsPermissionDenied(result.status()));
  EXPECT_EQ(result.status().message(), "the token needs a numeric expires_at");
}

TEST_F(MeshAuthTest, TokenObjectOnAnUnsignedMeshIsDenied) {
  Ed25519Key key;
  EXPECT_FALSE(auth_.AdmitRegister(SignedJoin(key, "open", "phone", "n", kNow + absl::Hours(1), ""), false, kNow).ok());
}

TEST_F(MeshAuthTest, RegisterMeshOnATokenBoundMeshIsDenied) {
  Ed25519Key key;
  ASSERT_TRUE(auth_.AdmitRegister(Reg("m", "a", "secret"), false, kNow).ok());
  EXPECT_FALSE(auth_.AdmitRegisterMesh(Founding(key, "m", "a"), "m").ok());
}

}  // namespace
}  // namespace relay::core
