#include "gateway/json/json_writer.h"

#include <cmath>

#include "absl/strings/str_format.h"
#include "gateway/json/swar.h"

namespace relay::gateway::json {

void AppendString(std::string* out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  // Runs that need no escaping are appended whole.
  std::size_t run_start = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    while (swar::kEnabled && i + 8 <= s.size()) {
      if (const std::uint64_t bits = swar::QuoteBackslashOrControl(swar::Load(s.data() + i));
          bits != 0) {
        i += swar::FirstFlaggedByte(bits);
        break;
      }
      i += 8;
    }
    if (i >= s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c != '"' && c != '\\' && c >= 0x20) {
      ++i;
      continue;
    }
    out->append(s.data() + run_start, i - run_start);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xF]);
    }
    run_start = ++i;
  }
  out->append(s.data() + run_start, s.size() - run_start);
  out->push_back('"');
}

void AppendSeconds(std::string* out, double seconds) {
  if (!std::isfinite(seconds)) seconds = 0;
  absl::StrAppendFormat(out, "%.6f", seconds);
}

}  // namespace relay::gateway::json
