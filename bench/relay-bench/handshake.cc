// Opening handshake of relay-bench's WebSocket client (see handshake.h).
#include "bench/relay-bench/handshake.h"

#include <openssl/sha.h>

#include <cctype>

namespace relay::bench {

namespace {

constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::size_t kMaxResponseHead = 16 * 1024;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Whether the comma-separated header value contains `token` (case-insensitive).
bool HasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<std::uint8_t>(bytes[i]) << 16) |
                            (static_cast<std::uint8_t>(bytes[i + 1]) << 8) |
                            static_cast<std::uint8_t>(bytes[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 0x3F]);
    out.push_back(kAlphabet[(v >> 12) & 0x3F]);
    out.push_back(kAlphabet[(v >> 6) & 0x3F]);
    out.push_back(kAlphabet[v & 0x3F]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16;
    out.push_back(kAlphabet[(v >> 18) & 0x3F]);
    out.push_back(kAlphabet[(v >> 12) & 0x3F]);
    out.append("==");
  } else if (rest == 2) {
    const std::uint32_t v = (static_cast<std::uint8_t>(bytes[i]) << 16) |
                            (static_cast<std::uint8_t>(bytes[i + 1]) << 8);
    out.push_back(kAlphabet[(v >> 18) & 0x3F]);
    out.push_back(kAlphabet[(v >> 12) & 0x3F]);
    out.push_back(kAlphabet[(v >> 6) & 0x3F]);
    out.push_back('=');
  }
  return out;
}

std::string MakeClientKey(std::uint64_t hi, std::uint64_t lo) {
  char raw[16];
  for (int i = 0; i < 8; ++i) {
    raw[i] = static_cast<char>(hi >> (56 - 8 * i));
    raw[8 + i] = static_cast<char>(lo >> (56 - 8 * i));
  }
  return Base64Encode(std::string_view(raw, sizeof raw));
}

std::string ComputeAcceptKey(std::string_view client_key) {
  std::string input(client_key);
  input.append(kWebSocketGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string BuildUpgradeRequest(std::string_view host, std::string_view path,
                                std::string_view client_key) {
  std::string request;
  request.reserve(160 + host.size() + path.size());
  request.append("GET ").append(path).append(" HTTP/1.1\r\n");
  request.append("Host: ").append(host).append("\r\n");
  request.append("Upgrade: websocket\r\n");
  request.append("Connection: Upgrade\r\n");
  request.append("Sec-WebSocket-Key: ").append(client_key).append("\r\n");
  request.append("Sec-WebSocket-Version: 13\r\n\r\n");
  return request;
}

HandshakeResult ParseUpgradeResponse(std::string_view data, std::string_view expected_accept) {
  HandshakeResult result;
  const std::size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (data.size() > kMaxResponseHead) {
      result.status = HandshakeResult::Status::kRejected;
      result.error = "response head larger than 16 KiB";
    }
    return result;
  }
  const std::string_view head = data.substr(0, end + 2);  // each line ends with \r\n
  result.consumed = end + 4;
  result.status = HandshakeResult::Status::kRejected;

  std::size_t line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  // "HTTP/1.1 101 Switching Protocols"
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" ||
      status_line.find(' ') == std::string_view::npos) {
    result.error = "malformed status line";
    return result;
  }
  const std::size_t sp = status_line.find(' ');
  const std::string_view code = status_line.substr(sp + 1, 3);
  int status = 0;
  for (char c : code) {
    if (c < '0' || c > '9') {
      result.error = "malformed status code";
      return result;
    }
    status = status * 10 + (c - '0');
  }
  result.http_status = status;

  bool upgrade_ok = false;
  bool connection_ok = false;
  std::string_view accept;
  std::size_t pos = line_end + 2;
  while (pos < head.size()) {
    line_end = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, line_end - pos);
    pos = line_end + 2;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "Upgrade")) {
      upgrade_ok = EqualsIgnoreCase(value, "websocket");
    } else if (EqualsIgnoreCase(name, "Connection")) {
      connection_ok = HasToken(value, "upgrade");
    } else if (EqualsIgnoreCase(name, "Sec-WebSocket-Accept")) {
      accept = value;
    }
  }
  if (status != 101) {
    result.error = "HTTP status " + std::to_string(status) + " instead of 101";
    return result;
  }
  if (!upgrade_ok) {
    result.error = "no Upgrade: websocket header";
    return result;
  }
  if (!connection_ok) {
    result.error = "no Connection: Upgrade header";
    return result;
  }
  if (accept != expected_accept) {
    result.error = "wrong Sec-WebSocket-Accept";
    return result;
  }
  result.status = HandshakeResult::Status::kAccepted;
  return result;
}

}  // namespace relay::bench
