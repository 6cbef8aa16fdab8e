#include "gateway/grpc/attach_service.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "asio/post.hpp"
#include "gateway/grpc/grpc_event_codec.h"
#include "server/util/log.h"

namespace relay::gateway {
namespace {

using relay::v1::ClientEvent;
using relay::v1::ServerEvent;

class AttachStream final : public grpc::ServerBidiReactor<ClientEvent, ServerEvent>,
                           private AttachStreamCalls {
 public:
  AttachStream(asio::io_context* io, core::RelayCore* core, const AttachOptions* options,
               std::string remote_address, bool accepting);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override { state_->OnWriteDone(ok); }
  void OnCancel() override { state_->OnCancel(); }
  void OnDone() override;

 private:
  void BeginWrite(const ServerEvent* event) override { StartWrite(event); }
  void BeginRead() override { StartRead(&in_); }
  void End(grpc::Status status) override { Finish(std::move(status)); }

  asio::io_context* const io_;
  core::RelayCore* const core_;
  const AttachOptions* const options_;
  const std::shared_ptr<AttachStreamState> state_;
  ClientEvent in_;
};

bool IsRelayedTraffic(const ClientEvent& event) {
  switch (event.event_case()) {
    case ClientEvent::kBroadcast:
    case ClientEvent::kDirect:
    case ClientEvent::kLlmRequest:
    case ClientEvent::kLlmResponse:
      return true;
    default:
      return false;
  }
}

// "127.0.0.1:5000" / "[::1]:5000" -> "127.0.0.1" / "::1"
std::string ClientIpOf(absl::string_view remote) {
  if (absl::StartsWith(remote, "[")) {
    const std::size_t end = remote.find(']');
    return std::string(remote.substr(1, end == absl::string_view::npos ? end : end - 1));
  }
  return std::string(remote.substr(0, remote.rfind(':')));
}

// "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000" -> "127.0.0.1:5000" / "[::1]:5000"
std::string RemoteAddress(const std::string& peer) {
  for (absl::string_view prefix : {"ipv4:", "ipv6:"}) {
    if (absl::StartsWith(peer, prefix)) return peer.substr(prefix.size());
  }
  return peer;
}

AttachStream::AttachStream(asio::io_context* io, core::RelayCore* core,
                           const AttachOptions* options, std::string remote_address, bool accepting)
    : io_(io),
      core_(core),
      options_(options),
      state_(std::make_shared<AttachStreamState>(
          options->metrics != nullptr ? &options->metrics->grpc_bytes : nullptr)) {
  state_->stream = this;
  if (!accepting) {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                      "the relay is shutting down; reconnect in a few seconds"));
    return;
  }
  StartRead(&in_);
  asio::post(*io_, [io = io_, state = state_, core = core_, options = options_,
                    remote = std::move(remote_address)]() mutable {
    if (core->draining() || core->OpenConnections() >= options->max_connections) {
      std::lock_guard<std::mutex> lock(state->mu);
      state->closing = true;
      state->FinishLocked(
          core->draining() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                          "the relay is shutting down; reconnect in a few seconds")
                           : grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                          "the relay has reached its connection limit"));
      return;
    }
    state->core_id =
        core->Connect(core::ConnectionInfo{remote, "grpc", ClientIpOf(remote)},
                      std::make_shared<AttachSink>(io, state, options->max_queued_bytes));
    log::Event(log::Level::kInfo, "connect")
        .Uint("conn", state->core_id)
        .Str("remote", remote)
        .Str("transport", "grpc");
  });
}

void AttachStream::OnReadDone(bool ok) {
  if (!ok) {
    state_->OnReadFailed();
    return;
  }
  const auto received_at = std::chrono::steady_clock::now();
  auto event = std::make_shared<ClientEvent>(std::move(in_));
  in_.Clear();
  const std::size_t size = event->ByteSizeLong();
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->bytes_in += size;
  }
  if (options_->metrics != nullptr) {
    options_->metrics->grpc_bytes.received.fetch_add(size, std::memory_order_relaxed);
  }
  asio::post(*io_, [state = state_, core = core_, options = options_, event, received_at, size]() {
    if (state->core_id != 0) {
      ClientEvent normalized;
      DecodeFailure failure;
      if (NormalizeGrpcEvent(*event, options->max_mesh_id_bytes, &normalized, &failure)) {
        const bool relayed = IsRelayedTraffic(normalized);
        core->Handle(state->core_id, std::move(normalized), size);
        if (options->metrics != nullptr && relayed) {
          options->metrics->relay_latency.Observe(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - received_at)
                  .count());
        }
      } else {
        core->RejectUndecodable(state->core_id, failure.code, failure.message,
                                failure.request_id_json, size);
      }
    }
    state->ReadNext();
  });
}

void AttachStream::OnDone() {
  const core::CloseReason reason = state_->Detach();
  asio::post(*io_, [state = state_, core = core_, reason] {
    if (state->core_id == 0) return;
    log::Debug("grpc peer ", state->core_id, " detached: ", core::CloseReasonName(reason));
    core->Disconnect(state->core_id, reason);
  });
  delete this;
}

}  // namespace

AttachService::AttachService(asio::io_context* io, core::RelayCore* core, AttachOptions options)
    : io_(io), core_(core), options_(options) {}

grpc::ServerBidiReactor<ClientEvent, ServerEvent>* AttachService::Attach(
    grpc::CallbackServerContext* context) {
  return new AttachStream(io_, core_, &options_, RemoteAddress(context->peer()), accepting_.load());
}

}  // namespace relay::gateway
