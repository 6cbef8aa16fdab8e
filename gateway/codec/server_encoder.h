// ServerEncoder: one relay.v1.ServerEvent -> the JSON text a WebSocket client
// receives (field order as in docs/protocol.md). Forwarded user data is
// spliced in raw, never re-encoded.
#ifndef RELAY_GATEWAY_CODEC_SERVER_ENCODER_H_
#define RELAY_GATEWAY_CODEC_SERVER_ENCODER_H_

#include <cstdint>
#include <string>

#include "relay/v1/relay.pb.h"

namespace relay::gateway {

std::string EncodeServerEvent(const relay::v1::ServerEvent& event);

// Appends the same text to `out`: the hot path encodes straight into an
// outgoing frame's buffer, with no intermediate string.
void AppendServerEvent(const relay::v1::ServerEvent& event, std::string* out);

// The same with "seq": `seq` last, as a resume session's client receives
// it (docs/protocol.md, "Resume").
void AppendSequencedServerEvent(const relay::v1::ServerEvent& event, std::uint64_t seq,
                                std::string* out);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_CODEC_SERVER_ENCODER_H_
