// Logging: level and format switches, value escaping for both formats, and
// the one place a line is assembled and written. Start at WriteLine().
#include "server/util/log.h"

#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"

namespace relay::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};
std::atomic<Format> g_format{Format::kText};

// Where lines go. Never destroyed, so threads still logging during exit are
// safe. The mutex makes each line one uninterrupted write even when stderr
// is a pipe and the line is longer than PIPE_BUF.
struct Output {
  std::mutex mu;
  std::function<void(absl::string_view)> sink;  // guarded by mu; empty: stderr
  std::function<absl::Time()> clock;            // guarded by mu; empty: absl::Now
};
Output& GetOutput() {
  static Output* const output = new Output;
  return *output;
}

void WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // Nowhere left to report a failing stderr.
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Level names padded to one width so text lines stay aligned.
absl::string_view PaddedLevelName(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info ";
    case Level::kWarn:
      return "warn ";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off  ";
  }
  return "info ";
}

// Decodes the UTF-8 sequence at s[i]: its length, or 0 when the bytes there
// are not well-formed UTF-8 (overlong forms, surrogates and values above
// U+10FFFF included), per the table in Unicode 15 section 3.9.
size_t DecodeUtf8(absl::string_view s, size_t i, uint32_t* code_point) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    *code_point = b0;
    return 1;
  }
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  uint32_t cp = b0 & (0xFF >> (len + 1));
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (byte(i + k) & 0x3F);
  *code_point = cp;
  return len;
}

// Code points that would let a value fake a line break or reorder what a
// terminal shows: C1 controls, line/paragraph separators, bidi overrides.
bool IsUnsafeNonAscii(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x200E || cp == 0x200F ||
         (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

constexpr char kHex[] = "0123456789abcdef";

void AppendHexEscape(std::string* out, char prefix, uint32_t value, int digits) {
  out->push_back('\\');
  out->push_back(prefix);
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4)
    out->push_back(kHex[(value >> shift) & 0xF]);
}

// Escapes control bytes Go-style (\n, \t, \x1b) so free text stays on one
// line; everything else is copied.
void AppendFreeText(std::string* out, absl::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7F) {
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append("\\t");
    } else {
      AppendHexEscape(out, 'x', u, 2);
    }
  }
}

// True when a text-format value must be quoted to read back unambiguously
// (logfmt): empty, or holding a space, '=', a quote, a backslash, a control
// character, invalid UTF-8 or an unsafe code point.
bool TextNeedsQuotes(absl::string_view s) {
  if (s.empty()) return true;
  for (size_t i = 0; i < s.size();) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (u < 0x80) {
      if (u <= 0x20 || u == 0x7F || u == '=' || u == '"' || u == '\\') return true;
      ++i;
      continue;
    }
    uint32_t cp;
    const size_t len = DecodeUtf8(s, i, &cp);
    if (len == 0 || IsUnsafeNonAscii(cp)) return true;
    i += len;
  }
  return false;
}

// A text-format value: as is, or quoted like Go's %q (invalid bytes as \xNN,
// unsafe code points as \uNNNN).
void AppendTextValue(std::string* out, absl::string_view s) {
  if (!TextNeedsQuotes(s)) {
    out->append(s.data(), s.size());
    return;
  }
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      if (c == '"' || c == '\\') {
        out->push_back('\\');
        out->push_back(c);
      } else if (u >= 0x20 && u != 0x7F) {
        out->push_back(c);
      } else {
        AppendFreeText(out, absl::string_view(&c, 1));
      }
      ++i;
      continue;
    }
    uint32_t cp;
    const size_t len = DecodeUtf8(s, i, &cp);
    if (len == 0) {
      AppendHexEscape(out, 'x', u, 2);
      ++i;
    } else {
      if (IsUnsafeNonAscii(cp)) {
        AppendHexEscape(out, 'u', cp, 4);
      } else {
        out->append(s.data() + i, len);
      }
      i += len;
    }
  }
  out->push_back('"');
}

// A JSON string (RFC 8259) with its quotes. Control characters become
// \u00XX, invalid UTF-8 becomes \ufffd and unsafe code points are escaped,
// so the line is always valid JSON and always one line.
void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
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
          if (u < 0x20 || u == 0x7F) {
            AppendHexEscape(out, 'u', u, 4);
          } else {
            out->push_back(c);
          }
      }
      ++i;
      continue;
    }
    uint32_t cp;
    const size_t len = DecodeUtf8(s, i, &cp);
    if (len == 0) {
      out->append("\\ufffd");
      ++i;
    } else {
      if (IsUnsafeNonAscii(cp)) {
        AppendHexEscape(out, 'u', cp, 4);
      } else {
        out->append(s.data() + i, len);
      }
      i += len;
    }
  }
  out->push_back('"');
}

// A finite double in the fewest digits that read back the same, laid out as
// Go's %v and JavaScript do ("0.0125", "5e-05", "1234567.5", "1e+21"): a
// valid JSON number too. `buf` holds the text.
absl::string_view FormatDouble(double value, char (&buf)[64]) {
  std::to_chars_result r =
      std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  const absl::string_view scientific(buf, static_cast<size_t>(r.ptr - buf));
  int exponent = 0;
  if (!absl::SimpleAtoi(scientific.substr(scientific.find('e') + 1), &exponent) || exponent < -4 ||
      exponent >= 21) {
    return scientific;
  }
  r = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed);
  return absl::string_view(buf, static_cast<size_t>(r.ptr - buf));
}

// Assembles "<ts> <level> <body>" or {"ts":..,"level":..,<body>} and writes
// it with one write(2). `body` is already escaped for `format`.
void WriteLine(Level level, Format format, absl::string_view body) {
  Output& output = GetOutput();
  std::lock_guard<std::mutex> lock(output.mu);
  const absl::Time now = output.clock ? output.clock() : absl::Now();
  const std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, absl::UTCTimeZone());
  std::string line;
  if (format == Format::kJson) {
    line = absl::StrCat("{\"ts\":\"", ts, "\",\"level\":\"", LevelName(level), "\",", body, "}\n");
  } else {
    line = absl::StrCat(ts, " ", PaddedLevelName(level), " ", body, "\n");
  }
  if (output.sink) {
    output.sink(line);
  } else {
    WriteAll(STDERR_FILENO, line);
  }
}

}  // namespace

absl::StatusOr<Level> ParseLevel(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "trace") return Level::kTrace;
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warn" || lower == "warning") return Level::kWarn;
  if (lower == "error") return Level::kError;
  if (lower == "off") return Level::kOff;
  return absl::InvalidArgumentError(
      absl::StrCat("log level must be trace, debug, info, warn, error or off, not \"", name, "\""));
}

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "info";
}

void SetLevel(Level level) { g_level.store(level, std::memory_order_relaxed); }
Level GetLevel() { return g_level.load(std::memory_order_relaxed); }

absl::StatusOr<Format> ParseFormat(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "text") return Format::kText;
  if (lower == "json") return Format::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("log format must be text or json, not \"", name, "\""));
}

absl::string_view FormatName(Format format) { return format == Format::kJson ? "json" : "text"; }

void SetFormat(Format format) { g_format.store(format, std::memory_order_relaxed); }
Format GetFormat() { return g_format.load(std::memory_order_relaxed); }

void Write(Level level, absl::string_view message) {
  const Format format = GetFormat();
  std::string body;
  body.reserve(message.size() + 8);
  if (format == Format::kJson) {
    body.append("\"msg\":");
    AppendJsonString(&body, message);
  } else {
    AppendFreeText(&body, message);
  }
  WriteLine(level, format, body);
}

void Event::Begin(absl::string_view name) {
  format_ = GetFormat();
  body_.reserve(160);
  if (format_ == Format::kJson) {
    body_.append("\"event\":");
    AppendJsonString(&body_, name);
  } else {
    AppendTextValue(&body_, name);
  }
}

void Event::Finish() { WriteLine(level_, format_, body_); }

void Event::AppendStr(absl::string_view key, absl::string_view value) {
  if (format_ == Format::kJson) {
    body_.push_back(',');
    AppendJsonString(&body_, key);
    body_.push_back(':');
    AppendJsonString(&body_, value);
  } else {
    absl::StrAppend(&body_, " ", key, "=");
    AppendTextValue(&body_, value);
  }
}

void Event::AppendRaw(absl::string_view key, absl::string_view number) {
  if (format_ == Format::kJson) {
    body_.push_back(',');
    AppendJsonString(&body_, key);
    absl::StrAppend(&body_, ":", number);
  } else {
    absl::StrAppend(&body_, " ", key, "=", number);
  }
}

void Event::AppendDouble(absl::string_view key, double value) {
  if (std::isfinite(value)) {
    char buf[64];
    AppendRaw(key, FormatDouble(value, buf));
  } else {
    AppendStr(key, std::isnan(value) ? "NaN" : (value > 0 ? "+Inf" : "-Inf"));
  }
}

void SetSinkForTest(std::function<void(absl::string_view line)> sink) {
  Output& output = GetOutput();
  std::lock_guard<std::mutex> lock(output.mu);
  output.sink = std::move(sink);
}

void SetClockForTest(std::function<absl::Time()> clock) {
  Output& output = GetOutput();
  std::lock_guard<std::mutex> lock(output.mu);
  output.clock = std::move(clock);
}

}  // namespace relay::log
