// Tests of server/util/log: exact lines in both formats (fixed clock, test
// sink), value escaping, level filtering, the cost of a disabled event, and
// whole lines on the real stderr under concurrent writers.
#include "server/util/log.h"

#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "gtest/gtest.h"

// Counts heap allocations in this test binary, to show a disabled event
// allocates nothing.
namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// noinline: inlined into a caller, free() next to new trips GCC's
// -Wmismatched-new-delete although the pair matches.
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace relay::log {
namespace {

const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 11, 26, 1, 2, 3), absl::UTCTimeZone()) +
    absl::Milliseconds(123);
constexpr char kTs[] = "2026-11-26T01:02:03.123Z";

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLevel(Level::kInfo);
    SetFormat(Format::kText);
    SetClockForTest([this] {
      ++clock_calls_;
      return kNow;
    });
    SetSinkForTest([this](absl::string_view line) { lines_.emplace_back(line); });
  }
  void TearDown() override {
    SetSinkForTest(nullptr);
    SetClockForTest(nullptr);
    SetLevel(Level::kInfo);
    SetFormat(Format::kText);
  }

  // The one line written, "\n" included.
  std::string OnlyLine() {
    EXPECT_EQ(lines_.size(), 1u);
    return lines_.empty() ? "" : lines_.back();
  }

  std::vector<std::string> lines_;
  int clock_calls_ = 0;
};

TEST(ParseFormatTest, AcceptsTextAndJsonInAnyCase) {
  EXPECT_EQ(*ParseFormat("text"), Format::kText);
  EXPECT_EQ(*ParseFormat("JSON"), Format::kJson);
  EXPECT_EQ(*ParseFormat("Json"), Format::kJson);
  EXPECT_EQ(FormatName(Format::kJson), "json");
  EXPECT_EQ(FormatName(Format::kText), "text");
}

TEST(ParseFormatTest, RejectsOthersNamingTheValue) {
  const absl::StatusOr<Format> format = ParseFormat("logfmt");
  ASSERT_FALSE(format.ok());
  EXPECT_EQ(format.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(format.status().message(), "log format must be text or json, not \"logfmt\"");
}

TEST_F(LogTest, FreeTextLineInTextFormat) {
  Info("listening on ", 8765);
  EXPECT_EQ(OnlyLine(), absl::StrCat(kTs, " info  listening on 8765\n"));
}

TEST_F(LogTest, LevelsAreAlignedInTextFormat) {
  SetLevel(Level::kTrace);
  Log(Level::kTrace, "t");
  Debug("d");
  Warn("w");
  Error("e");
  ASSERT_EQ(lines_.size(), 4u);
  EXPECT_EQ(lines_[0], absl::StrCat(kTs, " trace t\n"));
  EXPECT_EQ(lines_[1], absl::StrCat(kTs, " debug d\n"));
  EXPECT_EQ(lines_[2], absl::StrCat(kTs, " warn  w\n"));
  EXPECT_EQ(lines_[3], absl::StrCat(kTs, " error e\n"));
}

TEST_F(LogTest, FreeTextLineInJsonFormat) {
  SetFormat(Format::kJson);
  Warn("listening on ", 8765);
  EXPECT_EQ(OnlyLine(), absl::StrCat("{\"ts\":\"", kTs,
                                     "\",\"level\":\"warn\",\"msg\":\"listening on 8765\"}\n"));
}

TEST_F(LogTest, FreeTextNeverSpansLines) {
  Info("line one\nline two\r\x1b[31m");
  EXPECT_EQ(OnlyLine(), absl::StrCat(kTs, " info  line one\\nline two\\r\\x1b[31m\n"));
  lines_.clear();
  SetFormat(Format::kJson);
  Info("a\nb");
  EXPECT_EQ(OnlyLine(),
            absl::StrCat("{\"ts\":\"", kTs, "\",\"level\":\"info\",\"msg\":\"a\\nb\"}\n"));
}

TEST_F(LogTest, EventInTextFormat) {
  Event(Level::kInfo, "peer_left")
      .Str("mesh", "family")
      .Str("node", "mac-1")
      .Int("peers", 3)
      .Str("reason", "client_closed");
  EXPECT_EQ(
      OnlyLine(),
      absl::StrCat(kTs, " info  peer_left mesh=family node=mac-1 peers=3 reason=client_closed\n"));
}

TEST_F(LogTest, EventInJsonFormatHasUnquotedNumbers) {
  SetFormat(Format::kJson);
  Event(Level::kWarn, "limit_hit")
      .Str("mesh", "family")
      .Int("delta", -2)
      .Uint("bytes", std::numeric_limits<uint64_t>::max())
      .Double("ratio", 0.25)
      .Seconds("took", absl::Milliseconds(12.5))
      .Bool("closed", true);
  EXPECT_EQ(OnlyLine(),
            absl::StrCat("{\"ts\":\"", kTs,
                         "\",\"level\":\"warn\",\"event\":\"limit_hit\",\"mesh\":\"family\","
                         "\"delta\":-2,\"bytes\":18446744073709551615,\"ratio\":0.25,"
                         "\"took\":0.0125,\"closed\":true}\n"));
}

TEST_F(LogTest, NumbersInTextFormat) {
  Event(Level::kInfo, "e")
      .Int("i", -7)
      .Double("d", 1e21)
      .Double("fixed", 1234567.5)
      .Double("tiny", 0.0001)
      .Double("small", 5e-05)
      .Bool("b", false)
      .Seconds("s", absl::Seconds(2));
  EXPECT_EQ(
      OnlyLine(),
      absl::StrCat(kTs,
                   " info  e i=-7 d=1e+21 fixed=1234567.5 tiny=0.0001 small=5e-05 b=false s=2\n"));
}

TEST_F(LogTest, NonFiniteDoublesAreStrings) {
  SetFormat(Format::kJson);
  Event(Level::kInfo, "e")
      .Double("nan", std::nan(""))
      .Double("inf", std::numeric_limits<double>::infinity())
      .Double("ninf", -std::numeric_limits<double>::infinity());
  EXPECT_EQ(OnlyLine(), absl::StrCat("{\"ts\":\"", kTs,
                                     "\",\"level\":\"info\",\"event\":\"e\",\"nan\":\"NaN\","
                                     "\"inf\":\"+Inf\",\"ninf\":\"-Inf\"}\n"));
}

TEST_F(LogTest, TextValuesAreQuotedOnlyWhenNeeded) {
  struct Case {
    std::string value;
    std::string written;
  };
  const std::vector<Case> cases = {
      {"family", "family"},
      {"h\xc3\xa9llo-\xe2\x9c\x93", "h\xc3\xa9llo-\xe2\x9c\x93"},  // valid UTF-8 as is
      {"", "\"\""},
      {"two words", "\"two words\""},
      {"a=b", "\"a=b\""},
      {"say \"hi\"", "\"say \\\"hi\\\"\""},
      {"C:\\dir", "\"C:\\\\dir\""},
      {"a\nb\tc\r", "\"a\\nb\\tc\\r\""},
      {"\x1b[2J", "\"\\x1b[2J\""},
      {"del\x7f", "\"del\\x7f\""},
      {"bad\xff", "\"bad\\xff\""},
      {"trunc\xe2\x82", "\"trunc\\xe2\\x82\""},
      {"sep\xe2\x80\xa8", "\"sep\\u2028\""},  // U+2028 LINE SEPARATOR
      {"rtl\xe2\x80\xae", "\"rtl\\u202e\""},  // U+202E RIGHT-TO-LEFT OVERRIDE
      {"nel\xc2\x85", "\"nel\\u0085\""},      // U+0085 NEXT LINE
      {std::string("nul\0x", 5), "\"nul\\x00x\""},
  };
  for (const Case& c : cases) {
    lines_.clear();
    Event(Level::kInfo, "e").Str("v", c.value);
    EXPECT_EQ(OnlyLine(), absl::StrCat(kTs, " info  e v=", c.written, "\n")) << c.written;
  }
}

TEST_F(LogTest, JsonStringsAreEscapedAndAlwaysValidUtf8) {
  SetFormat(Format::kJson);
  struct Case {
    std::string value;
    std::string written;
  };
  const std::vector<Case> cases = {
      {"plain", "\"plain\""},
      {"q\"b\\s/", "\"q\\\"b\\\\s/\""},
      {"\n\r\t", "\"\\n\\r\\t\""},
      {std::string("\0\x01\x1f\x7f", 4), "\"\\u0000\\u0001\\u001f\\u007f\""},
      {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},  // U+1F600 as is
      {"x\xff", "\"x\\ufffd\""},
      {"\xc0\xaf", "\"\\ufffd\\ufffd\""},                        // overlong '/'
      {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},             // UTF-16 surrogate
      {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},  // above U+10FFFF
      {"ab\xe2\x82", "\"ab\\ufffd\\ufffd\""},                    // truncated
      {"\xe2\x80\xa9", "\"\\u2029\""},
  };
  for (const Case& c : cases) {
    lines_.clear();
    Event(Level::kInfo, "e").Str("v", c.value);
    EXPECT_EQ(OnlyLine(),
              absl::StrCat("{\"ts\":\"", kTs,
                           "\",\"level\":\"info\",\"event\":\"e\",\"v\":", c.written, "}\n"))
        << c.written;
  }
}

TEST_F(LogTest, LinesBelowTheLevelAreDropped) {
  SetLevel(Level::kWarn);
  Info("no");
  Debug("no");
  Event(Level::kInfo, "no").Str("k", "v");
  Warn("yes");
  Event(Level::kError, "yes_too");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[0], absl::StrCat(kTs, " warn  yes\n"));
  EXPECT_EQ(lines_[1], absl::StrCat(kTs, " error yes_too\n"));
}

TEST_F(LogTest, LevelOffDropsEverything) {
  SetLevel(Level::kOff);
  Error("no");
  Event(Level::kError, "no");
  EXPECT_TRUE(lines_.empty());
}

TEST_F(LogTest, DisabledEventDoesNoWork) {
  SetLevel(Level::kWarn);
  const std::string value(100, 'x');  // allocated before counting
  const int64_t before = g_allocations.load();
  {
    Event event(Level::kInfo, "peer_left");
    event.Str("mesh", value)
        .Str("reason", "a much longer value than any small-string buffer")
        .Int("peers", 3)
        .Double("d", 0.5)
        .Seconds("s", absl::Seconds(1));
    EXPECT_FALSE(event.enabled());
  }
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_EQ(clock_calls_, 0);
  EXPECT_TRUE(lines_.empty());
}

TEST_F(LogTest, NamedEventIsWrittenAtEndOfScope) {
  {
    Event event(Level::kInfo, "drain");
    EXPECT_TRUE(event.enabled());
    event.Int("connections", 2);
    EXPECT_TRUE(lines_.empty());
  }
  EXPECT_EQ(OnlyLine(), absl::StrCat(kTs, " info  drain connections=2\n"));
}

TEST_F(LogTest, EventKeepsTheFormatItStartedWith) {
  {
    Event event(Level::kInfo, "e");
    SetFormat(Format::kJson);
    event.Int("n", 1);
  }
  EXPECT_EQ(OnlyLine(), absl::StrCat(kTs, " info  e n=1\n"));
}

// The real stderr path: a test sink would hide interleaving, so fd 2 is
// pointed at a temporary file while threads write lines longer than PIPE_BUF.
TEST_F(LogTest, ConcurrentLinesReachStderrWhole) {
  SetSinkForTest(nullptr);
  SetFormat(Format::kJson);
  FILE* file = tmpfile();
  ASSERT_NE(file, nullptr);
  fflush(stderr);
  const int saved_stderr = dup(STDERR_FILENO);
  ASSERT_GE(saved_stderr, 0);
  ASSERT_GE(dup2(fileno(file), STDERR_FILENO), 0);

  constexpr int kThreads = 4;
  constexpr int kLinesPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      const std::string filler(6000, static_cast<char>('a' + t));
      for (int i = 0; i < kLinesPerThread; ++i) {
        Event(Level::kInfo, "bulk").Int("thread", t).Int("i", i).Str("filler", filler);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  ASSERT_GE(dup2(saved_stderr, STDERR_FILENO), 0);
  close(saved_stderr);
  std::string written;
  rewind(file);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), file)) > 0) written.append(buf, n);
  fclose(file);

  const std::vector<std::string> lines = absl::StrSplit(written, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLinesPerThread));
  for (const std::string& line : lines) {
    const size_t at = line.find("\"thread\":");
    ASSERT_NE(at, std::string::npos);
    const int t = line[at + 9] - '0';
    const std::string filler(6000, static_cast<char>('a' + t));
    EXPECT_NE(line.find(absl::StrCat("\"filler\":\"", filler, "\"}")), std::string::npos);
    EXPECT_EQ(line.rfind(absl::StrCat("{\"ts\":\"", kTs), 0), 0u);
  }
}

}  // namespace
}  // namespace relay::log
