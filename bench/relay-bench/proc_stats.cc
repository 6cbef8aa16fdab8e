// /proc sampling for relay-bench (see proc_stats.h).
#include "bench/relay-bench/proc_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "bench/relay-bench/event_loop.h"

namespace relay::bench {

std::optional<ProcSample> SampleProcess(pid_t pid) {
  ProcSample sample;
  const std::string base = "/proc/" + std::to_string(pid);
  {
    std::ifstream status(base + "/status");
    if (!status) return std::nullopt;
    std::string line;
    bool found = false;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) {
        sample.rss_kib = std::strtoll(line.c_str() + 6, nullptr, 10);
        found = true;
        break;
      }
    }
    if (!found) return std::nullopt;  // a zombie has no VmRSS
  }
  {
    std::ifstream stat_file(base + "/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    // The command name (field 2) may hold spaces: count fields after its ')'.
    const std::size_t paren = stat.rfind(')');
    if (paren == std::string::npos) return std::nullopt;
    std::istringstream fields(stat.substr(paren + 2));
    std::string field;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    // After ')': state is field 3; utime is field 14, stime field 15.
    for (int i = 3; i <= 15 && (fields >> field); ++i) {
      if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
      if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
    }
    sample.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  if (DIR* dir = opendir((base + "/fd").c_str())) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++sample.open_fds;
    }
    closedir(dir);
  } else {
    sample.open_fds = -1;  // another user's process
  }
  sample.at_ns = NowNs();
  return sample;
}

double CpuPercent(const ProcSample& before, const ProcSample& after) {
  const double wall = static_cast<double>(after.at_ns - before.at_ns) / 1e9;
  if (wall <= 0) return 0;
  return 100.0 * (after.cpu_seconds - before.cpu_seconds) / wall;
}

double SelfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

std::uint64_t RaiseFdLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

}  // namespace relay::bench
