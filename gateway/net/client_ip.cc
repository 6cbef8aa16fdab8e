#include "gateway/net/client_ip.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace relay::gateway::net {
namespace {

constexpr std::uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

std::optional<IpAddress> IpAddress::Parse(absl::string_view text) {
  // inet_pton needs a NUL-terminated string; INET6_ADDRSTRLEN bounds any valid one.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress out;
  if (inet_pton(AF_INET, buf, out.bytes_.data()) == 1) {
    out.v4_ = true;
    return out;
  }
  if (inet_pton(AF_INET6, buf, out.bytes_.data()) != 1) return std::nullopt;
  if (std::memcmp(out.bytes_.data(), kV4MappedPrefix, sizeof(kV4MappedPrefix)) == 0) {
    std::memmove(out.bytes_.data(), out.bytes_.data() + 12, 4);
    std::fill(out.bytes_.begin() + 4, out.bytes_.end(), 0);
    out.v4_ = true;
    return out;
  }
  out.v4_ = false;
  return out;
}

std::optional<IpAddress> IpAddress::ParseLenient(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (std::optional<IpAddress> plain = Parse(text)) return plain;
  // "[v6]" or "[v6]:port"
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == absl::string_view::npos) return std::nullopt;
    const absl::string_view rest = text.substr(close + 1);
    std::uint32_t port;
    if (!rest.empty() && !(rest.front() == ':' && absl::SimpleAtoi(rest.substr(1), &port))) {
      return std::nullopt;
    }
    return Parse(text.substr(1, close - 1));
  }
  // "a.b.c.d:port": exactly one colon (more would be bare IPv6, already tried).
  const std::size_t colon = text.find(':');
  if (colon == absl::string_view::npos || text.find(':', colon + 1) != absl::string_view::npos) {
    return std::nullopt;
  }
  std::uint32_t port;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port)) return std::nullopt;
  std::optional<IpAddress> v4 = Parse(text.substr(0, colon));
  if (!v4 || !v4->is_v4()) return std::nullopt;
  return v4;
}

IpAddress IpAddress::V4(std::uint32_t host_order) {
  IpAddress out;
  out.v4_ = true;
  out.bytes_[0] = static_cast<std::uint8_t>(host_order >> 24);
  out.bytes_[1] = static_cast<std::uint8_t>(host_order >> 16);
  out.bytes_[2] = static_cast<std::uint8_t>(host_order >> 8);
  out.bytes_[3] = static_cast<std::uint8_t>(host_order);
  return out;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(v4_ ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof(buf)) == nullptr) {
    return "invalid";
  }
  return buf;
}

absl::StatusOr<IpNetwork> IpNetwork::Parse(absl::string_view text) {
  const absl::string_view original = text;
  text = absl::StripAsciiWhitespace(text);
  absl::string_view address_text = text;
  std::optional<int> prefix;
  if (const std::size_t slash = text.find('/'); slash != absl::string_view::npos) {
    address_text = text.substr(0, slash);
    int bits;
    const absl::string_view bits_text = text.substr(slash + 1);
    if (bits_text.empty() || bits_text.size() > 3 ||
        !std::all_of(bits_text.begin(), bits_text.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(bits_text, &bits)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", original, "\" has no valid prefix length after '/'"));
    }
    prefix = bits;
  }
  std::optional<IpAddress> base = IpAddress::Parse(address_text);
  if (!base) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", original, "\" is not an IP address or CIDR block"));
  }
  const int max_bits = base->bit_length();
  // "::ffff:10.0.0.0/104" was parsed as IPv4: shift its prefix accordingly.
  const bool mapped = base->is_v4() && address_text.find(':') != absl::string_view::npos;
  int bits = prefix.value_or(mapped ? 128 : max_bits);
  if (mapped) {
    if (bits < 96 || bits > 128) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", original, "\": an IPv4-mapped prefix must be /96 to /128"));
    }
    bits -= 96;
  }
  if (bits < 0 || bits > max_bits) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", original, "\": prefix length must be 0 to ", max_bits));
  }
  return IpNetwork(*base, bits);
}

bool IpNetwork::Contains(const IpAddress& address) const {
  if (address.is_v4() != base_.is_v4()) return false;
  const std::uint8_t* a = address.bytes();
  const std::uint8_t* b = base_.bytes();
  const int whole = prefix_bits_ / 8;
  if (std::memcmp(a, b, whole) != 0) return false;
  const int rest = prefix_bits_ % 8;
  if (rest == 0) return true;
  const std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

std::string IpNetwork::ToString() const {
  // Print the block's first address, not the host bits it was written with.
  std::array<std::uint8_t, 16> bytes{};
  std::memcpy(bytes.data(), base_.bytes(), base_.is_v4() ? 4 : 16);
  const int whole = prefix_bits_ / 8;
  const int rest = prefix_bits_ % 8;
  const int length = base_.is_v4() ? 4 : 16;
  for (int i = whole; i < length; ++i) {
    if (i == whole && rest != 0) {
      bytes[i] &= static_cast<std::uint8_t>(0xff << (8 - rest));
    } else {
      bytes[i] = 0;
    }
  }
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(base_.is_v4() ? AF_INET : AF_INET6, bytes.data(), buf, sizeof(buf)) == nullptr) {
    return "invalid";
  }
  return absl::StrCat(buf, "/", prefix_bits_);
}

absl::StatusOr<TrustedProxies> TrustedProxies::Parse(absl::string_view list) {
  TrustedProxies out;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) continue;
    absl::StatusOr<IpNetwork> network = IpNetwork::Parse(item);
    if (!network.ok()) return network.status();
    out.networks_.push_back(*network);
  }
  return out;
}

bool TrustedProxies::Contains(const IpAddress& address) const {
  return std::any_of(networks_.begin(), networks_.end(),
                     [&](const IpNetwork& n) { return n.Contains(address); });
}

std::string TrustedProxies::ToString() const {
  std::string out;
  for (const IpNetwork& n : networks_) {
    if (!out.empty()) out.push_back(',');
    out.append(n.ToString());
  }
  return out;
}

ClientIp ResolveClientIp(const IpAddress& tcp_peer, absl::string_view x_forwarded_for,
                         const TrustedProxies& trusted) {
  ClientIp result{tcp_peer, false};
  if (!trusted.Contains(tcp_peer)) return result;
  std::vector<absl::string_view> hops = absl::StrSplit(x_forwarded_for, ',');
  // Right to left: each hop was appended by the proxy we trust at that point.
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    if (absl::StripAsciiWhitespace(*it).empty()) continue;  // "a, , b" or no header
    std::optional<IpAddress> hop = IpAddress::ParseLenient(*it);
    if (!hop) break;  // garbage from a proxy: keep the proxy itself
    result = ClientIp{*hop, true};
    if (!trusted.Contains(*hop)) break;
  }
  return result;
}

}  // namespace relay::gateway::net
