#include "gateway/grpc/grpc_peer_address.h"

#include <optional>

#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "gateway/net/client_ip.h"

namespace relay::gateway {
namespace {

// "127.0.0.1:5000" / "[fe80::1%eth0]:5000" -> "127.0.0.1" / "fe80::1%eth0":
// the host of an address IpAddress does not read (a zone), as it is.
std::string HostOf(absl::string_view remote) {
  if (absl::ConsumePrefix(&remote, "[")) return std::string(remote.substr(0, remote.find(']')));
  return std::string(remote.substr(0, remote.rfind(':')));
}

}  // namespace

GrpcPeerAddress ParseGrpcPeer(absl::string_view peer) {
  GrpcPeerAddress out;
  absl::string_view address = peer;
  const bool ip = absl::ConsumePrefix(&address, "ipv4:") || absl::ConsumePrefix(&address, "ipv6:");
  if (!ip) {
    out.remote = std::string(peer);
    out.client_ip = std::string(peer);
    return out;
  }
  out.remote = absl::StrReplaceAll(address, {{"%5B", "["}, {"%5D", "]"}, {"%25", "%"}});
  // ParseLenient reads "192.0.2.1:443" and "[2001:db8::1]:443".
  const std::optional<net::IpAddress> parsed = net::IpAddress::ParseLenient(out.remote);
  out.client_ip = parsed.has_value() ? parsed->ToString() : HostOf(out.remote);
  return out;
}

}  // namespace relay::gateway
