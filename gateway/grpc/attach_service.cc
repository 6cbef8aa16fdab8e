#include "gateway/grpc/attach_service.h"

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "asio/post.hpp"
#include "gateway/grpc/grpc_event_codec.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::gateway {
namespace {

using relay::v1::ClientEvent;
using relay::v1::ServerEvent;

class AttachStream;

// What the gRPC callbacks, the loop-side sink and the loop's posted work
// share. `stream` is null once gRPC is done with the stream (OnDone): from
// then on nothing may touch it. Every reactor call made off gRPC's own
// callbacks goes through here, under `mu`.
struct StreamState {
  std::mutex mu;
  AttachStream* stream = nullptr;
  bool finished = false;  // Finish() called
  bool closing = false;   // the relay or the client ended it; finish once writes are done
  grpc::Status finish_status;
  std::deque<core::ServerEventPtr> queue;  // front() is being written when `writing`
  bool writing = false;
  std::size_t queued_bytes = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::optional<core::CloseReason> close_reason;  // set when the relay closed it
  bool cancelled = false;

  // Loop thread only.
  core::ConnectionId core_id = 0;

  void FinishLocked(grpc::Status status);
  void StartWriteLocked();
  // Ends the stream with `status` after what is queued (or at once, dropping
  // the queue, when `drop_queue`).
  void CloseLocked(grpc::Status status, bool drop_queue);
};

class AttachStream final : public grpc::ServerBidiReactor<ClientEvent, ServerEvent> {
 public:
  AttachStream(asio::io_context* io, core::RelayCore* core, const AttachOptions* options,
               std::string remote_address, bool accepting);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  ClientEvent* read_buffer() { return &in_; }

 private:
  asio::io_context* const io_;
  core::RelayCore* const core_;
  const AttachOptions* const options_;
  const std::shared_ptr<StreamState> state_ = std::make_shared<StreamState>();
  ClientEvent in_;
};

// The core's handle on a stream.
class AttachSink final : public core::PeerSink {
 public:
  AttachSink(asio::io_context* io, std::shared_ptr<StreamState> state, std::size_t max_queued_bytes)
      : io_(io), state_(std::move(state)), max_queued_bytes_(max_queued_bytes) {}

  core::SendResult Send(const core::ServerEventPtr& event) override {
    using core::DropReason;
    using core::SendResult;
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->closing || state_->finished) return SendResult::Dropped(DropReason::kClosing);
    const std::size_t size = event->ByteSizeLong();
    if (!state_->queue.empty() && state_->queued_bytes + size > max_queued_bytes_) {
      log::Event(log::Level::kWarn, core::CloseReasonName(core::CloseReason::kSlowConsumer))
          .Uint("conn", state_->core_id)
          .Uint("queued_bytes", state_->queued_bytes)
          .Uint("limit_bytes", max_queued_bytes_);
      state_->close_reason = core::CloseReason::kSlowConsumer;
      state_->CloseLocked(AttachCloseStatus(core::CloseReason::kSlowConsumer),
                          /*drop_queue=*/true);
      return SendResult::Dropped(DropReason::kSlowConsumer);
    }
    state_->queue.push_back(event);
    state_->queued_bytes += size;
    if (!state_->writing) state_->StartWriteLocked();
    return SendResult::Queued();
  }

  void Close(core::CloseReason reason) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->closing || state_->finished) return;
    state_->close_reason = reason;
    state_->CloseLocked(AttachCloseStatus(reason), /*drop_queue=*/false);
  }

  Counters counters() const override {
    std::lock_guard<std::mutex> lock(state_->mu);
    return {state_->bytes_in, state_->bytes_out, state_->queued_bytes};
  }

  // The application cannot ping one stream: HTTP/2 keepalive (the server's
  // GRPC_ARG_KEEPALIVE_* settings) breaks the stream of a peer that
  // vanished. A stream it has not broken is alive.
  bool Probe(absl::Duration /*timeout*/, std::function<void(bool)> done) override {
    bool alive;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      alive = !state_->closing && !state_->finished && !state_->cancelled;
    }
    asio::post(*io_, [done = std::move(done), alive] { done(alive); });
    return true;
  }

 private:
  asio::io_context* const io_;
  const std::shared_ptr<StreamState> state_;
  const std::size_t max_queued_bytes_;
};

void StreamState::FinishLocked(grpc::Status status) {
  if (finished || stream == nullptr) return;
  finished = true;
  stream->Finish(std::move(status));
}

void StreamState::StartWriteLocked() {
  if (finished || stream == nullptr || queue.empty()) return;
  writing = true;
  stream->StartWrite(queue.front().get());
}

void StreamState::CloseLocked(grpc::Status status, bool drop_queue) {
  closing = true;
  finish_status = std::move(status);
  if (drop_queue) {
    // Keep only the event being written: its buffer is gRPC's until done.
    while (queue.size() > (writing ? 1u : 0u)) {
      queued_bytes -= queue.back()->ByteSizeLong();
      queue.pop_back();
    }
  }
  if (!writing) FinishLocked(finish_status);
}

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
                           const AttachOptions* options, std::string remote_address,
                           bool accepting)
    : io_(io), core_(core), options_(options) {
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
      state->FinishLocked(core->draining()
                              ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                             "the relay is shutting down; reconnect in a few seconds")
                              : grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                             "the relay has reached its connection limit"));
      return;
    }
    state->core_id =
        core->Connect(core::ConnectionInfo{remote, "grpc", ClientIpOf(remote)},
                      std::make_shared<AttachSink>(io, state, options->max_queued_bytes));
    log::Event(log::Level::kInfo, log::LogEvent::kConnect)
        .Uint("conn", state->core_id)
        .Str("remote", remote)
        .Str("transport", "grpc");
  });
}

void AttachStream::OnReadDone(bool ok) {
  if (!ok) {
    // The client half-closed (or the stream broke): like a WebSocket close,
    // the connection ends once what is queued for it is written.
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->closing) state_->CloseLocked(grpc::Status::OK, /*drop_queue=*/false);
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
    // The next read only now: one event in flight per stream.
    std::lock_guard<std::mutex> lock(state->mu);
    if (state->stream != nullptr && !state->finished && !state->closing) {
      state->stream->StartRead(state->stream->read_buffer());
    }
  });
}

void AttachStream::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->writing = false;
  if (!state_->queue.empty()) {
    const std::size_t size = state_->queue.front()->ByteSizeLong();
    state_->queued_bytes -= size;
    if (ok) {
      state_->bytes_out += size;
      if (options_->metrics != nullptr) {
        options_->metrics->grpc_bytes.sent.fetch_add(size, std::memory_order_relaxed);
      }
    }
    state_->queue.pop_front();
  }
  if (!ok) {
    // The client is gone; OnCancel (or the failed read) ends the stream.
    state_->closing = true;
    if (state_->finish_status.ok()) {
      state_->finish_status = grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
    }
    state_->queued_bytes = 0;
    state_->queue.clear();
    state_->FinishLocked(state_->finish_status);
    return;
  }
  if (!state_->queue.empty() && !state_->finished) {
    state_->StartWriteLocked();
  } else if (state_->closing) {
    state_->FinishLocked(state_->finish_status);
  }
}

void AttachStream::OnCancel() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->cancelled = true;
  state_->closing = true;
  if (!state_->writing) {
    state_->FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  } else {
    state_->finish_status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }
}

void AttachStream::OnDone() {
  core::CloseReason reason;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stream = nullptr;
    state_->queue.clear();
    state_->queued_bytes = 0;
    reason = state_->close_reason.value_or(state_->cancelled ? core::CloseReason::kTransportError
                                                             : core::CloseReason::kClientClosed);
  }
  asio::post(*io_, [state = state_, core = core_, reason] {
    if (state->core_id == 0) return;
    log::Debug("grpc peer ", state->core_id, " detached: ", core::CloseReasonName(reason));
    core->Disconnect(state->core_id, reason);
  });
  delete this;
}

}  // namespace

grpc::Status AttachCloseStatus(core::CloseReason reason) {
  using core::CloseReason;
  switch (reason) {
    case CloseReason::kReplaced:
      return {grpc::StatusCode::ABORTED, "replaced"};
    case CloseReason::kServerShutdown:
      return {grpc::StatusCode::UNAVAILABLE, "server shutting down"};
    case CloseReason::kRegistrationTimeout:
      return {grpc::StatusCode::DEADLINE_EXCEEDED, "registration timeout"};
    case CloseReason::kSlowConsumer:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, "slow consumer"};
    case CloseReason::kRateLimited:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, "rate limited"};
    case CloseReason::kAuthFailed:
      return {grpc::StatusCode::UNAUTHENTICATED, "auth failed"};
    case CloseReason::kKicked:
      return {grpc::StatusCode::ABORTED, "kicked"};
    case CloseReason::kMeshClosed:
      return {grpc::StatusCode::ABORTED, "mesh closed"};
    case CloseReason::kMessageTooBig:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, "message too big"};
    case CloseReason::kKeepaliveTimeout:
      return {grpc::StatusCode::UNAVAILABLE, "keepalive timeout"};
    case CloseReason::kClientClosed:
      return grpc::Status::OK;
    case CloseReason::kInvalidFrame:
    case CloseReason::kTransportError:
      break;
  }
  return {grpc::StatusCode::INTERNAL, "internal error"};
}

AttachService::AttachService(asio::io_context* io, core::RelayCore* core, AttachOptions options)
    : io_(io), core_(core), options_(options) {}

grpc::ServerBidiReactor<ClientEvent, ServerEvent>* AttachService::Attach(
    grpc::CallbackServerContext* context) {
  return new AttachStream(io_, core_, &options_, RemoteAddress(context->peer()),
                          accepting_.load());
}

}  // namespace relay::gateway
