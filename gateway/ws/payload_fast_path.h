// The two steps websocketpp performs on every received payload byte, done a
// machine word at a time. Used by the hybi13 specializations declared in
// ws_config.h; exposed for tests.
#ifndef RELAY_GATEWAY_WS_PAYLOAD_FAST_PATH_H_
#define RELAY_GATEWAY_WS_PAYLOAD_FAST_PATH_H_

#include <cstddef>
#include <cstdint>

namespace relay::gateway {

// XORs `data` in place with the RFC 6455 masking key in websocketpp's
// "prepared" form (the 4 key bytes repeated to fill a size_t, rotated so that
// its first byte applies to data[0]). Returns the key rotated past `length`
// bytes, for the next chunk of the same frame.
std::size_t UnmaskInPlace(std::uint8_t* data, std::size_t length, std::size_t prepared_key);

// True when every byte is ASCII (< 0x80).
bool IsAscii(const char* data, std::size_t length);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_PAYLOAD_FAST_PATH_H_
