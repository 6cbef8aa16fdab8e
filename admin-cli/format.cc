// Human output of relayctl (see format.h). Tables go through FormatTable.
#include "admin-cli/format.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "admin-cli/json_output.h"
#include "admin-cli/table.h"

namespace relay::cli {
namespace {

// Empty cells would shift the eye to the next column; "-" marks "none".
std::string OrDash(std::string text) { return text.empty() ? "-" : std::move(text); }

// The instance id a relay without NATS gives its peers (core::NullBackplane).
bool IsClusterInstance(const std::string& instance) {
  return !instance.empty() && instance != "local";
}

}  // namespace

std::string FormatAge(absl::Duration age) {
  const int64_t seconds = absl::ToInt64Seconds(age);
  if (seconds <= 0) return "0s";
  if (seconds < 60) return absl::StrCat(seconds, "s");
  if (seconds < 60 * 60) return absl::StrCat(seconds / 60, "m");
  if (seconds < 24 * 60 * 60) return absl::StrCat(seconds / (60 * 60), "h");
  return absl::StrCat(seconds / (24 * 60 * 60), "d");
}

std::string FormatBytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return absl::StrCat(bytes, "B");
  // Tenths of the unit, in integers: no rounding up to "1024KiB".
  std::uint64_t whole = bytes / 1024;
  std::uint64_t tenths = (bytes % 1024) * 10 / 1024;
  std::size_t unit = 0;
  while (whole >= 1024 && unit + 1 < std::size(kUnits)) {
    tenths = (whole % 1024) * 10 / 1024;
    whole /= 1024;
    ++unit;
  }
  if (whole >= 10) return absl::StrCat(whole, kUnits[unit]);
  return absl::StrCat(whole, ".", tenths, kUnits[unit]);
}

std::string FormatAgeSince(double epoch_seconds, absl::Time now) {
  // 0 is proto3's "unset": no relay stamps the epoch itself.
  if (!std::isfinite(epoch_seconds) || epoch_seconds <= 0) return "-";
  return FormatAge(now - (absl::UnixEpoch() + absl::Seconds(epoch_seconds)));
}

std::string FormatMeshList(const relay::v1::ListMeshesResponse& response, absl::Time now) {
  std::vector<TableRow> rows;
  for (const relay::v1::MeshSummary& mesh : response.meshes()) {
    rows.push_back({mesh.mesh_id(), absl::StrCat(mesh.peer_count()),
                    FormatAgeSince(mesh.created_at(), now), absl::StrCat(mesh.messages_relayed())});
  }
  return FormatTable({"MESH", "PEERS", "AGE", "MESSAGES"}, rows);
}

std::string FormatMeshListFooter(const relay::v1::ListMeshesResponse& response,
                                 const CliOptions& options) {
  const auto shown = static_cast<std::uint32_t>(response.meshes_size());
  if (response.next_page_token().empty()) {
    if (shown >= response.total_meshes()) return "";
    return absl::StrCat("(", shown, " of ", response.total_meshes(), " meshes, last page)\n");
  }
  std::string next = "relayctl meshes list";
  if (options.sort != MeshSort::kMesh) {
    absl::StrAppend(&next, " --sort ", MeshSortName(options.sort));
  }
  if (options.page_size != kDefaultPageSize) {
    absl::StrAppend(&next, " --page-size ", options.page_size);
  }
  absl::StrAppend(&next, " --page-token ", response.next_page_token());
  return absl::StrCat("(", shown, " of ", response.total_meshes(), " meshes) next page: ", next,
                      "\n(or --all for every page)\n");
}

std::string FormatMeshAuth(const relay::v1::MeshAuthInfo& auth, bool has_peers, absl::Time now) {
  using Info = relay::v1::MeshAuthInfo;
  if (!auth.unavailable().empty()) {
    return absl::StrCat("Auth: unknown (", Printable(auth.unavailable()), ")\n");
  }
  switch (auth.level()) {
    case Info::LEVEL_OPEN:
      return "Auth: open (no token bound it: anyone may join)\n";
    case Info::LEVEL_TOKEN: {
      std::string out = absl::StrCat(
          "Auth: token-bound, since ",
          auth.bound_at() > 0 ? FormatAgeSince(auth.bound_at(), now) : std::string("unknown"));
      if (auth.binding_expires_at() > 0) {
        absl::StrAppend(&out, "; empty, forgotten in ",
                        FormatAge(absl::Seconds(auth.grace_left_seconds())),
                        " unless its token rejoins (relayctl meshes unbind releases it now)");
      } else if (has_peers) {
        absl::StrAppend(&out, "; held while it has peers");
      } else {
        // The store has no grace for it yet (in a cluster, the instance the
        // last peer left through writes it).
        absl::StrAppend(&out, "; empty, no grace started yet (relayctl meshes unbind releases it)");
      }
      return out + "\n";
    }
    case Info::LEVEL_SIGNED:
      return absl::StrCat("Auth: signed by a mesh key, ", auth.founders(),
                          auth.founders() == 1 ? " founder" : " founders", ", last used ",
                          FormatAgeSince(auth.last_used_at(), now), " ago\n");
    default:
      return "";  // a relay from before auth was shown
  }
}

std::string FormatMeshDetail(const relay::v1::GetMeshResponse& response, absl::Time now) {
  const relay::v1::MeshSummary& mesh = response.mesh();
  // The mesh id comes from a client's URL: no escape sequences to the terminal.
  std::string out =
      absl::StrCat("Mesh: ", Printable(mesh.mesh_id()), "  Peers: ", mesh.peer_count(),
                   "  Age: ", FormatAgeSince(mesh.created_at(), now),
                   "  Messages: ", mesh.messages_relayed(), "\n");
  absl::StrAppend(&out, FormatMeshAuth(response.auth(), mesh.peer_count() > 0, now), "\n");
  if (response.peers().empty()) return out + "(no peers)\n";
  // A relay alone holds every peer itself (instance "local"): the INSTANCE
  // column only appears when a cluster answered.
  const bool clustered =
      std::any_of(response.peers().begin(), response.peers().end(),
                  [](const relay::v1::PeerDetail& p) { return IsClusterInstance(p.instance()); });
  std::vector<TableRow> rows;
  for (const relay::v1::PeerDetail& peer : response.peers()) {
    TableRow row = {
        peer.node_id(), OrDash(peer.name()), OrDash(absl::StrJoin(peer.capabilities(), ",")),
        // A resume client whose connection dropped: still a member,
        // its frames kept, for how long so far.
        peer.suspended() ? absl::StrCat(OrDash(peer.transport()), " (suspended ",
                                        FormatAge(absl::Seconds(peer.suspended_seconds())), ")")
                         : OrDash(peer.transport()),
        OrDash(peer.remote_address()), FormatAgeSince(peer.joined_at(), now),
        absl::StrCat(peer.messages_in()), absl::StrCat(peer.messages_out()),
        FormatBytes(peer.bytes_in()), FormatBytes(peer.bytes_out()),
        FormatBytes(peer.queued_bytes())};
    if (clustered) row.insert(row.begin() + 1, OrDash(peer.instance()));
    rows.push_back(std::move(row));
  }
  TableRow header = {"NODE",    "NAME",     "CAPABILITIES", "TRANSPORT", "REMOTE", "JOINED",
                     "MSGS_IN", "MSGS_OUT", "BYTES_IN",     "BYTES_OUT", "QUEUED"};
  if (clustered) header.insert(header.begin() + 1, "INSTANCE");
  out += FormatTable(header, rows);
  return out;
}

std::string FormatStats(const relay::v1::Stats& stats) {
  const absl::Duration uptime = absl::Seconds(stats.uptime_seconds());
  std::vector<std::pair<std::string, std::string>> lines = {
      {"version", OrDash(stats.version())},
      {"uptime_seconds", absl::StrCat(absl::ToInt64Seconds(uptime), " (", FormatAge(uptime), ")")},
      {"active_meshes", absl::StrCat(stats.active_meshes())},
      {"active_connections", absl::StrCat(stats.registered_peers())},
      {"open_sockets", absl::StrCat(stats.open_sockets())},
      {"total_connections", absl::StrCat(stats.total_connections())},
      {"total_messages_received", absl::StrCat(stats.messages_received())},
      {"total_messages_relayed", absl::StrCat(stats.messages_relayed())},
      {"total_llm_requests", absl::StrCat(stats.llm_requests())},
      {"auth_records", absl::StrCat(stats.auth_records())},
  };
  if (!stats.instance_id().empty()) {
    lines.insert(lines.begin() + 1, {"instance_id", stats.instance_id()});  // cluster mode
  }
  if (stats.has_cluster()) {
    // The cluster's totals first, then each instance (leases, ~1 s old).
    const relay::v1::ClusterStats& cluster = stats.cluster();
    lines.emplace_back("cluster.instances", absl::StrCat(cluster.instances_size()));
    lines.emplace_back("cluster.open_sockets", absl::StrCat(cluster.open_sockets()));
    lines.emplace_back("cluster.active_connections", absl::StrCat(cluster.registered_peers()));
    lines.emplace_back("cluster.total_messages_relayed", absl::StrCat(cluster.messages_relayed()));
    for (const relay::v1::InstanceStats& instance : cluster.instances()) {
      lines.emplace_back(
          absl::StrCat("cluster.instance.", instance.instance_id()),
          absl::StrCat(instance.open_sockets(), " sockets, ", instance.registered_peers(),
                       " peers, ", instance.messages_relayed(), " relayed"));
    }
  }
  for (const relay::v1::ErrorCount& error : stats.errors()) {
    lines.emplace_back(absl::StrCat("errors.", error.code()), absl::StrCat(error.count()));
  }
  for (const relay::v1::CloseCount& close : stats.closes()) {
    lines.emplace_back(absl::StrCat("closes.", close.reason()), absl::StrCat(close.count()));
  }
  // Connections turned away before they opened, refusals by per-client
  // bound, and deliveries that never reached a peer: what an operator looks
  // at when clients report being cut off.
  for (const relay::v1::RefusalCount& refusal : stats.refused()) {
    lines.emplace_back(absl::StrCat("refused.", refusal.reason()), absl::StrCat(refusal.count()));
  }
  for (const relay::v1::LimitCount& limit : stats.limits()) {
    lines.emplace_back(absl::StrCat("limits.", limit.limit()), absl::StrCat(limit.count()));
  }
  for (const relay::v1::DropCount& drop : stats.drops()) {
    lines.emplace_back(absl::StrCat("drops.", drop.reason()), absl::StrCat(drop.count()));
  }
  const relay::v1::ResumeStats& resume = stats.resume();
  for (const auto& [key, value] : std::vector<std::pair<const char*, std::uint64_t>>{
           {"sessions", resume.sessions()},
           {"suspended", resume.suspended()},
           {"buffered_bytes", resume.buffered_bytes()},
           {"buffered_frames", resume.buffered_frames()},
           {"resumed", resume.resumed()},
           {"resume_refused", resume.resume_refused()},
           {"replayed_frames", resume.replayed_frames()},
           {"duplicates", resume.duplicates()}}) {
    lines.emplace_back(absl::StrCat("resume.", key), absl::StrCat(value));
  }
  for (const relay::v1::SessionEndCount& end : resume.ended()) {
    lines.emplace_back(absl::StrCat("resume.ended.", end.reason()), absl::StrCat(end.count()));
  }

  std::size_t key_width = 0;
  for (const auto& [key, value] : lines) key_width = std::max(key_width, key.size());
  std::string out;
  for (const auto& [key, value] : lines) {
    absl::StrAppend(&out, key, ":", std::string(key_width - key.size() + 1, ' '), value, "\n");
  }
  return out;
}

namespace {

// {"name": count, ...} of a repeated (name, count) field, in its order.
template <typename Counts, typename Name>
JsonObject CountsObject(const Counts& counts, Name name) {
  JsonObject object;
  for (const auto& entry : counts) object.AddUint(name(entry), entry.count());
  return object;
}

}  // namespace

std::string FormatStatsJson(const relay::v1::Stats& stats) {
  JsonObject json;
  json.AddDouble("uptime_seconds", stats.uptime_seconds()).Add("version", stats.version());
  if (!stats.instance_id().empty()) json.Add("instance_id", stats.instance_id());
  json.AddUint("active_meshes", stats.active_meshes())
      .AddUint("active_connections", stats.registered_peers())
      .AddUint("open_sockets", stats.open_sockets())
      .AddUint("total_connections", stats.total_connections())
      .AddUint("total_messages_received", stats.messages_received())
      .AddUint("total_messages_relayed", stats.messages_relayed())
      .AddUint("total_llm_requests", stats.llm_requests())
      .AddObject("errors", CountsObject(stats.errors(), [](const auto& e) { return e.code(); }))
      .AddObject("closes", CountsObject(stats.closes(), [](const auto& c) { return c.reason(); }))
      .AddObject("refused", CountsObject(stats.refused(), [](const auto& r) { return r.reason(); }))
      .AddObject("limits", CountsObject(stats.limits(), [](const auto& l) { return l.limit(); }))
      .AddObject("drops", CountsObject(stats.drops(), [](const auto& d) { return d.reason(); }))
      .AddUint("auth_records", stats.auth_records());
  const relay::v1::ResumeStats& resume = stats.resume();
  JsonObject resume_json;
  resume_json.AddUint("sessions", resume.sessions())
      .AddUint("suspended", resume.suspended())
      .AddUint("buffered_bytes", resume.buffered_bytes())
      .AddUint("buffered_frames", resume.buffered_frames())
      .AddUint("resumed", resume.resumed())
      .AddUint("resume_refused", resume.resume_refused())
      .AddUint("replayed_frames", resume.replayed_frames())
      .AddUint("duplicates", resume.duplicates())
      .AddObject("ended", CountsObject(resume.ended(), [](const auto& e) { return e.reason(); }));
  json.AddObject("resume", std::move(resume_json));
  if (stats.has_cluster()) {
    const relay::v1::ClusterStats& cluster = stats.cluster();
    std::string instances = "[";
    for (const relay::v1::InstanceStats& instance : cluster.instances()) {
      if (instances.size() > 1) instances += ',';
      JsonObject one;
      one.Add("instance_id", instance.instance_id())
          .AddDouble("started_at", instance.started_at())
          .AddUint("open_sockets", instance.open_sockets())
          .AddUint("active_connections", instance.registered_peers())
          .AddUint("total_messages_relayed", instance.messages_relayed())
          // relayctl 1.0's names, kept for the scripts that read them.
          .AddUint("registered_peers", instance.registered_peers())
          .AddUint("messages_relayed", instance.messages_relayed());
      instances += one.Compact();
    }
    instances += ']';
    JsonObject totals;
    totals.AddRaw("instances", std::move(instances))
        .AddUint("open_sockets", cluster.open_sockets())
        .AddUint("active_connections", cluster.registered_peers())
        .AddUint("total_messages_relayed", cluster.messages_relayed())
        .AddUint("registered_peers", cluster.registered_peers())
        .AddUint("messages_relayed", cluster.messages_relayed());
    json.AddObject("cluster", totals);
  }
  // relayctl 1.0's names (the gRPC field names), kept for the scripts that
  // read them; new scripts use the /stats names above.
  json.AddUint("registered_peers", stats.registered_peers())
      .AddUint("messages_received", stats.messages_received())
      .AddUint("messages_relayed", stats.messages_relayed())
      .AddUint("llm_requests", stats.llm_requests());
  return json.ToString();
}

std::string FormatHealth(const grpc::health::v1::HealthCheckResponse& response) {
  std::string name = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
  // A status newer than our copy of health.proto has no name here.
  if (name.empty()) name = absl::StrCat("UNKNOWN(", static_cast<int>(response.status()), ")");
  return absl::StrCat(name, "\n");
}

std::string FormatKick(absl::string_view mesh_id, absl::string_view node_id) {
  return absl::StrCat("kicked ", node_id, " from ", mesh_id, "\n");
}

std::string FormatCloseMesh(absl::string_view mesh_id,
                            const relay::v1::CloseMeshResponse& response) {
  return absl::StrCat("closed mesh ", mesh_id, ": ", response.closed_peers(),
                      response.closed_peers() == 1 ? " peer" : " peers", " closed\n");
}

std::string FormatUnbind(absl::string_view mesh_id) {
  return absl::StrCat("unbound mesh ", Printable(std::string(mesh_id)),
                      ": its next registrant binds it anew (or leaves it open)\n");
}

std::string FormatDrain(const relay::v1::DrainResponse& response) {
  return absl::StrCat("draining: ", response.connections(),
                      response.connections() == 1 ? " connection" : " connections",
                      " told to reconnect elsewhere; closed in ", response.grace_seconds(),
                      "s (or once all left), then the relay exits\n");
}

std::string FormatLogLevel(absl::string_view previous, absl::string_view level) {
  return absl::StrCat("log level: ", OrDash(std::string(previous)), " -> ", level, "\n");
}

}  // namespace relay::cli
