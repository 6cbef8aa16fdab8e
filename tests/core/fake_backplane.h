// FakeBackplane: several RelayCores in one test process, joined in memory.
//
// Envelopes are queued, never delivered inline: a test acts, then calls
// DeliverAll() (or DeliverOne() to step), so it controls the delay. Order
// is kept per (sender, receiver) pair, as the real transport keeps it;
// between pairs the fake interleaves round robin, or at random with
// Shuffle(seed) (the real transport promises nothing there). Kill() loses
// an instance: its queues vanish and every other instance is told.
#ifndef RELAY_TESTS_CORE_FAKE_BACKPLANE_H_
#define RELAY_TESTS_CORE_FAKE_BACKPLANE_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "relay/v1/relay.pb.h"
#include "server/core/backplane.h"

namespace relay::core::testing {

class FakeBackplane {
 public:
  // One instance's end of the bus.
  class Instance final : public Backplane {
   public:
    Instance(FakeBackplane* bus, std::string id) : bus_(bus), id_(std::move(id)) {}
    const std::string& instance_id() const override { return id_; }
    bool clustered() const override { return true; }
    void SetListener(BackplaneListener* listener) override { listener_ = listener; }
    void Subscribe(const std::string& mesh_id, std::function<void()> ready) override {
      bus_->Subscribe(id_, mesh_id, std::move(ready));
    }
    void Unsubscribe(const std::string& mesh_id) override {
      bus_->subscribers_[mesh_id].erase(id_);
    }
    bool Publish(const relay::v1::BackplaneEnvelope& envelope) override {
      if (!bus_->Alive(id_) || bus_->Refuses(id_, envelope)) return false;
      bool all = true;  // the reachable ones get it either way
      for (const std::string& to : bus_->subscribers_[envelope.mesh_id()]) {
        if (to == id_) continue;
        if (bus_->Refuses(to, envelope)) {
          all = false;
        } else {
          bus_->Enqueue(id_, to, envelope);
        }
      }
      return all;
    }
    bool Send(const std::string& to, const relay::v1::BackplaneEnvelope& envelope) override {
      if (!bus_->Alive(id_) || !bus_->Alive(to)) return false;
      if (bus_->Refuses(id_, envelope) || bus_->Refuses(to, envelope)) return false;
      bus_->Enqueue(id_, to, envelope);
      return true;
    }
    BackplaneListener* listener() const { return listener_; }

   private:
    FakeBackplane* const bus_;
    const std::string id_;
    BackplaneListener* listener_ = nullptr;
  };

  // A new instance; the bus owns it.
  Instance* Add(const std::string& id) {
    auto instance = std::make_unique<Instance>(this, id);
    Instance* raw = instance.get();
    instances_[id] = std::move(instance);
    return raw;
  }

  // Delivers one queued envelope; false when nothing is queued.
  bool DeliverOne() {
    std::vector<Pair> busy;
    for (const auto& [pair, queue] : queues_) {
      if (!queue.empty()) busy.push_back(pair);
    }
    if (busy.empty()) return false;
    Pair pair;
    if (shuffle_) {
      pair = busy[std::uniform_int_distribution<std::size_t>(0, busy.size() - 1)(*shuffle_)];
    } else {
      // Round robin over the pairs, in their order, after the last one served.
      pair = busy.front();
      for (const Pair& p : busy) {
        if (last_ < p) {
          pair = p;
          break;
        }
      }
    }
    last_ = pair;
    relay::v1::BackplaneEnvelope envelope = std::move(queues_[pair].front());
    queues_[pair].pop_front();
    ++delivered_;
    Deliver(pair.first, pair.second, envelope);
    return true;
  }

  // Delivers until nothing is queued (what a reply queues too).
  void DeliverAll() {
    while (DeliverOne()) {
    }
  }

  // Interleaves pairs at random from now on.
  void Shuffle(unsigned seed) { shuffle_.emplace(seed); }

  // `id` is lost: what it had queued either way vanishes, and every other
  // instance learns it is gone.
  void Kill(const std::string& id) {
    dead_.insert(id);
    for (auto& [pair, queue] : queues_) {
      if (pair.first == id || pair.second == id) queue.clear();
    }
    for (auto& [mesh, subscribers] : subscribers_) subscribers.erase(id);
    for (auto& [key, waiting] : waiting_) {
      if (key.first != id && waiting.from.erase(id) > 0) MaybeReady(key);
    }
    for (const auto& [other, instance] : instances_) {
      if (other != id && Alive(other) && instance->listener() != nullptr) {
        instance->listener()->OnInstanceGone(id);
      }
    }
  }

  // `id`'s link is down (true) or back (false): deliveries from or to it
  // are refused, as the NATS adapter refuses them while disconnected, while
  // roster envelopes still queue (ADR 0009). Nobody is told it is gone.
  void Cut(const std::string& id, bool cut = true) {
    if (cut) {
      cut_.insert(id);
    } else {
      cut_.erase(id);
    }
  }

  // Envelopes sent from `from` to `to` so far, of one kind (0: all).
  std::size_t Sent(const std::string& from, const std::string& to,
                   relay::v1::BackplaneEnvelope::KindCase kind) const {
    auto it = sent_.find({from, to});
    if (it == sent_.end()) return 0;
    if (kind == relay::v1::BackplaneEnvelope::KIND_NOT_SET) return it->second.size();
    std::size_t n = 0;
    for (auto k : it->second) n += k == kind ? 1 : 0;
    return n;
  }
  std::size_t delivered() const { return delivered_; }

 private:
  using Pair = std::pair<std::string, std::string>;  // (from, to)

  bool Refuses(const std::string& id, const relay::v1::BackplaneEnvelope& envelope) const {
    return envelope.has_delivery() && cut_.count(id) > 0;
  }
  struct Waiting {
    std::set<std::string> from;  // instances whose roster_end is awaited
    std::function<void()> ready;
  };

  bool Alive(const std::string& id) const {
    return instances_.count(id) > 0 && dead_.count(id) == 0;
  }

  void Enqueue(const std::string& from, const std::string& to,
               const relay::v1::BackplaneEnvelope& envelope) {
    queues_[{from, to}].push_back(envelope);
    sent_[{from, to}].push_back(envelope.kind_case());
  }

  void Subscribe(const std::string& id, const std::string& mesh_id, std::function<void()> ready) {
    std::set<std::string> others = subscribers_[mesh_id];
    others.erase(id);
    subscribers_[mesh_id].insert(id);
    if (others.empty()) {
      ready();
      return;
    }
    Waiting& waiting = waiting_[{id, mesh_id}];
    waiting.from = others;
    waiting.ready = std::move(ready);
    relay::v1::BackplaneEnvelope request;
    request.set_mesh_id(mesh_id);
    request.set_from_instance(id);
    request.mutable_roster_request();
    for (const std::string& to : others) Enqueue(id, to, request);
  }

  void Deliver(const std::string& from, const std::string& to,
               const relay::v1::BackplaneEnvelope& envelope) {
    if (envelope.has_roster_end()) {
      auto key = std::make_pair(to, envelope.mesh_id());
      auto it = waiting_.find(key);
      if (it != waiting_.end() && it->second.from.erase(from) > 0) MaybeReady(key);
      return;
    }
    if (envelope.has_roster_request() && subscribers_[envelope.mesh_id()].count(to) == 0) {
      // Left the mesh meanwhile: nothing to tell but the end.
      relay::v1::BackplaneEnvelope end;
      end.set_mesh_id(envelope.mesh_id());
      end.set_from_instance(to);
      end.mutable_roster_end();
      Enqueue(to, from, end);
      return;
    }
    BackplaneListener* listener = instances_.at(to)->listener();
    if (listener != nullptr) listener->OnEnvelope(envelope);
  }

  void MaybeReady(const std::pair<std::string, std::string>& key) {
    auto it = waiting_.find(key);
    if (it == waiting_.end() || !it->second.from.empty()) return;
    std::function<void()> ready = std::move(it->second.ready);
    waiting_.erase(it);
    ready();
  }

  std::map<std::string, std::unique_ptr<Instance>> instances_;
  std::set<std::string> dead_;
  std::set<std::string> cut_;
  std::map<std::string, std::set<std::string>> subscribers_;  // mesh -> instances
  std::map<Pair, std::deque<relay::v1::BackplaneEnvelope>> queues_;
  std::map<Pair, std::vector<relay::v1::BackplaneEnvelope::KindCase>> sent_;
  std::map<std::pair<std::string, std::string>, Waiting> waiting_;  // (instance, mesh)
  std::optional<std::mt19937> shuffle_;
  Pair last_;
  std::size_t delivered_ = 0;
};

}  // namespace relay::core::testing

#endif  // RELAY_TESTS_CORE_FAKE_BACKPLANE_H_
