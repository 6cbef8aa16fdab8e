// Encoding of the bench payload (see bench_payload.h).
#include "bench/relay-bench/bench_payload.h"

#include <algorithm>

namespace relay::bench {

namespace {

constexpr char kHex[] = "0123456789abcdef";

void PutHex(char* dst, std::uint64_t value, int digits) {
  for (int i = digits - 1; i >= 0; --i) {
    dst[i] = kHex[value & 0xF];
    value >>= 4;
  }
}

bool GetHex(const char* src, int digits, std::uint64_t* value) {
  std::uint64_t v = 0;
  for (int i = 0; i < digits; ++i) {
    const char c = src[i];
    std::uint64_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<std::uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<std::uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
    v = (v << 4) | d;
  }
  *value = v;
  return true;
}

}  // namespace

void AppendPayload(std::string* out, const PayloadFields& fields, std::size_t size) {
  const std::size_t n = std::max(size, kMinPayloadBytes);
  const std::size_t start = out->size();
  out->resize(start + n, '.');
  char* p = out->data() + start;
  p[0] = 'S';
  PutHex(p + 1, fields.seq, 16);
  p[17] = 'T';
  PutHex(p + 18, fields.send_ns, 16);
  p[34] = 'I';
  PutHex(p + 35, fields.stream, 8);
}

bool ParsePayload(std::string_view payload, PayloadFields* fields) {
  if (payload.size() < kMinPayloadBytes || payload[0] != 'S' || payload[17] != 'T' ||
      payload[34] != 'I') {
    return false;
  }
  std::uint64_t stream = 0;
  if (!GetHex(payload.data() + 1, 16, &fields->seq) ||
      !GetHex(payload.data() + 18, 16, &fields->send_ns) ||
      !GetHex(payload.data() + 35, 8, &stream)) {
    return false;
  }
  fields->stream = static_cast<std::uint32_t>(stream);
  return true;
}

}  // namespace relay::bench
