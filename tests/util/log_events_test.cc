// Tests for server/util/log_events.h: every log-only event name is a unique
// snake_case word, none takes a counter's name (a line about a close or an
// error is named by CloseReasonName / ErrorCodeName instead), and each is in
// docs/operations.md's table of log events, where operators look them up.
#include "server/util/log_events.h"

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "server/core/close_reason.h"
#include "server/core/error_code.h"
#include "server/util/log.h"

namespace relay::log {
namespace {

TEST(LogEventsTest, NamesAreUniqueSnakeCase) {
  std::set<std::string> seen;
  for (std::size_t i = 0; i < kLogEventCount; ++i) {
    const std::string name(LogEventName(static_cast<LogEvent>(i)));
    ASSERT_FALSE(name.empty()) << i;
    for (char c : name)
      EXPECT_TRUE(std::islower(static_cast<unsigned char>(c)) || c == '_') << name;
    EXPECT_TRUE(seen.insert(name).second) << name << " twice";
  }
}

TEST(LogEventsTest, NoLogOnlyNameIsACountersName) {
  std::set<std::string> counted;
  for (std::size_t i = 0; i < core::kCloseReasonCount; ++i) {
    counted.emplace(core::CloseReasonName(static_cast<core::CloseReason>(i)));
  }
  for (std::size_t i = 0; i < core::kErrorCodeCount; ++i) {
    counted.emplace(core::ErrorCodeName(static_cast<core::ErrorCode>(i)));
  }
  for (std::size_t i = 0; i < kLogEventCount; ++i) {
    const std::string name(LogEventName(static_cast<LogEvent>(i)));
    EXPECT_EQ(counted.count(name), 0u) << name << ": name it by its counter's name function";
  }
}

TEST(LogEventsTest, EveryEventIsInTheOperationsGuide) {
  std::ifstream in(RELAY_SOURCE_DIR "/docs/operations.md");
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  // The "Logs" table's first column names each event in backticks.
  const std::string doc = text.str();
  const std::size_t logs = doc.find("### Logs");
  ASSERT_NE(logs, std::string::npos);
  const std::string section = doc.substr(logs, doc.find("\n## ", logs) - logs);
  for (std::size_t i = 0; i < kLogEventCount; ++i) {
    const std::string name(LogEventName(static_cast<LogEvent>(i)));
    EXPECT_NE(section.find("`" + name + "`"), std::string::npos)
        << name << " is missing from docs/operations.md \"Logs\"";
  }
}

TEST(LogEventsTest, AnEventNamedFromTheTableWritesThatName) {
  std::string line;
  SetSinkForTest([&line](absl::string_view l) { line = std::string(l); });
  const Level level = GetLevel();
  const Format format = GetFormat();
  SetLevel(Level::kInfo);
  SetFormat(Format::kText);
  Event(Level::kInfo, LogEvent::kDrainClose).Int("connections", 3);
  SetLevel(level);
  SetFormat(format);
  SetSinkForTest(nullptr);

  EXPECT_NE(line.find(" drain_close connections=3"), std::string::npos) << line;
}

}  // namespace
}  // namespace relay::log
