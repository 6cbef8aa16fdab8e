// Tests of bench/relay-bench/ws_client over a socketpair, the test playing
// the server: the upgrade, frames split at every byte, pings, the client's
// own buffer when the socket is full (EAGAIN, partial writes), and the ways
// a connection ends.
#include "bench/relay-bench/ws_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "bench/relay-bench/handshake.h"
#include "bench/relay-bench/ws_frame.h"
#include "gtest/gtest.h"

namespace relay::bench {
namespace {

class Recorder : public WsClientHandler {
 public:
  void OnOpen(WsClient&) override { ++opened; }
  void OnMessage(WsClient&, std::string_view message) override { messages.emplace_back(message); }
  void OnClosed(WsClient&, const CloseInfo& info) override {
    ++closed;
    last = info;
  }
  int opened = 0;
  int closed = 0;
  std::vector<std::string> messages;
  CloseInfo last;
};

// Server frame (unmasked), 7- or 16-bit length.
std::string ServerFrame(Opcode op, const std::string& payload) {
  std::string wire;
  wire.push_back(static_cast<char>(0x80 | static_cast<int>(op)));
  if (payload.size() < 126) {
    wire.push_back(static_cast<char>(payload.size()));
  } else {
    wire.push_back(126);
    wire.push_back(static_cast<char>(payload.size() >> 8));
    wire.push_back(static_cast<char>(payload.size()));
  }
  return wire + payload;
}

class WsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    client_fd_ = fds[0];
    server_fd_ = fds[1];
    std::string error;
    ASSERT_TRUE(client_.Adopt(client_fd_, "127.0.0.1:1", "/relay/m", &error)) << error;
  }
  void TearDown() override {
    client_.Abort();
    if (server_fd_ >= 0) close(server_fd_);
  }

  // Everything the client wrote so far (runs the loop until it is quiet).
  std::string ReadFromClient() {
    std::string data;
    for (int idle = 0; idle < 3;) {
      loop_.RunOnce(0);
      pollfd p{server_fd_, POLLIN, 0};
      if (poll(&p, 1, 10) <= 0) {
        ++idle;
        continue;
      }
      char buf[65536];
      const ssize_t n = read(server_fd_, buf, sizeof buf);
      if (n <= 0) break;
      data.append(buf, static_cast<std::size_t>(n));
      idle = 0;
    }
    return data;
  }

  void WriteToClient(const std::string& bytes, std::size_t piece = SIZE_MAX) {
    for (std::size_t off = 0; off < bytes.size();) {
      const std::size_t n = std::min(piece, bytes.size() - off);
      ASSERT_EQ(write(server_fd_, bytes.data() + off, n), static_cast<ssize_t>(n));
      off += n;
      loop_.RunOnce(0);
    }
    for (int i = 0; i < 3; ++i) loop_.RunOnce(1);
  }

  // Reads the upgrade request and accepts it.
  void AcceptUpgrade(const std::string& extra = "", std::size_t piece = SIZE_MAX) {
    const std::string request = ReadFromClient();
    ASSERT_NE(request.find("GET /relay/m HTTP/1.1\r\n"), std::string::npos);
    const std::size_t k = request.find("Sec-WebSocket-Key: ");
    ASSERT_NE(k, std::string::npos);
    const std::string key = request.substr(k + 19, request.find("\r\n", k) - k - 19);
    WriteToClient("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                      ComputeAcceptKey(key) + "\r\n\r\n" + extra,
                  piece);
  }

  // Decodes the client's (masked) frames.
  static std::vector<std::pair<Opcode, std::string>> DecodeClientFrames(std::string data) {
    std::vector<std::pair<Opcode, std::string>> frames;
    std::size_t off = 0;
    while (off < data.size()) {
      Frame frame;
      const DecodeResult r = DecodeFrame(data.data() + off, data.size() - off, SIZE_MAX, &frame);
      EXPECT_EQ(r.status, DecodeStatus::kFrame);
      if (r.status != DecodeStatus::kFrame) break;
      EXPECT_TRUE(frame.masked);
      frames.emplace_back(frame.opcode, std::string(frame.payload));
      off += r.consumed;
    }
    return frames;
  }

  EventLoop loop_;
  Recorder recorder_;
  WsClient client_{&loop_, &recorder_, 7};
  int client_fd_ = -1;
  int server_fd_ = -1;
};

TEST_F(WsClientTest, UpgradesAndReadsFramesSplitAtEveryByte) {
  const std::string big(1000, 'b');
  // The response head and the first frames arrive together, one byte at a time.
  AcceptUpgrade(ServerFrame(Opcode::kText, "first") + ServerFrame(Opcode::kText, big), 1);
  EXPECT_EQ(recorder_.opened, 1);
  EXPECT_TRUE(client_.is_open());
  ASSERT_EQ(recorder_.messages.size(), 2u);
  EXPECT_EQ(recorder_.messages[0], "first");
  EXPECT_EQ(recorder_.messages[1], big);

  // A fragmented message with a ping in the middle.
  std::string fragmented;
  fragmented += "\x01\x03" "abc";  // text, FIN=0
  fragmented += ServerFrame(Opcode::kPing, "pp");
  fragmented += "\x80\x03" "def";  // continuation, FIN=1
  WriteToClient(fragmented, 2);
  ASSERT_EQ(recorder_.messages.size(), 3u);
  EXPECT_EQ(recorder_.messages[2], "abcdef");
  const auto pong = DecodeClientFrames(ReadFromClient());
  ASSERT_EQ(pong.size(), 1u);
  EXPECT_EQ(pong[0].first, Opcode::kPong);
  EXPECT_EQ(pong[0].second, "pp");
}

TEST_F(WsClientTest, KeepsItsOwnBufferWhenTheSocketIsFull) {
  AcceptUpgrade();
  ASSERT_TRUE(client_.is_open());
  int small = 4096;
  setsockopt(client_fd_, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  const int kMessages = 2000;
  for (int i = 0; i < kMessages; ++i) {
    client_.SendText(std::to_string(i) + ":" + std::string(1000, static_cast<char>('a' + i % 26)));
  }
  loop_.RunOnce(0);  // the flush: far more than the socket takes
  EXPECT_GT(client_.queued_bytes(), 0u);
  EXPECT_GT(client_.write_blocked_count(), 0u);
  const auto frames = DecodeClientFrames(ReadFromClient());
  EXPECT_EQ(client_.queued_bytes(), 0u);
  ASSERT_EQ(frames.size(), static_cast<std::size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(frames[i].first, Opcode::kText);
    ASSERT_EQ(frames[i].second,
              std::to_string(i) + ":" + std::string(1000, static_cast<char>('a' + i % 26)));
  }
}

TEST_F(WsClientTest, ServerCloseIsAnsweredAndEndsCleanlyAfterFin) {
  AcceptUpgrade();
  WriteToClient(ServerFrame(Opcode::kClose, ClosePayload(1001, "server shutting down")));
  const auto reply = DecodeClientFrames(ReadFromClient());
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply[0].first, Opcode::kClose);
  EXPECT_EQ(reply[0].second, ClosePayload(1001));
  EXPECT_EQ(recorder_.closed, 0);  // waits for the server's FIN
  shutdown(server_fd_, SHUT_WR);
  for (int i = 0; i < 5; ++i) loop_.RunOnce(1);
  ASSERT_EQ(recorder_.closed, 1);
  EXPECT_TRUE(recorder_.last.clean);
  EXPECT_TRUE(recorder_.last.by_server);
  EXPECT_EQ(recorder_.last.code, 1001);
  EXPECT_EQ(recorder_.last.reason, "server shutting down");
}

TEST_F(WsClientTest, ClientCloseEndsCleanlyWhenTheServerAnswers) {
  AcceptUpgrade();
  client_.Close(1000);
  client_.SendText("dropped: after the close frame");
  const auto frames = DecodeClientFrames(ReadFromClient());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].first, Opcode::kClose);
  WriteToClient(ServerFrame(Opcode::kClose, ClosePayload(1000)));
  shutdown(server_fd_, SHUT_WR);
  for (int i = 0; i < 5; ++i) loop_.RunOnce(1);
  ASSERT_EQ(recorder_.closed, 1);
  EXPECT_TRUE(recorder_.last.clean);
  EXPECT_FALSE(recorder_.last.by_server);
}

TEST_F(WsClientTest, DroppedConnectionIsAbnormal) {
  AcceptUpgrade();
  close(server_fd_);
  server_fd_ = -1;
  for (int i = 0; i < 5; ++i) loop_.RunOnce(1);
  ASSERT_EQ(recorder_.closed, 1);
  EXPECT_FALSE(recorder_.last.clean);
  EXPECT_EQ(recorder_.last.code, 1006);
}

TEST_F(WsClientTest, RefusedUpgradeEndsWithTheStatus) {
  ReadFromClient();
  WriteToClient("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}");
  ASSERT_EQ(recorder_.closed, 1);
  EXPECT_EQ(recorder_.opened, 0);
  EXPECT_NE(recorder_.last.reason.find("503"), std::string::npos) << recorder_.last.reason;
}

TEST_F(WsClientTest, MaskedServerFrameIsAProtocolError) {
  AcceptUpgrade();
  std::string masked;
  AppendClientFrame(&masked, Opcode::kText, "masked", 1234);
  WriteToClient(masked);
  ASSERT_EQ(recorder_.closed, 1);
  EXPECT_FALSE(recorder_.last.clean);
  EXPECT_TRUE(recorder_.messages.empty());
}

}  // namespace
}  // namespace relay::bench
