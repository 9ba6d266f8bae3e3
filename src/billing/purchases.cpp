#include "billing/purchases.hpp"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <utility>

#include "billing/chart.hpp"
#include "billing/detail/store.hpp"
#include "billing/statements.hpp"
#include "storage/find_one.hpp"

namespace clozit::billing {
namespace {

using json = nlohmann::json;
using storage::Row;
using storage::Tx;

constexpr size_t kMaxText = 200;
constexpr size_t kMaxDescription = 4000;
constexpr size_t kMaxClaimCharges = 100;
// How long a refund's earmark may wait for the provider before it lapses.
constexpr auto kRefundHoldTtl = std::chrono::hours(24);
// An attempt is asked again under its own key only while its earmark outlives the call by this much: the
// provider's answer must find the earmark still there.
constexpr auto kRefundReuseMargin = std::chrono::hours(1);

Result<void> ValidateTenant(const TenantId& tenant_id) {
  if (!TenantId::Valid(tenant_id.str())) return Error::InvalidArgument("tenant_id", "not a tenant id");
  return Ok();
}

Result<void> RequireTenant(Tx& tx, const TenantId& tenant_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT 1 FROM tenants WHERE id = $1", {tenant_id.str()}));
  if (rows.empty()) return Error::Make(ErrorCode::kNotFound, "tenant " + tenant_id.str() + " not found", "tenant_id");
  return Ok();
}

// P5: spam, illegal calling and fraud bar every refund.
Result<bool> SuspendedForAbuse(Tx& tx, const std::string& tenant_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows,
                          tx.Query("SELECT status, suspension_reason FROM tenants WHERE id = $1", {tenant_id}));
  if (rows.empty()) return false;
  const std::string reason = rows.front().Text(1);
  return rows.front().Text(0) == "suspended" && (reason == "spam" || reason == "illegal_calling" || reason == "fraud");
}

// A refund attempt's earmark that still holds: pending, its expiry not reached.
bool Live(const std::optional<PendingStatus>& hold, TimePoint now) {
  return hold && hold->state == PendingState::kPending && (!hold->expires_at || *hold->expires_at > now);
}

// An attempt whose outcome is unknown: its earmark live, or lapsed (due to expire, or expired by the sweep).
// A refusal voids the earmark and a payout posts it, so only an attempt in doubt leaves it pending or expired.
bool InDoubt(const std::optional<PendingStatus>& hold) {
  return hold && (hold->state == PendingState::kPending || hold->state == PendingState::kExpired);
}

// ---- purchases ----

constexpr std::string_view kSelectPurchase =
    "SELECT p.id, p.tenant_id, p.credits, p.price_minor, p.currency, p.provider, p.payment_reference, p.lot_id, "
    "p.created_at, l.remaining, p.idempotency_key FROM billing_purchases p JOIN ledger_lots l ON l.id = p.lot_id ";

Purchase PurchaseFrom(const Row& row) {
  Purchase p;
  p.id = PurchaseId(row.Text(0));
  p.tenant_id = TenantId(row.Text(1));
  p.credits = Credits::FromMicros(row.Int(2));
  p.price_minor = row.Int(3);
  p.currency = row.Text(4);
  p.provider = row.Text(5);
  p.payment_reference = row.Text(6);
  p.lot_id = row.Text(7);
  p.created_at = FromUnixMillis(row.Int(8));
  p.lot_remaining = Credits::FromMicros(row.Int(9));
  return p;
}

Result<std::optional<Purchase>> FindPurchase(Tx& tx, std::string_view where, const storage::Params& params) {
  return storage::FindOne(tx, std::string(kSelectPurchase) + std::string(where), params, PurchaseFrom);
}

// The price share of `part` credits out of `whole`, rounded down (never refund more than was paid).
int64_t ProRata(int64_t price_minor, Credits part, Credits whole) {
  if (whole.micros() <= 0) return 0;
  __int128 scaled = static_cast<__int128>(price_minor) * part.micros();
  return static_cast<int64_t>(scaled / whole.micros());
}

}  // namespace

Credits CreditsShare(Credits credits, int64_t part, int64_t whole) {
  if (whole <= 0 || part <= 0) return Credits();
  if (part >= whole) return credits;
  return Credits::FromMicros(static_cast<int64_t>(static_cast<__int128>(credits.micros()) * part / whole));
}

namespace {

bool ValidCurrency(const std::string& currency) {
  return currency.size() == 3 &&
         std::all_of(currency.begin(), currency.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// ---- refund requests ----

constexpr std::string_view kSelectRefund =
    "SELECT r.id, r.tenant_id, r.subject_id, r.purchase_id, r.reason, r.status, r.reason_code, r.requested_credits, "
    "r.refunded_credits, r.refunded_minor, r.provider_refund_id, r.attempts, r.last_error, r.decision_reason, "
    "r.decided_by, r.decided_at, r.created_at, r.updated_at, r.hold_transfer_id, p.currency "
    "FROM billing_refund_requests r LEFT JOIN billing_purchases p ON p.id = r.purchase_id ";

std::optional<RefundReason> ParseReason(std::string_view text) {
  for (int i = 0; i <= static_cast<int>(RefundReason::kPurchaseDisputed); ++i) {
    auto reason = static_cast<RefundReason>(i);
    if (RefundReasonName(reason) == text) return reason;
  }
  return std::nullopt;
}

struct StoredRefund {
  RefundRequest view;
  std::string hold_transfer_id;
};

StoredRefund RefundFrom(const Row& row) {
  StoredRefund stored;
  RefundRequest& r = stored.view;
  r.id = RefundRequestId(row.Text(0));
  r.tenant_id = TenantId(row.Text(1));
  r.subject_id = row.Text(2);
  r.purchase_id = row.Text(3);
  r.reason = row.Text(4);
  r.status = ParseRequestStatus(row.Text(5)).value_or(RequestStatus::kPending);
  r.reason_code = ParseReason(row.Text(6)).value_or(RefundReason::kUnknownTransaction);
  r.requested_credits = Credits::FromMicros(row.Int(7));
  if (!row.IsNull(8)) r.refunded_credits = Credits::FromMicros(row.Int(8));
  r.refunded_minor = row.OptionalInt(9);
  r.provider_refund_id = row.Text(10);
  r.attempts = row.Int(11);
  r.last_error = row.Text(12);
  r.decision_reason = row.Text(13);
  r.decided_by = row.Text(14);
  r.decided_at = detail::OptionalTime(row, 15);
  r.created_at = FromUnixMillis(row.Int(16));
  r.updated_at = FromUnixMillis(row.Int(17));
  stored.hold_transfer_id = row.Text(18);
  r.currency = row.Text(19);
  return stored;
}

Result<std::optional<StoredRefund>> FindRefund(Tx& tx, const std::string& id, const std::string& tenant_id) {
  return storage::FindOne(tx, std::string(kSelectRefund) + "WHERE r.id = $1 AND ($2 = '' OR r.tenant_id = $2)",
                          {id, tenant_id}, RefundFrom);
}

Result<StoredRefund> RequireRefund(Tx& tx, const std::string& id, const std::string& tenant_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto found, FindRefund(tx, id, tenant_id));
  if (!found) return Error::NotFound("refund request not found");
  return std::move(*found);
}

struct Eligibility {
  RefundReason reason = RefundReason::kEligible;
  std::optional<Purchase> purchase;
  Credits refundable;  // the lot's unused, unreserved, unexpired remainder
};

// The purchase whose credits transfer `source` put in a lot: the purchase's grant, or the reversal of a refund of
// it (whose lot the purchase refers to since). Nullopt for any other transfer.
Result<std::optional<Purchase>> PurchaseGranting(Tx& tx, const std::string& tenant,
                                                 const std::optional<Transfer>& source) {
  if (!source) return std::optional<Purchase>();
  std::string purchase_id;
  if (source->code == "grant.purchase") {
    purchase_id = source->reference;
  } else if (source->code == "refund.reversed") {
    CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT purchase_id FROM billing_refund_requests WHERE id = $1 AND "
                                                "tenant_id = $2",
                                                {source->reference, tenant}));
    if (!rows.empty()) purchase_id = rows.front().Text(0);
  }
  if (purchase_id.empty()) return std::optional<Purchase>();
  return FindPurchase(tx, "WHERE p.id = $1 AND p.tenant_id = $2", {purchase_id, tenant});
}

// What the subject id names, from the tenant's own records only.
Result<Eligibility> Classify(Tx& tx, const std::string& tenant, const std::string& subject) {
  Eligibility out;
  if (subject.rfind("pur_", 0) == 0) {
    CLOZIT_ASSIGN_OR_RETURN(out.purchase, FindPurchase(tx, "WHERE p.id = $1 AND p.tenant_id = $2", {subject, tenant}));
    if (!out.purchase) out.reason = RefundReason::kUnknownTransaction;
    return out;
  }
  if (subject.rfind("lot_", 0) == 0) {
    CLOZIT_ASSIGN_OR_RETURN(auto lot, detail::FindLot(tx, subject));
    if (!lot || lot->tenant_id != tenant) {
      out.reason = RefundReason::kUnknownTransaction;
      return out;
    }
    switch (lot->kind) {
      case LotKind::kSubscription:
        out.reason = RefundReason::kSubscriptionNotRefundable;
        return out;
      case LotKind::kPromotional:
      case LotKind::kReplacement:
        out.reason = RefundReason::kGrantedCreditsNotRefundable;
        return out;
      case LotKind::kPurchase:
        break;
    }
    CLOZIT_ASSIGN_OR_RETURN(auto source, detail::FindTransfer(tx, lot->source_transfer_id));
    CLOZIT_ASSIGN_OR_RETURN(out.purchase, PurchaseGranting(tx, tenant, source));
    if (!out.purchase) out.reason = RefundReason::kGrantedCreditsNotRefundable;
    return out;
  }
  if (subject.rfind("sub_", 0) == 0) {
    CLOZIT_ASSIGN_OR_RETURN(
        auto subs, tx.Query("SELECT 1 FROM billing_subscriptions WHERE id = $1 AND tenant_id = $2", {subject, tenant}));
    out.reason = subs.empty() ? RefundReason::kUnknownTransaction : RefundReason::kSubscriptionNotRefundable;
    return out;
  }
  // A phone number the tenant holds (or held): its fees are never refunded (P4).
  CLOZIT_ASSIGN_OR_RETURN(
      auto numbers,
      tx.Query("SELECT 1 FROM billing_number_holdings WHERE tenant_id = $1 AND number_id = $2", {tenant, subject}));
  if (!numbers.empty()) {
    out.reason = RefundReason::kPhoneNumberFeeNotRefundable;
    return out;
  }
  // A ledger transfer the tenant saw on a statement.
  CLOZIT_ASSIGN_OR_RETURN(auto transfer, detail::FindTransfer(tx, subject));
  const std::string credits_account = TenantCreditsAccount(tenant).id;
  if (!transfer || (transfer->tenant_id != tenant && transfer->debit_account_id != credits_account &&
                    transfer->credit_account_id != credits_account)) {
    out.reason = RefundReason::kUnknownTransaction;
    return out;
  }
  const std::string& code = transfer->code;
  auto starts = [&code](std::string_view prefix) { return code.rfind(prefix, 0) == 0; };
  if (starts("fee.phone_number")) {
    out.reason = RefundReason::kPhoneNumberFeeNotRefundable;
  } else if (starts("subscription") || starts("grant.subscription")) {
    out.reason = RefundReason::kSubscriptionNotRefundable;
  } else if (starts("grant.purchase") || code == "refund.reversed") {
    CLOZIT_ASSIGN_OR_RETURN(out.purchase, PurchaseGranting(tx, tenant, transfer));
    if (!out.purchase) out.reason = RefundReason::kGrantedCreditsNotRefundable;
  } else if (starts("grant.") || starts("adjustment.")) {
    out.reason = RefundReason::kGrantedCreditsNotRefundable;
  } else {
    // usage, reservations, settlements: credits spent on service (P2).
    out.reason = RefundReason::kUsedCreditsNotRefundable;
  }
  return out;
}

// Everything but the 7-day window (which bounds submission, P7).
Result<void> CheckRemainder(Tx& tx, Eligibility& out, const std::string& tenant, const std::string& exclude_request,
                            TimePoint now) {
  CLOZIT_ASSIGN_OR_RETURN(bool abuse, SuspendedForAbuse(tx, tenant));
  if (abuse) {
    out.reason = RefundReason::kAccountSuspendedForAbuse;
    return Ok();
  }
  CLOZIT_ASSIGN_OR_RETURN(auto open, tx.Query("SELECT 1 FROM billing_refund_requests WHERE purchase_id = $1 AND "
                                              "status IN ('pending', 'approved') AND id <> $2",
                                              {out.purchase->id.str(), exclude_request}));
  if (!open.empty()) {
    out.reason = RefundReason::kAlreadyRequested;
    return Ok();
  }
  // Open or lost: the money is with the card network. Won or closed as an inquiry: refundable as before.
  CLOZIT_ASSIGN_OR_RETURN(auto disputed, tx.Query("SELECT 1 FROM billing_disputes WHERE purchase_id = $1 AND "
                                                  "status IN ('open', 'lost')",
                                                  {out.purchase->id.str()}));
  if (!disputed.empty()) {
    out.reason = RefundReason::kPurchaseDisputed;
    return Ok();
  }
  CLOZIT_ASSIGN_OR_RETURN(auto lot, detail::FindLot(tx, out.purchase->lot_id));
  out.refundable = (!lot || lot->ExpiredAt(now)) ? Credits() : lot->Unreserved();
  if (out.refundable.micros() <= 0) out.reason = RefundReason::kNothingLeftToRefund;
  return Ok();
}

Result<Eligibility> Evaluate(Tx& tx, const std::string& tenant, const std::string& subject, TimePoint now) {
  CLOZIT_ASSIGN_OR_RETURN(Eligibility out, Classify(tx, tenant, subject));
  if (out.reason == RefundReason::kUnknownTransaction) return out;
  CLOZIT_ASSIGN_OR_RETURN(bool abuse, SuspendedForAbuse(tx, tenant));
  if (abuse) {
    out.reason = RefundReason::kAccountSuspendedForAbuse;
    return out;
  }
  if (out.reason != RefundReason::kEligible) return out;
  if (now - out.purchase->created_at > kRefundWindow) {
    out.reason = RefundReason::kRefundWindowExpired;
    return out;
  }
  CLOZIT_TRY(CheckRemainder(tx, out, tenant, "", now));
  return out;
}

// ---- adjustments ----

std::optional<AdjustmentResolution> ResolutionFrom(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return ParseAdjustmentResolution(text);
}

Result<std::optional<AdjustmentRequest>> FindAdjustment(Tx& tx, const std::string& id, const std::string& tenant_id) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, tx.Query("SELECT id, tenant_id, description, status, resolution, restored, lot_id, decision_reason, "
                          "decided_by, decided_at, created_at, updated_at FROM billing_adjustment_requests "
                          "WHERE id = $1 AND ($2 = '' OR tenant_id = $2)",
                          {id, tenant_id}));
  if (rows.empty()) return std::optional<AdjustmentRequest>();
  const Row& row = rows.front();
  AdjustmentRequest a;
  a.id = AdjustmentRequestId(row.Text(0));
  a.tenant_id = TenantId(row.Text(1));
  a.description = row.Text(2);
  a.status = ParseRequestStatus(row.Text(3)).value_or(RequestStatus::kPending);
  a.resolution = ResolutionFrom(row.Text(4));
  a.restored = Credits::FromMicros(row.Int(5));
  a.lot_id = row.Text(6);
  a.decision_reason = row.Text(7);
  a.decided_by = row.Text(8);
  a.decided_at = detail::OptionalTime(row, 9);
  a.created_at = FromUnixMillis(row.Int(10));
  a.updated_at = FromUnixMillis(row.Int(11));
  CLOZIT_ASSIGN_OR_RETURN(auto items, tx.Query("SELECT transfer_id, charged, evidence, restored FROM "
                                               "billing_adjustment_items WHERE request_id = $1 ORDER BY transfer_id",
                                               {a.id.str()}));
  for (const Row& item : items) {
    a.items.push_back({item.Text(0), Credits::FromMicros(item.Int(1)), item.Text(2), Credits::FromMicros(item.Int(3))});
  }
  return std::optional<AdjustmentRequest>(std::move(a));
}

Result<AdjustmentRequest> RequireAdjustment(Tx& tx, const std::string& id, const std::string& tenant_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto found, FindAdjustment(tx, id, tenant_id));
  if (!found) return Error::NotFound("adjustment request not found");
  return std::move(*found);
}

// What all approved claims have restored of a charge so far.
Result<Credits> RestoredSoFar(Tx& tx, const std::string& transfer_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT COALESCE(SUM(i.restored), 0) FROM billing_adjustment_items i "
                                              "JOIN billing_adjustment_requests r ON r.id = i.request_id "
                                              "WHERE i.transfer_id = $1 AND r.status = 'approved'",
                                              {transfer_id}));
  return Credits::FromMicros(rows.empty() ? 0 : rows.front().Int(0));
}

Error NotPending(std::string_view what, const std::string& id, RequestStatus status) {
  return Error::Make(ErrorCode::kConflict,
                     std::string(what) + " " + id + " is " + std::string(RequestStatusName(status)) + ", not pending");
}

Result<void> ValidateDecisionReason(const std::string& reason, bool required) {
  if ((required && reason.empty()) || reason.size() > kMaxDescription) {
    return Error::InvalidArgument(
        "reason", required ? "a reason of 1-4000 characters is required" : "reason must be at most 4000 characters");
  }
  return Ok();
}

}  // namespace

std::string_view RefundReasonName(RefundReason reason) {
  switch (reason) {
    case RefundReason::kEligible:
      return "eligible";
    case RefundReason::kUnknownTransaction:
      return "unknown_transaction";
    case RefundReason::kUsedCreditsNotRefundable:
      return "used_credits_not_refundable";
    case RefundReason::kSubscriptionNotRefundable:
      return "subscription_not_refundable";
    case RefundReason::kPhoneNumberFeeNotRefundable:
      return "phone_number_fee_not_refundable";
    case RefundReason::kGrantedCreditsNotRefundable:
      return "granted_credits_not_refundable";
    case RefundReason::kAccountSuspendedForAbuse:
      return "account_suspended_for_abuse";
    case RefundReason::kRefundWindowExpired:
      return "refund_window_expired";
    case RefundReason::kNothingLeftToRefund:
      return "nothing_left_to_refund";
    case RefundReason::kAlreadyRequested:
      return "already_requested";
    case RefundReason::kPurchaseDisputed:
      return "purchase_disputed";
  }
  return "unknown";
}

std::string_view RequestStatusName(RequestStatus status) {
  switch (status) {
    case RequestStatus::kPending:
      return "pending";
    case RequestStatus::kApproved:
      return "approved";
    case RequestStatus::kRejected:
      return "rejected";
    case RequestStatus::kRefused:
      return "refused";
    case RequestStatus::kReversed:
      return "reversed";
  }
  return "unknown";
}

std::optional<RequestStatus> ParseRequestStatus(std::string_view name) {
  for (RequestStatus s : {RequestStatus::kPending, RequestStatus::kApproved, RequestStatus::kRejected,
                          RequestStatus::kRefused, RequestStatus::kReversed}) {
    if (RequestStatusName(s) == name) return s;
  }
  return std::nullopt;
}

std::string_view AdjustmentResolutionName(AdjustmentResolution resolution) {
  switch (resolution) {
    case AdjustmentResolution::kCreditAdjustment:
      return "credit_adjustment";
    case AdjustmentResolution::kReplacementCredits:
      return "replacement_credits";
  }
  return "unknown";
}

std::optional<AdjustmentResolution> ParseAdjustmentResolution(std::string_view text) {
  if (text == "credit_adjustment") return AdjustmentResolution::kCreditAdjustment;
  if (text == "replacement_credits") return AdjustmentResolution::kReplacementCredits;
  return std::nullopt;
}

// ---------------------------------------------------------------- purchases

namespace {
Result<void> ValidatePurchase(const PurchaseRequest& request, TimePoint now) {
  CLOZIT_TRY(ValidateTenant(request.tenant_id));
  if (!detail::ValidKey(request.idempotency_key)) {
    return Error::InvalidArgument("idempotency_key", "idempotency key must be 1-200 printable characters, no spaces");
  }
  if (request.credits.micros() <= 0) return Error::InvalidArgument("credits", "credits must be positive");
  if (request.price_minor < 0) return Error::InvalidArgument("price_minor", "price must not be negative");
  if (!ValidCurrency(request.currency)) {
    return Error::InvalidArgument("currency", "currency must be a three-letter ISO 4217 code in upper case");
  }
  if (request.payment_reference.empty() || request.payment_reference.size() > kMaxText) {
    return Error::InvalidArgument("payment_reference", "payment reference must be 1-200 characters");
  }
  if (request.provider.empty() || request.provider.size() > 50) {
    return Error::InvalidArgument("provider", "provider must be 1-50 characters");
  }
  if (request.expires_at && *request.expires_at <= now) {
    return Error::InvalidArgument("expires_at", "expiry must be in the future");
  }
  return Ok();
}
}  // namespace

Result<Purchase> Purchases::RecordPurchase(const PurchaseRequest& request) {
  const TimePoint now = clock_.Now();
  CLOZIT_TRY(ValidatePurchase(request, now));
  // Paid checkouts record their purchase under "checkout/<purchase id>": a grant taking such a key would make
  // the payment's event fail for good, its credits never granted.
  if (request.idempotency_key.starts_with("checkout/")) {
    return Error::InvalidArgument("idempotency_key", "keys starting with checkout/ are reserved for paid checkouts");
  }
  const PurchaseId id = PurchaseId::New(clock_, random_);
  Purchase result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(result, RecordPurchase(tx, request, id, now));
    return Ok();
  }));
  return result;
}

Result<Purchase> Purchases::RecordPurchase(Tx& tx, const PurchaseRequest& request, const PurchaseId& purchase_id,
                                           TimePoint now) {
  CLOZIT_TRY(ValidatePurchase(request, now));
  const std::string tenant = request.tenant_id.str();
  CLOZIT_ASSIGN_OR_RETURN(auto existing, FindPurchase(tx, "WHERE p.tenant_id = $1 AND p.idempotency_key = $2",
                                                      {tenant, request.idempotency_key}));
  if (existing) {
    if (existing->credits != request.credits || existing->price_minor != request.price_minor ||
        existing->currency != request.currency || existing->payment_reference != request.payment_reference) {
      return Error::Make(ErrorCode::kIdempotencyMismatch,
                         "idempotency key " + request.idempotency_key + " was used for a different purchase",
                         "idempotency_key");
    }
    return *existing;
  }
  CLOZIT_TRY(RequireTenant(tx, request.tenant_id));
  const std::string id = purchase_id.str();
  CLOZIT_ASSIGN_OR_RETURN(Account credits, ledger_.OpenAccount(tx, TenantCreditsAccount(tenant)));
  CLOZIT_ASSIGN_OR_RETURN(Account issuance,
                          ledger_.OpenAccount(tx, IssuanceAccount(LotKind::kPurchase, PlatformShard(tenant))));
  TransferSpec grant;
  grant.id = "purchase/" + id;
  grant.debit_account_id = issuance.id;
  grant.credit_account_id = credits.id;
  grant.amount = request.credits;
  grant.code = "grant.purchase";
  grant.reference = id;
  grant.new_lot = LotSpec{LotKind::kPurchase, 0, request.expires_at};
  CLOZIT_TRY(ledger_.CreateTransfers(tx, {grant}, now));
  CLOZIT_ASSIGN_OR_RETURN(auto lots, tx.Query("SELECT id FROM ledger_lots WHERE source_transfer_id = $1", {grant.id}));
  if (lots.empty()) return Error::Internal("purchase " + id + " opened no lot");
  CLOZIT_TRY(tx.Exec(
      "INSERT INTO billing_purchases (id, tenant_id, credits, price_minor, currency, provider, payment_reference, "
      "lot_id, idempotency_key, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
      {id, tenant, request.credits.micros(), request.price_minor, request.currency, request.provider,
       request.payment_reference, lots.front().Text(0), request.idempotency_key, request.actor.Label(),
       detail::Ms(request.paid_at ? std::min(*request.paid_at, now) : now)}));
  json details = {{"credits", request.credits.ToString()},
                  {"price_minor", request.price_minor},
                  {"currency", request.currency},
                  {"provider", request.provider},
                  {"payment_reference", request.payment_reference},
                  {"lot_id", lots.front().Text(0)}};
  CLOZIT_TRY(audit_.Record(tx, request.actor, {"credits.purchase", "purchase", id, details.dump()}, tenant));
  CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
  CLOZIT_ASSIGN_OR_RETURN(auto stored, FindPurchase(tx, "WHERE p.id = $1", {id}));
  return *stored;
}

Result<Purchase> Purchases::GetPurchase(const TenantId& tenant_id, const std::string& purchase_id) {
  std::optional<Purchase> found;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(found,
                            FindPurchase(tx, "WHERE p.id = $1 AND p.tenant_id = $2", {purchase_id, tenant_id.str()}));
    return Ok();
  }));
  if (!found) return Error::NotFound("purchase not found");
  return *found;
}

Result<Page<Purchase>> Purchases::ListPurchases(const TenantId& tenant_id, const PageRequest& page) {
  Page<Purchase> out;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    out = {};
    CLOZIT_ASSIGN_OR_RETURN(
        auto rows, tx.Query(std::string(kSelectPurchase) +
                                "WHERE p.tenant_id = $1 AND ($2 = '' OR p.id < $2) ORDER BY p.id DESC LIMIT $3",
                            {tenant_id.str(), page.cursor, page.limit + 1}));
    for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
      out.items.push_back(PurchaseFrom(rows[i]));
    }
    if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id.str();
    return Ok();
  }));
  return out;
}

// ---------------------------------------------------------------- refunds

Result<RefundRequest> Purchases::RequestRefund(const TenantId& tenant_id, const std::string& subject_id,
                                               const std::string& reason, const privacy::Actor& actor) {
  const TimePoint now = clock_.Now();
  CLOZIT_TRY(ValidateTenant(tenant_id));
  if (!detail::ValidKey(subject_id)) {
    return Error::InvalidArgument("purchase_id", "the purchase (or transaction) id is required");
  }
  if (reason.size() > kMaxDescription)
    return Error::InvalidArgument("reason", "reason must be at most 4000 characters");
  const std::string tenant = tenant_id.str();
  RefundRequest result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(RequireTenant(tx, tenant_id));
    CLOZIT_ASSIGN_OR_RETURN(Eligibility eligibility, Evaluate(tx, tenant, subject_id, now));
    const bool eligible = eligibility.reason == RefundReason::kEligible;
    const std::string id = RefundRequestId::New(clock_, random_).str();
    storage::Value purchase =
        eligibility.purchase ? storage::Value(eligibility.purchase->id.str()) : storage::Value(nullptr);
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO billing_refund_requests (id, tenant_id, subject_id, purchase_id, reason, status, reason_code, "
        "requested_credits, attempts, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9)",
        {id, tenant, subject_id, purchase, reason,
         std::string(RequestStatusName(eligible ? RequestStatus::kPending : RequestStatus::kRefused)),
         std::string(RefundReasonName(eligibility.reason)), eligibility.refundable.micros(), detail::Ms(now)}));
    json details = {{"subject_id", subject_id},
                    {"reason_code", RefundReasonName(eligibility.reason)},
                    {"refundable", eligibility.refundable.ToString()}};
    CLOZIT_TRY(audit_.Record(
        tx, actor, {eligible ? "refund_request.create" : "refund_request.refuse", "refund_request", id, details.dump()},
        tenant));
    CLOZIT_ASSIGN_OR_RETURN(StoredRefund stored, RequireRefund(tx, id, tenant));
    result = std::move(stored.view);
    return Ok();
  }));
  return result;
}

Result<RefundRequest> Purchases::GetRefundRequest(const TenantId& tenant_id, const std::string& id) {
  RefundRequest result;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(StoredRefund stored, RequireRefund(tx, id, tenant_id.str()));
    result = std::move(stored.view);
    return Ok();
  }));
  return result;
}

Result<Page<RefundRequest>> Purchases::ListRefundRequests(const TenantId& tenant_id, const PageRequest& page,
                                                          const std::string& status) {
  Page<RefundRequest> out;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    out = {};
    CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query(std::string(kSelectRefund) +
                                                    "WHERE ($1 = '' OR r.tenant_id = $1) AND ($2 = '' OR r.id < $2) "
                                                    "AND ($4 = '' OR r.status = $4) ORDER BY r.id DESC LIMIT $3",
                                                {tenant_id.str(), page.cursor, page.limit + 1, status}));
    for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
      out.items.push_back(RefundFrom(rows[i]).view);
    }
    if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id.str();
    return Ok();
  }));
  return out;
}

Result<RefundRequest> Purchases::ApproveRefund(const std::string& id, const privacy::Actor& actor) {
  // 1. Earmark the lot's remainder so no call can spend what is being refunded.
  RefundCall call;
  std::string hold_id;
  std::string tenant;
  std::optional<RefundRequest> done;
  for (int round = 0;; ++round) {
    bool in_doubt = false;
    CLOZIT_TRY(detail::WriteRacingOtherNodes(db_, [&](Tx& tx) -> Result<void> {
      const TimePoint now = clock_.Now();
      done.reset();
      in_doubt = false;
      CLOZIT_ASSIGN_OR_RETURN(StoredRefund stored, RequireRefund(tx, id, ""));
      const RefundRequest& request = stored.view;
      tenant = request.tenant_id.str();
      if (request.status == RequestStatus::kApproved) {
        done = request;  // a replay
        return Ok();
      }
      if (request.status != RequestStatus::kPending) return NotPending("refund request", id, request.status);
      CLOZIT_ASSIGN_OR_RETURN(auto purchase, FindPurchase(tx, "WHERE p.id = $1", {request.purchase_id}));
      if (!purchase) return Error::Internal("refund request " + id + " has no purchase");
      if (!stored.hold_transfer_id.empty()) {
        CLOZIT_ASSIGN_OR_RETURN(auto pending, detail::FindPending(tx, stored.hold_transfer_id));
        if (InDoubt(pending)) {
          // An attempt whose outcome is unknown. Asked again under its key while the key is surely still good
          // at the provider (the provider then answers with what it did, never refunding twice); otherwise, or
          // when the tenant has been suspended for abuse since (P5: nothing new may be sent), its outcome is
          // looked up first.
          const bool reusable = Live(pending, now + kRefundReuseMargin);
          CLOZIT_ASSIGN_OR_RETURN(bool abuse, SuspendedForAbuse(tx, tenant));
          if (reusable && !abuse) {
            CLOZIT_ASSIGN_OR_RETURN(auto hold, detail::FindTransfer(tx, stored.hold_transfer_id));
            hold_id = hold->id;
            call = {purchase->payment_reference, ProRata(purchase->price_minor, hold->amount, purchase->credits),
                    purchase->currency, hold_id, id};
            return Ok();
          }
          in_doubt = true;
          return Ok();
        }
      }
      Eligibility eligibility;
      eligibility.purchase = purchase;
      CLOZIT_TRY(CheckRemainder(tx, eligibility, tenant, id, now));
      if (eligibility.reason != RefundReason::kEligible) {
        return Error::Make(ErrorCode::kConflict, "refund request " + id + " can no longer be approved: " +
                                                     std::string(RefundReasonName(eligibility.reason)));
      }
      CLOZIT_ASSIGN_OR_RETURN(hold_id, HoldForRefund(tx, request, *purchase, eligibility.refundable, now));
      // One idempotency key per hold: a retry of this attempt reuses both, a new attempt (after a refusal, or
      // once the last one is known to have paid nothing) gets a key of its own.
      call = {purchase->payment_reference, ProRata(purchase->price_minor, eligibility.refundable, purchase->credits),
              purchase->currency, hold_id, id};
      return Ok();
    }));
    if (done) return *done;
    if (!in_doubt) break;
    // A second round finds the attempt resolved: ResolveRefundInDoubt either approved the request, failed, or
    // cleared the attempt.
    if (round > 0) return Error::Internal("refund request " + id + " is still in doubt after its lookup");
    CLOZIT_ASSIGN_OR_RETURN(RefundRequest resolved, ResolveRefundInDoubt(id));
    if (resolved.status != RequestStatus::kPending) return resolved;
  }

  // 2. The provider, outside any transaction. A zero-price purchase has nothing to return.
  Result<RefundReceipt> receipt = RefundReceipt{"", 0};
  if (call.amount_minor > 0) receipt = provider_.Refund(call);
  // Accepted but not paid out yet: as good as an unknown outcome until the provider reports it (refund.updated).
  if (receipt && receipt->pending) {
    receipt = Error::Make(ErrorCode::kUnavailable, "refund " + receipt->refund_id +
                                                       " is pending at the payment provider; the request is approved "
                                                       "when the provider reports it paid out");
  }

  // 3a. Failure: the request stays pending with the error. A refusal releases the earmark. An unknown outcome
  // (unreachable, timed out, rate limited: the provider may have refunded) keeps it, so that the retry reuses
  // the hold and asks again with the same amount under the same idempotency key, and the provider answers
  // with what it did instead of refunding twice or refusing the key; the hold lapses with the key (24 h).
  if (!receipt) {
    const Error provider_error = receipt.error();
    // A reused key that the provider refuses means a first request under it stands: in doubt too.
    const bool outcome_unknown = provider_error.code == ErrorCode::kUnavailable ||
                                 provider_error.code == ErrorCode::kRateLimited ||
                                 provider_error.code == ErrorCode::kIdempotencyMismatch;
    CLOZIT_TRY(detail::WriteRacingOtherNodes(db_, [&](Tx& tx) -> Result<void> {
      const TimePoint now = clock_.Now();
      CLOZIT_ASSIGN_OR_RETURN(auto pending, detail::FindPending(tx, hold_id));
      if (!outcome_unknown && pending && pending->state == PendingState::kPending) {
        CLOZIT_TRY(ReleaseRefundHold(tx, hold_id, now));
      }
      CLOZIT_TRY(tx.Exec("UPDATE billing_refund_requests SET last_error = $2, updated_at = $3 WHERE id = $1",
                         {id, provider_error.message, detail::Ms(now)}));
      json details = {{"error", provider_error.message}, {"hold_transfer_id", hold_id}};
      CLOZIT_TRY(
          audit_.Record(tx, actor, {"refund_request.provider_error", "refund_request", id, details.dump()}, tenant));
      return Ok();
    }));
    return Error::Make(
        ErrorCode::kUnavailable,
        "the payment provider refused or failed the refund; the request stays pending: " + provider_error.message);
  }

  // 3b. Success: the credits leave the lot with the request's approval, in one transaction.
  RefundRequest result;
  CLOZIT_TRY(detail::WriteRacingOtherNodes(db_, [&](Tx& tx) -> Result<void> {
    const TimePoint now = clock_.Now();
    CLOZIT_ASSIGN_OR_RETURN(StoredRefund stored, RequireRefund(tx, id, ""));
    if (stored.view.status == RequestStatus::kApproved) {
      result = std::move(stored.view);
      return Ok();
    }
    CLOZIT_ASSIGN_OR_RETURN(auto pending, detail::FindPending(tx, hold_id));
    if (stored.hold_transfer_id == hold_id && Live(pending, now)) {
      CLOZIT_ASSIGN_OR_RETURN(result, CompleteRefund(tx, id, hold_id, *receipt, call.currency, actor, now));
      return Ok();
    }
    // The earmark lapsed while the provider answered: paid all the same, as if the provider had reported it.
    CLOZIT_ASSIGN_OR_RETURN(ReportedRefundOutcome applied,
                            ApplyReportedRefund(tx,
                                                {id, receipt->refund_id, call.payment_reference, receipt->amount_minor,
                                                 call.currency, "succeeded", hold_id},
                                                now));
    CLOZIT_ASSIGN_OR_RETURN(StoredRefund after, RequireRefund(tx, id, ""));
    if (after.view.status != RequestStatus::kApproved) {
      return Error::Internal("refund request " + id + " was paid out but not approved: " + applied.detail);
    }
    result = std::move(after.view);
    return Ok();
  }));
  return result;
}

Result<std::string> Purchases::HoldForRefund(Tx& tx, const RefundRequest& request, const Purchase& purchase,
                                             Credits amount, TimePoint now) {
  const std::string tenant = request.tenant_id.str();
  const std::string id = request.id.str();
  CLOZIT_ASSIGN_OR_RETURN(Account refunds, ledger_.OpenAccount(tx, RefundsAccount(PlatformShard(tenant))));
  TransferSpec hold;
  hold.id = id + "/refund/" + std::to_string(request.attempts + 1);
  hold.kind = TransferKind::kPending;
  hold.debit_account_id = TenantCreditsAccount(tenant).id;
  hold.credit_account_id = refunds.id;
  hold.amount = amount;
  hold.expires_at = now + kRefundHoldTtl;
  hold.code = "refund";
  hold.reference = id;
  hold.tenant_id = tenant;
  hold.debit_lot_id = purchase.lot_id;
  CLOZIT_TRY(ledger_.CreateTransfers(tx, {hold}, now));
  CLOZIT_TRY(
      tx.Exec("UPDATE billing_refund_requests SET hold_transfer_id = $2, attempts = attempts + 1, "
              "updated_at = $3 WHERE id = $1",
              {id, hold.id, detail::Ms(now)}));
  return hold.id;
}

Result<void> Purchases::ReleaseRefundHold(Tx& tx, const std::string& hold_id, TimePoint now) {
  TransferSpec release;
  release.id = hold_id + "/void";
  release.kind = TransferKind::kVoidPending;
  release.pending_id = hold_id;
  release.code = "refund.failed";
  CLOZIT_TRY(ledger_.CreateTransfers(tx, {release}, now));
  return Ok();
}

Result<RefundRequest> Purchases::CompleteRefund(Tx& tx, const std::string& id, const std::string& hold_id,
                                                const RefundReceipt& receipt, const std::string& currency,
                                                const privacy::Actor& actor, TimePoint now,
                                                std::optional<Credits> at_most) {
  CLOZIT_ASSIGN_OR_RETURN(auto hold, detail::FindTransfer(tx, hold_id));
  if (!hold) return Error::Internal("refund request " + id + " has no hold " + hold_id);
  const std::string& tenant = hold->tenant_id;
  const Credits taken = at_most ? std::min(hold->amount, *at_most) : hold->amount;
  TransferSpec post;
  post.id = hold_id + "/post";
  post.kind = TransferKind::kPostPending;
  post.pending_id = hold_id;
  post.amount = taken;
  post.code = "refund";
  CLOZIT_TRY(ledger_.CreateTransfers(tx, {post}, now));
  CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
  CLOZIT_TRY(
      tx.Exec("UPDATE billing_refund_requests SET status = 'approved', refunded_credits = $2, "
              "refunded_minor = $3, provider_refund_id = $4, last_error = NULL, decided_by = $5, "
              "decided_at = $6, updated_at = $6 WHERE id = $1",
              {id, taken.micros(), receipt.amount_minor, receipt.refund_id, actor.Label(), detail::Ms(now)}));
  json details = {{"refunded_credits", taken.ToString()},
                  {"refunded_minor", receipt.amount_minor},
                  {"currency", currency},
                  {"provider_refund_id", receipt.refund_id},
                  {"transfer_id", post.id}};
  CLOZIT_TRY(audit_.Record(tx, actor, {"refund_request.approve", "refund_request", id, details.dump()}, tenant));
  CLOZIT_ASSIGN_OR_RETURN(StoredRefund stored, RequireRefund(tx, id, ""));
  return std::move(stored.view);
}

// The refund of an approved request failed at the provider after all: the tenant paid and got nothing back, so
// the credits it removed return as they were — a lot of the purchase's kind, priority and expiry, which the
// purchase then refers to (so it can be refunded again, and disputes take from it) — by a transfer correcting
// the refund's. Credits whose lot has expired meanwhile would be gone by now and are not restored.
Result<ReportedRefundOutcome> Purchases::ReverseApprovedRefund(Tx& tx, const RefundRequest& request,
                                                               const std::string& hold_id, const ReportedRefund& refund,
                                                               TimePoint now) {
  const std::string id = request.id.str();
  const std::string tenant = request.tenant_id.str();
  CLOZIT_ASSIGN_OR_RETURN(auto purchase, FindPurchase(tx, "WHERE p.id = $1", {request.purchase_id}));
  std::optional<Transfer> post;
  if (!hold_id.empty()) {
    CLOZIT_ASSIGN_OR_RETURN(post, detail::FindTransfer(tx, hold_id + "/post"));
  }
  std::optional<Lot> lot;
  if (purchase) {
    CLOZIT_ASSIGN_OR_RETURN(lot, detail::FindLot(tx, purchase->lot_id));
  }
  Credits restored;
  std::string restored_lot;
  if (purchase && post && post->amount.micros() > 0 && lot && !lot->ExpiredAt(now)) {
    TransferSpec restore;
    restore.id = post->id + "/reversed";
    restore.debit_account_id = post->credit_account_id;
    restore.credit_account_id = TenantCreditsAccount(tenant).id;
    restore.amount = post->amount;
    restore.code = "refund.reversed";
    restore.corrects = post->id;
    restore.reference = id;
    restore.tenant_id = tenant;
    restore.new_lot = LotSpec{lot->kind, lot->priority, lot->expires_at};
    CLOZIT_TRY(ledger_.CreateTransfers(tx, {restore}, now));
    CLOZIT_ASSIGN_OR_RETURN(auto lots,
                            tx.Query("SELECT id FROM ledger_lots WHERE source_transfer_id = $1", {restore.id}));
    if (lots.empty()) return Error::Internal("the reversal of refund request " + id + " made no lot");
    restored_lot = lots.front().Text(0);
    CLOZIT_TRY(tx.Exec("UPDATE billing_purchases SET lot_id = $2 WHERE id = $1", {purchase->id.str(), restored_lot}));
    restored = post->amount;
  }
  const std::string error = "refund " + refund.refund_id + " " + refund.status +
                            " at the payment provider after approval; " + restored.ToString() + " credits restored";
  CLOZIT_TRY(
      tx.Exec("UPDATE billing_refund_requests SET status = 'reversed', last_error = $2, updated_at = $3 "
              "WHERE id = $1",
              {id, error, detail::Ms(now)}));
  json details = {{"provider_refund_id", refund.refund_id},
                  {"status", refund.status},
                  {"restored_credits", restored.ToString()},
                  {"lot_id", restored_lot}};
  CLOZIT_TRY(audit_.Record(tx, kPaymentProviderActor, {"refund_request.reverse", "refund_request", id, details.dump()},
                           tenant));
  CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
  spdlog::warn("refund request {} was reversed: its refund {} {} at the payment provider after approval", id,
               refund.refund_id, refund.status);
  return ReportedRefundOutcome{true, "refund request " + id + " reversed: " + error};
}

Result<ReportedRefundOutcome> Purchases::ApplyReportedRefund(Tx& tx, const ReportedRefund& refund, TimePoint now) {
  const std::string& id = refund.request_id;
  CLOZIT_ASSIGN_OR_RETURN(auto stored, FindRefund(tx, id, ""));
  if (!stored) return ReportedRefundOutcome{false, "no refund request " + id};
  const RefundRequest& request = stored->view;
  if (request.status == RequestStatus::kApproved) {
    if ((refund.status == "failed" || refund.status == "canceled") && refund.refund_id == request.provider_refund_id) {
      // Rare (a closed card account): the money came back to the operator after the credits left the tenant.
      CLOZIT_ASSIGN_OR_RETURN(auto disputed, tx.Query("SELECT 1 FROM billing_disputes WHERE purchase_id = $1 AND "
                                                      "status IN ('open', 'lost')",
                                                      {request.purchase_id}));
      if (disputed.empty()) return ReverseApprovedRefund(tx, request, stored->hold_transfer_id, refund, now);
      // The card network has the payment (or may take it): whether the tenant gets credits back, and which, is
      // the operator's call — flagged, never silently dropped.
      const std::string credits = request.refunded_credits ? request.refunded_credits->ToString() : "0";
      spdlog::error(
          "refund request {} was approved, then its refund {} {} at the payment provider while its purchase is "
          "disputed: {} credits are for an operator to settle",
          id, refund.refund_id, refund.status, credits);
      json details = {{"provider_refund_id", refund.refund_id}, {"status", refund.status}, {"credits", credits}};
      CLOZIT_TRY(audit_.Record(tx, kPaymentProviderActor,
                               {"refund_request.failed_after_approval", "refund_request", id, details.dump()},
                               request.tenant_id.str()));
      return ReportedRefundOutcome{false,
                                   "refund request " + id + " was approved, but refund " + refund.refund_id + " " +
                                       refund.status + " while its purchase is disputed: settle its " + credits +
                                       " credits by hand",
                                   true};
    }
    return ReportedRefundOutcome{false, "refund request " + id + " was approved already"};
  }
  if (request.status != RequestStatus::kPending) {
    // Rejected after its earmark lapsed, yet the money went back: charge.refunded takes the credits back as a
    // refund made outside Clozit, since only approved requests count as Clozit's own.
    return ReportedRefundOutcome{false, "refund request " + id + " is " +
                                            std::string(RequestStatusName(request.status)) +
                                            "; the charge's refund event accounts for it"};
  }
  CLOZIT_ASSIGN_OR_RETURN(auto purchase, FindPurchase(tx, "WHERE p.id = $1", {request.purchase_id}));
  if (!purchase || purchase->payment_reference != refund.payment_reference || purchase->currency != refund.currency) {
    spdlog::warn("refund {} reported for request {} does not match its purchase's payment", refund.refund_id, id);
    return ReportedRefundOutcome{
        false, "refund " + refund.refund_id + " is not of the payment refund request " + id + " refunds"};
  }
  std::optional<PendingStatus> pending;
  if (!stored->hold_transfer_id.empty()) {
    CLOZIT_ASSIGN_OR_RETURN(pending, detail::FindPending(tx, stored->hold_transfer_id));
  }
  const bool held = Live(pending, now);
  if (refund.status == "failed" || refund.status == "canceled") {
    // Only the failure of the attempt the earmark is for releases it: an older attempt's says nothing about
    // the current one, which may still pay out.
    const bool own = refund.attempt.empty() || refund.attempt == stored->hold_transfer_id;
    if (held && !own) {
      return ReportedRefundOutcome{false, "refund " + refund.refund_id + " of an earlier attempt " + refund.status};
    }
    if (held) {
      CLOZIT_TRY(ReleaseRefundHold(tx, stored->hold_transfer_id, now));
    }
    const std::string error = "the payment provider reports refund " + refund.refund_id + " " + refund.status;
    if (own && !held && InDoubt(pending)) {
      // The lapsed attempt is no longer in doubt: it paid nothing.
      CLOZIT_TRY(SettleUnpaidAttempt(tx, request, *pending, error, now));
      return ReportedRefundOutcome{true, error + "; the attempt paid nothing"};
    }
    CLOZIT_TRY(tx.Exec("UPDATE billing_refund_requests SET last_error = $2, updated_at = $3 WHERE id = $1",
                       {id, error, detail::Ms(now)}));
    return ReportedRefundOutcome{held, error + (held ? "; its earmark is released" : "")};
  }
  if (refund.status != "succeeded") {
    return ReportedRefundOutcome{false, "refund " + refund.refund_id + " is " + refund.status + " at the provider"};
  }
  std::string hold_id = stored->hold_transfer_id;
  if (hold_id.empty()) return ReportedRefundOutcome{false, "refund request " + id + " was never sent to the provider"};
  // The credits the reported money buys back: the hold's, when it is the money asked for that hold (no second
  // rounding), else its share of the purchase (the hold may be a later attempt's, for another amount).
  CLOZIT_ASSIGN_OR_RETURN(auto last_hold, detail::FindTransfer(tx, hold_id));
  const Credits due = refund.amount_minor == ProRata(purchase->price_minor, last_hold->amount, purchase->credits)
                          ? last_hold->amount
                          : CreditsShare(purchase->credits, refund.amount_minor, purchase->price_minor);
  Credits shortfall;
  if (!held) {
    // The earmark lapsed before the outcome was known: take again what is due, as far as the lot still has it.
    // Lapsed but perhaps not yet swept: expired as the sweep would, so that its earmark is not counted against it.
    if (pending) CLOZIT_TRY(CloseHold(tx, *pending, now));
    CLOZIT_ASSIGN_OR_RETURN(auto lot, detail::FindLot(tx, purchase->lot_id));
    const Credits takeable = (!lot || lot->ExpiredAt(now)) ? Credits() : lot->Unreserved();
    const Credits amount = std::min(due, takeable);
    shortfall = Credits::FromMicros(due.micros() - amount.micros());
    if (amount.micros() <= 0) {
      CLOZIT_TRY(tx.Exec(
          "UPDATE billing_refund_requests SET status = 'approved', refunded_credits = 0, refunded_minor = $2, "
          "provider_refund_id = $3, last_error = NULL, decided_by = $4, decided_at = $5, updated_at = $5 WHERE id = $1",
          {id, refund.amount_minor, refund.refund_id, kPaymentProviderActor.Label(), detail::Ms(now)}));
    } else {
      CLOZIT_ASSIGN_OR_RETURN(hold_id, HoldForRefund(tx, request, *purchase, amount, now));
    }
  }
  if (hold_id != stored->hold_transfer_id || held) {
    CLOZIT_TRY(CompleteRefund(tx, id, hold_id, {refund.refund_id, refund.amount_minor}, refund.currency,
                              kPaymentProviderActor, now, due));
  }
  if (shortfall.micros() > 0) {
    spdlog::warn("refund request {} was paid out after its earmark lapsed; {} credits were already used", id,
                 shortfall.ToString());
    json details = {{"provider_refund_id", refund.refund_id}, {"shortfall", shortfall.ToString()}};
    CLOZIT_TRY(audit_.Record(tx, kPaymentProviderActor,
                             {"refund_request.shortfall", "refund_request", id, details.dump()},
                             request.tenant_id.str()));
  }
  return ReportedRefundOutcome{
      true, "refund request " + id + " approved: the provider reports refund " + refund.refund_id + " succeeded" +
                (shortfall.micros() > 0 ? "; short " + shortfall.ToString() + " credits" : "")};
}

Result<void> Purchases::CloseHold(Tx& tx, const PendingStatus& hold, TimePoint now) {
  if (hold.state != PendingState::kPending) return Ok();
  if (Live(hold, now)) return ReleaseRefundHold(tx, hold.transfer_id, now);
  CLOZIT_TRY(ledger_.CreateTransfers(tx, {ExpiryOf(hold.transfer_id)}, now));
  return Ok();
}

Result<void> Purchases::SettleUnpaidAttempt(Tx& tx, const RefundRequest& request, const PendingStatus& hold,
                                            const std::string& why, TimePoint now) {
  const std::string id = request.id.str();
  CLOZIT_TRY(CloseHold(tx, hold, now));
  // No attempt in flight any more: the provider's events about the payment apply again (WaitForRefundInFlight),
  // and the next approval makes a new attempt under a new key.
  CLOZIT_TRY(
      tx.Exec("UPDATE billing_refund_requests SET hold_transfer_id = NULL, last_error = $2, updated_at = $3 "
              "WHERE id = $1",
              {id, why, detail::Ms(now)}));
  json details = {{"hold_transfer_id", hold.transfer_id}, {"outcome", why}};
  return audit_.Record(tx, kPaymentProviderActor,
                       {"refund_request.attempt_unpaid", "refund_request", id, details.dump()},
                       request.tenant_id.str());
}

Result<RefundRequest> Purchases::ResolveRefundInDoubt(const std::string& id) {
  // What is in doubt, read outside the provider call.
  std::string payment_reference, currency, hold_id;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(StoredRefund stored, RequireRefund(tx, id, ""));
    CLOZIT_ASSIGN_OR_RETURN(auto purchase, FindPurchase(tx, "WHERE p.id = $1", {stored.view.purchase_id}));
    if (!purchase) return Error::Internal("refund request " + id + " has no purchase");
    payment_reference = purchase->payment_reference;
    currency = purchase->currency;
    hold_id = stored.view.status == RequestStatus::kPending ? stored.hold_transfer_id : "";
    return Ok();
  }));
  std::vector<ProviderRefundState> found;
  if (!hold_id.empty()) {
    CLOZIT_ASSIGN_OR_RETURN(found, provider_.FindRefunds(payment_reference, id));
  }
  RefundRequest result;
  CLOZIT_TRY(detail::WriteRacingOtherNodes(db_, [&](Tx& tx) -> Result<void> {
    const TimePoint now = clock_.Now();
    CLOZIT_ASSIGN_OR_RETURN(StoredRefund stored, RequireRefund(tx, id, ""));
    result = stored.view;
    // Decided meanwhile (an event, another node): nothing is in doubt any more, or another attempt is.
    if (hold_id.empty() || stored.view.status != RequestStatus::kPending || stored.hold_transfer_id != hold_id) {
      return Ok();
    }
    CLOZIT_ASSIGN_OR_RETURN(auto pending, detail::FindPending(tx, hold_id));
    if (!InDoubt(pending)) {
      return Ok();
    }
    // The request is still pending, so no refund made for it has been accounted for: one paid out is the
    // request's (should two attempts both have paid, the second is the charge's refund event's to take back).
    for (const ProviderRefundState& refund : found) {
      if (refund.status != "succeeded") continue;
      CLOZIT_TRY(ApplyReportedRefund(
          tx, {id, refund.refund_id, payment_reference, refund.amount_minor, currency, refund.status, refund.attempt},
          now));
      CLOZIT_ASSIGN_OR_RETURN(StoredRefund after, RequireRefund(tx, id, ""));
      result = std::move(after.view);
      return Ok();
    }
    for (const ProviderRefundState& refund : found) {
      if (refund.status == "pending" || refund.status == "requires_action") {
        return Error::Make(ErrorCode::kUnavailable, "refund " + refund.refund_id + " of request " + id +
                                                        " is pending at the payment provider; approve it again once "
                                                        "the provider reports it");
      }
    }
    CLOZIT_TRY(SettleUnpaidAttempt(tx, stored.view, *pending,
                                   found.empty() ? "the payment provider has no refund for the attempt in doubt"
                                                 : "the payment provider reports the attempt's refund failed",
                                   now));
    CLOZIT_ASSIGN_OR_RETURN(StoredRefund after, RequireRefund(tx, id, ""));
    result = std::move(after.view);
    return Ok();
  }));
  return result;
}

Result<RefundResolutions> Purchases::ResolveRefundsInDoubt(int64_t limit) {
  const int64_t now = detail::Ms(clock_.Now());
  // Attempts whose earmark lapsed (or is due to) with their outcome unknown; live ones wait for their event or
  // their approval's retry.
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT r.id FROM billing_refund_requests r JOIN ledger_pending p ON p.transfer_id = "
                           "r.hold_transfer_id WHERE r.status = 'pending' AND (p.state = 'expired' OR (p.state = "
                           "'pending' AND p.expires_at <= $1)) ORDER BY r.id LIMIT $2",
                           {now, limit}));
  RefundResolutions report;
  for (const Row& row : rows) {
    const std::string id = row.Text(0);
    auto resolved = ResolveRefundInDoubt(id);
    if (!resolved) {
      report.failed.push_back(id + ": " + resolved.error().message);
    } else if (resolved->status == RequestStatus::kApproved) {
      report.approved.push_back(id);
    } else {
      report.unpaid.push_back(id);
    }
  }
  return report;
}

Result<RefundRequest> Purchases::RejectRefund(const std::string& id, const std::string& reason,
                                              const privacy::Actor& actor) {
  CLOZIT_TRY(ValidateDecisionReason(reason, true));
  RefundRequest result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    const TimePoint now = clock_.Now();
    CLOZIT_ASSIGN_OR_RETURN(StoredRefund stored, RequireRefund(tx, id, ""));
    if (stored.view.status != RequestStatus::kPending) return NotPending("refund request", id, stored.view.status);
    // A refund whose outcome at the provider is unknown holds its credits: only another approval learns whether
    // the money went back, so it cannot be rejected meanwhile.
    if (!stored.hold_transfer_id.empty()) {
      CLOZIT_ASSIGN_OR_RETURN(auto pending, detail::FindPending(tx, stored.hold_transfer_id));
      if (Live(pending, now)) {
        return Error::Make(ErrorCode::kConflict, "refund request " + id + " is in doubt at the payment provider (" +
                                                     stored.view.last_error +
                                                     "): approve it again to learn the outcome");
      }
    }
    CLOZIT_TRY(
        tx.Exec("UPDATE billing_refund_requests SET status = 'rejected', decision_reason = $2, "
                "decided_by = $3, decided_at = $4, updated_at = $4 WHERE id = $1",
                {id, reason, actor.Label(), detail::Ms(now)}));
    CLOZIT_TRY(audit_.Record(tx, actor,
                             {"refund_request.reject", "refund_request", id, json{{"reason", reason}}.dump()},
                             stored.view.tenant_id.str()));
    CLOZIT_ASSIGN_OR_RETURN(stored, RequireRefund(tx, id, ""));
    result = std::move(stored.view);
    return Ok();
  }));
  return result;
}

// ---------------------------------------------------------------- adjustments

Result<AdjustmentRequest> Purchases::RequestAdjustment(const TenantId& tenant_id,
                                                       const std::vector<std::string>& transfer_ids,
                                                       const std::string& description, const privacy::Actor& actor) {
  const TimePoint now = clock_.Now();
  CLOZIT_TRY(ValidateTenant(tenant_id));
  if (transfer_ids.empty() || transfer_ids.size() > kMaxClaimCharges) {
    return Error::InvalidArgument("charge_ids", "name 1-100 charges (ledger transfer ids of settled usage)");
  }
  std::set<std::string> unique(transfer_ids.begin(), transfer_ids.end());
  if (unique.size() != transfer_ids.size()) return Error::InvalidArgument("charge_ids", "a charge is named twice");
  if (description.empty() || description.size() > kMaxDescription) {
    return Error::InvalidArgument("description", "description must be 1-4000 characters");
  }
  const std::string tenant = tenant_id.str();
  AdjustmentRequest result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(RequireTenant(tx, tenant_id));
    const std::string id = AdjustmentRequestId::New(clock_, random_).str();
    CLOZIT_TRY(
        tx.Exec("INSERT INTO billing_adjustment_requests (id, tenant_id, description, status, restored, "
                "created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4)",
                {id, tenant, description, detail::Ms(now)}));
    for (const std::string& transfer_id : transfer_ids) {
      CLOZIT_ASSIGN_OR_RETURN(auto charge, detail::FindTransfer(tx, transfer_id));
      if (!charge || charge->tenant_id != tenant || charge->code.rfind("usage.", 0) != 0) {
        return Error::Make(ErrorCode::kNotFound, "charge " + transfer_id + " not found among your settled usage",
                           "charge_ids");
      }
      json evidence = {{"transfer_id", charge->id},
                       {"category", charge->code.substr(6)},
                       {"amount", charge->amount.ToString()},
                       {"charged_at", FormatRfc3339(charge->created_at)},
                       {"reservation_id", charge->reference}};
      CLOZIT_ASSIGN_OR_RETURN(
          auto source,
          tx.Query("SELECT r.purpose, r.created_at, r.estimate, r.hold_transfer_id, p.resolved_at "
                   "FROM billing_reservations r JOIN ledger_pending p ON p.transfer_id = r.hold_transfer_id "
                   "WHERE r.id = $1 AND r.tenant_id = $2",
                   {charge->reference, tenant}));
      if (!source.empty()) {
        const Row& row = source.front();
        evidence["reservation"] = {{"purpose", row.Text(0)},
                                   {"reserved_at", FormatRfc3339(FromUnixMillis(row.Int(1)))},
                                   {"estimate", Credits::FromMicros(row.Int(2)).ToString()},
                                   {"hold_transfer_id", row.Text(3)}};
        if (!row.IsNull(4)) evidence["reservation"]["settled_at"] = FormatRfc3339(FromUnixMillis(row.Int(4)));
      }
      CLOZIT_TRY(
          tx.Exec("INSERT INTO billing_adjustment_items (request_id, transfer_id, charged, evidence, restored) "
                  "VALUES ($1, $2, $3, $4, 0)",
                  {id, transfer_id, charge->amount.micros(), evidence.dump()}));
    }
    json details = {{"charge_ids", transfer_ids}};
    CLOZIT_TRY(
        audit_.Record(tx, actor, {"adjustment_request.create", "adjustment_request", id, details.dump()}, tenant));
    CLOZIT_ASSIGN_OR_RETURN(result, RequireAdjustment(tx, id, tenant));
    return Ok();
  }));
  return result;
}

Result<AdjustmentRequest> Purchases::GetAdjustmentRequest(const TenantId& tenant_id, const std::string& id) {
  AdjustmentRequest result;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(result, RequireAdjustment(tx, id, tenant_id.str()));
    return Ok();
  }));
  return result;
}

Result<Page<AdjustmentRequest>> Purchases::ListAdjustmentRequests(const TenantId& tenant_id, const PageRequest& page,
                                                                  const std::string& status) {
  Page<AdjustmentRequest> out;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    out = {};
    CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT id FROM billing_adjustment_requests WHERE ($1 = '' OR "
                                                "tenant_id = $1) AND ($2 = '' OR id < $2) AND ($4 = '' OR "
                                                "status = $4) ORDER BY id DESC LIMIT $3",
                                                {tenant_id.str(), page.cursor, page.limit + 1, status}));
    for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
      CLOZIT_ASSIGN_OR_RETURN(auto request, RequireAdjustment(tx, rows[i].Text(0), tenant_id.str()));
      out.items.push_back(std::move(request));
    }
    if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id.str();
    return Ok();
  }));
  return out;
}

Result<AdjustmentRequest> Purchases::ApproveAdjustment(const std::string& id, const AdjustmentDecision& decision,
                                                       const privacy::Actor& actor) {
  CLOZIT_TRY(ValidateDecisionReason(decision.reason, false));
  AdjustmentRequest result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    const TimePoint now = clock_.Now();
    CLOZIT_ASSIGN_OR_RETURN(AdjustmentRequest request, RequireAdjustment(tx, id, ""));
    if (request.status != RequestStatus::kPending) return NotPending("adjustment request", id, request.status);
    const std::string tenant = request.tenant_id.str();
    for (const auto& [transfer_id, amount] : decision.amounts) {
      bool known = std::any_of(request.items.begin(), request.items.end(),
                               [&](const AdjustmentItem& item) { return item.transfer_id == transfer_id; });
      if (!known) return Error::InvalidArgument("amounts", "charge " + transfer_id + " is not part of this claim");
      if (amount.micros() < 0) return Error::InvalidArgument("amounts", "amounts must not be negative");
    }
    // What each charge may still get back, over every claim ever approved on it.
    std::vector<std::pair<AdjustmentItem, Credits>> grants;
    Credits total;
    bool anything_left = false;
    for (const AdjustmentItem& item : request.items) {
      CLOZIT_ASSIGN_OR_RETURN(Credits so_far, RestoredSoFar(tx, item.transfer_id));
      const Credits left = Credits::FromMicros(std::max<int64_t>(0, item.charged.micros() - so_far.micros()));
      anything_left = anything_left || left.micros() > 0;
      Credits want = left;
      for (const auto& [transfer_id, amount] : decision.amounts) {
        if (transfer_id == item.transfer_id) want = amount;
      }
      if (want > left) {
        return Error::InvalidArgument("amounts", "charge " + item.transfer_id + " was " + item.charged.ToString() +
                                                     " of which " + so_far.ToString() +
                                                     " was already restored: at most " + left.ToString() + " remains");
      }
      CLOZIT_ASSIGN_OR_RETURN(total, total.Add(want));
      grants.emplace_back(item, want);
    }
    if (total.micros() <= 0) {
      // Zero asked where something was left is the caller's mistake; nothing left at all is the claim's state.
      if (anything_left) {
        return Error::InvalidArgument("amounts", "amounts restore nothing: approve at least one credit, or reject");
      }
      return Error::Make(ErrorCode::kConflict, "nothing left to restore: every charge of adjustment request " + id +
                                                   " was already restored in full");
    }
    CLOZIT_ASSIGN_OR_RETURN(Account credits, ledger_.OpenAccount(tx, TenantCreditsAccount(tenant)));
    std::vector<TransferSpec> batch;
    if (decision.resolution == AdjustmentResolution::kCreditAdjustment) {
      // Each restoration corrects its charge: revenue gives back what it earned.
      for (const auto& [item, amount] : grants) {
        if (amount.micros() == 0) continue;
        CLOZIT_ASSIGN_OR_RETURN(auto charge, detail::FindTransfer(tx, item.transfer_id));
        TransferSpec restore;
        restore.id = id + "/restore/" + std::to_string(batch.size() + 1);
        restore.debit_account_id = charge->credit_account_id;
        restore.credit_account_id = credits.id;
        restore.amount = amount;
        restore.code = "adjustment.credit";
        restore.corrects = charge->id;
        restore.reference = id;
        restore.tenant_id = tenant;
        restore.new_lot = LotSpec{LotKind::kReplacement, 0, std::nullopt};
        batch.push_back(std::move(restore));
      }
    } else {
      CLOZIT_ASSIGN_OR_RETURN(Account issuance,
                              ledger_.OpenAccount(tx, IssuanceAccount(LotKind::kPromotional, PlatformShard(tenant))));
      TransferSpec replacement;
      replacement.id = id + "/replacement";
      replacement.debit_account_id = issuance.id;
      replacement.credit_account_id = credits.id;
      replacement.amount = total;
      replacement.code = "adjustment.replacement";
      replacement.reference = id;
      replacement.tenant_id = tenant;
      replacement.new_lot = LotSpec{LotKind::kPromotional, 0, decision.expires_at};
      batch.push_back(std::move(replacement));
    }
    CLOZIT_TRY(ledger_.CreateTransfers(tx, batch, now));
    CLOZIT_ASSIGN_OR_RETURN(auto lots,
                            tx.Query("SELECT id FROM ledger_lots WHERE source_transfer_id = $1", {batch.front().id}));
    for (const auto& [item, amount] : grants) {
      CLOZIT_TRY(tx.Exec("UPDATE billing_adjustment_items SET restored = $3 WHERE request_id = $1 AND transfer_id = $2",
                         {id, item.transfer_id, amount.micros()}));
    }
    CLOZIT_TRY(
        tx.Exec("UPDATE billing_adjustment_requests SET status = 'approved', resolution = $2, restored = $3, "
                "lot_id = $4, decision_reason = $5, decided_by = $6, decided_at = $7, updated_at = $7 "
                "WHERE id = $1",
                {id, std::string(AdjustmentResolutionName(decision.resolution)), total.micros(),
                 lots.empty() ? storage::Value(nullptr) : storage::Value(lots.front().Text(0)), decision.reason,
                 actor.Label(), detail::Ms(now)}));
    json transfers = json::array();
    for (const TransferSpec& t : batch) transfers.push_back(t.id);
    json details = {{"resolution", AdjustmentResolutionName(decision.resolution)},
                    {"restored", total.ToString()},
                    {"transfers", transfers},
                    {"reason", decision.reason}};
    CLOZIT_TRY(
        audit_.Record(tx, actor, {"adjustment_request.approve", "adjustment_request", id, details.dump()}, tenant));
    CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
    CLOZIT_ASSIGN_OR_RETURN(result, RequireAdjustment(tx, id, ""));
    return Ok();
  }));
  return result;
}

Result<AdjustmentRequest> Purchases::RejectAdjustment(const std::string& id, const std::string& reason,
                                                      const privacy::Actor& actor) {
  CLOZIT_TRY(ValidateDecisionReason(reason, true));
  AdjustmentRequest result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    const TimePoint now = clock_.Now();
    CLOZIT_ASSIGN_OR_RETURN(AdjustmentRequest request, RequireAdjustment(tx, id, ""));
    if (request.status != RequestStatus::kPending) return NotPending("adjustment request", id, request.status);
    CLOZIT_TRY(
        tx.Exec("UPDATE billing_adjustment_requests SET status = 'rejected', decision_reason = $2, "
                "decided_by = $3, decided_at = $4, updated_at = $4 WHERE id = $1",
                {id, reason, actor.Label(), detail::Ms(now)}));
    CLOZIT_TRY(audit_.Record(tx, actor,
                             {"adjustment_request.reject", "adjustment_request", id, json{{"reason", reason}}.dump()},
                             request.tenant_id.str()));
    CLOZIT_ASSIGN_OR_RETURN(result, RequireAdjustment(tx, id, ""));
    return Ok();
  }));
  return result;
}

}  // namespace clozit::billing
