// AdminService: the relay.v1.Admin gRPC service (GetStats, ListMeshes,
// GetMesh), a thin read-only window onto RelayCore's views.
//
// Threading: gRPC calls these handlers on its own threads, but RelayCore is
// not thread-safe and lives on the core (event-loop) thread. So the service
// never touches the core directly: each handler hands a closure to the
// CoreRunner, which runs it on the core thread and waits for it.
#ifndef RELAY_SERVER_ADMIN_ADMIN_SERVICE_H_
#define RELAY_SERVER_ADMIN_ADMIN_SERVICE_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <functional>

#include "absl/status/status.h"
#include "relay/v1/relay.grpc.pb.h"
#include "server/core/relay_core.h"

namespace relay::admin {

// Runs `work` on the core thread and returns once it has run. Returns non-OK
// (and `work` may then never run, or run later) when the core thread cannot
// take it: shutting down, or too busy to answer in time. The service answers
// such calls with UNAVAILABLE.
using CoreRunner = std::function<absl::Status(std::function<void()> work)>;

class AdminService final : public relay::v1::Admin::Service {
 public:
  // `core` is read only inside closures given to `run_on_core`; it must
  // outlive the service.
  AdminService(CoreRunner run_on_core, const core::RelayCore* core);
  AdminService(const AdminService&) = delete;
  AdminService& operator=(const AdminService&) = delete;

  grpc::Status GetStats(grpc::ServerContext* context, const relay::v1::GetStatsRequest* request,
                        relay::v1::Stats* response) override;
  grpc::Status ListMeshes(grpc::ServerContext* context, const relay::v1::ListMeshesRequest* request,
                          relay::v1::ListMeshesResponse* response) override;
  // NOT_FOUND (from the core) when no live mesh has that id.
  grpc::Status GetMesh(grpc::ServerContext* context, const relay::v1::GetMeshRequest* request,
                       relay::v1::GetMeshResponse* response) override;

 private:
  const CoreRunner run_on_core_;
  const core::RelayCore* const core_;
};

}  // namespace relay::admin

#endif  // RELAY_SERVER_ADMIN_ADMIN_SERVICE_H_
