#include "gateway/http/relay_path.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/json/json_object.h"

namespace relay::gateway {
namespace {

constexpr absl::string_view kPrefix = "/relay/";

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::StatusOr<std::string> ParseRelayPath(absl::string_view resource, std::size_t max_bytes) {
  absl::string_view path = resource.substr(0, resource.find('?'));
  if (!absl::StartsWith(path, kPrefix)) {
    return absl::NotFoundError("WebSocket endpoint is /relay/{mesh_id}");
  }
  absl::string_view encoded = path.substr(kPrefix.size());
  if (encoded.find('/') != absl::string_view::npos) {
    return absl::NotFoundError("WebSocket endpoint is /relay/{mesh_id}");
  }
  std::string mesh_id;
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      mesh_id.push_back(encoded[i]);
      continue;
    }
    if (i + 2 >= encoded.size() || Hex(encoded[i + 1]) < 0 || Hex(encoded[i + 2]) < 0) {
      return absl::InvalidArgumentError("mesh id has a malformed percent escape");
    }
    mesh_id.push_back(static_cast<char>(Hex(encoded[i + 1]) * 16 + Hex(encoded[i + 2])));
    i += 2;
  }
  if (mesh_id.empty()) return absl::InvalidArgumentError("mesh id is empty");
  if (mesh_id.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("mesh id is longer than ", max_bytes, " bytes"));
  }
  for (const char c : mesh_id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return absl::InvalidArgumentError("mesh id holds control characters");
    }
  }
  if (!json::IsValidUtf8(mesh_id)) return absl::InvalidArgumentError("mesh id is not valid UTF-8");
  return mesh_id;
}

}  // namespace relay::gateway
