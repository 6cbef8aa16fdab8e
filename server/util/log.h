// Logging: one small front so the rest of the code does not care where log
// lines go (Debian 12's Abseil has no absl/log). Each line is written to
// stderr with a single write(2), so lines from the gRPC threads and the event
// loop never interleave. Never log payloads or tokens.
//
// Two kinds of line, two formats (SetFormat; LOG_FORMAT in the relay):
//   free text   log::Info("listening on ", port)
//     text:  2026-11-26T01:02:03.123Z info  listening on 8765
//     json:  {"ts":"2026-11-26T01:02:03.123Z","level":"info","msg":"listening on 8765"}
//   events      log::Event(Level::kInfo, LogEvent::kLeave).Str("mesh", m).Int("peers", 3);
//     text:  2026-11-26T01:02:03.123Z info  leave mesh=family peers=3
//     json:  {"ts":"2026-11-26T01:02:03.123Z","level":"info","event":"leave",
//             "mesh":"family","peers":3}
// Prefer events for anything an operator would search or count (connect,
// register, leave with reason, auth failure, limit hit, drain). Name them
// from log_events.h, or by the counter's name function when the line is
// about something counted (a close reason, an error code).
#ifndef RELAY_SERVER_UTIL_LOG_H_
#define RELAY_SERVER_UTIL_LOG_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/util/log_events.h"

namespace relay::log {

enum class Level { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

// Parses trace|debug|info|warn|warning|error|off (any case).
absl::StatusOr<Level> ParseLevel(absl::string_view name);
absl::string_view LevelName(Level level);

void SetLevel(Level level);
Level GetLevel();
inline bool Enabled(Level level) { return level >= GetLevel() && level != Level::kOff; }

enum class Format { kText, kJson };

// Parses text|json (any case).
absl::StatusOr<Format> ParseFormat(absl::string_view name);
absl::string_view FormatName(Format format);

void SetFormat(Format format);
Format GetFormat();

// Writes one free-text line (the "msg" of a JSON line), whatever the level:
// callers check Enabled() first, as Log() does.
void Write(Level level, absl::string_view message);

template <typename... Args>
void Log(Level level, const Args&... args) {
  if (Enabled(level)) Write(level, absl::StrCat(args...));
}
template <typename... Args>
void Debug(const Args&... args) {
  Log(Level::kDebug, args...);
}
template <typename... Args>
void Info(const Args&... args) {
  Log(Level::kInfo, args...);
}
template <typename... Args>
void Warn(const Args&... args) {
  Log(Level::kWarn, args...);
}
template <typename... Args>
void Error(const Args&... args) {
  Log(Level::kError, args...);
}

// One structured log line, written when the Event is destroyed: use it as a
// temporary so the line goes out at the end of the statement,
//   log::Event(Level::kWarn, "auth_failed").Str("mesh", mesh).Str("reason", "bad_signature");
// or as a named local to add fields conditionally (written at end of scope).
// It can be neither copied nor moved, so a line is written exactly once.
//
// When the level is disabled every call below is one inlined branch: no
// allocation, no formatting. Arguments are still evaluated, so guard costly
// ones with `if (log::Enabled(level))` or `event.enabled()`.
//
// Keys are snake_case identifiers chosen in code (written unescaped in text
// format); "ts", "level", "event" and "msg" are taken. Values are escaped:
// logfmt-style quoting in text, JSON strings in JSON (invalid UTF-8 becomes
// U+FFFD there), so a value can never break or forge a line. Not thread-safe
// itself; different threads use different Events.
class Event {
 public:
  Event(Level level, absl::string_view name) : level_(level), enabled_(Enabled(level)) {
    if (enabled_) Begin(name);
  }
  // The same, named from the table of log-only events (log_events.h).
  Event(Level level, LogEvent event) : Event(level, LogEventName(event)) {}
  ~Event() {
    if (enabled_) Finish();
  }

  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool enabled() const { return enabled_; }

  Event& Str(absl::string_view key, absl::string_view value) {
    if (enabled_) AppendStr(key, value);
    return *this;
  }
  Event& Int(absl::string_view key, int64_t value) {
    if (enabled_) AppendRaw(key, absl::AlphaNum(value).Piece());
    return *this;
  }
  Event& Uint(absl::string_view key, uint64_t value) {
    if (enabled_) AppendRaw(key, absl::AlphaNum(value).Piece());
    return *this;
  }
  // NaN and infinities are written as the strings "NaN", "+Inf", "-Inf" (JSON
  // has no literal for them).
  Event& Double(absl::string_view key, double value) {
    if (enabled_) AppendDouble(key, value);
    return *this;
  }
  Event& Bool(absl::string_view key, bool value) {
    if (enabled_) AppendRaw(key, value ? "true" : "false");
    return *this;
  }
  // Seconds as a number, e.g. "took=0.0125".
  Event& Seconds(absl::string_view key, absl::Duration value) {
    if (enabled_) AppendDouble(key, absl::ToDoubleSeconds(value));
    return *this;
  }

 private:
  void Begin(absl::string_view name);
  void Finish();
  void AppendStr(absl::string_view key, absl::string_view value);
  void AppendRaw(absl::string_view key, absl::string_view number);
  void AppendDouble(absl::string_view key, double value);

  // The event name and fields so far, already formatted for format_ (what
  // follows the level in text, what follows "level" in JSON). Empty while
  // disabled.
  std::string body_;
  Level level_;
  Format format_ = Format::kText;
  bool enabled_;
};

// Test hooks. The sink receives each complete line, "\n" included, instead
// of stderr; the clock replaces absl::Now(). Pass nullptr to restore.
void SetSinkForTest(std::function<void(absl::string_view line)> sink);
void SetClockForTest(std::function<absl::Time()> clock);

}  // namespace relay::log

#endif  // RELAY_SERVER_UTIL_LOG_H_
