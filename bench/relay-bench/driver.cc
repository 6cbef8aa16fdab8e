// Shared machinery of the relay-bench modes (see driver.h).
#include "bench/relay-bench/driver.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "bench/relay-bench/json_scan.h"

namespace relay::bench {

namespace {
constexpr std::uint64_t kSpinNs = 100'000;  // 100 us
}  // namespace

Driver::Driver(const BenchOptions& options) : opt_(options) {
  result_.mode = ModeName(opt_.mode);
  result_.server = ServerName(opt_.server);
  result_.label = opt_.label;
  char id[32];
  std::snprintf(id, sizeof id, "%x-%llx", static_cast<unsigned>(getpid()),
                static_cast<unsigned long long>(NowNs() % 0xFFFFFF));
  run_id_ = id;
}

Driver::~Driver() {
  for (auto& client : clients_) client->Abort();
}

bool Driver::Init(std::string* error) {
  for (const ServerAddress& address : opt_.ServerList()) {
    Server server;
    server.addr.sin_family = AF_INET;
    server.addr.sin_port = htons(static_cast<std::uint16_t>(address.port));
    if (inet_pton(AF_INET, address.host.c_str(), &server.addr.sin_addr) != 1) {
      *error = "--host must be an IPv4 address, not \"" + address.host + "\"";
      return false;
    }
    server.host_header = address.host + ":" + std::to_string(address.port);
    servers_.push_back(std::move(server));
  }
  if (servers_.size() > 1) result_.servers = static_cast<int>(servers_.size());
  return true;
}

std::string Driver::Params() const { return "payload=" + std::to_string(opt_.payload_bytes); }

WsClient* Driver::AddClient(std::string path, int role, int index, int server) {
  const auto serial = static_cast<std::uint32_t>(clients_.size());
  const int n = server_count();
  server_of_.push_back(server >= 0 && server < n ? server
                                                 : RoundRobinServer(static_cast<int>(serial), n));
  auto client = std::make_unique<WsClient>(&loop_, this, 0x9E3779B97F4A7C15ull * (serial + 1));
  client->role = role;
  client->index = index;
  client->serial = serial;
  paths_.push_back(std::move(path));
  ready_.push_back(0);
  to_start_.push_back(client.get());
  clients_.push_back(std::move(client));
  return clients_.back().get();
}

bool Driver::StartClient(WsClient& client) {
  std::string error;
  sockaddr_in source{};
  const sockaddr_in* source_ptr = nullptr;
  if (opt_.source_ips > 0) {
    source.sin_family = AF_INET;
    source.sin_addr.s_addr = htonl(0x7F000002u + client.serial % opt_.source_ips);
    source_ptr = &source;
  }
  const Server& server = servers_[static_cast<std::size_t>(server_of_[client.serial])];
  if (!client.Start(server.addr, server.host_header, paths_[client.serial], &error, source_ptr)) {
    ++result_.connect_failures;
    Problem("connect: " + error);
    return false;
  }
  return true;
}

bool Driver::OpenAll() {
  const std::uint64_t deadline = NowNs() + static_cast<std::uint64_t>(opt_.setup_timeout_s * 1e9);
  const bool done = RunUntil(
      deadline,
      [this] { return ready_count_ == clients_.size() || !result_.first_problem.empty(); },
      [this](std::uint64_t) -> std::uint64_t {
        while (!to_start_.empty() &&
               not_ready_started_ < static_cast<std::size_t>(opt_.connect_concurrency)) {
          WsClient* client = to_start_.front();
          to_start_.pop_front();
          if (!StartClient(*client)) break;
          ++not_ready_started_;
        }
        return 0;
      });
  if (!done) {
    Problem("setup: " + std::to_string(ready_count_) + " of " + std::to_string(clients_.size()) +
            " connections ready after " + std::to_string(static_cast<int>(opt_.setup_timeout_s)) +
            " s");
  }
  return result_.first_problem.empty();
}

void Driver::MarkReady(WsClient& client) {
  if (ready_[client.serial]) return;
  ready_[client.serial] = 1;
  ++ready_count_;
  if (not_ready_started_ > 0) --not_ready_started_;
}

bool Driver::Restart(WsClient& client) {
  if (ready_[client.serial]) {
    ready_[client.serial] = 0;
    --ready_count_;
  }
  return StartClient(client);
}

void Driver::CloseAll() {
  closing_ = true;
  for (auto& client : clients_) {
    if (client->state() == WsClient::State::kOpen) client->Close(1000);
  }
  auto all_ended = [this] {
    for (auto& client : clients_) {
      const WsClient::State s = client->state();
      if (s != WsClient::State::kClosed && s != WsClient::State::kIdle) return false;
    }
    return true;
  };
  RunUntil(NowNs() + 5'000'000'000ull, all_ended, nullptr, 5);
  for (auto& client : clients_) client->Abort();
}

RunResult Driver::Finish() {
  CloseAll();
  return result_;
}

bool Driver::RunUntil(std::uint64_t deadline_ns, const std::function<bool()>& done,
                      const Tick& tick, int wait_ms) {
  const std::uint64_t max_wait = static_cast<std::uint64_t>(wait_ms) * 1000000;
  while (true) {
    if (done && done()) return true;
    std::uint64_t now = NowNs();
    if (now >= deadline_ns) return false;
    std::uint64_t wait = max_wait;
    if (tick) {
      const std::uint64_t wish = tick(now);
      if (wish != 0) {
        now = NowNs();
        // Spin (poll without sleeping) when the wish is near: a sleep and
        // wake-up per message would cost more than the message itself.
        wait = wish <= now + kSpinNs ? 0 : std::min(wait, wish - now);
      }
    }
    loop_.RunOnceNs(std::min(wait, deadline_ns - std::min(deadline_ns, now)));
  }
}

std::string Driver::RelayPath(std::string_view mesh_id) { return "/relay/" + std::string(mesh_id); }

std::string Driver::MeshId(std::string_view name) const {
  return "bench-" + run_id_ + "-" + std::string(name);
}

void Driver::SendRegister(WsClient& client, std::string_view node_id, bool llm_capable) {
  scratch_.assign(R"({"type":"register","node_id":")");
  scratch_.append(node_id);
  scratch_.append(llm_capable ? R"(","capabilities":["llm"]})" : R"(","capabilities":[]})");
  client.SendText(scratch_);
}

std::string_view Driver::TypeOf(std::string_view message) {
  const std::optional<std::string_view> raw = TopLevelMember(message, "type");
  const std::optional<std::string_view> type = raw ? StringContents(*raw) : std::nullopt;
  if (!type) {
    ++result_.corrupt;
    Problem("message without a type: " + std::string(message.substr(0, 200)));
    return {};
  }
  if (*type == "error") {
    ++result_.server_errors;
    Problem("relay error: " + std::string(message.substr(0, 300)));
  }
  return *type;
}

void Driver::RunLoad(const std::function<void()>& start, const Tick& tick,
                     const std::function<bool()>& drained) {
  auto failed = [this] { return !result_.first_problem.empty(); };
  sending_ = true;
  start();
  RunUntil(NowNs() + static_cast<std::uint64_t>(opt_.warmup_s * 1e9), failed, tick, 1);
  BeginWindow();
  RunUntil(window_start_ns_ + static_cast<std::uint64_t>(opt_.duration_s * 1e9), failed, tick, 1);
  EndWindow();
  sending_ = false;
  RunUntil(
      NowNs() + static_cast<std::uint64_t>(opt_.drain_timeout_s * 1e9),
      [&] { return failed() || drained(); }, nullptr, 1);
}

void Driver::RunSendersLoad(int senders, const std::function<void(int, std::uint64_t)>& send,
                            const std::function<bool()>& drained) {
  std::unique_ptr<OpenLoopSchedule> schedule;
  int next = 0;
  RunLoad(
      [&] {
        if (opt_.rate > 0) {
          schedule = std::make_unique<OpenLoopSchedule>(opt_.rate, NowNs());
          return;
        }
        const std::uint64_t now = NowNs();
        for (int i = 0; i < senders; ++i) {
          for (int w = 0; w < opt_.window; ++w) send(i, now);
        }
      },
      [&](std::uint64_t now) -> std::uint64_t {
        if (!schedule || !sending_) return 0;
        std::uint64_t due;
        while (schedule->NextDue(now, &due)) {
          send(next, due);
          next = (next + 1) % senders;
        }
        return schedule->next_due_ns();
      },
      drained);
}

bool Driver::ReadPairMessage(const WsClient& client, bool is_receiver, std::string_view message,
                             PayloadFields* fields) {
  const auto from = TopLevelMember(message, "from");
  const auto raw = TopLevelMember(message, "payload");
  const auto payload = raw ? StringContents(*raw) : std::nullopt;
  if (!is_receiver || !from || *from != R"("a")" || !payload || !ParsePayload(*payload, fields) ||
      fields->stream != static_cast<std::uint32_t>(client.index)) {
    ++result_.corrupt;
    Problem("unexpected message: " + std::string(message.substr(0, 200)));
    return false;
  }
  return true;
}

bool Driver::SendNextOnDelivery(const Stream& stream) const {
  return sending_ && opt_.rate <= 0 && stream.in_flight() < static_cast<std::uint64_t>(opt_.window);
}

std::string Driver::LoadParams(const std::string& head) const {
  return head +
         (opt_.rate > 0 ? " R=" + std::to_string(static_cast<long>(opt_.rate))
                        : " W=" + std::to_string(opt_.window)) +
         " " + Params();
}

void Driver::BeginWindow() {
  window_start_ns_ = NowNs();
  window_end_ns_ = 0;
  window_server_before_ = SampleServer();
  window_client_cpu_before_ = SelfCpuSeconds();
}

void Driver::EndWindow() {
  window_end_ns_ = NowNs();
  result_.window_s = static_cast<double>(window_end_ns_ - window_start_ns_) / 1e9;
  result_.rate =
      result_.window_s > 0 ? static_cast<double>(result_.completed) / result_.window_s : 0;
  result_.client_cpu_pct =
      100.0 * (SelfCpuSeconds() - window_client_cpu_before_) / result_.window_s;
  const std::optional<ProcSample> after = SampleServer();
  if (window_server_before_ && after) {
    result_.server_cpu_pct = CpuPercent(*window_server_before_, *after);
    result_.server_rss_after_kib = after->rss_kib;
  }
}

std::optional<ProcSample> Driver::SampleServer() const {
  if (opt_.server_pid == 0) return std::nullopt;
  return SampleProcess(opt_.server_pid);
}

void Driver::Settle(double seconds) {
  RunUntil(NowNs() + static_cast<std::uint64_t>(seconds * 1e9), nullptr, nullptr, 20);
}

void Driver::AppendNextPayload(Stream& stream, std::uint32_t stream_id, std::uint64_t send_ns) {
  PayloadFields fields;
  fields.seq = stream.sent++;
  fields.send_ns = send_ns;
  fields.stream = stream_id;
  AppendPayload(&scratch_, fields, opt_.payload_bytes);
}

void Driver::Deliver(Stream& stream, const PayloadFields& fields, std::uint64_t now) {
  if (fields.seq >= stream.sent) {
    ++result_.corrupt;
    Problem("delivery of a message never sent (seq " + std::to_string(fields.seq) + ")");
    return;
  }
  stream.tracker.Observe(fields.seq);
  if (window_start_ns_ != 0 && fields.send_ns >= window_start_ns_ &&
      (window_end_ns_ == 0 || fields.send_ns < window_end_ns_)) {
    result_.latency.Record(now > fields.send_ns ? now - fields.send_ns : 0);
  }
  if (in_window(now)) ++result_.completed;
}

void Driver::Tally(const std::vector<Stream>& streams, bool order_matters) {
  for (const Stream& s : streams) {
    result_.sent += s.sent;
    result_.received += s.tracker.received();
    result_.lost += s.tracker.Lost(s.sent);
    result_.duplicates += s.tracker.duplicates();
    if (order_matters) result_.reordered += s.tracker.reordered();
  }
  if (result_.lost > 0) Problem(std::to_string(result_.lost) + " messages lost");
  if (result_.duplicates > 0) Problem(std::to_string(result_.duplicates) + " duplicates");
  if (result_.reordered > 0) Problem(std::to_string(result_.reordered) + " reordered");
}

bool Driver::AllDelivered(const std::vector<Stream>& streams) {
  for (const Stream& s : streams) {
    if (s.in_flight() > 0) return false;
  }
  return true;
}

void Driver::Problem(const std::string& what) {
  if (result_.first_problem.empty()) result_.first_problem = what;
}

void Driver::OnClosed(WsClient& client, const CloseInfo& info) {
  if (closing_) return;
  ++result_.unexpected_closes;
  Problem("connection " + std::to_string(client.serial) + " ended: code " +
          std::to_string(info.code) + (info.reason.empty() ? "" : " (" + info.reason + ")"));
}

}  // namespace relay::bench
