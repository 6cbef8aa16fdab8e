// RecordingSink: a core::PeerSink that keeps every ServerEvent it is given
// (the pointers themselves, so tests can check fan-out sharing) and every
// Close reason, in call order.
#ifndef RELAY_TESTS_CORE_RECORDING_SINK_H_
#define RELAY_TESTS_CORE_RECORDING_SINK_H_

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "relay/v1/relay.pb.h"
#include "server/core/close_reason.h"
#include "server/core/peer_sink.h"

namespace relay::core::testing {

class RecordingSink final : public PeerSink {
 public:
  SendResult Send(const ServerEventPtr& event) override {
    events.push_back(event);
    return SendResult::Queued();
  }
  void Close(CloseReason reason) override { closes.push_back(reason); }
  void SetReading(bool on) override { reading.push_back(on); }
  // Keeps the probe for the test to answer (AnswerProbe), as a transport
  // would after a ping.
  bool Probe(absl::Duration timeout, std::function<void(bool)> done) override {
    if (!can_probe) return false;
    probe_timeouts.push_back(timeout);
    probes.push_back(std::move(done));
    return true;
  }
  // Answers the oldest open probe; false when none is open.
  bool AnswerProbe(bool answered) {
    if (probes.empty()) return false;
    std::function<void(bool)> done = std::move(probes.front());
    probes.erase(probes.begin());
    done(answered);
    return true;
  }

  // Events of one kind, in order.
  std::vector<ServerEventPtr> OfCase(relay::v1::ServerEvent::EventCase c) const {
    std::vector<ServerEventPtr> out;
    for (const ServerEventPtr& e : events) {
      if (e->event_case() == c) out.push_back(e);
    }
    return out;
  }
  // The error codes received, in order.
  std::vector<std::string> ErrorCodes() const {
    std::vector<std::string> out;
    for (const ServerEventPtr& e : events) {
      if (e->has_error()) out.push_back(e->error().code());
    }
    return out;
  }
  void Clear() {
    events.clear();
    closes.clear();
  }

  std::vector<ServerEventPtr> events;
  std::vector<CloseReason> closes;
  std::vector<bool> reading;  // every SetReading, in order
  bool can_probe = true;
  std::vector<std::function<void(bool)>> probes;  // open ones, oldest first
  std::vector<absl::Duration> probe_timeouts;     // every probe asked
};

}  // namespace relay::core::testing

#endif  // RELAY_TESTS_CORE_RECORDING_SINK_H_
