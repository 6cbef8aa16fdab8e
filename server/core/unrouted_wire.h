// One mapping between relay.proto's UnroutedType (what a ClientEvent carries)
// and core::UnroutedType (what the core counts and names), for the gateway's
// codecs and the core alike. The proto lists the types from GOSSIP on, in
// core::UnroutedType's order; a proto3 enum field may hold any other number.
#ifndef RELAY_SERVER_CORE_UNROUTED_WIRE_H_
#define RELAY_SERVER_CORE_UNROUTED_WIRE_H_

#include <optional>

#include "relay/v1/relay.pb.h"
#include "server/core/traffic.h"

namespace relay::core {

static_assert(relay::v1::UNROUTED_TYPE_ROUTE_RESPONSE - relay::v1::UNROUTED_TYPE_GOSSIP + 1 ==
                  static_cast<int>(kUnroutedTypeCount),
              "relay.proto's UnroutedType and core::UnroutedType must list the same types");

// nullopt for UNSPECIFIED and for numbers the proto does not name.
inline std::optional<UnroutedType> UnroutedTypeFromWire(int wire) {
  const int index = wire - relay::v1::UNROUTED_TYPE_GOSSIP;
  if (index < 0 || index >= static_cast<int>(kUnroutedTypeCount)) return std::nullopt;
  return static_cast<UnroutedType>(index);
}

inline relay::v1::UnroutedType UnroutedTypeToWire(UnroutedType type) {
  return static_cast<relay::v1::UnroutedType>(relay::v1::UNROUTED_TYPE_GOSSIP +
                                              static_cast<int>(type));
}

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_UNROUTED_WIRE_H_
