// Backplane: how one RelayCore reaches the cores of other relay instances
// that share its meshes (docs/adr/0007-roster-and-backplane.md).
//
// The core tells other instances what changed in a mesh (a member claimed,
// released or updated, llm load) and hands them events for members they
// hold; they tell it back the same through BackplaneListener. Everything is
// a relay.v1.BackplaneEnvelope. The backplane carries bytes and knows no
// relay rule; the core knows no transport (NATS lives in backplane/nats/).
//
// Order: envelopes from one instance to another arrive in the order they
// were sent (Send and Publish alike); between different pairs there is no
// order. Threading: every call, and every listener callback, on the core
// thread.
//
// Ownership of a node id cluster-wide (ClaimNode/ReleaseNode) is a
// compare-and-set on one shared entry per (mesh, node): the backplane
// reports what it found, the core decides who may take an entry over
// (docs/adr/0009-cluster-on-nats.md, section 3).
#ifndef RELAY_SERVER_CORE_BACKPLANE_H_
#define RELAY_SERVER_CORE_BACKPLANE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "relay/v1/relay.pb.h"

namespace relay::core {

class BackplaneListener {
 public:
  virtual ~BackplaneListener() = default;
  // An envelope from another instance, its from_instance set by the
  // backplane to the instance it came from (whatever the sender wrote
  // there, if anything). Shared, not copied: a delivery's
  // event reaches the peers as a part of it (an aliasing ServerEventPtr),
  // which keeps it alive while they need it.
  virtual void OnEnvelope(std::shared_ptr<relay::v1::BackplaneEnvelope> envelope) = 0;
  // `instance_id` is gone (stopped, lost, partitioned away): every member
  // it held has left.
  virtual void OnInstanceGone(const std::string& instance_id) = 0;
};

// What ClaimNode found (docs/adr/0009-cluster-on-nats.md, section 3).
struct NodeClaim {
  enum class Outcome { kClaimed, kHeld, kUnavailable };
  Outcome outcome = Outcome::kUnavailable;
  // kClaimed: the entry's revision now; kHeld: the holder's revision.
  std::uint64_t revision = 0;
  relay::v1::RosterMember holder;  // kHeld: the entry as stored
  bool holder_live = false;        // kHeld: its instance is alive
};

class Backplane {
 public:
  virtual ~Backplane() = default;

  // This instance's id, unique among the instances sharing meshes.
  virtual const std::string& instance_id() const = 0;
  // False for a relay alone (NullBackplane): the core then builds no
  // envelope at all.
  virtual bool clustered() const = 0;
  // Where envelopes and instance losses are reported; set once, before use.
  virtual void SetListener(BackplaneListener* listener) = 0;

  // This instance now holds members of `mesh_id` and wants its envelopes.
  // `ready` runs once the members other instances hold are known (their
  // member_claimed envelopes arrive before it): inline, or later on the
  // core thread.
  virtual void Subscribe(const std::string& mesh_id, std::function<void()> ready) = 0;
  // No more members of `mesh_id` here.
  virtual void Unsubscribe(const std::string& mesh_id) = 0;

  // To every other instance subscribed to envelope.mesh_id() (once each).
  // False when some could not be reached.
  virtual bool Publish(const relay::v1::BackplaneEnvelope& envelope) = 0;
  // To one instance. False when it cannot be reached.
  virtual bool Send(const std::string& instance_id,
                    const relay::v1::BackplaneEnvelope& envelope) = 0;

  // Writes `member` as the owner of (mesh_id, member.node_id()) cluster-wide
  // when the entry is at `expected_revision` (0: absent). `done` runs once on
  // the core thread (inline allowed).
  // kHeld at revision 0 (the entry went away between the write and the
  // read) has no holder: the core claims it again as absent.
  virtual void ClaimNode(const std::string& mesh_id, const relay::v1::RosterMember& member,
                         std::uint64_t expected_revision, std::function<void(NodeClaim)> done) = 0;
  // This instance no longer holds it: deletes the entry if it is still the one
  // this instance wrote (harmless once someone took it over).
  // "The one it wrote" is the revision its last kClaimed for the key
  // answered before this call: a claim of the same key asked earlier and
  // still in flight (a takeover here) must survive the release behind it.
  virtual void ReleaseNode(const std::string& mesh_id, const std::string& node_id) = 0;

  // Whether any other live instance holds a member of `mesh_id`, as the
  // node entries say (the core knows its own): before a mesh's token binding or
  // signed key is let go. `done` runs once on the core thread (inline
  // allowed); an error when the cluster cannot be read now.
  virtual void MeshHasMembers(const std::string& mesh_id,
                              std::function<void(absl::StatusOr<bool>)> done) = 0;
};

// A relay alone: no other instance. Subscribe is ready at once, nothing is
// ever sent, every claim is granted inline (the core does not even ask: it
// claims only when clustered()).
class NullBackplane final : public Backplane {
 public:
  explicit NullBackplane(std::string instance_id = "local")
      : instance_id_(std::move(instance_id)) {}
  const std::string& instance_id() const override { return instance_id_; }
  bool clustered() const override { return false; }
  void SetListener(BackplaneListener*) override {}
  void Subscribe(const std::string&, std::function<void()> ready) override { ready(); }
  void Unsubscribe(const std::string&) override {}
  bool Publish(const relay::v1::BackplaneEnvelope&) override { return true; }
  bool Send(const std::string&, const relay::v1::BackplaneEnvelope&) override { return true; }
  void ClaimNode(const std::string&, const relay::v1::RosterMember&, std::uint64_t,
                 std::function<void(NodeClaim)> done) override {
    NodeClaim claim;
    claim.outcome = NodeClaim::Outcome::kClaimed;
    done(std::move(claim));
  }
  void ReleaseNode(const std::string&, const std::string&) override {}
  void MeshHasMembers(const std::string&, std::function<void(absl::StatusOr<bool>)> done) override {
    done(false);  // only this relay, whose core knows its own members
  }

 private:
  const std::string instance_id_;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_BACKPLANE_H_
