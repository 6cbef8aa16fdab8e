// gRPC peers (RelayCore.Attach) send relay.v1.ClientEvents whose user data is
// raw JSON text. They must meet exactly the checks a WebSocket client's frame
// meets, and their data ends up spliced into WebSocket frames: an invalid
// payload would reach other peers as an invalid frame. So each event is
// written back as the JSON frame a WebSocket client would have sent and goes
// through the one client decoder: same rules, same error codes, same
// derived fields (signed token canonical form, llm "messages").
#ifndef RELAY_GATEWAY_GRPC_GRPC_EVENT_CODEC_H_
#define RELAY_GATEWAY_GRPC_GRPC_EVENT_CODEC_H_

#include <cstddef>
#include <string>

#include "gateway/codec/client_decoder.h"
#include "relay/v1/relay.pb.h"

namespace relay::gateway {

// The WebSocket frame equivalent to `event`, and the mesh it registers into
// (the URL's mesh for a WebSocket client; empty for non-register events).
// False, with the error the peer must be told, when the event cannot be
// expressed (a mesh id a URL could not carry, signed_token set by the peer).
bool GrpcEventToFrame(const relay::v1::ClientEvent& event, std::size_t max_mesh_id_bytes,
                      std::string* frame, std::string* mesh_id, DecodeFailure* failure);

// GrpcEventToFrame, then DecodeClientFrame: the event as the core must see it.
bool NormalizeGrpcEvent(const relay::v1::ClientEvent& event, std::size_t max_mesh_id_bytes,
                        relay::v1::ClientEvent* normalized, DecodeFailure* failure);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_GRPC_GRPC_EVENT_CODEC_H_
