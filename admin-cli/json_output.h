// ToJson: relayctl --json output, the proto3 JSON mapping of a response.
//
// Shape, chosen for scripts (jq): one line, proto field names (snake_case,
// as in relay.proto), every field present even when zero/empty, enums by
// name, 64-bit integers as strings (the proto3 JSON rule, so values beyond
// 2^53 survive JavaScript-style parsers).
#ifndef RELAY_ADMIN_CLI_JSON_OUTPUT_H_
#define RELAY_ADMIN_CLI_JSON_OUTPUT_H_

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/statusor.h"

namespace relay::cli {

// The JSON text followed by a newline; Internal when protobuf cannot print it.
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

}  // namespace relay::cli

#endif  // RELAY_ADMIN_CLI_JSON_OUTPUT_H_
