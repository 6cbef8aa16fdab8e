// Tests for gateway/ws/http_messages.cc: websocketpp's request parser and
// response writer with the relay's edges (HTTP/1.0 without Host, upgrades
// without version 13, JSON bodies on websocketpp's own errors), fed byte
// streams as a socket would, whole and split at every position.
#include "gateway/ws/http_messages.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "websocketpp/http/constants.hpp"

namespace relay::gateway {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Feeds `text` in two reads split at `split`; false if the parser threw.
bool Parse(const std::string& text, std::size_t split, RelayHttpRequest* request) {
  try {
    std::size_t done = request->consume(text.data(), split);
    if (!request->ready()) done += request->consume(text.data() + split, text.size() - split);
    return true;
  } catch (const websocketpp::http::exception&) {
    return false;
  }
}

TEST(RelayHttpRequestTest, Http10WithoutHostIsServedAtEverySplit) {
  const std::string probe = "GET /health HTTP/1.0\r\n\r\n";
  for (std::size_t split = 0; split <= probe.size(); ++split) {
    RelayHttpRequest request;
    ASSERT_TRUE(Parse(probe, split, &request)) << split;
    EXPECT_TRUE(request.ready()) << split;
    EXPECT_EQ(request.get_method(), "GET");
    EXPECT_EQ(request.get_uri(), "/health");
  }
}

TEST(RelayHttpRequestTest, Http10WithOtherHeadersButNoHostIsServed) {
  RelayHttpRequest request;
  const std::string probe = "GET /ready HTTP/1.0\r\nUser-Agent: lb-probe\r\n\r\n";
  ASSERT_TRUE(Parse(probe, probe.size() / 2, &request));
  EXPECT_TRUE(request.ready());
  EXPECT_EQ(request.get_header("User-Agent"), "lb-probe");
}

TEST(RelayHttpRequestTest, Http11WithoutHostIsStillRefused) {
  RelayHttpRequest request;
  EXPECT_FALSE(Parse("GET /health HTTP/1.1\r\n\r\n", 5, &request));
}

TEST(RelayHttpRequestTest, HostIsKeptWhenSent) {
  RelayHttpRequest request;
  ASSERT_TRUE(Parse("GET / HTTP/1.0\r\nHost: relay.example\r\n\r\n", 3, &request));
  EXPECT_EQ(request.get_header("Host"), "relay.example");
}

TEST(RelayHttpRequestTest, UpgradeWithoutVersionIsMarkedAndHandedOnAsThirteen) {
  const std::string upgrade =
      "GET /relay/m HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
  for (std::size_t split = 0; split <= upgrade.size(); ++split) {
    RelayHttpRequest request;
    ASSERT_TRUE(Parse(upgrade, split, &request)) << split;
    EXPECT_TRUE(request.websocket_version_unsupported()) << split;
    EXPECT_EQ(request.get_header("Sec-WebSocket-Version"), "13");
  }
}

TEST(RelayHttpRequestTest, UpgradeWithAnotherVersionIsMarked) {
  for (const char* version : {"0", "8", "12", "x"}) {
    RelayHttpRequest request;
    ASSERT_TRUE(Parse(std::string("GET /relay/m HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\nSec-WebSocket-Version: ") +
                          version + "\r\n\r\n",
                      10, &request));
    EXPECT_TRUE(request.websocket_version_unsupported()) << version;
  }
}

TEST(RelayHttpRequestTest, UpgradeWithVersionThirteenAndPlainRequestsAreNotMarked) {
  RelayHttpRequest upgrade;
  ASSERT_TRUE(
      Parse("GET /relay/m HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
            7, &upgrade));
  EXPECT_FALSE(upgrade.websocket_version_unsupported());
  RelayHttpRequest plain;
  ASSERT_TRUE(Parse("GET /stats HTTP/1.1\r\nHost: x\r\n\r\n", 7, &plain));
  EXPECT_FALSE(plain.websocket_version_unsupported());
}

TEST(RelayHttpRequestTest, BytesAfterTheHeadersAreLeftToTheCaller) {
  RelayHttpRequest request;
  const std::string text = "GET /relay/m HTTP/1.0\r\n\r\nFRAME";
  EXPECT_EQ(request.consume(text.data(), text.size()), text.size() - 5);
  EXPECT_TRUE(request.ready());
}

TEST(RelayHttpResponseTest, ErrorWithoutBodyGetsAJsonBody) {
  RelayHttpResponse response;
  response.set_version("HTTP/1.1");  // as the connection does before writing
  response.set_status(websocketpp::http::status_code::bad_request, "");

  const std::string raw = response.raw();

  EXPECT_THAT(raw, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(raw, HasSubstr("Content-Type: application/json\r\n"));
  EXPECT_THAT(raw, HasSubstr("\r\n\r\n{\"error\":\"bad_request\",\"message\":"));
  EXPECT_THAT(raw, EndsWith("}"));
}

TEST(RelayHttpResponseTest, HeadersOnlyAndBodiedResponsesAreLeftAlone) {
  RelayHttpResponse head;
  head.set_status(websocketpp::http::status_code::not_found);
  head.replace_header("Content-Length", "47");
  EXPECT_THAT(head.raw(), EndsWith("Content-Length: 47\r\n\r\n"));

  RelayHttpResponse ok;
  ok.set_status(websocketpp::http::status_code::ok);
  EXPECT_THAT(ok.raw(), EndsWith("\r\n\r\n"));

  RelayHttpResponse bodied;
  bodied.set_status(websocketpp::http::status_code::service_unavailable);
  bodied.set_body("{\"error\":\"draining\"}");
  EXPECT_THAT(bodied.raw(), EndsWith("\r\n\r\n{\"error\":\"draining\"}"));
}

// What websocketpp answers itself to an upgrade it cannot serve: the status,
// no body (RelayHttpResponse::raw() writes the JSON one).
RelayHttpResponse BodilessError(websocketpp::http::status_code::value status) {
  RelayHttpResponse response;
  response.set_status(status);
  return response;
}

const char kUpgradeWithoutKey[] =
    "GET /relay/m HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

TEST(UpgradeRefusedByWebsocketppTest, AnUpgradeAnsweredWithABodilessErrorIsOne) {
  RelayHttpRequest request;
  ASSERT_TRUE(Parse(kUpgradeWithoutKey, 9, &request));

  EXPECT_TRUE(UpgradeRefusedByWebsocketpp(
      request, BodilessError(websocketpp::http::status_code::bad_request)));
}

TEST(UpgradeRefusedByWebsocketppTest, AnUpgradeWithoutHostThatThrewIsOne) {
  // HTTP/1.1 without Host: the parser throws once the headers are complete,
  // after it has read Upgrade and Connection.
  RelayHttpRequest request;
  ASSERT_FALSE(
      Parse("GET /relay/m HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            11, &request));

  EXPECT_TRUE(UpgradeRefusedByWebsocketpp(
      request, BodilessError(websocketpp::http::status_code::bad_request)));
}

TEST(UpgradeRefusedByWebsocketppTest, TheGatewaysOwnRefusalsCarryABodyAndAreNot) {
  // OnValidate counts those itself (bad_mesh_id, draining...).
  RelayHttpRequest request;
  ASSERT_TRUE(Parse(kUpgradeWithoutKey, 9, &request));
  RelayHttpResponse refused = BodilessError(websocketpp::http::status_code::bad_request);
  refused.set_body("{\"error\":\"bad_mesh_id\"}");

  EXPECT_FALSE(UpgradeRefusedByWebsocketpp(request, refused));
}

TEST(UpgradeRefusedByWebsocketppTest, PlainRequestsAndUnansweredOnesAreNot) {
  RelayHttpRequest plain;
  (void)Parse("GARBAGE\r\n\r\n", 3, &plain);  // a bad request line throws; either way no upgrade
  EXPECT_FALSE(UpgradeRefusedByWebsocketpp(
      plain, BodilessError(websocketpp::http::status_code::bad_request)));

  // A handshake timeout: the request is incomplete and nothing was answered.
  RelayHttpRequest partial;
  partial.consume(kUpgradeWithoutKey, 40);
  ASSERT_FALSE(partial.ready());
  EXPECT_FALSE(UpgradeRefusedByWebsocketpp(partial, RelayHttpResponse()));

  RelayHttpRequest upgrade;
  ASSERT_TRUE(Parse(kUpgradeWithoutKey, 9, &upgrade));
  EXPECT_FALSE(UpgradeRefusedByWebsocketpp(
      upgrade, BodilessError(websocketpp::http::status_code::switching_protocols)));
}

}  // namespace
}  // namespace relay::gateway
