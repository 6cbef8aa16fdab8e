// Tests for admin-cli/commands.cc: each command against an in-process relay,
// its output (human and --json), its exit code, and what it sent (requests,
// the admin token).
#include "admin-cli/commands.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/admin-cli/fake_admin_server.h"

namespace relay::cli {
namespace {

constexpr double kNowEpoch = 1'700'000'000;
const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

class CommandsTest : public ::testing::Test {
 protected:
  CommandsTest() {
    auto* mesh = server_.admin.meshes.add_meshes();
    mesh->set_mesh_id("lobby");
    mesh->set_peer_count(1);
    mesh->set_created_at(kNowEpoch - 180);
    mesh->set_messages_relayed(42);
    *server_.admin.mesh.mutable_mesh() = *mesh;
    auto* peer = server_.admin.mesh.add_peers();
    peer->set_node_id("alice");
    peer->set_name("Alice");
    peer->add_capabilities("llm");
    peer->add_capabilities("chat");
    peer->set_joined_at(kNowEpoch - 5);
    peer->set_remote_address("10.0.0.1:4000");
    peer->set_transport("ws");
    peer->set_messages_in(7);
    peer->set_messages_out(9);
    peer->set_bytes_in(2048);
    peer->set_bytes_out(5'500'000);
    peer->set_queued_bytes(0);
    server_.admin.stats.set_version("1.0.0");
    auto* error = server_.admin.stats.add_errors();
    error->set_code("unknown_target");
    error->set_count(3);
  }

  int Run(Command command, bool json = false, std::string mesh_id = "") {
    CliOptions options = Options(command);
    options.json = json;
    options.mesh_id = std::move(mesh_id);
    return Run(options);
  }
  int Run(const CliOptions& options) {
    return RunCommand(options, server_.Channel(), kNow, out_, err_);
  }
  static CliOptions Options(Command command) {
    CliOptions options;
    options.addr = "test-relay:1";
    options.command = command;
    return options;
  }
  // A page of ListMeshes as the relay answers it.
  static relay::v1::ListMeshesResponse Page(std::vector<std::string> ids, std::string next,
                                            std::uint32_t total) {
    relay::v1::ListMeshesResponse page;
    for (const std::string& id : ids) page.add_meshes()->set_mesh_id(id);
    page.set_next_page_token(std::move(next));
    page.set_total_meshes(total);
    return page;
  }

  testing::FakeAdminServer server_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CommandsTest, MeshesListPrintsTable) {
  server_.admin.meshes.set_total_meshes(1);
  EXPECT_EQ(Run(Command::kMeshesList), kExitOk);
  EXPECT_EQ(out_.str(),
            "MESH   PEERS  AGE  MESSAGES\n"
            "lobby  1      3m   42\n");
  EXPECT_EQ(err_.str(), "") << "one page holds every mesh: no footer";
}

TEST_F(CommandsTest, MeshesListJson) {
  server_.admin.meshes.set_total_meshes(1);
  EXPECT_EQ(Run(Command::kMeshesList, /*json=*/true), kExitOk);
  EXPECT_EQ(out_.str(),
            "{\"meshes\":[{\"mesh_id\":\"lobby\",\"peer_count\":1,\"created_at\":1699999820,"
            "\"messages_relayed\":42}],\"next_page_token\":\"\",\"total_meshes\":1}\n");
}

TEST_F(CommandsTest, MeshesListSendsPageSizeTokenAndOrder) {
  CliOptions options = Options(Command::kMeshesList);
  options.page_size = 2;
  options.page_token = "4";
  options.sort = MeshSort::kTraffic;
  EXPECT_EQ(Run(options), kExitOk);
  ASSERT_EQ(server_.admin.list_requests.size(), 1u);
  const relay::v1::ListMeshesRequest& request = server_.admin.list_requests[0];
  EXPECT_EQ(request.page_size(), 2u);
  EXPECT_EQ(request.page_token(), "4");
  EXPECT_EQ(request.order(), relay::v1::ListMeshesRequest::ORDER_TRAFFIC);
}

TEST_F(CommandsTest, MeshesListDefaultsToAPageOf50ByMeshId) {
  EXPECT_EQ(Run(Command::kMeshesList), kExitOk);
  ASSERT_EQ(server_.admin.list_requests.size(), 1u);
  EXPECT_EQ(server_.admin.list_requests[0].page_size(), 50u);
  EXPECT_EQ(server_.admin.list_requests[0].page_token(), "");
  EXPECT_EQ(server_.admin.list_requests[0].order(), relay::v1::ListMeshesRequest::ORDER_MESH_ID);
}

TEST_F(CommandsTest, MeshesListWithMorePagesSaysHowToGetTheNextOnStderr) {
  server_.admin.pages[""] = Page({"a", "b"}, "2", 5);
  CliOptions options = Options(Command::kMeshesList);
  options.page_size = 2;
  options.sort = MeshSort::kPeers;
  EXPECT_EQ(Run(options), kExitOk);
  EXPECT_EQ(out_.str().find("next page"), std::string::npos) << "stdout is the table alone";
  EXPECT_EQ(err_.str(),
            "(2 of 5 meshes) next page: relayctl meshes list --sort peers --page-size 2 "
            "--page-token 2\n(or --all for every page)\n");
}

TEST_F(CommandsTest, MeshesListAllWalksEveryPageWithTheSameSizeAndOrder) {
  server_.admin.pages[""] = Page({"a", "b"}, "2", 5);
  server_.admin.pages["2"] = Page({"c", "d"}, "4", 5);
  server_.admin.pages["4"] = Page({"e"}, "", 5);
  CliOptions options = Options(Command::kMeshesList);
  options.all_pages = true;
  options.page_size = 2;
  options.sort = MeshSort::kPeers;
  options.json = true;

  EXPECT_EQ(Run(options), kExitOk) << err_.str();

  EXPECT_EQ(out_.str(),
            "{\"meshes\":[{\"mesh_id\":\"a\",\"peer_count\":0,\"created_at\":0,"
            "\"messages_relayed\":0},{\"mesh_id\":\"b\",\"peer_count\":0,\"created_at\":0,"
            "\"messages_relayed\":0},{\"mesh_id\":\"c\",\"peer_count\":0,\"created_at\":0,"
            "\"messages_relayed\":0},{\"mesh_id\":\"d\",\"peer_count\":0,\"created_at\":0,"
            "\"messages_relayed\":0},{\"mesh_id\":\"e\",\"peer_count\":0,\"created_at\":0,"
            "\"messages_relayed\":0}],\"next_page_token\":\"\",\"total_meshes\":5}\n");
  ASSERT_EQ(server_.admin.list_requests.size(), 3u);
  std::vector<std::string> tokens;
  for (const relay::v1::ListMeshesRequest& request : server_.admin.list_requests) {
    tokens.push_back(request.page_token());
    EXPECT_EQ(request.page_size(), 2u);
    EXPECT_EQ(request.order(), relay::v1::ListMeshesRequest::ORDER_PEERS);
  }
  EXPECT_EQ(tokens, (std::vector<std::string>{"", "2", "4"}));
}

TEST_F(CommandsTest, MeshesListAllKeepsAMeshSeenOnTwoPagesOnce) {
  // "b" gained a peer between the calls and moved down a page.
  server_.admin.pages[""] = Page({"a", "b"}, "2", 3);
  server_.admin.pages["2"] = Page({"b", "c"}, "", 3);
  CliOptions options = Options(Command::kMeshesList);
  options.all_pages = true;
  EXPECT_EQ(Run(options), kExitOk);
  EXPECT_EQ(out_.str(),
            "MESH  PEERS  AGE  MESSAGES\n"
            "a     0      -    0\n"
            "b     0      -    0\n"
            "c     0      -    0\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CommandsTest, MeshesListAllStopsOnARepeatedPageToken) {
  server_.admin.pages[""] = Page({"a"}, "1", 2);
  server_.admin.pages["1"] = Page({"b"}, "1", 2);
  CliOptions options = Options(Command::kMeshesList);
  options.all_pages = true;
  EXPECT_EQ(Run(options), kExitRemoteError);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(),
            "relayctl: ListMeshes failed: the relay handed out page token \"1\" twice "
            "(INTERNAL)\n");
}

TEST_F(CommandsTest, MeshesListBadPageTokenExits1WithTheRelaysMessage) {
  server_.admin.pages[""] = Page({"a"}, "1", 2);
  CliOptions options = Options(Command::kMeshesList);
  options.page_token = "zzz";
  EXPECT_EQ(Run(options), kExitRemoteError);
  EXPECT_EQ(err_.str(),
            "relayctl: ListMeshes failed: page_token was not handed out by this relay "
            "(INVALID_ARGUMENT)\n");
}

TEST_F(CommandsTest, MeshesShowPrintsHeaderLineAndPeers) {
  EXPECT_EQ(Run(Command::kMeshesShow, false, "lobby"), kExitOk);
  EXPECT_EQ(out_.str(),
            "Mesh: lobby  Peers: 1  Age: 3m  Messages: 42\n"
            "\n"
            "NODE   NAME   CAPABILITIES  TRANSPORT  REMOTE         JOINED  MSGS_IN  MSGS_OUT  "
            "BYTES_IN  BYTES_OUT  QUEUED\n"
            "alice  Alice  llm,chat      ws         10.0.0.1:4000  5s      7        9         "
            "2.0KiB    5.2MiB     0B\n");
}

TEST_F(CommandsTest, MeshesShowJson) {
  EXPECT_EQ(Run(Command::kMeshesShow, true, "lobby"), kExitOk);
  EXPECT_EQ(out_.str().rfind("{\"mesh\":{\"mesh_id\":\"lobby\"", 0), 0u) << out_.str();
  EXPECT_NE(out_.str().find("\"capabilities\":[\"llm\",\"chat\"]"), std::string::npos);
  // Raw numbers in JSON, uint64 as JSON numbers (not the proto3 JSON strings).
  EXPECT_NE(out_.str().find("\"transport\":\"ws\",\"messages_in\":7,\"messages_out\":9,"
                            "\"bytes_in\":2048,\"bytes_out\":5500000,\"queued_bytes\":0"),
            std::string::npos)
      << out_.str();
}

TEST_F(CommandsTest, MeshesShowUnknownMeshExits1WithMessage) {
  EXPECT_EQ(Run(Command::kMeshesShow, false, "nowhere"), kExitRemoteError);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "relayctl: no live mesh \"nowhere\", and no binding holds it\n");
}

TEST_F(CommandsTest, MeshesShowUnknownMeshJsonPrintsAnErrorObject) {
  EXPECT_EQ(Run(Command::kMeshesShow, true, "nowhere"), kExitRemoteError);
  EXPECT_EQ(out_.str(),
            "{\"error\":{\"code\":\"not_found\",\"message\":\"no live mesh \\\"nowhere\\\", "
            "and no binding holds it\","
            "\"rpc\":\"GetMesh\"}}\n");
  EXPECT_EQ(err_.str(), "relayctl: no live mesh \"nowhere\", and no binding holds it\n");
}

TEST_F(CommandsTest, PeersKickSaysWhoWasKickedAndSendsTheReason) {
  CliOptions options = Options(Command::kPeersKick);
  options.mesh_id = "lobby";
  options.node_id = "alice";
  options.reason = "spamming";
  EXPECT_EQ(Run(options), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "kicked alice from lobby\n");
  ASSERT_EQ(server_.admin.kick_requests.size(), 1u);
  EXPECT_EQ(server_.admin.kick_requests[0].mesh_id(), "lobby");
  EXPECT_EQ(server_.admin.kick_requests[0].node_id(), "alice");
  EXPECT_EQ(server_.admin.kick_requests[0].reason(), "spamming");
}

TEST_F(CommandsTest, PeersKickJson) {
  CliOptions options = Options(Command::kPeersKick);
  options.mesh_id = "lobby";
  options.node_id = "alice";
  options.json = true;
  EXPECT_EQ(Run(options), kExitOk);
  EXPECT_EQ(out_.str(), "{\"mesh_id\":\"lobby\",\"node_id\":\"alice\"}\n");
}

TEST_F(CommandsTest, PeersKickUnknownNodeExits1WithTheRelaysMessage) {
  CliOptions options = Options(Command::kPeersKick);
  options.mesh_id = "lobby";
  options.node_id = "mallory";
  EXPECT_EQ(Run(options), kExitRemoteError);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(),
            "relayctl: KickPeer failed: no peer \"mallory\" in mesh \"lobby\" (NOT_FOUND)\n");
}

TEST_F(CommandsTest, MeshesCloseSaysHowManyPeersWereClosed) {
  server_.admin.mesh.add_peers()->set_node_id("bob");
  CliOptions options = Options(Command::kMeshesClose);
  options.mesh_id = "lobby";
  options.reason = "maintenance";
  EXPECT_EQ(Run(options), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "closed mesh lobby: 2 peers closed\n");
  ASSERT_EQ(server_.admin.close_requests.size(), 1u);
  EXPECT_EQ(server_.admin.close_requests[0].reason(), "maintenance");
}

TEST_F(CommandsTest, MeshesCloseJson) {
  CliOptions options = Options(Command::kMeshesClose);
  options.mesh_id = "lobby";
  options.json = true;
  EXPECT_EQ(Run(options), kExitOk);
  EXPECT_EQ(out_.str(), "{\"mesh_id\":\"lobby\",\"closed_peers\":1}\n");
}

TEST_F(CommandsTest, MeshesCloseUnknownMeshExits1) {
  CliOptions options = Options(Command::kMeshesClose);
  options.mesh_id = "nowhere";
  EXPECT_EQ(Run(options), kExitRemoteError);
  EXPECT_EQ(err_.str(), "relayctl: CloseMesh failed: no live mesh \"nowhere\" (NOT_FOUND)\n");
}

TEST_F(CommandsTest, MeshesUnbindSaysWhatItDidAndSendsTheReason) {
  CliOptions options = Options(Command::kMeshesUnbind);
  options.mesh_id = "family";
  options.reason = "lost token";
  EXPECT_EQ(Run(options), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "unbound mesh family: its next registrant binds it anew (or leaves it open)\n");
  ASSERT_EQ(server_.admin.unbind_requests.size(), 1u);
  EXPECT_EQ(server_.admin.unbind_requests[0].reason(), "lost token");
}

TEST_F(CommandsTest, MeshesUnbindJson) {
  CliOptions options = Options(Command::kMeshesUnbind);
  options.mesh_id = "family";
  options.json = true;
  EXPECT_EQ(Run(options), kExitOk);
  EXPECT_EQ(out_.str(), "{\"mesh_id\":\"family\",\"unbound\":true}\n");
}

TEST_F(CommandsTest, MeshesUnbindOfALiveMeshExits1WithTheRelaysReason) {
  CliOptions options = Options(Command::kMeshesUnbind);
  options.mesh_id = "lobby";
  options.json = true;
  EXPECT_EQ(Run(options), kExitRemoteError);
  EXPECT_EQ(out_.str().rfind("{\"error\":{\"code\":\"failed_precondition\",", 0), 0u) << out_.str();
  EXPECT_NE(err_.str().find("has peers"), std::string::npos) << err_.str();
}

TEST_F(CommandsTest, DrainPrintsGraceAndConnections) {
  server_.admin.drain_connections = 3;
  CliOptions options = Options(Command::kDrain);
  options.grace_seconds = 7;
  EXPECT_EQ(Run(options), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "draining: 3 connections told to reconnect elsewhere; closed in 7s (or once all "
            "left), then the relay exits\n");
  ASSERT_EQ(server_.admin.drain_requests.size(), 1u);
  EXPECT_EQ(server_.admin.drain_requests[0].grace_seconds(), 7u);
}

TEST_F(CommandsTest, DrainWithoutGraceAsksForTheRelaysDefault) {
  CliOptions options = Options(Command::kDrain);
  options.json = true;
  EXPECT_EQ(Run(options), kExitOk);
  EXPECT_EQ(server_.admin.drain_requests.at(0).grace_seconds(), 0u);
  EXPECT_EQ(out_.str(), "{\"grace_seconds\":20,\"connections\":0}\n");
}

TEST_F(CommandsTest, SecondDrainExits1FailedPrecondition) {
  EXPECT_EQ(Run(Command::kDrain), kExitOk);
  out_.str("");
  EXPECT_EQ(Run(Command::kDrain), kExitRemoteError);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(),
            "relayctl: Drain failed: the relay is already draining (FAILED_PRECONDITION)\n");
}

TEST_F(CommandsTest, LogLevelPrintsPreviousAndNew) {
  CliOptions options = Options(Command::kLogLevel);
  options.log_level = "debug";
  EXPECT_EQ(Run(options), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "log level: info -> debug\n");
  EXPECT_EQ(server_.admin.log_level, "debug");
}

TEST_F(CommandsTest, LogLevelJson) {
  CliOptions options = Options(Command::kLogLevel);
  options.log_level = "warn";
  options.json = true;
  EXPECT_EQ(Run(options), kExitOk);
  EXPECT_EQ(out_.str(), "{\"previous\":\"info\",\"level\":\"warn\"}\n");
}

TEST_F(CommandsTest, UnknownLogLevelExits1WithTheRelaysMessage) {
  CliOptions options = Options(Command::kLogLevel);
  options.log_level = "loud";
  EXPECT_EQ(Run(options), kExitRemoteError);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(),
            "relayctl: SetLogLevel failed: log level must be trace, debug, info, warn, error or "
            "off, not \"loud\" (INVALID_ARGUMENT)\n");
}

// Every Admin command sends the token; health never does.
TEST_F(CommandsTest, TokenIsSentOnEveryAdminCallAndNotOnHealth) {
  server_.admin.required_token = "s3cret";
  server_.admin.pages[""] = Page({"a"}, "1", 2);
  server_.admin.pages["1"] = Page({"lobby"}, "", 2);
  for (Command command :
       {Command::kStats, Command::kMeshesList, Command::kMeshesShow, Command::kPeersKick,
        Command::kMeshesClose, Command::kLogLevel, Command::kDrain, Command::kHealth}) {
    CliOptions options = Options(command);
    options.token = "s3cret";
    options.mesh_id = "lobby";
    options.node_id = "alice";
    options.log_level = "info";
    options.all_pages = true;
    EXPECT_EQ(Run(options), kExitOk) << static_cast<int>(command) << ": " << err_.str();
  }
  EXPECT_EQ(server_.admin.authorizations,
            std::vector<std::string>(8, "Bearer s3cret"))  // meshes list: two pages
      << "every Admin call carries the token";
  EXPECT_EQ(server_.health.authorizations, std::vector<std::string>{""});
}

TEST_F(CommandsTest, NoTokenSendsNoAuthorization) {
  EXPECT_EQ(Run(Command::kStats), kExitOk);
  EXPECT_EQ(server_.admin.authorizations, std::vector<std::string>{""});
}

TEST_F(CommandsTest, MissingTokenExits1AndSaysHowToGiveIt) {
  server_.admin.required_token = "s3cret";
  EXPECT_EQ(Run(Command::kStats), kExitRemoteError);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(),
            "relayctl: GetStats refused: this relay's admin API needs \"authorization: Bearer "
            "<ADMIN_TOKEN>\" (UNAUTHENTICATED; no token was given: use --token or "
            "$RELAY_ADMIN_TOKEN)\n");
}

TEST_F(CommandsTest, StatsPrintsKeyValueLines) {
  EXPECT_EQ(Run(Command::kStats), kExitOk);
  EXPECT_NE(out_.str().find("version:"), std::string::npos);
  EXPECT_THAT(out_.str(), ::testing::ContainsRegex("\nerrors.unknown_target: +3\n"));
}

TEST_F(CommandsTest, StatsJson) {
  EXPECT_EQ(Run(Command::kStats, true), kExitOk);
  EXPECT_NE(out_.str().find("\"errors\":{\"unknown_target\":3}"), std::string::npos) << out_.str();
}

TEST_F(CommandsTest, HealthServingExits0) {
  EXPECT_EQ(Run(Command::kHealth), kExitOk);
  EXPECT_EQ(out_.str(), "SERVING\n");
}

TEST_F(CommandsTest, HealthNotServingExits1) {
  server_.SetServing(false);
  EXPECT_EQ(Run(Command::kHealth), kExitRemoteError);
  EXPECT_EQ(out_.str(), "NOT_SERVING\n");
}

TEST_F(CommandsTest, HealthJson) {
  EXPECT_EQ(Run(Command::kHealth, true), kExitOk);
  EXPECT_EQ(out_.str(), "{\"status\":\"SERVING\"}\n");
}

TEST_F(CommandsTest, UnavailableExits3) {
  server_.admin.fail = grpc::Status(grpc::StatusCode::UNAVAILABLE, "relay core unavailable");
  EXPECT_EQ(Run(Command::kStats), kExitUnreachable);
  EXPECT_EQ(out_.str(), "");
  EXPECT_NE(err_.str().find("cannot reach the relay at test-relay:1"), std::string::npos)
      << err_.str();
}

TEST_F(CommandsTest, FailuresUnderJsonPrintOneErrorObjectOnStdout) {
  server_.admin.fail = grpc::Status(grpc::StatusCode::UNAVAILABLE, "relay core unavailable");
  EXPECT_EQ(Run(Command::kStats, true), kExitUnreachable);
  EXPECT_EQ(out_.str().rfind("{\"error\":{\"code\":\"unavailable\",\"message\":\"cannot reach "
                             "the relay at test-relay:1: relay core unavailable",
                             0),
            0u)
      << out_.str();
  EXPECT_NE(out_.str().find(",\"rpc\":\"GetStats\"}}\n"), std::string::npos) << out_.str();
  const std::string printed = out_.str();
  EXPECT_EQ(std::count(printed.begin(), printed.end(), '\n'), 1) << "one document";
  EXPECT_NE(err_.str().find("relayctl: cannot reach"), std::string::npos) << err_.str();
}

TEST_F(CommandsTest, ASocketClosedWithoutTlsSuggestsTls) {
  server_.admin.fail = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                    "failed to connect to all addresses; last error: UNAVAILABLE: "
                                    "ipv4:127.0.0.1:1: Socket closed");
  EXPECT_EQ(Run(Command::kStats), kExitUnreachable);
  EXPECT_THAT(
      err_.str(),
      ::testing::EndsWith("(GetStats: UNAVAILABLE); if the relay serves TLS (TLS_CERT_FILE), use "
                          "--tls (and --ca-file PEM for a private CA)\n"));
  err_.str("");
  CliOptions tls = Options(Command::kStats);
  tls.tls = true;
  EXPECT_EQ(Run(tls), kExitUnreachable);
  EXPECT_EQ(err_.str().find("use --tls"), std::string::npos) << err_.str();
}

TEST_F(CommandsTest, ARefusedConnectionGetsNoTlsHint) {
  server_.admin.fail = grpc::Status(grpc::StatusCode::UNAVAILABLE, "Connection refused");
  EXPECT_EQ(Run(Command::kStats), kExitUnreachable);
  EXPECT_EQ(err_.str().find("--tls"), std::string::npos) << err_.str();
}

TEST_F(CommandsTest, DeadlineExceededExits3) {
  server_.admin.fail = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "slow");
  EXPECT_EQ(Run(Command::kMeshesList), kExitUnreachable);
  EXPECT_NE(err_.str().find("no answer from the relay at test-relay:1 within 5s"),
            std::string::npos)
      << err_.str();
}

TEST_F(CommandsTest, OtherRemoteErrorsExit1) {
  server_.admin.fail = grpc::Status(grpc::StatusCode::INTERNAL, "boom");
  EXPECT_EQ(Run(Command::kStats), kExitRemoteError);
  EXPECT_EQ(err_.str(), "relayctl: GetStats failed: boom (INTERNAL)\n");
}

TEST(CommandsUnreachableTest, NoRelayListeningExits3) {
  // A Unix socket that cannot exist: fails at once, touches no network.
  auto channel = grpc::CreateChannel("unix:/nonexistent-relayctl-test/admin.sock",
                                     grpc::InsecureChannelCredentials());
  CliOptions options;
  options.addr = "unix:/nonexistent-relayctl-test/admin.sock";
  options.command = Command::kHealth;
  std::ostringstream out, err;
  EXPECT_EQ(RunCommand(options, channel, kNow, out, err), kExitUnreachable);
  EXPECT_EQ(out.str(), "");
  EXPECT_NE(err.str().find("cannot reach the relay"), std::string::npos) << err.str();
}

TEST(ExitCodeForTest, MapsCodesToExitCodes) {
  EXPECT_EQ(ExitCodeFor(grpc::Status::OK), kExitOk);
  EXPECT_EQ(ExitCodeFor(grpc::Status(grpc::StatusCode::UNAVAILABLE, "")), kExitUnreachable);
  EXPECT_EQ(ExitCodeFor(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "")), kExitUnreachable);
  EXPECT_EQ(ExitCodeFor(grpc::Status(grpc::StatusCode::NOT_FOUND, "")), kExitRemoteError);
  EXPECT_EQ(ExitCodeFor(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "")), kExitRemoteError);
  EXPECT_EQ(ExitCodeFor(grpc::Status(grpc::StatusCode::INTERNAL, "")), kExitRemoteError);
}

}  // namespace
}  // namespace relay::cli
