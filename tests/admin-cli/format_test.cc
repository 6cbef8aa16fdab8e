// Tests for admin-cli/format.cc: ages, sizes, and the human output of each
// command at a fixed "now".
#include "admin-cli/format.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::cli {
namespace {

constexpr double kNowEpoch = 1'700'000'000;
const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

TEST(FormatAgeTest, LargestWholeUnitTruncated) {
  EXPECT_EQ(FormatAge(absl::ZeroDuration()), "0s");
  EXPECT_EQ(FormatAge(absl::Milliseconds(999)), "0s");
  EXPECT_EQ(FormatAge(absl::Seconds(5)), "5s");
  EXPECT_EQ(FormatAge(absl::Seconds(59)), "59s");
  EXPECT_EQ(FormatAge(absl::Seconds(60)), "1m");
  EXPECT_EQ(FormatAge(absl::Minutes(3) + absl::Seconds(59)), "3m");
  EXPECT_EQ(FormatAge(absl::Minutes(59) + absl::Seconds(59)), "59m");
  EXPECT_EQ(FormatAge(absl::Hours(1)), "1h");
  EXPECT_EQ(FormatAge(absl::Hours(2) + absl::Minutes(59)), "2h");
  EXPECT_EQ(FormatAge(absl::Hours(23) + absl::Minutes(59)), "23h");
  EXPECT_EQ(FormatAge(absl::Hours(24)), "1d");
  EXPECT_EQ(FormatAge(absl::Hours(4 * 24 + 23)), "4d");
  EXPECT_EQ(FormatAge(absl::Hours(400 * 24)), "400d");
}

TEST(FormatAgeTest, NegativeAgeFromClockSkewIsZero) {
  EXPECT_EQ(FormatAge(absl::Seconds(-30)), "0s");
}

TEST(FormatBytesTest, LargestBinaryUnitTruncated) {
  EXPECT_EQ(FormatBytes(0), "0B");
  EXPECT_EQ(FormatBytes(1), "1B");
  EXPECT_EQ(FormatBytes(1023), "1023B");
  EXPECT_EQ(FormatBytes(1024), "1.0KiB");
  EXPECT_EQ(FormatBytes(1536), "1.5KiB");
  EXPECT_EQ(FormatBytes(10 * 1024 - 1), "9.9KiB");
  EXPECT_EQ(FormatBytes(10 * 1024), "10KiB");
  EXPECT_EQ(FormatBytes(1024 * 1024 - 1), "1023KiB") << "never rounded up to 1024KiB";
  EXPECT_EQ(FormatBytes(1024 * 1024), "1.0MiB");
  EXPECT_EQ(FormatBytes(8 * 1024 * 1024), "8.0MiB");
  EXPECT_EQ(FormatBytes(std::uint64_t{5} << 30), "5.0GiB");
  EXPECT_EQ(FormatBytes(std::uint64_t{1536} << 30), "1.5TiB");
  EXPECT_EQ(FormatBytes(~std::uint64_t{0}), "15EiB");
}

TEST(FormatAgeSinceTest, FromEpochSeconds) {
  EXPECT_EQ(FormatAgeSince(kNowEpoch - 5.5, kNow), "5s");
  EXPECT_EQ(FormatAgeSince(kNowEpoch - 3 * 3600, kNow), "3h");
}

TEST(FormatAgeSinceTest, UnsetTimestampIsDash) { EXPECT_EQ(FormatAgeSince(0, kNow), "-"); }

TEST(FormatMeshListTest, Table) {
  relay::v1::ListMeshesResponse response;
  auto* lobby = response.add_meshes();
  lobby->set_mesh_id("lobby");
  lobby->set_peer_count(2);
  lobby->set_created_at(kNowEpoch - 180);
  lobby->set_messages_relayed(42);
  auto* team = response.add_meshes();
  team->set_mesh_id("research-team");
  team->set_peer_count(12);
  team->set_created_at(kNowEpoch - 4 * 86400);
  team->set_messages_relayed(123456);

  EXPECT_EQ(FormatMeshList(response, kNow),
            "MESH           PEERS  AGE  MESSAGES\n"
            "lobby          2      3m   42\n"
            "research-team  12     4d   123456\n");
}

TEST(FormatMeshListTest, NoMeshesIsHeaderOnly) {
  EXPECT_EQ(FormatMeshList(relay::v1::ListMeshesResponse(), kNow), "MESH  PEERS  AGE  MESSAGES\n");
}

relay::v1::ListMeshesResponse PageOf(int shown, std::string next, std::uint32_t total) {
  relay::v1::ListMeshesResponse page;
  for (int i = 0; i < shown; ++i) page.add_meshes()->set_mesh_id(absl::StrCat("m", i));
  page.set_next_page_token(std::move(next));
  page.set_total_meshes(total);
  return page;
}

TEST(FormatMeshListFooterTest, EmptyWhenEveryMeshIsShown) {
  EXPECT_EQ(FormatMeshListFooter(PageOf(3, "", 3), CliOptions()), "");
  EXPECT_EQ(FormatMeshListFooter(PageOf(0, "", 0), CliOptions()), "");
}

TEST(FormatMeshListFooterTest, NextPageCommandKeepsSortAndNonDefaultPageSize) {
  EXPECT_EQ(FormatMeshListFooter(PageOf(50, "50", 120), CliOptions()),
            "(50 of 120 meshes) next page: relayctl meshes list --page-token 50\n"
            "(or --all for every page)\n");
  CliOptions options;
  options.sort = MeshSort::kTraffic;
  options.page_size = 10;
  EXPECT_EQ(FormatMeshListFooter(PageOf(10, "20", 120), options),
            "(10 of 120 meshes) next page: relayctl meshes list --sort traffic --page-size 10 "
            "--page-token 20\n(or --all for every page)\n");
}

TEST(FormatMeshListFooterTest, LastOfSeveralPages) {
  EXPECT_EQ(FormatMeshListFooter(PageOf(2, "", 120), CliOptions()),
            "(2 of 120 meshes, last page)\n");
}

TEST(FormatMeshDetailTest, HeaderLineThenPeerTable) {
  relay::v1::GetMeshResponse response;
  auto* mesh = response.mutable_mesh();
  mesh->set_mesh_id("lobby");
  mesh->set_peer_count(2);
  mesh->set_created_at(kNowEpoch - 7200);
  mesh->set_messages_relayed(42);
  auto* alice = response.add_peers();
  alice->set_node_id("alice-node");
  alice->set_name("Alice");
  alice->add_capabilities("llm");
  alice->add_capabilities("chat");
  alice->set_joined_at(kNowEpoch - 65);
  alice->set_remote_address("10.0.0.1:51234");
  alice->set_transport("ws");
  alice->set_messages_in(12);
  alice->set_messages_out(30);
  alice->set_bytes_in(900);
  alice->set_bytes_out(70'000);
  alice->set_queued_bytes(3 * 1024 * 1024);
  auto* bob = response.add_peers();
  bob->set_node_id("bob");
  bob->set_name("bob");
  bob->set_joined_at(kNowEpoch - 5);
  bob->set_remote_address("[::1]:40000");
  bob->set_transport("grpc");

  EXPECT_EQ(FormatMeshDetail(response, kNow),
            "Mesh: lobby  Peers: 2  Age: 2h  Messages: 42\n"
            "\n"
            "NODE        NAME   CAPABILITIES  TRANSPORT  REMOTE          JOINED  MSGS_IN  "
            "MSGS_OUT  BYTES_IN  BYTES_OUT  QUEUED\n"
            "alice-node  Alice  llm,chat      ws         10.0.0.1:51234  1m      12       "
            "30        900B      68KiB      3.0MiB\n"
            "bob         bob    -             grpc       [::1]:40000     5s      0        "
            "0         0B        0B         0B\n");
}

TEST(FormatMeshDetailTest, ASuspendedPeerIsMarkedWithHowLongItHasBeenAway) {
  relay::v1::GetMeshResponse response;
  response.mutable_mesh()->set_mesh_id("family");
  response.mutable_mesh()->set_peer_count(1);
  auto* phone = response.add_peers();
  phone->set_node_id("phone");
  phone->set_transport("ws");
  phone->set_suspended(true);
  phone->set_suspended_seconds(12.4);
  EXPECT_NE(FormatMeshDetail(response, kNow).find("ws (suspended 12s)"), std::string::npos)
      << FormatMeshDetail(response, kNow);
}

TEST(FormatMeshDetailTest, AnEmptyBoundMeshShowsItsBindingAndNoTable) {
  relay::v1::GetMeshResponse response;
  response.mutable_mesh()->set_mesh_id("family");
  relay::v1::MeshAuthInfo* auth = response.mutable_auth();
  auth->set_level(relay::v1::MeshAuthInfo::LEVEL_TOKEN);
  auth->set_bound_at(kNowEpoch - 3 * 86400);
  auth->set_binding_expires_at(kNowEpoch + 5 * 3600);
  auth->set_grace_left_seconds(5 * 3600);

  EXPECT_EQ(FormatMeshDetail(response, kNow),
            "Mesh: family  Peers: 0  Age: -  Messages: 0\n"
            "Auth: token-bound, since 3d; empty, forgotten in 5h unless its token rejoins "
            "(relayctl meshes unbind releases it now)\n"
            "\n"
            "(no peers)\n");
}

TEST(FormatMeshAuthTest, EachLevelInOneLine) {
  using Info = relay::v1::MeshAuthInfo;
  Info open;
  open.set_level(Info::LEVEL_OPEN);
  Info live;
  live.set_level(Info::LEVEL_TOKEN);  // bound_at unknown: a binding from an older relay
  Info signed_mesh;
  signed_mesh.set_level(Info::LEVEL_SIGNED);
  signed_mesh.set_founders(1);
  signed_mesh.set_last_used_at(kNowEpoch - 120);
  Info unknown;
  unknown.set_unavailable("nats: \x1b[31mtimeout");

  EXPECT_EQ(FormatMeshAuth(open, true, kNow), "Auth: open (no token bound it: anyone may join)\n");
  EXPECT_EQ(FormatMeshAuth(live, true, kNow),
            "Auth: token-bound, since unknown; held while it has peers\n");
  EXPECT_EQ(FormatMeshAuth(live, false, kNow),
            "Auth: token-bound, since unknown; empty, no grace started yet (relayctl meshes unbind "
            "releases it)\n");
  EXPECT_EQ(FormatMeshAuth(signed_mesh, true, kNow),
            "Auth: signed by a mesh key, 1 founder, last used 2m ago\n");
  EXPECT_EQ(FormatMeshAuth(unknown, true, kNow), "Auth: unknown (nats: ?[31mtimeout)\n");
  EXPECT_EQ(FormatMeshAuth(Info(), true, kNow), "");  // a relay from before auth was shown
}

TEST(FormatMeshDetailTest, FromAClusterAnInstanceColumnSaysWhoHoldsEachPeer) {
  relay::v1::GetMeshResponse response;
  response.mutable_mesh()->set_mesh_id("m");
  auto* here = response.add_peers();
  here->set_node_id("a");
  here->set_instance("relay-1");
  here->set_transport("ws");
  auto* there = response.add_peers();
  there->set_node_id("b");
  there->set_instance("relay-2");
  const std::string out = FormatMeshDetail(response, kNow);
  EXPECT_NE(out.find("NODE  INSTANCE  NAME"), std::string::npos) << out;
  EXPECT_NE(out.find("a     relay-1   -     -             ws"), std::string::npos) << out;
  EXPECT_NE(out.find("b     relay-2   -     -             -"), std::string::npos) << out;
}

TEST(FormatMeshDetailTest, AloneNoInstanceColumn) {
  relay::v1::GetMeshResponse response;
  response.mutable_mesh()->set_mesh_id("m");
  response.add_peers()->set_node_id("a");
  response.mutable_peers(0)->set_instance("local");
  EXPECT_EQ(FormatMeshDetail(response, kNow).find("INSTANCE"), std::string::npos);
}

TEST(FormatMeshDetailTest, MeshIdInTheHeaderLineCannotSendEscapes) {
  relay::v1::GetMeshResponse response;
  response.mutable_mesh()->set_mesh_id("evil\x1b]0;pwned\x07");
  EXPECT_EQ(FormatMeshDetail(response, kNow).rfind("Mesh: evil?]0;pwned?  Peers: 0", 0), 0u);
}

TEST(FormatMeshDetailTest, UnknownTransportIsDash) {
  relay::v1::GetMeshResponse response;
  response.mutable_mesh()->set_mesh_id("m");
  response.add_peers()->set_node_id("old");
  EXPECT_NE(FormatMeshDetail(response, kNow).find("old   -     -             -          -"),
            std::string::npos)
      << FormatMeshDetail(response, kNow);
}

TEST(FormatStatsTest, AClusterInstanceNamesItselfThenTheClustersTotalsAndEachInstance) {
  relay::v1::Stats stats;
  stats.set_version("1.0.0");
  stats.set_instance_id("relay-b");
  stats.set_registered_peers(2);
  relay::v1::ClusterStats* cluster = stats.mutable_cluster();
  for (const auto& [id, peers] : {std::pair<const char*, int>{"relay-a", 3}, {"relay-b", 2}}) {
    relay::v1::InstanceStats* instance = cluster->add_instances();
    instance->set_instance_id(id);
    instance->set_open_sockets(peers + 1);
    instance->set_registered_peers(peers);
    instance->set_messages_relayed(10);
  }
  cluster->set_open_sockets(7);
  cluster->set_registered_peers(5);
  cluster->set_messages_relayed(20);
  const std::string text = FormatStats(stats);
  EXPECT_THAT(text, ::testing::StartsWith("version:"));
  EXPECT_THAT(text, ::testing::HasSubstr("\ninstance_id:"));
  EXPECT_LT(text.find("instance_id:"), text.find("uptime_seconds:"));
  EXPECT_THAT(text, ::testing::HasSubstr("cluster.instances:"));
  EXPECT_THAT(text, ::testing::ContainsRegex("cluster.active_connections: +5\n"));
  EXPECT_THAT(text, ::testing::ContainsRegex("cluster.total_messages_relayed: +20\n"));
  EXPECT_THAT(text, ::testing::ContainsRegex(
                        "cluster.instance.relay-a: +4 sockets, 3 peers, 10 relayed\n"));
}

TEST(FormatStatsTest, KeyValueLinesWithEveryErrorCodeCloseReasonLimitAndDrop) {
  relay::v1::Stats stats;
  stats.set_version("1.0.0");
  stats.set_uptime_seconds(7384.6);
  stats.set_active_meshes(3);
  stats.set_open_sockets(5);
  stats.set_registered_peers(4);
  stats.set_total_connections(17);
  stats.set_messages_received(120);
  stats.set_messages_relayed(340);
  stats.set_llm_requests(2);
  auto* bad_json = stats.add_errors();
  bad_json->set_code("bad_json");
  bad_json->set_count(1);
  auto* too_many = stats.add_errors();
  too_many->set_code("too_many_requests");
  too_many->set_count(0);
  auto* kicked = stats.add_closes();
  kicked->set_reason("kicked");
  kicked->set_count(4);
  stats.set_auth_records(9);
  auto* byte_rate = stats.add_limits();
  byte_rate->set_limit("byte_rate");
  byte_rate->set_count(6);
  auto* slow = stats.add_drops();
  slow->set_reason("slow_consumer");
  slow->set_count(2);

  auto* draining = stats.add_refused();
  draining->set_reason("draining");
  draining->set_count(3);
  stats.mutable_resume()->set_suspended(1);
  stats.mutable_resume()->set_resumed(7);
  auto* expired = stats.mutable_resume()->add_ended();
  expired->set_reason("expired");
  expired->set_count(2);

  // GET /stats' names, in its order.
  EXPECT_EQ(FormatStats(stats),
            "version:                  1.0.0\n"
            "uptime_seconds:           7384 (2h)\n"
            "active_meshes:            3\n"
            "active_connections:       4\n"
            "open_sockets:             5\n"
            "total_connections:        17\n"
            "total_messages_received:  120\n"
            "total_messages_relayed:   340\n"
            "total_llm_requests:       2\n"
            "auth_records:             9\n"
            "errors.bad_json:          1\n"
            "errors.too_many_requests: 0\n"
            "closes.kicked:            4\n"
            "refused.draining:         3\n"
            "limits.byte_rate:         6\n"
            "drops.slow_consumer:      2\n"
            "resume.sessions:          0\n"
            "resume.suspended:         1\n"
            "resume.buffered_bytes:    0\n"
            "resume.buffered_frames:   0\n"
            "resume.resumed:           7\n"
            "resume.resume_refused:    0\n"
            "resume.replayed_frames:   0\n"
            "resume.duplicates:        0\n"
            "resume.ended.expired:     2\n");
  // The same counters as --json prints them: /stats' document, then the
  // old names as aliases.
  EXPECT_EQ(FormatStatsJson(stats),
            "{\"uptime_seconds\":7384.6,\"version\":\"1.0.0\",\"active_meshes\":3,"
            "\"active_connections\":4,\"open_sockets\":5,\"total_connections\":17,"
            "\"total_messages_received\":120,\"total_messages_relayed\":340,"
            "\"total_llm_requests\":2,\"errors\":{\"bad_json\":1,\"too_many_requests\":0},"
            "\"closes\":{\"kicked\":4},\"refused\":{\"draining\":3},\"limits\":{\"byte_rate\":6},"
            "\"drops\":{\"slow_consumer\":2},\"auth_records\":9,"
            "\"resume\":{\"sessions\":0,\"suspended\":1,\"buffered_bytes\":0,"
            "\"buffered_frames\":0,\"resumed\":7,\"resume_refused\":0,\"replayed_frames\":0,"
            "\"duplicates\":0,\"ended\":{\"expired\":2}},\"registered_peers\":4,"
            "\"messages_received\":120,\"messages_relayed\":340,\"llm_requests\":2}\n");
}

TEST(FormatStatsTest, JsonOfAClusterInstanceHasItsIdAndTheClusterWithBothNames) {
  relay::v1::Stats stats;
  stats.set_instance_id("relay-b");
  relay::v1::ClusterStats* cluster = stats.mutable_cluster();
  relay::v1::InstanceStats* instance = cluster->add_instances();
  instance->set_instance_id("relay-a");
  instance->set_registered_peers(3);
  instance->set_messages_relayed(10);
  cluster->set_registered_peers(3);
  cluster->set_messages_relayed(10);
  const std::string json = FormatStatsJson(stats);
  EXPECT_THAT(json, ::testing::HasSubstr("\"version\":\"\",\"instance_id\":\"relay-b\","));
  EXPECT_THAT(json, ::testing::HasSubstr(
                        "\"cluster\":{\"instances\":[{\"instance_id\":\"relay-a\",\"started_at\":0,"
                        "\"open_sockets\":0,\"active_connections\":3,\"total_messages_relayed\":10,"
                        "\"registered_peers\":3,\"messages_relayed\":10}],\"open_sockets\":0,"
                        "\"active_connections\":3,\"total_messages_relayed\":10,"
                        "\"registered_peers\":3,\"messages_relayed\":10}"));
}

TEST(FormatHealthTest, StatusName) {
  grpc::health::v1::HealthCheckResponse response;
  response.set_status(grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(FormatHealth(response), "SERVING\n");
  response.set_status(grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(FormatHealth(response), "NOT_SERVING\n");
  response.set_status(grpc::health::v1::HealthCheckResponse::UNKNOWN);
  EXPECT_EQ(FormatHealth(response), "UNKNOWN\n");
}

TEST(FormatHealthTest, StatusNewerThanOurProtoShowsItsNumber) {
  grpc::health::v1::HealthCheckResponse response;
  response.set_status(static_cast<grpc::health::v1::HealthCheckResponse::ServingStatus>(7));
  EXPECT_EQ(FormatHealth(response), "UNKNOWN(7)\n");
}

TEST(FormatActionTest, Kick) {
  EXPECT_EQ(FormatKick("lobby", "alice"), "kicked alice from lobby\n");
}

TEST(FormatActionTest, CloseMeshCountsPeers) {
  relay::v1::CloseMeshResponse response;
  response.set_closed_peers(1);
  EXPECT_EQ(FormatCloseMesh("lobby", response), "closed mesh lobby: 1 peer closed\n");
  response.set_closed_peers(0);
  EXPECT_EQ(FormatCloseMesh("lobby", response), "closed mesh lobby: 0 peers closed\n");
}

TEST(FormatActionTest, Drain) {
  relay::v1::DrainResponse response;
  response.set_grace_seconds(20);
  response.set_connections(1);
  EXPECT_EQ(FormatDrain(response),
            "draining: 1 connection told to reconnect elsewhere; closed in 20s (or once all "
            "left), then the relay exits\n");
}

TEST(FormatActionTest, LogLevel) {
  EXPECT_EQ(FormatLogLevel("info", "debug"), "log level: info -> debug\n");
  EXPECT_EQ(FormatLogLevel("", "debug"), "log level: - -> debug\n");
}

}  // namespace
}  // namespace relay::cli
