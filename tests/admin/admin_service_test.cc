// Tests for server/admin/admin_service.cc over a real RelayCore: the handlers
// read the core only through the CoreRunner, pass NOT_FOUND through, and
// answer UNAVAILABLE when the core thread cannot run the read.
#include "server/admin/admin_service.h"

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/clock.h"
#include "server/core/core_config.h"
#include "server/core/peer_sink.h"

namespace relay::admin {
namespace {

class FixedClock final : public core::Clock {
 public:
  absl::Time Now() const override { return now; }
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
};

class DiscardSink final : public core::PeerSink {
 public:
  void Send(const core::ServerEventPtr&) override {}
  void Close(core::CloseReason) override {}
};

class AdminServiceTest : public ::testing::Test {
 protected:
  // Runs the work inline, as the core thread would, and counts the calls.
  CoreRunner InlineRunner() {
    return [this](std::function<void()> work) {
      ++runs_;
      work();
      return absl::OkStatus();
    };
  }

  // Gives up like a runner whose core thread is shutting down; keeps the work
  // so a test can run it late.
  CoreRunner FailingRunner() {
    return [this](std::function<void()> work) {
      late_work_.push_back(std::move(work));
      return absl::UnavailableError("shutting down");
    };
  }

  void Join(const std::string& mesh, const std::string& node, const std::string& remote) {
    core::ConnectionId id =
        core_.Connect(core::ConnectionInfo{remote, "ws"}, std::make_shared<DiscardSink>());
    relay::v1::ClientEvent event;
    relay::v1::Register* reg = event.mutable_register_();
    reg->set_mesh_id(mesh);
    reg->set_node_id(node);
    reg->set_name(node + "-name");
    reg->add_capabilities("llm");
    reg->add_capabilities("chat");
    core_.Handle(id, event);
  }

  FixedClock clock_;
  core::RelayCore core_{core::CoreConfig{}, &clock_};
  grpc::ServerContext context_;
  int runs_ = 0;
  std::vector<std::function<void()>> late_work_;
};

TEST_F(AdminServiceTest, GetStatsReadsTheCoreThroughTheRunner) {
  AdminService service(InlineRunner(), &core_);
  Join("lobby", "alice", "10.0.0.1:4000");
  relay::v1::GetStatsRequest request;
  relay::v1::Stats stats;

  grpc::Status status = service.GetStats(&context_, &request, &stats);

  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(runs_, 1);
  EXPECT_EQ(stats.active_meshes(), 1u);
  EXPECT_EQ(stats.registered_peers(), 1u);
  EXPECT_EQ(stats.total_connections(), 1u);
  EXPECT_EQ(static_cast<std::size_t>(stats.errors_size()), core::kErrorCodeCount);
}

TEST_F(AdminServiceTest, ListMeshesListsLiveMeshesSortedById) {
  AdminService service(InlineRunner(), &core_);
  Join("zeta", "alice", "10.0.0.1:4000");
  Join("alpha", "bob", "10.0.0.2:4000");
  relay::v1::ListMeshesRequest request;
  relay::v1::ListMeshesResponse response;

  ASSERT_TRUE(service.ListMeshes(&context_, &request, &response).ok());

  ASSERT_EQ(response.meshes_size(), 2);
  EXPECT_EQ(response.meshes(0).mesh_id(), "alpha");
  EXPECT_EQ(response.meshes(1).mesh_id(), "zeta");
  EXPECT_EQ(response.meshes(0).peer_count(), 1u);
}

TEST_F(AdminServiceTest, GetMeshReturnsThePeersAsTheRelaySeesThem) {
  AdminService service(InlineRunner(), &core_);
  Join("lobby", "alice", "10.0.0.1:4000");
  relay::v1::GetMeshRequest request;
  request.set_mesh_id("lobby");
  relay::v1::GetMeshResponse response;

  grpc::Status status = service.GetMesh(&context_, &request, &response);

  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.mesh().mesh_id(), "lobby");
  EXPECT_EQ(response.mesh().peer_count(), 1u);
  ASSERT_EQ(response.peers_size(), 1);
  const relay::v1::PeerDetail& peer = response.peers(0);
  EXPECT_EQ(peer.node_id(), "alice");
  EXPECT_EQ(peer.name(), "alice-name");
  ASSERT_EQ(peer.capabilities_size(), 2);
  EXPECT_EQ(peer.capabilities(0), "llm");
  EXPECT_EQ(peer.remote_address(), "10.0.0.1:4000");
  EXPECT_EQ(peer.transport(), "ws");
  EXPECT_DOUBLE_EQ(peer.joined_at(), 1'700'000'000.0);
}

TEST_F(AdminServiceTest, GetMeshOfUnknownMeshIsNotFound) {
  AdminService service(InlineRunner(), &core_);
  relay::v1::GetMeshRequest request;
  request.set_mesh_id("nowhere");
  relay::v1::GetMeshResponse response;

  grpc::Status status = service.GetMesh(&context_, &request, &response);

  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("nowhere"), std::string::npos);
}

TEST_F(AdminServiceTest, RunnerFailureIsUnavailableForEveryRpc) {
  AdminService service(FailingRunner(), &core_);
  relay::v1::Stats stats;
  relay::v1::ListMeshesResponse meshes;
  relay::v1::GetMeshRequest get_mesh;
  get_mesh.set_mesh_id("lobby");
  relay::v1::GetMeshResponse mesh;

  grpc::Status s1 = service.GetStats(&context_, nullptr, &stats);
  grpc::Status s2 = service.ListMeshes(&context_, nullptr, &meshes);
  grpc::Status s3 = service.GetMesh(&context_, &get_mesh, &mesh);

  for (const grpc::Status& status : {s1, s2, s3}) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_NE(status.error_message().find("shutting down"), std::string::npos);
  }
}

TEST_F(AdminServiceTest, WorkRunLateAfterRunnerGaveUpLeavesResponseAlone) {
  AdminService service(FailingRunner(), &core_);
  Join("lobby", "alice", "10.0.0.1:4000");
  relay::v1::GetMeshRequest request;
  request.set_mesh_id("lobby");
  {
    relay::v1::Stats stats;
    relay::v1::ListMeshesResponse meshes;
    relay::v1::GetMeshResponse mesh;
    service.GetStats(&context_, nullptr, &stats);
    service.ListMeshes(&context_, nullptr, &meshes);
    service.GetMesh(&context_, &request, &mesh);
  }  // responses (and, in a server, the request) are gone now
  request.set_mesh_id("changed");

  // The core thread gets to the work after all: it must only touch state the
  // closure owns (a sanitizer build flags any write to the freed responses).
  ASSERT_EQ(late_work_.size(), 3u);
  for (auto& work : late_work_) work();
}

}  // namespace
}  // namespace relay::admin
