#include "backplane/nats/instance_links.h"

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backplane/nats/nats_names.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::backplane::nats {
namespace {

using relay::nats::v1::Batch;
using relay::nats::v1::Frame;
using relay::nats::v1::Item;
using Clock = std::chrono::steady_clock;

const auto kAckInterval = absl::ToChronoMilliseconds(limits::kBackplaneAckInterval);
const auto kRetransmitAfter = absl::ToChronoMilliseconds(limits::kBackplaneRetransmitAfter);

std::size_t ItemBytes(const Item& item) {
  return item.envelope().size() + item.unfollow_mesh().size() + 8;
}

std::uint64_t NewStreamId() {
  static absl::BitGen* gen = new absl::BitGen();  // under the caller's lock
  std::uint64_t id = 0;
  while (id == 0) id = absl::Uniform<std::uint64_t>(*gen);
  return id;
}

}  // namespace

InstanceLinks::InstanceLinks(NatsConnection* connection, std::string cluster, std::string self,
                             std::uint64_t incarnation, OnReceived on_received)
    : connection_(connection),
      cluster_(std::move(cluster)),
      self_(std::move(self)),
      incarnation_(incarnation),
      on_received_(std::move(on_received)) {
  Frame header;
  header.set_from_instance(self_);
  header.set_incarnation(incarnation_);
  header_bytes_ = header.SerializeAsString();
}

InstanceLinks::~InstanceLinks() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (publisher_.joinable()) publisher_.join();
  if (subscription_ != nullptr) {
    // Unsubscribe, then wait for the delivery thread to finish the message
    // it may be in: nothing may reach on_received_ once this returns.
    natsSubscription_Unsubscribe(subscription_);
    natsSubscription_WaitForDrainCompletion(subscription_, 0);
    natsSubscription_Destroy(subscription_);
  }
}

absl::Status InstanceLinks::Start() {
  const std::string subject = InboxSubject(cluster_, self_);
  natsStatus s = natsConnection_Subscribe(&subscription_, connection_->raw(), subject.c_str(),
                                          &InstanceLinks::OnMessage, this);
  if (s != NATS_OK) {
    return absl::UnavailableError(
        absl::StrCat("cannot subscribe to ", subject, ": ", natsStatus_GetText(s)));
  }
  // The inbox must never drop for being slow: a dropped frame is resent,
  // but the whole window would be, over and over. Bounded by the senders'
  // windows instead.
  natsSubscription_SetPendingLimits(subscription_, -1, -1);
  last_acks_ = Clock::now();
  publisher_ = std::thread([this] { PublisherLoop(); });
  return absl::OkStatus();
}

InstanceLinks::Outbound& InstanceLinks::OutboundTo(const std::string& to) {
  auto [it, inserted] = outbound_.try_emplace(to);
  if (inserted) {
    it->second.subject = InboxSubject(cluster_, to);
    it->second.stream = NewStreamId();
    it->second.last_progress = Clock::now();
  }
  return it->second;
}

bool InstanceLinks::Send(const std::string& to, Item item, bool refusable) {
  const std::size_t bytes = ItemBytes(item);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    Outbound& out = OutboundTo(to);
    const std::size_t held = out.queued_bytes + out.window_bytes;
    if (refusable &&
        (!connection_->connected() || held + bytes > limits::kBackplaneResendWindowBytes)) {
      return false;
    }
    if (held + bytes > 4 * limits::kBackplaneResendWindowBytes) {
      // It has not acknowledged anything for a long time and is not known
      // dead: keep what is queued, give up what was unacked, and tell it.
      log::Event(log::Level::kWarn, log::LogEvent::kBackplaneReset).Str("instance", to);
      out.window.clear();
      out.window_bytes = 0;
      RestartStream(out);
    }
    out.queue.push_back(std::move(item));
    out.queued_bytes += bytes;
    work_ = true;
  }
  wake_.notify_one();
  return true;
}

void InstanceLinks::Forget(const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  outbound_.erase(to);
  acks_due_.erase(to);
  forgotten_.push_back(to);
}

void InstanceLinks::ResendAll() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    resend_all_ = true;
    work_ = true;
  }
  wake_.notify_one();
}

bool InstanceLinks::WaitAcked(std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      bool all = true;
      for (const auto& [to, out] : outbound_) all = all && out.queue.empty() && out.window.empty();
      if (all) return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

InstanceLinks::Counters InstanceLinks::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

void InstanceLinks::RestartStream(Outbound& out) {
  out.stream = NewStreamId();
  out.next_seq = 1;
  out.acked = 0;
  out.resend_from = 0;
  for (Batch& batch : out.window) {
    batch.set_stream(out.stream);
    batch.set_seq(out.next_seq++);
  }
  if (!out.window.empty()) out.resend_from = 1;
  ++counters_.resets;
}

std::string InstanceLinks::FrameBytes(const Batch& batch) const {
  // The Frame's wire form without copying the batch into one: the fixed
  // header fields, then field 3 (batch) as a length-delimited record.
  // Protocol Buffers parse concatenated fields as one message.
  const std::string body = batch.SerializeAsString();
  std::string out = header_bytes_;
  out.reserve(out.size() + body.size() + 11);
  out.push_back(static_cast<char>((Frame::kBatchFieldNumber << 3) | 2));
  for (std::size_t n = body.size();; n >>= 7) {
    if (n < 0x80) {
      out.push_back(static_cast<char>(n));
      break;
    }
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
  }
  out.append(body);
  return out;
}

void InstanceLinks::FrameQueued(Outbound& out,
                                std::vector<std::pair<std::string, std::string>>& publish) {
  while (!out.queue.empty()) {
    Batch batch;
    batch.set_stream(out.stream);
    batch.set_seq(out.next_seq++);
    std::size_t bytes = 0;
    while (!out.queue.empty()) {
      const std::size_t next = ItemBytes(out.queue.front());
      if (bytes > 0 && bytes + next > limits::kBackplaneMaxFrameBytes) break;
      bytes += next;
      *batch.add_items() = std::move(out.queue.front());
      out.queue.pop_front();
    }
    out.queued_bytes -= bytes;
    out.window_bytes += bytes;
    if (out.window.empty()) out.last_progress = Clock::now();
    publish.emplace_back(out.subject, FrameBytes(batch));
    out.window.push_back(std::move(batch));
    ++counters_.frames_sent;
  }
}

void InstanceLinks::Resend(Outbound& out, std::uint64_t from_seq,
                           std::vector<std::pair<std::string, std::string>>& publish) {
  for (const Batch& batch : out.window) {
    if (batch.seq() < from_seq) continue;
    publish.emplace_back(out.subject, FrameBytes(batch));
    ++counters_.retransmits;
  }
  out.last_progress = Clock::now();
}

void InstanceLinks::PublisherLoop() {
  std::vector<std::pair<std::string, std::string>> publish;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    // The flag, not the notify, says there is work: a Send while this
    // thread publishes (unlocked) must not wait for the next tick.
    wake_.wait_for(lock, kAckInterval, [this] { return stopping_ || work_; });
    work_ = false;
    if (stopping_) break;
    const Clock::time_point now = Clock::now();
    const bool resend_all = resend_all_;
    resend_all_ = false;
    for (auto& [to, out] : outbound_) {
      if (resend_all && !out.window.empty()) {
        Resend(out, 0, publish);
      } else if (out.resend_from != 0) {
        Resend(out, out.resend_from, publish);
      } else if (!out.window.empty() && now - out.last_progress >= kRetransmitAfter) {
        Resend(out, 0, publish);
      }
      out.resend_from = 0;
      FrameQueued(out, publish);
    }
    // Naks before acks: a nak queued before frames that an ack below covers
    // arrived must reach the sender first, or it reads "asked for what it
    // acknowledged" as a receiver that lost its state and restarts the
    // stream (a spurious backplane_reset, and rosters rebuilt).
    for (Control& control : control_) {
      publish.emplace_back(InboxSubject(cluster_, control.to), control.frame.SerializeAsString());
    }
    control_.clear();
    if (now - last_acks_ >= kAckInterval) {
      last_acks_ = now;
      for (const auto& [to, ack] : acks_due_) {
        Frame frame;
        frame.set_from_instance(self_);
        frame.set_incarnation(incarnation_);
        frame.mutable_ack()->set_stream(ack.first);
        frame.mutable_ack()->set_seq(ack.second);
        publish.emplace_back(InboxSubject(cluster_, to), frame.SerializeAsString());
      }
      acks_due_.clear();
    }
    if (publish.empty()) continue;
    lock.unlock();
    for (const auto& [subject, bytes] : publish) {
      // A failure (disconnected, buffer full) is what the window is for.
      natsConnection_Publish(connection_->raw(), subject.c_str(), bytes.data(),
                             static_cast<int>(bytes.size()));
    }
    publish.clear();
    lock.lock();
  }
}

void InstanceLinks::OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  Frame frame;
  const bool parsed = frame.ParseFromArray(natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
  natsMsg_Destroy(msg);
  auto* links = static_cast<InstanceLinks*>(self);
  if (!parsed || frame.from_instance().empty() || frame.from_instance() == links->self_) {
    // Only other relays of this cluster publish here (NATS permissions);
    // anything else is not ours to act on.
    return;
  }
  links->HandleFrame(frame);
}

void InstanceLinks::HandleFrame(Frame& frame) {
  switch (frame.body_case()) {
    case Frame::kBatch:
      HandleBatch(frame);
      return;
    case Frame::kAck: {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = outbound_.find(frame.from_instance());
      if (it == outbound_.end()) return;
      Outbound& out = it->second;
      if (frame.ack().stream() != out.stream || frame.ack().seq() <= out.acked) return;
      while (!out.window.empty() && out.window.front().seq() <= frame.ack().seq()) {
        for (const Item& item : out.window.front().items()) out.window_bytes -= ItemBytes(item);
        out.window.pop_front();
      }
      out.acked = frame.ack().seq();
      out.last_progress = Clock::now();
      return;
    }
    case Frame::kNak: {
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = outbound_.find(frame.from_instance());
        if (it == outbound_.end()) return;
        Outbound& out = it->second;
        if (frame.nak().stream() != out.stream) return;
        if (frame.nak().seq() <= out.acked) {
          // Asked for what it had acknowledged: it lost its state (a new
          // process under the same id). Start over with what is unacked.
          RestartStream(out);
        } else {
          out.resend_from = frame.nak().seq();
        }
        work_ = true;
      }
      wake_.notify_one();
      return;
    }
    case Frame::BODY_NOT_SET:
      return;
  }
}

void InstanceLinks::HandleBatch(Frame& frame) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& gone : forgotten_) inbound_.erase(gone);
    forgotten_.clear();
  }
  Batch& batch = *frame.mutable_batch();
  const std::string& from = frame.from_instance();
  Inbound& in = inbound_[from];
  bool restarted = false;
  if (in.incarnation != frame.incarnation()) {
    in = Inbound{};  // another process: the layer above sees the new incarnation
    in.incarnation = frame.incarnation();
  }
  if (!in.accepted_any || batch.stream() != in.stream) {
    if (batch.seq() != 1) {
      // The start of this stream has not arrived: ask for it.
      const Clock::time_point now = Clock::now();
      if (in.nak_stream == batch.stream() && now - in.last_nak < kAckInterval) return;
      in.nak_stream = batch.stream();
      in.last_nak = now;
      Control nak{from, {}};
      nak.frame.set_from_instance(self_);
      nak.frame.set_incarnation(incarnation_);
      nak.frame.mutable_nak()->set_stream(batch.stream());
      nak.frame.mutable_nak()->set_seq(1);
      {
        std::lock_guard<std::mutex> lock(mu_);
        control_.push_back(std::move(nak));
        ++counters_.gaps;
        work_ = true;
      }
      wake_.notify_one();
      return;
    }
    restarted = in.accepted_any;  // a known sender renumbered: frames may be lost
    in.stream = batch.stream();
    in.expected = 1;
    in.accepted_any = true;
  }
  if (batch.seq() != in.expected) {
    std::lock_guard<std::mutex> lock(mu_);
    if (batch.seq() < in.expected) {
      acks_due_[from] = {in.stream, in.expected - 1};  // a resend: its ack was lost
      return;
    }
    const Clock::time_point now = Clock::now();
    if (now - in.last_nak >= kAckInterval) {
      in.last_nak = now;
      Control nak{from, {}};
      nak.frame.set_from_instance(self_);
      nak.frame.set_incarnation(incarnation_);
      nak.frame.mutable_nak()->set_stream(in.stream);
      nak.frame.mutable_nak()->set_seq(in.expected);
      control_.push_back(std::move(nak));
      ++counters_.gaps;
    }
    return;
  }
  ++in.expected;
  {
    std::lock_guard<std::mutex> lock(mu_);
    acks_due_[from] = {in.stream, batch.seq()};
  }
  Received received;
  received.from = from;
  received.incarnation = frame.incarnation();
  received.restarted = restarted;
  received.items.Swap(batch.mutable_items());
  on_received_(std::move(received));
}

}  // namespace relay::backplane::nats
