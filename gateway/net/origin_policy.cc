#include "gateway/net/origin_policy.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace relay::gateway::net {
namespace {

absl::Status Bad(absl::string_view item, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("\"", item, "\" is not an origin: ", why,
                                                 " (write origins as a browser sends them: "
                                                 "https://app.example.com or "
                                                 "http://localhost:3000, or * for any)"));
}

bool IsSchemeChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}

// A registered name (letters, digits, '-', '.', '_'), or an IPv6 literal in
// brackets (hex digits, ':' and '.').
bool IsHost(absl::string_view host) {
  if (host.empty()) return false;
  if (host.front() == '[') {
    if (host.size() < 4 || host.back() != ']') return false;
    for (char c : host.substr(1, host.size() - 2)) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        return false;
      }
    }
    return true;
  }
  for (char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
      return false;
    }
  }
  return true;
}

// `item` as a browser serialises its origin, or why it is not one.
absl::StatusOr<std::string> NormaliseOrigin(absl::string_view item) {
  if (absl::EqualsIgnoreCase(item, "null")) {
    return Bad(item,
               "\"null\" is the origin of sandboxed frames, file: pages and redirects on "
               "any site, so allowing it would allow all of them");
  }
  const std::size_t sep = item.find("://");
  if (sep == absl::string_view::npos || sep == 0) return Bad(item, "no scheme://");
  const absl::string_view scheme = item.substr(0, sep);
  if (!absl::ascii_isalpha(static_cast<unsigned char>(scheme.front()))) {
    return Bad(item, "the scheme must start with a letter");
  }
  for (char c : scheme) {
    if (!IsSchemeChar(c)) return Bad(item, "the scheme has a character schemes do not");
  }
  absl::string_view rest = item.substr(sep + 3);
  if (rest.find_first_of("/?#") != absl::string_view::npos) {
    return Bad(item, "an origin has no path, query or fragment, not even a trailing /");
  }
  if (rest.find('@') != absl::string_view::npos) return Bad(item, "an origin has no user info");
  if (rest.find('*') != absl::string_view::npos) {
    return Bad(item, "origins are matched exactly: list each one (no wildcards)");
  }
  absl::string_view host = rest;
  absl::string_view port;
  const std::size_t colon = rest.rfind(':');
  const std::size_t bracket = rest.rfind(']');
  if (colon != absl::string_view::npos && (bracket == absl::string_view::npos || colon > bracket)) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (!IsHost(host)) return Bad(item, "the host is empty or not a host name or [IPv6] address");
  std::string scheme_lower = absl::AsciiStrToLower(scheme);
  std::string out = absl::StrCat(scheme_lower, "://", absl::AsciiStrToLower(host));
  if (colon != absl::string_view::npos && (bracket == absl::string_view::npos || colon > bracket)) {
    std::uint32_t n = 0;
    const bool digits = !port.empty() && port.size() <= 5 &&
                        port.find_first_not_of("0123456789") == absl::string_view::npos;
    if (!digits || !absl::SimpleAtoi(port, &n) || n == 0 || n > 65535) {
      return Bad(item, "the port is not a number from 1 to 65535");
    }
    // Browsers leave the scheme's default port out.
    const bool default_port =
        (scheme_lower == "https" && n == 443) || (scheme_lower == "http" && n == 80);
    if (!default_port) absl::StrAppend(&out, ":", n);
  }
  return out;
}

}  // namespace

absl::StatusOr<OriginPolicy> OriginPolicy::Parse(absl::string_view list) {
  OriginPolicy policy;
  bool any = false;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) continue;
    if (item == "*") {
      any = true;
      continue;
    }
    absl::StatusOr<std::string> origin = NormaliseOrigin(item);
    if (!origin.ok()) return origin.status();
    bool seen = false;
    for (const std::string& o : policy.origins_) seen = seen || o == *origin;
    if (!seen) policy.origins_.push_back(*std::move(origin));
  }
  if (any && !policy.origins_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"*\" allows every origin: list no others with it (", list, ")"));
  }
  return policy;
}

bool OriginPolicy::AllowsUpgrade(absl::string_view origin) const {
  if (origin.empty() || origins_.empty()) return true;
  for (const std::string& o : origins_) {
    if (o == origin) return true;
  }
  return false;
}

std::string OriginPolicy::AllowOriginFor(absl::string_view origin) const {
  if (origins_.empty()) return "*";
  if (origin.empty()) return "";
  for (const std::string& o : origins_) {
    if (o == origin) return o;
  }
  return "";
}

std::string OriginPolicy::ToString() const {
  return origins_.empty() ? "*" : absl::StrJoin(origins_, ",");
}

HttpHeaders CorsHeaders(const OriginPolicy& policy, absl::string_view origin) {
  HttpHeaders headers;
  std::string allow = policy.AllowOriginFor(origin);
  if (!allow.empty()) headers.emplace_back("Access-Control-Allow-Origin", std::move(allow));
  if (!policy.allows_any()) headers.emplace_back("Vary", "Origin");
  return headers;
}

HttpHeaders PreflightHeaders(const OriginPolicy& policy, absl::string_view origin) {
  HttpHeaders headers = CorsHeaders(policy, origin);
  if (policy.AllowOriginFor(origin).empty()) return headers;
  headers.emplace_back("Access-Control-Allow-Methods", "GET, HEAD");
  // CORS-safelisted headers need no permission; these are the others a
  // status page's fetch() may send. The relay reads none of them.
  headers.emplace_back("Access-Control-Allow-Headers",
                       "Accept, Cache-Control, Content-Type, Pragma");
  headers.emplace_back("Access-Control-Max-Age", std::to_string(kPreflightMaxAgeSeconds));
  return headers;
}

}  // namespace relay::gateway::net
