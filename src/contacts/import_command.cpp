#include "contacts/import_command.hpp"

#include <date/date.h>

#include <chrono>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "contacts/contacts.hpp"
#include "contacts/dnc.hpp"
#include "contacts/importer.hpp"
#include "contacts/phone_numbers.hpp"
#include "contacts/time_zones.hpp"
#include "privacy/audit_log.hpp"

namespace clozit::contacts {
namespace {

std::string Thousands(uint64_t value) {
  std::string digits = std::to_string(value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string Summary(const ImportJob& job) {
  return Thousands(job.rows_read) + " rows: " + Thousands(job.accepted) + " accepted, " + Thousands(job.rejected) +
         " rejected, " + Thousands(job.duplicates) + " duplicates, " + Thousands(job.on_dnc) +
         " on a do-not-call list (job " + job.id.str() + ", " + job.status + ")";
}

}  // namespace

Result<TimePoint> ParseTimestamp(std::string_view text, const std::string& field) {
  // YYYY-MM-DD, optionally followed by T or a space, HH:MM:SS, a fraction, and Z or ±HH:MM.
  auto fail = [&] { return Error::InvalidArgument(field, field + " must be a date (2025-11-01) or an RFC 3339 time"); };
  size_t position = 0;
  auto number = [&](size_t digits, int& out) {
    if (position + digits > text.size()) return false;
    out = 0;
    for (size_t i = 0; i < digits; ++i) {
      char c = text[position + i];
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    position += digits;
    return true;
  };
  auto expect = [&](char c) {
    if (position >= text.size() || text[position] != c) return false;
    ++position;
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!number(4, year) || !expect('-') || !number(2, month) || !expect('-') || !number(2, day)) return fail();
  date::year_month_day ymd{date::year(year), date::month(static_cast<unsigned>(month)),
                           date::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return fail();
  std::chrono::microseconds fraction{0};
  std::chrono::minutes offset{0};
  if (position < text.size()) {
    if (!expect('T') && !expect(' ')) return fail();
    if (!number(2, hour) || !expect(':') || !number(2, minute) || !expect(':') || !number(2, second)) return fail();
    if (hour > 23 || minute > 59 || second > 60) return fail();
    if (expect('.')) {
      int64_t scale = 100000;
      size_t start = position;
      while (position < text.size() && text[position] >= '0' && text[position] <= '9') {
        fraction += std::chrono::microseconds((text[position] - '0') * scale);
        scale /= 10;
        ++position;
      }
      if (position == start) return fail();
    }
    if (expect('Z')) {
      // UTC
    } else if (position < text.size() && (text[position] == '+' || text[position] == '-')) {
      int sign = text[position] == '-' ? -1 : 1;
      ++position;
      int offset_hours = 0, offset_minutes = 0;
      if (!number(2, offset_hours) || !expect(':') || !number(2, offset_minutes)) return fail();
      offset = std::chrono::minutes(sign * (offset_hours * 60 + offset_minutes));
    } else if (position < text.size()) {
      return fail();
    }
  }
  if (position != text.size()) return fail();
  return TimePoint(date::sys_days(ymd)) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         std::chrono::seconds(second) + fraction - offset;
}

Result<std::string> RunImportCommand(storage::Database& db, const ImportCommand& command, std::ostream& progress,
                                     bool progress_is_terminal) {
  SystemClock clock;
  SystemRandom random;
  privacy::AuditLog audit(clock, random);
  TimeZoneTable zones;
  PhoneNumbers numbers(zones);
  Contacts contacts(db, clock, random, audit, numbers);
  DoNotCall dnc(db, clock, random, audit, numbers);
  ImporterSettings settings;
  settings.batch_rows = command.batch_rows;
  Importer importer(db, clock, random, audit, numbers, contacts, dnc, settings);
  TenantId tenant(command.tenant_id);
  privacy::Actor actor{"system", "cli", tenant.str(), "local", "cli"};

  ImportId id(command.resume_id);
  if (command.resume_id.empty()) {
    std::optional<ContactListId> list_id;
    if (!command.list_name.empty()) {
      // The list by name, or a new one.
      std::string cursor;
      for (;;) {
        CLOZIT_ASSIGN_OR_RETURN(auto page, contacts.ListLists(tenant, {200, cursor}));
        for (const auto& list : page.items) {
          if (list.name == command.list_name) list_id = list.id;
        }
        if (list_id || page.next_cursor.empty()) break;
        cursor = page.next_cursor;
      }
      if (!list_id) {
        CLOZIT_ASSIGN_OR_RETURN(auto created, contacts.CreateList(tenant, command.list_name, actor));
        list_id = created.id;
      }
    }
    ImportRequest request;
    request.file_path = command.file;
    request.file_name = command.file.substr(command.file.find_last_of('/') + 1);
    request.list_id = list_id;
    request.consent.type = command.consent_type;
    request.consent.obtained_where = command.consent_where;
    if (!command.consent_at.empty()) {
      CLOZIT_ASSIGN_OR_RETURN(request.consent.obtained_at, ParseTimestamp(command.consent_at, "consent.obtained_at"));
    }
    request.consent.evidence = command.consent_evidence;
    request.consent.attested_by = command.attested_by;
    request.options.default_country = command.default_country;
    request.options.tags = command.tags;
    for (const auto& mapping : command.mappings) {
      size_t equals = mapping.find('=');
      if (equals == std::string::npos || equals == 0) {
        return Error::InvalidArgument("map", "--map takes field=Header name, e.g. phone=Cell");
      }
      request.options.mapping[mapping.substr(0, equals)] = mapping.substr(equals + 1);
    }
    CLOZIT_ASSIGN_OR_RETURN(auto job, importer.Create(tenant, request, actor));
    id = job.id;
  }

  auto started = std::chrono::steady_clock::now();
  auto last_draw = started - std::chrono::seconds(1);
  auto draw = [&](const ImportJob& job, bool final) {
    if (!command.progress_bar || !progress_is_terminal) return;
    auto now = std::chrono::steady_clock::now();
    if (!final && now - last_draw < std::chrono::milliseconds(200)) return;
    last_draw = now;
    double fraction = job.file_bytes == 0 ? 1.0 : static_cast<double>(job.bytes_read) / job.file_bytes;
    constexpr int kWidth = 30;
    int filled = static_cast<int>(fraction * kWidth);
    double seconds = std::chrono::duration<double>(now - started).count();
    std::ostringstream line;
    line << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] " << std::setw(3)
         << static_cast<int>(fraction * 100) << "%  " << Thousands(job.rows_read) << " rows  "
         << Thousands(job.accepted) << " accepted  " << Thousands(job.rejected) << " rejected  "
         << Thousands(job.duplicates) << " dup  " << std::fixed << std::setprecision(1) << seconds << " s ";
    progress << line.str() << (final ? "\n" : "") << std::flush;
  };
  CLOZIT_ASSIGN_OR_RETURN(auto job, importer.Run(tenant, id, [&](const ImportJob& p) { draw(p, false); }));
  draw(job, true);

  if (!command.rejected_out.empty()) {
    std::ofstream out(command.rejected_out, std::ios::binary | std::ios::trunc);
    if (!out) return Error::InvalidArgument("rejected-out", "cannot write " + command.rejected_out);
    CLOZIT_TRY(importer.ExportRejected(tenant, job.id, out));
  }
  return Summary(job);
}

}  // namespace clozit::contacts
