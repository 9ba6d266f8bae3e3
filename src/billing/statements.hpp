// billing/statements: what a tenant sees of its credits — the balance (see
// Charging::Balance), the transactions that moved it, usage by category per
// day or month, a CSV export, and low-balance / depleted events.
//
// A statement lists the posted movements of the tenant's credits, each with a
// category: purchase, grant (promotional, subscription), usage (with its usage
// category), refund, adjustment, expiry, fee. Reservation mechanics (holds,
// their posts, voids, expiries) are not shown: the usage items they settle
// are. Amounts are signed: + into the tenant's credits, − out of them.
// Pages run newest first; the cursor is opaque.
//
// Balance events: a tenant sets a low-balance threshold; whenever credits are
// spent (Charging::Settle) or leave by refund, RecordBalanceEvents compares
// the available balance with it and records `balance.low` once per crossing
// and `credits.depleted` once when nothing is left, for the outbound webhooks
// that come later (billing_balance_events, delivered_at NULL).
// Thread-safe; methods block on the database.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/credits.hpp"
#include "common/ids.hpp"
#include "common/page.hpp"
#include "common/result.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::billing {

/// "purchase", "grant", "usage", "refund", "adjustment", "expiry", "fee", "other".
inline constexpr std::string_view kStatementCategories[] = {"purchase",   "grant",  "usage", "refund",
                                                            "adjustment", "expiry", "fee",   "other"};

struct StatementEntry {
  std::string id;  // the ledger transfer
  TimePoint at;
  std::string category;        // one of kStatementCategories
  std::string usage_category;  // usage only: call_minutes, ai_processing, ...
  std::string code;            // the ledger code, e.g. "usage.call_minutes"
  Credits amount;              // signed
  std::string reference;       // reservation, purchase, request ...
};

struct StatementFilter {
  std::vector<std::string> categories;  // empty: all
  std::optional<TimePoint> from;        // inclusive
  std::optional<TimePoint> to;          // exclusive
};

enum class UsagePeriod { kDay, kMonth };

struct UsageRow {
  std::string period;    // "2026-11-26" or "2026-11" (UTC)
  std::string category;  // usage category
  Credits amount;        // charged, net of credit adjustments is not applied
  int64_t charges = 0;
};

struct BalanceEvent {
  std::string id;
  TenantId tenant_id;
  std::string kind;  // balance.low | credits.depleted
  Credits available;
  Credits threshold;
  TimePoint created_at;
};

struct BalanceEventTag {
  static constexpr const char* kPrefix = "bev";
};

class Statements {
 public:
  Statements(storage::Database& db, privacy::AuditLog& audit, const Clock& clock, Random& random)
      : db_(db), audit_(audit), clock_(clock), random_(random) {}

  Result<Page<StatementEntry>> Transactions(const TenantId& tenant_id, const StatementFilter& filter,
                                            const PageRequest& page);
  /// Every matching entry, oldest first, as CSV with a header line (RFC 4180).
  /// More than `max_rows` transactions is invalid_argument on "from": export a shorter period.
  Result<std::string> TransactionsCsv(const TenantId& tenant_id, const StatementFilter& filter,
                                      size_t max_rows = kMaxCsvRows);
  static constexpr size_t kMaxCsvRows = 100'000;
  Result<std::vector<UsageRow>> Usage(const TenantId& tenant_id, UsagePeriod period, TimePoint from, TimePoint to);

  Result<void> SetLowBalanceThreshold(const TenantId& tenant_id, Credits threshold, const privacy::Actor& actor);
  /// Zero when never set.
  Result<Credits> LowBalanceThreshold(const TenantId& tenant_id);
  Result<Page<BalanceEvent>> BalanceEvents(const TenantId& tenant_id, const PageRequest& page);

 private:
  storage::Database& db_;
  privacy::AuditLog& audit_;
  const Clock& clock_;
  Random& random_;
};

struct BillingEventTag {
  static constexpr const char* kPrefix = "evt";
};

/// Records a billing event (number.past_due, number.release_due,
/// subscription.past_due, ...) for the outbound webhooks, inside the caller's
/// transaction. `details` is a JSON object.
Result<void> RecordBillingEvent(storage::Tx& tx, const std::string& tenant_id, std::string_view kind,
                                const std::string& subject_id, const std::string& details, TimePoint now,
                                Random& random);

/// Compares the tenant's available credits with its threshold and records the
/// events due, inside the caller's transaction.
Result<void> RecordBalanceEvents(storage::Tx& tx, const std::string& tenant_id, TimePoint now, Random& random);
/// What RecordBalanceEvents compares: the tenant's available credits after the caller's change and its
/// settings as stored (no settings row: threshold 0, nothing notified).
struct BalanceWatch {
  Credits available;
  int64_t threshold = 0;
  bool low_notified = false;
  bool depleted_notified = false;
};
/// The columns of a BalanceWatch for a caller's own SELECT, `a` being the tenant's credits account and `s`
/// its billing_balance_settings row (LEFT JOINed: it may not exist); BalanceWatchFromRow reads them from
/// column `first` on, as the account holds them then.
inline constexpr std::string_view kBalanceWatchColumns =
    "a.debits_pending, a.debits_posted, a.credits_posted, s.low_balance_micros, s.low_notified, s.depleted_notified";
BalanceWatch BalanceWatchFromRow(const storage::Row& row, size_t first);
/// The same with `watch` known to the caller (read in its own statement, in this transaction, and moved by
/// what it wrote since): the settle path spares a read.
Result<void> RecordBalanceEvents(storage::Tx& tx, const std::string& tenant_id, const BalanceWatch& watch,
                                 TimePoint now, Random& random);

}  // namespace clozit::billing
