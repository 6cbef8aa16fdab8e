// Writes JSON log lines with hostile values to stderr, for check_log_json.py
// to read back with Python's json module. Each "sample" event carries the
// case name its value is checked under.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "server/util/log.h"

int main() {
  namespace log = relay::log;
  log::SetFormat(log::Format::kJson);
  log::SetLevel(log::Level::kTrace);

  const std::vector<std::pair<const char*, std::string>> cases = {
      {"plain", "family"},
      {"quote_backslash", "a\"b\\c/d"},
      {"controls", std::string("\0\x01\x1f\x7f\n\r\t\b\f", 9)},
      {"invalid_byte", "x\xff"},
      {"truncated", "ab\xe2\x82"},
      {"overlong", "\xc0\xaf"},
      {"surrogate", "\xed\xa0\x80"},
      {"too_large", "\xf4\x90\x80\x80"},
      {"emoji", "\xf0\x9f\x98\x80"},
      {"accents", "h\xc3\xa9llo"},
      {"separators", "\xe2\x80\xa8\xe2\x80\xa9"},
      {"bidi", "\xe2\x80\xae"},
      {"long", std::string(10000, 'z')},
  };
  for (const auto& [name, value] : cases) {
    log::Event(log::Level::kInfo, "sample").Str("case", name).Str("value", value);
  }
  log::Event(log::Level::kWarn, "numbers")
      .Int("int", -5)
      .Uint("uint", std::numeric_limits<uint64_t>::max())
      .Double("double", 0.1)
      .Double("nan", std::nan(""))
      .Double("inf", std::numeric_limits<double>::infinity())
      .Seconds("seconds", absl::Microseconds(1500))
      .Bool("bool", true);
  log::Event(log::Level::kDebug, "ev\"il\n").Str("k\"ey", "v");
  log::Log(log::Level::kTrace, "free text\nwith \"quotes\" and \xff");
  log::Error("error line");
  return 0;
}
