// FormatTable: the aligned plain-text tables of relayctl's human output
// (after kubectl get): a header row in capitals, then one row per item,
// columns left-aligned and separated by two spaces, no trailing blanks.
#ifndef RELAY_ADMIN_CLI_TABLE_H_
#define RELAY_ADMIN_CLI_TABLE_H_

#include <string>
#include <vector>

namespace relay::cli {

using TableRow = std::vector<std::string>;

// One line per row, each ending with '\n'. Headers are printed as given.
// Widths count UTF-8 code points, so non-ASCII ids stay aligned. Control
// characters in cells (names come from remote clients) become '?', so a cell
// can neither break the layout nor send escape sequences to the terminal.
// Rows shorter than the header are padded with empty cells.
std::string FormatTable(const TableRow& header, const std::vector<TableRow>& rows);

// `text` with control characters as '?', as FormatTable does to cells: for
// remote-supplied text printed outside a table.
std::string Printable(const std::string& text);

}  // namespace relay::cli

#endif  // RELAY_ADMIN_CLI_TABLE_H_
