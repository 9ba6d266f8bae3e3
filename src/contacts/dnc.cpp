#include "contacts/dnc.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "contacts/csv_reader.hpp"
#include "contacts/csv_writer.hpp"
#include "contacts/header_mapping.hpp"

namespace clozit::contacts {
namespace {

using storage::Row;
using storage::Tx;
using storage::Value;

constexpr size_t kMinWildcardDigits = 2;
constexpr size_t kMaxWildcardDigits = 8;
constexpr size_t kProbes = 1 + (kMaxWildcardDigits - kMinWildcardDigits + 1);
constexpr size_t kBatchRows = 5000;

constexpr const char* kEntryColumns =
    "tenant_id, number, kind, source, note, registry_import_id, added_by, added_at, registry";

DncEntry EntryFromRow(const Row& row) {
  DncEntry entry;
  entry.tenant_id = row.Text(0);
  entry.number = row.Text(1);
  entry.kind = ParseDncKind(row.Text(2)).value_or(DncKind::kTenant);
  entry.source = row.Text(3);
  entry.note = row.Text(4);
  entry.registry_import_id = row.Text(5);
  entry.added_by = row.Text(6);
  entry.added_at = FromUnixMillis(row.Int(7));
  entry.registry = row.Text(8);
  return entry;
}

// "SELECT ... WHERE tenant_id IN ($1, '') AND number IN ($2 .. $9)": the number and its wildcard prefixes.
const std::string& CheckSql() {
  static const std::string sql = [] {
    std::string text =
        std::string("SELECT ") + kEntryColumns + " FROM dnc_entries WHERE tenant_id IN ($1, '') AND number IN (";
    for (size_t i = 0; i < kProbes; ++i) text += (i ? ", $" : "$") + std::to_string(i + 2);
    return text + ")";
  }();
  return sql;
}

std::string Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return std::string(text);
}

std::string AuditDetails(const nlohmann::json& details) {
  return details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string_view DncKindName(DncKind kind) {
  switch (kind) {
    case DncKind::kTenant:
      return "tenant";
    case DncKind::kPlatform:
      return "platform";
    case DncKind::kRegistry:
      return "registry";
  }
  return "tenant";
}

std::optional<DncKind> ParseDncKind(std::string_view name) {
  for (auto kind : {DncKind::kTenant, DncKind::kPlatform, DncKind::kRegistry}) {
    if (DncKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

DoNotCall::DoNotCall(storage::Database& db, const Clock& clock, Random& random, privacy::AuditLog& audit,
                     const PhoneNumbers& numbers)
    : db_(db), clock_(clock), random_(random), audit_(audit), numbers_(numbers) {}

std::string DoNotCall::Mask(std::string_view number) {
  bool wildcard = !number.empty() && number.back() == '*';
  if (wildcard || number.size() <= 7) return std::string(number);
  std::string masked(number.substr(0, 5));
  masked.append(number.size() - 7, '*');
  masked.append(number.substr(number.size() - 2));
  return masked;
}

Result<std::string> DoNotCall::Canonical(std::string_view text, std::string_view default_country,
                                         const std::string& field) const {
  std::string trimmed = Trim(text);
  if (trimmed.empty()) return Error::InvalidArgument(field, "a number or an area-code wildcard is required");
  if (trimmed.back() == '*') {
    std::string digits;
    for (char c : std::string_view(trimmed).substr(0, trimmed.size() - 1)) {
      if (c >= '0' && c <= '9') {
        digits.push_back(c);
      } else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')' && c != '+') {
        return Error::InvalidArgument(field, "a wildcard is digits followed by '*', e.g. +1415*");
      }
    }
    if (trimmed[0] != '+') {
      // A national area code: prefix the default country's calling code.
      auto probe = numbers_.LenientE164(digits + "5550100", default_country);
      if (!probe || digits.empty()) return Error::InvalidArgument(field, "a wildcard needs a country: +1415*");
      digits = probe->substr(1, probe->size() - 1 - 7);
    }
    if (digits.size() < kMinWildcardDigits || digits.size() > kMaxWildcardDigits) {
      return Error::InvalidArgument(field, "a wildcard has 2 to 8 digits, country code included, e.g. +1415*");
    }
    return "+" + digits + "*";
  }
  auto e164 = numbers_.LenientE164(trimmed, default_country);
  if (!e164) return Error::InvalidArgument(field, "not a phone number");
  return *e164;
}

Result<bool> DoNotCall::InsertEntry(Tx& tx, const DncEntry& entry) {
  CLOZIT_ASSIGN_OR_RETURN(
      int64_t changed,
      tx.Exec("INSERT INTO dnc_entries (tenant_id, number, kind, registry, source, note, registry_import_id, added_by, "
              "added_at) VALUES ($1, $2, $3, '', $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, number, kind, registry) "
              "DO NOTHING",
              {entry.tenant_id, entry.number, std::string(DncKindName(entry.kind)), entry.source, entry.note,
               entry.registry_import_id.empty() ? Value(nullptr) : Value(entry.registry_import_id), entry.added_by,
               ToUnixMillis(entry.added_at)}));
  return changed > 0;
}

Result<bool> DoNotCall::Add(const TenantId& tenant, std::string_view number, std::string_view default_country,
                            const std::string& source, const std::string& note, const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string canonical, Canonical(number, default_country));
  CLOZIT_ASSIGN_OR_RETURN(std::string clean_note, CleanText(note, "note", 500));
  DncEntry entry{tenant.str(), canonical, DncKind::kTenant, source.empty() ? "api" : source,
                 clean_note,   "",        actor.id,         clock_.Now()};
  bool added = false;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(added, InsertEntry(tx, entry));
    if (!added) return Ok();
    return audit_.Record(tx, actor, {"dnc.add", "dnc_entry", Mask(canonical), AuditDetails({{"source", entry.source}})},
                         tenant.str());
  }));
  return added;
}

Result<bool> DoNotCall::AddPlatform(std::string_view number, const std::string& source, const std::string& note,
                                    const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string canonical, Canonical(number, "US"));
  CLOZIT_ASSIGN_OR_RETURN(std::string clean_note, CleanText(note, "note", 500));
  DncEntry entry{"",         canonical, DncKind::kPlatform, source.empty() ? "operator" : source,
                 clean_note, "",        actor.id,           clock_.Now()};
  bool added = false;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(added, InsertEntry(tx, entry));
    if (!added) return Ok();
    return audit_.Record(tx, actor, {"dnc.platform_add", "dnc_entry", Mask(canonical), "{}"});
  }));
  return added;
}

Result<void> DoNotCall::Remove(const TenantId& tenant, std::string_view number, std::string_view default_country,
                               const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string canonical, Canonical(number, default_country));
  return db_.Write([&](Tx& tx) -> Result<void> {
    // The person's own word (an opt-out, a revoked consent) is not the tenant's to take back: consent, once
    // revoked, stays revoked (contacts), and so does the entry that keeps the number from being called.
    CLOZIT_ASSIGN_OR_RETURN(auto own, tx.Query("SELECT 1 FROM dnc_entries WHERE tenant_id = $1 AND number = $2 AND "
                                               "kind = 'tenant' AND (added_by = 'opt_out' OR source = "
                                               "'consent_revoked')",
                                               {tenant.str(), canonical}));
    if (!own.empty()) {
      return Error::Make(ErrorCode::kConflict,
                         "this entry records the person's opt-out or revoked consent and cannot be removed");
    }
    CLOZIT_ASSIGN_OR_RETURN(int64_t removed,
                            tx.Exec("DELETE FROM dnc_entries WHERE tenant_id = $1 AND number = $2 AND kind = 'tenant'",
                                    {tenant.str(), canonical}));
    if (removed == 0) return Error::NotFound("that number is not on the tenant's do-not-call list");
    return audit_.Record(tx, actor, {"dnc.remove", "dnc_entry", Mask(canonical), "{}"}, tenant.str());
  });
}

Result<void> DoNotCall::RemovePlatform(std::string_view number, const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string canonical, Canonical(number, "US"));
  return db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(
        int64_t removed,
        tx.Exec("DELETE FROM dnc_entries WHERE tenant_id = '' AND number = $1 AND kind = 'platform'", {canonical}));
    if (removed == 0) return Error::NotFound("that number is not on the platform do-not-call list");
    return audit_.Record(tx, actor, {"dnc.platform_remove", "dnc_entry", Mask(canonical), "{}"});
  });
}

Result<void> DoNotCall::RecordOptOut(const TenantId& tenant, std::string_view number, std::string_view default_country,
                                     const std::string& source, TimePoint at) {
  if (tenant.empty()) return Error::InvalidArgument("tenant", "an opt-out belongs to a tenant");
  CLOZIT_ASSIGN_OR_RETURN(std::string canonical, Canonical(number, default_country));
  if (canonical.back() == '*') return Error::InvalidArgument("number", "an opt-out names one number");
  std::string clean_source = source.empty() ? "opt_out" : source.substr(0, 100);
  privacy::Actor actor{"system", "opt_out:" + clean_source, tenant.str(), "", ""};
  return db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(bool added, InsertEntry(tx, {tenant.str(), canonical, DncKind::kTenant, clean_source,
                                                         "opt-out", "", "opt_out", at}));
    // An opt-out revokes whatever consent the tenant held for this number.
    CLOZIT_ASSIGN_OR_RETURN(int64_t revoked,
                            tx.Exec("UPDATE contacts SET consent_revoked_at = $1, updated_at = $2 "
                                    "WHERE tenant_id = $3 AND e164 = $4 AND consent_revoked_at IS NULL",
                                    {ToUnixMillis(at), ToUnixMillis(clock_.Now()), tenant.str(), canonical}));
    if (!added && revoked == 0) return Ok();
    return audit_.Record(
        tx, actor,
        {"dnc.opt_out", "dnc_entry", Mask(canonical),
         AuditDetails({{"source", clean_source}, {"at", FormatRfc3339(at)}, {"consent_revoked", revoked > 0}})},
        tenant.str());
  });
}

Result<DncCheck> DoNotCall::Check(const TenantId& tenant, std::string_view e164) {
  Result<DncCheck> out = DncCheck{};
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    out = Check(tx, tenant, e164);
    if (!out) return out.error();
    return Ok();
  }));
  return out;
}

Result<DncCheck> DoNotCall::Check(Tx& tx, const TenantId& tenant, std::string_view e164) {
  storage::Params params;
  params.reserve(1 + kProbes);
  params.emplace_back(tenant.str());
  params.emplace_back(std::string(e164));
  size_t digits = e164.size() > 1 ? e164.size() - 1 : 0;
  for (size_t length = kMinWildcardDigits; length <= kMaxWildcardDigits; ++length) {
    // Prefixes as long as the number itself cannot match; repeat the number to keep the statement's shape.
    if (length < digits) {
      params.emplace_back(std::string(e164.substr(0, 1 + length)) + "*");
    } else {
      params.emplace_back(std::string(e164));
    }
  }
  CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query(CheckSql(), params));
  DncCheck check;
  for (const auto& row : rows) check.matches.push_back(EntryFromRow(row));
  check.blocked = !check.matches.empty();
  return check;
}

Result<Page<DncEntry>> DoNotCall::List(const TenantId& tenant, DncKind kind, const PageRequest& page) {
  std::string scope = kind == DncKind::kPlatform ? "" : tenant.str();
  // A number has a row per registry that lists it: the cursor is "number|registry" (a bare number, as cursors
  // were before, is that number's row without a registry).
  const size_t bar = page.cursor.find('|');
  const std::string after_number = page.cursor.substr(0, bar);
  const std::string after_registry = bar == std::string::npos ? "" : page.cursor.substr(bar + 1);
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kEntryColumns +
                               " FROM dnc_entries WHERE tenant_id = $1 AND kind = $2 AND (number > $3 OR "
                               "(number = $3 AND registry > $4)) ORDER BY number, registry LIMIT $5",
                           {scope, std::string(DncKindName(kind)), after_number, after_registry, page.limit + 1}));
  Page<DncEntry> out;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
    out.items.push_back(EntryFromRow(rows[i]));
  }
  if (static_cast<int64_t>(rows.size()) > page.limit) {
    out.next_cursor = out.items.back().number + "|" + out.items.back().registry;
  }
  return out;
}

Result<DncImportResult> DoNotCall::ImportList(const TenantId& tenant, std::istream& in,
                                              std::string_view default_country, const std::string& source,
                                              const privacy::Actor& actor) {
  IstreamSource source_bytes(in);
  CsvOptions options;
  options.header = false;
  CsvReader reader(source_bytes, options);
  CsvRecord record;
  DncImportResult result;
  std::vector<std::string> batch;
  std::string entry_source = source.empty() ? "import" : source;
  TimePoint now = clock_.Now();
  auto flush = [&]() -> Result<void> {
    if (batch.empty()) return Ok();
    int64_t added = 0;
    CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
      added = 0;
      for (const auto& number : batch) {
        CLOZIT_ASSIGN_OR_RETURN(bool inserted, InsertEntry(tx, {tenant.str(), number, DncKind::kTenant, entry_source,
                                                                "", "", actor.id, now}));
        added += inserted ? 1 : 0;
      }
      return Ok();
    }));
    result.added += added;
    result.already_listed += static_cast<int64_t>(batch.size()) - added;
    batch.clear();
    return Ok();
  };
  auto reject = [&](const CsvRecord& bad, const std::string& reason) {
    ++result.rejected;
    if (result.errors.size() < 100) result.errors.push_back("line " + std::to_string(bad.line) + ": " + reason);
  };
  // With a header that names phone columns (a CRM export), every number in those columns is listed, and nothing
  // else: a record id or an amount that happens to parse as a number is not a person's request. Without one, each
  // row's first cell that holds a number.
  std::optional<std::vector<int>> phone_columns;
  while (reader.Next(record)) {
    if (!record.ok()) {
      reject(record, std::string(CsvErrorName(record.error)));
      continue;
    }
    std::vector<std::string> numbers;
    auto take = [&](size_t i) {
      if (i >= record.size()) return;
      auto canonical = Canonical(record.field(i), default_country);
      if (canonical && std::find(numbers.begin(), numbers.end(), *canonical) == numbers.end()) {
        numbers.push_back(*canonical);
      }
    };
    if (phone_columns) {
      for (int column : *phone_columns) take(static_cast<size_t>(column));
    } else {
      for (size_t i = 0; i < record.size() && numbers.empty(); ++i) take(i);
    }
    if (record.row == 1 && numbers.empty()) {
      std::vector<std::string> header;
      for (size_t i = 0; i < record.size(); ++i) header.emplace_back(record.field(i));
      if (auto mapping = MapHeader(header)) phone_columns = mapping->phones;
      continue;
    }
    if (numbers.empty()) {
      reject(record, phone_columns ? "no phone number in the phone columns" : "no phone number in the row");
      continue;
    }
    for (auto& number : numbers) batch.push_back(std::move(number));
    if (batch.size() >= kBatchRows) CLOZIT_TRY(flush());
  }
  CLOZIT_TRY(flush());
  CLOZIT_TRY(db_.Write([&](Tx& tx) {
    return audit_.Record(
        tx, actor,
        {"dnc.import", "dnc_list", tenant.str(),
         AuditDetails(
             {{"added", result.added}, {"already_listed", result.already_listed}, {"rejected", result.rejected}})},
        tenant.str());
  }));
  return result;
}

Result<void> DoNotCall::ExportList(const TenantId& tenant, std::ostream& out) {
  WriteCsvRow(out, {"number", "kind", "source", "note", "added_at"}, false);
  std::string cursor;
  for (;;) {
    CLOZIT_ASSIGN_OR_RETURN(auto page, List(tenant, DncKind::kTenant, {1000, cursor}));
    for (const auto& entry : page.items) {
      out << CsvCell(entry.number, false) << ',' << DncKindName(entry.kind) << ',' << CsvCell(entry.source) << ','
          << CsvCell(entry.note) << ',' << FormatRfc3339(entry.added_at) << "\r\n";
    }
    if (page.next_cursor.empty()) break;
    cursor = page.next_cursor;
  }
  if (!out) return Error::Make(ErrorCode::kUnavailable, "cannot write the export");
  return Ok();
}

Result<RegistryImport> DoNotCall::ImportRegistry(const TenantId& tenant, std::istream& in, const std::string& registry,
                                                 TimePoint file_date, std::string_view country_code,
                                                 const privacy::Actor& actor) {
  std::string registry_name = Trim(registry);
  if (registry_name.empty() || registry_name.size() > 64) {
    return Error::InvalidArgument("registry", "name the registry, e.g. us_national");
  }
  if (country_code.empty() || country_code.size() > 3 ||
      !std::all_of(country_code.begin(), country_code.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Error::InvalidArgument("country_code", "the registry's country calling code, e.g. 1");
  }
  RegistryImport result;
  result.id = RegistryImportId::New(clock_, random_);
  result.registry = registry_name;
  result.file_date = file_date;
  result.imported_at = clock_.Now();
  std::string source = "registry:" + result.id.str();
  std::vector<std::string> batch;
  auto flush = [&]() -> Result<void> {
    if (batch.empty()) return Ok();
    CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
      for (const auto& number : batch) {
        CLOZIT_TRY(tx.Exec(
            "INSERT INTO dnc_entries (tenant_id, number, kind, registry, source, note, registry_import_id, added_by, "
            "added_at) VALUES ($1, $2, 'registry', $7, $3, '', $4, $5, $6) "
            "ON CONFLICT (tenant_id, number, kind, registry) DO UPDATE SET source = excluded.source, "
            "registry_import_id = excluded.registry_import_id, added_at = excluded.added_at",
            {tenant.str(), number, source, result.id.str(), actor.id, ToUnixMillis(result.imported_at),
             registry_name}));
      }
      return Ok();
    }));
    result.entries += static_cast<int64_t>(batch.size());
    batch.clear();
    return Ok();
  };
  std::string line;
  while (std::getline(in, line)) {
    std::string digits = Trim(line);
    if (digits.empty()) continue;
    if (digits.size() != 10 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      ++result.rejected;
      continue;
    }
    batch.push_back("+" + std::string(country_code) + digits);
    if (batch.size() >= kBatchRows) CLOZIT_TRY(flush());
  }
  if (in.bad()) return Error::Make(ErrorCode::kUnavailable, "cannot read the registry file");
  CLOZIT_TRY(flush());
  // The new copy is complete: drop what only older copies of this registry listed, and record the file.
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(
        tx.Exec("DELETE FROM dnc_entries WHERE tenant_id = $1 AND kind = 'registry' AND registry = $2 AND "
                "registry_import_id <> $3",
                {tenant.str(), registry_name, result.id.str()}));
    CLOZIT_TRY(
        tx.Exec("INSERT INTO dnc_registry_imports (id, tenant_id, registry, file_date, entries, rejected, imported_by, "
                "imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                {result.id.str(), tenant.str(), registry_name, ToUnixMillis(file_date), result.entries, result.rejected,
                 actor.id, ToUnixMillis(result.imported_at)}));
    return audit_.Record(tx, actor,
                         {"dnc.registry_import", "dnc_registry_import", result.id.str(),
                          AuditDetails({{"registry", registry_name},
                                        {"file_date", FormatRfc3339(file_date)},
                                        {"entries", result.entries},
                                        {"rejected", result.rejected}})},
                         tenant.str());
  }));
  return result;
}

Result<std::optional<RegistryImport>> DoNotCall::LatestRegistry(const TenantId& tenant, const std::string& registry) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT id, registry, file_date, entries, rejected, imported_at FROM dnc_registry_imports "
                           "WHERE tenant_id = $1 AND registry = $2 ORDER BY file_date DESC, id DESC LIMIT 1",
                           {tenant.str(), registry}));
  if (rows.empty()) return std::optional<RegistryImport>();
  const auto& row = rows.front();
  return std::optional<RegistryImport>(RegistryImport{RegistryImportId(row.Text(0)), row.Text(1),
                                                      FromUnixMillis(row.Int(2)), row.Int(3), row.Int(4),
                                                      FromUnixMillis(row.Int(5))});
}

}  // namespace clozit::contacts
