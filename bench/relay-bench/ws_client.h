// WsClient: one non-blocking WebSocket client connection on an EventLoop.
// It connects, performs the upgrade itself, masks every frame it sends,
// decodes the server's frames (partial frames across reads, fragmented
// messages), answers pings, runs the close handshake, and keeps its own
// outgoing buffer when the socket would block (EAGAIN / partial writes).
//
// Callbacks (WsClientHandler) run on the loop. A callback may send or close,
// but must not Start() a client or destroy one: do that between loop turns.
#ifndef RELAY_BENCH_RELAY_BENCH_WS_CLIENT_H_
#define RELAY_BENCH_RELAY_BENCH_WS_CLIENT_H_

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/relay-bench/event_loop.h"
#include "bench/relay-bench/ws_frame.h"

namespace relay::bench {

class WsClient;

// How a connection ended.
struct CloseInfo {
  bool clean = false;       // close frames both ways, then the server's FIN
  bool by_server = false;   // the server closed first (close frame or TCP)
  int code = 1006;          // close code received; 1006 when there was none
  std::string reason;       // close reason, or the error that ended it
};

class WsClientHandler {
 public:
  virtual void OnOpen(WsClient& client) = 0;
  // A complete text or binary message; the view dies when the callback returns.
  virtual void OnMessage(WsClient& client, std::string_view message) = 0;
  virtual void OnClosed(WsClient& client, const CloseInfo& info) = 0;

 protected:
  ~WsClientHandler() = default;
};

class WsClient final : public IoHandler {
 public:
  enum class State { kIdle, kConnecting, kHandshaking, kOpen, kClosing, kClosed };

  // Largest server message accepted (the relay's own limit is 1 MiB).
  static constexpr std::size_t kMaxMessageBytes = 16 * 1024 * 1024;

  WsClient(EventLoop* loop, WsClientHandler* handler, std::uint64_t seed);
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Connects to `server` (from `source` when its address is not 0) and
  // upgrades `path`; `host` is the Host header. False (and `*error`) when
  // the connect fails at once. Only from kIdle or kClosed.
  bool Start(const sockaddr_in& server, std::string_view host, std::string_view path,
             std::string* error, const sockaddr_in* source = nullptr);
  // The same over an already connected socket, which it takes over (tests).
  bool Adopt(int fd, std::string_view host, std::string_view path, std::string* error);

  // Queues one text message; it is written at the end of the loop turn.
  void SendText(std::string_view message);
  // Sends a close frame (once); OnClosed follows when the server has answered
  // and closed its side.
  void Close(std::uint16_t code = 1000, std::string_view reason = {});
  // Closes the socket now, without a close frame and without OnClosed.
  void Abort();

  State state() const { return state_; }
  bool is_open() const { return state_ == State::kOpen; }
  std::size_t queued_bytes() const { return out_.size() - out_sent_; }
  std::uint64_t write_blocked_count() const { return write_blocked_; }
  int fd() const { return fd_; }

  // Free for the driver that owns the client.
  int role = 0;
  int index = 0;
  std::uint32_t serial = 0;

  void OnIo(std::uint32_t events) override;
  void OnFlush() override;

 private:
  void BeginHandshake(std::string_view host, std::string_view path);
  void ReadAvailable();
  void ProcessInput();
  bool ProcessFrames();  // false once the connection ended
  void QueueFrame(Opcode op, std::string_view payload);
  void ScheduleFlush();
  void Flush();
  void SetWantWrite(bool want);
  void Finish(CloseInfo info);  // closes the socket, then OnClosed
  void Fail(std::string reason);
  std::uint32_t NextMaskKey();

  EventLoop* const loop_;
  WsClientHandler* const handler_;
  std::uint64_t rng_;
  State state_ = State::kIdle;
  int fd_ = -1;
  std::string expected_accept_;

  // Input: bytes [in_begin_, in_end_) of in_ are not parsed yet.
  std::vector<char> in_;
  std::size_t in_begin_ = 0;
  std::size_t in_end_ = 0;
  MessageAssembler assembler_;

  // Output: bytes [out_sent_, size) of out_ are not written yet.
  std::string out_;
  std::size_t out_sent_ = 0;
  bool flush_scheduled_ = false;
  bool want_write_ = false;
  std::uint64_t write_blocked_ = 0;

  // Close handshake.
  bool sent_close_ = false;
  bool received_close_ = false;
  bool server_closed_first_ = false;
  int close_code_ = 1006;
  std::string close_reason_;
};

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_WS_CLIENT_H_
