// OriginPolicy: which web origins may open WebSocket connections to the relay
// and read its HTTP endpoints from a browser (ALLOWED_ORIGINS).
//
// The default allows every origin, as the relay always has: it authenticates
// by mesh token or signature carried in the protocol, never by cookies or
// anything else a browser adds on its own, so a page on another origin gains
// nothing a script run anywhere else would not have. A list narrows that to
// named pages (defence in depth for a deployment serving one web app): a
// WebSocket upgrade whose Origin header is not exactly one of them is refused
// with HTTP 403 origin_not_allowed before the upgrade.
//
// An upgrade without an Origin header is allowed under every policy: browsers
// always send one on WebSocket upgrades (RFC 6455 4.1, the Fetch standard), so
// its absence means a non-browser client (a phone app, a server, wscat), and
// such a client could send any Origin it likes anyway. The policy is about
// what browser pages can do, not about who can connect.
//
// Matching is exact, byte for byte, against the origin as browsers serialise
// it (RFC 6454 6.1): lowercase scheme and host, no default port, no path, no
// trailing slash. "https://APP.example.com", "https://app.example.com/",
// "https://app.example.com:443", "https://app.example.com.evil.test" and
// "null" never match "https://app.example.com". The configured list is
// normalised to that form (case, default port) and checked when parsed.
//
// Cors() gives the CORS answer of the HTTP endpoints (/, /health, /ready,
// /stats) under the same policy.
#ifndef RELAY_GATEWAY_NET_ORIGIN_POLICY_H_
#define RELAY_GATEWAY_NET_ORIGIN_POLICY_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace relay::gateway::net {

class OriginPolicy {
 public:
  OriginPolicy() = default;  // every origin

  // ALLOWED_ORIGINS: "" or "*" for every origin, else comma-separated
  // origins ("https://app.example.com,http://localhost:3000"); spaces around
  // items and empty items are ignored. InvalidArgument naming the first bad
  // item: not scheme://host[:port], a path (even "/"), a wildcard inside an
  // origin, "null", "*" among other origins, a port out of range.
  static absl::StatusOr<OriginPolicy> Parse(absl::string_view list);

  bool allows_any() const { return origins_.empty(); }

  // Whether a WebSocket upgrade carrying `origin` (the Origin header; empty
  // when absent) may proceed.
  bool AllowsUpgrade(absl::string_view origin) const;

  // The Access-Control-Allow-Origin value for a request carrying `origin`:
  // "*" under the any-policy, `origin` itself when listed, "" (send none)
  // otherwise or when the request has no Origin.
  std::string AllowOriginFor(absl::string_view origin) const;

  // "*", or the normalised origins joined with commas.
  std::string ToString() const;

 private:
  std::vector<std::string> origins_;  // normalised; empty: every origin
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// The CORS headers of a response to a request carrying `origin` (empty when
// absent): Access-Control-Allow-Origin when the policy allows it, and, under
// a list, `Vary: Origin` always (the answer depends on Origin, so a cache
// must not hand one origin's answer to another).
HttpHeaders CorsHeaders(const OriginPolicy& policy, absl::string_view origin);

// The answer to a CORS preflight (OPTIONS) of a read-only endpoint: its
// CorsHeaders plus, when the origin is allowed, the methods (GET, HEAD), the
// request headers a fetch() may add (none is read by the relay) and how long
// the browser may keep the answer.
HttpHeaders PreflightHeaders(const OriginPolicy& policy, absl::string_view origin);

// Browsers cap a preflight's cache (Chromium at 2 h); longer is not honoured.
inline constexpr int kPreflightMaxAgeSeconds = 7200;

}  // namespace relay::gateway::net

#endif  // RELAY_GATEWAY_NET_ORIGIN_POLICY_H_
