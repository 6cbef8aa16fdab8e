// Tests for gateway/json/json_writer.cc. AppendString copies runs that need
// no escaping in bulk, found eight bytes at a time: every escape must be
// found wherever it falls, and the result must read back as the input.
#include "gateway/json/json_writer.h"

#include <string>

#include "gateway/json/json_object.h"
#include "gtest/gtest.h"

namespace relay::gateway::json {
namespace {

std::string Quoted(absl::string_view s) {
  std::string out = "prefix:";
  AppendString(&out, s);
  return out;
}

TEST(AppendStringTest, EscapesWhatJsonRequires) {
  EXPECT_EQ(Quoted(""), "prefix:\"\"");
  EXPECT_EQ(Quoted("plain"), "prefix:\"plain\"");
  EXPECT_EQ(Quoted("a\"b\\c\nd\re\tf"), "prefix:\"a\\\"b\\\\c\\nd\\re\\tf\"");
  EXPECT_EQ(Quoted(std::string("\x00\x01\x1f", 3)), "prefix:\"\\u0000\\u0001\\u001f\"");
  EXPECT_EQ(Quoted("\x7f \xc3\xa9 \xf0\x9f\x98\x80"), "prefix:\"\x7f \xc3\xa9 \xf0\x9f\x98\x80\"");
}

TEST(AppendStringTest, EveryEscapeIsFoundAtEveryOffset) {
  for (std::size_t at = 0; at < 24; ++at) {
    for (const char special : {'"', '\\', '\n', '\x01', '\x1f'}) {
      std::string s(at, 'a');
      s.push_back(special);
      s += std::string(23 - at, 'z') + "\xc3\xa9";
      std::string text = "{\"k\":";
      AppendString(&text, s);
      text += "}";
      Object obj;
      ParseError error;
      ASSERT_TRUE(ParseObject(text, 8, 1024, &obj, &error)) << text << ": " << error.message;
      EXPECT_EQ(obj.Find("k")->string_value, s) << at << " " << static_cast<int>(special);
    }
  }
}

}  // namespace
}  // namespace relay::gateway::json
