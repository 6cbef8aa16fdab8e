// ClientDecoder: one JSON frame from a WebSocket client -> one
// relay.v1.ClientEvent, or the error the client must be told.
//
// Only the shape of each message is checked here (types of fields, required
// fields). What a message means (who is registered, who gets it) is the
// core's business.
#ifndef RELAY_GATEWAY_CODEC_CLIENT_DECODER_H_
#define RELAY_GATEWAY_CODEC_CLIENT_DECODER_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "relay/v1/relay.pb.h"
#include "server/core/error_code.h"

namespace relay::gateway {

struct DecodeFailure {
  core::ErrorCode code = core::ErrorCode::kBadJson;
  std::string message;
  std::string request_id_json;  // raw request_id, when it could be read
};

// Decodes `frame`, within limits::kMaxJsonDepth and
// limits::kMaxJsonMembersPerObject. `mesh_id` (from the URL) is put into
// register events.
// Returns false and fills `failure` when the frame cannot be relayed.
bool DecodeClientFrame(absl::string_view frame, absl::string_view mesh_id,
                       relay::v1::ClientEvent* event, DecodeFailure* failure);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_CODEC_CLIENT_DECODER_H_
