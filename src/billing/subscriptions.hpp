// billing/subscriptions: a tenant's plan (from the price book), billed per
// monthly cycle from its credits (docs/adr/0007-subscriptions-and-number-fees.md).
//
//   Subscribe  charges the plan's price for the first cycle from the tenant's
//              credits (a ledger transfer coded "subscription.cycle") and grants
//              the plan's included credits as a subscription lot expiring at
//              the cycle's end, in one linked batch; or fails with
//              kInsufficientCredits and charges nothing. Cycles are anchored at
//              the start (monthly anniversaries, clamped to the month's end).
//   Cancel     = cancel at period end (P3): the service continues to the end of
//              the paid cycle, nothing further is billed, nothing billed is
//              returned; the renewal job ends it at the period end.
//   Change     upgrade (a dearer plan): now — the price difference is charged
//              and the difference in included credits granted, expiring at the
//              same period end; downgrade: scheduled for the next cycle.
//   RenewDue   the job: every subscription whose period has ended is renewed
//              for the cycle containing now (a cycle that passed entirely while
//              nothing ran is skipped, not billed), or ended when cancelled; a
//              renewal the credits cannot pay turns the subscription past_due
//              (a `subscription.past_due` billing event) and is retried on
//              later runs.
// Subscription charges and their credits are never refundable (P3): refund
// eligibility refuses "subscription.*" transfers, subscription lots and ids.
// Money calls are idempotent by the caller's key. Thread-safe; methods block
// on the database.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "billing/ledger.hpp"
#include "billing/price_book.hpp"
#include "common/clock.hpp"
#include "common/credits.hpp"
#include "common/ids.hpp"
#include "common/result.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::billing {

struct SubscriptionTag {
  static constexpr const char* kPrefix = "sub";
};
using SubscriptionId = TypedId<SubscriptionTag>;

enum class SubscriptionStatus { kNone, kActive, kPastDue, kCanceled };
std::string_view SubscriptionStatusName(SubscriptionStatus status);  // none, active, past_due, canceled

struct Subscription {
  SubscriptionId id;  // empty with status none
  TenantId tenant_id;
  SubscriptionStatus status = SubscriptionStatus::kNone;
  std::string plan_code;
  std::string next_plan_code;  // a scheduled downgrade; empty: none
  bool cancel_at_period_end = false;
  int64_t period = 0;  // 0 = the first cycle
  TimePoint started_at;
  TimePoint current_period_start;
  TimePoint current_period_end;
  Credits price;             // what the current cycle cost (upgrades included)
  Credits included_credits;  // granted for the current cycle
  int64_t price_version = 0;
  std::optional<TimePoint> canceled_at;  // when cancellation was asked
  std::optional<TimePoint> ended_at;
};

struct SubscriptionRenewals {
  std::vector<Subscription> renewed;
  std::vector<Subscription> past_due;
  std::vector<Subscription> ended;
  std::vector<std::string> failed;  // "<subscription id>: <error>"; each stays due and is tried again next run
};

class Subscriptions {
 public:
  Subscriptions(storage::Database& db, Ledger& ledger, PriceBook& price_book, privacy::AuditLog& audit,
                const Clock& clock, Random& random)
      : db_(db), ledger_(ledger), price_book_(price_book), audit_(audit), clock_(clock), random_(random) {}

  Result<Subscription> Subscribe(const TenantId& tenant_id, const std::string& plan_code,
                                 const std::string& idempotency_key, const privacy::Actor& actor);
  /// The tenant's current (or last) subscription; status none when it never subscribed.
  Result<Subscription> Get(const TenantId& tenant_id);
  Result<Subscription> Cancel(const TenantId& tenant_id, const privacy::Actor& actor);
  Result<Subscription> Change(const TenantId& tenant_id, const std::string& plan_code, const privacy::Actor& actor);
  /// Up to `limit` due subscriptions, after the first `skip` of them (those an earlier batch of the same run
  /// left due: past due or failed), so that they do not starve the rest.
  Result<SubscriptionRenewals> RenewDue(int64_t limit = 500, int64_t skip = 0);

 private:
  storage::Database& db_;
  Ledger& ledger_;
  PriceBook& price_book_;
  privacy::AuditLog& audit_;
  const Clock& clock_;
  Random& random_;
};

}  // namespace clozit::billing
