// Small helpers to write JSON text into a std::string. The gateway builds
// outgoing frames by appending; forwarded user data is appended raw.
#ifndef RELAY_GATEWAY_JSON_JSON_WRITER_H_
#define RELAY_GATEWAY_JSON_JSON_WRITER_H_

#include <string>

#include "absl/strings/string_view.h"

namespace relay::gateway::json {

// Appends `s` (valid UTF-8) as a quoted JSON string.
void AppendString(std::string* out, absl::string_view s);

// Appends a finite double with microsecond precision (timestamps).
void AppendSeconds(std::string* out, double seconds);

}  // namespace relay::gateway::json

#endif  // RELAY_GATEWAY_JSON_JSON_WRITER_H_
