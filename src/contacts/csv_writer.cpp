#include "contacts/csv_writer.hpp"

namespace clozit::contacts {

std::string CsvCell(std::string_view text, bool guard_formulas) {
  std::string cell;
  if (guard_formulas && !text.empty() &&
      (text[0] == '=' || text[0] == '+' || text[0] == '-' || text[0] == '@' || text[0] == '\t' || text[0] == '\r')) {
    cell.push_back('\'');
  }
  cell.append(text);
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string quoted = "\"";
  for (char c : cell) {
    if (c == '"') quoted.push_back('"');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

void AppendCsvRow(std::string& out, const std::vector<std::string>& cells, bool guard_formulas) {
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += CsvCell(cells[i], guard_formulas);
  }
  out += "\r\n";
}

}  // namespace clozit::contacts
