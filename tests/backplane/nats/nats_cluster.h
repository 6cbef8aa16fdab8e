// A real nats-server cluster for tests: N (default 3) NatsServers on
// 127.0.0.1 with JetStream, routed to each other as cluster "relay-test",
// each with its own client, cluster and monitoring port and its own store.
// Start() returns once every node accepts clients, has a route to every
// other node, and answers 200 on /healthz (JetStream has a meta leader and
// is current). Nodes stop, restart (same ports, same store), pause and
// resume one at a time by PID; the destructor kills every node and waits.
//
// Header-only: test binaries include it, nothing else links it.
#ifndef RELAY_TESTS_BACKPLANE_NATS_NATS_CLUSTER_H_
#define RELAY_TESTS_BACKPLANE_NATS_NATS_CLUSTER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "tests/backplane/nats/nats_server.h"

namespace relay::backplane::nats::testing {

class NatsCluster {
 public:
  struct Options {
    int nodes = 3;
    // How long Start/WaitReady wait for the cluster to form.
    std::chrono::seconds ready_timeout{20};
  };

  static constexpr const char* kClusterName = "relay-test";

  NatsCluster() : NatsCluster(Options{}) {}
  explicit NatsCluster(Options options) : options_(options) {}
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;
  // Each NatsServer's destructor kills its node by PID and reaps it.
  ~NatsCluster() = default;

  // Picks the ports, starts every node and waits until the cluster is ready.
  absl::Status Start() {
    if (!nodes_.empty()) return absl::FailedPreconditionError("cluster already started");
    if (options_.nodes < 1) return absl::InvalidArgumentError("a cluster needs a node");
    const int n = options_.nodes;
    // Client, cluster and monitoring port per node, all distinct: the
    // kernel may hand out a released port again.
    std::set<int> taken;
    std::vector<int> ports;
    while (static_cast<int>(ports.size()) < 3 * n) {
      absl::StatusOr<int> port = NatsServer::PickFreePort();
      if (!port.ok()) return port.status();
      if (taken.insert(*port).second) ports.push_back(*port);
    }
    for (int i = 0; i < n; ++i) {
      Node node;
      node.client_port = ports[3 * i];
      node.cluster_port = ports[3 * i + 1];
      node.monitor_port = ports[3 * i + 2];
      nodes_.push_back(std::move(node));
    }
    for (int i = 0; i < n; ++i) {
      std::vector<std::string> routes;
      for (int j = 0; j < n; ++j) {
        if (j != i) routes.push_back(absl::StrCat("nats://127.0.0.1:", nodes_[j].cluster_port));
      }
      NatsServer::Options server;
      server.jetstream = true;  // -js -sd <the node's own temp dir>
      server.port = nodes_[i].client_port;
      server.extra_args = {"--server_name",
                           absl::StrCat(kClusterName, "-n", i),
                           "--cluster_name",
                           kClusterName,
                           "--cluster",
                           absl::StrCat("nats://127.0.0.1:", nodes_[i].cluster_port),
                           "-m",
                           std::to_string(nodes_[i].monitor_port)};
      if (!routes.empty()) {
        server.extra_args.insert(server.extra_args.end(), {"--routes", absl::StrJoin(routes, ",")});
      }
      nodes_[i].server = std::make_unique<NatsServer>(std::move(server));
    }
    // Started one after another: each waits only for its own client port,
    // and routes to a later node are dialled by that node when it starts.
    for (int i = 0; i < n; ++i) {
      if (absl::Status s = nodes_[i].server->Start(); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("node ", i, ": ", s.message()));
      }
    }
    return WaitReady();
  }

  // Waits until every running node accepts clients, has a route to every
  // other running node and reports JetStream healthy; then OK. Otherwise,
  // after ready_timeout, DeadlineExceeded with what was missing and every
  // node's log tail.
  absl::Status WaitReady() {
    if (nodes_.empty()) return absl::FailedPreconditionError("cluster not started");
    std::string missing;
    const bool ready = WaitFor(
        [&] {
          missing = NotReadyReason();
          return missing.empty();
        },
        options_.ready_timeout, std::chrono::milliseconds(50));
    if (ready) return absl::OkStatus();
    return absl::DeadlineExceededError(absl::StrCat("NATS cluster not ready within ",
                                                    options_.ready_timeout.count(), " s: ", missing,
                                                    "\n", LogTails()));
  }

  int size() const { return static_cast<int>(nodes_.size()); }
  NatsServer& node(int i) { return *nodes_.at(i).server; }

  // Per node, by PID (NatsServer's): SIGKILL, start again on the same ports
  // and store, SIGSTOP, SIGCONT. Restart waits for the client port only;
  // call WaitReady for the routes and JetStream.
  void Stop(int i) { node(i).Stop(); }
  absl::Status Restart(int i) { return node(i).Restart(); }
  absl::Status Pause(int i) { return node(i).Pause(); }
  absl::Status Resume(int i) { return node(i).Resume(); }
  bool running(int i) const { return nodes_.at(i).server->running(); }

  std::string url(int i) const {
    return absl::StrCat("nats://127.0.0.1:", nodes_.at(i).client_port);
  }
  // Every node's client URL, node order.
  std::vector<std::string> urls() const {
    std::vector<std::string> all;
    for (int i = 0; i < size(); ++i) all.push_back(url(i));
    return all;
  }
  // The node whose client port `url` names (as natsConnection_GetConnectedUrl
  // gives it), or -1.
  int NodeOfUrl(absl::string_view url) const {
    for (int i = 0; i < size(); ++i) {
      if (absl::EndsWith(url, absl::StrCat(":", nodes_[i].client_port))) return i;
    }
    return -1;
  }
  int monitor_port(int i) const { return nodes_.at(i).monitor_port; }

  struct HttpResponse {
    int status = 0;
    std::string body;
  };
  // A blocking HTTP/1.0 GET of 127.0.0.1:port`path`, 1 s per socket call.
  static absl::StatusOr<HttpResponse> HttpGet(int port, absl::string_view path) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
    timeval timeout{};
    timeout.tv_sec = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      const int err = errno;
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("connect to ", port, ": ", std::strerror(err)));
    }
    const std::string request =
        absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t w = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const int err = errno;
        ::close(fd);
        return absl::UnavailableError(absl::StrCat("send to ", port, ": ", std::strerror(err)));
      }
      sent += static_cast<size_t>(w);
    }
    std::string raw;
    char buf[4096];
    while (true) {
      const ssize_t r = ::recv(fd, buf, sizeof(buf), 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        const int err = errno;
        ::close(fd);
        return absl::UnavailableError(absl::StrCat("recv from ", port, ": ", std::strerror(err)));
      }
      if (r == 0) break;
      raw.append(buf, static_cast<size_t>(r));
    }
    ::close(fd);
    // "HTTP/1.x 200 OK\r\n...\r\n\r\nbody"
    HttpResponse response;
    const size_t space = raw.find(' ');
    if (raw.rfind("HTTP/", 0) != 0 || space == std::string::npos ||
        !absl::SimpleAtoi(absl::string_view(raw).substr(space + 1, 3), &response.status)) {
      return absl::InternalError(absl::StrCat("not an HTTP response from ", port, ": ", raw));
    }
    const size_t body = raw.find("\r\n\r\n");
    if (body != std::string::npos) response.body = raw.substr(body + 4);
    return response;
  }

  // "num_routes" from node i's /routez.
  absl::StatusOr<int> NumRoutes(int i) const {
    absl::StatusOr<HttpResponse> r = HttpGet(monitor_port(i), "/routez");
    if (!r.ok()) return r.status();
    if (r->status != 200) return absl::UnavailableError(absl::StrCat("/routez ", r->status));
    constexpr char kField[] = "\"num_routes\":";
    const size_t at = r->body.find(kField);
    if (at == std::string::npos) return absl::InternalError("/routez without num_routes");
    size_t from = at + sizeof(kField) - 1;
    while (from < r->body.size() && r->body[from] == ' ') ++from;
    size_t to = from;
    while (to < r->body.size() && r->body[to] >= '0' && r->body[to] <= '9') ++to;
    int routes = 0;
    if (!absl::SimpleAtoi(absl::string_view(r->body).substr(from, to - from), &routes)) {
      return absl::InternalError("/routez num_routes is not a number");
    }
    return routes;
  }

  // The last `lines` lines of every node's log, for failure output.
  std::string LogTails(int lines = 30) const {
    std::string out;
    for (const Node& node : nodes_) {
      const std::string log = node.server->Log();
      std::vector<absl::string_view> all = absl::StrSplit(log, '\n');
      const size_t first = all.size() > static_cast<size_t>(lines) + 1 ? all.size() - lines : 1;
      absl::StrAppend(&out, all.empty() ? "" : all[0], "\n");  // the "--- path ---" line
      for (size_t k = first; k < all.size(); ++k) absl::StrAppend(&out, all[k], "\n");
    }
    return out;
  }

 private:
  struct Node {
    int client_port = 0;
    int cluster_port = 0;
    int monitor_port = 0;
    std::unique_ptr<NatsServer> server;
  };

  // Empty when ready, else the first thing missing.
  std::string NotReadyReason() const {
    int running_nodes = 0;
    for (int i = 0; i < size(); ++i) running_nodes += running(i) ? 1 : 0;
    for (int i = 0; i < size(); ++i) {
      if (!running(i)) continue;
      if (!NatsServer::Accepts(nodes_[i].client_port)) {
        return absl::StrCat("node ", i, " does not accept clients");
      }
      absl::StatusOr<int> routes = NumRoutes(i);
      if (!routes.ok()) return absl::StrCat("node ", i, " /routez: ", routes.status().message());
      if (*routes != running_nodes - 1) {
        return absl::StrCat("node ", i, " has ", *routes, " routes, not ", running_nodes - 1);
      }
      // Without parameters /healthz also wants JetStream current with a
      // meta leader; ?js-enabled-only=true answers 200 long before that.
      absl::StatusOr<HttpResponse> health = HttpGet(nodes_[i].monitor_port, "/healthz");
      if (!health.ok()) return absl::StrCat("node ", i, " /healthz: ", health.status().message());
      if (health->status != 200) {
        return absl::StrCat("node ", i, " /healthz ", health->status, ": ", health->body);
      }
    }
    return "";
  }

  const Options options_;
  std::vector<Node> nodes_;
};

}  // namespace relay::backplane::nats::testing

#endif  // RELAY_TESTS_BACKPLANE_NATS_NATS_CLUSTER_H_
