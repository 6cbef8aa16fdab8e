// The WebSocket close code and reason text the relay sends for each
// CloseReason it initiates (docs/protocol.md, "Close codes"), as one table
// the compiler checks is whole and sendable.
#ifndef RELAY_GATEWAY_WS_WS_CLOSE_CODES_H_
#define RELAY_GATEWAY_WS_WS_CLOSE_CODES_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "server/core/close_reason.h"

namespace relay::gateway {

struct WsClose {
  std::uint16_t code;
  absl::string_view text;
};

// One row per core::CloseReason, in its order (checked below): the reason
// is spelled out so that a swapped row cannot go unnoticed.
struct WsCloseRow {
  core::CloseReason reason;
  WsClose close;
};
inline constexpr std::array<WsCloseRow, core::kCloseReasonCount> kWsCloses = {{
    {core::CloseReason::kClientClosed, {1000, "closed"}},
    {core::CloseReason::kReplaced, {1000, "replaced"}},
    {core::CloseReason::kServerShutdown, {1001, "server shutting down"}},
    {core::CloseReason::kRegistrationTimeout, {1008, "registration timeout"}},
    {core::CloseReason::kMessageTooBig, {1009, "message too big"}},
    {core::CloseReason::kInvalidFrame, {1007, "invalid frame"}},
    {core::CloseReason::kKeepaliveTimeout, {1001, "keepalive timeout"}},
    {core::CloseReason::kTransportError, {1011, "internal error"}},
    {core::CloseReason::kSlowConsumer, {1013, "slow consumer"}},
    {core::CloseReason::kRateLimited, {1008, "rate limited"}},
    {core::CloseReason::kAuthFailed, {1008, "auth failed"}},
    {core::CloseReason::kKicked, {1008, "kicked"}},
    {core::CloseReason::kMeshClosed, {1008, "mesh closed"}},
    // RFC 6455's Service Restart: clients reconnect, through the load
    // balancer, to another instance.
    {core::CloseReason::kServiceRestart, {1012, "service restart"}},
    // The client itself reconnected: nothing to do on this connection.
    {core::CloseReason::kResumed, {1000, "resumed"}},
    // A client that does not acknowledge what it was sent: resuming it
    // would need more memory than its session may keep.
    {core::CloseReason::kResumeOverflow, {1008, "resume overflow"}},
}};

// RFC 6455 7.4: what a close frame may carry. 1005, 1006 and 1015 only
// report what happened locally and must never be sent; 1004 is reserved and
// below 1000 nothing is defined.
constexpr bool IsSendableCloseCode(std::uint16_t code) {
  return code >= 1000 && code <= 4999 && code != 1004 && code != 1005 && code != 1006 &&
         code != 1015;
}

// A close frame is a control frame: at most 125 payload bytes, two of them
// the code.
inline constexpr std::size_t kMaxCloseTextBytes = 123;

// Every row in reason order (a reason added to the enum but not here leaves a
// zero row, which fails too), with a sendable code and a text that fits.
constexpr bool IsWholeAndSendable(const std::array<WsCloseRow, core::kCloseReasonCount>& rows) {
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const WsCloseRow& row = rows[i];
    if (static_cast<std::size_t>(row.reason) != i || !IsSendableCloseCode(row.close.code) ||
        row.close.text.empty() || row.close.text.size() > kMaxCloseTextBytes) {
      return false;
    }
  }
  return true;
}
static_assert(IsWholeAndSendable(kWsCloses),
              "kWsCloses needs one sendable row per CloseReason, in order");

inline WsClose WsCloseFor(core::CloseReason reason) {
  return kWsCloses[static_cast<std::size_t>(reason)].close;
}

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_WS_WS_CLOSE_CODES_H_
