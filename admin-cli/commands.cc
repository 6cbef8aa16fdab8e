// One function per relayctl command, and the mapping from rpc failures to
// messages and exit codes (see commands.h).
#include "admin-cli/commands.h"

#include <grpcpp/client_context.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "admin-cli/format.h"
#include "admin-cli/json_output.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "relay/v1/relay.grpc.pb.h"

namespace relay::cli {
namespace {

std::string CodeName(const grpc::Status& status) {
  // gRPC and Abseil share canonical code numbers; gRPC has no name function.
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
}

// Prints why `rpc` failed and returns the exit code for it.
int ReportFailure(const CliOptions& options, absl::string_view rpc, const grpc::Status& status,
                  std::ostream& err) {
  const int code = ExitCodeFor(status);
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    err << "relayctl: no answer from the relay at " << options.addr << " within "
        << absl::FormatDuration(options.timeout) << " (" << rpc << ": DEADLINE_EXCEEDED)\n";
  } else if (code == kExitUnreachable) {
    err << "relayctl: cannot reach the relay at " << options.addr << ": " << status.error_message()
        << " (" << rpc << ": " << CodeName(status) << ")\n";
  } else {
    err << "relayctl: " << rpc << " failed: " << status.error_message() << " (" << CodeName(status)
        << ")\n";
  }
  return code;
}

void SetDeadline(const CliOptions& options, grpc::ClientContext& context) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
}

// Prints `response` as JSON; `human` is the table text used otherwise.
int Print(const CliOptions& options, const google::protobuf::Message& response,
          const std::string& human, std::ostream& out, std::ostream& err) {
  if (!options.json) {
    out << human;
    return kExitOk;
  }
  absl::StatusOr<std::string> json = ToJson(response);
  if (!json.ok()) {
    err << "relayctl: " << json.status().message() << "\n";
    return kExitRemoteError;
  }
  out << *json;
  return kExitOk;
}

int MeshesList(const CliOptions& options, relay::v1::Admin::Stub& admin, absl::Time now,
               std::ostream& out, std::ostream& err) {
  grpc::ClientContext context;
  SetDeadline(options, context);
  relay::v1::ListMeshesResponse response;
  grpc::Status status = admin.ListMeshes(&context, relay::v1::ListMeshesRequest(), &response);
  if (!status.ok()) return ReportFailure(options, "ListMeshes", status, err);
  return Print(options, response, options.json ? "" : FormatMeshList(response, now), out, err);
}

int MeshesShow(const CliOptions& options, relay::v1::Admin::Stub& admin, absl::Time now,
               std::ostream& out, std::ostream& err) {
  grpc::ClientContext context;
  SetDeadline(options, context);
  relay::v1::GetMeshRequest request;
  request.set_mesh_id(options.mesh_id);
  relay::v1::GetMeshResponse response;
  grpc::Status status = admin.GetMesh(&context, request, &response);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    err << "relayctl: no live mesh \"" << options.mesh_id << "\"\n";
    return kExitRemoteError;
  }
  if (!status.ok()) return ReportFailure(options, "GetMesh", status, err);
  return Print(options, response, options.json ? "" : FormatMeshDetail(response, now), out, err);
}

int Stats(const CliOptions& options, relay::v1::Admin::Stub& admin, std::ostream& out,
          std::ostream& err) {
  grpc::ClientContext context;
  SetDeadline(options, context);
  relay::v1::Stats response;
  grpc::Status status = admin.GetStats(&context, relay::v1::GetStatsRequest(), &response);
  if (!status.ok()) return ReportFailure(options, "GetStats", status, err);
  return Print(options, response, options.json ? "" : FormatStats(response), out, err);
}

int Health(const CliOptions& options, const std::shared_ptr<grpc::ChannelInterface>& channel,
           std::ostream& out, std::ostream& err) {
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(options, context);
  grpc::health::v1::HealthCheckRequest request;  // service "": the relay as a whole
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health->Check(&context, request, &response);
  if (!status.ok()) return ReportFailure(options, "Health.Check", status, err);
  const int printed =
      Print(options, response, options.json ? "" : FormatHealth(response), out, err);
  if (printed != kExitOk) return printed;
  // Scripts and probes branch on the exit code alone.
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk
                                                                             : kExitRemoteError;
}

}  // namespace

int ExitCodeFor(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnreachable;
    default:
      return kExitRemoteError;
  }
}

int RunCommand(const CliOptions& options, const std::shared_ptr<grpc::ChannelInterface>& channel,
               absl::Time now, std::ostream& out, std::ostream& err) {
  if (options.command == Command::kHealth) return Health(options, channel, out, err);
  auto admin = relay::v1::Admin::NewStub(channel);
  switch (options.command) {
    case Command::kMeshesList:
      return MeshesList(options, *admin, now, out, err);
    case Command::kMeshesShow:
      return MeshesShow(options, *admin, now, out, err);
    case Command::kStats:
      return Stats(options, *admin, out, err);
    case Command::kHealth:
    case Command::kNone:
      break;
  }
  err << "relayctl: no command\n";
  return kExitUsage;
}

}  // namespace relay::cli
