// Tests for gateway/net/client_ip.cc: addresses, CIDR blocks, the
// TRUSTED_PROXIES list and the X-Forwarded-For rule.
#include "gateway/net/client_ip.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::gateway::net {
namespace {

using ::testing::HasSubstr;

IpAddress Ip(const std::string& text) {
  std::optional<IpAddress> ip = IpAddress::Parse(text);
  EXPECT_TRUE(ip.has_value()) << text;
  return ip.value_or(IpAddress::V4(0));
}

TrustedProxies Trusted(const std::string& list) {
  absl::StatusOr<TrustedProxies> trusted = TrustedProxies::Parse(list);
  EXPECT_TRUE(trusted.ok()) << trusted.status();
  return trusted.ok() ? *trusted : TrustedProxies();
}

std::string Resolve(const std::string& peer, const std::string& xff, const std::string& trusted) {
  return ResolveClientIp(Ip(peer), xff, Trusted(trusted)).address.ToString();
}

TEST(IpAddressTest, ParsesV4AndV6InCanonicalForm) {
  EXPECT_EQ(Ip("192.0.2.1").ToString(), "192.0.2.1");
  EXPECT_TRUE(Ip("192.0.2.1").is_v4());
  EXPECT_EQ(Ip("2001:DB8:0:0::1").ToString(), "2001:db8::1");
  EXPECT_FALSE(Ip("2001:db8::1").is_v4());
  EXPECT_EQ(Ip("::1").ToString(), "::1");
}

TEST(IpAddressTest, V4MappedV6IsStoredAsV4) {
  const IpAddress mapped = Ip("::ffff:192.0.2.1");
  EXPECT_TRUE(mapped.is_v4());
  EXPECT_EQ(mapped, Ip("192.0.2.1"));
  EXPECT_EQ(mapped.ToString(), "192.0.2.1");
}

TEST(IpAddressTest, RejectsWhatIsNotAnAddress) {
  for (const char* bad : {"", "unknown", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4:80", "[::1]",
                          " 1.2.3.4", "::g", "fe80::1%eth0", "01.2.3.4x"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).has_value()) << bad;
  }
  EXPECT_FALSE(IpAddress::Parse(std::string(100, '1')).has_value());
}

TEST(IpAddressTest, LenientAcceptsPortsBracketsAndSpaces) {
  EXPECT_EQ(IpAddress::ParseLenient(" 192.0.2.1 ")->ToString(), "192.0.2.1");
  EXPECT_EQ(IpAddress::ParseLenient("192.0.2.1:443")->ToString(), "192.0.2.1");
  EXPECT_EQ(IpAddress::ParseLenient("[2001:db8::1]")->ToString(), "2001:db8::1");
  EXPECT_EQ(IpAddress::ParseLenient("[2001:db8::1]:443")->ToString(), "2001:db8::1");
  EXPECT_EQ(IpAddress::ParseLenient("2001:db8::1")->ToString(), "2001:db8::1");
  for (const char* bad : {"unknown", "192.0.2.1:", "192.0.2.1:x", "[2001:db8::1", "[::1]x",
                          "[::1]:", "host:80", "_hidden"}) {
    EXPECT_FALSE(IpAddress::ParseLenient(bad).has_value()) << bad;
  }
}

TEST(IpNetworkTest, ContainsByPrefix) {
  const IpNetwork ten = *IpNetwork::Parse("10.0.0.0/8");
  EXPECT_TRUE(ten.Contains(Ip("10.255.1.2")));
  EXPECT_FALSE(ten.Contains(Ip("11.0.0.1")));
  EXPECT_FALSE(ten.Contains(Ip("::ffff:11.0.0.1")));
  EXPECT_TRUE(ten.Contains(Ip("::ffff:10.0.0.1")));

  const IpNetwork odd = *IpNetwork::Parse("192.168.0.0/23");
  EXPECT_TRUE(odd.Contains(Ip("192.168.1.200")));
  EXPECT_FALSE(odd.Contains(Ip("192.168.2.1")));

  const IpNetwork v6 = *IpNetwork::Parse("2001:db8::/32");
  EXPECT_TRUE(v6.Contains(Ip("2001:db8:ffff::1")));
  EXPECT_FALSE(v6.Contains(Ip("2001:db9::1")));
  EXPECT_FALSE(v6.Contains(Ip("10.0.0.1")));  // families never match
}

TEST(IpNetworkTest, SingleAddressAndZeroPrefix) {
  const IpNetwork one = *IpNetwork::Parse("192.0.2.7");
  EXPECT_TRUE(one.Contains(Ip("192.0.2.7")));
  EXPECT_FALSE(one.Contains(Ip("192.0.2.8")));
  EXPECT_EQ(one.ToString(), "192.0.2.7/32");
  EXPECT_EQ(IpNetwork::Parse("::1")->ToString(), "::1/128");

  const IpNetwork all = *IpNetwork::Parse("0.0.0.0/0");
  EXPECT_TRUE(all.Contains(Ip("203.0.113.9")));
  EXPECT_FALSE(all.Contains(Ip("::1")));
}

TEST(IpNetworkTest, HostBitsAreIgnoredAndNotPrinted) {
  const IpNetwork net = *IpNetwork::Parse("10.1.2.3/8");
  EXPECT_TRUE(net.Contains(Ip("10.9.9.9")));
  EXPECT_EQ(net.ToString(), "10.0.0.0/8");
  EXPECT_EQ(IpNetwork::Parse("2001:db8::ff/120")->ToString(), "2001:db8::/120");
  EXPECT_EQ(IpNetwork::Parse("192.168.1.77/23")->ToString(), "192.168.0.0/23");
}

TEST(IpNetworkTest, V4MappedBlocksBecomeV4Blocks) {
  const IpNetwork net = *IpNetwork::Parse("::ffff:10.0.0.0/104");
  EXPECT_EQ(net.ToString(), "10.0.0.0/8");
  EXPECT_TRUE(net.Contains(Ip("10.2.3.4")));
  EXPECT_FALSE(IpNetwork::Parse("::ffff:10.0.0.0/64").ok());
}

TEST(IpNetworkTest, RejectsBadBlocksNamingThem) {
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",
                          "10.0.0.0/ 8", "10.0.0/8", "example.com", "/8", "10.0.0.0/0008"}) {
    absl::StatusOr<IpNetwork> net = IpNetwork::Parse(bad);
    ASSERT_FALSE(net.ok()) << bad;
    EXPECT_EQ(net.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(net.status().message(), HasSubstr(bad));
  }
}

TEST(TrustedProxiesTest, ParsesAListWithSpacesAndEmptyItems) {
  const TrustedProxies trusted = Trusted(" 10.0.0.0/8, 192.0.2.7 ,,2001:db8::/32,");
  EXPECT_FALSE(trusted.empty());
  EXPECT_EQ(trusted.ToString(), "10.0.0.0/8,192.0.2.7/32,2001:db8::/32");
  EXPECT_TRUE(trusted.Contains(Ip("10.3.3.3")));
  EXPECT_TRUE(trusted.Contains(Ip("192.0.2.7")));
  EXPECT_TRUE(trusted.Contains(Ip("2001:db8::5")));
  EXPECT_FALSE(trusted.Contains(Ip("192.0.2.8")));
}

TEST(TrustedProxiesTest, EmptyListTrustsNobody) {
  for (const char* list : {"", " ", ",", " , "}) {
    const TrustedProxies trusted = Trusted(list);
    EXPECT_TRUE(trusted.empty()) << list;
    EXPECT_EQ(trusted.ToString(), "");
    EXPECT_FALSE(trusted.Contains(Ip("127.0.0.1")));
  }
}

TEST(TrustedProxiesTest, FirstBadItemIsNamed) {
  absl::StatusOr<TrustedProxies> trusted = TrustedProxies::Parse("10.0.0.0/8,lb.internal,x");
  ASSERT_FALSE(trusted.ok());
  EXPECT_THAT(trusted.status().message(), HasSubstr("lb.internal"));
}

TEST(ResolveClientIpTest, UntrustedPeerIsTheClientWhateverItSends) {
  const ClientIp ip = ResolveClientIp(Ip("203.0.113.5"), "198.51.100.1", Trusted("10.0.0.0/8"));
  EXPECT_EQ(ip.address.ToString(), "203.0.113.5");
  EXPECT_FALSE(ip.forwarded);
  EXPECT_EQ(Resolve("203.0.113.5", "198.51.100.1", ""), "203.0.113.5");
}

TEST(ResolveClientIpTest, TrustedPeerGivesTheLastHop) {
  const ClientIp ip =
      ResolveClientIp(Ip("10.0.0.2"), "1.1.1.1, 198.51.100.1", Trusted("10.0.0.0/8"));
  EXPECT_EQ(ip.address.ToString(), "198.51.100.1");
  EXPECT_TRUE(ip.forwarded);
}

TEST(ResolveClientIpTest, SpoofedLeftHopsAreNeverBelieved) {
  // The client sent "X-Forwarded-For: 10.0.0.9, 7.7.7.7" itself; the proxy
  // appended the address it saw (198.51.100.1).
  EXPECT_EQ(Resolve("10.0.0.2", "10.0.0.9, 7.7.7.7, 198.51.100.1", "10.0.0.0/8"), "198.51.100.1");
}

TEST(ResolveClientIpTest, ChainOfTrustedProxiesIsWalkedLeftwards) {
  EXPECT_EQ(Resolve("10.0.0.2", "198.51.100.1, 10.0.0.3", "10.0.0.0/8"), "198.51.100.1");
  EXPECT_EQ(Resolve("10.0.0.2", "1.1.1.1,198.51.100.1,10.0.0.4,10.0.0.3", "10.0.0.0/8"),
            "198.51.100.1");
}

TEST(ResolveClientIpTest, TrustedPeerWithoutHeaderIsItself) {
  const ClientIp ip = ResolveClientIp(Ip("10.0.0.2"), "", Trusted("10.0.0.0/8"));
  EXPECT_EQ(ip.address.ToString(), "10.0.0.2");
  EXPECT_FALSE(ip.forwarded);
  EXPECT_EQ(Resolve("10.0.0.2", " , ", "10.0.0.0/8"), "10.0.0.2");
}

TEST(ResolveClientIpTest, AllTrustedHopsGiveTheLeftmost) {
  EXPECT_EQ(Resolve("10.0.0.2", "10.0.0.7, 10.0.0.3", "10.0.0.0/8"), "10.0.0.7");
}

TEST(ResolveClientIpTest, GarbageHopStopsAtTheProxyThatWroteIt) {
  EXPECT_EQ(Resolve("10.0.0.2", "198.51.100.1, unknown", "10.0.0.0/8"), "10.0.0.2");
  EXPECT_EQ(Resolve("10.0.0.2", "garbage, 10.0.0.3", "10.0.0.0/8"), "10.0.0.3");
}

TEST(ResolveClientIpTest, HopsWithPortsBracketsAndMappedAddresses) {
  EXPECT_EQ(Resolve("10.0.0.2", "198.51.100.1:5555", "10.0.0.0/8"), "198.51.100.1");
  EXPECT_EQ(Resolve("10.0.0.2", "[2001:db8::9]:443", "10.0.0.0/8"), "2001:db8::9");
  EXPECT_EQ(Resolve("::ffff:10.0.0.2", "::ffff:198.51.100.1", "10.0.0.0/8"), "198.51.100.1");
}

TEST(ResolveClientIpTest, V6ProxyAndV4Client) {
  EXPECT_EQ(Resolve("2001:db8::1", "198.51.100.1", "2001:db8::/64"), "198.51.100.1");
}

}  // namespace
}  // namespace relay::gateway::net
