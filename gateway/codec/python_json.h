// Writes JSON the way Python's json.dumps does by default (ensure_ascii,
// ints as ints, floats as repr()), for signed join tokens: their signature
// covers json.dumps(token_fields, sort_keys=True, separators=(",", ":"))
// as the Atmosphere clients compute it, so the relay must rebuild exactly
// those bytes.
#ifndef RELAY_GATEWAY_CODEC_PYTHON_JSON_H_
#define RELAY_GATEWAY_CODEC_PYTHON_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace relay::gateway {

// A string, with every non-ASCII character escaped as \uXXXX (surrogate
// pairs past U+FFFF) and Python's short escapes.
void AppendPythonJsonString(std::string* out, absl::string_view utf8);

// A JSON number literal as Python would print it after json.loads: integer
// literals unchanged (but "-0" is "0"), others as repr(float), e.g.
// "1.7e9" -> "1700000000.0", "1e16" -> "1e+16", "1e400" -> "Infinity".
void AppendPythonJsonNumber(std::string* out, absl::string_view literal);

}  // namespace relay::gateway

#endif  // RELAY_GATEWAY_CODEC_PYTHON_JSON_H_
