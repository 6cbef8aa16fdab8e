// PeerSink: how the core reaches one connection, whatever its transport.
// The gateway implements it for WebSocket connections.
//
// Contract: both calls are made on the core's thread and must not call back
// into RelayCore (a transport that fails a write reports it later, through
// RelayCore::Disconnect). The same ServerEvent pointer is handed to every
// recipient of a fan-out, so a transport can encode it once and share the bytes.
#ifndef RELAY_SERVER_CORE_PEER_SINK_H_
#define RELAY_SERVER_CORE_PEER_SINK_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/time/time.h"
#include "relay/v1/relay.pb.h"
#include "server/core/close_reason.h"
#include "server/core/delivery.h"

namespace relay::core {

using ServerEventPtr = std::shared_ptr<const relay::v1::ServerEvent>;

class PeerSink {
 public:
  virtual ~PeerSink() = default;
  // Queues `event` for the peer, in call order, and says whether it did:
  // a connection that is closing, or that is over its send buffer (it is
  // then closed as a slow consumer), drops it. The core counts what was
  // queued as delivered and every drop by its reason.
  virtual SendResult Send(const ServerEventPtr& event) = 0;

  // Resume sessions (docs/protocol.md, "Resume"): can this transport number
  // the frames it sends? If so, the core sends a resume client's frames
  // through SendSequenced, which is Send with "seq": `seq` added to what
  // the client receives. A transport that cannot (gRPC Attach) is never
  // given a session.
  virtual bool supports_resume() const { return false; }
  virtual SendResult SendSequenced(const ServerEventPtr& event, std::uint64_t /*seq*/) {
    return Send(event);
  }
  // Asks the transport to close the connection for `reason`, after what was
  // already queued. The transport then reports RelayCore::Disconnect.
  virtual void Close(CloseReason reason) = 0;

  // Is the peer still there? Asked before an open-mesh node_id is handed to
  // another connection. The transport checks (a WebSocket ping; a gRPC
  // stream that its keepalive has not broken) and calls `done` exactly once,
  // later (never from inside Probe), on the core's thread: true when the
  // peer answered within `timeout`. When the connection ends first it may
  // skip `done`: the core learns of it through Disconnect. Returns false
  // (and never calls `done`) when this transport cannot check: the holder is
  // then taken to be alive.
  virtual bool Probe(absl::Duration /*timeout*/, std::function<void(bool answered)> /*done*/) {
    return false;
  }

  // Flow control while a registration is being decided: the core holds what
  // the client pipelines behind it (bounded by MAX_EVENTS_WHILE_REGISTERING),
  // and asks the transport to stop reading meanwhile, so a client that keeps
  // writing is slowed by TCP instead of having its excess refused. The
  // transport may still hand over what it had already read (a WebSocket
  // read buffer's worth). Resumes when the held events were handled or the
  // connection closes. A transport that cannot pause ignores it.
  virtual void SetReading(bool /*reading*/) {}

  // What the transport counted for this connection, for the Admin API.
  struct Counters {
    std::uint64_t bytes_in = 0;      // wire bytes received (frames, messages)
    std::uint64_t bytes_out = 0;     // wire bytes handed to the connection
    std::uint64_t queued_bytes = 0;  // handed over but not yet written out
  };
  virtual Counters counters() const { return {}; }
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_PEER_SINK_H_
