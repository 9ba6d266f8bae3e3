// contacts: writing CSV for exports (contacts, rejected rows, do-not-call lists).
//
// RFC 4180 output with CRLF line ends. Free-text cells that a spreadsheet
// would run as a formula (starting with '=', '+', '-', '@', tab or CR) are
// prefixed with a single quote when `guard_formulas` is set — never for the
// E.164 column, whose '+' is data. Stateless and thread-safe.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace clozit::contacts {

/// One cell, quoted when it holds a comma, quote, CR or LF.
std::string CsvCell(std::string_view text, bool guard_formulas = true);

/// A row of cells, comma-separated, CRLF-terminated, appended to `out`.
void AppendCsvRow(std::string& out, const std::vector<std::string>& cells, bool guard_formulas = true);

inline void WriteCsvRow(std::ostream& out, const std::vector<std::string>& cells, bool guard_formulas = true) {
  std::string line;
  AppendCsvRow(line, cells, guard_formulas);
  out << line;
}

}  // namespace clozit::contacts
