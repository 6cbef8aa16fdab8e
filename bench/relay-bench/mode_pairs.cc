// relay-bench pairs: P meshes of two peers; A sends `direct` to B, B checks
// every `message` (sequence, sender, latency). Closed loop: W messages in
// flight per pair, the next one leaves when B got one. Open loop (--rate):
// R messages per second in total, round robin over the pairs. With
// --servers, A and B of each pair are on different instances (cluster mode).
#include <memory>

#include "bench/relay-bench/driver.h"
#include "bench/relay-bench/json_scan.h"
#include "bench/relay-bench/modes.h"

namespace relay::bench {

namespace {

constexpr int kSender = 0;
constexpr int kReceiver = 1;

class PairsDriver final : public Driver {
 public:
  using Driver::Driver;

  RunResult Run() override {
    result_.params = LoadParams("P=" + std::to_string(opt_.pairs));
    result_.rate_unit = "msgs/s";
    result_.offered_rate = opt_.rate;
    streams_.resize(opt_.pairs);
    for (int i = 0; i < opt_.pairs; ++i) {
      const std::string path = RelayPath(MeshId("p" + std::to_string(i)));
      // With --servers, the two ends on different instances.
      senders_.push_back(AddClient(path, kSender, i, PairSenderServer(i, server_count())));
      AddClient(path, kReceiver, i, PairReceiverServer(i, server_count()));
    }
    if (!OpenAll()) return Finish();

    RunSendersLoad(
        opt_.pairs, [&](int pair, std::uint64_t at) { SendDirect(pair, at); },
        [&] { return AllDelivered(streams_); });
    Tally(streams_);
    return Finish();
  }

  void OnOpen(WsClient& client) override {
    SendRegister(client, client.role == kSender ? "a" : "b", false);
  }

  void OnMessage(WsClient& client, std::string_view message) override {
    const std::string_view type = TypeOf(message);
    // A is ready once it knows B: in cluster mode B's registration reaches
    // A's instance some time after B's own `peers`, and a direct sent before
    // would be refused as unknown_target.
    if (type == "peers" || type == "peer_joined") {
      if (client.role == kReceiver) {
        if (type == "peers") MarkReady(client);
        return;
      }
      for (std::string_view id : PeerNodeIds(message)) {
        if (id == "b") MarkReady(client);
      }
      return;
    }
    if (type != "message") return;  // joined, peer_left; error is recorded by TypeOf
    const std::uint64_t now = NowNs();
    PayloadFields fields;
    if (!ReadPairMessage(client, client.role == kReceiver, message, &fields)) return;
    Stream& stream = streams_[client.index];
    Deliver(stream, fields, now);
    if (SendNextOnDelivery(stream)) SendDirect(client.index, now);
  }

 private:
  void SendDirect(int pair, std::uint64_t send_ns) {
    scratch_.assign(R"({"type":"direct","target":"b","payload":")");
    AppendNextPayload(streams_[pair], static_cast<std::uint32_t>(pair), send_ns);
    scratch_.append("\"}");
    senders_[pair]->SendText(scratch_);
  }

  std::vector<WsClient*> senders_;
  std::vector<Stream> streams_;
};

}  // namespace

std::unique_ptr<Driver> MakePairsDriver(const BenchOptions& options) {
  return std::make_unique<PairsDriver>(options);
}

}  // namespace relay::bench
