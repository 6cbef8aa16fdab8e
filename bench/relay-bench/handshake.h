// The client side of the RFC 6455 opening handshake: the key, the HTTP
// upgrade request, and an incremental parser of the server's response that
// checks the 101 status, the Upgrade/Connection headers and
// Sec-WebSocket-Accept. Pure functions over strings; no sockets.
#ifndef RELAY_BENCH_RELAY_BENCH_HANDSHAKE_H_
#define RELAY_BENCH_RELAY_BENCH_HANDSHAKE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace relay::bench {

// Standard base64 (RFC 4648, with padding).
std::string Base64Encode(std::string_view bytes);

// Sec-WebSocket-Key: base64 of 16 bytes. The bytes come from the caller (a
// benchmark needs uniqueness, not secrecy).
std::string MakeClientKey(std::uint64_t hi, std::uint64_t lo);

// Sec-WebSocket-Accept for `client_key`: base64(SHA-1(key + RFC 6455 GUID)).
std::string ComputeAcceptKey(std::string_view client_key);

// GET `path` with the upgrade headers; `host` is the Host header (host:port).
std::string BuildUpgradeRequest(std::string_view host, std::string_view path,
                                std::string_view client_key);

struct HandshakeResult {
  enum class Status { kIncomplete, kAccepted, kRejected };
  Status status = Status::kIncomplete;
  // kAccepted: bytes of the response head (the rest of the buffer is frames).
  std::size_t consumed = 0;
  int http_status = 0;  // once the status line was read
  std::string error;    // kRejected: why
};

// Looks for a complete response head at the start of `data` (up to the blank
// line). kIncomplete until it is there; the caller appends more bytes and
// calls again. Heads larger than 16 KiB are rejected.
HandshakeResult ParseUpgradeResponse(std::string_view data, std::string_view expected_accept);

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_HANDSHAKE_H_
