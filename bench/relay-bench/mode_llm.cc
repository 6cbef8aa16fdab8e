// relay-bench llm: M meshes, each with requester(s) and capable peer(s)
// (capabilities ["llm"]). A requester keeps W llm_requests in flight
// (request_id = sequence number, prompt = the bench payload); the relay
// routes each to a capable peer, which answers llm_response with the prompt
// as the response; the requester checks it. A round trip crosses the relay
// twice. With one responder per mesh the order is checked too (the relay
// forwards FIFO); with several, responses may legitimately interleave.
#include <memory>
#include <set>
#include <string>

#include "bench/relay-bench/driver.h"
#include "bench/relay-bench/json_scan.h"
#include "bench/relay-bench/modes.h"

namespace relay::bench {

namespace {

constexpr int kRequester = 0;
constexpr int kResponder = 1;

class LlmDriver final : public Driver {
 public:
  using Driver::Driver;

  RunResult Run() override {
    result_.params = "M=" + std::to_string(opt_.meshes) + " Q=" + std::to_string(opt_.requesters) +
                     " L=" + std::to_string(opt_.responders) + " W=" + std::to_string(opt_.window) +
                     " " + Params();
    result_.rate_unit = "round_trips/s";
    int requester_index = 0;
    for (int m = 0; m < opt_.meshes; ++m) {
      const std::string path = RelayPath(MeshId("llm" + std::to_string(m)));
      for (int r = 0; r < opt_.responders; ++r) AddClient(path, kResponder, r);
      for (int q = 0; q < opt_.requesters; ++q) {
        requesters_.push_back(AddClient(path, kRequester, requester_index++));
      }
    }
    streams_.resize(requesters_.size());
    known_responders_.resize(requesters_.size());
    if (!OpenAll()) return Finish();

    RunLoad(
        [&] {
          const std::uint64_t now = NowNs();
          for (std::size_t i = 0; i < requesters_.size(); ++i) {
            for (int w = 0; w < opt_.window; ++w) SendRequest(static_cast<int>(i), now);
          }
        },
        nullptr, [&] { return AllDelivered(streams_); });
    Tally(streams_, /*order_matters=*/opt_.responders == 1);
    return Finish();
  }

  void OnOpen(WsClient& client) override {
    if (client.role == kResponder) {
      SendRegister(client, "llm" + std::to_string(client.index), true);
    } else {
      SendRegister(client, "q" + std::to_string(client.index), false);
    }
  }

  void OnMessage(WsClient& client, std::string_view message) override {
    const std::string_view type = TypeOf(message);
    if (type == "peers" || type == "peer_joined") {
      // A requester is ready once it knows every capable peer of its mesh:
      // in cluster mode (--servers) they may live on another instance, whose
      // registrations reach the requester's some time after their `peers`.
      if (client.role == kResponder) {
        if (type == "peers") MarkReady(client);
        return;
      }
      std::set<std::string>& known = known_responders_[client.index];
      for (std::string_view id : PeerNodeIds(message)) {
        if (id.substr(0, 3) == "llm") known.emplace(id);
      }
      if (known.size() >= static_cast<std::size_t>(opt_.responders)) MarkReady(client);
    } else if (type == "llm_request" && client.role == kResponder) {
      Answer(client, message);
    } else if (type == "llm_response" && client.role == kRequester) {
      CheckResponse(client, message);
    } else if (type == "llm_request" || type == "llm_response" || type == "message") {
      ++result_.corrupt;
      Problem("unexpected message: " + std::string(message.substr(0, 200)));
    }
  }

 private:
  void SendRequest(int requester, std::uint64_t send_ns) {
    Stream& stream = streams_[requester];
    scratch_.assign(R"({"type":"llm_request","request_id":)");
    scratch_.append(std::to_string(stream.sent));
    scratch_.append(R"(,"prompt":")");
    AppendNextPayload(stream, static_cast<std::uint32_t>(requester), send_ns);
    scratch_.append("\"}");
    requesters_[requester]->SendText(scratch_);
  }

  // The capable peer's side: the prompt goes back as the response.
  void Answer(WsClient& client, std::string_view message) {
    const auto from = TopLevelMember(message, "from");
    const auto request_id = TopLevelMember(message, "request_id");
    const auto prompt = TopLevelMember(message, "prompt");
    if (!from || !request_id || !prompt || !StringContents(*from) || !StringContents(*prompt)) {
      ++result_.corrupt;
      Problem("malformed llm_request: " + std::string(message.substr(0, 200)));
      return;
    }
    scratch_.assign(R"({"type":"llm_response","target":)");
    scratch_.append(*from);
    scratch_.append(R"(,"request_id":)");
    scratch_.append(*request_id);
    scratch_.append(R"(,"response":)");
    scratch_.append(*prompt);
    scratch_.append("}");
    client.SendText(scratch_);
  }

  void CheckResponse(WsClient& client, std::string_view message) {
    const std::uint64_t now = NowNs();
    const auto request_id = TopLevelMember(message, "request_id");
    const auto raw = TopLevelMember(message, "response");
    const auto response = raw ? StringContents(*raw) : std::nullopt;
    PayloadFields fields;
    if (!request_id || !response || !ParsePayload(*response, &fields) ||
        fields.stream != static_cast<std::uint32_t>(client.index) ||
        *request_id != std::to_string(fields.seq)) {
      ++result_.corrupt;
      Problem("unexpected llm_response: " + std::string(message.substr(0, 200)));
      return;
    }
    Stream& stream = streams_[client.index];
    Deliver(stream, fields, now);
    if (sending_ && stream.in_flight() < static_cast<std::uint64_t>(opt_.window)) {
      SendRequest(client.index, now);
    }
  }

  std::vector<WsClient*> requesters_;
  std::vector<Stream> streams_;  // one per requester: its requests and their answers
  std::vector<std::set<std::string>> known_responders_;  // by requester: capable peers seen
};

}  // namespace

std::unique_ptr<Driver> MakeLlmDriver(const BenchOptions& options) {
  return std::make_unique<LlmDriver>(options);
}

}  // namespace relay::bench
