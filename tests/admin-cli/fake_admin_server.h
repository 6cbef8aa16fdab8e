// FakeAdminServer: an in-process gRPC server (no port, no network) serving a
// scripted relay.v1.Admin and grpc.health.v1.Health, for running relayctl's
// commands in tests. Both record what each call carried (the authorization
// metadata, the requests), so tests check what relayctl sent.
#ifndef RELAY_TESTS_ADMIN_CLI_FAKE_ADMIN_SERVER_H_
#define RELAY_TESTS_ADMIN_CLI_FAKE_ADMIN_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "relay/v1/relay.grpc.pb.h"

namespace relay::cli::testing {

// The "authorization" metadata of a call, "" when it has none.
inline std::string AuthorizationOf(const grpc::ServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  return it == metadata.end() ? "" : std::string(it->second.data(), it->second.size());
}

// Answers from the fields below; `fail`, when not OK, answers every rpc.
// Set the fields before the call: handlers read them on gRPC's threads.
// Read the recorded calls (under `mu`, or after the call returned).
class FakeAdmin final : public relay::v1::Admin::Service {
 public:
  grpc::Status GetStats(grpc::ServerContext* context, const relay::v1::GetStatsRequest*,
                        relay::v1::Stats* response) override {
    if (grpc::Status status = Begin(*context); !status.ok()) return status;
    *response = stats;
    return grpc::Status::OK;
  }

  // With `pages` set: the page keyed by the request's page_token
  // (INVALID_ARGUMENT for another token); else `meshes`, whatever was asked.
  grpc::Status ListMeshes(grpc::ServerContext* context, const relay::v1::ListMeshesRequest* request,
                          relay::v1::ListMeshesResponse* response) override {
    if (grpc::Status status = Begin(*context); !status.ok()) return status;
    {
      std::lock_guard<std::mutex> lock(mu);
      list_requests.push_back(*request);
    }
    if (pages.empty()) {
      *response = meshes;
      return grpc::Status::OK;
    }
    auto it = pages.find(request->page_token());
    if (it == pages.end()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "page_token was not handed out by this relay");
    }
    *response = it->second;
    return grpc::Status::OK;
  }

  grpc::Status GetMesh(grpc::ServerContext* context, const relay::v1::GetMeshRequest* request,
                       relay::v1::GetMeshResponse* response) override {
    if (grpc::Status status = Begin(*context); !status.ok()) return status;
    if (request->mesh_id() != mesh.mesh().mesh_id()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no live mesh " + request->mesh_id());
    }
    *response = mesh;
    return grpc::Status::OK;
  }

  // Knows the peers of `mesh`.
  grpc::Status KickPeer(grpc::ServerContext* context, const relay::v1::KickPeerRequest* request,
                        relay::v1::KickPeerResponse*) override {
    if (grpc::Status status = Begin(*context); !status.ok()) return status;
    {
      std::lock_guard<std::mutex> lock(mu);
      kick_requests.push_back(*request);
    }
    if (request->mesh_id() == mesh.mesh().mesh_id()) {
      for (const relay::v1::PeerDetail& peer : mesh.peers()) {
        if (peer.node_id() == request->node_id()) return grpc::Status::OK;
      }
    }
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        "no peer \"" + request->node_id() + "\" in mesh \"" + request->mesh_id() + "\"");
  }

  // Closes (pretends to) every peer of `mesh`.
  grpc::Status CloseMesh(grpc::ServerContext* context, const relay::v1::CloseMeshRequest* request,
                         relay::v1::CloseMeshResponse* response) override {
    if (grpc::Status status = Begin(*context); !status.ok()) return status;
    {
      std::lock_guard<std::mutex> lock(mu);
      close_requests.push_back(*request);
    }
    if (request->mesh_id() != mesh.mesh().mesh_id()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "no live mesh \"" + request->mesh_id() + "\"");
    }
    response->set_closed_peers(static_cast<std::uint32_t>(mesh.peers_size()));
    return grpc::Status::OK;
  }

  // Unbinds `bound_mesh` once; anything else is NOT_FOUND, `mesh` (live)
  // FAILED_PRECONDITION, as on the relay.
  grpc::Status UnbindMesh(grpc::ServerContext* context, const relay::v1::UnbindMeshRequest* request,
                          relay::v1::UnbindMeshResponse*) override {
    if (grpc::Status status = Begin(*context); !status.ok()) return status;
    std::lock_guard<std::mutex> lock(mu);
    unbind_requests.push_back(*request);
    if (request->mesh_id() == mesh.mesh().mesh_id()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "mesh \"" + request->mesh_id() +
                              "\" has peers; its binding holds while "
                              "they are there (close it first)");
    }
    if (request->mesh_id() != bound_mesh) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "mesh \"" + request->mesh_id() + "\" is not bound to a token");
    }
    bound_mesh.clear();
    return grpc::Status::OK;
  }

  // The first call drains (grace 0 -> default_grace_seconds); later ones
  // are FAILED_PRECONDITION, as on the relay.
  grpc::Status Drain(grpc::ServerContext* context, const relay::v1::DrainRequest* request,
                     relay::v1::DrainResponse* response) override {
    if (grpc::Status status = Begin(*context); !status.ok()) return status;
    std::lock_guard<std::mutex> lock(mu);
    drain_requests.push_back(*request);
    if (draining) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the relay is already draining");
    }
    draining = true;
    response->set_grace_seconds(request->grace_seconds() == 0 ? default_grace_seconds
                                                              : request->grace_seconds());
    response->set_connections(drain_connections);
    return grpc::Status::OK;
  }

  grpc::Status SetLogLevel(grpc::ServerContext* context,
                           const relay::v1::SetLogLevelRequest* request,
                           relay::v1::SetLogLevelResponse* response) override {
    if (grpc::Status status = Begin(*context); !status.ok()) return status;
    static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "off"};
    std::lock_guard<std::mutex> lock(mu);
    if (kLevels.count(request->level()) == 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "log level must be trace, debug, info, warn, error or off, not \"" +
                              request->level() + "\"");
    }
    response->set_previous(log_level);
    log_level = request->level();
    return grpc::Status::OK;
  }

  // Scripted answers.
  grpc::Status fail = grpc::Status::OK;
  std::string required_token;  // non-empty: every call needs "Bearer <it>"
  relay::v1::Stats stats;
  relay::v1::ListMeshesResponse meshes;
  std::map<std::string, relay::v1::ListMeshesResponse> pages;
  relay::v1::GetMeshResponse mesh;
  std::string bound_mesh = "family";  // an empty mesh with a token binding
  std::uint32_t default_grace_seconds = 20;
  std::uint32_t drain_connections = 0;

  // State and recorded calls.
  std::mutex mu;
  bool draining = false;
  std::string log_level = "info";
  std::vector<std::string> authorizations;  // one per call, "" without the metadata
  std::vector<relay::v1::ListMeshesRequest> list_requests;
  std::vector<relay::v1::KickPeerRequest> kick_requests;
  std::vector<relay::v1::CloseMeshRequest> close_requests;
  std::vector<relay::v1::UnbindMeshRequest> unbind_requests;
  std::vector<relay::v1::DrainRequest> drain_requests;

 private:
  // Records the call's authorization, then refuses it as the relay would.
  grpc::Status Begin(const grpc::ServerContext& context) {
    const std::string authorization = AuthorizationOf(context);
    {
      std::lock_guard<std::mutex> lock(mu);
      authorizations.push_back(authorization);
    }
    if (!required_token.empty() && authorization != "Bearer " + required_token) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "this relay's admin API needs \"authorization: Bearer <ADMIN_TOKEN>\"");
    }
    return fail;
  }
};

// grpc.health.v1 for the whole server (service ""), recording authorizations.
class FakeHealth final : public grpc::health::v1::Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext* context, const grpc::health::v1::HealthCheckRequest*,
                     grpc::health::v1::HealthCheckResponse* response) override {
    std::lock_guard<std::mutex> lock(mu);
    authorizations.push_back(AuthorizationOf(*context));
    response->set_status(serving ? grpc::health::v1::HealthCheckResponse::SERVING
                                 : grpc::health::v1::HealthCheckResponse::NOT_SERVING);
    return grpc::Status::OK;
  }

  std::mutex mu;
  bool serving = true;
  std::vector<std::string> authorizations;
};

class FakeAdminServer {
 public:
  FakeAdminServer() {
    grpc::ServerBuilder builder;
    builder.RegisterService(&admin);
    builder.RegisterService(&health);
    server_ = builder.BuildAndStart();
  }
  ~FakeAdminServer() { server_->Shutdown(); }

  std::shared_ptr<grpc::Channel> Channel() {
    return server_->InProcessChannel(grpc::ChannelArguments());
  }
  void SetServing(bool serving) {
    std::lock_guard<std::mutex> lock(health.mu);
    health.serving = serving;
  }

  FakeAdmin admin;
  FakeHealth health;

 private:
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace relay::cli::testing

#endif  // RELAY_TESTS_ADMIN_CLI_FAKE_ADMIN_SERVER_H_
