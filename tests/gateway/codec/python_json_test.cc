// The Python-compatible JSON writer against outputs of Python 3.11's
// json.dumps (the bytes Atmosphere clients sign join tokens over).
#include "gateway/codec/python_json.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace relay::gateway {
namespace {

std::string Number(absl::string_view literal) {
  std::string out;
  AppendPythonJsonNumber(&out, literal);
  return out;
}

TEST(PythonJsonTest, NumbersPrintAsPythonReprsThem) {
  // Expected values are json.dumps(json.loads(literal)) from CPython 3.11.
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"1.7e9", "1700000000.0"},
      {"1e16", "1e+16"},
      {"1e15", "1000000000000000.0"},
      {"12345678901234567.0", "1.2345678901234568e+16"},
      {"0.0001", "0.0001"},
      {"0.00001", "1e-05"},
      {"1e400", "Infinity"},
      {"-1e400", "-Infinity"},
      {"-0", "0"},
      {"-0.0", "-0.0"},
      {"0.1", "0.1"},
      {"1764120000.5", "1764120000.5"},
      {"2.5e-7", "2.5e-07"},
      {"123e-2", "1.23"},
      {"1E2", "100.0"},
      {"100", "100"},
      {"123456789012345678901234567890", "123456789012345678901234567890"},
      {"0.30000000000000004", "0.30000000000000004"},
  };
  for (const auto& [literal, expected] : cases) EXPECT_EQ(Number(literal), expected) << literal;
}

TEST(PythonJsonTest, StringsEscapeEverythingButPrintableAscii) {
  std::string out;
  AppendPythonJsonString(&out, "h\xc3\xa9\xf0\x9f\x98\x80\x7f\x01\"\\/\n\t\b\f\r ~");
  EXPECT_EQ(out, R"("h\u00e9\ud83d\ude00\u007f\u0001\"\\/\n\t\b\f\r ~")");
}

}  // namespace
}  // namespace relay::gateway
