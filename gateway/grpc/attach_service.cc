#include "gateway/grpc/attach_service.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "asio/post.hpp"
#include "gateway/grpc/grpc_event_codec.h"
#include "gateway/grpc/grpc_peer_address.h"
#include "gateway/net/transport.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::gateway {
namespace {

using relay::v1::ClientEvent;
using relay::v1::ServerEvent;

// Why a stream was turned away before the core heard of it.
absl::Status DrainingStatus() {
  return absl::UnavailableError("the relay is shutting down; reconnect in a few seconds");
}

// absl and gRPC number the canonical codes alike.
grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

class AttachStream final : public grpc::ServerBidiReactor<ClientEvent, ServerEvent>,
                           private AttachStreamCalls {
 public:
  // `admitted` holds the stream's connection slot, or why it is refused: it
  // then ends at once with that status.
  AttachStream(asio::io_context* io, core::RelayCore* core, const AttachOptions* options,
               GrpcPeerAddress peer, absl::StatusOr<ConnectionSlot> admitted);

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

AttachStream::AttachStream(asio::io_context* io, core::RelayCore* core,
                           const AttachOptions* options, GrpcPeerAddress peer,
                           absl::StatusOr<ConnectionSlot> admitted)
    : io_(io),
      core_(core),
      options_(options),
      state_(std::make_shared<AttachStreamState>(
          options->metrics != nullptr ? &options->metrics->grpc_bytes : nullptr)) {
  state_->stream = this;
  if (!admitted.ok()) {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->FinishLocked(ToGrpcStatus(admitted.status()));
    return;
  }
  state_->slot = *std::move(admitted);
  StartRead(&in_);
  asio::post(*io_, [io = io_, state = state_, core = core_, options = options_,
                    peer = std::move(peer)]() mutable {
    if (core->draining()) {
      options->refused->Add(Refusal::kDraining);
      state->slot.Release();
      std::lock_guard<std::mutex> lock(state->mu);
      state->closing = true;
      state->FinishLocked(ToGrpcStatus(DrainingStatus()));
      return;
    }
    state->core_id = core->Connect(
        core::ConnectionInfo{peer.remote, std::string(kTransportGrpc), peer.client_ip},
        std::make_shared<AttachSink>(io, state, options->max_queued_bytes));
    log::Event(log::Level::kInfo, log::LogEvent::kConnect)
        .Uint("conn", state->core_id)
        .Str("remote", peer.remote)
        .Str("transport", kTransportGrpc);
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
      if (NormalizeGrpcEvent(*event, limits::kMaxIdBytes, &normalized, &failure)) {
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
    if (state->core_id != 0) {
      log::Debug("grpc peer ", state->core_id, " detached: ", core::CloseReasonName(reason));
      core->Disconnect(state->core_id, reason);
    }
    // Only now: the slot counts until the core no longer holds the
    // connection, as a WebSocket's does.
    state->slot.Release();
  });
  delete this;
}

}  // namespace

AttachService::AttachService(asio::io_context* io, core::RelayCore* core, AttachOptions options)
    : io_(io), core_(core), options_(options) {}

grpc::ServerBidiReactor<ClientEvent, ServerEvent>* AttachService::Attach(
    grpc::CallbackServerContext* context) {
  GrpcPeerAddress peer = ParseGrpcPeer(context->peer());
  if (!accepting_.load()) {
    options_.refused->Add(Refusal::kDraining);
    return new AttachStream(io_, core_, &options_, std::move(peer), DrainingStatus());
  }
  // Taken here, on gRPC's thread, so that a burst of streams cannot all pass
  // before the loop counts them.
  absl::StatusOr<ConnectionSlot> slot = options_.slots->Acquire(peer.client_ip);
  if (!slot.ok()) {
    // The first refusal and every 100th (of both transports): a storm of
    // them must not flood the log.
    if (const std::uint64_t n = options_.refused->Add(Refusal::kTooManyConnections); n % 100 == 1) {
      log::Event(log::Level::kWarn, log::LogEvent::kConnectionLimit)
          .Str("client_ip", peer.client_ip)
          .Str("transport", kTransportGrpc)
          .Str("why", slot.status().message())
          .Uint("refused_total", n);
    }
  }
  return new AttachStream(io_, core_, &options_, std::move(peer), std::move(slot));
}

}  // namespace relay::gateway
