// InstanceLinks: ordered, loss-free links from this relay instance to the
// others over core NATS (docs/adr/0009-cluster-on-nats.md, section 2).
//
// Every instance has one inbox subject; everything another instance sends
// it goes there, on one connection, so one subscription delivers it in the
// order it was sent. Core NATS may still lose a frame (a reconnect, a broken
// route), so frames are numbered per destination and kept until
// acknowledged: the receiver takes only the next number, asks again (nak)
// for a gap, and the sender resends what is unacked after a nak, a silence
// or a reconnect. A receiver that lost its state (it restarted) makes the
// sender start a new stream; a sender that had to drop frames (the window
// overflowed) does the same, and the receiver is told the stream restarted,
// so the layer above resynchronises instead of trusting a broken sequence.
//
// Threads: Send from any thread (the core's); items are handed up on
// nats.c's delivery thread of the inbox subscription, in order per sender;
// a publisher thread of this class frames, publishes and resends. No lock
// is held while nats.c is called.
#ifndef RELAY_BACKPLANE_NATS_INSTANCE_LINKS_H_
#define RELAY_BACKPLANE_NATS_INSTANCE_LINKS_H_

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "backplane/nats/frame_codec.h"
#include "backplane/nats/nats_connection.h"

namespace relay::backplane::nats {

class InstanceLinks {
 public:
  struct Received {
    std::string from;
    std::uint64_t incarnation = 0;
    // The sender's numbering restarted: what it sent before may be lost or
    // repeated. Its roster here must be rebuilt.
    bool restarted = false;
    // The frame as NATS delivered it: `items` point into it (read in
    // place, frame_codec.h), so it lives as long as they are used.
    std::shared_ptr<natsMsg> frame;
    std::vector<FrameView::Item> items;
  };
  // Runs on nats.c's delivery thread, once per accepted batch, in order.
  using OnReceived = std::function<void(Received)>;

  struct Counters {
    std::uint64_t frames_sent = 0;
    std::uint64_t retransmits = 0;  // batches sent again
    std::uint64_t resets = 0;       // streams this side restarted
    std::uint64_t gaps = 0;         // naks sent
  };

  InstanceLinks(NatsConnection* connection, std::string cluster, std::string self,
                std::uint64_t incarnation, OnReceived on_received);
  InstanceLinks(const InstanceLinks&) = delete;
  InstanceLinks& operator=(const InstanceLinks&) = delete;
  // Stops the publisher and unsubscribes; nothing is handed up afterwards.
  ~InstanceLinks();

  // Subscribes the inbox and starts the publisher.
  absl::Status Start();

  // Queues `item` (a record of frame_codec.h: EnvelopeItem, UnfollowItem)
  // for instance `to`. A `refusable` item (a delivery) is refused, false,
  // while NATS is disconnected or `to`'s window is full; others are always
  // queued. Any thread.
  //
  // kNow wakes the publisher at once. kLater leaves it asleep until Wake()
  // (or its next tick, kBackplaneAckInterval): a thread that sends many
  // items in a row (the core, one handler after another) wakes it once
  // for all of them, and they leave in one frame, not one each.
  enum class Wakeup { kNow, kLater };
  bool Send(const std::string& to, std::string item, bool refusable,
            Wakeup wakeup = Wakeup::kNow);
  // Wakes the publisher for what was sent with kLater. Any thread.
  void Wake();
  // `to` is gone for good: forget what was queued or unacked for it and
  // what was received from it.
  void Forget(const std::string& to);
  // After a reconnect: resend every unacked frame now.
  void ResendAll();
  // Waits until everything sent so far was acknowledged, up to `timeout`;
  // true if so (a graceful stop's last releases).
  bool WaitAcked(std::chrono::milliseconds timeout);

  Counters counters() const;

 private:
  // A batch sent and not acknowledged yet: its frame, kept as published.
  struct SentBatch {
    std::uint64_t seq = 0;
    std::shared_ptr<const std::string> frame;
    std::size_t items_at = 0;  // where its item records begin in `frame`
    std::size_t bytes = 0;     // of its items, as the window counts them
  };
  struct Outbound {
    std::string subject;
    std::uint64_t stream = 0;
    std::uint64_t next_seq = 1;
    std::deque<std::string> queue;  // item records not framed yet
    std::size_t queued_bytes = 0;
    std::deque<SentBatch> window;  // sent, unacked, in seq order
    std::size_t window_bytes = 0;
    std::uint64_t acked = 0;
    std::uint64_t resend_from = 0;  // 0: nothing asked
    std::chrono::steady_clock::time_point last_progress;
  };
  // What a receiver knows of one sender; the delivery thread's only.
  struct Inbound {
    std::uint64_t incarnation = 0;
    std::uint64_t stream = 0;
    std::uint64_t expected = 1;
    bool accepted_any = false;
    std::uint64_t nak_stream = 0;  // the stream last asked to start over
    std::chrono::steady_clock::time_point last_nak;
  };
  struct Control {
    std::string to;
    std::string frame;  // serialized
  };

  // (subject, frame) pairs the publisher sends once it has let go of mu_.
  using Publishing = std::vector<std::pair<std::string, std::shared_ptr<const std::string>>>;

  static void OnMessage(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* self);
  void HandleFrame(FrameView& frame, std::shared_ptr<natsMsg> msg);
  void HandleBatch(FrameView& frame, std::shared_ptr<natsMsg> msg);
  void QueueNak(const std::string& to, std::uint64_t stream, std::uint64_t seq);  // under mu_
  void PublisherLoop();
  // Under mu_: frames what is queued for `out`, appending what to publish.
  void FrameQueued(Outbound& out, Publishing& publish);
  void Resend(Outbound& out, std::uint64_t from_seq, Publishing& publish);
  // Under mu_: a new stream for `out`, its unacked batches renumbered.
  void RestartStream(Outbound& out);
  Outbound& OutboundTo(const std::string& to);  // under mu_

  NatsConnection* const connection_;
  const std::string cluster_;
  const std::string self_;
  const std::uint64_t incarnation_;
  const OnReceived on_received_;
  const std::string header_bytes_;  // every frame's from_instance and incarnation, serialized
  natsSubscription* subscription_ = nullptr;

  mutable std::mutex mu_;  // leaf: never held while calling nats.c
  std::condition_variable wake_;
  bool stopping_ = false;
  bool resend_all_ = false;
  bool work_ = false;  // something to frame, resend or send: wakes the publisher
  std::map<std::string, Outbound> outbound_;
  // Acks to send: sender -> (stream, seq); naks wait in control_.
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> acks_due_;
  std::vector<Control> control_;
  std::chrono::steady_clock::time_point last_acks_;
  Counters counters_;
  std::thread publisher_;

  std::map<std::string, Inbound> inbound_;  // nats.c's delivery thread only
  std::vector<std::string> forgotten_;      // under mu_: inbound_ entries to drop
};

}  // namespace relay::backplane::nats

#endif  // RELAY_BACKPLANE_NATS_INSTANCE_LINKS_H_
