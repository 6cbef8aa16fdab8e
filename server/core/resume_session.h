// ResumeSession: the relay's side of one client's resume session
// (docs/protocol.md, "Resume"). Both directions of the stream are numbered:
// the relay's frames to the client get seq 1, 2, 3... and are kept until
// the client acknowledges them, so that a reconnect can replay what the old
// connection may have lost; the client's frames carry its own seq, and the
// highest one handled lets the relay drop a resend instead of handling it
// twice.
//
// Bounded: a session keeps at most `Bounds` of frames (but always one, however
// large), and every session of an instance draws from one ResumeBudget. Past either, Append refuses
// and the session must end (overflow): the relay never holds more than it said.
//
// Threading: not thread-safe (the core thread, like its owner RelayCore).
#ifndef RELAY_SERVER_CORE_RESUME_SESSION_H_
#define RELAY_SERVER_CORE_RESUME_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/peer_sink.h"
#include "server/core/session_end.h"

namespace relay::core {

// What every session of one instance keeps, together (MAX_RESUME_MEMORY_BYTES).
struct ResumeBudget {
  std::size_t max_bytes = 0;
  std::size_t bytes = 0;
  std::size_t frames = 0;
};

class ResumeSession {
 public:
  struct Bounds {
    std::size_t max_bytes = 0;   // RESUME_BUFFER_BYTES
    std::size_t max_frames = 0;  // RESUME_BUFFER_FRAMES
  };
  struct Frame {
    std::uint64_t seq = 0;
    ServerEventPtr event;
    std::size_t bytes = 0;
  };
  // Which bound a refused Append hit.
  enum class Overflow : std::uint8_t { kNone, kSession, kBudget };

  // `budget` must outlive the session.
  ResumeSession(std::string id, Bounds bounds, ResumeBudget* budget);
  ResumeSession(const ResumeSession&) = delete;
  ResumeSession& operator=(const ResumeSession&) = delete;
  ~ResumeSession();

  // Opaque and secret: whoever presents it (with the node's credentials)
  // gets the session's frames. Never logged.
  const std::string& id() const { return id_; }

  // --- Relay -> client ----------------------------------------------------
  // Numbers `event` and keeps it (counted as `bytes`) until acknowledged;
  // returns its seq, or 0 when it does not fit (`overflow` says which
  // bound): the session must then end, for nothing after it could be
  // replayed in order.
  std::uint64_t Append(ServerEventPtr event, std::size_t bytes, Overflow* overflow);
  // The client handled every frame up to `seq`: they are forgotten. False
  // (and nothing changes) when `seq` is past the last frame sent.
  bool Acknowledge(std::uint64_t seq);
  // Seq of the last frame numbered (0 before the first).
  std::uint64_t last_sent() const { return next_seq_ - 1; }
  // Can a client that handled every frame up to `last_seq` be given the
  // rest? Not when it claims frames never sent, nor when frames it says it
  // lacks were already acknowledged and forgotten.
  bool CanReplayAfter(std::uint64_t last_seq) const;
  // The frames kept, oldest first.
  const std::deque<Frame>& unacked() const { return unacked_; }
  std::size_t unacked_bytes() const { return unacked_bytes_; }

  // --- Client -> relay ----------------------------------------------------
  // The client sent a frame numbered `seq`: true when it is new (handle
  // it), false for a resend of one already handled (drop it).
  bool Receive(std::uint64_t seq);
  // The highest client seq handled (0 before the first).
  std::uint64_t client_seq() const { return client_seq_; }
  // What the relay last acknowledged to the client, and how many frames
  // it has handled since.
  std::uint64_t client_seq_acked() const { return client_seq_acked_; }
  void MarkClientSeqAcked() {
    client_seq_acked_ = client_seq_;
    received_since_ack_ = 0;
  }
  // Client frames handled since the last ack (seq may skip numbers).
  std::uint64_t received_since_ack() const { return received_since_ack_; }
  bool ack_owed() const { return client_seq_acked_ != client_seq_ || ack_requested_; }
  // A resend was dropped: the client learns at the next ack that it may
  // forget it, even when the ack says nothing new.
  void RequestAck() { ack_requested_ = true; }
  void ClearAckRequest() { ack_requested_ = false; }

  // --- Suspension ---------------------------------------------------------
  bool suspended() const { return suspended_at_ != absl::InfinitePast(); }
  absl::Time suspended_at() const { return suspended_at_; }
  void Suspend(absl::Time now) { suspended_at_ = now; }
  void Unsuspend() { suspended_at_ = absl::InfinitePast(); }

 private:
  void Release(const Frame& frame);

  const std::string id_;
  const Bounds bounds_;
  ResumeBudget* const budget_;
  std::uint64_t next_seq_ = 1;
  std::deque<Frame> unacked_;
  std::size_t unacked_bytes_ = 0;
  std::uint64_t client_seq_ = 0;
  std::uint64_t client_seq_acked_ = 0;
  std::uint64_t received_since_ack_ = 0;
  bool ack_requested_ = false;
  absl::Time suspended_at_ = absl::InfinitePast();
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_RESUME_SESSION_H_
