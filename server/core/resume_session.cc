#include "server/core/resume_session.h"

#include <utility>

namespace relay::core {

ResumeSession::ResumeSession(std::string id, Bounds bounds, ResumeBudget* budget)
    : id_(std::move(id)), bounds_(bounds), budget_(budget) {}

ResumeSession::~ResumeSession() {
  for (const Frame& frame : unacked_) Release(frame);
}

std::uint64_t ResumeSession::Append(ServerEventPtr event, std::size_t bytes, Overflow* overflow) {
  *overflow = Overflow::kNone;
  // One frame always fits (as one message always fits a send buffer): a
  // message of MAX_MESSAGE_BYTES must not end the session it is sent to.
  if (!unacked_.empty() &&
      (unacked_.size() >= bounds_.max_frames || unacked_bytes_ + bytes > bounds_.max_bytes)) {
    *overflow = Overflow::kSession;
    return 0;
  }
  if (budget_->bytes + bytes > budget_->max_bytes) {
    *overflow = Overflow::kBudget;
    return 0;
  }
  const std::uint64_t seq = next_seq_++;
  unacked_.push_back(Frame{seq, std::move(event), bytes});
  unacked_bytes_ += bytes;
  budget_->bytes += bytes;
  ++budget_->frames;
  return seq;
}

bool ResumeSession::Acknowledge(std::uint64_t seq) {
  if (seq > last_sent()) return false;
  while (!unacked_.empty() && unacked_.front().seq <= seq) {
    Release(unacked_.front());
    unacked_.pop_front();
  }
  return true;
}

bool ResumeSession::CanReplayAfter(std::uint64_t last_seq) const {
  if (last_seq > last_sent()) return false;
  // Everything after last_seq must still be kept: the oldest frame kept is
  // at most last_seq + 1 (or nothing after it was sent).
  const std::uint64_t oldest_kept = unacked_.empty() ? next_seq_ : unacked_.front().seq;
  return oldest_kept <= last_seq + 1;
}

bool ResumeSession::Receive(std::uint64_t seq) {
  if (seq <= client_seq_) return false;
  client_seq_ = seq;
  ++received_since_ack_;
  return true;
}

void ResumeSession::Release(const Frame& frame) {
  unacked_bytes_ -= frame.bytes;
  budget_->bytes -= frame.bytes;
  --budget_->frames;
}

}  // namespace relay::core
