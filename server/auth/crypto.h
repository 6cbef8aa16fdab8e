// Cryptographic primitives of mesh authentication, on OpenSSL's EVP API:
// salted SHA-256 for mesh tokens, constant-time comparison, Ed25519
// signature checks for signed meshes, and base64 decoding of keys.
#ifndef RELAY_SERVER_AUTH_CRYPTO_H_
#define RELAY_SERVER_AUTH_CRYPTO_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace relay::auth {

// `n` bytes from OpenSSL's CSPRNG.
std::string RandomBytes(std::size_t n);

// SHA-256(salt || secret), 32 raw bytes.
std::string SaltedSha256(absl::string_view salt, absl::string_view secret);

// Equality in time independent of where the inputs differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// True when `signature` (64 bytes) is `public_key`'s (32 raw bytes) Ed25519
// signature of `message`. False for malformed keys or signatures.
bool VerifyEd25519(absl::string_view public_key, absl::string_view message,
                   absl::string_view signature);

// Standard base64 (padding optional, as Python's b64decode accepts);
// nullopt when malformed.
std::optional<std::string> DecodeBase64(absl::string_view text);

}  // namespace relay::auth

#endif  // RELAY_SERVER_AUTH_CRYPTO_H_
