#include "gateway/grpc/attach_sink.h"

#include <utility>

#include "asio/post.hpp"
#include "server/util/log.h"

namespace relay::gateway {

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
    case CloseReason::kServiceRestart:
      // As 1012 on WebSocket: retry, and the balancer picks another instance.
      return {grpc::StatusCode::UNAVAILABLE, "service restart"};
    // Never a gRPC peer's (Attach offers no resume sessions); named for
    // completeness.
    case CloseReason::kResumed:
      return {grpc::StatusCode::ABORTED, "resumed"};
    case CloseReason::kResumeOverflow:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, "resume overflow"};
    case CloseReason::kClientClosed:
      return grpc::Status::OK;
    case CloseReason::kInvalidFrame:
    case CloseReason::kTransportError:
      break;
  }
  return {grpc::StatusCode::INTERNAL, "internal error"};
}

// --- AttachStreamState ------------------------------------------------------

void AttachStreamState::FinishLocked(grpc::Status status) {
  if (finished || stream == nullptr) return;
  finished = true;
  stream->End(std::move(status));
}

void AttachStreamState::StartWriteLocked() {
  if (finished || stream == nullptr || queue.empty()) return;
  writing = true;
  stream->BeginWrite(queue.front().get());
}

void AttachStreamState::CloseLocked(grpc::Status status, bool drop_queue) {
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

void AttachStreamState::OnReadFailed() {
  std::lock_guard<std::mutex> lock(mu);
  if (!closing) CloseLocked(grpc::Status::OK, /*drop_queue=*/false);
}

void AttachStreamState::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu);
  writing = false;
  if (!queue.empty()) {
    const std::size_t size = queue.front()->ByteSizeLong();
    queued_bytes -= size;
    if (ok) {
      bytes_out += size;
      if (bytes_metrics != nullptr) bytes_metrics->sent.fetch_add(size, std::memory_order_relaxed);
    }
    queue.pop_front();
  }
  if (!ok) {
    // The client is gone; OnCancel (or the failed read) ends the stream.
    closing = true;
    if (finish_status.ok()) {
      finish_status = grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
    }
    queued_bytes = 0;
    queue.clear();
    FinishLocked(finish_status);
    return;
  }
  if (!queue.empty() && !finished) {
    StartWriteLocked();
  } else if (closing) {
    FinishLocked(finish_status);
  }
}

void AttachStreamState::OnCancel() {
  std::lock_guard<std::mutex> lock(mu);
  cancelled = true;
  closing = true;
  if (!writing) {
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  } else {
    finish_status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }
}

core::CloseReason AttachStreamState::Detach() {
  std::lock_guard<std::mutex> lock(mu);
  stream = nullptr;
  queue.clear();
  queued_bytes = 0;
  return close_reason.value_or(cancelled ? core::CloseReason::kTransportError
                                         : core::CloseReason::kClientClosed);
}

void AttachStreamState::ReadNext() {
  std::lock_guard<std::mutex> lock(mu);
  if (reading_paused) {
    read_deferred = true;
    return;
  }
  if (stream != nullptr && !finished && !closing) stream->BeginRead();
}

void AttachStreamState::SetReading(bool reading) {
  std::lock_guard<std::mutex> lock(mu);
  reading_paused = !reading;
  if (!reading || !read_deferred) return;
  read_deferred = false;
  if (stream != nullptr && !finished && !closing) stream->BeginRead();
}

// --- AttachSink -------------------------------------------------------------

core::SendResult AttachSink::Send(const core::ServerEventPtr& event) {
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

void AttachSink::Close(core::CloseReason reason) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->closing || state_->finished) return;
  state_->close_reason = reason;
  state_->CloseLocked(AttachCloseStatus(reason), /*drop_queue=*/false);
}

core::PeerSink::Counters AttachSink::counters() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return {state_->bytes_in, state_->bytes_out, state_->queued_bytes};
}

bool AttachSink::Probe(absl::Duration /*timeout*/, std::function<void(bool)> done) {
  bool alive;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    alive = !state_->closing && !state_->finished && !state_->cancelled;
  }
  asio::post(*io_, [done = std::move(done), alive] { done(alive); });
  return true;
}

}  // namespace relay::gateway
