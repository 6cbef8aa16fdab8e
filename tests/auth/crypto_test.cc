// The crypto primitives against known answers (RFC 8032 test vector 1,
// SHA-256 of "abc").
#include "server/auth/crypto.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace relay::auth {
namespace {

std::string Hex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

TEST(CryptoTest, Ed25519AcceptsTheRfc8032VectorAndRejectsAnyChange) {
  const std::string key = Hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const std::string sig = Hex(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
      "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(VerifyEd25519(key, "", sig));
  EXPECT_FALSE(VerifyEd25519(key, "x", sig));
  std::string bad = sig;
  bad[0] ^= 1;
  EXPECT_FALSE(VerifyEd25519(key, "", bad));
  EXPECT_FALSE(VerifyEd25519(key.substr(1), "", sig));
  EXPECT_FALSE(VerifyEd25519(key, "", sig.substr(1)));
}

TEST(CryptoTest, SaltedSha256IsSha256OfSaltThenSecret) {
  EXPECT_EQ(SaltedSha256("a", "bc"),
            Hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}

TEST(CryptoTest, ConstantTimeEqualsComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(CryptoTest, Base64WithAndWithoutPadding) {
  EXPECT_EQ(DecodeBase64("aGk="), "hi");
  EXPECT_EQ(DecodeBase64("aGk"), "hi");
  EXPECT_FALSE(DecodeBase64("a*k=").has_value());
}

TEST(CryptoTest, RandomBytesHaveTheAskedLengthAndDiffer) {
  EXPECT_EQ(RandomBytes(16).size(), 16u);
  EXPECT_NE(RandomBytes(16), RandomBytes(16));
}

}  // namespace
}  // namespace relay::auth
