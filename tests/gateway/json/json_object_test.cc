// Tests for gateway/json/json_object.cc: the strict RFC 8259 reader that
// keeps raw spans. Valid documents, exact raw spans, decoded strings, every
// rejection, the depth limit, and IsValidUtf8.
#include "gateway/json/json_object.h"

#include <chrono>
#include <deque>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relay::gateway::json {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::size_t kDepth = 64;
constexpr std::size_t kMembers = 1024;

// Parses `text` and expects success. The object's spans point into `text`.
Object MustParse(const std::string& text, std::size_t max_depth = kDepth) {
  Object obj;
  ParseError error;
  EXPECT_TRUE(ParseObject(text, max_depth, kMembers, &obj, &error))
      << text << ": " << error.message;
  return obj;
}

// The same for a temporary text: it is kept alive for the whole test program
// so the returned spans stay valid.
Object MustParse(std::string&& text, std::size_t max_depth = kDepth) {
  static auto* kept = new std::deque<std::string>();
  kept->push_back(std::move(text));
  return MustParse(kept->back(), max_depth);
}

// Parses `text`, expects failure, and returns the error.
ParseError MustFail(const std::string& text, std::size_t max_depth = kDepth) {
  Object obj;
  ParseError error;
  EXPECT_FALSE(ParseObject(text, max_depth, kMembers, &obj, &error)) << "accepted: " << text;
  return error;
}

// The kind of failure when `value` is the value of member "v".
ParseErrorKind FailAsMember(const std::string& value) {
  return MustFail("{\"v\":" + value + "}").kind;
}

std::string Nested(std::size_t arrays) {
  return std::string(arrays, '[') + std::string(arrays, ']');
}

// `levels` nested containers, alternating arrays and objects, around a 1.
std::string Alternating(std::size_t levels) {
  std::string open;
  std::string close;
  for (std::size_t i = 0; i < levels; ++i) {
    if (i % 2 == 0) {
      open += "[";
      close = "]" + close;
    } else {
      open += "{\"k\":";
      close = "}" + close;
    }
  }
  return open + "1" + close;
}

// --- valid documents --------------------------------------------------------

TEST(JsonObjectTest, EmptyObjectHasNoMembers) {
  EXPECT_THAT(MustParse("{}").members, IsEmpty());
  EXPECT_THAT(MustParse(" \t\r\n{ \n } \r\n").members, IsEmpty());
}

TEST(JsonObjectTest, EveryKindOfValueIsReadWithItsKind) {
  const Object obj = MustParse(
      R"({"n":null,"t":true,"f":false,"i":-12,"d":3.25e-2,"s":"x","a":[1,"b"],"o":{"k":[]}})");

  ASSERT_EQ(obj.members.size(), 8u);
  EXPECT_EQ(obj.members[0].kind, Kind::kNull);
  EXPECT_EQ(obj.members[1].kind, Kind::kBool);
  EXPECT_EQ(obj.members[2].kind, Kind::kBool);
  EXPECT_EQ(obj.members[3].kind, Kind::kNumber);
  EXPECT_EQ(obj.members[4].kind, Kind::kNumber);
  EXPECT_EQ(obj.members[5].kind, Kind::kString);
  EXPECT_EQ(obj.members[6].kind, Kind::kArray);
  EXPECT_EQ(obj.members[7].kind, Kind::kObject);
  std::vector<std::string> keys;
  for (const Member& m : obj.members) keys.push_back(m.key);
  EXPECT_THAT(keys, ElementsAre("n", "t", "f", "i", "d", "s", "a", "o"));
}

TEST(JsonObjectTest, ValidNumbersAreAccepted) {
  for (const char* n : {"0", "-0", "1", "-1", "10", "0.5", "-0.5", "1e5", "1E5", "1e+5", "1e-5",
                        "1.5E-10", "123456789012345678901234567890", "1e400", "-1e400",
                        "0.000000000000000000000000000000000001"}) {
    const Object obj = MustParse(std::string("{\"v\":") + n + "}");
    ASSERT_EQ(obj.members.size(), 1u) << n;
    EXPECT_EQ(obj.members[0].kind, Kind::kNumber) << n;
    EXPECT_EQ(obj.members[0].raw_value, n);
  }
}

TEST(JsonObjectTest, NestedValuesOfEveryKindAreAccepted) {
  const Object obj = MustParse(
      R"({"a":[null,true,false,0,-1.5e3,"s",[],{},{"x":[{"y":"\u00e9"}]}],"o":{"":{"":null}}})");

  ASSERT_EQ(obj.members.size(), 2u);
  EXPECT_EQ(obj.members[0].kind, Kind::kArray);
  EXPECT_EQ(obj.members[1].kind, Kind::kObject);
}

// --- raw spans --------------------------------------------------------------

TEST(JsonObjectTest, RawValueSpansExcludeSurroundingWhitespace) {
  const std::string text = "{ \"a\" :\t[ 1 , 2 ]\n, \"b\":  {\"x\" : \"y\"}  ,\"c\":\r\n-0.5 }";
  const Object obj = MustParse(text);

  ASSERT_EQ(obj.members.size(), 3u);
  EXPECT_EQ(obj.members[0].raw_key, "\"a\"");
  EXPECT_EQ(obj.members[0].raw_value, "[ 1 , 2 ]");
  EXPECT_EQ(obj.members[1].raw_value, "{\"x\" : \"y\"}");
  EXPECT_EQ(obj.members[2].raw_value, "-0.5");
  // Spans point into the text itself.
  EXPECT_EQ(obj.members[0].raw_value.data(), text.data() + text.find('['));
}

TEST(JsonObjectTest, RawSpansKeepEscapesAsSent) {
  const Object obj = MustParse(R"({"k\u0065y":"a\"b\\c\/d\u00e9\n"})");

  ASSERT_EQ(obj.members.size(), 1u);
  EXPECT_EQ(obj.members[0].raw_key, R"("k\u0065y")");
  EXPECT_EQ(obj.members[0].key, "key");
  EXPECT_EQ(obj.members[0].raw_value, R"("a\"b\\c\/d\u00e9\n")");
  EXPECT_EQ(obj.members[0].string_value, "a\"b\\c/d\xC3\xA9\n");
}

TEST(JsonObjectTest, RawSpansOfLiteralsAndStrings) {
  const Object obj = MustParse(R"({"t":true , "n" : null,"s":"plain"})");

  ASSERT_EQ(obj.members.size(), 3u);
  EXPECT_EQ(obj.members[0].raw_value, "true");
  EXPECT_EQ(obj.members[1].raw_value, "null");
  EXPECT_EQ(obj.members[2].raw_value, "\"plain\"");
  EXPECT_EQ(obj.members[2].string_value, "plain");
}

// --- decoded strings --------------------------------------------------------

TEST(JsonObjectTest, EveryEscapeDecodes) {
  const Object obj = MustParse(R"({"s":"\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac"})");

  ASSERT_EQ(obj.members.size(), 1u);
  EXPECT_EQ(obj.members[0].string_value, "\"\\/\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC");
}

TEST(JsonObjectTest, SurrogatePairEscapeDecodesToOneCodePoint) {
  const Object obj = MustParse(R"({"s":"\ud83d\ude00!","u":"\uD83D\uDE00"})");

  EXPECT_EQ(obj.members[0].string_value, "\xF0\x9F\x98\x80!");
  EXPECT_EQ(obj.members[1].string_value, "\xF0\x9F\x98\x80");
}

TEST(JsonObjectTest, LoneSurrogateEscapesDecodeToReplacementCharacter) {
  const Object obj =
      MustParse(R"({"hi":"a\ud800b","lo":"\udc00","hh":"\ud800\ud800","end":"\ud83d"})");

  EXPECT_EQ(obj.members[0].string_value, "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(obj.members[1].string_value, "\xEF\xBF\xBD");
  EXPECT_EQ(obj.members[2].string_value, "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(obj.members[3].string_value, "\xEF\xBF\xBD");
}

TEST(JsonObjectTest, RawUtf8InStringsIsKept) {
  const Object obj = MustParse("{\"s\":\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"}");

  EXPECT_EQ(obj.members[0].string_value, "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
}

TEST(JsonObjectTest, DecodeStringContentsDecodesAndRejectsBadEscapes) {
  std::string out;
  EXPECT_TRUE(DecodeStringContents(R"(a\tb\u0041)", &out));
  EXPECT_EQ(out, "a\tbA");
  out.clear();
  EXPECT_FALSE(DecodeStringContents(R"(\x)", &out));
  out.clear();
  EXPECT_FALSE(DecodeStringContents(R"(\u12)", &out));
  out.clear();
  EXPECT_FALSE(DecodeStringContents("\\", &out));
}

// --- duplicates, Find, arrays of strings -----------------------------------

TEST(JsonObjectTest, FindReturnsTheNamedMemberOrNull) {
  const Object obj = MustParse(R"({"a":1,"b":2,"ab":3})");

  ASSERT_EQ(obj.members.size(), 3u);
  const Member* a = obj.Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->raw_value, "1");
  EXPECT_EQ(obj.Find("ab")->raw_value, "3");
  EXPECT_EQ(obj.Find("missing"), nullptr);
}

TEST(JsonObjectTest, FindMatchesDecodedKeys) {
  const Object obj = MustParse(R"({"\u0074ype":"x"})");

  const Member* type = obj.Find("type");
  ASSERT_NE(type, nullptr);
  EXPECT_EQ(type->string_value, "x");
}

TEST(JsonObjectTest, ArrayOfStringsIsDecoded) {
  const Object obj = MustParse(R"({"caps":[ "llm" , "a\u00e9\n" ],"empty":[]})");

  const Member* caps = obj.Find("caps");
  ASSERT_NE(caps, nullptr);
  EXPECT_TRUE(caps->all_strings);
  EXPECT_THAT(caps->strings, ElementsAre("llm", "a\xC3\xA9\n"));
  const Member* empty = obj.Find("empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_TRUE(empty->all_strings);
  EXPECT_THAT(empty->strings, IsEmpty());
}

TEST(JsonObjectTest, MixedArraysAreNotArraysOfStrings) {
  const Object obj =
      MustParse(R"({"a":["x",1],"b":[1,"x"],"c":["x",["y"]],"d":["x",null],"e":[{"k":"v"}]})");

  for (const Member& m : obj.members) {
    EXPECT_EQ(m.kind, Kind::kArray) << m.key;
    EXPECT_FALSE(m.all_strings) << m.key;
    EXPECT_THAT(m.strings, IsEmpty()) << m.key;
  }
}

// A long array of strings is validated but not decoded element by element:
// 200,000 one-letter strings would cost a copy each (a stranger's cheap CPU
// attack); the relay reads only short ones (capabilities).
TEST(JsonObjectTest, ArraysOfStringsPastTheMemberBoundAreNotDecoded) {
  auto array_of = [](std::size_t n) {
    std::string out = "{\"caps\":[";
    for (std::size_t i = 0; i < n; ++i) out += i == 0 ? "\"a\"" : ",\"a\"";
    return out + "]}";
  };
  const Object at = MustParse(array_of(kMembers));
  EXPECT_TRUE(at.members[0].all_strings);
  EXPECT_EQ(at.members[0].strings.size(), kMembers);
  const Object past = MustParse(array_of(kMembers + 1));
  EXPECT_EQ(past.members[0].kind, Kind::kArray);
  EXPECT_FALSE(past.members[0].all_strings);
  EXPECT_THAT(past.members[0].strings, IsEmpty());
  const Object huge = MustParse(array_of(200000));
  EXPECT_FALSE(huge.members[0].all_strings);
  EXPECT_THAT(huge.members[0].strings, IsEmpty());
}

TEST(JsonObjectTest, NonArrayMembersAreNotArraysOfStrings) {
  const Object obj = MustParse(R"({"s":"x","o":{"a":"b"}})");

  EXPECT_FALSE(obj.members[0].all_strings);
  EXPECT_FALSE(obj.members[1].all_strings);
}

// --- rejections -------------------------------------------------------------

TEST(JsonObjectTest, RejectsTrailingCommas) {
  EXPECT_EQ(MustFail(R"({"a":1,})").kind, ParseErrorKind::kSyntax);
  EXPECT_EQ(FailAsMember("[1,]"), ParseErrorKind::kSyntax);
  EXPECT_EQ(FailAsMember("{\"x\":1,}"), ParseErrorKind::kSyntax);
  EXPECT_EQ(MustFail("{,}").kind, ParseErrorKind::kSyntax);
  EXPECT_EQ(FailAsMember("[,]"), ParseErrorKind::kSyntax);
}

TEST(JsonObjectTest, RejectsSingleQuotesAndBareKeys) {
  EXPECT_EQ(MustFail("{'a':1}").kind, ParseErrorKind::kSyntax);
  EXPECT_EQ(FailAsMember("'x'"), ParseErrorKind::kSyntax);
  EXPECT_EQ(MustFail("{a:1}").kind, ParseErrorKind::kSyntax);
}

TEST(JsonObjectTest, RejectsMalformedNumbers) {
  for (const char* bad : {"01", "-01", "00", "-", "1.", ".5", "-.5", "1e", "1e+", "1E-", "+1",
                          "NaN", "-NaN", "Infinity", "-Infinity", "0x10", "1.2.3", "--1",
                          "1e1.5", "- 1"}) {
    EXPECT_EQ(FailAsMember(bad), ParseErrorKind::kSyntax) << bad;
  }
}

TEST(JsonObjectTest, RejectsBadLiterals) {
  for (const char* bad : {"tru", "True", "nul", "NULL", "falsey", "undefined"}) {
    EXPECT_EQ(FailAsMember(bad), ParseErrorKind::kSyntax) << bad;
  }
}

TEST(JsonObjectTest, RejectsControlCharactersInStrings) {
  for (char c : {'\0', '\x01', '\t', '\n', '\r', '\x1f'}) {
    std::string text = "{\"s\":\"a";
    text.push_back(c);
    text += "b\"}";
    EXPECT_EQ(MustFail(text).kind, ParseErrorKind::kSyntax) << static_cast<int>(c);
  }
  EXPECT_EQ(MustFail(std::string("{\"a\0b\":1}", 10)).kind, ParseErrorKind::kSyntax);
}

// The string scanner skips plain ASCII eight bytes at a time: whatever
// needs a look (quote, escape, control, non-ASCII) must be seen at every
// position relative to those eight-byte steps.
TEST(JsonObjectTest, EverySpecialByteIsSeenAtEveryOffsetOfALongString) {
  for (std::size_t at = 0; at < 24; ++at) {
    const std::string head(at, 'a'), tail(24 - at, 'z');
    const auto doc = [](const std::string& contents) { return "{\"k\":\"" + contents + "\"}"; };

    Object escaped = MustParse(doc(head + "\\n\\u00e9\\\"" + tail));
    EXPECT_EQ(escaped.Find("k")->string_value, head + "\n\u00e9\"" + tail) << at;

    Object utf8 = MustParse(doc(head + "\u00e9\U0001F600" + tail));
    EXPECT_EQ(utf8.Find("k")->string_value, head + "\u00e9\U0001F600" + tail) << at;

    Object short_value = MustParse(doc(head));
    EXPECT_EQ(short_value.Find("k")->string_value, head) << at;

    Object obj;
    ParseError error;
    EXPECT_FALSE(
        ParseObject(doc(head + std::string(1, '\x01') + tail), kDepth, kMembers, &obj, &error))
        << at;
    EXPECT_FALSE(ParseObject(doc(head + "\xff" + tail), kDepth, kMembers, &obj, &error)) << at;
    EXPECT_FALSE(ParseObject(doc(head + "\xc3" + tail), kDepth, kMembers, &obj, &error)) << at;
    EXPECT_FALSE(ParseObject("{\"k\":\"" + head, kDepth, kMembers, &obj, &error)) << at;
  }
}

TEST(JsonObjectTest, AcceptsDelInStrings) {
  EXPECT_EQ(MustParse("{\"s\":\"\x7f\"}").members[0].string_value, "\x7f");
}

TEST(JsonObjectTest, RejectsInvalidEscapes) {
  for (const char* bad : {R"("\x")", R"("\a")", R"("\'")", R"("\U0041")", R"("\0")", R"("\)"}) {
    EXPECT_EQ(FailAsMember(bad), ParseErrorKind::kSyntax) << bad;
  }
}

TEST(JsonObjectTest, RejectsBadUnicodeEscapeHex) {
  for (const char* bad : {R"("\u")", R"("\u12")", R"("\u12G4")", R"("\uZZZZ")", R"("\u-123")",
                          R"("\u 123")", R"("\u123")"}) {
    EXPECT_EQ(FailAsMember(bad), ParseErrorKind::kSyntax) << bad;
  }
}

TEST(JsonObjectTest, RejectsInvalidUtf8InStrings) {
  const std::vector<std::string> bad = {
      "\xC0\x80",          // overlong NUL
      "\xC1\xBF",          // overlong
      "\xE0\x80\xAF",      // overlong 3 bytes
      "\xF0\x80\x80\xAF",  // overlong 4 bytes
      "\xED\xA0\x80",      // UTF-16 surrogate D800
      "\xED\xBF\xBF",      // surrogate DFFF
      "\xF4\x90\x80\x80",  // past U+10FFFF
      "\xF5\x80\x80\x80",  // lead F5
      "\xFF",              // never valid
      "\x80",              // lone continuation
      "\xC3",              // truncated 2 bytes
      "\xE2\x82",          // truncated 3 bytes
      "\xF0\x9F\x98",      // truncated 4 bytes
      "\xC3\x28",          // bad continuation
  };
  for (const std::string& b : bad) {
    EXPECT_EQ(MustFail("{\"s\":\"" + b + "\"}").kind, ParseErrorKind::kSyntax);
    EXPECT_EQ(MustFail("{\"" + b + "\":1}").kind, ParseErrorKind::kSyntax);
    EXPECT_EQ(MustFail("{\"a\":[\"" + b + "\"]}").kind, ParseErrorKind::kSyntax);
  }
}

TEST(JsonObjectTest, RejectsBytesOutsideStrings) {
  EXPECT_EQ(MustFail("{\"a\":1 \xC3\xA9}").kind, ParseErrorKind::kSyntax);
  EXPECT_EQ(MustFail("\xEF\xBB\xBF{}").kind, ParseErrorKind::kSyntax);  // BOM
}

TEST(JsonObjectTest, RejectsUnterminatedDocuments) {
  for (const char* bad : {"{", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":\"x", "{\"a\":[1,2",
                          "{\"a\":{\"b\":1}", "{\"a\":\"x\\", "{\"a\":\"\\u00"}) {
    EXPECT_EQ(MustFail(bad).kind, ParseErrorKind::kSyntax) << bad;
  }
}

TEST(JsonObjectTest, RejectsTrailingGarbage) {
  for (const char* bad : {"{}x", "{} {}", "{}}", "{\"a\":1}]", "{} //", "[] x"}) {
    EXPECT_EQ(MustFail(bad).kind, ParseErrorKind::kSyntax) << bad;
  }
  EXPECT_EQ(MustFail(std::string("{}\0", 3)).kind, ParseErrorKind::kSyntax);
}

TEST(JsonObjectTest, RejectsMissingColonsAndCommas) {
  for (const char* bad : {"{\"a\" 1}", "{\"a\":1 \"b\":2}", "{\"a\":[1 2]}", "{\"a\"::1}",
                          "{\"a\":{\"b\" 1}}", "{1:2}", "{null:1}"}) {
    EXPECT_EQ(MustFail(bad).kind, ParseErrorKind::kSyntax) << bad;
  }
}

TEST(JsonObjectTest, RejectsEmptyInput) {
  EXPECT_EQ(MustFail("").kind, ParseErrorKind::kSyntax);
  EXPECT_EQ(MustFail(" \n\t ").kind, ParseErrorKind::kSyntax);
}

TEST(JsonObjectTest, SyntaxErrorMessageNamesTheByteOffset) {
  const ParseError error = MustFail("{\"a\":tru}");

  EXPECT_THAT(error.message, HasSubstr("byte 5"));
}

// --- non-object top level ---------------------------------------------------

TEST(JsonObjectTest, ValidNonObjectTopLevelIsNotObject) {
  for (const char* v : {"[]", "[1,{\"a\":2}]", "\"s\"", "1", "-2.5e3", "true", "false", "null",
                        "  [ ]  "}) {
    EXPECT_EQ(MustFail(v).kind, ParseErrorKind::kNotObject) << v;
  }
}

TEST(JsonObjectTest, InvalidNonObjectTopLevelIsSyntax) {
  for (const char* v : {"[1,]", "\"abc", "01", "[] []", "nope"}) {
    EXPECT_EQ(MustFail(v).kind, ParseErrorKind::kSyntax) << v;
  }
}

// --- depth ------------------------------------------------------------------

TEST(JsonObjectTest, ExactlyMaxDepthIsAccepted) {
  // The top-level object is level 1; 63 nested arrays make 64 levels.
  MustParse("{\"a\":" + Nested(kDepth - 1) + "}");
  MustParse("{\"a\":" + Nested(2) + "}", 3);
  MustParse("{\"a\":1}", 1);
}

TEST(JsonObjectTest, OneLevelPastMaxDepthIsTooDeep) {
  EXPECT_EQ(MustFail("{\"a\":" + Nested(kDepth) + "}").kind, ParseErrorKind::kTooDeep);
  EXPECT_EQ(MustFail("{\"a\":" + Nested(3) + "}", 3).kind, ParseErrorKind::kTooDeep);
  EXPECT_EQ(MustFail("{\"a\":{}}", 1).kind, ParseErrorKind::kTooDeep);
  EXPECT_EQ(MustFail("{\"a\":[]}", 1).kind, ParseErrorKind::kTooDeep);
}

TEST(JsonObjectTest, DepthCountsObjectsAndArraysAlike) {
  MustParse("{\"a\":" + Alternating(kDepth - 1) + "}");
  EXPECT_EQ(MustFail("{\"a\":" + Alternating(kDepth) + "}").kind, ParseErrorKind::kTooDeep);

  std::string objects;
  for (std::size_t i = 0; i < kDepth - 1; ++i) objects += "{\"k\":";
  objects += "1" + std::string(kDepth - 1, '}');
  MustParse("{\"a\":" + objects + "}");
  EXPECT_EQ(MustFail("{\"a\":{\"b\":" + objects + "}}").kind, ParseErrorKind::kTooDeep);
}

TEST(JsonObjectTest, HugeNestingIsTooDeepAndFast) {
  const std::string arrays(100000, '[');
  const std::string in_object = "{\"a\":" + arrays;
  const auto start = std::chrono::steady_clock::now();

  EXPECT_EQ(MustFail(arrays).kind, ParseErrorKind::kTooDeep);
  EXPECT_EQ(MustFail(in_object).kind, ParseErrorKind::kTooDeep);
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  EXPECT_EQ(MustFail(objects).kind, ParseErrorKind::kTooDeep);

  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(JsonObjectTest, TooDeepMessageNamesTheLimit) {
  EXPECT_THAT(MustFail("{\"a\":" + Nested(kDepth) + "}").message, HasSubstr("64"));
}

// --- members per object -------------------------------------------------

// An object of `n` members "m0":0, "m1":0, ...
std::string ObjectOf(std::size_t n) {
  std::string out = "{";
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += ",";
    out += "\"m" + std::to_string(i) + "\":0";
  }
  return out + "}";
}

TEST(JsonObjectTest, ExactlyMaxMembersAtTopLevelAreAccepted) {
  EXPECT_EQ(MustParse(ObjectOf(kMembers)).members.size(), kMembers);
}

TEST(JsonObjectTest, OneMemberPastMaxAtTopLevelIsTooManyMembers) {
  const ParseError error = MustFail(ObjectOf(kMembers + 1));
  EXPECT_EQ(error.kind, ParseErrorKind::kTooManyMembers);
  EXPECT_THAT(error.message, HasSubstr("1024"));
}

TEST(JsonObjectTest, MemberLimitHoldsInNestedObjectsAndObjectsInArrays) {
  MustParse("{\"payload\":" + ObjectOf(kMembers) + "}");
  MustParse("{\"a\":[1," + ObjectOf(kMembers) + "]}");
  MustParse("{\"a\":{\"b\":[" + ObjectOf(kMembers) + "]}}");

  EXPECT_EQ(FailAsMember(ObjectOf(kMembers + 1)), ParseErrorKind::kTooManyMembers);
  EXPECT_EQ(FailAsMember("[1," + ObjectOf(kMembers + 1) + "]"), ParseErrorKind::kTooManyMembers);
  EXPECT_EQ(FailAsMember("{\"b\":[" + ObjectOf(kMembers + 1) + "]}"),
            ParseErrorKind::kTooManyMembers);
  // A top-level array is no way around it.
  EXPECT_EQ(MustFail("[" + ObjectOf(kMembers + 1) + "]").kind, ParseErrorKind::kTooManyMembers);
}

TEST(JsonObjectTest, MemberLimitCountsEachObjectOnItsOwn) {
  // Siblings at their limit each, and a parent at its limit holding them.
  std::string parent = "{";
  for (std::size_t i = 0; i < kMembers; ++i) {
    if (i > 0) parent += ",";
    parent += "\"p" + std::to_string(i) + "\":" + (i < 3 ? ObjectOf(kMembers) : "0");
  }
  parent += "}";
  MustParse("{\"payload\":" + parent + "}");
  // Array elements are not members: a long array is no object.
  std::string ones = "1";
  for (std::size_t i = 1; i < 2 * kMembers; ++i) ones += ",1";
  MustParse("{\"a\":[" + ones + "]}");
}

TEST(JsonObjectTest, ALimitOfOneAllowsOneMemberPerObject) {
  Object obj;
  ParseError error;
  EXPECT_TRUE(ParseObject(R"({"a":{"b":[{"c":1}]}})", kDepth, 1, &obj, &error)) << error.message;
  EXPECT_FALSE(ParseObject(R"({"a":1,"b":2})", kDepth, 1, &obj, &error));
  EXPECT_EQ(error.kind, ParseErrorKind::kTooManyMembers);
  EXPECT_FALSE(ParseObject(R"({"a":{"b":1,"c":2}})", kDepth, 1, &obj, &error));
  EXPECT_EQ(error.kind, ParseErrorKind::kTooManyMembers);
}

TEST(JsonObjectTest, HugeObjectIsRefusedFast) {
  // The attack: a megabyte of tiny members, at the top or nested.
  std::string members;
  for (int i = 0; members.size() < (1u << 20); ++i) members += "\"" + std::to_string(i) + "\":0,";
  members += "\"end\":0}";
  const auto start = std::chrono::steady_clock::now();

  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(MustFail("{" + members).kind, ParseErrorKind::kTooManyMembers);
    EXPECT_EQ(MustFail("{\"payload\":{" + members + "}").kind, ParseErrorKind::kTooManyMembers);
  }

  // Twenty frames: about 10 ms in all when each stops at member 1,025 (a
  // full read of each was ~7 ms); generous for sanitizer builds.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

// --- duplicate names ----------------------------------------------------------

TEST(JsonObjectTest, DuplicateNameAtTopLevelIsRefused) {
  const ParseError error =
      MustFail(R"({"type":"llm_request","request_id":"1","prompt":"A","prompt":"B"})");
  EXPECT_EQ(error.kind, ParseErrorKind::kDuplicateName);
  EXPECT_THAT(error.message, HasSubstr("duplicate member name \"prompt\""));
  EXPECT_THAT(error.message, HasSubstr("byte 52"));
  EXPECT_EQ(MustFail(R"({"a":1,"a":1})").kind, ParseErrorKind::kDuplicateName);
  EXPECT_EQ(MustFail(R"({"":1,"":2})").kind, ParseErrorKind::kDuplicateName);
}

TEST(JsonObjectTest, DuplicateNameInNestedObjectsIsRefused) {
  EXPECT_EQ(FailAsMember(R"({"a":1,"b":2,"a":3})"), ParseErrorKind::kDuplicateName);
  EXPECT_EQ(FailAsMember(R"([1,{"x":{"y":[{"k":1,"k":2}]}}])"), ParseErrorKind::kDuplicateName);
  EXPECT_EQ(MustFail(R"([{"k":1,"k":2}])").kind, ParseErrorKind::kDuplicateName);
}

TEST(JsonObjectTest, DuplicateNamesAreComparedDecoded) {
  EXPECT_EQ(MustFail(R"({"a":1,"\u0061":2})").kind, ParseErrorKind::kDuplicateName);
  EXPECT_EQ(MustFail(R"({"\u0061":1,"a":2})").kind, ParseErrorKind::kDuplicateName);
  EXPECT_EQ(MustFail(R"({"\u0061":1,"\u0061":2})").kind, ParseErrorKind::kDuplicateName);
  EXPECT_EQ(FailAsMember(R"({"\/":1,"/":2})"), ParseErrorKind::kDuplicateName);
  EXPECT_EQ(FailAsMember("{\"\\u00e9\":1,\"\xc3\xa9\":2}"), ParseErrorKind::kDuplicateName);
  EXPECT_EQ(FailAsMember("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}"),
            ParseErrorKind::kDuplicateName);
  EXPECT_EQ(MustFail(R"({"ty\u0070e":"ping","\u0074ype":"ping"})").kind,
            ParseErrorKind::kDuplicateName);
  // Lone surrogates all read as U+FFFD: the same name, to the relay.
  EXPECT_EQ(FailAsMember(R"({"\ud800":1,"\udc00":2})"), ParseErrorKind::kDuplicateName);
}

TEST(JsonObjectTest, NearDuplicateNamesAreAccepted) {
  EXPECT_EQ(MustParse(R"({"a":1,"ab":2,"abc":3,"b":4,"A":5,"a ":6," a":7})").members.size(), 7u);
  EXPECT_EQ(MustParse(R"({"\u0061":1,"\u0062":2,"\u0061b":3,"a\n":4,"a\t":5})").members.size(), 5u);
  MustParse("{\"v\":{\"\\u00e9\":1,\"e\":2,\"\xc3\xa8\":3},\"w\":[{\"k\":1},{\"k\":2}]}");
  // The same name in different objects is no duplicate.
  MustParse(R"({"k":{"k":{"k":1}},"j":[{"k":1,"j":2},{"k":1}]})");
  const Object obj = MustParse(R"({"a\u0000":1,"a":2,"\u0000a":3})");
  EXPECT_EQ(obj.members.size(), 3u);
}

TEST(JsonObjectTest, DuplicatesAreFoundPastTheLinearScan) {
  // Large objects keep their names in a hash set: a duplicate anywhere in a
  // full object is still found, and a full object of distinct names passes.
  for (std::size_t at : {std::size_t{1}, std::size_t{15}, std::size_t{16}, std::size_t{17},
                         std::size_t{500}, kMembers - 1}) {
    std::string obj = ObjectOf(kMembers - 1);
    obj.insert(obj.size() - 1, ",\"m" + std::to_string(at - 1) + "\":1");
    EXPECT_EQ(MustFail(obj).kind, ParseErrorKind::kDuplicateName) << at;
    EXPECT_EQ(FailAsMember(obj), ParseErrorKind::kDuplicateName) << at;
    std::string escaped = ObjectOf(kMembers - 1);
    escaped.insert(escaped.size() - 1, ",\"\u006d" + std::to_string(at - 1) + "\":1");
    EXPECT_EQ(MustFail(escaped).kind, ParseErrorKind::kDuplicateName) << at;
  }
  // Escaped names, many of them, each decoded once and kept apart.
  std::string escaped = "{";
  for (std::size_t i = 0; i < kMembers; ++i) {
    if (i > 0) escaped += ",";
    escaped += "\"\u0065" + std::to_string(i) + "\":0";
  }
  escaped += "}";
  EXPECT_EQ(MustParse(escaped).members.size(), kMembers);
  EXPECT_EQ(MustParse("{\"v\":" + escaped + "}").members.size(), 1u);
}

// --- IsValidUtf8 ------------------------------------------------------------

TEST(JsonObjectTest, IsValidUtf8AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii \x01\x7f"));
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0inside", 10)));
  EXPECT_TRUE(IsValidUtf8("\xC2\x80"));          // U+0080
  EXPECT_TRUE(IsValidUtf8("\xDF\xBF"));          // U+07FF
  EXPECT_TRUE(IsValidUtf8("\xE0\xA0\x80"));      // U+0800
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));      // U+D7FF
  EXPECT_TRUE(IsValidUtf8("\xEE\x80\x80"));      // U+E000
  EXPECT_TRUE(IsValidUtf8("\xEF\xBF\xBF"));      // U+FFFF
  EXPECT_TRUE(IsValidUtf8("\xF0\x90\x80\x80"));  // U+10000
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xF0\x9F\x98\x80"));
}

TEST(JsonObjectTest, IsValidUtf8RejectsMalformedText) {
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xC1\x81"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xE0\x9F\xBF"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xF0\x8F\xBF\xBF"));  // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xED\xBF\xBF"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xF8\x88\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xFE"));
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_FALSE(IsValidUtf8("a\xBF" "b"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));
  EXPECT_FALSE(IsValidUtf8("ok\xE2\x82"));
  EXPECT_FALSE(IsValidUtf8("\xF0\x9F\x98"));
  EXPECT_FALSE(IsValidUtf8("\xE2\x28\xA1"));
}

}  // namespace
}  // namespace relay::gateway::json
