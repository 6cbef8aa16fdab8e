// GrpcPeerAddress: what a gRPC peer's address (ServerContext::peer(),
// "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000") means to the relay: the remote
// address the Admin API shows, and the client IP that the connection limits
// and per-IP counts key on, in the same canonical form the WebSocket side
// uses (gateway/net/client_ip.h), so that one client's WebSocket and gRPC
// connections count as one IP. Pure parsing, no gRPC.
#ifndef RELAY_GATEWAY_GRPC_GRPC_PEER_ADDRESS_H_
#define RELAY_GATEWAY_GRPC_GRPC_PEER_ADDRESS_H_

#include <string>

#include "absl/strings/string_view.h"

namespace relay::gateway {

struct GrpcPeerAddress {
  std::string remote;     // "127.0.0.1:5000", "[::1]:5000"
  std::string client_ip;  // "127.0.0.1", "::1"; IPv4-mapped IPv6 as IPv4
};

// Newer gRPC releases percent-encode the brackets ("ipv6:%5B::1%5D:5000");
// both spellings are read. A peer that is no IP address (a Unix socket) is
// its own client IP.
GrpcPeerAddress ParseGrpcPeer(absl::string_view peer);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_GRPC_GRPC_PEER_ADDRESS_H_
