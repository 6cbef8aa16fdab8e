// RapidJSON as the fuzzing harness's reference for "is this valid JSON":
// a strict, UTF-8 validating parser the relay does not use (docs/adr/0002).
// Built only when rapidjson-dev is installed; otherwise it has no opinion.
#ifndef RELAY_TESTS_FUZZ_JSON_REFERENCE_H_
#define RELAY_TESTS_FUZZ_JSON_REFERENCE_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace relay::fuzz {

enum class JsonVerdict {
  kValid,  // one JSON value (any kind) and nothing else
  kInvalid,
  kNoOpinion,  // where the relay differs by design, or RapidJSON cannot tell
};

// Valid also means what the relay adds to RFC 8259 (json_object.h): every
// object has unique member names and at most `max_members_per_object` of
// them. RapidJSON accepts both; its handler here refuses them.
JsonVerdict ReferenceJsonVerdict(absl::string_view text, std::size_t max_members_per_object);

}  // namespace relay::fuzz

#endif  // RELAY_TESTS_FUZZ_JSON_REFERENCE_H_
