// RFC 6455 framing for the client side of relay-bench: encoding masked client
// frames, decoding the server's (unmasked) frames from a byte buffer that may
// hold a partial frame, and reassembling fragmented messages.
//
// No sockets here: WsClient (ws_client.h) feeds bytes in and writes bytes out.
#ifndef RELAY_BENCH_RELAY_BENCH_WS_FRAME_H_
#define RELAY_BENCH_RELAY_BENCH_WS_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace relay::bench {

enum class Opcode : std::uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

inline bool IsControl(Opcode op) { return (static_cast<std::uint8_t>(op) & 0x8) != 0; }

// Appends one complete (FIN) client frame to `out`: header with the 7-, 16- or
// 64-bit length, the 4-byte masking key, and `payload` XORed with the key.
void AppendClientFrame(std::string* out, Opcode op, std::string_view payload,
                       std::uint32_t mask_key);

// XORs `len` bytes at `data` with the 4-byte key, starting at key byte
// `key_offset % 4` (RFC 6455 section 5.3). Used for both masking and unmasking.
void ApplyMask(char* data, std::size_t len, std::uint32_t mask_key, std::size_t key_offset = 0);

// Two bytes of a close frame's payload: the status code, big-endian, then `reason`.
std::string ClosePayload(std::uint16_t code, std::string_view reason = {});

// One frame as read off the wire. `payload` points into the decoded buffer
// (unmasked in place when the frame was masked).
struct Frame {
  bool fin = true;
  Opcode opcode = Opcode::kText;
  bool masked = false;
  std::string_view payload;
};

enum class DecodeStatus {
  kFrame,       // one frame decoded; `consumed` bytes used
  kIncomplete,  // need more bytes; nothing consumed
  kError,       // protocol violation; `error` says which
};

struct DecodeResult {
  DecodeStatus status = DecodeStatus::kIncomplete;
  std::size_t consumed = 0;
  const char* error = nullptr;
};

// Decodes the first frame of data[0, len). When the frame is masked the
// payload is unmasked in place (hence the non-const buffer). Rejects RSV bits,
// unknown opcodes, fragmented or >125-byte control frames, a 64-bit length
// with its top bit set and payloads longer than `max_payload`. Whether a
// masked frame is acceptable is the caller's decision (`frame->masked`).
DecodeResult DecodeFrame(char* data, std::size_t len, std::size_t max_payload, Frame* frame);

// Reassembles data frames into messages (a first frame with FIN=0, then
// continuations, the last with FIN=1). Control frames pass through DecodeFrame
// on their own and never reach this class.
class MessageAssembler {
 public:
  enum class Result { kMessage, kPartial, kError };
  // On kMessage, `*opcode` and `*message` hold the whole message; the view is
  // valid until the next call (it points into `frame` or into this object).
  Result Add(const Frame& frame, Opcode* opcode, std::string_view* message, const char** error);
  bool in_progress() const { return in_progress_; }

 private:
  bool in_progress_ = false;
  Opcode opcode_ = Opcode::kText;
  std::string buffer_;
};

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_WS_FRAME_H_
