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
#ifndef RELAY_SERVER_CORE_BACKPLANE_H_
#define RELAY_SERVER_CORE_BACKPLANE_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "relay/v1/relay.pb.h"

namespace relay::core {

class BackplaneListener {
 public:
  virtual ~BackplaneListener() = default;
  // An envelope from another instance.
  virtual void OnEnvelope(const relay::v1::BackplaneEnvelope& envelope) = 0;
  // `instance_id` is gone (stopped, lost, partitioned away): every member
  // it held has left.
  virtual void OnInstanceGone(const std::string& instance_id) = 0;
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
};

// A relay alone: no other instance. Subscribe is ready at once, nothing is
// ever sent.
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

 private:
  const std::string instance_id_;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_BACKPLANE_H_
