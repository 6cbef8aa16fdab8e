// The bench payload: a fixed-width ASCII string that carries a sequence
// number, a send timestamp (CLOCK_MONOTONIC nanoseconds of this process) and
// a stream id, padded to the payload size. It is valid JSON string content as
// is (no escapes), so the relay forwards it inside "payload":"..." and the
// echo server returns it as the whole message.
//
//   S<16 hex seq>T<16 hex send ns>I<8 hex stream>....   (kMinPayloadBytes = 42)
#ifndef RELAY_BENCH_RELAY_BENCH_BENCH_PAYLOAD_H_
#define RELAY_BENCH_RELAY_BENCH_BENCH_PAYLOAD_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace relay::bench {

constexpr std::size_t kMinPayloadBytes = 42;

struct PayloadFields {
  std::uint64_t seq = 0;
  std::uint64_t send_ns = 0;
  std::uint32_t stream = 0;
};

// Appends exactly max(size, kMinPayloadBytes) bytes to `out`.
void AppendPayload(std::string* out, const PayloadFields& fields, std::size_t size);

// Reads the fields back; false when `payload` is not a bench payload.
bool ParsePayload(std::string_view payload, PayloadFields* fields);

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_BENCH_PAYLOAD_H_
