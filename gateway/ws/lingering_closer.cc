#include "gateway/ws/lingering_closer.h"

#include <array>
#include <utility>

namespace relay::gateway {
namespace {

struct Drain : std::enable_shared_from_this<Drain> {
  Drain(asio::ip::tcp::socket s, std::shared_ptr<std::size_t> count)
      : socket(std::move(s)), timer(socket.get_executor()), lingering(std::move(count)) {
    ++*lingering;
  }
  ~Drain() { --*lingering; }

  void Start(std::chrono::milliseconds deadline) {
    timer.expires_after(deadline);
    timer.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (!ec) self->Finish();
    });
    Read();
  }

  void Read() {
    socket.async_read_some(asio::buffer(buffer),
                           [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                             if (ec) {
                               self->Finish();  // the peer's FIN (eof), a reset, or closed
                             } else {
                               self->Read();
                             }
                           });
  }

  void Finish() {
    asio::error_code ignored;
    timer.cancel(ignored);
    socket.close(ignored);
  }

  asio::ip::tcp::socket socket;
  asio::steady_timer timer;
  std::shared_ptr<std::size_t> lingering;
  std::array<char, 4096> buffer;
};

}  // namespace

LingeringCloser::LingeringCloser(std::chrono::milliseconds deadline, std::size_t max_lingering)
    : deadline_(deadline),
      max_lingering_(max_lingering),
      lingering_(std::make_shared<std::size_t>(0)) {}

void LingeringCloser::Close(asio::ip::tcp::socket& socket, bool send_side_shut) {
  asio::error_code ignored;
  if (!socket.is_open()) return;
  if (*lingering_ >= max_lingering_ || deadline_.count() <= 0) {
    socket.close(ignored);
    return;
  }
  // The previous owner's pending operations end here. A read it left
  // pending would otherwise take the peer's EOF, and Asio then considers the
  // socket drained and never tries the drain's own read (edge-triggered
  // epoll): the socket would linger the whole deadline. A pending write (a
  // TLS close_notify to a peer that stopped reading) ends too.
  socket.cancel(ignored);
  if (!send_side_shut) socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  std::make_shared<Drain>(std::move(socket), lingering_)->Start(deadline_);
}

}  // namespace relay::gateway
