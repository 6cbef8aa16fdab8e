#include "backplane/nats/instance_links.h"

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backplane/nats/nats_names.h"
#include "backplane/nats/proto/frame.pb.h"
#include "server/limits.h"
#include "server/util/log.h"

namespace relay::backplane::nats {
namespace {

using relay::nats::v1::Frame;
using Clock = std::chrono::steady_clock;

const auto kAckInterval = absl::ToChronoMilliseconds(limits::kBackplaneAckInterval);
const auto kRetransmitAfter = absl::ToChronoMilliseconds(limits::kBackplaneRetransmitAfter);

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
      on_received_(std::move(on_received)),
      header_bytes_(FrameHeader(self_, incarnation_)) {}

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

bool InstanceLinks::Send(const std::string& to, std::string item, bool refusable, Wakeup wakeup) {
  const std::size_t bytes = item.size();
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
  if (wakeup == Wakeup::kNow) wake_.notify_one();
  return true;
}

void InstanceLinks::Wake() { wake_.notify_one(); }

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
  for (SentBatch& batch : out.window) {
    // Rare (a receiver restarted, a window overflowed): framed again under
    // the new numbers; a frame still being published keeps its old bytes.
    batch.seq = out.next_seq++;
    const absl::string_view items = absl::string_view(*batch.frame).substr(batch.items_at);
    batch.frame = std::make_shared<const std::string>(
        BatchFrame(header_bytes_, out.stream, batch.seq, items, &batch.items_at));
  }
  if (!out.window.empty()) out.resend_from = 1;
  ++counters_.resets;
}

void InstanceLinks::FrameQueued(Outbound& out, Publishing& publish) {
  while (!out.queue.empty()) {
    // The records of as many queued items as one frame holds, back to back:
    // the batch's item field is the records themselves.
    std::size_t bytes = 0;
    std::size_t count = 0;
    for (const std::string& next : out.queue) {
      if (bytes > 0 && bytes + next.size() > limits::kBackplaneMaxFrameBytes) break;
      bytes += next.size();
      ++count;
    }
    SentBatch batch;
    batch.seq = out.next_seq++;
    batch.bytes = bytes;
    auto frame =
        std::make_shared<std::string>(BatchFrameStart(header_bytes_, out.stream, batch.seq, bytes));
    batch.items_at = frame->size();
    for (; count > 0; --count) {
      frame->append(out.queue.front());
      out.queue.pop_front();
    }
    batch.frame = std::move(frame);
    out.queued_bytes -= bytes;
    out.window_bytes += bytes;
    if (out.window.empty()) out.last_progress = Clock::now();
    publish.emplace_back(out.subject, batch.frame);
    out.window.push_back(std::move(batch));
    ++counters_.frames_sent;
  }
}

void InstanceLinks::Resend(Outbound& out, std::uint64_t from_seq, Publishing& publish) {
  for (const SentBatch& batch : out.window) {
    if (batch.seq < from_seq) continue;
    publish.emplace_back(out.subject, batch.frame);
    ++counters_.retransmits;
  }
  out.last_progress = Clock::now();
}

void InstanceLinks::PublisherLoop() {
  Publishing publish;
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
      publish.emplace_back(InboxSubject(cluster_, control.to),
                           std::make_shared<const std::string>(std::move(control.frame)));
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
        publish.emplace_back(InboxSubject(cluster_, to),
                             std::make_shared<const std::string>(frame.SerializeAsString()));
      }
      acks_due_.clear();
    }
    if (publish.empty()) continue;
    lock.unlock();
    for (const auto& [subject, bytes] : publish) {
      // A failure (disconnected, buffer full) is what the window is for.
      natsConnection_Publish(connection_->raw(), subject.c_str(), bytes->data(),
                             static_cast<int>(bytes->size()));
    }
    publish.clear();
    lock.lock();
  }
}

void InstanceLinks::OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  // Owned from here; released on whichever thread lets go of the items last.
  std::shared_ptr<natsMsg> owned(msg, &natsMsg_Destroy);
  FrameView frame;
  const bool parsed = ParseFrame(
      absl::string_view(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))),
      &frame);
  auto* links = static_cast<InstanceLinks*>(self);
  if (!parsed || frame.from_instance.empty() || frame.from_instance == links->self_) {
    // Only other relays of this cluster publish here (NATS permissions);
    // anything else is not ours to act on.
    return;
  }
  links->HandleFrame(frame, std::move(owned));
}

void InstanceLinks::HandleFrame(FrameView& frame, std::shared_ptr<natsMsg> msg) {
  switch (frame.body) {
    case FrameView::Body::kBatch:
      HandleBatch(frame, std::move(msg));
      return;
    case FrameView::Body::kAck: {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = outbound_.find(std::string(frame.from_instance));
      if (it == outbound_.end()) return;
      Outbound& out = it->second;
      if (frame.stream != out.stream || frame.seq <= out.acked) return;
      while (!out.window.empty() && out.window.front().seq <= frame.seq) {
        out.window_bytes -= out.window.front().bytes;
        out.window.pop_front();
      }
      out.acked = frame.seq;
      out.last_progress = Clock::now();
      return;
    }
    case FrameView::Body::kNak: {
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = outbound_.find(std::string(frame.from_instance));
        if (it == outbound_.end()) return;
        Outbound& out = it->second;
        if (frame.stream != out.stream) return;
        if (frame.seq <= out.acked) {
          // Asked for what it had acknowledged: it lost its state (a new
          // process under the same id). Start over with what is unacked.
          RestartStream(out);
        } else {
          out.resend_from = frame.seq;
        }
        work_ = true;
      }
      wake_.notify_one();
      return;
    }
    case FrameView::Body::kNone:
      return;
  }
}

void InstanceLinks::QueueNak(const std::string& to, std::uint64_t stream, std::uint64_t seq) {
  Frame nak;
  nak.set_from_instance(self_);
  nak.set_incarnation(incarnation_);
  nak.mutable_nak()->set_stream(stream);
  nak.mutable_nak()->set_seq(seq);
  control_.push_back(Control{to, nak.SerializeAsString()});
  ++counters_.gaps;
  work_ = true;
}

void InstanceLinks::HandleBatch(FrameView& frame, std::shared_ptr<natsMsg> msg) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& gone : forgotten_) inbound_.erase(gone);
    forgotten_.clear();
  }
  std::string from(frame.from_instance);
  Inbound& in = inbound_[from];
  bool restarted = false;
  if (in.incarnation != frame.incarnation) {
    in = Inbound{};  // another process: the layer above sees the new incarnation
    in.incarnation = frame.incarnation;
  }
  if (!in.accepted_any || frame.stream != in.stream) {
    if (frame.seq != 1) {
      // The start of this stream has not arrived: ask for it.
      const Clock::time_point now = Clock::now();
      if (in.nak_stream == frame.stream && now - in.last_nak < kAckInterval) return;
      in.nak_stream = frame.stream;
      in.last_nak = now;
      {
        std::lock_guard<std::mutex> lock(mu_);
        QueueNak(from, frame.stream, 1);
      }
      wake_.notify_one();
      return;
    }
    restarted = in.accepted_any;  // a known sender renumbered: frames may be lost
    in.stream = frame.stream;
    in.expected = 1;
    in.accepted_any = true;
  }
  if (frame.seq != in.expected) {
    std::lock_guard<std::mutex> lock(mu_);
    if (frame.seq < in.expected) {
      acks_due_[from] = {in.stream, in.expected - 1};  // a resend: its ack was lost
      return;
    }
    const Clock::time_point now = Clock::now();
    if (now - in.last_nak >= kAckInterval) {
      in.last_nak = now;
      QueueNak(from, in.stream, in.expected);
    }
    return;
  }
  ++in.expected;
  {
    std::lock_guard<std::mutex> lock(mu_);
    acks_due_[from] = {in.stream, frame.seq};
  }
  Received received;
  received.from = std::move(from);
  received.incarnation = frame.incarnation;
  received.restarted = restarted;
  received.frame = std::move(msg);
  received.items = std::move(frame.items);
  on_received_(std::move(received));
}

}  // namespace relay::backplane::nats
