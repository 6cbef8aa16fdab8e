// Logging: one small front so the rest of the code does not care where log
// lines go (Debian 12's Abseil has no absl/log). Lines go to stderr as
// "2026-11-26T01:02:03.123Z info  message". Never log payloads or tokens.
#ifndef RELAY_SERVER_UTIL_LOG_H_
#define RELAY_SERVER_UTIL_LOG_H_

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace relay::log {

enum class Level { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };

// Parses trace|debug|info|warn|warning|error|off (any case).
absl::StatusOr<Level> ParseLevel(absl::string_view name);
absl::string_view LevelName(Level level);

void SetLevel(Level level);
Level GetLevel();
inline bool Enabled(Level level) { return level >= GetLevel() && level != Level::kOff; }

void Write(Level level, absl::string_view message);

template <typename... Args>
void Log(Level level, const Args&... args) {
  if (Enabled(level)) Write(level, absl::StrCat(args...));
}
template <typename... Args>
void Debug(const Args&... args) { Log(Level::kDebug, args...); }
template <typename... Args>
void Info(const Args&... args) { Log(Level::kInfo, args...); }
template <typename... Args>
void Warn(const Args&... args) { Log(Level::kWarn, args...); }
template <typename... Args>
void Error(const Args&... args) { Log(Level::kError, args...); }

}  // namespace relay::log

#endif  // RELAY_SERVER_UTIL_LOG_H_
