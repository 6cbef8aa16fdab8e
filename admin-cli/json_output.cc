// ToJson by reflection, JsonObject and JsonError (see json_output.h).
#include "admin-cli/json_output.h"

#include <google/protobuf/descriptor.h>

#include <charconv>
#include <cmath>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace relay::cli {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void AppendMessage(std::string* out, const Message& message);

// One value of `field` (element `index` when repeated, else -1).
void AppendValue(std::string* out, const Message& message, const FieldDescriptor* field,
                 int index) {
  const Reflection* r = message.GetReflection();
  const bool rep = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(
          out, rep ? r->GetRepeatedInt32(message, field, index) : r->GetInt32(message, field));
      return;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(
          out, rep ? r->GetRepeatedInt64(message, field, index) : r->GetInt64(message, field));
      return;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(
          out, rep ? r->GetRepeatedUInt32(message, field, index) : r->GetUInt32(message, field));
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(
          out, rep ? r->GetRepeatedUInt64(message, field, index) : r->GetUInt64(message, field));
      return;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      out->append(JsonDouble(rep ? r->GetRepeatedDouble(message, field, index)
                                 : r->GetDouble(message, field)));
      return;
    case FieldDescriptor::CPPTYPE_FLOAT:
      out->append(JsonDouble(rep ? r->GetRepeatedFloat(message, field, index)
                                 : r->GetFloat(message, field)));
      return;
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append((rep ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field))
                      ? "true"
                      : "false");
      return;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int number =
          rep ? r->GetRepeatedEnumValue(message, field, index) : r->GetEnumValue(message, field);
      const auto* value = field->enum_type()->FindValueByNumber(number);
      // A number newer than our copy of the .proto has no name: the number.
      if (value == nullptr) {
        absl::StrAppend(out, number);
      } else {
        out->append(JsonQuote(value->name()));
      }
      return;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string text =
          rep ? r->GetRepeatedString(message, field, index) : r->GetString(message, field);
      // proto3 JSON: bytes as base64.
      out->append(JsonQuote(field->type() == FieldDescriptor::TYPE_BYTES ? absl::Base64Escape(text)
                                                                         : text));
      return;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      AppendMessage(
          out, rep ? r->GetRepeatedMessage(message, field, index) : r->GetMessage(message, field));
      return;
  }
}

// A map entry's key as the JSON object key (always a string).
std::string MapKey(const Message& entry) {
  const FieldDescriptor* key = entry.GetDescriptor()->map_key();
  std::string text;
  AppendValue(&text, entry, key, -1);
  if (key->cpp_type() == FieldDescriptor::CPPTYPE_STRING) return text;
  return JsonQuote(text);
}

void AppendMessage(std::string* out, const Message& message) {
  const Reflection* r = message.GetReflection();
  const auto* descriptor = message.GetDescriptor();
  out->push_back('{');
  bool first = true;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    // Every field is present (scripts need no defaults), but an unset
    // message or oneof member stays out, as proto3 JSON prints it.
    if (!field->is_repeated() && field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
        !r->HasField(message, field)) {
      continue;
    }
    if (field->containing_oneof() != nullptr && !r->HasField(message, field)) continue;
    if (!first) out->push_back(',');
    first = false;
    absl::StrAppend(out, JsonQuote(field->name()), ":");
    if (field->is_map()) {
      out->push_back('{');
      const FieldDescriptor* value = field->message_type()->map_value();
      for (int k = 0; k < r->FieldSize(message, field); ++k) {
        const Message& entry = r->GetRepeatedMessage(message, field, k);
        if (k > 0) out->push_back(',');
        absl::StrAppend(out, MapKey(entry), ":");
        AppendValue(out, entry, value, -1);
      }
      out->push_back('}');
    } else if (field->is_repeated()) {
      out->push_back('[');
      for (int k = 0; k < r->FieldSize(message, field); ++k) {
        if (k > 0) out->push_back(',');
        AppendValue(out, message, field, k);
      }
      out->push_back(']');
    } else {
      AppendValue(out, message, field, -1);
    }
  }
  out->push_back('}');
}

}  // namespace

std::string JsonDouble(double value) {
  if (std::isnan(value)) return "\"NaN\"";
  if (std::isinf(value)) return value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string MessageJson(const google::protobuf::Message& message) {
  std::string out;
  AppendMessage(&out, message);
  return out;
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  return MessageJson(message) + "\n";
}

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

JsonObject& JsonObject::Add(absl::string_view key, absl::string_view value) {
  members_.emplace_back(std::string(key), JsonQuote(value));
  return *this;
}

JsonObject& JsonObject::AddUint(absl::string_view key, std::uint64_t value) {
  members_.emplace_back(std::string(key), absl::StrCat(value));
  return *this;
}

JsonObject& JsonObject::AddDouble(absl::string_view key, double value) {
  members_.emplace_back(std::string(key), JsonDouble(value));
  return *this;
}

JsonObject& JsonObject::AddBool(absl::string_view key, bool value) {
  members_.emplace_back(std::string(key), value ? "true" : "false");
  return *this;
}

JsonObject& JsonObject::AddObject(absl::string_view key, const JsonObject& value) {
  members_.emplace_back(std::string(key), value.Compact());
  return *this;
}

JsonObject& JsonObject::AddRaw(absl::string_view key, std::string json) {
  members_.emplace_back(std::string(key), std::move(json));
  return *this;
}

std::string JsonObject::Compact() const {
  std::string out = "{";
  for (const auto& [key, value] : members_) {
    if (out.size() > 1) out += ',';
    absl::StrAppend(&out, JsonQuote(key), ":", value);
  }
  out += "}";
  return out;
}

std::string JsonError(absl::string_view code, absl::string_view message, absl::string_view rpc) {
  JsonObject inner;
  inner.Add("code", code).Add("message", message);
  if (!rpc.empty()) inner.Add("rpc", rpc);
  JsonObject outer;
  outer.AddObject("error", inner);
  return outer.ToString();
}

}  // namespace relay::cli
