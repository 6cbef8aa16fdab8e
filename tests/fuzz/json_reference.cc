// ReferenceJsonVerdict over RapidJSON's SAX reader. Its own translation unit
// so CMake can build it without UBSan's pointer-overflow check: RapidJSON
// 1.1.0 (Debian 12) computes `nullptr + n` in internal::Stack::Push before
// its first allocation, an upstream bug in a header we only test with.
#include "tests/fuzz/json_reference.h"

#include <set>
#include <string>
#include <vector>

#ifdef RELAY_FUZZ_HAVE_RAPIDJSON
#include "rapidjson/error/error.h"
#include "rapidjson/reader.h"
#include "rapidjson/stream.h"
#endif

namespace relay::fuzz {

#ifndef RELAY_FUZZ_HAVE_RAPIDJSON

JsonVerdict ReferenceJsonVerdict(absl::string_view, std::size_t) { return JsonVerdict::kNoOpinion; }

#else

namespace {

// Accepts every value, and refuses (ends the parse) an object's duplicate
// member name or its member past the limit. RapidJSON hands Key() the
// decoded name, so "a" and "\u0061" meet in the same set. Plain std::set:
// the reference should be obviously right, not fast.
class UniqueBoundedMembers
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, UniqueBoundedMembers> {
 public:
  explicit UniqueBoundedMembers(std::size_t max_members) : max_members_(max_members) {}

  bool StartObject() {
    objects_.emplace_back();
    return true;
  }
  bool Key(const char* name, rapidjson::SizeType length, bool) {
    std::set<std::string>& names = objects_.back();
    if (names.size() == max_members_) return false;
    return names.emplace(name, length).second;
  }
  bool EndObject(rapidjson::SizeType) {
    objects_.pop_back();
    return true;
  }

 private:
  const std::size_t max_members_;
  std::vector<std::set<std::string> > objects_;  // the names of each open object
};

}  // namespace

JsonVerdict ReferenceJsonVerdict(absl::string_view text, std::size_t max_members_per_object) {
  // StringStream stops at NUL, which JSON never allows outside strings
  // (escaped) anyway: no opinion rather than a wrong one.
  if (text.find('\0') != absl::string_view::npos) return JsonVerdict::kNoOpinion;
  // RapidJSON's UTF-8 validation takes every continuation byte a lead byte
  // announces before checking them, reading up to 3 bytes past the
  // terminator of a truncated sequence: pad.
  std::string copy(text);
  copy.append(4, '\0');
  rapidjson::StringStream stream(copy.c_str());
  UniqueBoundedMembers handler(max_members_per_object);
  rapidjson::Reader reader;
  // Iterative: no recursion, whatever the nesting.
  constexpr unsigned kFlags = rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseIterativeFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  const rapidjson::ParseResult result = reader.Parse<kFlags>(stream, handler);
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
