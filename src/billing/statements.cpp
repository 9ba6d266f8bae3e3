#include "billing/statements.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <utility>

#include "billing/chart.hpp"
#include "billing/detail/store.hpp"
#include "common/encoding.hpp"

namespace clozit::billing {
namespace {

using storage::Row;
using storage::Tx;

// The transfers a statement shows, and the predicate of the tenant index (ADR 0023): every query by tenant
// repeats it word for word, so both SQLite and PostgreSQL see that the partial index covers it.
constexpr std::string_view kVisible = "kind IN ('single', 'post_pending') AND code <> 'settle'";

std::string CategoryPredicate(std::string_view category) {
  if (category == "purchase") return "code = 'grant.purchase'";
  if (category == "grant") return "(code LIKE 'grant.%' AND code <> 'grant.purchase')";
  if (category == "usage") return "code LIKE 'usage.%'";
  if (category == "refund") return "(code = 'refund' OR code LIKE 'refund.%')";
  if (category == "adjustment") return "code LIKE 'adjustment.%'";
  if (category == "expiry") return "code = 'lot_expiry'";
  if (category == "fee") return "(code LIKE 'fee.%' OR code LIKE 'subscription.%')";
  return "";
}

std::string CategoryOf(const std::string& code) {
  auto starts = [&code](std::string_view prefix) { return code.rfind(prefix, 0) == 0; };
  if (code == "grant.purchase") return "purchase";
  if (starts("grant.")) return "grant";
  if (starts("usage.")) return "usage";
  if (code == "refund" || starts("refund.")) return "refund";  // refund.provider: refunded outside Clozit
  if (starts("adjustment.")) return "adjustment";
  if (code == "lot_expiry") return "expiry";
  if (starts("fee.") || starts("subscription.")) return "fee";
  return "other";
}

Result<std::string> FilterSql(const StatementFilter& filter) {
  std::string sql;
  if (!filter.categories.empty()) {
    std::string any;
    for (const std::string& category : filter.categories) {
      std::string predicate = CategoryPredicate(category);
      if (predicate.empty()) {
        return Error::InvalidArgument("category",
                                      "category must be purchase, grant, usage, refund, adjustment, expiry or fee");
      }
      any += (any.empty() ? "" : " OR ") + predicate;
    }
    sql += " AND (" + any + ")";
  }
  return sql;
}

// Cursor: "<created_at ms>~<transfer id>" of the last entry returned, base64url-encoded, so that it travels
// in a query string as it is whatever characters the transfer id has.
std::string MakeCursor(const StatementEntry& last) {
  std::string text = std::to_string(detail::Ms(last.at)) + "~" + last.id;
  return Base64Url({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

Result<std::pair<int64_t, std::string>> ParseCursor(const std::string& cursor) {
  auto malformed = [] { return Error::InvalidArgument("cursor", "malformed cursor"); };
  auto bytes = DecodeBase64Url(cursor);
  if (!bytes) return malformed();
  std::string text(bytes->begin(), bytes->end());
  auto tilde = text.find('~');
  if (tilde == std::string::npos || tilde == 0 || tilde + 1 == text.size()) return malformed();
  int64_t at = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + tilde, at);
  if (ec != std::errc() || end != text.data() + tilde || at < 0) return malformed();
  std::string id = text.substr(tilde + 1);
  if (!IsValidUtf8(id)) return malformed();  // PostgreSQL refuses such a parameter
  return std::make_pair(at, std::move(id));
}

StatementEntry EntryFrom(const Row& row, const std::string& credits_account) {
  StatementEntry e;
  e.id = row.Text(0);
  e.at = FromUnixMillis(row.Int(1));
  e.code = row.Text(2);
  e.category = CategoryOf(e.code);
  if (e.category == "usage") e.usage_category = e.code.substr(6);
  const int64_t amount = row.Int(3);
  const bool in = row.Text(5) == credits_account;
  e.amount = Credits::FromMicros(in ? amount : -amount);
  e.reference = row.Text(6);
  return e;
}

constexpr std::string_view kSelectEntries =
    "SELECT id, created_at, code, amount, debit_account_id, credit_account_id, reference FROM ledger_transfers "
    "WHERE tenant_id = $1 AND ";

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string PeriodOf(TimePoint at, UsagePeriod period) {
  using namespace std::chrono;
  const year_month_day ymd{floor<days>(sys_time<milliseconds>(milliseconds(ToUnixMillis(at))))};
  char text[16];
  if (period == UsagePeriod::kDay) {
    std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()));
  } else {
    std::snprintf(text, sizeof text, "%04d-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()));
  }
  return text;
}

}  // namespace

Result<Page<StatementEntry>> Statements::Transactions(const TenantId& tenant_id, const StatementFilter& filter,
                                                      const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(std::string where, FilterSql(filter));
  const std::string tenant = tenant_id.str();
  const std::string account = TenantCreditsAccount(tenant).id;
  storage::Params params = {tenant};
  std::string sql = std::string(kSelectEntries) + std::string(kVisible) + where;
  if (filter.from) {
    params.push_back(detail::Ms(*filter.from));
    sql += " AND created_at >= $" + std::to_string(params.size());
  }
  if (filter.to) {
    params.push_back(detail::Ms(*filter.to));
    sql += " AND created_at < $" + std::to_string(params.size());
  }
  if (!page.cursor.empty()) {
    CLOZIT_ASSIGN_OR_RETURN(auto cursor, ParseCursor(page.cursor));
    params.push_back(cursor.first);
    params.push_back(cursor.second);
    const std::string at = "$" + std::to_string(params.size() - 1);
    const std::string id = "$" + std::to_string(params.size());
    sql += " AND (created_at < " + at + " OR (created_at = " + at + " AND id < " + id + "))";
  }
  params.push_back(page.limit + 1);
  sql += " ORDER BY created_at DESC, id DESC LIMIT $" + std::to_string(params.size());
  Page<StatementEntry> out;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    out = {};
    CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query(sql, params));
    for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
      out.items.push_back(EntryFrom(rows[i], account));
    }
    if (static_cast<int64_t>(rows.size()) > page.limit) {
      out.next_cursor = MakeCursor(out.items.back());
    }
    return Ok();
  }));
  return out;
}

Result<std::string> Statements::TransactionsCsv(const TenantId& tenant_id, const StatementFilter& filter,
                                                size_t max_rows) {
  std::vector<StatementEntry> all;
  PageRequest page{PageRequest::kMaxLimit, ""};
  do {
    CLOZIT_ASSIGN_OR_RETURN(auto chunk, Transactions(tenant_id, filter, page));
    all.insert(all.end(), chunk.items.begin(), chunk.items.end());
    // One request must not hold an unbounded history in memory: larger exports go by date range.
    if (all.size() > max_rows) {
      return Error::InvalidArgument(
          "from", "more than " + std::to_string(max_rows) + " transactions: export a shorter period (from, to)");
    }
    page.cursor = chunk.next_cursor;
  } while (!page.cursor.empty());
  std::string csv = "id,created_at,category,usage_category,code,amount,reference\r\n";
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    csv += CsvField(it->id) + "," + FormatRfc3339(it->at) + "," + it->category + "," + it->usage_category + "," +
           CsvField(it->code) + "," + it->amount.ToString() + "," + CsvField(it->reference) + "\r\n";
  }
  return csv;
}

Result<std::vector<UsageRow>> Statements::Usage(const TenantId& tenant_id, UsagePeriod period, TimePoint from,
                                                TimePoint to) {
  if (to <= from) return Error::InvalidArgument("to", "to must be after from");
  std::map<std::pair<std::string, std::string>, UsageRow> rows;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    rows.clear();
    CLOZIT_ASSIGN_OR_RETURN(
        auto found,
        tx.Query("SELECT code, amount, created_at FROM ledger_transfers WHERE tenant_id = $1 AND " +
                     std::string(kVisible) + " AND code LIKE 'usage.%' AND created_at >= $2 AND created_at < $3",
                 {tenant_id.str(), detail::Ms(from), detail::Ms(to)}));
    for (const Row& row : found) {
      std::string key_period = PeriodOf(FromUnixMillis(row.Int(2)), period);
      std::string category = row.Text(0).substr(6);
      UsageRow& entry = rows[{key_period, category}];
      entry.period = key_period;
      entry.category = category;
      entry.amount = Credits::FromMicros(entry.amount.micros() + row.Int(1));
      ++entry.charges;
    }
    return Ok();
  }));
  std::vector<UsageRow> out;
  for (auto& [key, row] : rows) out.push_back(std::move(row));
  return out;
}

Result<void> Statements::SetLowBalanceThreshold(const TenantId& tenant_id, Credits threshold,
                                                const privacy::Actor& actor) {
  if (threshold.micros() < 0) return Error::InvalidArgument("threshold", "threshold must not be negative");
  const TimePoint now = clock_.Now();
  return db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto known, tx.Query("SELECT 1 FROM tenants WHERE id = $1", {tenant_id.str()}));
    if (known.empty()) return Error::NotFound("tenant " + tenant_id.str() + " not found");
    // A new threshold is a new crossing to report.
    CLOZIT_TRY(
        tx.Exec("INSERT INTO billing_balance_settings (tenant_id, low_balance_micros, low_notified, "
                "depleted_notified, updated_at) VALUES ($1, $2, 0, 0, $3) ON CONFLICT (tenant_id) DO UPDATE "
                "SET low_balance_micros = excluded.low_balance_micros, low_notified = 0, "
                "updated_at = excluded.updated_at",
                {tenant_id.str(), threshold.micros(), detail::Ms(now)}));
    nlohmann::json details = {{"threshold", threshold.ToString()}};
    CLOZIT_TRY(audit_.Record(tx, actor, {"credits.low_balance_threshold", "tenant", tenant_id.str(), details.dump()},
                             tenant_id.str()));
    return RecordBalanceEvents(tx, tenant_id.str(), now, random_);
  });
}

Result<Credits> Statements::LowBalanceThreshold(const TenantId& tenant_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT low_balance_micros FROM billing_balance_settings WHERE "
                                               "tenant_id = $1",
                                               {tenant_id.str()}));
  return Credits::FromMicros(rows.empty() ? 0 : rows.front().Int(0));
}

Result<Page<BalanceEvent>> Statements::BalanceEvents(const TenantId& tenant_id, const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT id, tenant_id, kind, available, threshold, created_at FROM "
                                               "billing_balance_events WHERE tenant_id = $1 AND ($2 = '' OR id < $2) "
                                               "ORDER BY id DESC LIMIT $3",
                                               {tenant_id.str(), page.cursor, page.limit + 1}));
  Page<BalanceEvent> out;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
    const Row& row = rows[i];
    out.items.push_back({row.Text(0), TenantId(row.Text(1)), row.Text(2), Credits::FromMicros(row.Int(3)),
                         Credits::FromMicros(row.Int(4)), FromUnixMillis(row.Int(5))});
  }
  if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id;
  return out;
}

Result<void> RecordBillingEvent(Tx& tx, const std::string& tenant_id, std::string_view kind,
                                const std::string& subject_id, const std::string& details, TimePoint now,
                                Random& random) {
  ManualClock at(now);
  const std::string id = TypedId<BillingEventTag>::New(at, random).str();
  CLOZIT_TRY(
      tx.Exec("INSERT INTO billing_events (id, tenant_id, kind, subject_id, details, created_at) "
              "VALUES ($1, $2, $3, $4, $5, $6)",
              {id, tenant_id, std::string(kind), subject_id, details, detail::Ms(now)}));
  return Ok();
}

BalanceWatch BalanceWatchFromRow(const Row& row, size_t first) {
  Account account;
  account.debits_pending = Credits::FromMicros(row.Int(first));
  account.debits_posted = Credits::FromMicros(row.Int(first + 1));
  account.credits_posted = Credits::FromMicros(row.Int(first + 2));
  // No settings row: nulls, read as 0.
  return {account.Available(), row.Int(first + 3), row.Bool(first + 4), row.Bool(first + 5)};
}

Result<void> RecordBalanceEvents(Tx& tx, const std::string& tenant_id, TimePoint now, Random& random) {
  // The balance and the tenant's settings in one statement.
  CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT " + std::string(kBalanceWatchColumns) +
                                                  " FROM ledger_accounts a LEFT JOIN billing_balance_settings s "
                                                  "ON s.tenant_id = $2 WHERE a.id = $1",
                                              {TenantCreditsAccount(tenant_id).id, tenant_id}));
  if (rows.empty()) return Ok();
  return RecordBalanceEvents(tx, tenant_id, BalanceWatchFromRow(rows.front(), 0), now, random);
}

Result<void> RecordBalanceEvents(Tx& tx, const std::string& tenant_id, const BalanceWatch& watch, TimePoint now,
                                 Random& random) {
  const Credits available = watch.available;
  const int64_t threshold = watch.threshold;
  const bool low = threshold > 0 && available.micros() < threshold;
  const bool depleted = available.micros() <= 0;
  if (low == watch.low_notified && depleted == watch.depleted_notified) return Ok();
  auto record = [&](const char* kind) -> Result<void> {
    ManualClock at(now);
    const std::string id = TypedId<BalanceEventTag>::New(at, random).str();
    CLOZIT_TRY(
        tx.Exec("INSERT INTO billing_balance_events (id, tenant_id, kind, available, threshold, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                {id, tenant_id, std::string(kind), available.micros(), threshold, detail::Ms(now)}));
    return Ok();
  };
  if (low && !watch.low_notified) CLOZIT_TRY(record("balance.low"));
  if (depleted && !watch.depleted_notified) CLOZIT_TRY(record("credits.depleted"));
  // An upsert: concurrent settles of one tenant must not collide on the first row.
  CLOZIT_TRY(
      tx.Exec("INSERT INTO billing_balance_settings (tenant_id, low_balance_micros, low_notified, "
              "depleted_notified, updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE "
              "SET low_notified = excluded.low_notified, depleted_notified = excluded.depleted_notified, "
              "updated_at = excluded.updated_at",
              {tenant_id, threshold, int64_t{low}, int64_t{depleted}, detail::Ms(now)}));
  return Ok();
}

}  // namespace clozit::billing
