// relay-bench fanout: one mesh, N receivers and one broadcaster. Closed loop:
// W broadcasts in flight, where a broadcast is done when all N receivers got
// it; open loop (--rate): R broadcasts per second. Throughput counts
// deliveries (N per broadcast); latency is per delivery, one way. With
// --servers, the receivers spread over every instance, the broadcaster on the
// first.
#include <memory>
#include <set>
#include <string>

#include "bench/relay-bench/driver.h"
#include "bench/relay-bench/json_scan.h"
#include "bench/relay-bench/modes.h"

namespace relay::bench {

namespace {

constexpr int kBroadcaster = 0;
constexpr int kReceiver = 1;

class FanoutDriver final : public Driver {
 public:
  using Driver::Driver;

  RunResult Run() override {
    result_.params = LoadParams("N=" + std::to_string(opt_.receivers));
    result_.rate_unit = "deliveries/s";
    result_.offered_rate = opt_.rate;
    const std::string path = RelayPath(MeshId("fanout"));
    streams_.resize(opt_.receivers);
    // Receivers first, so that the broadcaster joins a full mesh.
    for (int i = 0; i < opt_.receivers; ++i) {
      AddClient(path, kReceiver, i, FanoutReceiverServer(i, server_count()));
    }
    if (!OpenAll()) return Finish();
    broadcaster_ = AddClient(path, kBroadcaster, 0, 0);
    if (!OpenAll()) return Finish();
    // The broadcaster knew every receiver before it was ready (OnMessage):
    // nothing else to wait for.
    pending_.assign(static_cast<std::size_t>(opt_.window), 0);

    // One sender: the broadcaster.
    RunSendersLoad(
        1, [&](int, std::uint64_t at) { Broadcast(at); }, [&] { return AllDelivered(streams_); });
    Tally(streams_);
    result_.sent = broadcasts_;  // messages the broadcaster sent, not deliveries
    return Finish();
  }

  void OnOpen(WsClient& client) override {
    SendRegister(client, client.role == kBroadcaster ? "src" : "r" + std::to_string(client.index),
                 false);
  }

  void OnMessage(WsClient& client, std::string_view message) override {
    const std::string_view type = TypeOf(message);
    // The broadcaster is ready once it knows all N receivers: in cluster mode
    // the receivers on other instances reach its instance some time after
    // their own `peers`, and a broadcast sent before would miss them.
    if (type == "peers" || type == "peer_joined") {
      if (client.role == kReceiver) {
        if (type == "peers") MarkReady(client);
        return;
      }
      for (std::string_view id : PeerNodeIds(message)) known_receivers_.emplace(id);
      if (known_receivers_.size() >= static_cast<std::size_t>(opt_.receivers)) MarkReady(client);
      return;
    }
    if (type != "message") return;
    const std::uint64_t now = NowNs();
    const auto from = TopLevelMember(message, "from");
    const auto raw = TopLevelMember(message, "payload");
    const auto payload = raw ? StringContents(*raw) : std::nullopt;
    PayloadFields fields;
    if (client.role != kReceiver || !from || *from != R"("src")" || !payload ||
        !ParsePayload(*payload, &fields) || fields.stream != 0) {
      ++result_.corrupt;
      Problem("unexpected message: " + std::string(message.substr(0, 200)));
      return;
    }
    Stream& stream = streams_[client.index];
    Deliver(stream, fields, now);
    if (opt_.rate > 0 || fields.seq >= broadcasts_) return;
    // Closed loop: seqs in flight are below done_ + W, so slot seq % W is theirs.
    std::uint32_t& count = pending_[fields.seq % pending_.size()];
    if (++count == static_cast<std::uint32_t>(opt_.receivers)) {
      count = 0;
      if (sending_) Broadcast(now);
    }
  }

 private:
  void Broadcast(std::uint64_t send_ns) {
    scratch_.assign(R"({"type":"broadcast","payload":")");
    Stream counter;
    counter.sent = broadcasts_++;
    AppendNextPayload(counter, 0, send_ns);
    scratch_.append("\"}");
    for (Stream& s : streams_) s.sent = broadcasts_;
    broadcaster_->SendText(scratch_);
  }

  WsClient* broadcaster_ = nullptr;
  std::set<std::string> known_receivers_;  // the broadcaster's, by node id
  std::uint64_t broadcasts_ = 0;
  std::vector<Stream> streams_;         // one per receiver, all from the broadcaster
  std::vector<std::uint32_t> pending_;  // closed loop: receivers that got seq, by seq % W
};

}  // namespace

std::unique_ptr<Driver> MakeFanoutDriver(const BenchOptions& options) {
  return std::make_unique<FanoutDriver>(options);
}

}  // namespace relay::bench
