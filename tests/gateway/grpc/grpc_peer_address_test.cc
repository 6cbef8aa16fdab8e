// Tests for gateway/grpc/grpc_peer_address.cc: gRPC's peer strings become
// the remote address shown to operators and the canonical client IP the
// connection limits count (the WebSocket side's form).
#include "gateway/grpc/grpc_peer_address.h"

#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

TEST(GrpcPeerAddressTest, Ipv4) {
  const GrpcPeerAddress peer = ParseGrpcPeer("ipv4:127.0.0.1:50123");
  EXPECT_EQ(peer.remote, "127.0.0.1:50123");
  EXPECT_EQ(peer.client_ip, "127.0.0.1");
}

TEST(GrpcPeerAddressTest, Ipv6InBrackets) {
  const GrpcPeerAddress peer = ParseGrpcPeer("ipv6:[::1]:50123");
  EXPECT_EQ(peer.remote, "[::1]:50123");
  EXPECT_EQ(peer.client_ip, "::1");
}

TEST(GrpcPeerAddressTest, PercentEncodedBracketsOfNewerGrpc) {
  const GrpcPeerAddress peer = ParseGrpcPeer("ipv6:%5B2001:db8::1%5D:443");
  EXPECT_EQ(peer.remote, "[2001:db8::1]:443");
  EXPECT_EQ(peer.client_ip, "2001:db8::1");
}

TEST(GrpcPeerAddressTest, ClientIpIsCanonicalSoBothTransportsCountOneIp) {
  // A dual-stack listener reports IPv4 clients as mapped IPv6; the
  // WebSocket side counts them by their IPv4 address.
  EXPECT_EQ(ParseGrpcPeer("ipv6:[::ffff:192.0.2.7]:1").client_ip, "192.0.2.7");
  EXPECT_EQ(ParseGrpcPeer("ipv6:[2001:DB8:0:0::1]:1").client_ip, "2001:db8::1");
}

TEST(GrpcPeerAddressTest, AnAddressWithAZoneKeepsItsHost) {
  const GrpcPeerAddress peer = ParseGrpcPeer("ipv6:[fe80::1%25eth0]:9");
  EXPECT_EQ(peer.remote, "[fe80::1%eth0]:9");
  EXPECT_EQ(peer.client_ip, "fe80::1%eth0");
}

TEST(GrpcPeerAddressTest, NotAnIpPeerIsItsOwnKey) {
  const GrpcPeerAddress peer = ParseGrpcPeer("unix:/run/relay.sock");
  EXPECT_EQ(peer.remote, "unix:/run/relay.sock");
  EXPECT_EQ(peer.client_ip, "unix:/run/relay.sock");
}

}  // namespace
}  // namespace relay::gateway
