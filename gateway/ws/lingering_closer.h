// Closes ended connections' sockets the way nginx's lingering_close does.
//
// Closing a TCP socket whose receive queue still holds unread bytes makes the
// kernel send RST instead of FIN, and the RST makes the peer's kernel discard
// what the peer has not read yet, including the relay's close frame and the
// error before it. So an ended connection's socket is not closed at once: its
// sending side is shut (FIN after everything sent), what still arrives is read
// and dropped until the peer's own FIN or a deadline, and only then is it
// closed. Past max_lingering sockets at once, the next is closed at once: a
// flood of short connections cannot pin file descriptors.
#ifndef RELAY_GATEWAY_WS_LINGERING_CLOSER_H_
#define RELAY_GATEWAY_WS_LINGERING_CLOSER_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <chrono>
#include <cstddef>
#include <memory>

#include "asio.hpp"

namespace relay::gateway {

class LingeringCloser {
 public:
  LingeringCloser(std::chrono::milliseconds deadline, std::size_t max_lingering);

  // Takes the socket over (a moved-from socket stays behind, closed). Its
  // pending operations end with an error; a socket already closed is ignored.
  // `send_side_shut`: the caller already shut the sending side (saves a
  // system call per connection; shutting it twice is harmless otherwise).
  void Close(asio::ip::tcp::socket& socket, bool send_side_shut = false);

  // Sockets still being drained.
  std::size_t lingering() const { return *lingering_; }

 private:
  const std::chrono::milliseconds deadline_;
  const std::size_t max_lingering_;
  // Shared with the pending drains, which may outlive this object when the
  // event loop is torn down after the gateway.
  std::shared_ptr<std::size_t> lingering_;
};

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_LINGERING_CLOSER_H_
