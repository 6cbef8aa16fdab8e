// LentDelivery: a delivery envelope that points at the event it carries
// instead of holding a copy of it.
//
// An event crossing to another instance is serialized by the backplane
// before Send or Publish return (server/core/backplane.h), so the envelope
// only has to be readable until then: copying the event into it, strings
// and sub-messages, would be work done to be thrown away. The event is set
// with protobuf's unsafe_arena_set_allocated_ (no ownership taken, no arena
// checked) and taken back before the envelope is destroyed; nothing writes
// to it through the envelope.
//
// It carries no from_instance: the receiving backplane knows the sender
// from its link and says so (server/core/backplane.h), and the bytes of
// every message crossing count.
#ifndef RELAY_SERVER_CORE_LENT_DELIVERY_H_
#define RELAY_SERVER_CORE_LENT_DELIVERY_H_

#include <string>

#include "relay/v1/relay.pb.h"

namespace relay::core {

class LentDelivery {
 public:
  LentDelivery(const std::string& mesh_id, const relay::v1::ServerEvent& event) {
    envelope_.set_mesh_id(mesh_id);
    envelope_.mutable_delivery()->unsafe_arena_set_allocated_event(
        const_cast<relay::v1::ServerEvent*>(&event));
  }
  ~LentDelivery() { envelope_.mutable_delivery()->unsafe_arena_release_event(); }
  LentDelivery(const LentDelivery&) = delete;
  LentDelivery& operator=(const LentDelivery&) = delete;

  relay::v1::RemoteDelivery& delivery() { return *envelope_.mutable_delivery(); }
  const relay::v1::BackplaneEnvelope& envelope() const { return envelope_; }

 private:
  relay::v1::BackplaneEnvelope envelope_;
};

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_LENT_DELIVERY_H_
