// ReferenceJsonVerdict over RapidJSON's SAX reader. Its own translation unit
// so CMake can build it without UBSan's pointer-overflow check: RapidJSON
// 1.1.0 (Debian 12) computes `nullptr + n` in internal::Stack::Push before
// its first allocation, an upstream bug in a header we only test with.
#include "tests/fuzz/json_reference.h"

#include <string>

#ifdef RELAY_FUZZ_HAVE_RAPIDJSON
#include "rapidjson/error/error.h"
#include "rapidjson/reader.h"
#include "rapidjson/stream.h"
#endif

namespace relay::fuzz {

#ifndef RELAY_FUZZ_HAVE_RAPIDJSON

JsonVerdict ReferenceJsonVerdict(absl::string_view) { return JsonVerdict::kNoOpinion; }

#else

JsonVerdict ReferenceJsonVerdict(absl::string_view text) {
  // StringStream stops at NUL, which JSON never allows outside strings
  // (escaped) anyway: no opinion rather than a wrong one.
  if (text.find('\0') != absl::string_view::npos) return JsonVerdict::kNoOpinion;
  // RapidJSON's UTF-8 validation takes every continuation byte a lead byte
  // announces before checking them, reading up to 3 bytes past the
  // terminator of a truncated sequence: pad.
  std::string copy(text);
  copy.append(4, '\0');
  rapidjson::StringStream stream(copy.c_str());
  rapidjson::BaseReaderHandler<> accept_all;
  rapidjson::Reader reader;
  // Iterative: no recursion, whatever the nesting.
  constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseIterativeFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  const rapidjson::ParseResult result = reader.Parse<kFlags>(stream, accept_all);
  if (!result.IsError()) return JsonVerdict::kValid;
  switch (result.Code()) {
    // Documented differences (docs/adr/0002-json-codec.md, json_object.h):
    // the relay forwards numbers without converting them, and decodes a lone
    // surrogate escape to U+FFFD where RapidJSON refuses the document.
    case rapidjson::kParseErrorNumberTooBig:
    case rapidjson::kParseErrorStringUnicodeSurrogateInvalid:
      return JsonVerdict::kNoOpinion;
    default:
      return JsonVerdict::kInvalid;
  }
}

#endif  // RELAY_FUZZ_HAVE_RAPIDJSON

}  // namespace relay::fuzz
