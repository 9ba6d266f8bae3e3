// contacts: `clozit import FILE --tenant ID --list NAME --consent-...`, the
// command-line import with a progress bar. main.cpp parses the flags and
// checks the tenant and attesting user through accounts; this runs the job.
//
// Progress goes to `progress` (a bar redrawn in place when it is a terminal,
// otherwise nothing until the summary); the summary to `out`. Numbers and
// names never appear in either: only counts and the job id.
//
// Not thread-safe; one command per call.
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"
#include "storage/database.hpp"

namespace clozit::contacts {

struct ImportCommand {
  std::string file;
  std::string tenant_id;
  std::string list_name;  // found by name, or created
  std::string consent_type;
  std::string consent_where;
  std::string consent_at;  // RFC 3339 or YYYY-MM-DD
  std::string consent_evidence;
  std::string attested_by;  // a user of the tenant (main.cpp checks it)
  std::string default_country = "US";
  std::vector<std::string> mappings;  // "field=Header name"
  std::vector<std::string> tags;
  std::string resume_id;     // continue this job instead of creating one
  std::string rejected_out;  // write the rejected rows here as CSV
  bool progress_bar = true;
  size_t batch_rows = 0;  // rows per transaction; 0: the importer's default for the backend
};

/// Runs the import; returns the job's final counters as a one-line summary.
Result<std::string> RunImportCommand(storage::Database& db, const ImportCommand& command, std::ostream& progress,
                                     bool progress_is_terminal);

/// "2025-11-01", "2025-11-01T09:30:00Z", "2025-11-01T09:30:00.250+02:00" → an instant.
Result<TimePoint> ParseTimestamp(std::string_view text, const std::string& field);

}  // namespace clozit::contacts
