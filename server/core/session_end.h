// SessionEnd: every reason a resume session ends (docs/protocol.md,
// "Resume"), as one enum and one table, like CloseReason. Names are stable:
// /stats "resume.ended", relay_resume_sessions_ended_total{reason}; never
// rename one.
#ifndef RELAY_SERVER_CORE_SESSION_END_H_
#define RELAY_SERVER_CORE_SESSION_END_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "server/core/close_reason.h"
#include "server/core/enum_counts.h"

namespace relay::core {

enum class SessionEnd : std::uint8_t {
  kExpired,   // suspended for the whole window without a reconnect
  kOverflow,  // its frames waiting for an ack passed a bound
  kClosed,    // its connection ended for a reason that does not suspend
  kReplaced,  // its node_id was registered again without this session
};
inline constexpr std::array<absl::string_view, 4> kSessionEndNames = {
    "expired",
    "overflow",
    "closed",
    "replaced",
};
inline constexpr std::size_t kSessionEndCount = kSessionEndNames.size();
static_assert(static_cast<std::size_t>(SessionEnd::kReplaced) + 1 == kSessionEndCount,
              "kSessionEndNames must name every SessionEnd");

inline absl::string_view SessionEndName(SessionEnd end) {
  return kSessionEndNames[static_cast<std::size_t>(end)];
}

using SessionEndCounts = EnumCounts<SessionEnd, kSessionEndCount>;

// Why a session ends when the relay closes its connection for `reason`.
inline SessionEnd SessionEndFor(CloseReason reason) {
  switch (reason) {
    case CloseReason::kReplaced:
      return SessionEnd::kReplaced;
    case CloseReason::kResumeOverflow:
      return SessionEnd::kOverflow;
    default:
      return SessionEnd::kClosed;
  }
}

}  // namespace relay::core

#endif  // RELAY_SERVER_CORE_SESSION_END_H_
