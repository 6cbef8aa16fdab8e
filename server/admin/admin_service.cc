// AdminService handlers: each reads one core view on the core thread (see
// admin_service.h for why) and copies the answer into the gRPC response.
#include "server/admin/admin_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "server/admin/grpc_status.h"

namespace relay::admin {
namespace {

// The core thread could not run the read: the relay is going away or
// overloaded, which is what UNAVAILABLE means to a gRPC client (retryable).
grpc::Status CoreUnavailable(const absl::Status& why) {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "relay core unavailable: " + std::string(why.message()));
}

}  // namespace

AdminService::AdminService(CoreRunner run_on_core, const core::RelayCore* core)
    : run_on_core_(std::move(run_on_core)), core_(core) {}

// Each closure writes into a result it shares ownership of, never into
// `response`: a runner that gives up waiting may still run the closure later,
// after this handler returned and gRPC freed the response.

grpc::Status AdminService::GetStats(grpc::ServerContext* /*context*/,
                                    const relay::v1::GetStatsRequest* /*request*/,
                                    relay::v1::Stats* response) {
  auto result = std::make_shared<relay::v1::Stats>();
  absl::Status ran = run_on_core_([core = core_, result] { *result = core->GetStats(); });
  if (!ran.ok()) return CoreUnavailable(ran);
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status AdminService::ListMeshes(grpc::ServerContext* /*context*/,
                                      const relay::v1::ListMeshesRequest* /*request*/,
                                      relay::v1::ListMeshesResponse* response) {
  auto result = std::make_shared<relay::v1::ListMeshesResponse>();
  absl::Status ran = run_on_core_([core = core_, result] { *result = core->ListMeshes(); });
  if (!ran.ok()) return CoreUnavailable(ran);
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetMesh(grpc::ServerContext* /*context*/,
                                   const relay::v1::GetMeshRequest* request,
                                   relay::v1::GetMeshResponse* response) {
  auto result = std::make_shared<absl::StatusOr<relay::v1::GetMeshResponse>>();
  absl::Status ran = run_on_core_(
      [core = core_, result, mesh_id = request->mesh_id()] { *result = core->GetMesh(mesh_id); });
  if (!ran.ok()) return CoreUnavailable(ran);
  if (!result->ok()) return ToGrpcStatus(result->status());
  *response = *std::move(*result);
  return grpc::Status::OK;
}

}  // namespace relay::admin
