// A strict JSON (RFC 8259) reader for one top-level object that keeps each
// member's raw bytes.
//
// The relay forwards user data (payload, response, request_id, extra fields)
// byte-for-byte: values are validated here, never re-encoded, and the gateway
// splices their raw spans into outgoing frames. Top-level string values are
// also decoded, since the relay reads a few of them (type, node_id, target).
// See docs/adr/0002-json-codec.md for why this is not a general DOM parser.
#ifndef RELAY_GATEWAY_JSON_JSON_OBJECT_H_
#define RELAY_GATEWAY_JSON_JSON_OBJECT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace relay::gateway::json {

enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

// One member of the top-level object. `raw_key` and `raw_value` point into
// the parsed text, which must outlive the object.
struct Member {
  absl::string_view raw_key;    // with its quotes, escapes as sent
  std::string key;              // decoded
  absl::string_view raw_value;  // exactly as sent
  Kind kind = Kind::kNull;
  std::string string_value;     // decoded, when kind == kString
  // For arrays of strings only: the decoded elements (the relay reads
  // capabilities). Empty with all_strings == false for any other array.
  std::vector<std::string> strings;
  bool all_strings = false;
};

struct Object {
  std::vector<Member> members;  // in the order sent; names are unique

  // The member named `key` (compared decoded), or null. ParseObject refuses
  // duplicate names, so there is at most one.
  const Member* Find(absl::string_view key) const;
};

enum class ParseErrorKind {
  kSyntax,          // not JSON
  kTooDeep,         // nested deeper than the limit
  kNotObject,       // valid JSON, but not an object
  kTooManyMembers,  // an object (at any level) has more members than the limit
  kDuplicateName,   // an object (at any level) names a member twice
};

struct ParseError {
  ParseErrorKind kind = ParseErrorKind::kSyntax;
  std::string message;  // human readable, with the byte offset
};

// Parses `text` as one JSON value that must be an object, with at most
// `max_depth` levels of nesting (the top-level object is level 1) and at most
// `max_members_per_object` members in every object, nested ones included.
// Strings must be valid UTF-8. Member names must be unique within their
// object, compared decoded ("a" and "\u0061" are the same name): RFC 8259
// leaves duplicates to each reader, and readers disagree on which copy wins,
// so the relay and its clients could read two different messages. Returns
// false and fills `error` on failure (`out` then holds a partial parse, to be
// discarded).
bool ParseObject(absl::string_view text, std::size_t max_depth, std::size_t max_members_per_object,
                 Object* out, ParseError* error);

// Decodes a JSON string literal's contents (between the quotes, escapes
// included). Lone surrogate escapes become U+FFFD. For tests and internal use.
bool DecodeStringContents(absl::string_view contents, std::string* out);

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code
// points past U+10FFFF).
bool IsValidUtf8(absl::string_view s);

}  // namespace relay::gateway::json

#endif  // RELAY_GATEWAY_JSON_JSON_OBJECT_H_
