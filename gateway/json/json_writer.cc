#include "gateway/json/json_writer.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace relay::gateway::json {

void AppendString(std::string* out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
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
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

void AppendSeconds(std::string* out, double seconds) {
  if (!std::isfinite(seconds)) seconds = 0;
  absl::StrAppendFormat(out, "%.6f", seconds);
}

}  // namespace relay::gateway::json
