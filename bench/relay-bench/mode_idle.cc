// relay-bench idle: C connections opened and held. Against the relay they
// register in meshes of two (a family: phone and Mac); against the echo
// server each does one round trip. Server RSS (/proc VmRSS) is sampled
// before the first connection and after all are up and settled:
// bytes per connection = (after - before) / C. After --hold seconds every
// connection must still work: one more message per mesh (relay) or per
// connection (echo) is checked.
#include <memory>

#include "bench/relay-bench/driver.h"
#include "bench/relay-bench/json_scan.h"
#include "bench/relay-bench/modes.h"

namespace relay::bench {

namespace {

constexpr int kFirst = 0;   // relay: node "a", the sender of the liveness check
constexpr int kSecond = 1;  // relay: node "b"

class IdleDriver final : public Driver {
 public:
  using Driver::Driver;

  RunResult Run() override {
    const bool relay = opt_.server == ServerKind::kRelay;
    result_.params = "C=" + std::to_string(opt_.connections) + " " + Params();
    result_.rate_unit = "connections";
    const std::optional<ProcSample> before = SampleServer();
    if (opt_.server_pid != 0 && !before) {
      Problem("cannot read /proc/" + std::to_string(opt_.server_pid));
      return result_;
    }
    if (relay) {
      for (int i = 0; i < opt_.connections; ++i) {
        const int mesh = i / 2;
        WsClient* c = AddClient(RelayPath(MeshId("i" + std::to_string(mesh))), i % 2, mesh);
        if (i % 2 == kFirst) senders_.push_back(c);
      }
      streams_.resize(senders_.size());
    } else {
      for (int i = 0; i < opt_.connections; ++i) senders_.push_back(AddClient("/", kFirst, i));
      streams_.resize(senders_.size());
    }
    const std::uint64_t setup_start = NowNs();
    if (!OpenAll()) return Finish();
    const double setup_s = static_cast<double>(NowNs() - setup_start) / 1e9;
    // Echo: the setup round trip of every connection was delivered.
    Settle(opt_.settle_s);
    const std::optional<ProcSample> loaded = SampleServer();
    result_.connections = opt_.connections;
    result_.completed = static_cast<std::uint64_t>(opt_.connections);
    result_.window_s = setup_s;
    result_.rate = setup_s > 0 ? opt_.connections / setup_s : 0;
    if (before && loaded) {
      result_.server_rss_before_kib = before->rss_kib;
      result_.server_rss_after_kib = loaded->rss_kib;
      result_.server_fds_before = before->open_fds;
      result_.server_fds_after = loaded->open_fds;
      result_.bytes_per_connection =
          static_cast<double>(loaded->rss_kib - before->rss_kib) * 1024.0 / opt_.connections;
    }

    Settle(opt_.hold_s);
    // Still alive? One checked message per mesh (relay) or connection (echo).
    // A mesh whose second member is missing (odd C) has nobody to send to.
    liveness_ = true;
    const std::uint64_t now = NowNs();
    for (std::size_t i = 0; i < senders_.size(); ++i) {
      if (relay && 2 * i + 1 >= static_cast<std::size_t>(opt_.connections)) continue;
      Send(static_cast<int>(i), now);
    }
    RunUntil(NowNs() + static_cast<std::uint64_t>(opt_.drain_timeout_s * 1e9),
             [&] { return !result_.first_problem.empty() || AllDelivered(streams_); });
    Tally(streams_);
    return Finish();
  }

  void OnOpen(WsClient& client) override {
    if (opt_.server == ServerKind::kRelay) {
      SendRegister(client, client.role == kFirst ? "a" : "b", false);
    } else {
      Send(client.index, NowNs());  // ready when it comes back
    }
  }

  void OnMessage(WsClient& client, std::string_view message) override {
    std::string_view payload = message;
    if (opt_.server == ServerKind::kRelay) {
      const std::string_view type = TypeOf(message);
      if (type == "peers") {
        MarkReady(client);
        return;
      }
      if (type != "message") return;
      const auto raw = TopLevelMember(message, "payload");
      const auto contents = raw ? StringContents(*raw) : std::nullopt;
      if (!contents || client.role != kSecond) {
        ++result_.corrupt;
        Problem("unexpected message: " + std::string(message.substr(0, 200)));
        return;
      }
      payload = *contents;
    }
    PayloadFields fields;
    if (!ParsePayload(payload, &fields) || fields.stream != static_cast<std::uint32_t>(client.index)) {
      ++result_.corrupt;
      Problem("unexpected message: " + std::string(message.substr(0, 200)));
      return;
    }
    Deliver(streams_[client.index], fields, NowNs());
    if (opt_.server == ServerKind::kEcho && !liveness_) MarkReady(client);
  }

 private:
  void Send(int index, std::uint64_t now) {
    if (opt_.server == ServerKind::kRelay) {
      scratch_.assign(R"({"type":"direct","target":"b","payload":")");
      AppendNextPayload(streams_[index], static_cast<std::uint32_t>(index), now);
      scratch_.append("\"}");
    } else {
      scratch_.clear();
      AppendNextPayload(streams_[index], static_cast<std::uint32_t>(index), now);
    }
    senders_[index]->SendText(scratch_);
  }

  bool liveness_ = false;
  std::vector<WsClient*> senders_;  // relay: the "a" of each mesh; echo: every connection
  std::vector<Stream> streams_;
};

}  // namespace

std::unique_ptr<Driver> MakeIdleDriver(const BenchOptions& options) {
  return std::make_unique<IdleDriver>(options);
}

}  // namespace relay::bench
