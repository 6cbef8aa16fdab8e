// One function per relayctl command, and the mapping from rpc failures to
// messages and exit codes (see commands.h). Every Admin call goes through
// NewContext, which sets the deadline and the admin token.
#include "admin-cli/commands.h"

#include <grpcpp/client_context.h>

#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "admin-cli/format.h"
#include "admin-cli/json_output.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "relay/v1/relay.grpc.pb.h"

namespace relay::cli {
namespace {

using relay::v1::Admin;

std::string CodeName(const grpc::Status& status) {
  // gRPC and Abseil share canonical code numbers; gRPC has no name function.
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
}

// What the operator can do about a refused token; the token itself is never
// shown (it may be on a shared screen or in CI logs).
std::string TokenHint(const CliOptions& options) {
  return options.token.empty() ? absl::StrCat("no token was given: use --token or $", kTokenEnvVar)
                               : "the token given was refused";
}

// The relay's status code as --json errors name it: the gRPC code's name in
// snake_case ("not_found", "unauthenticated", "unavailable").
std::string JsonCode(const grpc::Status& status) { return absl::AsciiStrToLower(CodeName(status)); }

// What a failed connection's message says about TLS, as a hint to append:
// a plaintext call to a TLS port fails with only "Socket closed", a TLS call
// to a plaintext port with "wrong version number". Empty when it says nothing.
std::string TlsHint(const CliOptions& options, const grpc::Status& status) {
  const std::string& message = status.error_message();
  if (!options.tls) {
    if (absl::StrContains(message, "Socket closed") ||
        absl::StrContains(message, "Connection reset")) {
      return "; if the relay serves TLS (TLS_CERT_FILE), use --tls (and --ca-file PEM for a "
             "private CA)";
    }
    return "";
  }
  if (absl::StrContains(message, "wrong version number")) {
    return "; the relay does not speak TLS on this port: try without --tls";
  }
  if (absl::StrContains(message, "certificate verify failed")) {
    return "; the relay's certificate is not trusted: give its CA with --ca-file PEM";
  }
  if (absl::StrContains(message, "ALPN")) {
    return "; this port speaks TLS but not gRPC: is --addr the relay's GRPC_PORT?";
  }
  return "";
}

// Prints why `rpc` failed and returns the exit code for it: one
// "relayctl: ..." line on `err`, and with --json the same sentence as a JSON
// error object on `out` (a script reading stdout always gets one document).
int ReportFailure(const CliOptions& options, absl::string_view rpc, const grpc::Status& status,
                  std::ostream& out, std::ostream& err) {
  const int code = ExitCodeFor(status);
  std::string text;
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    text = absl::StrCat("no answer from the relay at ", options.addr, " within ",
                        absl::FormatDuration(options.timeout), " (", rpc, ": DEADLINE_EXCEEDED)");
  } else if (code == kExitUnreachable) {
    text = absl::StrCat("cannot reach the relay at ", options.addr, ": ", status.error_message(),
                        " (", rpc, ": ", CodeName(status), ")", TlsHint(options, status));
  } else if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    text = absl::StrCat(rpc, " refused: ", status.error_message(), " (", CodeName(status), "; ",
                        TokenHint(options), ")");
  } else {
    text = absl::StrCat(rpc, " failed: ", status.error_message(), " (", CodeName(status), ")");
  }
  err << "relayctl: " << text << "\n";
  if (options.json) out << JsonError(JsonCode(status), text, rpc);
  return code;
}

// A context for one call: its deadline, and for Admin calls the token.
std::unique_ptr<grpc::ClientContext> NewContext(const CliOptions& options, bool admin = true) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
  if (admin && !options.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options.token));
  }
  return context;
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

// The same for answers that are not one response message.
int Print(const CliOptions& options, const JsonObject& json, const std::string& human,
          std::ostream& out) {
  out << (options.json ? json.ToString() : human);
  return kExitOk;
}

// --- meshes list ------------------------------------------------------------

relay::v1::ListMeshesRequest ListRequest(const CliOptions& options) {
  relay::v1::ListMeshesRequest request;
  request.set_page_size(options.page_size);
  request.set_page_token(options.page_token);
  switch (options.sort) {
    case MeshSort::kMesh:
      request.set_order(relay::v1::ListMeshesRequest::ORDER_MESH_ID);
      break;
    case MeshSort::kPeers:
      request.set_order(relay::v1::ListMeshesRequest::ORDER_PEERS);
      break;
    case MeshSort::kTraffic:
      request.set_order(relay::v1::ListMeshesRequest::ORDER_TRAFFIC);
      break;
  }
  return request;
}

// --all: every page, merged into `all` as if one page held them. A mesh that
// moved between pages while walking (its peer count changed) is kept once.
grpc::Status ListAllPages(const CliOptions& options, Admin::Stub& admin,
                          relay::v1::ListMeshesRequest request,
                          relay::v1::ListMeshesResponse& all) {
  std::set<std::string> seen_meshes;
  std::set<std::string> seen_tokens;
  while (true) {
    relay::v1::ListMeshesResponse page;
    grpc::Status status = admin.ListMeshes(NewContext(options).get(), request, &page);
    if (!status.ok()) return status;
    for (relay::v1::MeshSummary& mesh : *page.mutable_meshes()) {
      if (seen_meshes.insert(mesh.mesh_id()).second) *all.add_meshes() = std::move(mesh);
    }
    all.set_total_meshes(page.total_meshes());
    if (page.next_page_token().empty()) return grpc::Status::OK;
    // A relay that hands out a token twice would keep us walking forever.
    if (!seen_tokens.insert(page.next_page_token()).second) {
      return grpc::Status(
          grpc::StatusCode::INTERNAL,
          absl::StrCat("the relay handed out page token \"", page.next_page_token(), "\" twice"));
    }
    request.set_page_token(page.next_page_token());
  }
}

int MeshesList(const CliOptions& options, Admin::Stub& admin, absl::Time now, std::ostream& out,
               std::ostream& err) {
  relay::v1::ListMeshesResponse response;
  grpc::Status status =
      options.all_pages
          ? ListAllPages(options, admin, ListRequest(options), response)
          : admin.ListMeshes(NewContext(options).get(), ListRequest(options), &response);
  if (!status.ok()) return ReportFailure(options, "ListMeshes", status, out, err);
  if (options.json) return Print(options, response, "", out, err);
  out << FormatMeshList(response, now);
  // On stderr, so that a pipe gets the table alone.
  err << FormatMeshListFooter(response, options);
  return kExitOk;
}

// --- meshes show / close, peers kick ----------------------------------------

int MeshesShow(const CliOptions& options, Admin::Stub& admin, absl::Time now, std::ostream& out,
               std::ostream& err) {
  relay::v1::GetMeshRequest request;
  request.set_mesh_id(options.mesh_id);
  relay::v1::GetMeshResponse response;
  grpc::Status status = admin.GetMesh(NewContext(options).get(), request, &response);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    const std::string text =
        absl::StrCat("no live mesh ", JsonQuote(options.mesh_id), ", and no binding holds it");
    err << "relayctl: " << text << "\n";
    if (options.json) out << JsonError(JsonCode(status), text, "GetMesh");
    return kExitRemoteError;
  }
  if (!status.ok()) return ReportFailure(options, "GetMesh", status, out, err);
  return Print(options, response, options.json ? "" : FormatMeshDetail(response, now), out, err);
}

int MeshesClose(const CliOptions& options, Admin::Stub& admin, std::ostream& out,
                std::ostream& err) {
  relay::v1::CloseMeshRequest request;
  request.set_mesh_id(options.mesh_id);
  request.set_reason(options.reason);
  relay::v1::CloseMeshResponse response;
  grpc::Status status = admin.CloseMesh(NewContext(options).get(), request, &response);
  if (!status.ok()) return ReportFailure(options, "CloseMesh", status, out, err);
  JsonObject json;
  json.Add("mesh_id", options.mesh_id).Add("closed_peers", response.closed_peers());
  return Print(options, json, FormatCloseMesh(options.mesh_id, response), out);
}

int MeshesUnbind(const CliOptions& options, Admin::Stub& admin, std::ostream& out,
                 std::ostream& err) {
  relay::v1::UnbindMeshRequest request;
  request.set_mesh_id(options.mesh_id);
  request.set_reason(options.reason);
  relay::v1::UnbindMeshResponse response;
  grpc::Status status = admin.UnbindMesh(NewContext(options).get(), request, &response);
  if (!status.ok()) return ReportFailure(options, "UnbindMesh", status, out, err);
  JsonObject json;
  json.Add("mesh_id", options.mesh_id).AddBool("unbound", true);
  return Print(options, json, FormatUnbind(options.mesh_id), out);
}

int PeersKick(const CliOptions& options, Admin::Stub& admin, std::ostream& out, std::ostream& err) {
  relay::v1::KickPeerRequest request;
  request.set_mesh_id(options.mesh_id);
  request.set_node_id(options.node_id);
  request.set_reason(options.reason);
  relay::v1::KickPeerResponse response;
  grpc::Status status = admin.KickPeer(NewContext(options).get(), request, &response);
  if (!status.ok()) return ReportFailure(options, "KickPeer", status, out, err);
  // The response is empty: say what was kicked.
  JsonObject json;
  json.Add("mesh_id", options.mesh_id).Add("node_id", options.node_id);
  return Print(options, json, FormatKick(options.mesh_id, options.node_id), out);
}

// --- stats, health ----------------------------------------------------------

int Stats(const CliOptions& options, Admin::Stub& admin, std::ostream& out, std::ostream& err) {
  relay::v1::Stats response;
  grpc::Status status =
      admin.GetStats(NewContext(options).get(), relay::v1::GetStatsRequest(), &response);
  if (!status.ok()) return ReportFailure(options, "GetStats", status, out, err);
  out << (options.json ? FormatStatsJson(response) : FormatStats(response));
  return kExitOk;
}

int Health(const CliOptions& options, const std::shared_ptr<grpc::ChannelInterface>& channel,
           std::ostream& out, std::ostream& err) {
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::health::v1::HealthCheckRequest request;  // service "": the relay as a whole
  grpc::health::v1::HealthCheckResponse response;
  // No token: probes (Kubernetes exec, Docker HEALTHCHECK) should not need
  // the secret, and the relay never asks for it on health.
  grpc::Status status =
      health->Check(NewContext(options, /*admin=*/false).get(), request, &response);
  if (!status.ok()) return ReportFailure(options, "Health.Check", status, out, err);
  const int printed =
      Print(options, response, options.json ? "" : FormatHealth(response), out, err);
  if (printed != kExitOk) return printed;
  // Scripts and probes branch on the exit code alone.
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk
                                                                             : kExitRemoteError;
}

// --- drain, log-level -------------------------------------------------------

int Drain(const CliOptions& options, Admin::Stub& admin, std::ostream& out, std::ostream& err) {
  relay::v1::DrainRequest request;
  request.set_grace_seconds(options.grace_seconds);
  request.set_reason(options.reason);
  relay::v1::DrainResponse response;
  grpc::Status status = admin.Drain(NewContext(options).get(), request, &response);
  if (!status.ok()) return ReportFailure(options, "Drain", status, out, err);
  return Print(options, response, FormatDrain(response), out, err);
}

int LogLevel(const CliOptions& options, Admin::Stub& admin, std::ostream& out, std::ostream& err) {
  relay::v1::SetLogLevelRequest request;
  request.set_level(options.log_level);
  request.set_reason(options.reason);
  relay::v1::SetLogLevelResponse response;
  grpc::Status status = admin.SetLogLevel(NewContext(options).get(), request, &response);
  if (!status.ok()) return ReportFailure(options, "SetLogLevel", status, out, err);
  // The relay takes levels in any case ("DEBUG"); show the name it logs by.
  const std::string level = absl::AsciiStrToLower(options.log_level);
  JsonObject json;
  json.Add("previous", response.previous()).Add("level", level);
  return Print(options, json, FormatLogLevel(response.previous(), level), out);
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
  auto admin = Admin::NewStub(channel);
  switch (options.command) {
    case Command::kMeshesList:
      return MeshesList(options, *admin, now, out, err);
    case Command::kMeshesShow:
      return MeshesShow(options, *admin, now, out, err);
    case Command::kMeshesClose:
      return MeshesClose(options, *admin, out, err);
    case Command::kMeshesUnbind:
      return MeshesUnbind(options, *admin, out, err);
    case Command::kPeersKick:
      return PeersKick(options, *admin, out, err);
    case Command::kStats:
      return Stats(options, *admin, out, err);
    case Command::kDrain:
      return Drain(options, *admin, out, err);
    case Command::kLogLevel:
      return LogLevel(options, *admin, out, err);
    case Command::kHealth:
    case Command::kNone:
      break;
  }
  err << "relayctl: no command\n";
  return kExitUsage;
}

}  // namespace relay::cli
