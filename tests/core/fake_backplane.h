// FakeBackplane: several RelayCores in one test process, joined in memory.
//
// Envelopes are queued, never delivered inline: a test acts, then calls
// DeliverAll() (or DeliverOne() to step), so it controls the delay. Order
// is kept per (sender, receiver) pair, as the real transport keeps it;
// between pairs the fake interleaves round robin, or at random with
// Shuffle(seed) (the real transport promises nothing there). Kill() loses
// an instance: its queues vanish and every other instance is told.
//
// Node ownership (ClaimNode/ReleaseNode) is one map shared by every
// instance, (mesh, node) -> entry, with revisions increasing bus-wide as a
// KV bucket's do. Each instance's claims and releases queue in call order
// (the adapter's KV workers keep one key's operations in order) and are
// decided when delivered, like envelopes, against the map as it is then:
// two instances' claims in flight at once race as they would on NATS.
#ifndef RELAY_TESTS_CORE_FAKE_BACKPLANE_H_
#define RELAY_TESTS_CORE_FAKE_BACKPLANE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
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

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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
    void ClaimNode(const std::string& mesh_id, const relay::v1::RosterMember& member,
                   std::uint64_t expected_revision, std::function<void(NodeClaim)> done) override {
      bus_->Claim(id_, mesh_id, member, expected_revision, std::move(done));
    }
    void ReleaseNode(const std::string& mesh_id, const std::string& node_id) override {
      bus_->Release(id_, mesh_id, node_id);
    }
    void MeshHasMembers(const std::string& mesh_id,
                        std::function<void(absl::StatusOr<bool>)> done) override {
      bus_->HasMembers(id_, mesh_id, std::move(done));
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

  // Delivers one queued envelope, or decides one queued claim or release
  // (and answers it); false when nothing is queued.
  bool DeliverOne() {
    std::vector<Pair> busy;
    for (const auto& [pair, queue] : queues_) {
      if (!queue.empty()) busy.push_back(pair);
    }
    for (const auto& [id, ops] : kv_ops_) {
      if (!ops.empty()) busy.push_back({id, kKv});
    }
    std::sort(busy.begin(), busy.end());
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
    if (pair.second == kKv) {
      std::function<void()> op = std::move(kv_ops_[pair.first].front());
      kv_ops_[pair.first].pop_front();
      op();
      return true;
    }
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
  // Its node entries stay, held by a dead instance (claims answer them
  // with holder_live false), and its claims in flight are never answered.
  void Kill(const std::string& id) {
    dead_.insert(id);
    for (auto& [pair, queue] : queues_) {
      if (pair.first == id || pair.second == id) queue.clear();
    }
    kv_ops_[id].clear();
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
  // Its claims decided while it is cut answer kUnavailable; its releases
  // still land (the adapter retries them once connected).
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
    return SentEnvelopes(from, to, kind).size();
  }
  // The same envelopes themselves, in send order.
  std::vector<relay::v1::BackplaneEnvelope> SentEnvelopes(
      const std::string& from, const std::string& to,
      relay::v1::BackplaneEnvelope::KindCase kind) const {
    std::vector<relay::v1::BackplaneEnvelope> out;
    auto it = sent_.find({from, to});
    if (it == sent_.end()) return out;
    for (const auto& envelope : it->second) {
      if (kind == relay::v1::BackplaneEnvelope::KIND_NOT_SET || envelope.kind_case() == kind) {
        out.push_back(envelope);
      }
    }
    return out;
  }
  // Queues `envelope` from `from` to `to` as if sent again (a transport's
  // retransmission arriving late).
  void Inject(const std::string& from, const std::string& to,
              const relay::v1::BackplaneEnvelope& envelope) {
    Enqueue(from, to, envelope);
  }
  std::size_t delivered() const { return delivered_; }

  // One (mesh, node)'s entry in the shared node map.
  struct NodeEntry {
    relay::v1::RosterMember member;  // as its claimant wrote it
    std::uint64_t revision = 0;
    std::string holder;  // the instance that wrote it
  };
  // nullptr when absent.
  const NodeEntry* Node(const std::string& mesh_id, const std::string& node_id) const {
    auto it = nodes_.find({mesh_id, node_id});
    return it == nodes_.end() ? nullptr : &it->second;
  }
  // Claims asked so far (every attempt counts), by any instance.
  std::size_t claims() const { return claims_; }
  // The next `n` claims decided find their entry just rewritten by another
  // claimant of a dead owner's entry (a race lost over and over): each
  // answers kHeld at a new revision, its holder not live.
  void LoseNextClaims(std::size_t n) { lose_next_ = n; }

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

  using NodeKey = std::pair<std::string, std::string>;  // (mesh, node)

  void Claim(const std::string& id, const std::string& mesh_id,
             const relay::v1::RosterMember& member, std::uint64_t expected,
             std::function<void(NodeClaim)> done) {
    ++claims_;
    kv_ops_[id].push_back([this, id, key = NodeKey{mesh_id, member.node_id()}, member, expected,
                           done = std::move(done)] {
      NodeClaim answer;
      if (cut_.count(id) > 0) {
        answer.outcome = NodeClaim::Outcome::kUnavailable;
        done(std::move(answer));
        return;
      }
      if (lose_next_ > 0) {
        --lose_next_;
        NodeEntry& entry = nodes_[key];
        entry.member = member;
        entry.member.set_instance("stranger");
        entry.revision = ++last_revision_;
        entry.holder = "stranger";  // no such instance: not live
      }
      auto it = nodes_.find(key);
      const std::uint64_t current = it == nodes_.end() ? 0 : it->second.revision;
      if (current == expected) {
        NodeEntry& entry = nodes_[key];
        entry.member = member;
        entry.revision = ++last_revision_;
        entry.holder = id;
        // Known to the instance before its core hears the answer, so a
        // release asked from inside `done` gives back this entry.
        written_[{id, key}] = entry.revision;
        answer.outcome = NodeClaim::Outcome::kClaimed;
        answer.revision = entry.revision;
      } else {
        answer.outcome = NodeClaim::Outcome::kHeld;
        answer.revision = current;
        if (it != nodes_.end()) {
          answer.holder = it->second.member;
          answer.holder_live = Alive(it->second.holder);
        }
      }
      done(std::move(answer));
    });
  }

  // Conditional on the revision this instance last won for the key when it
  // asks, as the adapter deletes at the revision it wrote.
  void Release(const std::string& id, const std::string& mesh_id, const std::string& node_id) {
    const NodeKey key{mesh_id, node_id};
    auto won = written_.find({id, key});
    if (won == written_.end()) return;
    kv_ops_[id].push_back([this, key, revision = won->second] {
      auto it = nodes_.find(key);
      if (it != nodes_.end() && it->second.revision == revision) nodes_.erase(it);
    });
  }

  // Queued like a claim, and read from the node map when delivered: any
  // entry of the mesh another live instance wrote.
  void HasMembers(const std::string& id, const std::string& mesh_id,
                  std::function<void(absl::StatusOr<bool>)> done) {
    kv_ops_[id].push_back([this, id, mesh_id, done = std::move(done)] {
      if (cut_.count(id) > 0) {
        done(absl::UnavailableError("cut off"));
        return;
      }
      for (const auto& [key, entry] : nodes_) {
        if (key.first == mesh_id && entry.holder != id && Alive(entry.holder)) {
          done(true);
          return;
        }
      }
      done(false);
    });
  }

  void Enqueue(const std::string& from, const std::string& to,
               const relay::v1::BackplaneEnvelope& envelope) {
    queues_[{from, to}].push_back(envelope);
    sent_[{from, to}].push_back(envelope);
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
    if (listener == nullptr) return;
    auto received = std::make_shared<relay::v1::BackplaneEnvelope>(envelope);
    received->set_from_instance(from);  // as a real backplane does: what the link says
    listener->OnEnvelope(std::move(received));
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
  std::map<Pair, std::vector<relay::v1::BackplaneEnvelope>> sent_;
  std::map<std::pair<std::string, std::string>, Waiting> waiting_;  // (instance, mesh)
  std::optional<std::mt19937> shuffle_;
  Pair last_;
  std::size_t delivered_ = 0;

  // Node ownership: the shared map, each instance's queued operations (a
  // pseudo-pair (instance, kKv) in DeliverOne's rotation), and the revision
  // each instance last won per key.
  static constexpr const char* kKv = "(kv)";
  std::map<NodeKey, NodeEntry> nodes_;
  std::map<std::string, std::deque<std::function<void()>>> kv_ops_;
  std::map<std::pair<std::string, NodeKey>, std::uint64_t> written_;
  std::uint64_t last_revision_ = 0;
  std::size_t claims_ = 0;
  std::size_t lose_next_ = 0;
};

}  // namespace relay::core::testing

#endif  // RELAY_TESTS_CORE_FAKE_BACKPLANE_H_
