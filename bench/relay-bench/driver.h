// Driver: what every relay-bench mode shares. It owns the event loop and the
// clients, opens them with bounded concurrency, runs the loop, speaks the
// relay's register step, samples the server process around the measured
// window, and records every problem (a run with any problem fails).
//
// A mode (mode_*.cc) derives from Driver, adds its clients, handles their
// messages and fills result_. Start reading at Driver::Run in a mode file.
#ifndef RELAY_BENCH_RELAY_BENCH_DRIVER_H_
#define RELAY_BENCH_RELAY_BENCH_DRIVER_H_

#include <netinet/in.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/relay-bench/bench_payload.h"
#include "bench/relay-bench/event_loop.h"
#include "bench/relay-bench/options.h"
#include "bench/relay-bench/proc_stats.h"
#include "bench/relay-bench/report.h"
#include "bench/relay-bench/seq_tracker.h"
#include "bench/relay-bench/ws_client.h"

namespace relay::bench {

class Driver : public WsClientHandler {
 public:
  explicit Driver(const BenchOptions& options);
  virtual ~Driver();

  // Resolves the server addresses; false with `*error` when one is not an IPv4 address.
  bool Init(std::string* error);
  // Runs the mode and returns what it measured and checked.
  virtual RunResult Run() = 0;

 protected:
  // --- clients -------------------------------------------------------------
  // A new client, not started; `path` is the URL path to upgrade, `server`
  // its index in opt_.ServerList() (-1: RoundRobinServer of its serial).
  WsClient* AddClient(std::string path, int role, int index, int server = -1);
  int server_count() const { return static_cast<int>(servers_.size()); }
  // Starts every added client that was not started yet, at most
  // connect_concurrency not ready at once, and runs the loop until each is
  // ready (MarkReady). False on timeout or on a problem.
  bool OpenAll();
  // The mode calls this when a client is usable (registered, or open for echo).
  void MarkReady(WsClient& client);
  // Restarts one client that ended (churn). Call between loop turns only.
  bool Restart(WsClient& client);
  // A close frame on every client still open, then the loop until all ended
  // (at most 5 s; the rest are aborted). Closes during this are expected.
  void CloseAll();
  // The end of every Run(): CloseAll(), then the result.
  RunResult Finish();
  // Runs the loop until `done()` or `deadline_ns`; `tick(now)` before every
  // turn returns when it wants to run next (0: no wish). A turn waits for
  // events at most `wait_ms`, and never past that wish.
  // Returns true when done() became true.
  using Tick = std::function<std::uint64_t(std::uint64_t now)>;
  bool RunUntil(std::uint64_t deadline_ns, const std::function<bool()>& done,
                const Tick& tick = nullptr, int wait_ms = 1);

  // --- the relay protocol --------------------------------------------------
  static std::string RelayPath(std::string_view mesh_id);
  std::string MeshId(std::string_view name) const;  // unique per run
  void SendRegister(WsClient& client, std::string_view node_id, bool llm_capable);
  // The "type" of a relay message; an `error` is recorded as a problem.
  std::string_view TypeOf(std::string_view message);

  // --- load phases ---------------------------------------------------------
  // start(); warm-up; the measured window; then sending_ = false and the
  // drain until drained() or --drain-timeout. tick(now) runs every loop turn
  // (open-loop sends). Stops early on a problem.
  void RunLoad(const std::function<void()>& start, const Tick& tick,
               const std::function<bool()>& drained);
  // RunLoad for `senders` independent senders (pairs, echo, fanout):
  // closed loop, W sends from each at the start (the mode sends the next on
  // each delivery); or, with --rate, open loop, round robin over the senders
  // at their scheduled times. send(sender, send_ns) sends one message.
  void RunSendersLoad(int senders, const std::function<void(int, std::uint64_t)>& send,
                      const std::function<bool()>& drained);
  // "<head> R=<rate>" (open loop) or "<head> W=<window>", then Params().
  std::string LoadParams(const std::string& head) const;
  bool sending_ = false;

  // --- measurement ---------------------------------------------------------
  void BeginWindow();  // the measured window starts now
  void EndWindow();    // ... and ends now: throughput, CPU
  bool in_window(std::uint64_t now) const {
    return window_start_ns_ != 0 && now >= window_start_ns_ &&
           (window_end_ns_ == 0 || now < window_end_ns_);
  }
  std::optional<ProcSample> SampleServer() const;
  void Settle(double seconds);  // runs the loop (pings, closes) for this long

  // --- checked streams (one sender to one receiver) ------------------------
  struct Stream {
    std::uint64_t sent = 0;
    SequenceTracker tracker;
    std::uint64_t in_flight() const {
      return sent > tracker.received() ? sent - tracker.received() : 0;
    }
  };
  // Appends the bench payload of the next message of `stream` (sent at
  // `send_ns`) to scratch_, and counts it as sent.
  void AppendNextPayload(Stream& stream, std::uint32_t stream_id, std::uint64_t send_ns);
  // Checks one delivery on `stream`; records its latency when it was sent in
  // the window, and counts it when it arrived in the window.
  void Deliver(Stream& stream, const PayloadFields& fields, std::uint64_t now);
  // Sums sent / received / lost / duplicates / reordered into result_.
  void Tally(const std::vector<Stream>& streams, bool order_matters = true);
  static bool AllDelivered(const std::vector<Stream>& streams);
  // A pair's `message` (pairs, resume): true, with its bench payload, when `client` is the
  // pair's receiver and A sent it on this pair's stream; else counted corrupt, a problem.
  bool ReadPairMessage(const WsClient& client, bool is_receiver, std::string_view message,
                       PayloadFields* fields);
  // RunSendersLoad's closed loop: whether the sender of `stream`, one of whose
  // messages just arrived, sends the next (still sending, under W in flight).
  bool SendNextOnDelivery(const Stream& stream) const;

  // --- problems ------------------------------------------------------------
  void Problem(const std::string& what);
  // WsClientHandler: an end nobody asked for is a problem, unless closing_.
  void OnClosed(WsClient& client, const CloseInfo& info) override;

  std::string Params() const;  // "payload=64 ..." prefix for result_.params

  const BenchOptions opt_;
  EventLoop loop_;
  std::vector<std::unique_ptr<WsClient>> clients_;
  RunResult result_;
  bool closing_ = false;
  std::uint64_t window_start_ns_ = 0;
  std::uint64_t window_end_ns_ = 0;
  std::string scratch_;  // message under construction

 private:
  struct Server {
    sockaddr_in addr{};
    std::string host_header;
  };
  std::vector<Server> servers_;  // opt_.ServerList(), resolved
  std::vector<int> server_of_;   // by serial
  std::string run_id_;
  std::deque<WsClient*> to_start_;
  std::vector<char> ready_;  // by serial
  std::size_t not_ready_started_ = 0;
  std::size_t ready_count_ = 0;
  std::optional<ProcSample> window_server_before_;
  double window_client_cpu_before_ = 0;
  bool StartClient(WsClient& client);
  std::vector<std::string> paths_;  // by serial
};

// Open loop: message k is due at start + k / rate, whatever the server does,
// and carries that due time as its send time (no coordinated omission).
class OpenLoopSchedule {
 public:
  OpenLoopSchedule(double rate_per_s, std::uint64_t start_ns)
      : interval_ns_(1e9 / rate_per_s), start_ns_(start_ns) {}
  // True, with the due time of the next message, when one is due at `now`.
  bool NextDue(std::uint64_t now, std::uint64_t* due_ns) {
    const std::uint64_t due = next_due_ns();
    if (due > now) return false;
    ++issued_;
    *due_ns = due;
    return true;
  }
  std::uint64_t next_due_ns() const {
    return start_ns_ + static_cast<std::uint64_t>(interval_ns_ * static_cast<double>(issued_));
  }

 private:
  double interval_ns_;
  std::uint64_t start_ns_;
  std::uint64_t issued_ = 0;
};

// Builds the driver of options.mode.
std::unique_ptr<Driver> MakeDriver(const BenchOptions& options);

}  // namespace relay::bench

#endif  // RELAY_BENCH_RELAY_BENCH_DRIVER_H_
