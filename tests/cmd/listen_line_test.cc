// Tests for cmd/relay/listen_line.cc: the HOST:PORT form (IPv6 in brackets)
// and the listening line in both log formats.
#include "cmd/relay/listen_line.h"

#include "gtest/gtest.h"

namespace relay {
namespace {

TEST(HostPortTest, Ipv6InBracketsOthersAsTheyAre) {
  EXPECT_EQ(HostPort("::1", 36011), "[::1]:36011");
  EXPECT_EQ(HostPort("::", 8765), "[::]:8765");
  EXPECT_EQ(HostPort("fe80::1%eth0", 1), "[fe80::1%eth0]:1");
  EXPECT_EQ(HostPort("[::1]", 2), "[::1]:2") << "already bracketed";
  EXPECT_EQ(HostPort("0.0.0.0", 8765), "0.0.0.0:8765");
  EXPECT_EQ(HostPort("localhost", 50051), "localhost:50051");
}

TEST(ListeningLineTest, TextAsSupervisorsReadIt) {
  EXPECT_EQ(ListeningLine(log::Format::kText, "ws", "::1", 36011, absl::UnixEpoch()),
            "relay: listening ws on [::1]:36011\n");
}

TEST(ListeningLineTest, JsonIsTheListeningLogEvent) {
  const absl::Time t = absl::FromUnixMillis(1764151201512);  // 2025-11-26T10:00:01.512Z
  EXPECT_EQ(ListeningLine(log::Format::kJson, "grpc", "127.0.0.1", 50051, t),
            "{\"ts\":\"2025-11-26T10:00:01.512Z\",\"level\":\"info\",\"event\":\"listening\","
            "\"transport\":\"grpc\",\"address\":\"127.0.0.1:50051\"}\n");
  // A host name is the operator's, but still escaped.
  EXPECT_NE(ListeningLine(log::Format::kJson, "ws", "a\"b", 1, t).find("\"address\":\"a\\\"b:1\""),
            std::string::npos);
}

}  // namespace
}  // namespace relay
