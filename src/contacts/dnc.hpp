// contacts: do-not-call lists.
//
// Three lists, all in one table keyed by (tenant, number, kind):
//  - the tenant's own list: entries added by hand, imported, and every
//    opt-out (RecordOptOut — from the agent when a callee says "stop calling
//    me", from the API, from a revoked consent);
//  - the platform list, kept by operators, that applies to every tenant;
//  - national-registry files ("one 10-digit number per line", the US
//    registry's download format) imported per tenant with the file's date.
// An entry is a full number (E.164) or a prefix wildcard — an area code such
// as "+1415*". Every entry keeps its source and time.
//
// Check() is what the dialer asks before every attempt: it probes the number
// and each of its prefixes of 2–8 digits through the primary key, a fixed
// number of O(log n) index seeks however many millions of entries there are.
//
// Opt-outs are never refused: a number libphonenumber does not know is kept
// as '+' and its digits. Personal data (numbers) never goes to the logs; the
// audit log gets a masked form.
//
// Thread-safe; methods block on the database.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/page.hpp"
#include "common/result.hpp"
#include "contacts/model.hpp"
#include "contacts/phone_numbers.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::contacts {

enum class DncKind { kTenant, kPlatform, kRegistry };
std::string_view DncKindName(DncKind kind);  // "tenant", "platform", "registry"
std::optional<DncKind> ParseDncKind(std::string_view name);

struct DncEntry {
  std::string tenant_id;  // empty for the platform list
  std::string number;     // E.164 or a wildcard "+1415*"
  DncKind kind = DncKind::kTenant;
  std::string source;
  std::string note;
  std::string registry_import_id;
  std::string added_by;
  TimePoint added_at;
  std::string registry;  // kind registry: the registry that lists the number (one entry per registry)
};

struct DncCheck {
  bool blocked = false;
  std::vector<DncEntry> matches;  // every entry that blocks the number
};

struct RegistryImport {
  RegistryImportId id;
  std::string registry;
  TimePoint file_date;
  int64_t entries = 0;
  int64_t rejected = 0;  // lines that were not a 10-digit number
  TimePoint imported_at;
};

struct DncImportResult {
  int64_t added = 0;
  int64_t already_listed = 0;
  int64_t rejected = 0;
  std::vector<std::string> errors;  // "line 7: not a phone number" (first 100)
};

class DoNotCall {
 public:
  DoNotCall(storage::Database& db, const Clock& clock, Random& random, privacy::AuditLog& audit,
            const PhoneNumbers& numbers);

  /// The canonical form of an entry: E.164 for a number (lenient: any 8–15
  /// digits are kept), or "+<2–8 digits>*" for a wildcard ("+1 415 *", "415*"
  /// with a +1 default country). invalid_argument on field `field` otherwise.
  Result<std::string> Canonical(std::string_view text, std::string_view default_country,
                                const std::string& field = "number") const;

  /// Adds to the tenant's list (an empty tenant id with kind platform: the platform list).
  /// Returns false when the entry was already there (nothing changes).
  Result<bool> Add(const TenantId& tenant, std::string_view number, std::string_view default_country,
                   const std::string& source, const std::string& note, const privacy::Actor& actor);
  Result<bool> AddPlatform(std::string_view number, const std::string& source, const std::string& note,
                           const privacy::Actor& actor);
  /// Removes a tenant-list entry (not_found when absent). Registry entries leave only with a newer file.
  Result<void> Remove(const TenantId& tenant, std::string_view number, std::string_view default_country,
                      const privacy::Actor& actor);
  Result<void> RemovePlatform(std::string_view number, const privacy::Actor& actor);

  /// Records that `number` asked not to be called, at `at`, from `source`
  /// ("agent", "api", "sms"...): a tenant-list entry, and the tenant's
  /// contact with that number has its consent revoked. Idempotent.
  Result<void> RecordOptOut(const TenantId& tenant, std::string_view number, std::string_view default_country,
                            const std::string& source, TimePoint at);

  /// Every entry that blocks `e164` for `tenant` (its list, its registry
  /// copies, the platform list), exact or by wildcard. O(log n).
  Result<DncCheck> Check(const TenantId& tenant, std::string_view e164);
  /// The same inside a caller's transaction.
  Result<DncCheck> Check(storage::Tx& tx, const TenantId& tenant, std::string_view e164);

  /// Entries of one list, by number; `cursor` is the last number returned.
  Result<Page<DncEntry>> List(const TenantId& tenant, DncKind kind, const PageRequest& page);

  /// Adds every number of a CSV or plain list to the tenant's list, in batches: with a header naming phone
  /// columns (contacts/header_mapping.hpp), every number in those columns; without one, each row's first cell
  /// that holds a number.
  Result<DncImportResult> ImportList(const TenantId& tenant, std::istream& in, std::string_view default_country,
                                     const std::string& source, const privacy::Actor& actor);
  /// Writes the tenant's list as CSV: number,kind,source,note,added_at.
  Result<void> ExportList(const TenantId& tenant, std::ostream& out);

  /// Imports a national-registry file (one 10-digit number per line) for the
  /// tenant, dated `file_date`. Entries of older files of the same registry
  /// are replaced once the new file is in — never a moment without a list.
  Result<RegistryImport> ImportRegistry(const TenantId& tenant, std::istream& in, const std::string& registry,
                                        TimePoint file_date, std::string_view country_code,
                                        const privacy::Actor& actor);
  /// The newest registry file imported for the tenant (for the 31-day freshness rule).
  Result<std::optional<RegistryImport>> LatestRegistry(const TenantId& tenant, const std::string& registry);

  /// Inserts one entry inside `tx`; false if it was already there.
  static Result<bool> InsertEntry(storage::Tx& tx, const DncEntry& entry);
  /// "+14155552671" → "+1415•••••71": how numbers appear in the audit log.
  static std::string Mask(std::string_view number);

 private:
  storage::Database& db_;
  const Clock& clock_;
  Random& random_;
  privacy::AuditLog& audit_;
  const PhoneNumbers& numbers_;
};

}  // namespace clozit::contacts
