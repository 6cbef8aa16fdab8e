// Tests for gateway/http/relay_path.cc: /relay/{mesh_id} is one path segment,
// percent-decoded, 1..max bytes of UTF-8 without control characters; any
// other path is NotFound.
#include "gateway/http/relay_path.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

constexpr std::size_t kMax = 256;

// The decoded mesh id, or "<error: ...>" so a refusal shows in the failure.
std::string Decoded(const std::string& resource, std::size_t max_bytes = kMax) {
  absl::StatusOr<std::string> mesh = ParseRelayPath(resource, max_bytes);
  if (!mesh.ok()) return "<error: " + mesh.status().ToString() + ">";
  return *mesh;
}

absl::StatusCode CodeOf(const std::string& resource) {
  return ParseRelayPath(resource, kMax).status().code();
}

TEST(RelayPathTest, PlainMeshIdIsReturned) {
  absl::StatusOr<std::string> mesh = ParseRelayPath("/relay/lobby", kMax);

  ASSERT_TRUE(mesh.ok()) << mesh.status();
  EXPECT_EQ(*mesh, "lobby");
}

TEST(RelayPathTest, PercentEscapesAreDecoded) {
  EXPECT_EQ(Decoded("/relay/my%20mesh"), "my mesh");
  EXPECT_EQ(Decoded("/relay/caf%C3%A9"), "caf\xC3\xA9");
  EXPECT_EQ(Decoded("/relay/caf%c3%a9"), "caf\xC3\xA9");
  EXPECT_EQ(Decoded("/relay/%25"), "%");
  EXPECT_EQ(Decoded("/relay/%41%42"), "AB");
}

TEST(RelayPathTest, EncodedSlashDecodesAndIsAllowed) {
  EXPECT_EQ(Decoded("/relay/team%2Fa"), "team/a");
  EXPECT_EQ(Decoded("/relay/%2f"), "/");
}

TEST(RelayPathTest, PlusIsKeptLiterally) {
  EXPECT_EQ(Decoded("/relay/a+b"), "a+b");
}

TEST(RelayPathTest, RawUtf8IsAccepted) {
  EXPECT_EQ(Decoded("/relay/\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
}

TEST(RelayPathTest, QueryStringIsIgnored) {
  EXPECT_EQ(Decoded("/relay/lobby?token=x&y=%00"), "lobby");
  EXPECT_EQ(Decoded("/relay/lobby?"), "lobby");
  EXPECT_EQ(Decoded("/relay/a%3Fb?c"), "a?b");
}

TEST(RelayPathTest, EmptyMeshIdIsInvalid) {
  EXPECT_EQ(CodeOf("/relay/"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf("/relay/?x=1"), absl::StatusCode::kInvalidArgument);
}

TEST(RelayPathTest, MeshIdOfMaxBytesIsAcceptedAndOneMoreIsTooLong) {
  const std::string at_limit(256, 'm');
  const std::string past_limit(257, 'm');

  EXPECT_EQ(Decoded("/relay/" + at_limit), at_limit);
  EXPECT_EQ(CodeOf("/relay/" + past_limit), absl::StatusCode::kInvalidArgument);
}

TEST(RelayPathTest, LengthIsCountedAfterDecoding) {
  std::string encoded;
  for (int i = 0; i < 256; ++i) encoded += "%41";  // 768 bytes encoded, 256 decoded

  EXPECT_EQ(Decoded("/relay/" + encoded), std::string(256, 'A'));
  EXPECT_EQ(CodeOf("/relay/" + encoded + "%41"), absl::StatusCode::kInvalidArgument);
}

TEST(RelayPathTest, MaxBytesComesFromTheCaller) {
  EXPECT_TRUE(ParseRelayPath("/relay/abcd", 4).ok());
  EXPECT_EQ(ParseRelayPath("/relay/abcde", 4).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RelayPathTest, MalformedPercentEscapeIsInvalid) {
  for (const char* bad : {"/relay/%", "/relay/%4", "/relay/a%", "/relay/%G1", "/relay/%1G",
                          "/relay/%%41", "/relay/ab%2"}) {
    EXPECT_EQ(CodeOf(bad), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(RelayPathTest, ControlCharactersAreInvalid) {
  for (const char* bad : {"/relay/a%00b", "/relay/a%0Ab", "/relay/%1F", "/relay/%09"}) {
    EXPECT_EQ(CodeOf(bad), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(CodeOf(std::string("/relay/a\x01")), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ParseRelayPath("/relay/%20", kMax).ok());  // space is not a control character
}

TEST(RelayPathTest, InvalidUtf8AfterDecodingIsInvalid) {
  for (const char* bad : {"/relay/%C0%80", "/relay/%ED%A0%80", "/relay/%FF", "/relay/%C3",
                          "/relay/a%E2%82", "/relay/%F5%80%80%80"}) {
    EXPECT_EQ(CodeOf(bad), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(CodeOf("/relay/\xC3"), absl::StatusCode::kInvalidArgument);
}

TEST(RelayPathTest, OtherPathsAreNotFound) {
  for (const char* other : {"/", "", "/relay", "/relay/a/b", "/relay//", "/relays/a", "/Relay/a",
                            "/health", "relay/a", "/x/relay/a", "/relay/a/"}) {
    EXPECT_EQ(CodeOf(other), absl::StatusCode::kNotFound) << other;
  }
}

}  // namespace
}  // namespace relay::gateway
