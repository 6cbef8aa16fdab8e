// Column sizing and padding for FormatTable (see table.h).
#include "admin-cli/table.h"

#include <algorithm>
#include <cstddef>

namespace relay::cli {
namespace {

// Code points, not bytes: UTF-8 continuation bytes (10xxxxxx) do not count.
std::size_t DisplayWidth(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

}  // namespace

std::string Printable(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = '?';
  }
  return out;
}

std::string FormatTable(const TableRow& header, const std::vector<TableRow>& rows) {
  std::vector<TableRow> cells;
  cells.reserve(rows.size() + 1);
  cells.push_back(header);
  for (const TableRow& row : rows) {
    TableRow clean;
    for (const std::string& cell : row) clean.push_back(Printable(cell));
    clean.resize(std::max(clean.size(), header.size()));
    cells.push_back(std::move(clean));
  }

  std::vector<std::size_t> widths;
  for (const TableRow& row : cells) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t col = 0; col < row.size(); ++col) {
      widths[col] = std::max(widths[col], DisplayWidth(row[col]));
    }
  }

  std::string out;
  for (const TableRow& row : cells) {
    std::string line;
    for (std::size_t col = 0; col < row.size(); ++col) {
      if (col > 0) line.append(2, ' ');
      line += row[col];
      line.append(widths[col] - DisplayWidth(row[col]), ' ');
    }
    // Padding the last column would only leave trailing blanks.
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace relay::cli
