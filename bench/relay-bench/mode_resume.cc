// relay-bench resume: the pairs of `pairs`, both ends resume clients
// (docs/protocol.md, "Resume"). A's directs carry its own seq; B tracks the
// relay's seq and acknowledges every kAckEvery frames; and with --cut-rate R,
// R times a second one B (round robin) loses its connection abruptly (no
// close frame) and resumes its session on a new one, as a phone changing
// networks does. Every message must still arrive exactly once, in order. The
// resumes counted in the window are the result's `connections` (and in its params).
// With --cut-rate 0 it measures what sequencing costs next to `pairs`.
#include <charconv>
#include <memory>
#include <string>
#include <vector>

#include "bench/relay-bench/driver.h"
#include "bench/relay-bench/json_scan.h"
#include "bench/relay-bench/modes.h"

namespace relay::bench {

namespace {

constexpr int kSender = 0;
constexpr int kReceiver = 1;
// How often B acknowledges: well inside the relay's 4096-frame session bound.
constexpr std::uint64_t kAckEvery = 32;

std::optional<std::uint64_t> NumberMember(std::string_view message, std::string_view key) {
  const std::optional<std::string_view> raw = TopLevelMember(message, key);
  if (!raw) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), value);
  if (ec != std::errc() || end != raw->data() + raw->size()) return std::nullopt;
  return value;
}

class ResumeDriver final : public Driver {
 public:
  using Driver::Driver;

  RunResult Run() override {
    result_.params = LoadParams("P=" + std::to_string(opt_.pairs) +
                                " cuts/s=" + std::to_string(static_cast<long>(opt_.cut_rate)));
    result_.rate_unit = "msgs/s";
    result_.offered_rate = opt_.rate;
    streams_.resize(opt_.pairs);
    sessions_.resize(opt_.pairs);
    sender_seq_.assign(opt_.pairs, 0);
    for (int i = 0; i < opt_.pairs; ++i) {
      const std::string path = RelayPath(MeshId("r" + std::to_string(i)));
      senders_.push_back(AddClient(path, kSender, i, PairSenderServer(i, server_count())));
      receivers_.push_back(AddClient(path, kReceiver, i, PairReceiverServer(i, server_count())));
    }
    if (!OpenAll()) return Finish();

    std::unique_ptr<OpenLoopSchedule> cuts;
    int next_cut = 0;
    RunLoad(
        [&] {
          const std::uint64_t now = NowNs();
          for (int i = 0; i < opt_.pairs; ++i) {
            for (int w = 0; w < opt_.window; ++w) SendDirect(i, now);
          }
          if (opt_.cut_rate > 0) cuts = std::make_unique<OpenLoopSchedule>(opt_.cut_rate, now);
        },
        [&](std::uint64_t now) -> std::uint64_t {
          // Reconnects between loop turns (Driver::Restart's rule).
          for (WsClient* client : to_restart_) Restart(*client);
          to_restart_.clear();
          if (!cuts || !sending_) return 0;
          std::uint64_t due;
          while (cuts->NextDue(now, &due)) {
            WsClient& b = *receivers_[next_cut];
            next_cut = (next_cut + 1) % opt_.pairs;
            Session& session = sessions_[b.index];
            if (!b.is_open() || !session.joined) continue;  // still resuming: skip this cut
            session.joined = false;
            b.Abort();  // no close frame: the relay sees the TCP connection end
            to_restart_.push_back(&b);
            if (in_window(now)) ++cuts_in_window_;
          }
          return cuts->next_due_ns();
        },
        [&] {
          // The drain runs no tick: a receiver cut in the window's last turn reconnects here
          // (this runs between loop turns too), or its messages would never arrive.
          for (WsClient* client : to_restart_) Restart(*client);
          to_restart_.clear();
          return AllDelivered(streams_);
        });
    Tally(streams_);
    // A run that never cut anyone checked nothing about resuming.
    if (opt_.cut_rate > 0 && resumes_ == 0) Problem("no connection was cut and resumed");
    // Resumes in the window (resumes/s = connections / window_s), also in the params.
    result_.connections = static_cast<std::int64_t>(resumes_in_window_);
    result_.params += " resumes=" + std::to_string(resumes_in_window_) +
                      " cuts=" + std::to_string(cuts_in_window_);
    return Finish();
  }

  void OnOpen(WsClient& client) override {
    Session& session = sessions_[client.index];
    scratch_.assign(R"({"type":"register","node_id":")");
    scratch_.append(client.role == kSender ? "a" : "b");
    if (client.role == kReceiver && !session.id.empty()) {
      scratch_.append(R"(","capabilities":[],"resume":{"session":")");
      scratch_.append(session.id);
      scratch_.append(R"(","last_seq":)");
      scratch_.append(std::to_string(session.last_seq));
      scratch_.append("}}");
    } else {
      scratch_.append(R"(","capabilities":[],"resume":true})");
    }
    client.SendText(scratch_);
  }

  void OnMessage(WsClient& client, std::string_view message) override {
    const std::string_view type = TypeOf(message);
    if (type == "ack") return;  // the relay acknowledging A's frames
    if (client.role == kReceiver) {
      if (type == "joined") {
        if (!sessions_[client.index].id.empty()) {
          Problem("a resume was refused: " + std::string(message.substr(0, 200)));
          return;
        }
        const auto session = TopLevelMember(message, "session");
        const auto id = session ? TopLevelMember(*session, "id") : std::nullopt;
        const auto text = id ? StringContents(*id) : std::nullopt;
        if (!text) {
          Problem("joined without a session: " + std::string(message.substr(0, 200)));
          return;
        }
        sessions_[client.index].id = std::string(*text);
        return;
      }
      if (type == "resumed") {
        ++resumes_;
        if (in_window(NowNs())) ++resumes_in_window_;
        sessions_[client.index].joined = true;
        MarkReady(client);
        return;
      }
      if (!Numbered(client, message)) return;
      if (type == "peers") {
        sessions_[client.index].joined = true;
        MarkReady(client);
        return;
      }
    } else if (type == "peers" || type == "peer_joined") {
      for (std::string_view id : PeerNodeIds(message)) {
        if (id == "b") MarkReady(client);
      }
      return;
    }
    if (type != "message") return;
    const std::uint64_t now = NowNs();
    PayloadFields fields;
    if (!ReadPairMessage(client, client.role == kReceiver, message, &fields)) return;
    Stream& stream = streams_[client.index];
    Deliver(stream, fields, now);
    if (SendNextOnDelivery(stream)) SendDirect(client.index, now);
  }

 private:
  struct Session {
    std::string id;
    std::uint64_t last_seq = 0;  // the relay's, handled
    std::uint64_t acked = 0;
    bool joined = false;  // registered or resumed on the current connection
  };

  // B's check of the relay's numbering; acknowledges every kAckEvery.
  bool Numbered(WsClient& client, std::string_view message) {
    Session& session = sessions_[client.index];
    const std::optional<std::uint64_t> seq = NumberMember(message, "seq");
    if (!seq || *seq != session.last_seq + 1) {
      ++result_.corrupt;
      Problem("seq " + (seq ? std::to_string(*seq) : std::string("missing")) + " after " +
              std::to_string(session.last_seq) + ": " + std::string(message.substr(0, 120)));
      return false;
    }
    session.last_seq = *seq;
    if (session.last_seq - session.acked >= kAckEvery) {
      session.acked = session.last_seq;
      client.SendText(R"({"type":"ack","seq":)" + std::to_string(session.acked) + "}");
    }
    return true;
  }

  void SendDirect(int pair, std::uint64_t send_ns) {
    scratch_.assign(R"({"type":"direct","target":"b","seq":)");
    scratch_.append(std::to_string(++sender_seq_[pair]));
    scratch_.append(R"(,"payload":")");
    AppendNextPayload(streams_[pair], static_cast<std::uint32_t>(pair), send_ns);
    scratch_.append("\"}");
    senders_[pair]->SendText(scratch_);
  }

  std::vector<WsClient*> senders_;
  std::vector<WsClient*> receivers_;
  std::vector<Stream> streams_;
  std::vector<Session> sessions_;
  std::vector<std::uint64_t> sender_seq_;
  std::vector<WsClient*> to_restart_;
  std::uint64_t resumes_ = 0;
  std::uint64_t resumes_in_window_ = 0;
  std::uint64_t cuts_in_window_ = 0;
};

}  // namespace

std::unique_ptr<Driver> MakeResumeDriver(const BenchOptions& options) {
  return std::make_unique<ResumeDriver>(options);
}

}  // namespace relay::bench
