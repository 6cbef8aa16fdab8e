// AdminService: the relay.v1.Admin gRPC service: views of RelayCore (stats,
// meshes, peers) and the operator's actions (kick, close a mesh, drain, log
// level). With an admin token, every call must carry it.
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
#include <string>

#include "absl/status/status.h"
#include "relay/v1/relay.grpc.pb.h"
#include "server/admin/cluster_view.h"
#include "server/core/relay_core.h"

namespace relay::admin {

// Runs `work` on the core thread and returns once it has run. Returns non-OK
// (and `work` may then never run, or run later) when the core thread cannot
// take it: shutting down, or too busy to answer in time. The service answers
// such calls with UNAVAILABLE.
using CoreRunner = std::function<absl::Status(std::function<void()> work)>;

// Starts the graceful shutdown (main owns it: health, gateway, timers).
// `grace` zero means the configured default. Returns the grace applied and
// the connections told, or FAILED_PRECONDITION when already draining.
struct DrainResult {
  absl::Duration grace;
  std::size_t connections = 0;
};
using Drainer = std::function<absl::StatusOr<DrainResult>(absl::Duration grace)>;

// Adds what the core does not count to a GetStats answer (the transports'
// refusals). Called on a gRPC thread: it must be safe there.
using StatsExtension = std::function<void(relay::v1::Stats* stats)>;

class AdminService final : public relay::v1::Admin::Service {
 public:
  // `core` is used only inside closures given to `run_on_core`; it must
  // outlive the service. `admin_token` empty: no token required (the admin
  // plane is then bound to loopback, or served over TLS: see relay_config).
  // `cluster` (cluster mode; null alone): meshes list/show then show every
  // instance's members, read from it on the calling gRPC thread (it blocks
  // on NATS; the core thread never does). It must outlive the service.
  AdminService(CoreRunner run_on_core, core::RelayCore* core, Drainer drainer = nullptr,
               std::string admin_token = "", const ClusterView* cluster = nullptr);
  // Set before the server starts; GetStats then calls it on every answer.
  void set_stats_extension(StatsExtension extension) { stats_extension_ = std::move(extension); }
  AdminService(const AdminService&) = delete;
  AdminService& operator=(const AdminService&) = delete;

  grpc::Status GetStats(grpc::ServerContext* context, const relay::v1::GetStatsRequest* request,
                        relay::v1::Stats* response) override;
  // In cluster mode, every mesh with a member on any instance;
  // UNAVAILABLE when the cluster's store cannot be read.
  grpc::Status ListMeshes(grpc::ServerContext* context, const relay::v1::ListMeshesRequest* request,
                          relay::v1::ListMeshesResponse* response) override;
  // NOT_FOUND when no live mesh has that id (in cluster mode: on no
  // instance) and no token binding or signature holds it; each peer's
  // `instance` holds its connection. `auth` tells how it admits peers.
  grpc::Status GetMesh(grpc::ServerContext* context, const relay::v1::GetMeshRequest* request,
                       relay::v1::GetMeshResponse* response) override;
  grpc::Status KickPeer(grpc::ServerContext* context, const relay::v1::KickPeerRequest* request,
                        relay::v1::KickPeerResponse* response) override;
  grpc::Status CloseMesh(grpc::ServerContext* context, const relay::v1::CloseMeshRequest* request,
                         relay::v1::CloseMeshResponse* response) override;
  grpc::Status Drain(grpc::ServerContext* context, const relay::v1::DrainRequest* request,
                     relay::v1::DrainResponse* response) override;
  grpc::Status SetLogLevel(grpc::ServerContext* context,
                           const relay::v1::SetLogLevelRequest* request,
                           relay::v1::SetLogLevelResponse* response) override;
  // Logged as admin_unbind with the request's reason.
  grpc::Status UnbindMesh(grpc::ServerContext* context, const relay::v1::UnbindMeshRequest* request,
                          relay::v1::UnbindMeshResponse* response) override;

 private:
  // OK, or UNAUTHENTICATED unless the call carries
  // "authorization: Bearer <admin token>" (compared in constant time).
  // A refusal is logged (admin_refused) with `rpc`, the method's name.
  grpc::Status Authorize(const grpc::ServerContext& context, absl::string_view rpc) const;
  grpc::Status ListClusterMeshes(const relay::v1::ListMeshesRequest& request,
                                 relay::v1::ListMeshesResponse* response);
  grpc::Status GetClusterMesh(const std::string& mesh_id, relay::v1::GetMeshResponse* response);
  grpc::Status GetLocalMesh(const std::string& mesh_id, relay::v1::GetMeshResponse* response);

  const CoreRunner run_on_core_;
  core::RelayCore* const core_;
  const Drainer drainer_;
  const std::string admin_token_;
  const ClusterView* const cluster_;
  StatsExtension stats_extension_;
};

}  // namespace relay::admin

#endif  // RELAY_SERVER_ADMIN_ADMIN_SERVICE_H_
