// ServerEncoder: one relay.v1.ServerEvent -> the JSON text a WebSocket client
// receives (field order as in docs/protocol.md). Forwarded user data is
// spliced in raw, never re-encoded.
#ifndef RELAY_GATEWAY_CODEC_SERVER_ENCODER_H_
#define RELAY_GATEWAY_CODEC_SERVER_ENCODER_H_

#include <string>

#include "relay/v1/relay.pb.h"

namespace relay::gateway {

std::string EncodeServerEvent(const relay::v1::ServerEvent& event);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_CODEC_SERVER_ENCODER_H_
