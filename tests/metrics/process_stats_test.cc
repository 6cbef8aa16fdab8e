// Tests of server/metrics/process_stats: plausible values from /proc, the
// fd count following open/close, and the exported families.
#include "server/metrics/process_stats.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace relay::metrics {
namespace {

TEST(ProcessStatsTest, ValuesArePlausible) {
  const absl::StatusOr<ProcessStats> stats = ReadProcessStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(stats->resident_memory_bytes, 100u * 1024);
  EXPECT_LT(stats->resident_memory_bytes, uint64_t{64} << 30);
  EXPECT_GE(stats->virtual_memory_bytes, stats->resident_memory_bytes);
  EXPECT_GE(stats->open_fds, 1);
  EXPECT_TRUE(stats->max_fds == -1 || stats->max_fds >= stats->open_fds);
  EXPECT_GE(stats->cpu_seconds, 0);
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  // Started at most an hour ago (tests are short) and not in the future;
  // /proc's tick resolution and btime rounding allow ~1 s of slack.
  EXPECT_LE(stats->start_time_seconds, now + 1);
  EXPECT_GT(stats->start_time_seconds, now - 3600);
}

TEST(ProcessStatsTest, OpenFdsRisesByOneAfterOpeningAFile) {
  const int64_t before = ReadProcessStats()->open_fds;
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ReadProcessStats()->open_fds, before + 1);
  ::close(fd);
  EXPECT_EQ(ReadProcessStats()->open_fds, before);
}

TEST(ProcessStatsTest, CpuSecondsGrowWithWork) {
  const double before = ReadProcessStats()->cpu_seconds;
  // Spin until a clock tick (10 ms) of CPU is accounted; the deadline only
  // bounds a broken reading, a loaded machine just takes longer.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  volatile uint64_t spins = 0;
  double after = before;
  while (after <= before && absl::Now() < deadline) {
    for (int i = 0; i < 1000000; ++i) spins = spins + 1;
    after = ReadProcessStats()->cpu_seconds;
  }
  EXPECT_GT(after, before);
}

TEST(ProcessStatsTest, WritesTheStandardFamilies) {
  ProcessStats stats;
  stats.resident_memory_bytes = 4096;
  stats.virtual_memory_bytes = 8192;
  stats.open_fds = 7;
  stats.max_fds = 1024;
  stats.cpu_seconds = 1.25;
  stats.start_time_seconds = 1764120000.5;
  PrometheusText out;
  WriteProcessStats(stats, &out);
  const absl::StatusOr<std::string> text = std::move(out).Finish();
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
            "# TYPE process_cpu_seconds_total counter\n"
            "process_cpu_seconds_total 1.25\n"
            "# HELP process_open_fds Number of open file descriptors.\n"
            "# TYPE process_open_fds gauge\n"
            "process_open_fds 7\n"
            "# HELP process_max_fds Maximum number of open file descriptors.\n"
            "# TYPE process_max_fds gauge\n"
            "process_max_fds 1024\n"
            "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
            "# TYPE process_virtual_memory_bytes gauge\n"
            "process_virtual_memory_bytes 8192\n"
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
            "# TYPE process_resident_memory_bytes gauge\n"
            "process_resident_memory_bytes 4096\n"
            "# HELP process_start_time_seconds Start time of the process since unix epoch in "
            "seconds.\n"
            "# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds 1764120000.5\n");
}

}  // namespace
}  // namespace relay::metrics
