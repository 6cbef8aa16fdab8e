// One gRPC peer stream's delivery side: AttachStreamState, what the stream's
// gRPC callbacks, the core's sink and the event loop's posted work share, and
// AttachSink, the core's PeerSink over it (queue within the per-connection
// send buffer, one write in flight, close after what is queued). The reactor
// itself (attach_service.cc) only forwards gRPC's callbacks here, so this
// state machine is tested without gRPC (tests/gateway/grpc/attach_sink_test.cc):
// its calls into the reactor go through AttachStreamCalls.
//
// Locking: every field under `mu` unless marked otherwise. The *Locked
// methods need `mu` held; the others take it. `mu` is held while calling
// AttachStreamCalls (gRPC's StartWrite/StartRead/Finish only queue work and
// never call back on the same stack) and never while calling the core.
#ifndef RELAY_GATEWAY_GRPC_ATTACH_SINK_H_
#define RELAY_GATEWAY_GRPC_ATTACH_SINK_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <grpcpp/support/status.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/time/time.h"
#include "asio/io_context.hpp"
#include "gateway/admission/connection_slots.h"
#include "gateway/http/relay_metrics.h"
#include "relay/v1/relay.pb.h"
#include "server/core/close_reason.h"
#include "server/core/connection_id.h"
#include "server/core/peer_sink.h"

namespace relay::gateway {

// The gRPC status a stream ends with when the relay closes it for `reason`.
grpc::Status AttachCloseStatus(core::CloseReason reason);

// The reactor calls the state makes: gRPC's StartWrite, StartRead (into the
// stream's read buffer) and Finish.
class AttachStreamCalls {
 public:
  virtual ~AttachStreamCalls() = default;
  virtual void BeginWrite(const relay::v1::ServerEvent* event) = 0;
  virtual void BeginRead() = 0;
  virtual void End(grpc::Status status) = 0;
};

struct AttachStreamState {
  // `sent` (optional) counts the bytes written, for /metrics.
  explicit AttachStreamState(TransportBytes* sent = nullptr) : bytes_metrics(sent) {}

  std::mutex mu;
  // Null once gRPC is done with the stream (Detach): from then on nothing
  // may touch it.
  AttachStreamCalls* stream = nullptr;
  bool finished = false;  // End() called
  bool closing = false;   // the relay or the client ended it; finish once writes are done
  grpc::Status finish_status;
  std::deque<core::ServerEventPtr> queue;  // front() is being written when `writing`
  bool writing = false;
  std::size_t queued_bytes = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::optional<core::CloseReason> close_reason;  // set when the relay closed it
  bool cancelled = false;
  // Flow control (PeerSink::SetReading): while paused, the next read waits.
  bool reading_paused = false;
  bool read_deferred = false;

  // Not under `mu`: set before the state is shared.
  TransportBytes* const bytes_metrics;
  // Event loop only (set before the first post to it): the core's id, 0
  // until the core accepted the stream, and the stream's connection slot,
  // given back once the core has heard of its end.
  core::ConnectionId core_id = 0;
  ConnectionSlot slot;

  void FinishLocked(grpc::Status status);
  void StartWriteLocked();
  // Ends the stream with `status` after what is queued (or at once, dropping
  // the queue, when `drop_queue`).
  void CloseLocked(grpc::Status status, bool drop_queue);

  // gRPC's callbacks, on its threads.
  // A failed read: the client half-closed (or the stream broke). Like a
  // WebSocket close, the stream ends once what is queued for it is written.
  void OnReadFailed();
  void OnWriteDone(bool ok);
  void OnCancel();
  // gRPC is done with the stream (OnDone). Returns why the connection ended,
  // for the core.
  core::CloseReason Detach();

  // After the core handled the previous event: the next read, unless the
  // stream is ending (one event in flight per stream) or the core paused
  // reading (then at SetReading).
  void ReadNext();
  void SetReading(bool reading);
};

// The core's handle on a stream.
class AttachSink final : public core::PeerSink {
 public:
  // `io` runs the core (Probe answers there).
  AttachSink(asio::io_context* io, std::shared_ptr<AttachStreamState> state,
             std::size_t max_queued_bytes)
      : io_(io), state_(std::move(state)), max_queued_bytes_(max_queued_bytes) {}

  // Queued (a write starts when none is in flight), or dropped: kClosing
  // once the stream is ending, kSlowConsumer when `event` would take what
  // is queued past max_queued_bytes (the stream then ends at once with
  // RESOURCE_EXHAUSTED "slow consumer", after the write in flight). An
  // event is always queued when nothing else is, whatever its size.
  core::SendResult Send(const core::ServerEventPtr& event) override;
  // Ends the stream with AttachCloseStatus(reason) after what is queued.
  void Close(core::CloseReason reason) override;
  void SetReading(bool reading) override { state_->SetReading(reading); }
  Counters counters() const override;
  // The application cannot ping one stream: HTTP/2 keepalive (the server's
  // GRPC_ARG_KEEPALIVE_* settings) breaks the stream of a peer that
  // vanished. A stream it has not broken is alive; `done` is posted to `io`.
  bool Probe(absl::Duration timeout, std::function<void(bool)> done) override;

 private:
  asio::io_context* const io_;
  const std::shared_ptr<AttachStreamState> state_;
  const std::size_t max_queued_bytes_;
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_GRPC_ATTACH_SINK_H_
