// AttachService: relay.v1.RelayCore.Attach, the gRPC transport for peers
// that do not speak WebSocket (an LLM worker, a bot in a datacenter). Each
// stream is one RelayCore connection, with the WebSocket protocol's exact
// semantics: events are normalized through the same client decoder
// (grpc_event_codec.h) and answered through the same core.
//
// Admission: each stream takes its connection slot from the ConnectionSlots
// the WebSocket gateway shares (MAX_CONNECTIONS for both transports,
// MAX_CONNECTIONS_PER_IP by the peer's IP) as gRPC starts it, and gives it
// back once the core has heard of its end. Refused streams end at once, with
// RESOURCE_EXHAUSTED (no slot) or UNAVAILABLE (draining), counted in the
// shared RefusalCounts under the WebSocket refusals' names.
//
// Threading: gRPC runs the stream's callbacks on its own threads; the core
// lives on the event loop. Reads are handed to the loop one at a time (the
// next read starts once the core has handled the previous event: a peer
// that floods waits, it does not fill the loop's queue). Deliveries are
// queued per stream and written one at a time, within the same
// per-connection send buffer bound as WebSocket (past it: slow consumer;
// attach_sink.h).
#ifndef RELAY_GATEWAY_GRPC_ATTACH_SERVICE_H_
#define RELAY_GATEWAY_GRPC_ATTACH_SERVICE_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstddef>

#include "asio/io_context.hpp"
#include "gateway/admission/connection_slots.h"
#include "gateway/admission/refusal.h"
#include "gateway/grpc/attach_sink.h"
#include "gateway/http/relay_metrics.h"
#include "relay/v1/relay.grpc.pb.h"
#include "server/core/relay_core.h"

namespace relay::gateway {

struct AttachOptions {
  // Events queued for one stream and not yet written; past it the stream
  // ends with RESOURCE_EXHAUSTED "slow consumer".
  std::size_t max_queued_bytes = std::size_t{8} << 20;
  // Byte counts and the relay latency histogram (GET /metrics); optional.
  RelayMetrics* metrics = nullptr;
  // Required, shared with the WebSocket gateway: the connection slots every
  // stream takes (more streams are refused with RESOURCE_EXHAUSTED) and the
  // count of refused streams.
  ConnectionSlots* slots = nullptr;
  RefusalCounts* refused = nullptr;
};

class AttachService final : public relay::v1::RelayCore::CallbackService {
 public:
  // `io` runs the core; both, and options' pointers, must outlive the gRPC
  // server.
  AttachService(asio::io_context* io, core::RelayCore* core, AttachOptions options);

  grpc::ServerBidiReactor<relay::v1::ClientEvent, relay::v1::ServerEvent>* Attach(
      grpc::CallbackServerContext* context) override;

  // Draining: new streams are refused with UNAVAILABLE (counted "draining").
  // Any thread.
  void StopAccepting() { accepting_.store(false); }

 private:
  asio::io_context* const io_;
  core::RelayCore* const core_;
  const AttachOptions options_;
  std::atomic<bool> accepting_{true};
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_GRPC_ATTACH_SERVICE_H_
