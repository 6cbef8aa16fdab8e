// Tests of bench/relay-bench/handshake: base64, the accept key (RFC 6455's
// example), the upgrade request, and response parsing across partial reads.
#include "bench/relay-bench/handshake.h"

#include "gtest/gtest.h"

namespace relay::bench {
namespace {

TEST(HandshakeTest, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
}

TEST(HandshakeTest, AcceptKeyMatchesRfc6455Example) {
  EXPECT_EQ(ComputeAcceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(HandshakeTest, ClientKeyIsBase64Of16Bytes) {
  const std::string key = MakeClientKey(0x0123456789ABCDEFull, 0xFEDCBA9876543210ull);
  EXPECT_EQ(key.size(), 24u);
  EXPECT_EQ(key.substr(22), "==");
  EXPECT_NE(key, MakeClientKey(1, 2));
}

TEST(HandshakeTest, RequestHasTheUpgradeHeaders) {
  const std::string request = BuildUpgradeRequest("127.0.0.1:8765", "/relay/m1", "KEY==");
  EXPECT_EQ(request.rfind("GET /relay/m1 HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(request.find("\r\nHost: 127.0.0.1:8765\r\n"), std::string::npos);
  EXPECT_NE(request.find("\r\nUpgrade: websocket\r\n"), std::string::npos);
  EXPECT_NE(request.find("\r\nConnection: Upgrade\r\n"), std::string::npos);
  EXPECT_NE(request.find("\r\nSec-WebSocket-Key: KEY==\r\n"), std::string::npos);
  EXPECT_NE(request.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos);
  EXPECT_EQ(request.substr(request.size() - 4), "\r\n\r\n");
}

constexpr char kAccept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string Response(const std::string& accept) {
  return "HTTP/1.1 101 Switching Protocols\r\n"
         "upgrade: WebSocket\r\n"
         "Connection: keep-alive, Upgrade\r\n"
         "Sec-WebSocket-Accept: " + accept + "\r\n"
         "Server: test\r\n\r\n";
}

TEST(HandshakeTest, AcceptsAValidResponseOnlyOnceComplete) {
  const std::string frames = "\x81\x02hi";
  const std::string data = Response(kAccept) + frames;
  const std::size_t head = data.size() - frames.size();
  for (std::size_t n = 0; n < head; ++n) {
    const HandshakeResult r = ParseUpgradeResponse(std::string_view(data).substr(0, n), kAccept);
    ASSERT_EQ(r.status, HandshakeResult::Status::kIncomplete) << n;
  }
  const HandshakeResult r = ParseUpgradeResponse(data, kAccept);
  ASSERT_EQ(r.status, HandshakeResult::Status::kAccepted) << r.error;
  EXPECT_EQ(r.consumed, head);  // frames after the head are left for the frame decoder
  EXPECT_EQ(r.http_status, 101);
}

TEST(HandshakeTest, RejectsWrongAcceptStatusAndHeaders) {
  HandshakeResult r = ParseUpgradeResponse(Response("bm90IHRoZSByaWdodCBrZXk="), kAccept);
  EXPECT_EQ(r.status, HandshakeResult::Status::kRejected);
  EXPECT_NE(r.error.find("Accept"), std::string::npos);

  r = ParseUpgradeResponse(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n{}", kAccept);
  EXPECT_EQ(r.status, HandshakeResult::Status::kRejected);
  EXPECT_EQ(r.http_status, 503);
  EXPECT_NE(r.error.find("503"), std::string::npos);

  r = ParseUpgradeResponse(
      std::string("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: ") + kAccept + "\r\n\r\n",
      kAccept);
  EXPECT_EQ(r.status, HandshakeResult::Status::kRejected);  // no Upgrade header

  r = ParseUpgradeResponse("garbage\r\n\r\n", kAccept);
  EXPECT_EQ(r.status, HandshakeResult::Status::kRejected);

  r = ParseUpgradeResponse(std::string(17 * 1024, 'x'), kAccept);
  EXPECT_EQ(r.status, HandshakeResult::Status::kRejected);
}

}  // namespace
}  // namespace relay::bench
