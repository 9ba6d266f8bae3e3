#include "billing/subscriptions.hpp"

#include <nlohmann/json.hpp>

#include <utility>

#include "billing/chart.hpp"
#include "billing/detail/periods.hpp"
#include "billing/detail/store.hpp"
#include "billing/statements.hpp"
#include "storage/find_one.hpp"

namespace clozit::billing {
namespace {

using json = nlohmann::json;
using storage::Row;
using storage::Tx;

constexpr std::string_view kRevenueCode = "subscription";
const privacy::Actor kSystem{"system", "billing"};

constexpr std::string_view kSelect =
    "SELECT s.id, s.tenant_id, s.status, s.plan_code, s.next_plan_code, s.cancel_at_period_end, s.period, "
    "s.started_at, s.period_start, s.period_end, s.canceled_at, s.ended_at, s.idempotency_key, "
    "(SELECT COALESCE(SUM(c.price), 0) FROM billing_subscription_charges c "
    " WHERE c.subscription_id = s.id AND c.period = s.period), "
    "(SELECT COALESCE(SUM(c.included_credits), 0) FROM billing_subscription_charges c "
    " WHERE c.subscription_id = s.id AND c.period = s.period), "
    "(SELECT COALESCE(MAX(c.price_version), 0) FROM billing_subscription_charges c "
    " WHERE c.subscription_id = s.id AND c.period = s.period) "
    "FROM billing_subscriptions s ";

std::optional<SubscriptionStatus> ParseStatus(std::string_view text) {
  for (SubscriptionStatus status :
       {SubscriptionStatus::kActive, SubscriptionStatus::kPastDue, SubscriptionStatus::kCanceled}) {
    if (SubscriptionStatusName(status) == text) return status;
  }
  return std::nullopt;
}

struct Stored {
  Subscription view;
  std::string idempotency_key;
};

Stored From(const Row& row) {
  Stored stored;
  Subscription& s = stored.view;
  s.id = SubscriptionId(row.Text(0));
  s.tenant_id = TenantId(row.Text(1));
  s.status = ParseStatus(row.Text(2)).value_or(SubscriptionStatus::kActive);
  s.plan_code = row.Text(3);
  s.next_plan_code = row.Text(4);
  s.cancel_at_period_end = row.Bool(5);
  s.period = row.Int(6);
  s.started_at = FromUnixMillis(row.Int(7));
  s.current_period_start = FromUnixMillis(row.Int(8));
  s.current_period_end = FromUnixMillis(row.Int(9));
  s.canceled_at = detail::OptionalTime(row, 10);
  s.ended_at = detail::OptionalTime(row, 11);
  stored.idempotency_key = row.Text(12);
  s.price = Credits::FromMicros(row.Int(13));
  s.included_credits = Credits::FromMicros(row.Int(14));
  s.price_version = row.Int(15);
  return stored;
}

Result<std::optional<Stored>> Find(Tx& tx, std::string_view where, const storage::Params& params) {
  return storage::FindOne(tx, std::string(kSelect) + std::string(where), params, From);
}

// The tenant's live (active or past-due) subscription.
Result<std::optional<Stored>> FindLive(Tx& tx, const std::string& tenant) {
  return Find(tx, "WHERE s.tenant_id = $1 AND s.status <> 'canceled'", {tenant});
}

Result<Stored> RequireLive(Tx& tx, const std::string& tenant) {
  CLOZIT_ASSIGN_OR_RETURN(auto live, FindLive(tx, tenant));
  if (!live) return Error::NotFound("no active subscription");
  return std::move(*live);
}

Result<PlanPrice> PlanAt(PriceBook& book, Tx& tx, const std::string& code, TimePoint at, int64_t* version) {
  CLOZIT_ASSIGN_OR_RETURN(PriceBookVersion effective, book.Effective(tx, at));
  const PlanPrice* plan = effective.content.FindPlan(code);
  if (plan == nullptr) {
    return Error::Make(ErrorCode::kInvalidArgument,
                       "no plan \"" + code + "\" in price book version " + std::to_string(effective.version), "plan");
  }
  *version = effective.version;
  return *plan;
}

// Charges `price` from the tenant's credits and grants `included` as a
// subscription lot that expires at `expires_at`, in one linked batch, and
// records the charge. Returns kInsufficientCredits (nothing written) when the
// credits do not cover the price.
Result<void> ChargeCycle(Tx& tx, Ledger& ledger, const Subscription& sub, const std::string& kind,
                         const std::string& plan_code, Credits price, Credits included, int64_t version,
                         TimePoint expires_at, TimePoint now) {
  const std::string tenant = sub.tenant_id.str();
  const std::string prefix = "sub/" + sub.id.str() + "/" + std::to_string(sub.period) + "/" + kind;
  CLOZIT_ASSIGN_OR_RETURN(auto credits, detail::FindAccount(tx, TenantCreditsAccount(tenant).id));
  if (!credits) {
    return Error::Make(ErrorCode::kInsufficientCredits,
                       "insufficient credits: 0 available, " + price.ToString() + " due for the plan", "plan");
  }
  const int shard = PlatformShard(tenant);
  CLOZIT_ASSIGN_OR_RETURN(Account revenue, ledger.OpenAccount(tx, FeeRevenueAccount(kRevenueCode, shard)));
  std::vector<TransferSpec> batch;
  TransferSpec charge;
  charge.id = prefix + "/charge";
  charge.debit_account_id = credits->id;
  charge.credit_account_id = revenue.id;
  charge.amount = price;
  charge.code = kind == "cycle" ? "subscription.cycle" : "subscription.upgrade";
  charge.reference = sub.id.str();
  batch.push_back(charge);
  if (included.micros() > 0) {
    CLOZIT_ASSIGN_OR_RETURN(Account issuance, ledger.OpenAccount(tx, IssuanceAccount(LotKind::kSubscription, shard)));
    TransferSpec grant;
    grant.id = prefix + "/allowance";
    grant.debit_account_id = issuance.id;
    grant.credit_account_id = credits->id;
    grant.amount = included;
    grant.code = "grant.subscription";
    grant.reference = sub.id.str();
    grant.new_lot = LotSpec{LotKind::kSubscription, 0, expires_at};
    batch.push_back(grant);
  }
  auto applied = ledger.CreateTransfers(tx, batch, now);
  if (!applied) {
    Error error = applied.error();
    if (error.code == ErrorCode::kInsufficientCredits) error.field = "plan";
    return error;
  }
  storage::Value lot = nullptr;
  if (included.micros() > 0) {
    CLOZIT_ASSIGN_OR_RETURN(
        auto lots, tx.Query("SELECT id FROM ledger_lots WHERE source_transfer_id = $1", {prefix + "/allowance"}));
    if (!lots.empty()) lot = lots.front().Text(0);
  }
  CLOZIT_TRY(
      tx.Exec("INSERT INTO billing_subscription_charges (subscription_id, period, kind, plan_code, price, "
              "included_credits, price_version, charge_transfer_id, lot_id, created_at) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
              {sub.id.str(), sub.period, kind, plan_code, price.micros(), included.micros(), version, charge.id, lot,
               detail::Ms(now)}));
  return Ok();
}

}  // namespace

std::string_view SubscriptionStatusName(SubscriptionStatus status) {
  switch (status) {
    case SubscriptionStatus::kNone:
      return "none";
    case SubscriptionStatus::kActive:
      return "active";
    case SubscriptionStatus::kPastDue:
      return "past_due";
    case SubscriptionStatus::kCanceled:
      return "canceled";
  }
  return "unknown";
}

Result<Subscription> Subscriptions::Subscribe(const TenantId& tenant_id, const std::string& plan_code,
                                              const std::string& idempotency_key, const privacy::Actor& actor) {
  if (!TenantId::Valid(tenant_id.str())) return Error::InvalidArgument("tenant_id", "not a tenant id");
  if (plan_code.empty() || plan_code.size() > 50) return Error::InvalidArgument("plan", "plan is required");
  if (!detail::ValidKey(idempotency_key)) {
    return Error::InvalidArgument("Idempotency-Key", "subscribing moves money: send an Idempotency-Key");
  }
  const std::string tenant = tenant_id.str();
  Subscription result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    const TimePoint now = detail::Truncate(clock_.Now());
    CLOZIT_ASSIGN_OR_RETURN(auto replay,
                            Find(tx, "WHERE s.tenant_id = $1 AND s.idempotency_key = $2", {tenant, idempotency_key}));
    if (replay) {
      CLOZIT_ASSIGN_OR_RETURN(auto first, tx.Query("SELECT plan_code FROM billing_subscription_charges "
                                                   "WHERE subscription_id = $1 AND period = 0 AND kind = 'cycle'",
                                                   {replay->view.id.str()}));
      if (first.empty() || first.front().Text(0) != plan_code) {
        return Error::Make(ErrorCode::kIdempotencyMismatch,
                           "idempotency key " + idempotency_key + " was used to subscribe to another plan",
                           "Idempotency-Key");
      }
      result = std::move(replay->view);
      return Ok();
    }
    int64_t version = 0;
    CLOZIT_ASSIGN_OR_RETURN(PlanPrice plan, PlanAt(price_book_, tx, plan_code, now, &version));
    CLOZIT_ASSIGN_OR_RETURN(auto live, FindLive(tx, tenant));
    if (live) {
      return Error::Make(ErrorCode::kConflict, "the tenant already has a subscription to " + live->view.plan_code +
                                                   " (" + std::string(SubscriptionStatusName(live->view.status)) +
                                                   "); change the plan instead");
    }
    Subscription sub;
    sub.id = SubscriptionId::New(clock_, random_);
    sub.tenant_id = tenant_id;
    const TimePoint end = detail::AddMonthsClamped(now, 1);
    CLOZIT_TRY(
        tx.Exec("INSERT INTO billing_subscriptions (id, tenant_id, idempotency_key, status, plan_code, "
                "cancel_at_period_end, period, started_at, period_start, period_end, created_at, updated_at) "
                "VALUES ($1, $2, $3, 'active', $4, 0, 0, $5, $5, $6, $5, $5)",
                {sub.id.str(), tenant, idempotency_key, plan_code, detail::Ms(now), detail::Ms(end)}));
    CLOZIT_TRY(ChargeCycle(tx, ledger_, sub, "cycle", plan_code, plan.price_per_cycle, plan.included_credits, version,
                           end, now));
    json details = {{"plan", plan_code},
                    {"price", plan.price_per_cycle.ToString()},
                    {"included_credits", plan.included_credits.ToString()},
                    {"price_version", version},
                    {"period_end", FormatRfc3339(end)}};
    CLOZIT_TRY(audit_.Record(tx, actor, {"subscription.create", "subscription", sub.id.str(), details.dump()}, tenant));
    CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
    CLOZIT_ASSIGN_OR_RETURN(auto stored, Find(tx, "WHERE s.id = $1", {sub.id.str()}));
    result = std::move(stored->view);
    return Ok();
  }));
  return result;
}

Result<Subscription> Subscriptions::Get(const TenantId& tenant_id) {
  Subscription result;
  result.tenant_id = tenant_id;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(
        auto latest,
        Find(tx, "WHERE s.tenant_id = $1 ORDER BY s.created_at DESC, s.id DESC LIMIT 1", {tenant_id.str()}));
    if (latest) result = std::move(latest->view);
    return Ok();
  }));
  return result;
}

Result<Subscription> Subscriptions::Cancel(const TenantId& tenant_id, const privacy::Actor& actor) {
  const std::string tenant = tenant_id.str();
  Subscription result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    const TimePoint now = detail::Truncate(clock_.Now());
    CLOZIT_ASSIGN_OR_RETURN(Stored stored, RequireLive(tx, tenant));
    const Subscription& sub = stored.view;
    if (sub.status == SubscriptionStatus::kPastDue) {
      // An unpaid cycle gives no service to continue: it ends now, and nothing is billed for it.
      CLOZIT_TRY(
          tx.Exec("UPDATE billing_subscriptions SET status = 'canceled', cancel_at_period_end = 1, canceled_at = $2, "
                  "ended_at = $2, next_plan_code = NULL, updated_at = $2 WHERE id = $1",
                  {sub.id.str(), detail::Ms(now)}));
    } else if (!sub.cancel_at_period_end) {
      // P3: effective from the next cycle; the paid one runs to its end and nothing is returned.
      CLOZIT_TRY(
          tx.Exec("UPDATE billing_subscriptions SET cancel_at_period_end = 1, canceled_at = $2, "
                  "next_plan_code = NULL, updated_at = $2 WHERE id = $1",
                  {sub.id.str(), detail::Ms(now)}));
    }
    if (!sub.cancel_at_period_end) {
      json details = {{"plan", sub.plan_code}, {"service_until", FormatRfc3339(sub.current_period_end)}};
      CLOZIT_TRY(
          audit_.Record(tx, actor, {"subscription.cancel", "subscription", sub.id.str(), details.dump()}, tenant));
    }
    CLOZIT_ASSIGN_OR_RETURN(auto now_stored, Find(tx, "WHERE s.id = $1", {sub.id.str()}));
    result = std::move(now_stored->view);
    return Ok();
  }));
  return result;
}

Result<Subscription> Subscriptions::Change(const TenantId& tenant_id, const std::string& plan_code,
                                           const privacy::Actor& actor) {
  if (plan_code.empty() || plan_code.size() > 50) return Error::InvalidArgument("plan", "plan is required");
  const std::string tenant = tenant_id.str();
  Subscription result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    const TimePoint now = detail::Truncate(clock_.Now());
    CLOZIT_ASSIGN_OR_RETURN(Stored stored, RequireLive(tx, tenant));
    const Subscription& sub = stored.view;
    if (sub.status != SubscriptionStatus::kActive || sub.cancel_at_period_end) {
      return Error::Make(ErrorCode::kConflict,
                         "only an active subscription that is not being cancelled can change plan");
    }
    int64_t version = 0;
    CLOZIT_ASSIGN_OR_RETURN(PlanPrice target, PlanAt(price_book_, tx, plan_code, now, &version));
    json details = {{"from", sub.plan_code}, {"to", plan_code}};
    if (plan_code == sub.plan_code) {
      // Back to the current plan: a scheduled downgrade is called off.
      CLOZIT_TRY(tx.Exec("UPDATE billing_subscriptions SET next_plan_code = NULL, updated_at = $2 WHERE id = $1",
                         {sub.id.str(), detail::Ms(now)}));
      details["effective"] = "unchanged";
    } else if (target.price_per_cycle > sub.price && now >= sub.current_period_end) {
      // The paid period is over and its renewal not yet run: an upgrade now would charge the difference for a
      // period already past (and grant credits that expire at once).
      return Error::Make(ErrorCode::kConflict,
                         "the current period has ended and its renewal is pending; upgrade once it has renewed");
    } else if (target.price_per_cycle > sub.price) {
      // Upgrade now: the difference in price is charged, the difference in included credits granted to period end.
      CLOZIT_ASSIGN_OR_RETURN(Credits difference, target.price_per_cycle.Subtract(sub.price));
      Credits extra = target.included_credits > sub.included_credits
                          ? Credits::FromMicros(target.included_credits.micros() - sub.included_credits.micros())
                          : Credits();
      CLOZIT_TRY(ChargeCycle(tx, ledger_, sub, "upgrade:" + plan_code, plan_code, difference, extra, version,
                             sub.current_period_end, now));
      CLOZIT_TRY(
          tx.Exec("UPDATE billing_subscriptions SET plan_code = $2, next_plan_code = NULL, updated_at = $3 "
                  "WHERE id = $1",
                  {sub.id.str(), plan_code, detail::Ms(now)}));
      details["effective"] = "now";
      details["charged"] = difference.ToString();
      details["granted"] = extra.ToString();
      CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
    } else {
      // Downgrade at the next cycle: the paid one keeps its plan and credits.
      CLOZIT_TRY(tx.Exec("UPDATE billing_subscriptions SET next_plan_code = $2, updated_at = $3 WHERE id = $1",
                         {sub.id.str(), plan_code, detail::Ms(now)}));
      details["effective"] = FormatRfc3339(sub.current_period_end);
    }
    CLOZIT_TRY(audit_.Record(tx, actor, {"subscription.change", "subscription", sub.id.str(), details.dump()}, tenant));
    CLOZIT_ASSIGN_OR_RETURN(auto changed, Find(tx, "WHERE s.id = $1", {sub.id.str()}));
    result = std::move(changed->view);
    return Ok();
  }));
  return result;
}

Result<SubscriptionRenewals> Subscriptions::RenewDue(int64_t limit, int64_t skip) {
  const TimePoint now = detail::Truncate(clock_.Now());
  CLOZIT_ASSIGN_OR_RETURN(auto due, db_.Query("SELECT id FROM billing_subscriptions WHERE status <> 'canceled' "
                                              "AND period_end <= $1 ORDER BY period_end, id LIMIT $2 OFFSET $3",
                                              {detail::Ms(now), limit, skip}));
  SubscriptionRenewals report;
  // One transaction per subscription: one tenant short of credits, or one subscription that cannot be priced,
  // holds up no one else.
  for (const Row& row : due) {
    const std::string id = row.Text(0);
    std::optional<std::pair<int, Subscription>> outcome;  // 0 renewed, 1 past due, 2 ended
    auto wrote = db_.Write([&](Tx& tx) -> Result<void> {
      outcome.reset();
      CLOZIT_ASSIGN_OR_RETURN(auto found, Find(tx, "WHERE s.id = $1", {id}));
      if (!found || found->view.status == SubscriptionStatus::kCanceled || found->view.current_period_end > now) {
        return Ok();
      }
      const Subscription sub = found->view;
      const std::string tenant = sub.tenant_id.str();
      if (sub.cancel_at_period_end) {
        CLOZIT_TRY(
            tx.Exec("UPDATE billing_subscriptions SET status = 'canceled', ended_at = $2, updated_at = $3 "
                    "WHERE id = $1",
                    {id, detail::Ms(sub.current_period_end), detail::Ms(now)}));
        CLOZIT_TRY(RecordBillingEvent(tx, tenant, "subscription.ended", id, json{{"plan", sub.plan_code}}.dump(), now,
                                      random_));
        CLOZIT_TRY(audit_.Record(tx, kSystem, {"subscription.end", "subscription", id, "{}"}, tenant));
        CLOZIT_ASSIGN_OR_RETURN(auto ended, Find(tx, "WHERE s.id = $1", {id}));
        outcome.emplace(2, ended->view);
        return Ok();
      }
      // The cycle containing now; cycles that passed entirely while nothing ran are skipped, not billed.
      int64_t period = sub.period + 1;
      while (detail::AddMonthsClamped(sub.started_at, period + 1) <= now) ++period;
      const TimePoint start = detail::AddMonthsClamped(sub.started_at, period);
      const TimePoint end = detail::AddMonthsClamped(sub.started_at, period + 1);
      const std::string plan_code = sub.next_plan_code.empty() ? sub.plan_code : sub.next_plan_code;
      int64_t version = 0;
      CLOZIT_ASSIGN_OR_RETURN(PlanPrice plan, PlanAt(price_book_, tx, plan_code, start, &version));
      CLOZIT_ASSIGN_OR_RETURN(Credits spendable, detail::SpendableCredits(tx, TenantCreditsAccount(tenant).id, now));
      if (spendable < plan.price_per_cycle) {
        if (sub.status != SubscriptionStatus::kPastDue) {
          CLOZIT_TRY(tx.Exec("UPDATE billing_subscriptions SET status = 'past_due', updated_at = $2 WHERE id = $1",
                             {id, detail::Ms(now)}));
          json details = {
              {"plan", plan_code}, {"due", plan.price_per_cycle.ToString()}, {"available", spendable.ToString()}};
          CLOZIT_TRY(RecordBillingEvent(tx, tenant, "subscription.past_due", id, details.dump(), now, random_));
          CLOZIT_TRY(audit_.Record(tx, kSystem, {"subscription.past_due", "subscription", id, details.dump()}, tenant));
        }
        CLOZIT_ASSIGN_OR_RETURN(auto unpaid, Find(tx, "WHERE s.id = $1", {id}));
        outcome.emplace(1, unpaid->view);
        return Ok();
      }
      Subscription next = sub;
      next.period = period;
      CLOZIT_TRY(tx.Exec(
          "UPDATE billing_subscriptions SET status = 'active', plan_code = $2, next_plan_code = NULL, period = $3, "
          "period_start = $4, period_end = $5, updated_at = $6 WHERE id = $1",
          {id, plan_code, period, detail::Ms(start), detail::Ms(end), detail::Ms(now)}));
      CLOZIT_TRY(ChargeCycle(tx, ledger_, next, "cycle", plan_code, plan.price_per_cycle, plan.included_credits,
                             version, end, now));
      json details = {{"plan", plan_code}, {"period", period}, {"price", plan.price_per_cycle.ToString()}};
      CLOZIT_TRY(audit_.Record(tx, kSystem, {"subscription.renew", "subscription", id, details.dump()}, tenant));
      CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
      CLOZIT_ASSIGN_OR_RETURN(auto renewed, Find(tx, "WHERE s.id = $1", {id}));
      outcome.emplace(0, renewed->view);
      return Ok();
    });
    if (!wrote) {
      report.failed.push_back(id + ": " + wrote.error().message);
      continue;
    }
    if (!outcome) continue;
    auto& [kind, sub] = *outcome;
    (kind == 0 ? report.renewed : kind == 1 ? report.past_due : report.ended).push_back(std::move(sub));
  }
  return report;
}

}  // namespace clozit::billing
