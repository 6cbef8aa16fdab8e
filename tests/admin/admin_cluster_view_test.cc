// Tests for the cluster-wide meshes views of server/admin/admin_service.cc
// (cluster_meshes.cc) with a fake ClusterView beside a real RelayCore:
// meshes list and show cover members on every instance, with the instance
// holding each, and an unreadable cluster store is UNAVAILABLE, never this
// instance's part shown as the whole.
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/admin/admin_service.h"
#include "server/admin/cluster_view.h"
#include "server/core/clock.h"
#include "server/core/core_config.h"
#include "server/core/peer_sink.h"

namespace relay::admin {
namespace {

class FixedClock final : public core::Clock {
 public:
  absl::Time Now() const override { return absl::FromUnixSeconds(1'700'000'000); }
};

class DiscardSink final : public core::PeerSink {
 public:
  core::SendResult Send(const core::ServerEventPtr&) override { return core::SendResult::Queued(); }
  void Close(core::CloseReason) override {}
};

class FakeClusterView final : public ClusterView {
 public:
  const std::string& instance_id() const override { return id; }
  std::vector<InstanceSummary> LiveInstances() const override { return {}; }
  absl::StatusOr<std::vector<ClusterNode>> Nodes(
      const std::optional<std::string>& mesh_id) const override {
    asked.push_back(mesh_id.value_or("*"));
    if (!status.ok()) return status;
    std::vector<ClusterNode> out;
    for (const ClusterNode& n : nodes) {
      if (!mesh_id || n.mesh_id == *mesh_id) out.push_back(n);
    }
    return out;
  }

  std::string id = "local";  // the core's own instance id without a backplane
  std::vector<ClusterNode> nodes;
  absl::Status status;
  mutable std::vector<std::string> asked;
};

ClusterNode Node(std::string mesh, std::string node, std::string instance, double joined_at) {
  ClusterNode n;
  n.mesh_id = std::move(mesh);
  n.node_id = std::move(node);
  n.name = n.node_id + "-name";
  n.capabilities = {"chat"};
  n.joined_at = joined_at;
  n.instance = std::move(instance);
  return n;
}

class AdminClusterViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One peer on this instance, in m1; m1 has another on "b", m2 lives
    // only on "c".
    core::ConnectionId id =
        core_.Connect(core::ConnectionInfo{"10.0.0.1:5", "ws"}, std::make_shared<DiscardSink>());
    relay::v1::ClientEvent event;
    event.mutable_register_()->set_mesh_id("m1");
    event.mutable_register_()->set_node_id("here");
    core_.Handle(id, event);
    view_.nodes = {Node("m1", "here", "local", 1'700'000'000),
                   Node("m1", "there", "b", 1'600'000'000), Node("m2", "far", "c", 1'650'000'000),
                   Node("m2", "farther", "c", 1'660'000'000)};
  }

  CoreRunner Inline() {
    return [](std::function<void()> work) {
      work();
      return absl::OkStatus();
    };
  }

  FixedClock clock_;
  core::RelayCore core_{core::CoreConfig{}, &clock_};
  FakeClusterView view_;
  AdminService service_{Inline(), &core_, nullptr, "", &view_};
  grpc::ServerContext context_;
};

TEST_F(AdminClusterViewTest, MeshesListCountsMembersOnEveryInstance) {
  relay::v1::ListMeshesRequest request;
  relay::v1::ListMeshesResponse response;
  ASSERT_TRUE(service_.ListMeshes(&context_, &request, &response).ok());
  ASSERT_EQ(response.meshes_size(), 2);
  EXPECT_EQ(response.total_meshes(), 2u);
  EXPECT_EQ(response.meshes(0).mesh_id(), "m1");
  EXPECT_EQ(response.meshes(0).peer_count(), 2u);
  EXPECT_EQ(response.meshes(1).mesh_id(), "m2");  // no member here, listed all the same
  EXPECT_EQ(response.meshes(1).peer_count(), 2u);
  EXPECT_EQ(response.meshes(1).created_at(), 1'650'000'000);  // its first member's join
}

TEST_F(AdminClusterViewTest, MeshesListPagesAndSortsTheClusterWideList) {
  view_.nodes.push_back(Node("m3", "x", "b", 1));
  relay::v1::ListMeshesRequest request;
  request.set_page_size(2);
  request.set_order(relay::v1::ListMeshesRequest::ORDER_PEERS);
  relay::v1::ListMeshesResponse first;
  ASSERT_TRUE(service_.ListMeshes(&context_, &request, &first).ok());
  ASSERT_EQ(first.meshes_size(), 2);
  EXPECT_EQ(first.total_meshes(), 3u);
  EXPECT_FALSE(first.next_page_token().empty());
  request.set_page_token(first.next_page_token());
  relay::v1::ListMeshesResponse second;
  grpc::ServerContext context;
  ASSERT_TRUE(service_.ListMeshes(&context, &request, &second).ok());
  ASSERT_EQ(second.meshes_size(), 1);
  EXPECT_EQ(second.meshes(0).mesh_id(), "m3");  // fewest peers last
  EXPECT_TRUE(second.next_page_token().empty());
}

TEST_F(AdminClusterViewTest, MeshesShowListsEveryPeerWithItsInstance) {
  relay::v1::GetMeshRequest request;
  request.set_mesh_id("m1");
  relay::v1::GetMeshResponse response;
  ASSERT_TRUE(service_.GetMesh(&context_, &request, &response).ok());
  EXPECT_EQ(view_.asked, std::vector<std::string>{"m1"});  // one mesh read, not the bucket
  EXPECT_EQ(response.mesh().peer_count(), 2u);
  ASSERT_EQ(response.peers_size(), 2);
  EXPECT_EQ(response.peers(0).node_id(), "there");  // joined first
  EXPECT_EQ(response.peers(0).instance(), "b");
  EXPECT_EQ(response.peers(0).remote_address(), "");  // only its own instance knows it
  EXPECT_EQ(response.peers(1).node_id(), "here");
  EXPECT_EQ(response.peers(1).instance(), "local");
  EXPECT_EQ(response.peers(1).remote_address(), "10.0.0.1:5");
  EXPECT_EQ(response.peers(1).transport(), "ws");
}

TEST_F(AdminClusterViewTest, MeshesShowFindsAMeshHeldOnlyElsewhere) {
  relay::v1::GetMeshRequest request;
  request.set_mesh_id("m2");
  relay::v1::GetMeshResponse response;
  ASSERT_TRUE(service_.GetMesh(&context_, &request, &response).ok());
  ASSERT_EQ(response.peers_size(), 2);
  EXPECT_EQ(response.peers(0).instance(), "c");
  EXPECT_EQ(response.peers(1).instance(), "c");
}

TEST_F(AdminClusterViewTest, MeshesShowOfAMeshNoInstanceHoldsIsNotFound) {
  relay::v1::GetMeshRequest request;
  request.set_mesh_id("nowhere");
  relay::v1::GetMeshResponse response;
  EXPECT_EQ(service_.GetMesh(&context_, &request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(AdminClusterViewTest, AnUnreadableClusterStoreIsUnavailableNotAPartialList) {
  view_.status = absl::UnavailableError("NATS is unreachable");
  relay::v1::ListMeshesRequest list_request;
  relay::v1::ListMeshesResponse list;
  grpc::Status listed = service_.ListMeshes(&context_, &list_request, &list);
  EXPECT_EQ(listed.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(listed.error_message().find("NATS is unreachable"), std::string::npos);
  EXPECT_EQ(list.meshes_size(), 0);  // not this instance's m1 alone

  relay::v1::GetMeshRequest get_request;
  get_request.set_mesh_id("m1");
  relay::v1::GetMeshResponse mesh;
  grpc::ServerContext context;
  EXPECT_EQ(service_.GetMesh(&context, &get_request, &mesh).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(mesh.peers_size(), 0);
}

}  // namespace
}  // namespace relay::admin
