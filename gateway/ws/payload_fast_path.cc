#include "gateway/ws/payload_fast_path.h"

#include <cstring>
#include <string>

#include "gateway/json/swar.h"
#include "gateway/ws/ws_config.h"

namespace relay::gateway {

std::size_t UnmaskInPlace(std::uint8_t* data, std::size_t length, std::size_t prepared_key) {
  static_assert(sizeof(std::size_t) == sizeof(std::uint64_t), "64-bit size_t expected");
  std::size_t i = 0;
  // Both the word and the key are in memory order: byte k of one meets byte
  // k of the other whatever the machine's endianness.
  for (; i + sizeof(std::uint64_t) <= length; i += sizeof(std::uint64_t)) {
    std::uint64_t word;
    std::memcpy(&word, data + i, sizeof(word));
    word ^= prepared_key;
    std::memcpy(data + i, &word, sizeof(word));
  }
  unsigned char key_bytes[sizeof(prepared_key)];
  std::memcpy(key_bytes, &prepared_key, sizeof(key_bytes));
  for (std::size_t k = 0; i < length; ++i, ++k) data[i] ^= key_bytes[k];
  // The key repeats every 4 bytes.
  return websocketpp::frame::circshift_prepared_key(prepared_key, length % 4);
}

bool IsAscii(const char* data, std::size_t length) {
  std::uint64_t seen = 0;
  std::size_t i = 0;
  for (; i + sizeof(seen) <= length; i += sizeof(seen)) seen |= json::swar::Load(data + i);
  for (; i < length; ++i) seen |= static_cast<unsigned char>(data[i]);
  return json::swar::NonAscii(seen) == 0;
}

namespace {

// websocketpp's process_payload_bytes (processors/hybi13.hpp, 0.8.2) with the
// two per-byte loops replaced: unmask, append (or inflate), validate UTF-8 of
// text frames, count the bytes. An ASCII run leaves a validator that sits at a
// character boundary at one, so the state machine only sees chunks that hold
// non-ASCII bytes or continue a character split across chunks.
template <typename Metadata, typename Deflate>
std::size_t ProcessPayloadBytes(const websocketpp::frame::basic_header& header, Metadata* msg,
                                Deflate& deflate, std::size_t* bytes_needed, std::uint8_t* buf,
                                std::size_t len, websocketpp::lib::error_code& ec) {
  namespace frame = websocketpp::frame;
  if (frame::get_masked(header)) msg->prepared_key = UnmaskInPlace(buf, len, msg->prepared_key);
  std::string& out = msg->msg_ptr->get_raw_payload();
  const std::size_t offset = out.size();
  if (deflate.is_enabled() && msg->msg_ptr->get_compressed()) {
    ec = deflate.decompress(buf, len, out);
    if (ec) return 0;
  } else {
    out.append(reinterpret_cast<char*>(buf), len);
  }
  if (msg->msg_ptr->get_opcode() == frame::opcode::TEXT) {
    const bool ascii_at_boundary =
        msg->validator.complete() && IsAscii(out.data() + offset, out.size() - offset);
    if (!ascii_at_boundary && !msg->validator.decode(out.begin() + offset, out.end())) {
      ec = websocketpp::processor::error::make_error_code(
          websocketpp::processor::error::invalid_utf8);
      return 0;
    }
  }
  *bytes_needed -= len;
  return len;
}

}  // namespace
}  // namespace relay::gateway

namespace websocketpp::processor {

template <>
size_t hybi13<relay::gateway::WsPlainConfig>::process_payload_bytes(uint8_t* buf, size_t len,
                                                                    lib::error_code& ec) {
  return relay::gateway::ProcessPayloadBytes(m_basic_header, m_current_msg, m_permessage_deflate,
                                             &m_bytes_needed, buf, len, ec);
}

template <>
size_t hybi13<relay::gateway::WsTlsConfig>::process_payload_bytes(uint8_t* buf, size_t len,
                                                                  lib::error_code& ec) {
  return relay::gateway::ProcessPayloadBytes(m_basic_header, m_current_msg, m_permessage_deflate,
                                             &m_bytes_needed, buf, len, ec);
}

}  // namespace websocketpp::processor
