// AdminService handlers: each checks the admin token, then runs its core
// read or action on the core thread (see admin_service.h for why) and copies
// the answer into the gRPC response.
#include "server/admin/admin_service.h"

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/admin/cluster_meshes.h"
#include "server/admin/grpc_status.h"
#include "server/auth/crypto.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::admin {
namespace {

// The core thread could not run the read: the relay is going away or
// overloaded, which is what UNAVAILABLE means to a gRPC client (retryable).
grpc::Status CoreUnavailable(const absl::Status& why) {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "relay core unavailable: " + std::string(why.message()));
}

// The cluster's store could not be read whole: say so, rather than show
// this instance's part as if it were the cluster.
grpc::Status ClusterUnavailable(const absl::Status& why) {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "cluster view unavailable: " + std::string(why.message()));
}

// Runs `start` on the core thread and waits for the answer it hands its
// callback, which may come later (after a round trip to the auth store), up
// to limits::kCoreCallDeadline. Unavailable when the core thread cannot take
// it or the answer does not come in time (it is then dropped when it comes).
template <typename T>
absl::StatusOr<T> AwaitCore(const CoreRunner& run,
                            std::function<void(std::function<void(T)>)> start) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> answer = promise->get_future();
  absl::Status ran = run([start = std::move(start), promise] {
    start([promise](T value) { promise->set_value(std::move(value)); });
  });
  if (!ran.ok())
    return absl::UnavailableError(absl::StrCat("relay core unavailable: ", ran.message()));
  const auto deadline =
      std::chrono::milliseconds(absl::ToInt64Milliseconds(limits::kCoreCallDeadline));
  if (answer.wait_for(deadline) != std::future_status::ready) {
    return absl::UnavailableError("the auth store did not answer in time");
  }
  return answer.get();
}

bool BoundOrSigned(const relay::v1::MeshAuthInfo& auth) {
  return auth.level() == relay::v1::MeshAuthInfo::LEVEL_TOKEN ||
         auth.level() == relay::v1::MeshAuthInfo::LEVEL_SIGNED;
}

}  // namespace

AdminService::AdminService(CoreRunner run_on_core, core::RelayCore* core, Drainer drainer,
                           std::string admin_token, const ClusterView* cluster)
    : run_on_core_(std::move(run_on_core)),
      core_(core),
      drainer_(std::move(drainer)),
      admin_token_(std::move(admin_token)),
      cluster_(cluster) {}

grpc::Status AdminService::Authorize(const grpc::ServerContext& context,
                                     absl::string_view rpc) const {
  if (admin_token_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  constexpr absl::string_view kBearer = "bearer ";  // the scheme is case-insensitive (RFC 7235)
  if (it != metadata.end()) {
    const absl::string_view value(it->second.data(), it->second.size());
    // Digests of equal length are compared, so the time taken tells
    // nothing of the token's length either.
    if (absl::StartsWithIgnoreCase(value, kBearer) &&
        auth::ConstantTimeEquals(auth::SaltedSha256("admin", value.substr(kBearer.size())),
                                 auth::SaltedSha256("admin", admin_token_))) {
      return grpc::Status::OK;
    }
  }
  log::Event(log::Level::kWarn, log::LogEvent::kAdminRefused)
      .Str("rpc", rpc)
      .Str("caller", context.peer());
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "this relay's admin API needs \"authorization: Bearer <ADMIN_TOKEN>\" "
                      "(relayctl --token or RELAY_ADMIN_TOKEN)");
}

// Each closure writes into a result it shares ownership of, never into
// `response`: a runner that gives up waiting may still run the closure later,
// after this handler returned and gRPC freed the response.

grpc::Status AdminService::GetStats(grpc::ServerContext* context,
                                    const relay::v1::GetStatsRequest* /*request*/,
                                    relay::v1::Stats* response) {
  if (grpc::Status auth = Authorize(*context, "GetStats"); !auth.ok()) return auth;
  auto result = std::make_shared<relay::v1::Stats>();
  absl::Status ran = run_on_core_([core = core_, result] { *result = core->GetStats(); });
  if (!ran.ok()) return CoreUnavailable(ran);
  *response = std::move(*result);
  if (stats_extension_) stats_extension_(response);
  if (cluster_ != nullptr) {
    // From the leases in memory: no NATS round trip.
    relay::v1::ClusterStats* totals = response->mutable_cluster();
    for (const InstanceSummary& instance : cluster_->LiveInstances()) {
      relay::v1::InstanceStats* out = totals->add_instances();
      out->set_instance_id(instance.instance_id);
      out->set_started_at(instance.started_at);
      out->set_open_sockets(instance.open_sockets);
      out->set_registered_peers(instance.registered_peers);
      out->set_messages_relayed(instance.messages_relayed);
      totals->set_open_sockets(totals->open_sockets() + instance.open_sockets);
      totals->set_registered_peers(totals->registered_peers() + instance.registered_peers);
      totals->set_messages_relayed(totals->messages_relayed() + instance.messages_relayed);
    }
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::ListMeshes(grpc::ServerContext* context,
                                      const relay::v1::ListMeshesRequest* request,
                                      relay::v1::ListMeshesResponse* response) {
  if (grpc::Status auth = Authorize(*context, "ListMeshes"); !auth.ok()) return auth;
  if (cluster_ != nullptr) return ListClusterMeshes(*request, response);
  auto result = std::make_shared<absl::StatusOr<relay::v1::ListMeshesResponse>>();
  absl::Status ran = run_on_core_(
      [core = core_, result, request = *request] { *result = core->ListMeshesPage(request); });
  if (!ran.ok()) return CoreUnavailable(ran);
  if (!result->ok()) return ToGrpcStatus(result->status());
  *response = *std::move(*result);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetMesh(grpc::ServerContext* context,
                                   const relay::v1::GetMeshRequest* request,
                                   relay::v1::GetMeshResponse* response) {
  if (grpc::Status auth = Authorize(*context, "GetMesh"); !auth.ok()) return auth;
  const std::string& mesh_id = request->mesh_id();
  const grpc::Status found =
      cluster_ != nullptr ? GetClusterMesh(mesh_id, response) : GetLocalMesh(mesh_id, response);
  if (!found.ok() && found.error_code() != grpc::StatusCode::NOT_FOUND) return found;
  absl::StatusOr<relay::v1::MeshAuthInfo> auth = AwaitCore<relay::v1::MeshAuthInfo>(
      run_on_core_, [core = core_, mesh_id](std::function<void(relay::v1::MeshAuthInfo)> done) {
        core->DescribeMeshAuth(mesh_id, std::move(done));
      });
  if (!auth.ok()) {
    const std::string why(auth.status().message());
    auth = relay::v1::MeshAuthInfo();
    auth->set_unavailable(why);
  }
  if (!found.ok()) {
    // No peers: still worth showing when a binding or a signature holds it
    // (the lock-out an operator comes to release).
    if (!BoundOrSigned(*auth)) {
      if (auth->unavailable().empty()) return found;
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat(found.error_message(),
                                       " (its auth state is unknown: ", auth->unavailable(), ")"));
    }
    response->Clear();
    response->mutable_mesh()->set_mesh_id(mesh_id);
  }
  *response->mutable_auth() = *std::move(auth);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetLocalMesh(const std::string& mesh_id,
                                        relay::v1::GetMeshResponse* response) {
  auto result = std::make_shared<absl::StatusOr<relay::v1::GetMeshResponse>>();
  absl::Status ran =
      run_on_core_([core = core_, result, mesh_id] { *result = core->GetMesh(mesh_id); });
  if (!ran.ok()) return CoreUnavailable(ran);
  if (!result->ok()) return ToGrpcStatus(result->status());
  *response = *std::move(*result);
  return grpc::Status::OK;
}

grpc::Status AdminService::UnbindMesh(grpc::ServerContext* context,
                                      const relay::v1::UnbindMeshRequest* request,
                                      relay::v1::UnbindMeshResponse* /*response*/) {
  if (grpc::Status auth = Authorize(*context, "UnbindMesh"); !auth.ok()) return auth;
  absl::StatusOr<absl::Status> result = AwaitCore<absl::Status>(
      run_on_core_,
      [core = core_, mesh_id = request->mesh_id()](std::function<void(absl::Status)> done) {
        core->UnbindMesh(mesh_id, std::move(done));
      });
  if (!result.ok()) return ToGrpcStatus(result.status());
  if (!result->ok()) return ToGrpcStatus(*result);
  log::Event(log::Level::kWarn, log::LogEvent::kAdminUnbind)
      .Str("mesh", request->mesh_id())
      .Str("reason", request->reason())
      .Str("caller", context->peer());
  return grpc::Status::OK;
}

// Cluster mode: the store first (a blocking read, here on the gRPC
// thread), then this instance's own figures from the core thread.
grpc::Status AdminService::ListClusterMeshes(const relay::v1::ListMeshesRequest& request,
                                             relay::v1::ListMeshesResponse* response) {
  absl::StatusOr<std::vector<ClusterNode>> nodes = cluster_->Nodes(std::nullopt);
  if (!nodes.ok()) return ClusterUnavailable(nodes.status());
  auto local = std::make_shared<relay::v1::ListMeshesResponse>();
  absl::Status ran = run_on_core_([core = core_, local] { *local = core->ListMeshes(); });
  if (!ran.ok()) return CoreUnavailable(ran);
  absl::StatusOr<relay::v1::ListMeshesResponse> merged = ClusterMeshList(*nodes, *local, request);
  if (!merged.ok()) return ToGrpcStatus(merged.status());
  *response = *std::move(merged);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetClusterMesh(const std::string& mesh_id,
                                          relay::v1::GetMeshResponse* response) {
  absl::StatusOr<std::vector<ClusterNode>> nodes = cluster_->Nodes(mesh_id);
  if (!nodes.ok()) return ClusterUnavailable(nodes.status());
  auto local = std::make_shared<absl::StatusOr<relay::v1::GetMeshResponse>>();
  absl::Status ran =
      run_on_core_([core = core_, local, mesh_id] { *local = core->GetMesh(mesh_id); });
  if (!ran.ok()) return CoreUnavailable(ran);
  absl::StatusOr<relay::v1::GetMeshResponse> merged = ClusterMeshDetail(mesh_id, *nodes, *local);
  if (!merged.ok()) return ToGrpcStatus(merged.status());
  *response = *std::move(merged);
  return grpc::Status::OK;
}

grpc::Status AdminService::KickPeer(grpc::ServerContext* context,
                                    const relay::v1::KickPeerRequest* request,
                                    relay::v1::KickPeerResponse* /*response*/) {
  if (grpc::Status auth = Authorize(*context, "KickPeer"); !auth.ok()) return auth;
  auto result = std::make_shared<absl::Status>();
  absl::Status ran = run_on_core_([core = core_, result, request = *request] {
    *result = core->Kick(request.mesh_id(), request.node_id(), request.reason());
  });
  if (!ran.ok()) return CoreUnavailable(ran);
  if (result->ok()) {
    log::Event(log::Level::kWarn, log::LogEvent::kAdminKick)
        .Str("mesh", request->mesh_id())
        .Str("node", request->node_id())
        .Str("reason", request->reason())
        .Str("caller", context->peer());
  }
  return ToGrpcStatus(*result);
}

grpc::Status AdminService::CloseMesh(grpc::ServerContext* context,
                                     const relay::v1::CloseMeshRequest* request,
                                     relay::v1::CloseMeshResponse* response) {
  if (grpc::Status auth = Authorize(*context, "CloseMesh"); !auth.ok()) return auth;
  auto result = std::make_shared<absl::StatusOr<std::size_t>>();
  absl::Status ran = run_on_core_([core = core_, result, request = *request] {
    *result = core->CloseMesh(request.mesh_id(), request.reason());
  });
  if (!ran.ok()) return CoreUnavailable(ran);
  if (!result->ok()) return ToGrpcStatus(result->status());
  log::Event(log::Level::kWarn, log::LogEvent::kAdminCloseMesh)
      .Str("mesh", request->mesh_id())
      .Str("reason", request->reason())
      .Uint("closed", **result)
      .Str("caller", context->peer());
  response->set_closed_peers(static_cast<std::uint32_t>(**result));
  return grpc::Status::OK;
}

grpc::Status AdminService::Drain(grpc::ServerContext* context,
                                 const relay::v1::DrainRequest* request,
                                 relay::v1::DrainResponse* response) {
  if (grpc::Status auth = Authorize(*context, "Drain"); !auth.ok()) return auth;
  if (!drainer_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this server cannot drain");
  }
  absl::StatusOr<DrainResult> result = drainer_(absl::Seconds(request->grace_seconds()));
  if (!result.ok()) return ToGrpcStatus(result.status());
  log::Event(log::Level::kWarn, log::LogEvent::kAdminDrain)
      .Int("grace_seconds", absl::ToInt64Seconds(result->grace))
      .Uint("connections", result->connections)
      .Str("reason", request->reason())
      .Str("caller", context->peer());
  response->set_grace_seconds(static_cast<std::uint32_t>(absl::ToInt64Seconds(result->grace)));
  response->set_connections(static_cast<std::uint32_t>(result->connections));
  return grpc::Status::OK;
}

grpc::Status AdminService::SetLogLevel(grpc::ServerContext* context,
                                       const relay::v1::SetLogLevelRequest* request,
                                       relay::v1::SetLogLevelResponse* response) {
  if (grpc::Status auth = Authorize(*context, "SetLogLevel"); !auth.ok()) return auth;
  absl::StatusOr<log::Level> level = log::ParseLevel(request->level());
  if (!level.ok()) return ToGrpcStatus(level.status());
  const log::Level previous = log::GetLevel();
  // Logged at warn (as every admin action) under whichever of the two levels
  // shows it: before the change when the old one does, else after.
  auto log_change = [&] {
    log::Event(log::Level::kWarn, log::LogEvent::kAdminLogLevel)
        .Str("previous", log::LevelName(previous))
        .Str("level", log::LevelName(*level))
        .Str("reason", request->reason())
        .Str("caller", context->peer());
  };
  const bool logged_before = log::Enabled(log::Level::kWarn);
  if (logged_before) log_change();
  log::SetLevel(*level);
  if (!logged_before) log_change();
  response->set_previous(std::string(log::LevelName(previous)));
  return grpc::Status::OK;
}

}  // namespace relay::admin
