// Tests for admin-cli/commands.cc: each command against an in-process relay,
// its output (human and --json) and its exit code.
#include "admin-cli/commands.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <sstream>

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
    server_.admin.stats.set_version("1.0.0");
    auto* error = server_.admin.stats.add_errors();
    error->set_code("unknown_target");
    error->set_count(3);
  }

  int Run(Command command, bool json = false, std::string mesh_id = "") {
    CliOptions options;
    options.addr = "test-relay:1";
    options.command = command;
    options.json = json;
    options.mesh_id = std::move(mesh_id);
    return RunCommand(options, server_.Channel(), kNow, out_, err_);
  }

  testing::FakeAdminServer server_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CommandsTest, MeshesListPrintsTable) {
  EXPECT_EQ(Run(Command::kMeshesList), kExitOk);
  EXPECT_EQ(out_.str(),
            "MESH   PEERS  AGE  MESSAGES\n"
            "lobby  1      3m   42\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CommandsTest, MeshesListJson) {
  EXPECT_EQ(Run(Command::kMeshesList, /*json=*/true), kExitOk);
  EXPECT_EQ(out_.str(),
            "{\"meshes\":[{\"mesh_id\":\"lobby\",\"peer_count\":1,\"created_at\":1699999820,"
            "\"messages_relayed\":\"42\"}]}\n");
}

TEST_F(CommandsTest, MeshesShowPrintsHeaderLineAndPeers) {
  EXPECT_EQ(Run(Command::kMeshesShow, false, "lobby"), kExitOk);
  EXPECT_EQ(out_.str(),
            "Mesh: lobby  Peers: 1  Age: 3m  Messages: 42\n"
            "\n"
            "NODE   NAME   CAPABILITIES  JOINED  REMOTE\n"
            "alice  Alice  llm,chat      5s      10.0.0.1:4000\n");
}

TEST_F(CommandsTest, MeshesShowJson) {
  EXPECT_EQ(Run(Command::kMeshesShow, true, "lobby"), kExitOk);
  EXPECT_EQ(out_.str().rfind("{\"mesh\":{\"mesh_id\":\"lobby\"", 0), 0u) << out_.str();
  EXPECT_NE(out_.str().find("\"capabilities\":[\"llm\",\"chat\"]"), std::string::npos);
}

TEST_F(CommandsTest, MeshesShowUnknownMeshExits1WithMessage) {
  EXPECT_EQ(Run(Command::kMeshesShow, false, "nowhere"), kExitRemoteError);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "relayctl: no live mesh \"nowhere\"\n");
}

TEST_F(CommandsTest, StatsPrintsKeyValueLines) {
  EXPECT_EQ(Run(Command::kStats), kExitOk);
  EXPECT_NE(out_.str().find("version:"), std::string::npos);
  EXPECT_NE(out_.str().find("errors.unknown_target: 3\n"), std::string::npos) << out_.str();
}

TEST_F(CommandsTest, StatsJson) {
  EXPECT_EQ(Run(Command::kStats, true), kExitOk);
  EXPECT_NE(out_.str().find("\"errors\":[{\"code\":\"unknown_target\",\"count\":\"3\"}]"),
            std::string::npos)
      << out_.str();
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
