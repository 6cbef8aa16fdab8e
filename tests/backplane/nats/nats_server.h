// A real nats-server for tests (Debian's nats-server package): started on
// 127.0.0.1 on a free port, stopped, restarted on the same port, paused and
// resumed by PID, so a test can take NATS away the way an outage does. Its
// log goes to a file in its temp dir; Log() returns it for failure output.
//
// Header-only: test binaries include it, nothing else links it.
#ifndef RELAY_TESTS_BACKPLANE_NATS_NATS_SERVER_H_
#define RELAY_TESTS_BACKPLANE_NATS_NATS_SERVER_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace relay::backplane::nats::testing {

// Polls `done` every `interval` until it holds or `timeout` passes; true if
// it held. Real servers change state on their own time: tests wait for the
// state, bounded, never for a fixed delay.
inline bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                    std::chrono::milliseconds interval = std::chrono::milliseconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
  return true;
}

class NatsServer {
 public:
  struct Options {
    bool jetstream = false;  // -js, its store in the temp dir
    int port = 0;            // the client port; 0: a free one, picked on first use
    // Appended to the command line (NatsCluster's cluster and monitoring flags).
    std::vector<std::string> extra_args;
  };

  // How long Start waits for the port to accept connections.
  static constexpr std::chrono::seconds kStartTimeout{10};

  NatsServer() : NatsServer(Options{}) {}
  explicit NatsServer(Options options) : options_(std::move(options)), port_(options_.port) {
    std::string dir_template =
        (std::filesystem::temp_directory_path() / "relay-nats-XXXXXX").string();
    if (::mkdtemp(dir_template.data()) != nullptr) dir_ = dir_template;
  }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;
  ~NatsServer() {
    Kill();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  // The nats-server binary: /usr/sbin (Debian's place, often not on a
  // user's PATH), else the first one on PATH. Empty when there is none.
  static std::string FindBinary() {
    if (::access("/usr/sbin/nats-server", X_OK) == 0) return "/usr/sbin/nats-server";
    const char* path = std::getenv("PATH");
    if (path == nullptr) return "";
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      std::string candidate = absl::StrCat(dir, "/nats-server");
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return "";
  }

  // A port nothing listens on now: the kernel's pick for port 0, released.
  static absl::StatusOr<int> PickFreePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      const int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat("bind to port 0: ", std::strerror(err)));
    }
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  // Picks the port on first use, so a test can connect before the server
  // is up; later starts reuse it.
  absl::StatusOr<int> Port() {
    if (port_ == 0) {
      absl::StatusOr<int> port = PickFreePort();
      if (!port.ok()) return port.status();
      port_ = *port;
    }
    return port_;
  }
  absl::StatusOr<std::string> Url() {
    absl::StatusOr<int> port = Port();
    if (!port.ok()) return port.status();
    return absl::StrCat("nats://127.0.0.1:", *port);
  }

  // Starts the server and waits until its port accepts TCP connections.
  absl::Status Start() {
    if (pid_ > 0) return absl::FailedPreconditionError("nats-server already running");
    if (dir_.empty()) return absl::InternalError("no temp dir for nats-server");
    const std::string binary = FindBinary();
    if (binary.empty()) {
      return absl::NotFoundError("nats-server not found (apt-get install nats-server)");
    }
    absl::StatusOr<int> port = Port();
    if (!port.ok()) return port.status();

    // Everything the child needs is built before fork: between fork and
    // exec only async-signal-safe calls are allowed (nats.c's threads may
    // hold malloc's lock).
    std::vector<std::string> args = {binary, "-a", "127.0.0.1", "-p", std::to_string(*port)};
    if (options_.jetstream) {
      args.insert(args.end(), {"-js", "-sd", (std::filesystem::path(dir_) / "js").string()});
    }
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const std::string log = LogPath();

    const pid_t pid = ::fork();
    if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
    if (pid == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    return WaitAccepting(*port);
  }

  // Kills the server (SIGKILL, as a crash would) and reaps it.
  void Stop() { Kill(); }
  // Stops, then starts again on the same port.
  absl::Status Restart() {
    Stop();
    return Start();
  }
  // SIGSTOP: the socket stays open and silent, as with a hung node. Returns
  // once the process is stopped (state T): a signal to another process is
  // delivered on its own time, and a request sent meanwhile would be answered.
  absl::Status Pause() {
    if (absl::Status sent = Signal(SIGSTOP); !sent.ok()) return sent;
    const pid_t pid = pid_;
    if (WaitFor([pid] { return ProcessState(pid) == 'T'; }, kStartTimeout,
                std::chrono::milliseconds(1))) {
      return absl::OkStatus();
    }
    return absl::DeadlineExceededError(absl::StrCat("nats-server ", pid, " did not stop"));
  }
  absl::Status Resume() { return Signal(SIGCONT); }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string LogPath() const { return (std::filesystem::path(dir_) / "nats-server.log").string(); }
  // The log so far, for a failing test's output.
  std::string Log() const {
    std::ifstream in(LogPath());
    std::stringstream text;
    text << in.rdbuf();
    return absl::StrCat("--- ", LogPath(), " ---\n", text.str());
  }

 private:
  absl::Status Signal(int sig) {
    if (pid_ <= 0) return absl::FailedPreconditionError("nats-server not running");
    if (::kill(pid_, sig) != 0) {
      return absl::InternalError(absl::StrCat("kill(", pid_, "): ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }

  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);  // also ends a stopped process
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  absl::Status WaitAccepting(int port) {
    int status = 0;
    bool exited = false;
    const bool accepting = WaitFor(
        [&] {
          exited = ::waitpid(pid_, &status, WNOHANG) == pid_;
          return exited || Accepts(port);
        },
        kStartTimeout);
    if (exited) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("nats-server exited at start (status ", status, ")\n", Log()));
    }
    if (accepting) return absl::OkStatus();
    Kill();
    return absl::DeadlineExceededError(absl::StrCat("nats-server did not accept on port ", port,
                                                    " within ", kStartTimeout.count(), " s\n",
                                                    Log()));
  }

  friend class NatsCluster;  // uses Accepts

  // The state letter of /proc/<pid>/stat (R, S, T, ...); '?' when unread.
  static char ProcessState(pid_t pid) {
    std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "pid (comm) S ...": comm may hold spaces and parentheses, the last ')' ends it.
    const std::size_t end = stat.rfind(')');
    if (end == std::string::npos || end + 2 >= stat.size()) return '?';
    return stat[end + 2];
  }

  static bool Accepts(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    return ok;
  }

  const Options options_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace relay::backplane::nats::testing

#endif  // RELAY_TESTS_BACKPLANE_NATS_NATS_SERVER_H_
