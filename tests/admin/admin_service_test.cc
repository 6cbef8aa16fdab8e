// Tests for server/admin/admin_service.cc over a real RelayCore: the handlers
// read the core only through the CoreRunner, pass NOT_FOUND through, and
// answer UNAVAILABLE when the core thread cannot run the read; the operator
// actions (kick, close a mesh, drain, log level); and the admin token, over a
// real in-process gRPC server on loopback (metadata only exists there).
#include "server/admin/admin_service.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/clock.h"
#include "server/core/core_config.h"
#include "server/core/peer_sink.h"
#include "server/util/log.h"
#include "tests/core/recording_sink.h"

namespace relay::admin {
namespace {

class FixedClock final : public core::Clock {
 public:
  absl::Time Now() const override { return now; }
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
};

class DiscardSink final : public core::PeerSink {
 public:
  core::SendResult Send(const core::ServerEventPtr&) override { return core::SendResult::Queued(); }
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

  core::ConnectionId Join(const std::string& mesh, const std::string& node,
                          const std::string& remote,
                          std::shared_ptr<core::PeerSink> sink = std::make_shared<DiscardSink>(),
                          const std::string& token = "") {
    core::ConnectionId id = core_.Connect(core::ConnectionInfo{remote, "ws"}, std::move(sink));
    relay::v1::ClientEvent event;
    relay::v1::Register* reg = event.mutable_register_();
    reg->set_mesh_id(mesh);
    reg->set_node_id(node);
    reg->set_token(token);
    reg->set_name(node + "-name");
    reg->add_capabilities("llm");
    reg->add_capabilities("chat");
    core_.Handle(id, event);
    return id;
  }

  FixedClock clock_;
  core::RelayCore core_{core::CoreConfig{}, &clock_};
  grpc::ServerContext context_;
  const relay::v1::ListMeshesRequest list_request_;
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

TEST_F(AdminServiceTest, GetStatsAddsWhatTheStatsExtensionCounts) {
  AdminService service(InlineRunner(), &core_);
  service.set_stats_extension([](relay::v1::Stats* stats) {
    relay::v1::RefusalCount* refused = stats->add_refused();
    refused->set_reason("draining");
    refused->set_count(4);
  });
  relay::v1::GetStatsRequest request;
  relay::v1::Stats stats;

  ASSERT_TRUE(service.GetStats(&context_, &request, &stats).ok());
  ASSERT_EQ(stats.refused_size(), 1);
  EXPECT_EQ(stats.refused(0).reason(), "draining");
  EXPECT_EQ(stats.refused(0).count(), 4u);
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
  grpc::Status s2 = service.ListMeshes(&context_, &list_request_, &meshes);
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
    service.ListMeshes(&context_, &list_request_, &meshes);
    service.GetMesh(&context_, &request, &mesh);
  }  // responses (and, in a server, the request) are gone now
  request.set_mesh_id("changed");

  // The core thread gets to the work after all: it must only touch state the
  // closure owns (a sanitizer build flags any write to the freed responses).
  ASSERT_EQ(late_work_.size(), 3u);
  for (auto& work : late_work_) work();
}

// --- operator actions, handlers called directly ------------------------------

using ::relay::core::testing::RecordingSink;

// No gmock here (this test links gtest only).
::testing::AssertionResult HasSubstr(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" lacks \"" << part << "\"";
}

// Captures the log lines written while it lives, in text format at info.
class LogCapture {
 public:
  LogCapture() : level_(log::GetLevel()), format_(log::GetFormat()) {
    log::SetLevel(log::Level::kInfo);
    log::SetFormat(log::Format::kText);
    log::SetSinkForTest([this](absl::string_view line) { lines_.emplace_back(line); });
  }
  ~LogCapture() {
    log::SetSinkForTest(nullptr);
    log::SetLevel(level_);
    log::SetFormat(format_);
  }
  // The lines naming `event`.
  std::vector<std::string> Named(const std::string& event) const {
    std::vector<std::string> out;
    for (const std::string& line : lines_) {
      if (HasSubstr(line, " " + event + " ")) out.push_back(line);
    }
    return out;
  }

 private:
  const log::Level level_;
  const log::Format format_;
  std::vector<std::string> lines_;
};

TEST_F(AdminServiceTest, ActionsAreLoggedAsEventsWithTheReason) {
  AdminService service(InlineRunner(), &core_,
                       [](absl::Duration grace) -> absl::StatusOr<DrainResult> {
                         return DrainResult{grace, 2};
                       });
  Join("lobby", "alice", "10.0.0.1:4000");
  Join("den", "bob", "10.0.0.2:4000");
  LogCapture logs;

  relay::v1::KickPeerRequest kick;
  kick.set_mesh_id("lobby");
  kick.set_node_id("alice");
  kick.set_reason("lost phone");
  relay::v1::KickPeerResponse kicked;
  ASSERT_TRUE(service.KickPeer(&context_, &kick, &kicked).ok());
  relay::v1::CloseMeshRequest close;
  close.set_mesh_id("den");
  close.set_reason("abuse report");
  relay::v1::CloseMeshResponse closed;
  ASSERT_TRUE(service.CloseMesh(&context_, &close, &closed).ok());
  relay::v1::DrainRequest drain;
  drain.set_grace_seconds(7);
  drain.set_reason("kernel upgrade");
  relay::v1::DrainResponse drained;
  ASSERT_TRUE(service.Drain(&context_, &drain, &drained).ok());

  ASSERT_EQ(logs.Named("admin_kick").size(), 1u);
  EXPECT_TRUE(HasSubstr(logs.Named("admin_kick")[0],
                        "admin_kick mesh=lobby node=alice reason=\"lost phone\" caller="));
  ASSERT_EQ(logs.Named("admin_close_mesh").size(), 1u);
  EXPECT_TRUE(HasSubstr(logs.Named("admin_close_mesh")[0],
                        "admin_close_mesh mesh=den reason=\"abuse report\" closed=1 caller="));
  ASSERT_EQ(logs.Named("admin_drain").size(), 1u);
  EXPECT_TRUE(HasSubstr(logs.Named("admin_drain")[0],
                        "admin_drain grace_seconds=7 connections=2 reason=\"kernel upgrade\""));
}

TEST_F(AdminServiceTest, AFailedActionIsNotLoggedAsDone) {
  AdminService service(InlineRunner(), &core_);
  LogCapture logs;
  relay::v1::KickPeerRequest kick;
  kick.set_mesh_id("nowhere");
  kick.set_node_id("x");
  relay::v1::KickPeerResponse kicked;
  EXPECT_EQ(service.KickPeer(&context_, &kick, &kicked).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(logs.Named("admin_kick").empty());
}

// --- a mesh's auth: show and unbind ------------------------------------------

relay::v1::GetMeshResponse MustGetMesh(AdminService& service, grpc::ServerContext* context,
                                       const std::string& mesh_id) {
  relay::v1::GetMeshRequest request;
  request.set_mesh_id(mesh_id);
  relay::v1::GetMeshResponse response;
  grpc::Status status = service.GetMesh(context, &request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

grpc::Status Unbind(AdminService& service, grpc::ServerContext* context, const std::string& mesh_id,
                    const std::string& reason = "") {
  relay::v1::UnbindMeshRequest request;
  request.set_mesh_id(mesh_id);
  request.set_reason(reason);
  relay::v1::UnbindMeshResponse response;
  return service.UnbindMesh(context, &request, &response);
}

TEST_F(AdminServiceTest, GetMeshShowsHowTheMeshAdmitsAndNeverTheToken) {
  AdminService service(InlineRunner(), &core_);
  Join("lobby", "alice", "10.0.0.1:4000");
  Join("family", "mum", "10.0.0.2:4000", std::make_shared<DiscardSink>(), "s3cret-family");

  const relay::v1::GetMeshResponse open = MustGetMesh(service, &context_, "lobby");
  const relay::v1::GetMeshResponse bound = MustGetMesh(service, &context_, "family");

  EXPECT_EQ(open.auth().level(), relay::v1::MeshAuthInfo::LEVEL_OPEN);
  EXPECT_EQ(bound.auth().level(), relay::v1::MeshAuthInfo::LEVEL_TOKEN);
  EXPECT_DOUBLE_EQ(bound.auth().bound_at(), 1'700'000'000.0);
  EXPECT_EQ(bound.auth().binding_expires_at(), 0.0);  // it has a peer: no grace runs
  EXPECT_FALSE(HasSubstr(bound.DebugString(), "s3cret"));
}

TEST_F(AdminServiceTest, AnEmptyBoundMeshIsShownWithItsGraceLeft) {
  AdminService service(InlineRunner(), &core_);
  const core::ConnectionId mum =
      Join("family", "mum", "10.0.0.2:4000", std::make_shared<DiscardSink>(), "s3cret-family");
  clock_.now += absl::Hours(2);
  core_.Disconnect(mum, core::CloseReason::kClientClosed);
  clock_.now += absl::Hours(1);

  const relay::v1::GetMeshResponse shown = MustGetMesh(service, &context_, "family");

  EXPECT_EQ(shown.mesh().mesh_id(), "family");
  EXPECT_EQ(shown.mesh().peer_count(), 0u);
  EXPECT_EQ(shown.peers_size(), 0);
  EXPECT_EQ(shown.auth().level(), relay::v1::MeshAuthInfo::LEVEL_TOKEN);
  EXPECT_DOUBLE_EQ(shown.auth().bound_at(), 1'700'000'000.0);
  EXPECT_DOUBLE_EQ(shown.auth().binding_expires_at(), 1'700'000'000.0 + 2 * 3600 + 86400);
  EXPECT_DOUBLE_EQ(shown.auth().grace_left_seconds(), 86400 - 3600);
}

TEST_F(AdminServiceTest, UnbindReleasesAnEmptyMeshsBindingForAnotherToken) {
  AdminService service(InlineRunner(), &core_);
  const core::ConnectionId squatter =
      Join("family", "squatter", "10.9.9.9:4000", std::make_shared<DiscardSink>(), "mine-now");
  core_.Disconnect(squatter, core::CloseReason::kClientClosed);
  LogCapture logs;

  grpc::Status status = Unbind(service, &context_, "family", "squatted");

  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(logs.Named("admin_unbind").size(), 1u);
  EXPECT_TRUE(
      HasSubstr(logs.Named("admin_unbind")[0], "admin_unbind mesh=family reason=squatted caller="));
  relay::v1::GetMeshRequest request;
  request.set_mesh_id("family");
  relay::v1::GetMeshResponse response;
  EXPECT_EQ(service.GetMesh(&context_, &request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  Join("family", "mum", "10.0.0.2:4000", std::make_shared<DiscardSink>(), "s3cret-family");
  const relay::v1::GetMeshResponse family = MustGetMesh(service, &context_, "family");
  ASSERT_EQ(family.peers_size(), 1);
  EXPECT_EQ(family.peers(0).node_id(), "mum");
  EXPECT_DOUBLE_EQ(family.auth().bound_at(), 1'700'000'000.0);
}

TEST_F(AdminServiceTest, UnbindRefusesALiveMeshAnOpenOneAndAnUnknownOneAndLogsNothing) {
  AdminService service(InlineRunner(), &core_);
  auto mum = std::make_shared<RecordingSink>();
  Join("family", "mum", "10.0.0.2:4000", mum, "s3cret-family");
  Join("lobby", "alice", "10.0.0.1:4000");
  mum->Clear();
  LogCapture logs;

  const grpc::Status live = Unbind(service, &context_, "family");
  const grpc::Status open = Unbind(service, &context_, "lobby");
  const grpc::Status unknown = Unbind(service, &context_, "nowhere");

  EXPECT_EQ(live.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(HasSubstr(live.error_message(), "has peers")) << live.error_message();
  EXPECT_EQ(open.error_code(), grpc::StatusCode::FAILED_PRECONDITION);  // live too
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(logs.Named("admin_unbind").empty());
  EXPECT_TRUE(mum->closes.empty());
  EXPECT_EQ(MustGetMesh(service, &context_, "family").auth().level(),
            relay::v1::MeshAuthInfo::LEVEL_TOKEN);
}

TEST_F(AdminServiceTest, KickPeerClosesThePeerWithTheReasonOnTheCoreThread) {
  AdminService service(InlineRunner(), &core_);
  auto bob = std::make_shared<RecordingSink>();
  Join("lobby", "alice", "10.0.0.1:4000");
  Join("lobby", "bob", "10.0.0.2:4000", bob);
  bob->Clear();
  relay::v1::KickPeerRequest request;
  request.set_mesh_id("lobby");
  request.set_node_id("bob");
  request.set_reason("flooding");
  relay::v1::KickPeerResponse response;

  grpc::Status status = service.KickPeer(&context_, &request, &response);

  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(runs_, 1);
  ASSERT_EQ(bob->ErrorCodes(), std::vector<std::string>{"kicked"});
  EXPECT_TRUE(HasSubstr(bob->events[0]->error().message(), "flooding"));
  EXPECT_EQ(bob->closes, std::vector<core::CloseReason>{core::CloseReason::kKicked});
}

TEST_F(AdminServiceTest, KickPeerOfUnknownPeerOrMeshIsNotFound) {
  AdminService service(InlineRunner(), &core_);
  Join("lobby", "alice", "10.0.0.1:4000");
  relay::v1::KickPeerRequest no_peer;
  no_peer.set_mesh_id("lobby");
  no_peer.set_node_id("ghost");
  relay::v1::KickPeerRequest no_mesh;
  no_mesh.set_mesh_id("nowhere");
  no_mesh.set_node_id("alice");
  relay::v1::KickPeerResponse response;

  grpc::Status s1 = service.KickPeer(&context_, &no_peer, &response);
  grpc::Status s2 = service.KickPeer(&context_, &no_mesh, &response);

  EXPECT_EQ(s1.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(HasSubstr(s1.error_message(), "ghost"));
  EXPECT_EQ(s2.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(HasSubstr(s2.error_message(), "nowhere"));
}

TEST_F(AdminServiceTest, CloseMeshAnswersHowManyPeersWereClosed) {
  AdminService service(InlineRunner(), &core_);
  auto alice = std::make_shared<RecordingSink>();
  auto carol = std::make_shared<RecordingSink>();
  Join("lobby", "alice", "10.0.0.1:4000", alice);
  Join("lobby", "bob", "10.0.0.2:4000");
  Join("other", "carol", "10.0.0.3:4000", carol);
  alice->Clear();
  carol->Clear();
  relay::v1::CloseMeshRequest request;
  request.set_mesh_id("lobby");
  request.set_reason("rotating keys");
  relay::v1::CloseMeshResponse response;

  grpc::Status status = service.CloseMesh(&context_, &request, &response);

  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.closed_peers(), 2u);
  ASSERT_EQ(alice->ErrorCodes(), std::vector<std::string>{"mesh_closed"});
  EXPECT_TRUE(HasSubstr(alice->events[0]->error().message(), "rotating keys"));
  EXPECT_EQ(alice->closes, std::vector<core::CloseReason>{core::CloseReason::kMeshClosed});
  EXPECT_TRUE(carol->events.empty());
  EXPECT_TRUE(carol->closes.empty());
}

TEST_F(AdminServiceTest, CloseMeshOfUnknownMeshIsNotFound) {
  AdminService service(InlineRunner(), &core_);
  relay::v1::CloseMeshRequest request;
  request.set_mesh_id("nowhere");
  relay::v1::CloseMeshResponse response;

  grpc::Status status = service.CloseMesh(&context_, &request, &response);

  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(response.closed_peers(), 0u);
}

TEST_F(AdminServiceTest, ActionsAreUnavailableWhenTheCoreThreadCannotRunThem) {
  AdminService service(FailingRunner(), &core_);
  auto alice = std::make_shared<RecordingSink>();
  Join("lobby", "alice", "10.0.0.1:4000", alice);
  alice->Clear();
  relay::v1::KickPeerRequest kick;
  kick.set_mesh_id("lobby");
  kick.set_node_id("alice");
  relay::v1::KickPeerResponse kicked;
  relay::v1::CloseMeshRequest close;
  close.set_mesh_id("lobby");
  relay::v1::CloseMeshResponse closed;

  grpc::Status s1 = service.KickPeer(&context_, &kick, &kicked);
  grpc::Status s2 = service.CloseMesh(&context_, &close, &closed);
  grpc::Status s3 = Unbind(service, &context_, "lobby");

  EXPECT_EQ(s1.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s2.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(s3.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(alice->closes.empty());
}

TEST_F(AdminServiceTest, ListMeshesPagesAndSortsThroughTheService) {
  AdminService service(InlineRunner(), &core_);
  Join("c", "1", "10.0.0.1:1");
  Join("a", "1", "10.0.0.1:2");
  Join("b", "1", "10.0.0.1:3");
  Join("b", "2", "10.0.0.1:4");
  relay::v1::ListMeshesRequest first;
  first.set_page_size(2);
  relay::v1::ListMeshesResponse page1;
  relay::v1::ListMeshesResponse page2;
  relay::v1::ListMeshesRequest by_peers;
  by_peers.set_order(relay::v1::ListMeshesRequest::ORDER_PEERS);
  relay::v1::ListMeshesResponse sorted;

  ASSERT_TRUE(service.ListMeshes(&context_, &first, &page1).ok());
  relay::v1::ListMeshesRequest second = first;
  second.set_page_token(page1.next_page_token());
  ASSERT_TRUE(service.ListMeshes(&context_, &second, &page2).ok());
  ASSERT_TRUE(service.ListMeshes(&context_, &by_peers, &sorted).ok());

  ASSERT_EQ(page1.meshes_size(), 2);
  EXPECT_EQ(page1.meshes(0).mesh_id(), "a");
  EXPECT_EQ(page1.meshes(1).mesh_id(), "b");
  EXPECT_EQ(page1.total_meshes(), 3u);
  EXPECT_FALSE(page1.next_page_token().empty());
  ASSERT_EQ(page2.meshes_size(), 1);
  EXPECT_EQ(page2.meshes(0).mesh_id(), "c");
  EXPECT_EQ(page2.next_page_token(), "");
  ASSERT_EQ(sorted.meshes_size(), 3);
  EXPECT_EQ(sorted.meshes(0).mesh_id(), "b");
  EXPECT_EQ(sorted.meshes(0).peer_count(), 2u);
}

TEST_F(AdminServiceTest, ListMeshesWithAForeignPageTokenIsInvalidArgument) {
  AdminService service(InlineRunner(), &core_);
  Join("a", "1", "10.0.0.1:1");
  relay::v1::ListMeshesRequest request;
  request.set_page_token("not-a-token");
  relay::v1::ListMeshesResponse response;

  grpc::Status status = service.ListMeshes(&context_, &request, &response);

  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(response.meshes_size(), 0);
}

TEST_F(AdminServiceTest, DrainCallsTheDrainerWithTheRequestedGraceAndReportsItsAnswer) {
  std::vector<absl::Duration> asked;
  AdminService service(InlineRunner(), &core_, [&asked](absl::Duration grace) {
    asked.push_back(grace);
    return absl::StatusOr<DrainResult>(DrainResult{absl::Seconds(45), 7});
  });
  relay::v1::DrainRequest request;
  request.set_grace_seconds(45);
  relay::v1::DrainResponse response;

  grpc::Status status = service.Drain(&context_, &request, &response);

  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(asked, std::vector<absl::Duration>{absl::Seconds(45)});
  EXPECT_EQ(response.grace_seconds(), 45u);
  EXPECT_EQ(response.connections(), 7u);
}

TEST_F(AdminServiceTest, DrainWithZeroGraceAsksForTheDefaultAndReportsTheGraceApplied) {
  std::vector<absl::Duration> asked;
  AdminService service(InlineRunner(), &core_, [&asked](absl::Duration grace) {
    asked.push_back(grace);
    return absl::StatusOr<DrainResult>(DrainResult{absl::Seconds(20), 0});
  });
  relay::v1::DrainRequest request;
  relay::v1::DrainResponse response;

  ASSERT_TRUE(service.Drain(&context_, &request, &response).ok());

  EXPECT_EQ(asked, std::vector<absl::Duration>{absl::ZeroDuration()});
  EXPECT_EQ(response.grace_seconds(), 20u);
  EXPECT_EQ(response.connections(), 0u);
}

TEST_F(AdminServiceTest, DrainPassesTheDrainersRefusalThrough) {
  AdminService service(InlineRunner(), &core_, [](absl::Duration) {
    return absl::StatusOr<DrainResult>(absl::FailedPreconditionError("already draining"));
  });
  relay::v1::DrainRequest request;
  relay::v1::DrainResponse response;

  grpc::Status status = service.Drain(&context_, &request, &response);

  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(HasSubstr(status.error_message(), "already draining"));
}

TEST_F(AdminServiceTest, DrainWithoutADrainerIsFailedPrecondition) {
  AdminService service(InlineRunner(), &core_);
  relay::v1::DrainRequest request;
  relay::v1::DrainResponse response;

  grpc::Status status = service.Drain(&context_, &request, &response);

  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_FALSE(core_.draining());
}

// Restores the process-wide log level a test changes.
class LogLevelRestorer {
 public:
  LogLevelRestorer() : saved_(log::GetLevel()) {}
  ~LogLevelRestorer() { log::SetLevel(saved_); }

 private:
  const log::Level saved_;
};

TEST_F(AdminServiceTest, SetLogLevelChangesTheLevelAndAnswersThePreviousOne) {
  LogLevelRestorer restore;
  log::SetLevel(log::Level::kInfo);
  AdminService service(InlineRunner(), &core_);
  relay::v1::SetLogLevelRequest to_debug;
  to_debug.set_level("debug");
  relay::v1::SetLogLevelRequest to_error;
  to_error.set_level("ERROR");
  relay::v1::SetLogLevelResponse first;
  relay::v1::SetLogLevelResponse second;

  ASSERT_TRUE(service.SetLogLevel(&context_, &to_debug, &first).ok());
  EXPECT_EQ(log::GetLevel(), log::Level::kDebug);
  ASSERT_TRUE(service.SetLogLevel(&context_, &to_error, &second).ok());

  EXPECT_EQ(first.previous(), "info");
  EXPECT_EQ(second.previous(), "debug");
  EXPECT_EQ(log::GetLevel(), log::Level::kError);
}

TEST_F(AdminServiceTest, SetLogLevelRefusesAnUnknownLevelAndKeepsTheCurrentOne) {
  LogLevelRestorer restore;
  log::SetLevel(log::Level::kWarn);
  AdminService service(InlineRunner(), &core_);
  relay::v1::SetLogLevelResponse response;

  for (const char* level : {"loud", "", "5"}) {
    relay::v1::SetLogLevelRequest request;
    request.set_level(level);
    grpc::Status status = service.SetLogLevel(&context_, &request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << level;
  }
  EXPECT_EQ(log::GetLevel(), log::Level::kWarn);
  EXPECT_EQ(response.previous(), "");
}

// --- the admin token, over a real gRPC server --------------------------------

// The service on 127.0.0.1:0 behind a real gRPC server, called with the
// generated stub, so that ClientContext metadata reaches Authorize.
class AdminServiceOverGrpcTest : public ::testing::Test {
 protected:
  void Start(const std::string& admin_token) {
    auto runner = [this](std::function<void()> work) {
      ++runs_;
      work();
      return absl::OkStatus();
    };
    auto drainer = [this](absl::Duration grace) {
      ++drains_;
      return absl::StatusOr<DrainResult>(DrainResult{grace, 0});
    };
    service_ = std::make_unique<AdminService>(runner, &core_, drainer, admin_token);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    stub_ = relay::v1::Admin::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                          grpc::InsecureChannelCredentials()));
    // A live mesh, so that the calls that name one can succeed.
    core::ConnectionId id =
        core_.Connect(core::ConnectionInfo{"10.0.0.1:1", "ws"}, std::make_shared<DiscardSink>());
    relay::v1::ClientEvent event;
    event.mutable_register_()->set_mesh_id("lobby");
    event.mutable_register_()->set_node_id("alice");
    core_.Handle(id, event);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // Every Admin RPC, each with a fresh ClientContext that `prepare` sets up;
  // returns their statuses in a fixed order (named by kRpcNames).
  std::vector<grpc::Status> CallEveryRpc(const std::function<void(grpc::ClientContext*)>& prepare) {
    std::vector<grpc::Status> out;
    auto call = [&](auto method, const auto& request, auto* response) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      prepare(&context);
      out.push_back(((*stub_).*method)(&context, request, response));
    };
    relay::v1::Stats stats;
    call(&relay::v1::Admin::Stub::GetStats, relay::v1::GetStatsRequest(), &stats);
    relay::v1::ListMeshesResponse meshes;
    call(&relay::v1::Admin::Stub::ListMeshes, relay::v1::ListMeshesRequest(), &meshes);
    relay::v1::GetMeshRequest get_mesh;
    get_mesh.set_mesh_id("lobby");
    relay::v1::GetMeshResponse mesh;
    call(&relay::v1::Admin::Stub::GetMesh, get_mesh, &mesh);
    // A peer that does not exist: authorized, this is NOT_FOUND.
    relay::v1::KickPeerRequest kick;
    kick.set_mesh_id("lobby");
    kick.set_node_id("ghost");
    relay::v1::KickPeerResponse kicked;
    call(&relay::v1::Admin::Stub::KickPeer, kick, &kicked);
    relay::v1::CloseMeshRequest close;
    close.set_mesh_id("nowhere");
    relay::v1::CloseMeshResponse closed;
    call(&relay::v1::Admin::Stub::CloseMesh, close, &closed);
    relay::v1::DrainRequest drain;
    drain.set_grace_seconds(3);
    relay::v1::DrainResponse drained;
    call(&relay::v1::Admin::Stub::Drain, drain, &drained);
    // The current level again: authorized, it changes nothing.
    relay::v1::SetLogLevelRequest level;
    level.set_level(std::string(log::LevelName(log::GetLevel())));
    relay::v1::SetLogLevelResponse previous;
    call(&relay::v1::Admin::Stub::SetLogLevel, level, &previous);
    relay::v1::UnbindMeshRequest unbind;
    unbind.set_mesh_id("nowhere");
    relay::v1::UnbindMeshResponse unbound;
    call(&relay::v1::Admin::Stub::UnbindMesh, unbind, &unbound);
    return out;
  }

  static constexpr const char* kRpcNames[] = {"GetStats",    "ListMeshes", "GetMesh",
                                              "KickPeer",    "CloseMesh",  "Drain",
                                              "SetLogLevel", "UnbindMesh"};
  // What each RPC answers once authorized, in kRpcNames order.
  static constexpr grpc::StatusCode kAuthorizedCodes[] = {
      grpc::StatusCode::OK,        grpc::StatusCode::OK,        grpc::StatusCode::OK,
      grpc::StatusCode::NOT_FOUND, grpc::StatusCode::NOT_FOUND, grpc::StatusCode::OK,
      grpc::StatusCode::OK,        grpc::StatusCode::NOT_FOUND};

  FixedClock clock_;
  core::RelayCore core_{core::CoreConfig{}, &clock_};
  std::atomic<int> runs_{0};
  std::atomic<int> drains_{0};
  std::unique_ptr<AdminService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<relay::v1::Admin::Stub> stub_;
  LogLevelRestorer restore_level_;
};

TEST_F(AdminServiceOverGrpcTest, EveryRpcWithoutTheTokenIsUnauthenticatedAndDoesNothing) {
  Start("s3cret-token");

  const std::vector<grpc::Status> statuses = CallEveryRpc([](grpc::ClientContext*) {});

  ASSERT_EQ(statuses.size(), std::size(kRpcNames));
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    EXPECT_EQ(statuses[i].error_code(), grpc::StatusCode::UNAUTHENTICATED) << kRpcNames[i];
    EXPECT_TRUE(HasSubstr(statuses[i].error_message(), "Bearer")) << kRpcNames[i];
    // The refusal never echoes the expected token.
    EXPECT_FALSE(HasSubstr(statuses[i].error_message(), "s3cret")) << kRpcNames[i];
  }
  EXPECT_EQ(runs_.load(), 0);
  EXPECT_EQ(drains_.load(), 0);
}

TEST_F(AdminServiceOverGrpcTest, EveryRpcWithAWrongOrMalformedTokenIsUnauthenticated) {
  Start("s3cret-token");

  for (const char* value :
       {"Bearer wrong", "Bearer s3cret", "Bearer s3cret-token2", "Bearer S3CRET-TOKEN",
        "s3cret-token", "Basic s3cret-token", "Bearer  s3cret-token", "Bearer "}) {
    const std::vector<grpc::Status> statuses = CallEveryRpc(
        [value](grpc::ClientContext* context) { context->AddMetadata("authorization", value); });
    ASSERT_EQ(statuses.size(), std::size(kRpcNames));
    for (std::size_t i = 0; i < statuses.size(); ++i) {
      EXPECT_EQ(statuses[i].error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << kRpcNames[i] << " with \"" << value << "\"";
    }
  }
  EXPECT_EQ(runs_.load(), 0);
  EXPECT_EQ(drains_.load(), 0);
}

TEST_F(AdminServiceOverGrpcTest, EveryRpcWithTheTokenIsServed) {
  Start("s3cret-token");

  const std::vector<grpc::Status> statuses = CallEveryRpc([](grpc::ClientContext* context) {
    context->AddMetadata("authorization", "Bearer s3cret-token");
  });

  ASSERT_EQ(statuses.size(), std::size(kRpcNames));
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    EXPECT_EQ(statuses[i].error_code(), kAuthorizedCodes[i])
        << kRpcNames[i] << ": " << statuses[i].error_message();
  }
  EXPECT_EQ(runs_.load(), 7);  // the core calls: GetMesh makes two (peers, auth), and unbind one
  EXPECT_EQ(drains_.load(), 1);
}

TEST_F(AdminServiceOverGrpcTest, WithoutAConfiguredTokenNoTokenIsNeeded) {
  Start("");

  const std::vector<grpc::Status> bare = CallEveryRpc([](grpc::ClientContext*) {});
  const std::vector<grpc::Status> with_any = CallEveryRpc([](grpc::ClientContext* context) {
    context->AddMetadata("authorization", "Bearer anything");
  });

  ASSERT_EQ(bare.size(), std::size(kRpcNames));
  ASSERT_EQ(with_any.size(), std::size(kRpcNames));
  for (std::size_t i = 0; i < bare.size(); ++i) {
    EXPECT_EQ(bare[i].error_code(), kAuthorizedCodes[i]) << kRpcNames[i];
    EXPECT_EQ(with_any[i].error_code(), kAuthorizedCodes[i]) << kRpcNames[i];
  }
}

}  // namespace
}  // namespace relay::admin
