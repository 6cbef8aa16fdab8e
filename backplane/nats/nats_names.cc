#include "backplane/nats/nats_names.h"

#include <array>
#include <cstddef>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/auth/crypto.h"
#include "server/limits.h"

namespace relay::backplane::nats {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsNameChar(char c) {
  return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
}

absl::Status ValidateName(absl::string_view what, absl::string_view value, std::size_t max_chars,
                          bool (*allowed)(char), absl::string_view alphabet) {
  if (value.empty() || value.size() > max_chars) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be 1 to ", max_chars, " characters, not ", value.size()));
  }
  for (char c : value) {
    if (!allowed(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " may hold only ", alphabet, ": \"", absl::CHexEscape(value), "\""));
    }
  }
  return absl::OkStatus();
}

bool IsClusterChar(char c) { return IsLowerAlnum(c) || c == '_' || c == '-'; }

absl::StatusOr<std::string> CheckedKey(std::string key) {
  if (key.size() > limits::kMaxNatsKeyChars) {
    return absl::InvalidArgumentError(absl::StrCat("a NATS key of ", key.size(),
                                                   " characters is over the limit of ",
                                                   limits::kMaxNatsKeyChars));
  }
  return key;
}

}  // namespace

absl::Status ValidateClusterName(absl::string_view cluster) {
  return ValidateName("RELAY_CLUSTER", cluster, limits::kMaxClusterNameChars, IsClusterChar,
                      "a-z, 0-9, '_' and '-'");
}

absl::Status ValidateInstanceId(absl::string_view instance_id) {
  return ValidateName("RELAY_INSTANCE_ID", instance_id, limits::kMaxInstanceIdChars, IsNameChar,
                      "A-Z, a-z, 0-9, '_' and '-'");
}

std::string DefaultInstanceId(absl::string_view host_name) {
  constexpr std::size_t kHostChars = 48;
  constexpr std::size_t kSuffixChars = 8;
  static constexpr char kSuffixAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id;
  for (char c : host_name.substr(0, kHostChars)) id.push_back(IsNameChar(c) ? c : '-');
  if (!id.empty()) id.push_back('-');
  // 256 is not a multiple of 36: only bytes below 252 map evenly.
  const std::size_t want = id.size() + kSuffixChars;
  while (id.size() < want) {
    for (unsigned char byte : auth::RandomBytes(kSuffixChars)) {
      if (byte < 252 && id.size() < want) id.push_back(kSuffixAlphabet[byte % 36]);
    }
  }
  return id;
}

absl::StatusOr<std::string> IdToken(absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("an empty id has no NATS token");
  return absl::WebSafeBase64Escape(id);
}

absl::StatusOr<std::string> IdFromToken(absl::string_view token) {
  std::string id;
  if (token.empty() || !absl::WebSafeBase64Unescape(token, &id) || id.empty() ||
      absl::WebSafeBase64Escape(id) != token) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an id token: \"", absl::CHexEscape(token.substr(0, 64)), "\""));
  }
  return id;
}

std::string InboxSubject(absl::string_view cluster, absl::string_view instance_id) {
  return absl::StrCat("relay.", cluster, ".i.", instance_id);
}

std::string BucketName(absl::string_view cluster, Bucket bucket) {
  static constexpr std::array<absl::string_view, 5> kKinds = {"instances", "nodes", "follow",
                                                              "auth", "nonces"};
  static_assert(static_cast<std::size_t>(Bucket::kNonces) + 1 == kKinds.size(),
                "kKinds must name every Bucket");
  return absl::StrCat("relay_", cluster, "_", kKinds[static_cast<std::size_t>(bucket)]);
}

absl::StatusOr<std::string> MeshKey(absl::string_view mesh_id) {
  absl::StatusOr<std::string> mesh = IdToken(mesh_id);
  if (!mesh.ok()) return mesh.status();
  return CheckedKey(*std::move(mesh));
}

absl::StatusOr<std::string> NodeKey(absl::string_view mesh_id, absl::string_view node_id) {
  absl::StatusOr<std::string> mesh = IdToken(mesh_id);
  if (!mesh.ok()) return mesh.status();
  absl::StatusOr<std::string> node = IdToken(node_id);
  if (!node.ok()) return node.status();
  return CheckedKey(absl::StrCat(*mesh, ".", *node));
}

absl::StatusOr<std::string> NonceKey(absl::string_view mesh_id, absl::string_view nonce) {
  absl::StatusOr<std::string> mesh = IdToken(mesh_id);
  if (!mesh.ok()) return mesh.status();
  if (nonce.empty()) return absl::InvalidArgumentError("an empty nonce has no NATS key");
  return CheckedKey(
      absl::StrCat(*mesh, ".", absl::WebSafeBase64Escape(auth::SaltedSha256("", nonce))));
}

absl::StatusOr<std::string> MeshNoncesFilter(absl::string_view mesh_id) {
  absl::StatusOr<std::string> mesh = IdToken(mesh_id);
  if (!mesh.ok()) return mesh.status();
  return CheckedKey(absl::StrCat(*mesh, ".*"));
}

// The same shape in another bucket: both key a mesh's records under its token.
absl::StatusOr<std::string> MeshNodesFilter(absl::string_view mesh_id) {
  return MeshNoncesFilter(mesh_id);
}

}  // namespace relay::backplane::nats
