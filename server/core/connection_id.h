// ConnectionId: the core's name for one transport connection; never reused.
#ifndef RELAY_SERVER_CORE_CONNECTION_ID_H_
#define RELAY_SERVER_CORE_CONNECTION_ID_H_

#include <cstdint>

namespace relay::core {

using ConnectionId = std::uint64_t;

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_CONNECTION_ID_H_
