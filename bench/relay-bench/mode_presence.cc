// relay-bench presence: how fast a registration becomes visible elsewhere.
// K mesh slots; slot k has an observer, registered once, and a joiner that
// cycles: connect, register under a fresh node id, `joined` + `peers`, close
// handshake, and again. With --servers the joiner of slot k is on instance
// k % n and its observer on (k + 1) % n, so every join crosses instances.
//
// Latency: the joiner's `register` sent -> the observer's `peer_joined` for
// that node id (presence convergence). Rate: joins per second over all
// slots, each counted when its `joined` arrives. Checks: every join reaches
// its observer exactly once (lost: never seen by the drain's end;
// duplicates: seen twice; a peer_joined of an id nobody registered is
// corrupt). Joiners do not wait for their observer before the next cycle, so
// with K > 1 the convergence is measured under that join load.
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "bench/relay-bench/driver.h"
#include "bench/relay-bench/json_scan.h"
#include "bench/relay-bench/modes.h"

namespace relay::bench {

namespace {

constexpr int kObserver = 0;
constexpr int kJoiner = 1;

class PresenceDriver final : public Driver {
 public:
  using Driver::Driver;

  RunResult Run() override {
    result_.params = "K=" + std::to_string(opt_.concurrency) + " " + Params();
    result_.rate_unit = "joins/s";
    const int n = server_count();
    for (int k = 0; k < opt_.concurrency; ++k) {
      AddClient(RelayPath(MeshId("pr" + std::to_string(k))), kObserver, k,
                PairReceiverServer(k, n));
    }
    if (!OpenAll()) return Finish();
    for (int k = 0; k < opt_.concurrency; ++k) {
      joiners_.push_back(AddClient(RelayPath(MeshId("pr" + std::to_string(k))), kJoiner, k,
                                   PairSenderServer(k, n)));
    }
    cycles_.assign(static_cast<std::size_t>(opt_.concurrency), 0);

    auto failed = [this] { return !result_.first_problem.empty(); };
    idle_ = joiners_;
    const std::uint64_t window_start =
        NowNs() + static_cast<std::uint64_t>(opt_.warmup_s * 1e9);
    const std::uint64_t window_end =
        window_start + static_cast<std::uint64_t>(opt_.duration_s * 1e9);
    RunUntil(window_end, failed, [&](std::uint64_t now) -> std::uint64_t {
      if (window_start_ns_ == 0 && now >= window_start) BeginWindow();
      // Between loop turns: restart the joiners that finished a cycle.
      while (!idle_.empty()) {
        WsClient* joiner = idle_.back();
        idle_.pop_back();
        if (!Restart(*joiner)) break;
      }
      return window_start_ns_ == 0 ? window_start : window_end;
    });
    if (window_start_ns_ == 0) BeginWindow();
    EndWindow();
    // Drain: the cycles in progress end, and every join reaches its observer.
    RunUntil(NowNs() + static_cast<std::uint64_t>(opt_.drain_timeout_s * 1e9), [&] {
      return failed() || (idle_.size() == joiners_.size() && pending_.empty());
    });

    result_.connections = static_cast<std::int64_t>(opt_.concurrency);
    result_.sent = registers_;
    result_.received = observed_;
    result_.lost = pending_.size();
    result_.duplicates = duplicates_;
    if (result_.lost > 0) {
      Problem(std::to_string(result_.lost) + " joins never reached their observer");
    }
    if (duplicates_ > 0) Problem(std::to_string(duplicates_) + " duplicate peer_joined");
    if (idle_.size() != joiners_.size()) Problem("joins still in progress after the drain");
    return Finish();
  }

  void OnOpen(WsClient& client) override {
    if (client.role == kObserver) {
      SendRegister(client, "obs", false);
      return;
    }
    std::string node_id = "j" + std::to_string(client.index) + "n" +
                          std::to_string(cycles_[static_cast<std::size_t>(client.index)]++);
    pending_[node_id] = Pending{client.index, NowNs()};
    ++registers_;
    SendRegister(client, node_id, false);
  }

  void OnMessage(WsClient& client, std::string_view message) override {
    const std::string_view type = TypeOf(message);
    if (client.role == kObserver) {
      if (type == "peers") {
        MarkReady(client);
      } else if (type == "peer_joined") {
        Observe(client, message);
      }
      return;
    }
    if (type == "joined") {
      if (in_window(NowNs())) ++result_.completed;
    } else if (type == "peers") {
      client.Close(1000);
    } else if (type == "message") {
      ++result_.corrupt;
      Problem("unexpected message: " + std::string(message.substr(0, 200)));
    }
  }

  void OnClosed(WsClient& client, const CloseInfo& info) override {
    if (closing_) return;
    if (client.role == kObserver || !info.clean || info.by_server) {
      Driver::OnClosed(client, info);
      return;
    }
    idle_.push_back(&client);
  }

 private:
  struct Pending {
    int slot = 0;
    std::uint64_t register_ns = 0;
  };

  void Observe(WsClient& observer, std::string_view message) {
    const std::uint64_t now = NowNs();
    const auto raw = TopLevelMember(message, "node_id");
    const auto id = raw ? StringContents(*raw) : std::nullopt;
    if (!id) {
      ++result_.corrupt;
      Problem("peer_joined without a node_id: " + std::string(message.substr(0, 200)));
      return;
    }
    const std::string node_id(*id);
    const auto it = pending_.find(node_id);
    if (it == pending_.end()) {
      if (seen_.count(node_id) > 0) {
        ++duplicates_;
      } else {
        ++result_.corrupt;
        Problem("peer_joined of a node nobody registered: " + std::string(message.substr(0, 200)));
      }
      return;
    }
    if (it->second.slot != observer.index) {
      ++result_.corrupt;
      Problem("peer_joined in the wrong mesh: " + std::string(message.substr(0, 200)));
      return;
    }
    const std::uint64_t sent = it->second.register_ns;
    if (window_start_ns_ != 0 && sent >= window_start_ns_ &&
        (window_end_ns_ == 0 || sent < window_end_ns_)) {
      result_.latency.Record(now > sent ? now - sent : 0);
    }
    ++observed_;
    seen_.insert(node_id);
    pending_.erase(it);
  }

  std::vector<WsClient*> joiners_;
  std::vector<WsClient*> idle_;            // finished a cycle, waiting for a restart
  std::vector<std::uint64_t> cycles_;      // by slot: node ids handed out
  std::unordered_map<std::string, Pending> pending_;  // registered, not yet observed
  std::unordered_set<std::string> seen_;              // observed once
  std::uint64_t registers_ = 0;
  std::uint64_t observed_ = 0;
  std::uint64_t duplicates_ = 0;
};

}  // namespace

std::unique_ptr<Driver> MakePresenceDriver(const BenchOptions& options) {
  return std::make_unique<PresenceDriver>(options);
}

}  // namespace relay::bench
