// relay-bench churn: K connections cycle as fast as they can: connect,
// upgrade, register (relay; echo: one round trip), close handshake, and
// again. A cycle counts when its close handshake completed cleanly. The
// server's RSS and open fds are sampled at rest after a warm-up round of
// churn and again at rest after the measured one: they should be flat.
#include <memory>

#include "bench/relay-bench/driver.h"
#include "bench/relay-bench/json_scan.h"
#include "bench/relay-bench/modes.h"

namespace relay::bench {

namespace {

class ChurnDriver final : public Driver {
 public:
  using Driver::Driver;

  RunResult Run() override {
    result_.params = "K=" + std::to_string(opt_.concurrency) + " " + Params();
    result_.rate_unit = "cycles/s";
    const bool relay = opt_.server == ServerKind::kRelay;
    for (int i = 0; i < opt_.concurrency; ++i) {
      AddClient(relay ? RelayPath(MeshId("c" + std::to_string(i))) : "/", 0, i);
    }
    started_ns_.assign(clients_.size(), 0);

    // Warm-up churn, then rest: the first sample.
    Churn(opt_.warmup_s);
    Settle(opt_.settle_s);
    const std::optional<ProcSample> rest_before = SampleServer();

    BeginWindow();
    Churn(opt_.duration_s);
    EndWindow();
    Settle(opt_.settle_s);
    const std::optional<ProcSample> rest_after = SampleServer();
    if (rest_before && rest_after) {
      result_.server_rss_before_kib = rest_before->rss_kib;
      result_.server_rss_after_kib = rest_after->rss_kib;
      result_.server_fds_before = rest_before->open_fds;
      result_.server_fds_after = rest_after->open_fds;
    }
    result_.connections = static_cast<std::int64_t>(started_);
    result_.sent = started_;
    result_.received = finished_;
    result_.lost = started_ - finished_;
    if (result_.lost > 0) Problem(std::to_string(result_.lost) + " cycles did not finish");
    return Finish();
  }

  void OnOpen(WsClient& client) override {
    if (opt_.server == ServerKind::kRelay) {
      SendRegister(client, "n", false);
    } else {
      scratch_.clear();
      PayloadFields fields;
      fields.stream = static_cast<std::uint32_t>(client.index);
      fields.send_ns = NowNs();
      AppendPayload(&scratch_, fields, opt_.payload_bytes);
      client.SendText(scratch_);
    }
  }

  void OnMessage(WsClient& client, std::string_view message) override {
    if (opt_.server == ServerKind::kRelay) {
      if (TypeOf(message) == "peers") client.Close(1000);
      return;
    }
    PayloadFields fields;
    if (!ParsePayload(message, &fields) || fields.stream != static_cast<std::uint32_t>(client.index)) {
      ++result_.corrupt;
      Problem("unexpected message: " + std::string(message.substr(0, 200)));
    }
    client.Close(1000);
  }

  void OnClosed(WsClient& client, const CloseInfo& info) override {
    if (closing_) return;
    if (!info.clean || info.by_server) {
      Driver::OnClosed(client, info);
      return;
    }
    const std::uint64_t now = NowNs();
    ++finished_;
    const std::uint64_t started = started_ns_[client.serial];
    if (window_start_ns_ != 0 && started >= window_start_ns_ &&
        (window_end_ns_ == 0 || started < window_end_ns_)) {
      result_.latency.Record(now - started);
    }
    if (in_window(now)) ++result_.completed;
    idle_.push_back(&client);
  }

 private:
  // Cycles every client for `seconds`, then lets the cycles in progress end.
  void Churn(double seconds) {
    idle_.clear();
    for (auto& c : clients_) idle_.push_back(c.get());
    auto failed = [this] { return !result_.first_problem.empty(); };
    RunUntil(NowNs() + static_cast<std::uint64_t>(seconds * 1e9), failed,
             [this](std::uint64_t now) -> std::uint64_t {
               // Between loop turns: restart the clients that finished a cycle.
               while (!idle_.empty()) {
                 WsClient* c = idle_.back();
                 idle_.pop_back();
                 started_ns_[c->serial] = now;
                 ++started_;
                 if (!Restart(*c)) break;
               }
               return 0;
             });
    RunUntil(NowNs() + static_cast<std::uint64_t>(opt_.drain_timeout_s * 1e9),
             [&] { return failed() || idle_.size() == clients_.size(); });
  }

  std::vector<std::uint64_t> started_ns_;  // by serial
  std::vector<WsClient*> idle_;            // finished a cycle, waiting for a restart
  std::uint64_t started_ = 0;
  std::uint64_t finished_ = 0;
};

}  // namespace

std::unique_ptr<Driver> MakeChurnDriver(const BenchOptions& options) {
  return std::make_unique<ChurnDriver>(options);
}

}  // namespace relay::bench
