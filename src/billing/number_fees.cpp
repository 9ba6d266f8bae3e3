#include "billing/number_fees.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
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

constexpr std::string_view kMonthlyCode = "fee.phone_number.monthly";
constexpr std::string_view kRegulatoryCode = "fee.phone_number.regulatory";
constexpr std::string_view kReversalCode = "fee.phone_number.reversal";
// A run catches up at most this many missed periods of one number (a server down for years stops there).
constexpr int kMaxPeriodsPerRun = 24;

const privacy::Actor kSystem{"system", "billing"};
const privacy::Actor kTelephony{"system", "telephony"};

constexpr std::string_view kSelectHolding =
    "SELECT h.tenant_id, h.number_id, h.e164, h.country, h.number_type, h.status, h.purchased_at, "
    "h.periods_charged, h.next_fee_at, h.grace_until, h.release_due_at, h.released_at, h.idempotency_key, "
    "c.monthly_fee, c.regulatory_fee, c.price_version FROM billing_number_holdings h "
    "LEFT JOIN billing_number_fee_charges c ON c.tenant_id = h.tenant_id AND c.number_id = h.number_id "
    "AND c.period = h.periods_charged - 1 ";

std::optional<HoldingStatus> ParseStatus(std::string_view text) {
  for (HoldingStatus status : {HoldingStatus::kActive, HoldingStatus::kPastDue, HoldingStatus::kReleaseDue,
                               HoldingStatus::kReleased, HoldingStatus::kAborted}) {
    if (HoldingStatusName(status) == text) return status;
  }
  return std::nullopt;
}

struct StoredHolding {
  NumberHolding view;
  std::string idempotency_key;
};

StoredHolding HoldingFrom(const Row& row) {
  StoredHolding stored;
  NumberHolding& h = stored.view;
  h.tenant_id = TenantId(row.Text(0));
  h.number_id = row.Text(1);
  h.e164 = row.Text(2);
  h.country = row.Text(3);
  h.number_type = row.Text(4);
  h.status = ParseStatus(row.Text(5)).value_or(HoldingStatus::kActive);
  h.purchased_at = FromUnixMillis(row.Int(6));
  h.periods_charged = row.Int(7);
  h.next_fee_at = detail::OptionalTime(row, 8);
  h.grace_until = detail::OptionalTime(row, 9);
  h.release_due_at = detail::OptionalTime(row, 10);
  h.released_at = detail::OptionalTime(row, 11);
  stored.idempotency_key = row.Text(12);
  h.monthly_fee = Credits::FromMicros(row.Int(13));
  h.regulatory_fee = Credits::FromMicros(row.Int(14));
  h.price_version = row.Int(15);
  return stored;
}

Result<std::optional<StoredHolding>> FindHolding(Tx& tx, std::string_view where, const storage::Params& params) {
  return storage::FindOne(tx, std::string(kSelectHolding) + std::string(where), params, HoldingFrom);
}

Result<StoredHolding> RequireHolding(Tx& tx, const TenantId& tenant_id, const std::string& number_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto found,
                          FindHolding(tx, "WHERE h.tenant_id = $1 AND h.number_id = $2", {tenant_id.str(), number_id}));
  if (!found) return Error::Make(ErrorCode::kNotFound, "number " + number_id + " is not held", "number_id");
  return std::move(*found);
}

std::string FeeTransferId(const std::string& tenant, const std::string& number_id, int64_t period,
                          std::string_view fee) {
  return "numfee/" + tenant + "/" + number_id + "/" + std::to_string(period) + "/" + std::string(fee);
}

bool ValidNumberId(const std::string& id) { return detail::ValidKey(id, 100) && id.find('/') == std::string::npos; }

bool ValidE164(const std::string& e164) {
  if (e164.size() < 8 || e164.size() > 16 || e164[0] != '+' || e164[1] == '0') return false;
  return std::all_of(e164.begin() + 1, e164.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<void> Validate(const NumberPurchase& p) {
  if (!TenantId::Valid(p.tenant_id.str())) return Error::InvalidArgument("tenant_id", "not a tenant id");
  if (!ValidNumberId(p.number_id)) {
    return Error::InvalidArgument("number_id", "number id must be 1-100 printable characters without spaces or '/'");
  }
  if (!ValidE164(p.e164)) return Error::InvalidArgument("e164", "e164 must be a number like +14155550100");
  if (p.country.size() != 2 ||
      !std::all_of(p.country.begin(), p.country.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return Error::InvalidArgument("country", "country must be an ISO 3166-1 alpha-2 code in upper case");
  }
  if (p.number_type != "local" && p.number_type != "toll_free" && p.number_type != "mobile") {
    return Error::InvalidArgument("number_type", "number_type must be local, toll_free or mobile");
  }
  if (!detail::ValidKey(p.idempotency_key)) {
    return Error::InvalidArgument("idempotency_key", "idempotency key must be 1-200 printable characters, no spaces");
  }
  return Ok();
}

Error Insufficient(Credits available, Credits due) {
  return Error::Make(
      ErrorCode::kInsufficientCredits,
      "insufficient credits: " + available.ToString() + " available, " + due.ToString() + " due for the number's fees",
      "amount");
}

}  // namespace

std::string_view HoldingStatusName(HoldingStatus status) {
  switch (status) {
    case HoldingStatus::kActive:
      return "active";
    case HoldingStatus::kPastDue:
      return "past_due";
    case HoldingStatus::kReleaseDue:
      return "release_due";
    case HoldingStatus::kReleased:
      return "released";
    case HoldingStatus::kAborted:
      return "aborted";
  }
  return "unknown";
}

namespace {

// Charges one fee period: the monthly and regulatory fees as one linked batch,
// and the period's row (whose primary key makes the period chargeable once).
Result<void> ChargePeriod(Tx& tx, Ledger& ledger, const NumberHolding& holding, int64_t period,
                          const NumberFeeQuote& quote, TimePoint due_at, TimePoint now) {
  const std::string tenant = holding.tenant_id.str();
  CLOZIT_ASSIGN_OR_RETURN(Credits total, quote.monthly.Add(quote.regulatory));
  CLOZIT_ASSIGN_OR_RETURN(auto credits, detail::FindAccount(tx, TenantCreditsAccount(tenant).id));
  if (!credits && total.micros() > 0) return Insufficient(Credits(), total);
  std::vector<TransferSpec> batch;
  for (auto [code, amount] : {std::pair{kMonthlyCode, quote.monthly}, std::pair{kRegulatoryCode, quote.regulatory}}) {
    if (amount.micros() <= 0) continue;
    CLOZIT_ASSIGN_OR_RETURN(Account revenue, ledger.OpenAccount(tx, FeeRevenueAccount(code, PlatformShard(tenant))));
    TransferSpec fee;
    fee.id = FeeTransferId(tenant, holding.number_id, period, code.substr(code.rfind('.') + 1));
    fee.debit_account_id = credits->id;
    fee.credit_account_id = revenue.id;
    fee.amount = amount;
    fee.code = std::string(code);
    fee.reference = holding.number_id;
    batch.push_back(std::move(fee));
  }
  if (!batch.empty()) CLOZIT_TRY(ledger.CreateTransfers(tx, batch, now));
  CLOZIT_TRY(
      tx.Exec("INSERT INTO billing_number_fee_charges (tenant_id, number_id, period, monthly_fee, regulatory_fee, "
              "price_version, due_at, charged_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
              {tenant, holding.number_id, period, quote.monthly.micros(), quote.regulatory.micros(),
               quote.price_version, detail::Ms(due_at), detail::Ms(now)}));
  return Ok();
}

}  // namespace

Result<NumberHolding> NumberFees::ChargeNumberPurchase(const NumberPurchase& p) {
  CLOZIT_TRY(Validate(p));
  const TimePoint now = detail::Truncate(clock_.Now());
  const std::string tenant = p.tenant_id.str();
  NumberHolding result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto existing, FindHolding(tx, "WHERE h.tenant_id = $1 AND h.idempotency_key = $2",
                                                       {tenant, p.idempotency_key}));
    if (existing) {
      const NumberHolding& h = existing->view;
      if (h.number_id != p.number_id || h.e164 != p.e164 || h.country != p.country || h.number_type != p.number_type) {
        return Error::Make(ErrorCode::kIdempotencyMismatch,
                           "idempotency key " + p.idempotency_key + " was used for a different number purchase",
                           "idempotency_key");
      }
      result = h;
      return Ok();
    }
    CLOZIT_ASSIGN_OR_RETURN(auto held,
                            FindHolding(tx, "WHERE h.tenant_id = $1 AND h.number_id = $2", {tenant, p.number_id}));
    if (held) {
      return Error::Make(ErrorCode::kAlreadyExists, "number " + p.number_id + " was already bought (another key)",
                         "number_id");
    }
    CLOZIT_ASSIGN_OR_RETURN(auto tenants, tx.Query("SELECT 1 FROM tenants WHERE id = $1", {tenant}));
    if (tenants.empty()) return Error::Make(ErrorCode::kNotFound, "tenant " + tenant + " not found", "tenant_id");
    CLOZIT_ASSIGN_OR_RETURN(NumberFeeQuote quote, pricer_(tx, p.country, p.number_type, now));
    NumberHolding holding;
    holding.tenant_id = p.tenant_id;
    holding.number_id = p.number_id;
    CLOZIT_TRY(ChargePeriod(tx, ledger_, holding, 0, quote, now, now));
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO billing_number_holdings (tenant_id, number_id, e164, country, number_type, idempotency_key, "
        "status, purchased_at, periods_charged, next_fee_at, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, 1, $8, $7, $7)",
        {tenant, p.number_id, p.e164, p.country, p.number_type, p.idempotency_key, detail::Ms(now),
         detail::Ms(detail::AddMonthsClamped(now, 1))}));
    json details = {{"number_id", p.number_id},
                    {"country", p.country},
                    {"number_type", p.number_type},
                    {"monthly_fee", quote.monthly.ToString()},
                    {"regulatory_fee", quote.regulatory.ToString()},
                    {"price_version", quote.price_version}};
    CLOZIT_TRY(audit_.Record(tx, kTelephony, {"number.purchase", "phone_number", p.number_id, details.dump()}, tenant));
    CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
    CLOZIT_ASSIGN_OR_RETURN(StoredHolding stored, RequireHolding(tx, p.tenant_id, p.number_id));
    result = std::move(stored.view);
    return Ok();
  }));
  return result;
}

Result<void> NumberFees::AbortNumberPurchase(const TenantId& tenant_id, const std::string& number_id) {
  const TimePoint now = clock_.Now();
  const std::string tenant = tenant_id.str();
  return db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(StoredHolding stored, RequireHolding(tx, tenant_id, number_id));
    const NumberHolding& holding = stored.view;
    if (holding.status == HoldingStatus::kAborted) return Ok();  // a replay
    if (holding.status != HoldingStatus::kActive || holding.periods_charged != 1) {
      return Error::Make(ErrorCode::kConflict, "number " + number_id + " is " +
                                                   std::string(HoldingStatusName(holding.status)) +
                                                   " after its purchase: only a failed purchase can be aborted");
    }
    // Each fee transfer of the purchase is corrected into a replacement lot: the platform failed, not the tenant.
    std::vector<TransferSpec> batch;
    for (std::string_view fee : {std::string_view("monthly"), std::string_view("regulatory")}) {
      CLOZIT_ASSIGN_OR_RETURN(auto charged, detail::FindTransfer(tx, FeeTransferId(tenant, number_id, 0, fee)));
      if (!charged) continue;
      TransferSpec reversal;
      reversal.id = charged->id + "/reversal";
      reversal.debit_account_id = charged->credit_account_id;
      reversal.credit_account_id = charged->debit_account_id;
      reversal.amount = charged->amount;
      reversal.code = std::string(kReversalCode);
      reversal.corrects = charged->id;
      reversal.reference = number_id;
      reversal.tenant_id = tenant;
      reversal.new_lot = LotSpec{LotKind::kReplacement, 0, std::nullopt};
      batch.push_back(std::move(reversal));
    }
    Credits returned;
    if (!batch.empty()) {
      CLOZIT_TRY(ledger_.CreateTransfers(tx, batch, now));
      for (const TransferSpec& t : batch) {
        CLOZIT_ASSIGN_OR_RETURN(returned, returned.Add(t.amount));
      }
    }
    CLOZIT_TRY(tx.Exec(
        "UPDATE billing_number_fee_charges SET reversed_at = $3 WHERE tenant_id = $1 AND number_id = $2 AND period = 0",
        {tenant, number_id, detail::Ms(now)}));
    CLOZIT_TRY(
        tx.Exec("UPDATE billing_number_holdings SET status = 'aborted', next_fee_at = NULL, updated_at = $3 "
                "WHERE tenant_id = $1 AND number_id = $2",
                {tenant, number_id, detail::Ms(now)}));
    json transfers = json::array();
    for (const TransferSpec& t : batch) transfers.push_back(t.id);
    json details = {{"returned", returned.ToString()}, {"transfers", transfers}};
    return audit_.Record(tx, kTelephony, {"number.purchase_abort", "phone_number", number_id, details.dump()}, tenant);
  });
}

Result<NumberHolding> NumberFees::ReleaseNumber(const TenantId& tenant_id, const std::string& number_id) {
  const TimePoint now = clock_.Now();
  const std::string tenant = tenant_id.str();
  NumberHolding result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(StoredHolding stored, RequireHolding(tx, tenant_id, number_id));
    if (stored.view.status == HoldingStatus::kAborted) {
      return Error::Make(ErrorCode::kConflict, "number " + number_id + " was never held: its purchase was aborted");
    }
    if (stored.view.status != HoldingStatus::kReleased) {
      // Nothing is refunded (P4): the fees of the current period stay charged.
      CLOZIT_TRY(
          tx.Exec("UPDATE billing_number_holdings SET status = 'released', next_fee_at = NULL, grace_until = NULL, "
                  "released_at = $3, updated_at = $3 WHERE tenant_id = $1 AND number_id = $2",
                  {tenant, number_id, detail::Ms(now)}));
      json details = {{"previous_status", HoldingStatusName(stored.view.status)},
                      {"periods_charged", stored.view.periods_charged}};
      CLOZIT_TRY(audit_.Record(tx, kTelephony, {"number.release", "phone_number", number_id, details.dump()}, tenant));
    }
    CLOZIT_ASSIGN_OR_RETURN(stored, RequireHolding(tx, tenant_id, number_id));
    result = std::move(stored.view);
    return Ok();
  }));
  return result;
}

Result<FeeRunReport> NumberFees::ChargeDueFees(int64_t limit, int64_t skip) {
  const TimePoint now = detail::Truncate(clock_.Now());
  CLOZIT_ASSIGN_OR_RETURN(auto due, db_.Query("SELECT tenant_id, number_id FROM billing_number_holdings "
                                              "WHERE status IN ('active', 'past_due') AND next_fee_at <= $1 "
                                              "ORDER BY next_fee_at, tenant_id, number_id LIMIT $2 OFFSET $3",
                                              {detail::Ms(now), limit, skip}));
  FeeRunReport report;
  // One transaction per number: one tenant short of credits, or one number that cannot be priced, holds up no
  // one else.
  for (const Row& row : due) {
    const TenantId tenant_id(row.Text(0));
    const std::string number_id = row.Text(1);
    const std::string tenant = tenant_id.str();
    FeeRunReport one;
    auto wrote = db_.Write([&](Tx& tx) -> Result<void> {
      one = {};
      CLOZIT_ASSIGN_OR_RETURN(StoredHolding stored, RequireHolding(tx, tenant_id, number_id));
      NumberHolding h = stored.view;
      const HoldingStatus before = h.status;
      for (int round = 0; round < kMaxPeriodsPerRun; ++round) {
        if (h.status != HoldingStatus::kActive && h.status != HoldingStatus::kPastDue) break;
        if (!h.next_fee_at || *h.next_fee_at > now) break;
        const int64_t period = h.periods_charged;
        const TimePoint due_at = *h.next_fee_at;
        // Priced as of the period's start: a price change applies from the next period that begins after it.
        CLOZIT_ASSIGN_OR_RETURN(NumberFeeQuote quote, pricer_(tx, h.country, h.number_type, due_at));
        CLOZIT_ASSIGN_OR_RETURN(Credits total, quote.monthly.Add(quote.regulatory));
        CLOZIT_ASSIGN_OR_RETURN(Credits spendable, detail::SpendableCredits(tx, TenantCreditsAccount(tenant).id, now));
        if (spendable >= total) {
          CLOZIT_TRY(ChargePeriod(tx, ledger_, h, period, quote, due_at, now));
          h.periods_charged = period + 1;
          h.next_fee_at = detail::AddMonthsClamped(h.purchased_at, h.periods_charged);
          h.status = HoldingStatus::kActive;
          h.grace_until.reset();
          one.charged.push_back({tenant_id, number_id, period, total});
          continue;
        }
        json details = {{"number_id", number_id},
                        {"e164", h.e164},
                        {"period", period},
                        {"due", total.ToString()},
                        {"available", spendable.ToString()}};
        if (h.status == HoldingStatus::kActive) {
          h.status = HoldingStatus::kPastDue;
          // From the notice, not from the due date: a period found short late (the job did not run, or one run
          // catches up on several periods) still gets its whole grace before the number is flagged.
          h.grace_until = std::max(due_at, now) + settings_.grace;
          details["grace_until"] = FormatRfc3339(*h.grace_until);
          CLOZIT_TRY(RecordBillingEvent(tx, tenant, "number.past_due", number_id, details.dump(), now, random_));
        }
        if (h.grace_until && *h.grace_until <= now) {
          h.status = HoldingStatus::kReleaseDue;
          h.release_due_at = now;
          CLOZIT_TRY(RecordBillingEvent(tx, tenant, "number.release_due", number_id, details.dump(), now, random_));
          CLOZIT_TRY(
              audit_.Record(tx, kSystem, {"number.release_due", "phone_number", number_id, details.dump()}, tenant));
          one.release_due.push_back({tenant_id, number_id, period, total});
        } else {
          one.past_due.push_back({tenant_id, number_id, period, total});
        }
        break;
      }
      if (!one.charged.empty()) CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
      if (h.status == before && one.charged.empty()) return Ok();  // still past due: nothing to write
      CLOZIT_TRY(tx.Exec(
          "UPDATE billing_number_holdings SET status = $3, periods_charged = $4, next_fee_at = $5, grace_until = $6, "
          "release_due_at = $7, updated_at = $8 WHERE tenant_id = $1 AND number_id = $2",
          {tenant, number_id, std::string(HoldingStatusName(h.status)), h.periods_charged,
           detail::MsOrNull(h.next_fee_at), detail::MsOrNull(h.grace_until), detail::MsOrNull(h.release_due_at),
           detail::Ms(now)}));
      return Ok();
    });
    if (!wrote) {
      report.failed.push_back(tenant + "/" + number_id + ": " + wrote.error().message);
      continue;
    }
    for (auto& item : one.charged) report.charged.push_back(std::move(item));
    for (auto& item : one.past_due) report.past_due.push_back(std::move(item));
    for (auto& item : one.release_due) report.release_due.push_back(std::move(item));
  }
  return report;
}

Result<std::vector<NumberHolding>> NumberFees::ReleaseDue(int64_t limit) {
  std::vector<NumberHolding> out;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    out.clear();
    CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query(std::string(kSelectHolding) +
                                                    "WHERE h.status = 'release_due' "
                                                    "ORDER BY h.release_due_at, h.tenant_id, h.number_id LIMIT $1",
                                                {limit}));
    for (const Row& row : rows) out.push_back(HoldingFrom(row).view);
    return Ok();
  }));
  return out;
}

Result<NumberHolding> NumberFees::GetHolding(const TenantId& tenant_id, const std::string& number_id) {
  NumberHolding result;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(StoredHolding stored, RequireHolding(tx, tenant_id, number_id));
    result = std::move(stored.view);
    return Ok();
  }));
  return result;
}

}  // namespace clozit::billing
