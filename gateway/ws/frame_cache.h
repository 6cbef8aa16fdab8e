// FrameCache: encodes a ServerEvent into a ready-to-write WebSocket frame
// once, and hands the same frame to every recipient of that event.
//
// The core delivers one event to all recipients of a fan-out back to back,
// so remembering the last event is enough. Server frames are unmasked, so
// one prepared frame is valid on every RFC 6455 connection.
#ifndef RELAY_GATEWAY_WS_FRAME_CACHE_H_
#define RELAY_GATEWAY_WS_FRAME_CACHE_H_

#include <cstdint>
#include <string>

#include "gateway/ws/ws_config.h"
#include "server/core/peer_sink.h"

namespace relay::gateway {

class FrameCache {
 public:
  // The prepared text frame for `event`.
  WsMessagePtr Frame(const core::ServerEventPtr& event);
  // The same frame with "seq": `seq` added, for a resume session's client.
  WsMessagePtr SequencedFrame(const core::ServerEventPtr& event, std::uint64_t seq);

 private:
  core::ServerEventPtr last_event_;  // held so its address cannot be reused
  WsMessagePtr last_frame_;
  // SequencedFrame's encoding of `body_event_` (a direct to a resume client
  // needs no plain frame).
  core::ServerEventPtr body_event_;
  std::string body_;
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_FRAME_CACHE_H_
