// ToJson: relayctl --json output, the proto3 JSON mapping of a response.
// JsonObject: the same shape for the few answers that are not one response
// message (kick, meshes close, log-level), with keys in a fixed order.
//
// Shape, chosen for scripts (jq): one line, proto field names (snake_case,
// as in relay.proto), every field present even when zero/empty, enums by
// name, 64-bit integers as strings (the proto3 JSON rule, so values beyond
// 2^53 survive JavaScript-style parsers).
#ifndef RELAY_ADMIN_CLI_JSON_OUTPUT_H_
#define RELAY_ADMIN_CLI_JSON_OUTPUT_H_

#include <google/protobuf/message.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace relay::cli {

// The JSON text followed by a newline; Internal when protobuf cannot print it.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

// A flat JSON object built key by key, printed in insertion order.
class JsonObject {
 public:
  JsonObject& Add(absl::string_view key, absl::string_view value);  // a JSON string
  JsonObject& Add(absl::string_view key, std::uint32_t value);      // a JSON number
  // The object on one line, followed by a newline (as ToJson).
  std::string ToString() const;

 private:
  std::vector<std::pair<std::string, std::string>> members_;  // key, encoded value
};

// `text` as a JSON string literal, quotes included; control characters
// escaped, other bytes (UTF-8) as they are.
std::string JsonQuote(absl::string_view text);

}  // namespace relay::cli

#endif  // RELAY_ADMIN_CLI_JSON_OUTPUT_H_
