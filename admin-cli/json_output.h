// relayctl --json output.
//   ToJson      the JSON of a response message (reflection over its fields)
//   JsonObject  a JSON object built key by key, for answers that are not one
//               response message (kick, meshes close, log-level, stats, errors)
//   JsonError   what a failing command prints on stdout under --json
//
// Shape, chosen for scripts (jq): one line, proto field names (snake_case, as
// in relay.proto), every field present even when zero or empty, enums by name,
// and every integer, 64-bit ones included, as a JSON number. That last one
// differs from the proto3 JSON mapping (which quotes 64-bit integers): a
// counter above 2^53 (9007199254740992) loses precision in a parser that reads
// numbers as doubles (JavaScript, jq 1.6); no relay counter gets near it in a
// process's life (a billion messages a second would take 104 days).
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

// The JSON text followed by a newline. Internal for a message relayctl cannot
// print (none of relay.proto's).
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

// `message` as a JSON object, no newline: for nesting in a JsonObject.
std::string MessageJson(const google::protobuf::Message& message);

// A JSON object built key by key, printed in insertion order.
class JsonObject {
 public:
  JsonObject& Add(absl::string_view key, absl::string_view value);  // a JSON string
  JsonObject& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  JsonObject& Add(absl::string_view key, std::uint32_t value) { return AddUint(key, value); }
  JsonObject& AddUint(absl::string_view key, std::uint64_t value);
  // Finite values as the shortest text that reads back the same; NaN and
  // infinities as proto3 JSON writes them ("NaN", "Infinity", "-Infinity").
  JsonObject& AddDouble(absl::string_view key, double value);
  JsonObject& AddBool(absl::string_view key, bool value);
  JsonObject& AddObject(absl::string_view key, const JsonObject& value);
  // `json` must be one JSON value (MessageJson's output, an array...).
  JsonObject& AddRaw(absl::string_view key, std::string json);
  bool empty() const { return members_.empty(); }
  // The object on one line, without a newline.
  std::string Compact() const;
  // The object on one line, followed by a newline (as ToJson).
  std::string ToString() const { return Compact() + "\n"; }

 private:
  std::vector<std::pair<std::string, std::string>> members_;  // key, encoded value
};

// {"error":{"code":CODE,"message":MESSAGE}} and a newline; with `rpc` (the
// Admin or Health method that failed) also "rpc" in the inner object.
std::string JsonError(absl::string_view code, absl::string_view message,
                      absl::string_view rpc = "");

// `text` as a JSON string literal, quotes included; control characters
// escaped, other bytes (UTF-8) as they are.
std::string JsonQuote(absl::string_view text);

// `value` as a JSON number, as JsonObject::AddDouble writes it.
std::string JsonDouble(double value);

}  // namespace relay::cli

#endif  // RELAY_ADMIN_CLI_JSON_OUTPUT_H_
