// Non-blocking WebSocket client connection of relay-bench (see ws_client.h).
#include "bench/relay-bench/ws_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bench/relay-bench/handshake.h"

namespace relay::bench {

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;

std::uint64_t SplitMix64(std::uint64_t* state) {
  std::uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string ErrnoText(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

}  // namespace

WsClient::WsClient(EventLoop* loop, WsClientHandler* handler, std::uint64_t seed)
    : loop_(loop), handler_(handler), rng_(seed) {}

WsClient::~WsClient() { Abort(); }

std::uint32_t WsClient::NextMaskKey() {
  // xorshift64: a benchmark needs distinct keys, not unpredictable ones.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return static_cast<std::uint32_t>(rng_ >> 16);
}

bool WsClient::Start(const sockaddr_in& server, std::string_view host, std::string_view path,
                     std::string* error, const sockaddr_in* source) {
  if (state_ != State::kIdle && state_ != State::kClosed) {
    *error = "client already started";
    return false;
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = ErrnoText("socket", errno);
    return false;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (source != nullptr && source->sin_addr.s_addr != 0) {
    // Choose the port at connect time, per destination: many source
    // addresses then multiply the ephemeral ports available for churn.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(source), sizeof *source) != 0) {
      *error = ErrnoText("bind", errno);
      close(fd);
      return false;
    }
  }
  const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server);
  if (rc != 0 && errno != EINPROGRESS) {
    *error = ErrnoText("connect", errno);
    close(fd);
    return false;
  }
  fd_ = fd;
  in_begin_ = in_end_ = 0;
  out_.clear();
  out_sent_ = 0;
  want_write_ = true;
  sent_close_ = received_close_ = server_closed_first_ = false;
  close_code_ = 1006;
  close_reason_.clear();
  assembler_ = MessageAssembler();
  state_ = State::kConnecting;
  if (!loop_->Add(fd_, this, /*want_write=*/true)) {
    *error = ErrnoText("epoll_ctl", errno);
    close(fd_);
    fd_ = -1;
    state_ = State::kClosed;
    return false;
  }
  BeginHandshake(host, path);  // queued; written once connected
  return true;
}

bool WsClient::Adopt(int fd, std::string_view host, std::string_view path, std::string* error) {
  if (state_ != State::kIdle && state_ != State::kClosed) {
    *error = "client already started";
    return false;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  fd_ = fd;
  in_begin_ = in_end_ = 0;
  out_.clear();
  out_sent_ = 0;
  want_write_ = false;
  sent_close_ = received_close_ = server_closed_first_ = false;
  close_code_ = 1006;
  close_reason_.clear();
  assembler_ = MessageAssembler();
  if (!loop_->Add(fd_, this, /*want_write=*/false)) {
    *error = ErrnoText("epoll_ctl", errno);
    fd_ = -1;
    state_ = State::kClosed;
    return false;
  }
  BeginHandshake(host, path);
  state_ = State::kHandshaking;
  ScheduleFlush();
  return true;
}

void WsClient::BeginHandshake(std::string_view host, std::string_view path) {
  const std::string key = MakeClientKey(SplitMix64(&rng_), SplitMix64(&rng_));
  expected_accept_ = ComputeAcceptKey(key);
  out_ = BuildUpgradeRequest(host, path, key);
}

void WsClient::SendText(std::string_view message) {
  if (state_ == State::kClosed || state_ == State::kIdle || sent_close_) return;
  QueueFrame(Opcode::kText, message);
}

void WsClient::Close(std::uint16_t code, std::string_view reason) {
  if (sent_close_ || (state_ != State::kOpen && state_ != State::kClosing)) return;
  QueueFrame(Opcode::kClose, ClosePayload(code, reason));
  sent_close_ = true;
  state_ = State::kClosing;
}

void WsClient::Abort() {
  if (fd_ >= 0) {
    loop_->Remove(fd_);
    close(fd_);
    fd_ = -1;
  }
  if (state_ != State::kIdle) state_ = State::kClosed;
}

void WsClient::QueueFrame(Opcode op, std::string_view payload) {
  if (out_sent_ > 0 && out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
  }
  AppendClientFrame(&out_, op, payload, NextMaskKey());
  ScheduleFlush();
}

void WsClient::ScheduleFlush() {
  // While connecting, or while the kernel buffer is full, EPOLLOUT will call Flush.
  if (flush_scheduled_ || want_write_ || state_ == State::kConnecting) return;
  flush_scheduled_ = true;
  loop_->DeferFlush(this);
}

void WsClient::OnFlush() {
  flush_scheduled_ = false;
  if (state_ == State::kClosed || state_ == State::kIdle || state_ == State::kConnecting) return;
  Flush();
}

void WsClient::SetWantWrite(bool want) {
  if (want == want_write_ || fd_ < 0) return;
  want_write_ = want;
  loop_->Modify(fd_, this, want);
}

void WsClient::Flush() {
  while (out_sent_ < out_.size()) {
    const ssize_t n =
        send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_sent_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      ++write_blocked_;
      // Keep what was not written; EPOLLOUT tells when there is room again.
      if (out_sent_ > (1u << 20) && out_sent_ > out_.size() / 2) {
        out_.erase(0, out_sent_);
        out_sent_ = 0;
      }
      SetWantWrite(true);
      return;
    }
    Fail(ErrnoText("send", n < 0 ? errno : EPIPE));
    return;
  }
  out_.clear();
  out_sent_ = 0;
  SetWantWrite(false);
}

void WsClient::OnIo(std::uint32_t events) {
  if (fd_ < 0) return;  // ended earlier in this turn
  if (state_ == State::kConnecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(ErrnoText("connect", err));
      return;
    }
    state_ = State::kHandshaking;
    Flush();  // the upgrade request
    if (fd_ < 0) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    ReadAvailable();
    if (fd_ < 0) return;
  }
  if ((events & EPOLLOUT) && want_write_) Flush();
}

void WsClient::ReadAvailable() {
  for (int reads = 0; reads < 4; ++reads) {
    if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
    if (in_.size() - in_end_ < kReadChunk / 4) {
      if (in_begin_ > 0) {
        std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
        in_end_ -= in_begin_;
        in_begin_ = 0;
      }
      if (in_.size() - in_end_ < kReadChunk / 4) in_.resize(in_.size() + kReadChunk);
    }
    const std::size_t room = in_.size() - in_end_;
    const ssize_t n = read(fd_, in_.data() + in_end_, room);
    if (n > 0) {
      in_end_ += static_cast<std::size_t>(n);
      ProcessInput();
      if (fd_ < 0) return;
      if (static_cast<std::size_t>(n) < room) return;  // drained (level-triggered: safe)
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n == 0) {
      // The server's FIN.
      CloseInfo info;
      info.code = close_code_;
      info.reason = close_reason_;
      info.by_server = server_closed_first_ || !sent_close_;
      if (state_ == State::kHandshaking) {
        Fail("server closed the connection during the handshake");
        return;
      }
      info.clean = sent_close_ && received_close_;
      if (!received_close_) {
        info.code = 1006;
        info.reason = "connection closed without a close frame";
      }
      Finish(std::move(info));
      return;
    }
    Fail(ErrnoText("read", errno));
    return;
  }
}

void WsClient::ProcessInput() {
  if (state_ == State::kHandshaking) {
    const HandshakeResult hs = ParseUpgradeResponse(
        std::string_view(in_.data() + in_begin_, in_end_ - in_begin_), expected_accept_);
    if (hs.status == HandshakeResult::Status::kIncomplete) return;
    if (hs.status == HandshakeResult::Status::kRejected) {
      Fail("upgrade refused: " + hs.error);
      return;
    }
    in_begin_ += hs.consumed;
    state_ = State::kOpen;
    handler_->OnOpen(*this);
    if (fd_ < 0) return;
  }
  ProcessFrames();
}

bool WsClient::ProcessFrames() {
  while (in_begin_ < in_end_ && fd_ >= 0) {
    Frame frame;
    const DecodeResult r =
        DecodeFrame(in_.data() + in_begin_, in_end_ - in_begin_, kMaxMessageBytes, &frame);
    if (r.status == DecodeStatus::kIncomplete) return true;
    if (r.status == DecodeStatus::kError) {
      Fail(std::string("bad frame from server: ") + r.error);
      return false;
    }
    in_begin_ += r.consumed;
    if (frame.masked) {
      Fail("the server sent a masked frame");
      return false;
    }
    switch (frame.opcode) {
      case Opcode::kPing:
        if (!sent_close_) QueueFrame(Opcode::kPong, frame.payload);
        break;
      case Opcode::kPong:
        break;
      case Opcode::kClose: {
        received_close_ = true;
        if (frame.payload.size() >= 2) {
          close_code_ = (static_cast<std::uint8_t>(frame.payload[0]) << 8) |
                        static_cast<std::uint8_t>(frame.payload[1]);
          close_reason_.assign(frame.payload.substr(2));
        } else {
          close_code_ = 1005;
        }
        if (!sent_close_) {
          server_closed_first_ = true;
          QueueFrame(Opcode::kClose, frame.payload.substr(0, frame.payload.size() >= 2 ? 2 : 0));
          sent_close_ = true;
          state_ = State::kClosing;
        }
        // Wait for the server's FIN, so that TIME_WAIT stays on its side.
        break;
      }
      default: {
        Opcode opcode;
        std::string_view message;
        const char* error = nullptr;
        switch (assembler_.Add(frame, &opcode, &message, &error)) {
          case MessageAssembler::Result::kMessage:
            if (!received_close_) handler_->OnMessage(*this, message);
            break;
          case MessageAssembler::Result::kPartial:
            break;
          case MessageAssembler::Result::kError:
            Fail(std::string("bad fragmentation from server: ") + error);
            return false;
        }
      }
    }
  }
  return fd_ >= 0;
}

void WsClient::Finish(CloseInfo info) {
  if (fd_ >= 0) {
    loop_->Remove(fd_);
    close(fd_);
    fd_ = -1;
  }
  state_ = State::kClosed;
  want_write_ = false;
  handler_->OnClosed(*this, info);
}

void WsClient::Fail(std::string reason) {
  CloseInfo info;
  info.clean = false;
  info.by_server = true;
  info.code = 1006;
  info.reason = std::move(reason);
  Finish(std::move(info));
}

}  // namespace relay::bench
