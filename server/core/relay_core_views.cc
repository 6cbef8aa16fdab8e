// RelayCore's read views, for HTTP (/health, /stats) and the Admin API:
// counts, the mesh list and one mesh's members. Nothing here changes state.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/core/member_fields.h"
#include "server/core/relay_core.h"
#include "server/core/text_rules.h"

namespace relay::core {

std::size_t RelayCore::LiveMeshes() const {
  std::size_t live = 0;
  for (const auto& [id, mesh] : meshes_) live += mesh->roster.empty() ? 0 : 1;
  return live;
}

HealthCounts RelayCore::Health() const { return HealthCounts{LiveMeshes(), registered_peers_}; }

relay::v1::Stats RelayCore::GetStats() const {
  relay::v1::Stats stats;
  stats.set_uptime_seconds(absl::ToDoubleSeconds(clock_->Now() - started_at_));
  if (backplane_->clustered()) stats.set_instance_id(backplane_->instance_id());
  stats.set_active_meshes(static_cast<std::uint32_t>(LiveMeshes()));
  stats.set_open_sockets(static_cast<std::uint32_t>(OpenConnections()));
  stats.set_registered_peers(static_cast<std::uint32_t>(registered_peers_));
  stats.set_auth_records(static_cast<std::uint32_t>(auth_.records()));
  stats.set_total_connections(total_connections_);
  stats.set_messages_received(messages_received_);
  stats.set_messages_relayed(messages_relayed_);
  stats.set_llm_requests(llm_requests_);
  for (ErrorCode code : kAllErrorCodes) {
    auto* count = stats.add_errors();
    count->set_code(std::string(ErrorCodeName(code)));
    count->set_count(errors_[static_cast<std::size_t>(code)]);
  }
  for (std::size_t i = 0; i < kLimitCount; ++i) {
    auto* count = stats.add_limits();
    count->set_limit(std::string(kLimitNames[i]));
    count->set_count(limit_hits_.Get(static_cast<Limit>(i)));
  }
  for (std::size_t i = 0; i < kDropReasonCount; ++i) {
    auto* count = stats.add_drops();
    count->set_reason(std::string(kDropReasonNames[i]));
    count->set_count(drops_.Get(static_cast<DropReason>(i)));
  }
  for (std::size_t i = 0; i < kCloseReasonCount; ++i) {
    auto* count = stats.add_closes();
    count->set_reason(std::string(CloseReasonName(static_cast<CloseReason>(i))));
    count->set_count(closes_[i]);
  }
  relay::v1::ResumeStats* resume = stats.mutable_resume();
  resume->set_sessions(static_cast<std::uint32_t>(sessions_.size()));
  resume->set_suspended(static_cast<std::uint32_t>(suspended_sessions_));
  resume->set_buffered_bytes(resume_budget_.bytes);
  resume->set_buffered_frames(resume_budget_.frames);
  resume->set_resumed(resumes_);
  resume->set_resume_refused(resumes_refused_);
  resume->set_replayed_frames(replayed_frames_);
  resume->set_duplicates(duplicate_frames_);
  for (std::size_t i = 0; i < kSessionEndCount; ++i) {
    auto* count = resume->add_ended();
    count->set_reason(std::string(kSessionEndNames[i]));
    count->set_count(sessions_ended_.Get(static_cast<SessionEnd>(i)));
  }
#ifdef RELAY_VERSION
  stats.set_version(RELAY_VERSION);
#endif
  return stats;
}

relay::v1::MeshSummary RelayCore::Summarize(const Mesh& mesh) const {
  relay::v1::MeshSummary summary;
  summary.set_mesh_id(mesh.id);
  summary.set_peer_count(static_cast<std::uint32_t>(mesh.roster.size()));
  summary.set_created_at(ToEpochSeconds(mesh.created_at));
  summary.set_messages_relayed(mesh.messages_relayed);
  return summary;
}

absl::StatusOr<relay::v1::ListMeshesResponse> RelayCore::ListMeshesPage(
    const relay::v1::ListMeshesRequest& request) const {
  std::size_t offset = 0;
  if (!request.page_token().empty() && !absl::SimpleAtoi(request.page_token(), &offset)) {
    return absl::InvalidArgumentError("page_token was not handed out by this relay");
  }
  std::vector<const Mesh*> order;
  order.reserve(meshes_.size());
  for (const auto& [id, mesh] : meshes_) {
    if (!mesh->roster.empty()) order.push_back(mesh.get());  // by mesh_id
  }
  using Request = relay::v1::ListMeshesRequest;
  if (request.order() == Request::ORDER_PEERS) {
    std::stable_sort(order.begin(), order.end(), [](const Mesh* a, const Mesh* b) {
      return a->roster.size() > b->roster.size();
    });
  } else if (request.order() == Request::ORDER_TRAFFIC) {
    std::stable_sort(order.begin(), order.end(), [](const Mesh* a, const Mesh* b) {
      return a->messages_relayed > b->messages_relayed;
    });
  }
  relay::v1::ListMeshesResponse response;
  response.set_total_meshes(static_cast<std::uint32_t>(order.size()));
  offset = std::min(offset, order.size());  // a token past the end: an empty last page
  const std::size_t end =
      request.page_size() == 0
          ? order.size()
          : offset + std::min<std::size_t>(request.page_size(), order.size() - offset);
  for (std::size_t i = offset; i < end; ++i) *response.add_meshes() = Summarize(*order[i]);
  if (end < order.size()) response.set_next_page_token(absl::StrCat(end));
  return response;
}

absl::StatusOr<relay::v1::GetMeshResponse> RelayCore::GetMesh(absl::string_view mesh_id) const {
  auto it = meshes_.find(std::string(mesh_id));
  if (it == meshes_.end() || it->second->roster.empty()) {
    return absl::NotFoundError(absl::StrCat("no live mesh ", QuoteForMessage(mesh_id)));
  }
  relay::v1::GetMeshResponse response;
  *response.mutable_mesh() = Summarize(*it->second);
  for (const auto& [key, member] : it->second->roster.in_join_order()) {
    auto* detail = response.add_peers();
    SetMemberFields(*member, *detail);
    detail->set_instance(member->instance());
    if (!member->local()) continue;  // its own instance knows its connection
    const Connection* peer = &ConnectionOf(*member);
    detail->set_remote_address(peer->info.remote_address);
    detail->set_transport(peer->info.transport);
    detail->set_messages_in(peer->messages_in);
    detail->set_messages_out(peer->messages_out);
    const PeerSink::Counters counters = peer->sink->counters();
    detail->set_bytes_in(counters.bytes_in);
    detail->set_bytes_out(counters.bytes_out);
    detail->set_queued_bytes(counters.queued_bytes);
    if (peer->suspended && peer->session != nullptr) {
      detail->set_suspended(true);
      detail->set_suspended_seconds(
          absl::ToDoubleSeconds(clock_->Now() - peer->session->suspended_at()));
    }
  }
  return response;
}

}  // namespace relay::core
