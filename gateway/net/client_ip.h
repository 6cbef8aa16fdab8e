// Client IP resolution: IP addresses, networks (CIDR), the TRUSTED_PROXIES
// list and the X-Forwarded-For rule that picks the client's address.
// Pure parsing, no sockets, so it is unit-tested alone
// (tests/gateway/net/client_ip_test.cc). Start reading at ResolveClientIp().
#ifndef RELAY_GATEWAY_NET_CLIENT_IP_H_
#define RELAY_GATEWAY_NET_CLIENT_IP_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace relay::gateway::net {

// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are
// stored as IPv4, so a dual-stack socket and a v4 network agree.
class IpAddress {
 public:
  // "192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1". No port, no brackets,
  // no zone. nullopt when it is not an address.
  static std::optional<IpAddress> Parse(absl::string_view text);
  // Parse(), but also accepts what proxies put in X-Forwarded-For:
  // surrounding spaces, "[2001:db8::1]", "[2001:db8::1]:443", "192.0.2.1:443".
  static std::optional<IpAddress> ParseLenient(absl::string_view text);
  static IpAddress V4(std::uint32_t host_order);

  bool is_v4() const { return v4_; }
  // 4 bytes for IPv4, 16 for IPv6, network order.
  const std::uint8_t* bytes() const { return bytes_.data(); }
  int bit_length() const { return v4_ ? 32 : 128; }
  // Canonical text ("192.0.2.1", "2001:db8::1").
  std::string ToString() const;

  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    return a.v4_ == b.v4_ && a.bytes_ == b.bytes_;
  }
  friend bool operator!=(const IpAddress& a, const IpAddress& b) { return !(a == b); }

 private:
  bool v4_ = true;
  std::array<std::uint8_t, 16> bytes_{};  // IPv4 uses the first 4
};

// An address block: "10.0.0.0/8", "2001:db8::/32", or one address (a /32 or
// /128). Host bits below the prefix are ignored ("10.1.2.3/8" is 10.0.0.0/8).
class IpNetwork {
 public:
  // InvalidArgument naming the bad text.
  static absl::StatusOr<IpNetwork> Parse(absl::string_view text);

  bool Contains(const IpAddress& address) const;
  std::string ToString() const;  // "10.0.0.0/8"

 private:
  IpNetwork(IpAddress base, int prefix_bits) : base_(base), prefix_bits_(prefix_bits) {}
  IpAddress base_;
  int prefix_bits_ = 0;
};

// The reverse proxies (load balancers) whose X-Forwarded-For the relay
// believes. Empty by default: then X-Forwarded-For is ignored.
class TrustedProxies {
 public:
  TrustedProxies() = default;
  // Comma-separated IPs or CIDRs; spaces and empty items are ignored, so ""
  // is the empty list. InvalidArgument naming the first bad item.
  static absl::StatusOr<TrustedProxies> Parse(absl::string_view list);

  bool empty() const { return networks_.empty(); }
  bool Contains(const IpAddress& address) const;
  std::string ToString() const;  // "10.0.0.0/8,192.0.2.7/32"; "" when empty

 private:
  std::vector<IpNetwork> networks_;
};

// Where a connection really comes from.
struct ClientIp {
  IpAddress address;
  // True when `address` came from X-Forwarded-For (the TCP peer is a
  // trusted proxy), false when it is the TCP peer itself.
  bool forwarded = false;
};

// The client's IP: the TCP peer, unless the TCP peer is a trusted proxy; then
// the last X-Forwarded-For hop, i.e. the address that proxy saw. When that hop
// is itself a trusted proxy (a chain of load balancers) the walk continues
// leftwards, so the result is the nearest address no trusted proxy vouches
// for. Entries left of it are client-controlled and never believed. A hop
// that is not an address ends the walk at the proxy that wrote it.
// `x_forwarded_for` is every X-Forwarded-For header joined with commas (as
// HTTP allows, and websocketpp does); empty when absent.
ClientIp ResolveClientIp(const IpAddress& tcp_peer, absl::string_view x_forwarded_for,
                         const TrustedProxies& trusted);

}  // namespace relay::gateway::net

#endif  // RELAY_GATEWAY_NET_CLIENT_IP_H_
