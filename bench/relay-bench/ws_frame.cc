// RFC 6455 frame encoding and decoding for relay-bench (see ws_frame.h).
#include "bench/relay-bench/ws_frame.h"

#include <cstring>

namespace relay::bench {

namespace {

constexpr std::uint8_t kFinBit = 0x80;
constexpr std::uint8_t kRsvBits = 0x70;
constexpr std::uint8_t kOpcodeBits = 0x0F;
constexpr std::uint8_t kMaskBit = 0x80;
constexpr std::uint8_t kLengthBits = 0x7F;
constexpr std::uint8_t kLength16 = 126;
constexpr std::uint8_t kLength64 = 127;
constexpr std::size_t kMaxControlPayload = 125;

bool KnownOpcode(std::uint8_t op) {
  return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

}  // namespace

void ApplyMask(char* data, std::size_t len, std::uint32_t mask_key, std::size_t key_offset) {
  unsigned char key[4];
  // The key goes on the wire in this byte order (big-endian of mask_key), and
  // payload byte i is XORed with key[i % 4].
  key[0] = static_cast<unsigned char>(mask_key >> 24);
  key[1] = static_cast<unsigned char>(mask_key >> 16);
  key[2] = static_cast<unsigned char>(mask_key >> 8);
  key[3] = static_cast<unsigned char>(mask_key);
  std::size_t i = 0;
  // Word at a time once aligned to the key phase 0: the common case is a
  // fresh frame (offset 0), where this loop does nearly all of the work.
  if (key_offset % 4 == 0) {
    std::uint64_t key8;
    unsigned char k8[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    std::memcpy(&key8, k8, 8);
    for (; i + 8 <= len; i += 8) {
      std::uint64_t word;
      std::memcpy(&word, data + i, 8);
      word ^= key8;
      std::memcpy(data + i, &word, 8);
    }
  }
  for (; i < len; ++i) data[i] = static_cast<char>(data[i] ^ key[(i + key_offset) % 4]);
}

void AppendClientFrame(std::string* out, Opcode op, std::string_view payload,
                       std::uint32_t mask_key) {
  const std::size_t len = payload.size();
  unsigned char header[14];
  std::size_t n = 0;
  header[n++] = kFinBit | static_cast<std::uint8_t>(op);
  if (len < kLength16) {
    header[n++] = kMaskBit | static_cast<std::uint8_t>(len);
  } else if (len <= 0xFFFF) {
    header[n++] = kMaskBit | kLength16;
    header[n++] = static_cast<unsigned char>(len >> 8);
    header[n++] = static_cast<unsigned char>(len);
  } else {
    header[n++] = kMaskBit | kLength64;
    for (int shift = 56; shift >= 0; shift -= 8) {
      header[n++] = static_cast<unsigned char>(static_cast<std::uint64_t>(len) >> shift);
    }
  }
  header[n++] = static_cast<unsigned char>(mask_key >> 24);
  header[n++] = static_cast<unsigned char>(mask_key >> 16);
  header[n++] = static_cast<unsigned char>(mask_key >> 8);
  header[n++] = static_cast<unsigned char>(mask_key);

  const std::size_t start = out->size();
  out->resize(start + n + len);
  char* dst = out->data() + start;
  std::memcpy(dst, header, n);
  if (len > 0) std::memcpy(dst + n, payload.data(), len);
  ApplyMask(dst + n, len, mask_key);
}

std::string ClosePayload(std::uint16_t code, std::string_view reason) {
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason.substr(0, kMaxControlPayload - 2));
  return payload;
}

DecodeResult DecodeFrame(char* data, std::size_t len, std::size_t max_payload, Frame* frame) {
  DecodeResult result;
  if (len < 2) return result;
  const auto b0 = static_cast<std::uint8_t>(data[0]);
  const auto b1 = static_cast<std::uint8_t>(data[1]);
  if ((b0 & kRsvBits) != 0) {
    result.status = DecodeStatus::kError;
    result.error = "reserved bits set";
    return result;
  }
  const std::uint8_t op = b0 & kOpcodeBits;
  if (!KnownOpcode(op)) {
    result.status = DecodeStatus::kError;
    result.error = "unknown opcode";
    return result;
  }
  const bool fin = (b0 & kFinBit) != 0;
  const bool masked = (b1 & kMaskBit) != 0;
  std::size_t pos = 2;
  std::uint64_t payload_len = b1 & kLengthBits;
  if (payload_len == kLength16) {
    if (len < pos + 2) return result;
    payload_len = (static_cast<std::uint64_t>(static_cast<std::uint8_t>(data[2])) << 8) |
                  static_cast<std::uint8_t>(data[3]);
    pos += 2;
  } else if (payload_len == kLength64) {
    if (len < pos + 8) return result;
    payload_len = 0;
    for (int i = 0; i < 8; ++i) {
      payload_len = (payload_len << 8) | static_cast<std::uint8_t>(data[2 + i]);
    }
    pos += 8;
    if ((payload_len >> 63) != 0) {
      result.status = DecodeStatus::kError;
      result.error = "64-bit length has its most significant bit set";
      return result;
    }
  }
  const Opcode opcode = static_cast<Opcode>(op);
  if (IsControl(opcode) && (!fin || payload_len > kMaxControlPayload)) {
    result.status = DecodeStatus::kError;
    result.error = "fragmented or oversized control frame";
    return result;
  }
  if (payload_len > max_payload) {
    result.status = DecodeStatus::kError;
    result.error = "frame larger than the maximum message size";
    return result;
  }
  std::uint32_t mask_key = 0;
  if (masked) {
    if (len < pos + 4) return result;
    mask_key = (static_cast<std::uint32_t>(static_cast<std::uint8_t>(data[pos])) << 24) |
               (static_cast<std::uint32_t>(static_cast<std::uint8_t>(data[pos + 1])) << 16) |
               (static_cast<std::uint32_t>(static_cast<std::uint8_t>(data[pos + 2])) << 8) |
               static_cast<std::uint32_t>(static_cast<std::uint8_t>(data[pos + 3]));
    pos += 4;
  }
  if (len - pos < payload_len) return result;
  const auto n = static_cast<std::size_t>(payload_len);
  if (masked) ApplyMask(data + pos, n, mask_key);
  frame->fin = fin;
  frame->opcode = opcode;
  frame->masked = masked;
  frame->payload = std::string_view(data + pos, n);
  result.status = DecodeStatus::kFrame;
  result.consumed = pos + n;
  return result;
}

MessageAssembler::Result MessageAssembler::Add(const Frame& frame, Opcode* opcode,
                                               std::string_view* message, const char** error) {
  if (frame.opcode == Opcode::kContinuation) {
    if (!in_progress_) {
      *error = "continuation frame without a message in progress";
      return Result::kError;
    }
    buffer_.append(frame.payload);
    if (!frame.fin) return Result::kPartial;
    in_progress_ = false;
    *opcode = opcode_;
    *message = buffer_;
    return Result::kMessage;
  }
  if (in_progress_) {
    *error = "new data frame while a fragmented message is in progress";
    return Result::kError;
  }
  if (frame.fin) {
    *opcode = frame.opcode;
    *message = frame.payload;
    return Result::kMessage;
  }
  in_progress_ = true;
  opcode_ = frame.opcode;
  buffer_.assign(frame.payload);
  return Result::kPartial;
}

}  // namespace relay::bench
