// Ed25519Key: a fresh Ed25519 key pair made with OpenSSL directly (not by
// the code under test), for the tests of signed meshes: the public key and
// signatures come out base64-encoded, as peers send them.
#ifndef RELAY_TESTS_CORE_ED25519_KEY_H_
#define RELAY_TESTS_CORE_ED25519_KEY_H_

#include <openssl/evp.h>

#include <cstddef>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"

namespace relay::core::testing {

class Ed25519Key {
 public:
  Ed25519Key() {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
    EVP_PKEY_keygen_init(ctx);
    EVP_PKEY_keygen(ctx, &key_);
    EVP_PKEY_CTX_free(ctx);
  }
  ~Ed25519Key() { EVP_PKEY_free(key_); }
  Ed25519Key(const Ed25519Key&) = delete;
  Ed25519Key& operator=(const Ed25519Key&) = delete;

  std::string PublicB64() const {
    unsigned char raw[32];
    size_t len = sizeof(raw);
    EVP_PKEY_get_raw_public_key(key_, raw, &len);
    return absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(raw), len));
  }
  std::string SignB64(absl::string_view message) const {
    unsigned char sig[64];
    size_t len = sizeof(sig);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_);
    EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(message.data()),
                   message.size());
    EVP_MD_CTX_free(ctx);
    return absl::Base64Escape(absl::string_view(reinterpret_cast<char*>(sig), len));
  }

 private:
  EVP_PKEY* key_ = nullptr;
};

}  // namespace relay::core::testing

#endif  // RELAY_TESTS_CORE_ED25519_KEY_H_
