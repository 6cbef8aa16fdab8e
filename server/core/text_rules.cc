#include "server/core/text_rules.h"

#include <cstdint>
#include <optional>

#include "absl/strings/str_cat.h"
#include "server/limits.h"

namespace relay::core {
namespace {

// Decodes one UTF-8 character at `i` and advances it; nullopt when ill-formed.
std::optional<char32_t> NextChar(absl::string_view s, std::size_t* i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(*i);
  if (b0 < 0x80) {
    ++*i;
    return b0;
  }
  std::size_t len;
  char32_t cp;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (*i + len > s.size()) return std::nullopt;
  for (std::size_t k = 1; k < len; ++k) {
    if ((byte(*i + k) & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (byte(*i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  *i += len;
  return cp;
}

bool IsControl(char32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

// Characters that change the display order of what follows them.
bool IsBidiControl(char32_t c) {
  return c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069);
}

// Characters that render as nothing: two ids that differ only by them look
// the same.
bool IsInvisible(char32_t c) {
  return c == 0x180E || (c >= 0x200B && c <= 0x200D) || (c >= 0x2060 && c <= 0x2064) || c == 0xFEFF;
}

// Unicode White_Space.
bool IsWhiteSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

constexpr absl::string_view kIllFormed = "is not well-formed UTF-8";
constexpr absl::string_view kControl = "contains a control character";
constexpr absl::string_view kBidi = "contains a bidirectional control character";
constexpr absl::string_view kInvisible = "contains a zero-width or invisible character";
constexpr absl::string_view kEdgeSpace = "starts or ends with white space";

}  // namespace

absl::string_view IdentifierProblem(absl::string_view id) {
  std::size_t i = 0;
  std::optional<char32_t> first;
  char32_t last = 0;
  while (i < id.size()) {
    std::optional<char32_t> c = NextChar(id, &i);
    if (!c) return kIllFormed;
    // Controls first: a tab at the edge is a control before it is space.
    if (IsControl(*c)) return kControl;
    if (IsBidiControl(*c)) return kBidi;
    if (IsInvisible(*c)) return kInvisible;
    if (!first) first = c;
    last = *c;
  }
  if (first && (IsWhiteSpace(*first) || IsWhiteSpace(last))) return kEdgeSpace;
  return {};
}

absl::string_view NameProblem(absl::string_view name) {
  std::size_t i = 0;
  while (i < name.size()) {
    std::optional<char32_t> c = NextChar(name, &i);
    if (!c) return kIllFormed;
    if (IsControl(*c)) return kControl;
    if (IsBidiControl(*c)) return kBidi;
  }
  return {};
}

std::string FirstChars(absl::string_view s, std::size_t n) {
  std::size_t i = 0;
  for (std::size_t chars = 0; i < s.size() && chars < n; ++chars) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
  }
  return std::string(s.substr(0, i));
}

std::string QuoteForMessage(absl::string_view s) {
  std::string head = FirstChars(s, limits::kMaxQuotedChars);
  const bool cut = head.size() < s.size();
  return absl::StrCat("\"", head, cut ? "...\"" : "\"");
}

}  // namespace relay::core
