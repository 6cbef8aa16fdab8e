// Tests for admin-cli/json_output.cc: the --json shape scripts rely on (one
// line, proto field names, zero fields present, 64-bit integers as numbers,
// enum names, doubles that read back exactly), JsonObject's order and
// escaping, and JsonError's shape.
// and JsonObject's order and escaping.
#include "admin-cli/json_output.h"

#include <cmath>

#include "grpc/health/v1/health.pb.h"
#include "gtest/gtest.h"
#include "relay/v1/relay.pb.h"

namespace relay::cli {
namespace {

TEST(ToJsonTest, MeshListUsesProtoFieldNamesOnOneLine) {
  relay::v1::ListMeshesResponse response;
  auto* mesh = response.add_meshes();
  mesh->set_mesh_id("lobby");
  mesh->set_peer_count(2);
  mesh->set_created_at(1700000000.5);
  mesh->set_messages_relayed(42);

  absl::StatusOr<std::string> json = ToJson(response);

  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json,
            "{\"meshes\":[{\"mesh_id\":\"lobby\",\"peer_count\":2,\"created_at\":1700000000.5,"
            "\"messages_relayed\":42}],\"next_page_token\":\"\",\"total_meshes\":0}\n");
}

TEST(ToJsonTest, EmptyListAndZeroFieldsArePresent) {
  EXPECT_EQ(*ToJson(relay::v1::ListMeshesResponse()),
            "{\"meshes\":[],\"next_page_token\":\"\",\"total_meshes\":0}\n");

  relay::v1::Stats stats;
  absl::StatusOr<std::string> json = ToJson(stats);
  ASSERT_TRUE(json.ok());
  for (const char* key :
       {"\"uptime_seconds\":0", "\"active_meshes\":0", "\"open_sockets\":0",
        "\"registered_peers\":0", "\"total_connections\":0", "\"messages_received\":0",
        "\"messages_relayed\":0", "\"llm_requests\":0", "\"errors\":[]", "\"version\":\"\""}) {
    EXPECT_NE(json->find(key), std::string::npos) << key << " in " << *json;
  }
}

TEST(ToJsonTest, MeshDetailNestsSummaryAndPeers) {
  relay::v1::GetMeshResponse response;
  response.mutable_mesh()->set_mesh_id("lobby");
  auto* peer = response.add_peers();
  peer->set_node_id("alice");
  peer->add_capabilities("llm");
  peer->set_remote_address("10.0.0.1:4000");
  peer->set_transport("ws");

  absl::StatusOr<std::string> json = ToJson(response);

  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->find("{\"mesh\":{\"mesh_id\":\"lobby\""), 0u) << *json;
  EXPECT_NE(
      json->find("\"peers\":[{\"node_id\":\"alice\",\"name\":\"\",\"capabilities\":[\"llm\"]"),
      std::string::npos)
      << *json;
  EXPECT_NE(json->find("\"remote_address\":\"10.0.0.1:4000\",\"transport\":\"ws\""),
            std::string::npos)
      << *json;
  EXPECT_EQ(json->find('\n'), json->size() - 1);
}

TEST(ToJsonTest, HealthStatusByName) {
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_EQ(*ToJson(response), "{\"status\":\"UNKNOWN\"}\n");
  response.set_status(grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(*ToJson(response), "{\"status\":\"SERVING\"}\n");
}

TEST(ToJsonTest, SixtyFourBitIntegersAreNumbersUpToTheirMaximum) {
  relay::v1::PeerDetail peer;
  peer.set_bytes_in(18446744073709551615ull);
  peer.set_messages_in(9007199254740993ull);  // 2^53 + 1: exact in the text, not in a double
  const std::string json = *ToJson(peer);
  EXPECT_NE(json.find("\"messages_in\":9007199254740993,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"bytes_in\":18446744073709551615,"), std::string::npos) << json;
}

TEST(ToJsonTest, DoublesReadBackExactlyAndNonFiniteOnesAreStrings) {
  relay::v1::MeshSummary mesh;
  mesh.set_created_at(1764120000.25);
  EXPECT_NE(ToJson(mesh)->find("\"created_at\":1764120000.25,"), std::string::npos);
  EXPECT_EQ(JsonDouble(0.1), "0.1");
  EXPECT_EQ(JsonDouble(std::nan("")), "\"NaN\"");
  EXPECT_EQ(JsonDouble(-HUGE_VAL), "\"-Infinity\"");
}

TEST(ToJsonTest, UnsetMessageFieldsAreLeftOut) {
  relay::v1::Stats stats;
  EXPECT_EQ(ToJson(stats)->find("\"cluster\""), std::string::npos);
  stats.mutable_cluster();
  EXPECT_NE(ToJson(stats)->find("\"cluster\":{\"instances\":[]"), std::string::npos);
}

TEST(JsonErrorTest, CodeMessageAndRpcInOneObject) {
  EXPECT_EQ(
      JsonError("not_found", "no \"x\"", "GetMesh"),
      "{\"error\":{\"code\":\"not_found\",\"message\":\"no \\\"x\\\"\",\"rpc\":\"GetMesh\"}}\n");
  EXPECT_EQ(JsonError("usage", "missing command"),
            "{\"error\":{\"code\":\"usage\",\"message\":\"missing command\"}}\n");
}

TEST(JsonObjectTest, KeysInInsertionOrderOnOneLine) {
  JsonObject object;
  object.Add("mesh_id", "lobby").Add("closed_peers", 3u).Add("empty", "");
  EXPECT_EQ(object.ToString(), "{\"mesh_id\":\"lobby\",\"closed_peers\":3,\"empty\":\"\"}\n");
  EXPECT_EQ(JsonObject().ToString(), "{}\n");
}

TEST(JsonQuoteTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(JsonQuote("a\"b\\c\nd\te\x01"
                      "f"),
            "\"a\\\"b\\\\c\\nd\\te\\u0001f\"");
  EXPECT_EQ(JsonQuote("caf\xC3\xA9"), "\"caf\xC3\xA9\"") << "UTF-8 passes through";
}

}  // namespace
}  // namespace relay::cli
