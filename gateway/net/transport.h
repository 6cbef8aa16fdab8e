// The names of the transports peers connect over, one place for all their
// uses: ConnectionInfo::transport (so PeerDetail.transport and relayctl),
// the connect and refusal log lines, and the metrics' `transport` label
// (where "ws" counts wss too).
#ifndef RELAY_GATEWAY_NET_TRANSPORT_H_
#define RELAY_GATEWAY_NET_TRANSPORT_H_

#include "absl/strings/string_view.h"

namespace relay::gateway {

inline constexpr absl::string_view kTransportWs = "ws";
inline constexpr absl::string_view kTransportWss = "wss";  // WebSocket over TLS
inline constexpr absl::string_view kTransportGrpc = "grpc";

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_NET_TRANSPORT_H_
