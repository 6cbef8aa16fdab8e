// relay-bench echo: C connections to a plain WebSocket echo server (bench/
// echo-baseline), each message being the bench payload alone. Closed loop: W
// in flight per connection; open loop (--rate): R messages per second in
// total. Latency is the round trip, which crosses the server once each way,
// as one relayed message does.
#include <memory>

#include "bench/relay-bench/driver.h"
#include "bench/relay-bench/modes.h"

namespace relay::bench {

namespace {

class EchoDriver final : public Driver {
 public:
  using Driver::Driver;

  RunResult Run() override {
    result_.params = LoadParams("C=" + std::to_string(opt_.connections));
    result_.rate_unit = "round_trips/s";
    result_.offered_rate = opt_.rate;
    streams_.resize(opt_.connections);
    for (int i = 0; i < opt_.connections; ++i) conns_.push_back(AddClient("/", 0, i));
    if (!OpenAll()) return Finish();

    RunSendersLoad(
        opt_.connections, [&](int connection, std::uint64_t at) { SendEcho(connection, at); },
        [&] { return AllDelivered(streams_); });
    Tally(streams_);
    return Finish();
  }

  void OnOpen(WsClient& client) override { MarkReady(client); }

  void OnMessage(WsClient& client, std::string_view message) override {
    const std::uint64_t now = NowNs();
    PayloadFields fields;
    if (!ParsePayload(message, &fields) ||
        fields.stream != static_cast<std::uint32_t>(client.index)) {
      ++result_.corrupt;
      Problem("unexpected message: " + std::string(message.substr(0, 200)));
      return;
    }
    Stream& stream = streams_[client.index];
    Deliver(stream, fields, now);
    if (SendNextOnDelivery(stream)) SendEcho(client.index, now);
  }

 private:
  void SendEcho(int index, std::uint64_t send_ns) {
    scratch_.clear();
    AppendNextPayload(streams_[index], static_cast<std::uint32_t>(index), send_ns);
    conns_[index]->SendText(scratch_);
  }

  std::vector<WsClient*> conns_;
  std::vector<Stream> streams_;
};

}  // namespace

std::unique_ptr<Driver> MakeEchoDriver(const BenchOptions& options) {
  return std::make_unique<EchoDriver>(options);
}

}  // namespace relay::bench
