// ProcessStats: parsing /proc the way the Go and Python Prometheus clients
// do, so the numbers match theirs.
#include "server/metrics/process_stats.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace relay::metrics {
namespace {

absl::StatusOr<std::string> ReadSmallFile(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  }
  std::string data;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return absl::FailedPreconditionError(absl::StrCat("read ", path, ": ", std::strerror(err)));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

// System boot time (Unix seconds) from /proc/stat's "btime" line. Constant
// for the life of the process, so read once.
absl::StatusOr<int64_t> BootTimeSeconds() {
  static const absl::StatusOr<int64_t>* const boot = [] {
    absl::StatusOr<std::string> stat = ReadSmallFile("/proc/stat");
    if (!stat.ok()) return new absl::StatusOr<int64_t>(stat.status());
    for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
      int64_t seconds;
      if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtoi(line, &seconds)) {
        return new absl::StatusOr<int64_t>(seconds);
      }
    }
    return new absl::StatusOr<int64_t>(
        absl::FailedPreconditionError("/proc/stat has no btime line"));
  }();
  return *boot;
}

// Entries of /proc/self/fd, less the descriptor the listing itself uses.
absl::StatusOr<int64_t> CountOpenFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("opendir /proc/self/fd: ", std::strerror(errno)));
  }
  const int own_fd = ::dirfd(dir);
  int64_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    int fd;
    if (!absl::SimpleAtoi(entry->d_name, &fd)) continue;  // "." and ".."
    if (fd != own_fd) ++count;
  }
  ::closedir(dir);
  return count;
}

}  // namespace

absl::StatusOr<ProcessStats> ReadProcessStats() {
  absl::StatusOr<std::string> stat = ReadSmallFile("/proc/self/stat");
  if (!stat.ok()) return stat.status();
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // fields are counted from the last ')'. After it, field 3 (state) is [0].
  const size_t paren = stat->rfind(')');
  if (paren == std::string::npos) {
    return absl::FailedPreconditionError("/proc/self/stat: no ')' after the command name");
  }
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(paren + 1), ' ', absl::SkipEmpty());
  // proc(5) numbers fields from 1: utime 14, stime 15, starttime 22, vsize 23, rss 24.
  const auto field = [&](int number, uint64_t* value) {
    const size_t index = static_cast<size_t>(number - 3);
    return index < fields.size() && absl::SimpleAtoi(fields[index], value);
  };
  uint64_t utime, stime, start_ticks, vsize, rss_pages;
  if (!field(14, &utime) || !field(15, &stime) || !field(22, &start_ticks) || !field(23, &vsize) ||
      !field(24, &rss_pages)) {
    return absl::FailedPreconditionError("/proc/self/stat: unexpected layout");
  }
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (ticks_per_second <= 0 || page_size <= 0) {
    return absl::FailedPreconditionError("sysconf: no clock tick or page size");
  }
  absl::StatusOr<int64_t> boot = BootTimeSeconds();
  if (!boot.ok()) return boot.status();
  absl::StatusOr<int64_t> open_fds = CountOpenFds();
  if (!open_fds.ok()) return open_fds.status();

  ProcessStats stats;
  const double tick = 1.0 / static_cast<double>(ticks_per_second);
  stats.cpu_seconds = static_cast<double>(utime + stime) * tick;
  stats.start_time_seconds = static_cast<double>(*boot) + static_cast<double>(start_ticks) * tick;
  stats.virtual_memory_bytes = vsize;
  stats.resident_memory_bytes = rss_pages * static_cast<uint64_t>(page_size);
  stats.open_fds = *open_fds;
  rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    stats.max_fds = limit.rlim_cur == RLIM_INFINITY ? -1 : static_cast<int64_t>(limit.rlim_cur);
  }
  return stats;
}

void WriteProcessStats(const ProcessStats& stats, PrometheusText* out) {
  out->Family("process_cpu_seconds_total", MetricType::kCounter,
              "Total user and system CPU time spent in seconds.");
  out->Sample({}, stats.cpu_seconds);
  out->Family("process_open_fds", MetricType::kGauge, "Number of open file descriptors.");
  out->Sample({}, stats.open_fds);
  out->Family("process_max_fds", MetricType::kGauge, "Maximum number of open file descriptors.");
  out->Sample({}, stats.max_fds);
  out->Family("process_virtual_memory_bytes", MetricType::kGauge, "Virtual memory size in bytes.");
  out->Sample({}, stats.virtual_memory_bytes);
  out->Family("process_resident_memory_bytes", MetricType::kGauge,
              "Resident memory size in bytes.");
  out->Sample({}, stats.resident_memory_bytes);
  out->Family("process_start_time_seconds", MetricType::kGauge,
              "Start time of the process since unix epoch in seconds.");
  out->Sample({}, stats.start_time_seconds);
}

}  // namespace relay::metrics
