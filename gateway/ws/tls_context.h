// The relay's server-side TLS policy: loads a PEM certificate chain and key
// into a fresh asio::ssl::context that allows TLS 1.2 (ECDHE + AEAD ciphers
// only) and TLS 1.3, with compression and renegotiation off. WsGateway hands
// the current context to every new handshake and swaps it on reload.
#ifndef RELAY_GATEWAY_WS_TLS_CONTEXT_H_
#define RELAY_GATEWAY_WS_TLS_CONTEXT_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "asio/ssl/context.hpp"

namespace relay::gateway {

// TLS 1.2 suites: forward secrecy (ECDHE) and AEAD only, as Mozilla's
// "intermediate" profile minus DHE. TLS 1.3 keeps OpenSSL's (all AEAD) suites.
inline constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// A new server context with `cert_file` (PEM chain, leaf first) and
// `key_file` (unencrypted PEM). InvalidArgument naming the file and OpenSSL's
// reason when either cannot be read or they do not match.
absl::StatusOr<std::shared_ptr<asio::ssl::context>> NewServerTlsContext(
    const std::string& cert_file, const std::string& key_file);

// "subject=/CN=relay serial=1F... not_after=Jan 1 00:00:00 2030 GMT" of the
// context's certificate, for the logs.
std::string DescribeCertificate(asio::ssl::context& context);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_TLS_CONTEXT_H_
