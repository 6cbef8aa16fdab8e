// ToJson over protobuf's JSON printer (see json_output.h).
#include "admin-cli/json_output.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"

namespace relay::cli {

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.always_print_enums_as_ints = false;
  options.preserve_proto_field_names = true;

  std::string json;
  // protobuf 3.21 has its own util::Status, not absl::Status: convert here.
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("cannot print ", message.GetTypeName(),
                                            " as JSON: ", status.message().ToString()));
  }
  json += '\n';
  return json;
}

}  // namespace relay::cli
