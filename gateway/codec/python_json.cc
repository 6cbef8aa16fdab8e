#include "gateway/codec/python_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace relay::gateway {
namespace {

void AppendU16(std::string* out, std::uint32_t unit) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append("\\u");
  for (int shift = 12; shift >= 0; shift -= 4) out->push_back(kHex[(unit >> shift) & 0xF]);
}

// Decodes one UTF-8 character at s[i] (input is valid UTF-8).
std::uint32_t NextCodePoint(absl::string_view s, std::size_t* i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = b(*i);
  std::uint32_t cp;
  std::size_t n;
  if (lead < 0x80) {
    cp = lead;
    n = 1;
  } else if (lead < 0xE0) {
    cp = lead & 0x1F;
    n = 2;
  } else if (lead < 0xF0) {
    cp = lead & 0x0F;
    n = 3;
  } else {
    cp = lead & 0x07;
    n = 4;
  }
  for (std::size_t k = 1; k < n && *i + k < s.size(); ++k) cp = (cp << 6) | (b(*i + k) & 0x3F);
  *i += n;
  return cp;
}

}  // namespace

void AppendPythonJsonString(std::string* out, absl::string_view utf8) {
  out->push_back('"');
  for (std::size_t i = 0; i < utf8.size();) {
    const std::uint32_t cp = NextCodePoint(utf8, &i);
    switch (cp) {
      case '"':
        out->append("\\\"");
        continue;
      case '\\':
        out->append("\\\\");
        continue;
      case '\n':
        out->append("\\n");
        continue;
      case '\r':
        out->append("\\r");
        continue;
      case '\t':
        out->append("\\t");
        continue;
      case '\b':
        out->append("\\b");
        continue;
      case '\f':
        out->append("\\f");
        continue;
      default:
        break;
    }
    if (cp < 0x20 || cp > 0x7E) {  // Python escapes all but printable ASCII
      if (cp >= 0x10000) {
        const std::uint32_t v = cp - 0x10000;
        AppendU16(out, 0xD800 | (v >> 10));
        AppendU16(out, 0xDC00 | (v & 0x3FF));
      } else {
        AppendU16(out, cp);
      }
    } else {
      out->push_back(static_cast<char>(cp));
    }
  }
  out->push_back('"');
}

void AppendPythonJsonNumber(std::string* out, absl::string_view literal) {
  if (literal.find_first_of(".eE") == absl::string_view::npos) {
    // Python ints are exact and unbounded: the literal is already canonical,
    // except that -0 is 0.
    out->append(literal == "-0" ? "0" : std::string(literal));
    return;
  }
  const double value = std::strtod(std::string(literal).c_str(), nullptr);
  if (std::isinf(value)) {
    out->append(value > 0 ? "Infinity" : "-Infinity");
    return;
  }
  // Shortest round-trip digits, then laid out as Python's repr(): fixed
  // notation when the decimal exponent is in [-4, 16), else d.ddde+XX.
  char buf[64];
  const auto result =
      std::to_chars(buf, buf + sizeof(buf), std::fabs(value), std::chars_format::scientific);
  const absl::string_view sci(buf, static_cast<std::size_t>(result.ptr - buf));
  const std::size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = 0;
  (void)absl::SimpleAtoi(sci.substr(e + 1), &exponent);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();

  if (std::signbit(value)) out->push_back('-');
  const int decpt = exponent + 1;  // value = 0.digits * 10^decpt
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      absl::StrAppend(out, "0.", std::string(static_cast<std::size_t>(-decpt), '0'), digits);
    } else if (static_cast<std::size_t>(decpt) >= digits.size()) {
      absl::StrAppend(out, digits, std::string(decpt - digits.size(), '0'), ".0");
    } else {
      absl::StrAppend(out, digits.substr(0, decpt), ".", digits.substr(decpt));
    }
    return;
  }
  out->push_back(digits[0]);
  if (digits.size() > 1) absl::StrAppend(out, ".", digits.substr(1));
  absl::StrAppend(out, "e", exponent < 0 ? "-" : "+", std::abs(exponent) < 10 ? "0" : "",
                  std::abs(exponent));
}

}  // namespace relay::gateway
