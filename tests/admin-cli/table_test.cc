// Tests for admin-cli/table.cc: alignment, no trailing blanks, UTF-8 widths,
// control characters neutralised.
#include "admin-cli/table.h"

#include "gtest/gtest.h"

namespace relay::cli {
namespace {

TEST(FormatTableTest, AlignsColumnsTwoSpacesApartWithoutTrailingBlanks) {
  EXPECT_EQ(FormatTable({"MESH", "PEERS", "AGE"}, {{"lobby", "2", "5s"}, {"a", "10", "3m"}}),
            "MESH   PEERS  AGE\n"
            "lobby  2      5s\n"
            "a      10     3m\n");
}

TEST(FormatTableTest, HeaderOnlyWhenNoRows) {
  EXPECT_EQ(FormatTable({"MESH", "PEERS"}, {}), "MESH  PEERS\n");
}

TEST(FormatTableTest, WideLastColumnAddsNoPaddingToOtherRows) {
  EXPECT_EQ(FormatTable({"A", "B"}, {{"x", "long value"}, {"y", ""}}),
            "A  B\n"
            "x  long value\n"
            "y\n");
}

TEST(FormatTableTest, ShortRowsArePaddedWithEmptyCells) {
  EXPECT_EQ(FormatTable({"A", "B", "C"}, {{"1"}}), "A  B  C\n1\n");
}

TEST(FormatTableTest, WidthCountsUtf8CodePointsNotBytes) {
  EXPECT_EQ(FormatTable({"MESH", "N"}, {{"caf\xC3\xA9s", "1"}, {"ab", "2"}}),
            "MESH   N\n"
            "caf\xC3\xA9s  1\n"
            "ab     2\n");
}

TEST(FormatTableTest, ControlCharactersBecomeQuestionMarks) {
  EXPECT_EQ(FormatTable({"NAME"}, {{"evil\n\x1b[31mred\x7f"}}), "NAME\nevil??[31mred?\n");
}

TEST(PrintableTest, ControlCharactersBecomeQuestionMarksUtf8Stays) {
  EXPECT_EQ(Printable("a\x1b[2Jb\tc\xC3\xA9"), "a?[2Jb?c\xC3\xA9");
}

}  // namespace
}  // namespace relay::cli
