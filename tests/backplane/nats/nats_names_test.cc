// Tests for backplane/nats/nats_names.h: whatever bytes a mesh or node id
// holds, the subject tokens and KV keys made from it are valid for NATS
// (nats.c's key rule and subject token rule), distinct for distinct ids,
// and bounded; operator-chosen names are checked before any NATS call.
#include "backplane/nats/nats_names.h"

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/limits.h"

namespace relay::backplane::nats {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// nats.c's validKey (kv.c): [-/_=.a-zA-Z0-9], not starting or ending with '.'.
bool ValidKvKey(const std::string& key) {
  if (key.empty() || key.front() == '.' || key.back() == '.') return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '/' || c == '_' || c == '=' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// One subject token: not empty, no '.', '*', '>' or white space.
bool ValidSubjectToken(const std::string& token) {
  if (token.empty()) return false;
  for (char c : token) {
    if (c == '.' || c == '*' || c == '>' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      return false;
    }
  }
  return true;
}

TEST(NatsNamesTest, IdsOfAnyBytesBecomeValidDistinctTokensThatDecodeBack) {
  const std::string ids[] = {"family",     "m.e.s.h",
                             "*",          ">",
                             "a b\tc\r\n", "caf\xc3\xa9",
                             ".",          "..",
                             "$JS.API.>",  std::string(1, '\0'),
                             "\xff\xfe",   std::string(limits::kMaxIdBytes, 'x')};
  std::set<std::string> tokens;
  for (const std::string& id : ids) {
    absl::StatusOr<std::string> token = IdToken(id);
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_TRUE(ValidSubjectToken(*token)) << *token;
    EXPECT_TRUE(ValidKvKey(*token)) << *token;
    EXPECT_TRUE(tokens.insert(*token).second) << "two ids share " << *token;
    absl::StatusOr<std::string> back = IdFromToken(*token);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, id);
  }
  EXPECT_EQ(IdToken(std::string(limits::kMaxIdBytes, 'x'))->size(), 342u);
}

TEST(NatsNamesTest, AnEmptyIdHasNoTokenAndNotEveryStringIsOne) {
  EXPECT_EQ(IdToken("").status().code(), absl::StatusCode::kInvalidArgument);
  for (const char* bad : {"", "a.b", "ab=", "a+b", "a/b", "A"}) {
    EXPECT_FALSE(IdFromToken(bad).ok()) << bad;
  }
}

TEST(NatsNamesTest, KeysOfTheLongestIdsAreValidAndBoundedBeforeNatsSeesThem) {
  const std::string longest(limits::kMaxIdBytes, '\xff');
  absl::StatusOr<std::string> node = NodeKey(longest, longest);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_TRUE(ValidKvKey(*node));
  EXPECT_EQ(node->size(), 685u);
  EXPECT_LE(node->size(), limits::kMaxNatsKeyChars);
  // A node key is its mesh's key, a dot, and the node's token: the nodes of
  // one mesh share a prefix a watch can filter on.
  EXPECT_THAT(*NodeKey("home", "phone"), StartsWith(absl::StrCat(*MeshKey("home"), ".")));
  EXPECT_NE(*NodeKey("a.b", "c"), *NodeKey("a", "b.c"));

  // Ids longer than the relay accepts never make an over-long key.
  const std::string too_long(800, 'x');
  absl::StatusOr<std::string> refused = NodeKey(too_long, too_long);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("1024"));
  EXPECT_FALSE(NodeKey("", "phone").ok());
  EXPECT_FALSE(NodeKey("home", "").ok());
}

TEST(NatsNamesTest, NoncesOfAnyLengthAreKeyedByTheirDigest) {
  absl::StatusOr<std::string> short_nonce = NonceKey("home", "n1");
  absl::StatusOr<std::string> long_nonce = NonceKey("home", std::string(65536, 'n'));
  ASSERT_TRUE(short_nonce.ok() && long_nonce.ok());
  EXPECT_TRUE(ValidKvKey(*long_nonce));
  EXPECT_EQ(short_nonce->size(), long_nonce->size());
  EXPECT_NE(*short_nonce, *long_nonce);
  EXPECT_EQ(*NonceKey("home", "n1"), *short_nonce);
  EXPECT_NE(*NonceKey("work", "n1"), *short_nonce);
  EXPECT_FALSE(NonceKey("home", "").ok());
}

// A mesh's nonces are purged together: the filter matches each of its
// nonce keys (one token after the mesh's) and no other mesh's.
TEST(NatsNamesTest, TheMeshNoncesFilterMatchesThatMeshsNonceKeysOnly) {
  absl::StatusOr<std::string> filter = MeshNoncesFilter("home.*");
  ASSERT_TRUE(filter.ok()) << filter.status();
  ASSERT_TRUE(absl::EndsWith(*filter, ".*"));
  const std::string prefix = filter->substr(0, filter->size() - 1);
  absl::StatusOr<std::string> key = NonceKey("home.*", "n1");
  ASSERT_TRUE(key.ok());
  EXPECT_TRUE(absl::StartsWith(*key, prefix));
  EXPECT_EQ(key->find('.', prefix.size()), std::string::npos);
  EXPECT_FALSE(absl::StartsWith(*NonceKey("home", "n1"), prefix));
  EXPECT_FALSE(MeshNoncesFilter("").ok());
}

TEST(NatsNamesTest, ClusterAndInstanceNamesAreCheckedAsOperatorsTypeThem) {
  EXPECT_TRUE(ValidateClusterName("atmosphere").ok());
  EXPECT_TRUE(ValidateClusterName("eu-west_2").ok());
  for (const std::string& bad : {std::string(), std::string("Prod"), std::string("a.b"),
                                 std::string("a b"), std::string("*"), std::string(33, 'a')}) {
    absl::Status status = ValidateClusterName(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("RELAY_CLUSTER")) << bad;
  }
  EXPECT_TRUE(ValidateInstanceId("relay-A_1").ok());
  EXPECT_FALSE(ValidateInstanceId("relay.1").ok());
  EXPECT_FALSE(ValidateInstanceId(">").ok());
  EXPECT_FALSE(ValidateInstanceId(std::string(65, 'a')).ok());
  EXPECT_EQ(InboxSubject("atmosphere", "relay-1"), "relay.atmosphere.i.relay-1");
  EXPECT_EQ(BucketName("atmosphere", Bucket::kNodes), "relay_atmosphere_nodes");
  EXPECT_EQ(BucketName("eu", Bucket::kNonces), "relay_eu_nonces");
}

TEST(NatsNamesTest, TheDefaultInstanceIdIsValidAndDiffersPerProcess) {
  const std::string host = "web-1.eu.example.com";
  const std::string a = DefaultInstanceId(host);
  const std::string b = DefaultInstanceId(host);
  EXPECT_TRUE(ValidateInstanceId(a).ok()) << a;
  EXPECT_THAT(a, StartsWith("web-1-eu-example-com-"));
  EXPECT_EQ(a.size(), host.size() + 1 + 8);
  EXPECT_NE(a, b);
  // A host name of any length or bytes still gives a valid id.
  for (const std::string& odd :
       {std::string(), std::string(200, 'h'), std::string("h\xc3\xa9\x01")}) {
    const std::string id = DefaultInstanceId(odd);
    EXPECT_TRUE(ValidateInstanceId(id).ok()) << id;
  }
}

}  // namespace
}  // namespace relay::backplane::nats
