#include "gateway/admission/refusal.h"

namespace relay::gateway {

absl::string_view RefusalName(Refusal refusal) {
  switch (refusal) {
    case Refusal::kTooManyConnections:
      return "too_many_connections";
    case Refusal::kDraining:
      return "draining";
    case Refusal::kTooManyHandshakes:
      return "too_many_handshakes";
  }
  return "unknown";
}

}  // namespace relay::gateway
