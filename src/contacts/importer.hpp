// contacts: CSV imports as resumable jobs.
//
// A job reads a CSV file (an upload spooled to disk, or the CLI's file) as a
// stream: CsvReader → header mapping (HeaderMapping: CRM exports detected, or
// an explicit mapping) → number normalisation (PhoneNumbers; national numbers
// take the row's country column or the job's default country) → dedupe
// within the file and against the tenant by E.164 → the job's consent basis
// attached → do-not-call status checked and counted → contacts inserted in
// batches (100,000 rows a transaction on SQLite, 5,000 on PostgreSQL).
//
// Each batch commits together with the job row's byte offset and counters,
// so a job stopped anywhere (crash, restart, failure) resumes from its last
// batch and never imports a row twice; importing the same file again adds
// nothing (every number is already the tenant's). Rejected rows are stored
// with their row number, line and reason and exported as CSV. Progress
// (bytes, rows read, accepted, rejected, duplicates, on a DNC list) is in the
// job row, updated with every batch, and handed to a callback.
//
// Memory stays flat whatever the file size: one CSV record, two batches (one
// being built while the previous one commits) and the set of numbers seen
// (8 bytes each) in the file.
//
// Thread-safe: jobs are independent; one job must not be run by two callers
// at once (Run refuses a job another Run holds in this process).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/page.hpp"
#include "common/result.hpp"
#include "contacts/contacts.hpp"
#include "contacts/csv_reader.hpp"
#include "contacts/dnc.hpp"
#include "contacts/model.hpp"
#include "contacts/phone_numbers.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::contacts {

struct ImportOptions {
  std::string default_country = "US";  // for national numbers without a country column
  /// Explicit mapping, field → header name (see MappableFields); empty: detect.
  std::map<std::string, std::string> mapping;
  std::vector<std::string> tags;  // added to every imported contact
};

struct ImportRequest {
  std::string file_path;  // read from here, from the start or from the job's offset
  std::string file_name;  // as the user named it
  std::optional<ContactListId> list_id;
  ConsentInput consent;  // required
  ImportOptions options;
};

struct ImportJob {
  ImportId id;
  TenantId tenant_id;
  std::string list_id;
  std::string consent_id;
  std::string status;  // pending | running | completed | failed
  std::string file_name;
  std::string format;  // the header mapping chosen, once read: hubspot, salesforce, ...
  uint64_t file_bytes = 0;
  uint64_t bytes_read = 0;  // committed: a resumed job continues here
  uint64_t rows_read = 0;   // data rows, the header not counted
  uint64_t accepted = 0;    // new contacts
  uint64_t rejected = 0;
  uint64_t duplicates = 0;  // in the file, or already the tenant's
  uint64_t on_dnc = 0;      // accepted or duplicate rows whose number is on a do-not-call list
  std::string error;
  TimePoint created_at;
  TimePoint updated_at;
  std::optional<TimePoint> finished_at;
};

struct ImporterSettings {
  /// Rows per transaction; 0 picks by backend: 100,000 on SQLite, where each
  /// commit rewrites every page of the random-order (tenant, number) index
  /// it touched into the WAL (5,000-row commits wrote 7.6 GB for a
  /// million-row import, 100,000-row ones 2.2 GB), and 5,000 on PostgreSQL,
  /// where a serialization failure retries the whole transaction.
  size_t batch_rows = 0;
  /// SQLite only: the writer connection's page cache while imports run, so the
  /// (tenant, number) index stays in memory, and a checkpoint interval of at
  /// least 50,000 pages (both restored afterwards). 0 leaves them.
  int64_t sqlite_cache_kib = 48 * 1024;
  CsvOptions csv;  // limits for the reader; delimiter detection stays on
};

class Importer {
 public:
  Importer(storage::Database& db, const Clock& clock, Random& random, privacy::AuditLog& audit,
           const PhoneNumbers& numbers, Contacts& contacts, DoNotCall& dnc, ImporterSettings settings = {});

  /// Records a pending job with its consent basis (refused without one) after
  /// checking the file can be opened. Does not read the file yet.
  Result<ImportJob> Create(const TenantId& tenant, const ImportRequest& request, const privacy::Actor& actor);

  using ProgressCallback = std::function<void(const ImportJob&)>;
  /// Runs a pending, running (interrupted) or failed job to the end; a
  /// completed job is returned as is. `progress` is called after every
  /// batch. Setting `*stop` makes it return after the current batch (the job
  /// stays resumable).
  Result<ImportJob> Run(const TenantId& tenant, const ImportId& id, const ProgressCallback& progress = {},
                        const std::atomic<bool>* stop = nullptr);

  Result<ImportJob> Get(const TenantId& tenant, const ImportId& id);
  Result<Page<ImportJob>> List(const TenantId& tenant, const PageRequest& page);
  /// Jobs not finished (pending, or running when the process stopped): to resume at start-up.
  Result<std::vector<ImportJob>> Unfinished();

  /// The file a job reads.
  Result<std::string> FilePath(const TenantId& tenant, const ImportId& id);

  /// Writes the rejected rows as CSV: row,line,reason, then the row's own fields.
  Result<int64_t> ExportRejected(const TenantId& tenant, const ImportId& id, std::ostream& out);

 private:
  struct Batch;
  class Runner;

  storage::Database& db_;
  const Clock& clock_;
  Random& random_;
  privacy::AuditLog& audit_;
  const PhoneNumbers& numbers_;
  Contacts& contacts_;
  DoNotCall& dnc_;
  ImporterSettings settings_;

  void BoostCache(bool on);

  std::mutex running_mutex_;
  // State below is guarded by running_mutex_.
  std::set<std::string> running_;  // job ids being run in this process
  int cache_boosts_ = 0;           // imports running with the enlarged SQLite cache
  std::optional<int64_t> original_cache_size_;
};

/// ISO 3166-1 alpha-2 code for a country cell: "US", "usa", "United States", "Deutschland" is not known.
std::optional<std::string> CountryCodeFor(std::string_view text, const PhoneNumbers& numbers);

/// Replaces invalid UTF-8 and NUL bytes with U+FFFD: text that came from a file and goes to the database.
std::string SanitizeUtf8(std::string_view text);

}  // namespace clozit::contacts
