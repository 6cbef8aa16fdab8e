// FakeAdminServer: an in-process gRPC server (no port, no network) serving a
// scripted relay.v1.Admin and gRPC's default grpc.health.v1, for running
// relayctl's commands in tests.
#ifndef RELAY_TESTS_ADMIN_CLI_FAKE_ADMIN_SERVER_H_
#define RELAY_TESTS_ADMIN_CLI_FAKE_ADMIN_SERVER_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <memory>
#include <string>

#include "relay/v1/relay.grpc.pb.h"

namespace relay::cli::testing {

// Answers from the fields below; `fail`, when not OK, answers every rpc.
// Set the fields before the call: handlers read them on gRPC's threads.
class FakeAdmin final : public relay::v1::Admin::Service {
 public:
  grpc::Status GetStats(grpc::ServerContext*, const relay::v1::GetStatsRequest*,
                        relay::v1::Stats* response) override {
    if (!fail.ok()) return fail;
    *response = stats;
    return grpc::Status::OK;
  }
  grpc::Status ListMeshes(grpc::ServerContext*, const relay::v1::ListMeshesRequest*,
                          relay::v1::ListMeshesResponse* response) override {
    if (!fail.ok()) return fail;
    *response = meshes;
    return grpc::Status::OK;
  }
  grpc::Status GetMesh(grpc::ServerContext*, const relay::v1::GetMeshRequest* request,
                       relay::v1::GetMeshResponse* response) override {
    if (!fail.ok()) return fail;
    if (request->mesh_id() != mesh.mesh().mesh_id()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no live mesh " + request->mesh_id());
    }
    *response = mesh;
    return grpc::Status::OK;
  }

  grpc::Status fail = grpc::Status::OK;
  relay::v1::Stats stats;
  relay::v1::ListMeshesResponse meshes;
  relay::v1::GetMeshResponse mesh;
};

class FakeAdminServer {
 public:
  FakeAdminServer() {
    // Process-wide switch; must precede BuildAndStart. "" starts SERVING.
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.RegisterService(&admin);
    server_ = builder.BuildAndStart();
  }
  ~FakeAdminServer() { server_->Shutdown(); }

  std::shared_ptr<grpc::Channel> Channel() {
    return server_->InProcessChannel(grpc::ChannelArguments());
  }
  void SetServing(bool serving) { server_->GetHealthCheckService()->SetServingStatus(serving); }

  FakeAdmin admin;

 private:
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace relay::cli::testing

#endif  // RELAY_TESTS_ADMIN_CLI_FAKE_ADMIN_SERVER_H_
