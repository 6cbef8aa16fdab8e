// LingeringCloser over real loopback sockets: what the peer of a closed
// socket observes. The property that matters is that bytes the relay sent
// before closing reach a peer that is still writing (no RST drops them).
#include "gateway/ws/lingering_closer.h"

#include <sys/socket.h>

#include <chrono>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;

class LingeringCloserTest : public ::testing::Test {
 protected:
  // A connected pair: `server` (what the closer gets) and `client`.
  void Connect() {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client_.connect(acceptor.local_endpoint());
    acceptor.accept(server_);
  }

  // The client writes `n` bytes the server never reads, so they sit in the
  // server's receive queue when it closes.
  void ClientWritesUnread(std::size_t n) {
    std::string junk(n, 'x');
    asio::write(client_, asio::buffer(junk));
  }

  asio::error_code ClientWrites(std::size_t n) {
    std::string junk(n, 'y');
    asio::error_code ec;
    asio::write(client_, asio::buffer(junk), ec);
    return ec;
  }

  // Reads on the client until EOF or an error; returns what was read and the
  // error that ended it.
  std::pair<std::string, asio::error_code> ClientReadsToEnd() {
    std::string got;
    asio::error_code ec;
    char buf[4096];
    for (;;) {
      std::size_t n = client_.read_some(asio::buffer(buf), ec);
      if (ec) break;
      got.append(buf, n);
    }
    return {got, ec};
  }

  void RunFor(std::chrono::milliseconds d) {
    io_.restart();
    io_.run_for(d);
  }

  asio::io_context io_;
  tcp::socket server_{io_};
  tcp::socket client_{io_};
};

TEST_F(LingeringCloserTest, PeerStillWritingIsNotResetAndReadsEverythingSentBeforeTheClose) {
  Connect();
  ClientWritesUnread(64 * 1024);
  asio::write(server_, asio::buffer(std::string("close frame")));
  LingeringCloser closer(2s, 16);
  closer.Close(server_);
  EXPECT_FALSE(server_.is_open());  // taken over
  EXPECT_EQ(closer.lingering(), 1u);
  // The peer has not noticed yet and keeps writing; none of it fails.
  for (int i = 0; i < 5; ++i) {
    RunFor(20ms);
    EXPECT_EQ(ClientWrites(16 * 1024), asio::error_code()) << "write " << i;
  }
  auto [got, ec] = ClientReadsToEnd();
  EXPECT_EQ(got, "close frame");
  EXPECT_EQ(ec, asio::error::eof);  // FIN, not a reset
  client_.shutdown(tcp::socket::shutdown_send);
  RunFor(100ms);
  EXPECT_EQ(closer.lingering(), 0u);  // the peer's FIN ended the linger
}

TEST_F(LingeringCloserTest, ClosingAtOnceWithUnreadBytesResetsAPeerStillWriting) {
  // The failure the closer exists for, shown with max_lingering 0: the peer's
  // next writes fail, and a client library then drops the connection before
  // it reads the close frame.
  Connect();
  ClientWritesUnread(64 * 1024);
  LingeringCloser closer(2s, 0);
  closer.Close(server_);
  EXPECT_EQ(closer.lingering(), 0u);
  asio::error_code ec;
  for (int i = 0; i < 5 && !ec; ++i) {
    RunFor(20ms);
    ec = ClientWrites(16 * 1024);
  }
  EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
      << ec.message();
}

TEST_F(LingeringCloserTest, PeerThatNeverClosesIsCutAtTheDeadline) {
  Connect();
  LingeringCloser closer(100ms, 16);
  closer.Close(server_);
  RunFor(30ms);
  EXPECT_EQ(closer.lingering(), 1u);
  RunFor(300ms);
  EXPECT_EQ(closer.lingering(), 0u);
  auto [got, ec] = ClientReadsToEnd();
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(LingeringCloserTest, BeyondMaxLingeringSocketsCloseAtOnce) {
  LingeringCloser closer(2s, 2);
  std::vector<tcp::socket> clients;
  for (int i = 0; i < 3; ++i) {
    Connect();
    closer.Close(server_);
    clients.push_back(std::move(client_));
    client_ = tcp::socket(io_);
  }
  EXPECT_EQ(closer.lingering(), 2u);
  // The third was closed outright: its peer sees EOF at once.
  clients[2].non_blocking(false);
  char c;
  asio::error_code ec;
  clients[2].read_some(asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(LingeringCloserTest, ClosedSocketIsIgnored) {
  LingeringCloser closer(2s, 2);
  closer.Close(server_);
  EXPECT_EQ(closer.lingering(), 0u);
}

TEST_F(LingeringCloserTest, ReadLeftPendingByThePreviousOwnerDoesNotHideThePeersFin) {
  // websocketpp leaves its read pending when it hands the socket over. That
  // read must not swallow the peer's EOF, or the socket lingers until the
  // deadline (fds pile up under connection churn).
  Connect();
  char previous_owner_buffer[64];
  bool previous_read_done = false;
  server_.async_read_some(asio::buffer(previous_owner_buffer),
                          [&](const asio::error_code&, std::size_t) { previous_read_done = true; });
  RunFor(10ms);
  LingeringCloser closer(5s, 16);
  closer.Close(server_);
  RunFor(10ms);
  EXPECT_TRUE(previous_read_done);  // ended (aborted), not left to race the drain
  client_.shutdown(tcp::socket::shutdown_send);  // the peer's FIN
  RunFor(100ms);
  EXPECT_EQ(closer.lingering(), 0u) << "the drain missed the FIN and waits for its deadline";
}

TEST_F(LingeringCloserTest, OutlivingTheEventLoopIsSafe) {
  auto closer = std::make_unique<LingeringCloser>(2s, 16);
  Connect();
  closer->Close(server_);
  closer.reset();  // the gateway goes first; pending drains still hold the count
  RunFor(10ms);
}

}  // namespace
}  // namespace relay::gateway
