// Eight bytes at a time: the byte tests the JSON reader and writer make on
// every character of a string, done on a 64-bit word (SWAR: "SIMD within a
// register"). Each returns the high bit of every byte that passes; only the
// lowest set bit is exact (a borrow can flag later bytes falsely), which is
// all a scanner needs: on a little-endian machine FirstFlaggedByte() is the
// offset of the first byte to look at.
#ifndef RELAY_GATEWAY_JSON_SWAR_H_
#define RELAY_GATEWAY_JSON_SWAR_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace relay::gateway::json::swar {

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
inline constexpr bool kEnabled = true;
#else
inline constexpr bool kEnabled = false;  // callers fall back to byte loops
#endif

inline constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
inline constexpr std::uint64_t kHighs = 0x8080808080808080ULL;

inline std::uint64_t Load(const char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof(w));
  return w;
}

// '"', '\\' or a control character (< 0x20): what a JSON string must escape.
inline std::uint64_t QuoteBackslashOrControl(std::uint64_t w) {
  const auto zero_bytes = [](std::uint64_t v) { return (v - kOnes) & ~v & kHighs; };
  return zero_bytes(w ^ (kOnes * '"')) | zero_bytes(w ^ (kOnes * '\\')) |
         ((w - kOnes * 0x20) & ~w & kHighs);
}

// Bytes >= 0x80 (exact for every byte).
inline std::uint64_t NonAscii(std::uint64_t w) { return w & kHighs; }

inline std::size_t FirstFlaggedByte(std::uint64_t bits) {
  return static_cast<std::size_t>(__builtin_ctzll(bits)) / 8;
}

}  // namespace relay::gateway::json::swar

#endif  // RELAY_GATEWAY_JSON_SWAR_H_
