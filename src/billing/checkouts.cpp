#include "billing/checkouts.hpp"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <limits>

#include "billing/chart.hpp"
#include "billing/detail/store.hpp"
#include "billing/statements.hpp"
#include "storage/find_one.hpp"

namespace clozit::billing {
namespace {

using json = nlohmann::json;
using storage::Row;
using storage::Tx;

constexpr std::string_view kPacksField = "billing.credit_packs";

std::string Trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return std::string(text);
}

bool ValidPackId(const std::string& id) {
  return !id.empty() && id.size() <= 40 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::optional<int64_t> PositiveInt(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value <= 0) return std::nullopt;
  return value;
}

constexpr std::string_view kSelectCheckout =
    "SELECT purchase_id, tenant_id, pack_id, credits, price_minor, currency, status, session_id, session_url, "
    "created_at FROM billing_checkouts ";

Checkout CheckoutFrom(const Row& row) {
  Checkout c;
  c.purchase_id = PurchaseId(row.Text(0));
  c.tenant_id = TenantId(row.Text(1));
  c.pack_id = row.Text(2);
  c.credits = Credits::FromMicros(row.Int(3));
  c.price_minor = row.Int(4);
  c.currency = row.Text(5);
  c.status = row.Text(6);
  c.session_id = row.Text(7);
  c.url = row.Text(8);
  c.created_at = FromUnixMillis(row.Int(9));
  return c;
}

Result<std::optional<Checkout>> FindCheckout(Tx& tx, std::string_view where, const storage::Params& params) {
  return storage::FindOne(tx, std::string(kSelectCheckout) + std::string(where), params, CheckoutFrom);
}

// A completed purchase, found by the provider's payment it was paid with.
struct PaidPurchase {
  std::string id;
  std::string tenant_id;
  Credits credits;
  int64_t price_minor = 0;
  std::string currency;
  std::string lot_id;
};

Result<std::optional<PaidPurchase>> FindPaidPurchase(Tx& tx, const std::string& provider,
                                                     const std::string& payment_reference) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT id, tenant_id, credits, price_minor, currency, lot_id FROM "
                                              "billing_purchases WHERE provider = $1 AND payment_reference = $2",
                                              {provider, payment_reference}));
  if (rows.empty()) return std::optional<PaidPurchase>();
  const Row& row = rows.front();
  return std::optional<PaidPurchase>(
      PaidPurchase{row.Text(0), row.Text(1), Credits::FromMicros(row.Int(2)), row.Int(3), row.Text(4), row.Text(5)});
}

// What the purchase lot can still give up now: its unreserved remainder, nothing once it expired.
Result<Credits> Takeable(Tx& tx, const std::string& lot_id, TimePoint now) {
  CLOZIT_ASSIGN_OR_RETURN(auto lot, detail::FindLot(tx, lot_id));
  return (!lot || lot->ExpiredAt(now)) ? Credits() : lot->Unreserved();
}

// A refund of the purchase that Clozit is making and whose outcome is not known yet — its earmark live, or lapsed
// before the outcome was learned (until Purchases::ResolveRefundsInDoubt asks the provider): what the provider
// reports about the payment meanwhile cannot be told apart from it, so the event is to be delivered again later.
Result<void> WaitForRefundInFlight(Tx& tx, const std::string& purchase_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto in_flight,
                          tx.Query("SELECT r.id FROM billing_refund_requests r JOIN ledger_pending p ON "
                                   "p.transfer_id = r.hold_transfer_id WHERE r.purchase_id = $1 AND "
                                   "r.status = 'pending' AND p.state IN ('pending', 'expired')",
                                   {purchase_id}));
  if (in_flight.empty()) return Ok();
  return Error::Make(ErrorCode::kUnavailable, "refund request " + in_flight.front().Text(0) + " of purchase " +
                                                  purchase_id + " is in progress; deliver the event again later");
}

bool DisputeClosed(std::string_view status) {
  return status == "won" || status == "lost" || status == "warning_closed";
}

}  // namespace

Result<std::vector<CreditPack>> ParseCreditPacks(std::string_view text) {
  std::vector<CreditPack> packs;
  const std::string field(kPacksField);
  while (!Trim(text).empty()) {
    const size_t comma = text.find(',');
    const std::string entry = Trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (entry.empty()) continue;
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t colon = entry.find(':'); colon != std::string::npos; colon = entry.find(':', start)) {
      parts.push_back(entry.substr(start, colon - start));
      start = colon + 1;
    }
    parts.push_back(entry.substr(start));
    const std::string why = "pack \"" + entry + "\" must be id:credits:price_minor:CURRENCY";
    if (parts.size() != 4 || !ValidPackId(parts[0])) return Error::InvalidArgument(field, why);
    auto credits = Credits::Parse(parts[1]);
    auto price = PositiveInt(parts[2]);
    const std::string& currency = parts[3];
    const bool currency_ok = currency.size() == 3 &&
                             std::all_of(currency.begin(), currency.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    if (!credits || credits->micros() <= 0 || !price || !currency_ok) return Error::InvalidArgument(field, why);
    for (const CreditPack& other : packs) {
      if (other.id == parts[0]) return Error::InvalidArgument(field, "pack id " + parts[0] + " appears twice");
    }
    packs.push_back({parts[0], *credits, *price, currency});
  }
  return packs;
}

Result<Checkout> Checkouts::Start(const TenantId& tenant_id, const std::string& pack_id,
                                  const std::string& idempotency_key, const privacy::Actor& actor) {
  if (!detail::ValidKey(idempotency_key)) {
    return Error::InvalidArgument("Idempotency-Key", "buying credits moves money: send an Idempotency-Key");
  }
  auto pack = std::find_if(settings_.packs.begin(), settings_.packs.end(),
                           [&](const CreditPack& p) { return p.id == pack_id; });
  if (pack == settings_.packs.end()) return Error::InvalidArgument("pack_id", "no credit pack " + pack_id);
  const std::string tenant = tenant_id.str();

  // 1. The pending checkout, under a purchase id reserved now (or the one this key opened before).
  Checkout checkout;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    const TimePoint now = clock_.Now();
    CLOZIT_ASSIGN_OR_RETURN(
        auto existing, FindCheckout(tx, "WHERE tenant_id = $1 AND idempotency_key = $2", {tenant, idempotency_key}));
    if (existing) {
      if (existing->pack_id != pack_id) {
        return Error::Make(ErrorCode::kIdempotencyMismatch, "this Idempotency-Key opened a checkout for another pack",
                           "Idempotency-Key");
      }
      checkout = *existing;
      return Ok();
    }
    const std::string purchase_id = PurchaseId::New(clock_, random_).str();
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO billing_checkouts (purchase_id, tenant_id, idempotency_key, pack_id, credits, price_minor, "
        "currency, provider, status, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, "
        "$10)",
        {purchase_id, tenant, idempotency_key, pack_id, pack->credits.micros(), pack->price_minor, pack->currency,
         provider_.name(), actor.Label(), detail::Ms(now)}));
    json details = {{"pack_id", pack_id},
                    {"credits", pack->credits.ToString()},
                    {"price_minor", pack->price_minor},
                    {"currency", pack->currency}};
    CLOZIT_TRY(audit_.Record(tx, actor, {"checkout.start", "purchase", purchase_id, details.dump()}, tenant));
    CLOZIT_ASSIGN_OR_RETURN(auto stored, FindCheckout(tx, "WHERE purchase_id = $1", {purchase_id}));
    checkout = *stored;
    return Ok();
  }));
  if (!checkout.session_id.empty()) return checkout;

  // 2. The provider's session, outside any transaction; keyed by the purchase, so a retry gets the same one.
  CheckoutCall call;
  call.purchase_id = checkout.purchase_id.str();
  call.tenant_id = tenant;
  call.pack_id = checkout.pack_id;
  call.description = checkout.credits.ToString() + " Clozit credits (" + checkout.pack_id + ")";
  call.amount_minor = checkout.price_minor;
  call.currency = checkout.currency;
  call.success_url = settings_.success_url;
  call.cancel_url = settings_.cancel_url;
  call.idempotency_key = checkout.purchase_id.str();
  CLOZIT_ASSIGN_OR_RETURN(CheckoutSession session, provider_.CreateCheckoutSession(call));

  // 3. Remember it (the same session whoever gets here first).
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(
        tx.Exec("UPDATE billing_checkouts SET session_id = $2, session_url = $3 WHERE purchase_id = $1 AND "
                "session_id IS NULL",
                {checkout.purchase_id.str(), session.session_id, session.url}));
    CLOZIT_ASSIGN_OR_RETURN(auto stored, FindCheckout(tx, "WHERE purchase_id = $1", {checkout.purchase_id.str()}));
    checkout = *stored;
    return Ok();
  }));
  return checkout;
}

Result<EventOutcome> Checkouts::CompletePaid(Tx& tx, const PaidCheckout& paid, const std::string& event_id,
                                             TimePoint now) {
  CLOZIT_ASSIGN_OR_RETURN(auto checkout, FindCheckout(tx, "WHERE purchase_id = $1", {paid.purchase_id}));
  if (!checkout) return EventOutcome{"ignored", "no checkout " + paid.purchase_id + " (not opened by this Clozit)"};
  if (checkout->status == "completed") {
    return EventOutcome{"ignored", "purchase " + paid.purchase_id + " was already completed"};
  }
  // The event must describe exactly what was offered; anything else is kept for the operator, never granted.
  std::string mismatch;
  if (!paid.tenant_id.empty() && paid.tenant_id != checkout->tenant_id.str()) mismatch = "tenant";
  if (!checkout->session_id.empty() && paid.session_id != checkout->session_id) mismatch = "session";
  if (paid.amount_minor != checkout->price_minor) mismatch = "amount";
  if (paid.currency != checkout->currency) mismatch = "currency";
  if (paid.payment_reference.empty()) mismatch = "payment reference";
  if (!mismatch.empty()) {
    spdlog::warn("payment event {} for purchase {} rejected: its {} does not match the checkout", event_id,
                 paid.purchase_id, mismatch);
    return EventOutcome{"rejected", "the event's " + mismatch + " does not match checkout " + paid.purchase_id};
  }
  PurchaseRequest request;
  request.tenant_id = checkout->tenant_id;
  request.credits = checkout->credits;
  request.price_minor = checkout->price_minor;
  request.currency = checkout->currency;
  request.payment_reference = paid.payment_reference;
  request.provider = provider_.name();
  request.idempotency_key = "checkout/" + paid.purchase_id;
  request.actor = kPaymentProviderActor;
  // Never before the checkout was opened here (the event's clock is the provider's, and a payment cannot precede
  // its checkout), never after now (RecordPurchase).
  if (paid.paid_at) request.paid_at = std::max(*paid.paid_at, checkout->created_at);
  CLOZIT_ASSIGN_OR_RETURN(Purchase purchase, purchases_.RecordPurchase(tx, request, checkout->purchase_id, now));
  CLOZIT_TRY(
      tx.Exec("UPDATE billing_checkouts SET status = 'completed', payment_reference = $2, session_id = $3, "
              "completed_at = $4 WHERE purchase_id = $1",
              {paid.purchase_id, paid.payment_reference, paid.session_id, detail::Ms(now)}));
  EventOutcome outcome{"processed", "purchase " + purchase.id.str() + " completed: " + purchase.credits.ToString() +
                                        " credits in lot " + purchase.lot_id};
  // A refund event that arrived before this payment completed applies now.
  CLOZIT_ASSIGN_OR_RETURN(auto deferred,
                          tx.Query("SELECT event_id, amount_minor FROM billing_provider_events WHERE provider = $1 AND "
                                   "payment_reference = $2 AND outcome = 'deferred' AND type = 'charge.refunded' "
                                   "ORDER BY amount_minor DESC",
                                   {provider_.name(), paid.payment_reference}));
  if (!deferred.empty()) {
    CLOZIT_ASSIGN_OR_RETURN(EventOutcome refunded,
                            ApplyProviderRefund(tx, {paid.payment_reference, deferred.front().Int(1), paid.currency},
                                                deferred.front().Text(0), now));
    CLOZIT_TRY(
        tx.Exec("UPDATE billing_provider_events SET outcome = 'processed', detail = $3 WHERE provider = $1 AND "
                "payment_reference = $2 AND outcome = 'deferred' AND type = 'charge.refunded'",
                {provider_.name(), paid.payment_reference, "applied when the payment completed: " + refunded.detail}));
    outcome.detail += "; deferred refund applied: " + refunded.detail;
  }
  return outcome;
}

Result<EventOutcome> Checkouts::ApplyProviderRefund(Tx& tx, const ProviderRefund& refund, const std::string& event_id,
                                                    TimePoint now) {
  CLOZIT_ASSIGN_OR_RETURN(auto paid, FindPaidPurchase(tx, provider_.name(), refund.payment_reference));
  if (!paid) return EventOutcome{"deferred", "no completed purchase for payment " + refund.payment_reference + " yet"};
  const std::string purchase_id = paid->id;
  const std::string tenant = paid->tenant_id;
  const Credits purchased = paid->credits;
  const int64_t price_minor = paid->price_minor;
  const std::string lot_id = paid->lot_id;
  if (refund.currency != paid->currency) {
    return EventOutcome{"rejected", "refund currency " + refund.currency + " is not the purchase's"};
  }
  // A refund Clozit itself is making: its outcome decides what is Clozit's, so wait for it.
  CLOZIT_TRY(WaitForRefundInFlight(tx, purchase_id));
  // Clozit's own refunds: the approved ones, and those reversed after the provider stated this amount (a late or
  // redelivered event still counts a refund that failed since; reversed requests change no more after it).
  CLOZIT_ASSIGN_OR_RETURN(
      auto ours,
      tx.Query("SELECT COALESCE(SUM(refunded_minor), 0) FROM billing_refund_requests WHERE purchase_id = $1 "
               "AND (status = 'approved' OR (status = 'reversed' AND updated_at > $2))",
               {purchase_id, refund.stated_at ? detail::Ms(*refund.stated_at) : std::numeric_limits<int64_t>::max()}));
  const int64_t external_minor = std::max<int64_t>(0, refund.refunded_minor - ours.front().Int(0));
  CLOZIT_ASSIGN_OR_RETURN(auto seen, tx.Query("SELECT refunded_minor, credits_due FROM billing_provider_refunds "
                                              "WHERE purchase_id = $1",
                                              {purchase_id}));
  const int64_t seen_minor = seen.empty() ? 0 : seen.front().Int(0);
  const Credits seen_due = Credits::FromMicros(seen.empty() ? 0 : seen.front().Int(1));
  if (external_minor <= seen_minor) {
    return EventOutcome{"ignored", "nothing new refunded outside Clozit for purchase " + purchase_id};
  }
  const Credits due_total = CreditsShare(purchased, external_minor, price_minor);
  const Credits due = Credits::FromMicros(due_total.micros() - seen_due.micros());
  CLOZIT_ASSIGN_OR_RETURN(const Credits takeable, Takeable(tx, lot_id, now));
  const Credits removed = std::min(due, takeable);
  const Credits shortfall = Credits::FromMicros(due.micros() - removed.micros());
  if (removed.micros() > 0) {
    CLOZIT_ASSIGN_OR_RETURN(Account refunds, ledger_.OpenAccount(tx, RefundsAccount(PlatformShard(tenant))));
    TransferSpec take;
    take.id = "provider-refund/" + purchase_id + "/" + std::to_string(external_minor);
    take.debit_account_id = TenantCreditsAccount(tenant).id;
    take.credit_account_id = refunds.id;
    take.amount = removed;
    take.code = "refund.provider";
    take.reference = purchase_id;
    take.tenant_id = tenant;
    take.debit_lot_id = lot_id;
    CLOZIT_TRY(ledger_.CreateTransfers(tx, {take}, now));
    CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
  }
  if (shortfall.micros() > 0) {
    CLOZIT_TRY(RecordShortfall(tx, {RefundShortfallId(), TenantId(tenant), purchase_id, provider_.name(), event_id,
                                    external_minor, refund.currency, due, removed, shortfall, now}));
  }
  if (seen.empty()) {
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO billing_provider_refunds (purchase_id, refunded_minor, credits_due, removed, shortfall, "
        "updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
        {purchase_id, external_minor, due_total.micros(), removed.micros(), shortfall.micros(), detail::Ms(now)}));
  } else {
    CLOZIT_TRY(tx.Exec(
        "UPDATE billing_provider_refunds SET refunded_minor = $2, credits_due = $3, removed = removed + $4, "
        "shortfall = shortfall + $5, updated_at = $6 WHERE purchase_id = $1",
        {purchase_id, external_minor, due_total.micros(), removed.micros(), shortfall.micros(), detail::Ms(now)}));
  }
  json details = {{"event_id", event_id},          {"refunded_outside_minor", external_minor},
                  {"currency", refund.currency},   {"credits_due", due.ToString()},
                  {"removed", removed.ToString()}, {"shortfall", shortfall.ToString()}};
  CLOZIT_TRY(audit_.Record(tx, kPaymentProviderActor,
                           {"purchase.refunded_outside", "purchase", purchase_id, details.dump()}, tenant));
  if (shortfall.micros() > 0) {
    spdlog::warn(
        "purchase {} was refunded outside Clozit; {} credits were already used and are recorded as a "
        "shortfall",
        purchase_id, shortfall.ToString());
  }
  return EventOutcome{"processed", "refunded outside Clozit: " + std::to_string(external_minor) + " " +
                                       refund.currency + "; took back " + removed.ToString() + " credits, shortfall " +
                                       shortfall.ToString()};
}

Result<void> Checkouts::RecordShortfall(Tx& tx, const RefundShortfall& shortfall) {
  return tx.ExecLater(
      "INSERT INTO billing_refund_shortfalls (id, tenant_id, purchase_id, provider, event_id, refunded_minor, "
      "currency, credits_due, removed, shortfall, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
      {RefundShortfallId::New(clock_, random_).str(), shortfall.tenant_id.str(), shortfall.purchase_id,
       shortfall.provider, shortfall.event_id, shortfall.refunded_minor, shortfall.currency,
       shortfall.credits_due.micros(), shortfall.removed.micros(), shortfall.shortfall.micros(),
       detail::Ms(shortfall.created_at)},
      1);
}

Result<EventOutcome> Checkouts::ApplyDispute(Tx& tx, const ProviderDispute& dispute, const std::string& event_id,
                                             TimePoint now) {
  CLOZIT_ASSIGN_OR_RETURN(auto paid, FindPaidPurchase(tx, provider_.name(), dispute.payment_reference));
  // Stripe does not order its deliveries: the payment's completion may still come, and its disputes then apply
  // (stripe/webhooks.cpp). A payment that was never Clozit's stays deferred, harmlessly.
  if (!paid) {
    return EventOutcome{"deferred", "no completed purchase for payment " + dispute.payment_reference + " yet"};
  }
  if (dispute.currency != paid->currency) {
    return EventOutcome{"rejected", "dispute currency " + dispute.currency + " is not the purchase's"};
  }
  const std::string& tenant = paid->tenant_id;
  CLOZIT_ASSIGN_OR_RETURN(auto stored, tx.Query("SELECT status, credits_due, held, shortfall, hold_transfer_id, "
                                                "purchase_id FROM billing_disputes WHERE id = $1",
                                                {dispute.dispute_id}));
  if (!stored.empty() && stored.front().Text(5) != paid->id) {
    return EventOutcome{"rejected", "dispute " + dispute.dispute_id + " was opened for another purchase"};
  }
  if (!stored.empty() && stored.front().Text(0) != "open") {
    return EventOutcome{"ignored", "dispute " + dispute.dispute_id + " already closed as " + stored.front().Text(0)};
  }
  const bool closing = DisputeClosed(dispute.status);
  if (!stored.empty() && !closing) return EventOutcome{"ignored", "dispute " + dispute.dispute_id + " already open"};

  const int64_t disputed_minor = std::clamp<int64_t>(dispute.amount_minor, 0, paid->price_minor);
  Credits due, held, shortfall;
  std::string hold_id;
  std::string outcome;
  if (stored.empty()) {
    // A refund hold in doubt earmarks the lot: were the dispute to freeze only the rest and the refund then be
    // refused (Stripe refuses refunds of disputed charges), the released credits would be spendable meanwhile.
    CLOZIT_TRY(WaitForRefundInFlight(tx, paid->id));
    due = CreditsShare(paid->credits, disputed_minor, paid->price_minor);
    CLOZIT_ASSIGN_OR_RETURN(const Credits takeable, Takeable(tx, paid->lot_id, now));
    held = std::min(due, takeable);
    shortfall = Credits::FromMicros(due.micros() - held.micros());
    if (held.micros() > 0) {
      // No expiry: a dispute takes weeks, and the credits stay frozen until the card network decides.
      CLOZIT_ASSIGN_OR_RETURN(Account refunds, ledger_.OpenAccount(tx, RefundsAccount(PlatformShard(tenant))));
      TransferSpec hold;
      hold.id = "dispute/" + dispute.dispute_id;
      hold.kind = TransferKind::kPending;
      hold.debit_account_id = TenantCreditsAccount(tenant).id;
      hold.credit_account_id = refunds.id;
      hold.amount = held;
      hold.code = "refund.dispute";
      hold.reference = paid->id;
      hold.tenant_id = tenant;
      hold.debit_lot_id = paid->lot_id;
      CLOZIT_TRY(ledger_.CreateTransfers(tx, {hold}, now));
      hold_id = hold.id;
    }
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO billing_disputes (id, provider, tenant_id, purchase_id, amount_minor, currency, reason, status, "
        "credits_due, held, shortfall, hold_transfer_id, opened_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10, $11, $12)",
        {dispute.dispute_id, provider_.name(), tenant, paid->id, disputed_minor, dispute.currency, dispute.reason,
         due.micros(), held.micros(), shortfall.micros(), detail::TextOrNull(hold_id), detail::Ms(now)}));
    json details = {{"dispute_id", dispute.dispute_id}, {"reason", dispute.reason},
                    {"amount_minor", disputed_minor},   {"currency", dispute.currency},
                    {"credits_due", due.ToString()},    {"frozen", held.ToString()},
                    {"shortfall", shortfall.ToString()}};
    CLOZIT_TRY(
        audit_.Record(tx, kPaymentProviderActor, {"purchase.disputed", "purchase", paid->id, details.dump()}, tenant));
    CLOZIT_TRY(RecordBillingEvent(tx, tenant, "purchase.disputed", paid->id, details.dump(), now, random_));
    outcome = "dispute " + dispute.dispute_id + " opened: " + held.ToString() + " credits frozen, " +
              shortfall.ToString() + " already gone";
  } else {
    const Row& row = stored.front();
    due = Credits::FromMicros(row.Int(1));
    held = Credits::FromMicros(row.Int(2));
    shortfall = Credits::FromMicros(row.Int(3));
    hold_id = row.IsNull(4) ? "" : row.Text(4);
  }
  if (closing) {
    const bool lost = dispute.status == "lost";
    if (!hold_id.empty()) {
      TransferSpec resolve;
      resolve.pending_id = hold_id;
      if (lost) {
        resolve.id = hold_id + "/post";
        resolve.kind = TransferKind::kPostPending;
        resolve.amount = held;
        resolve.code = "refund.dispute_lost";
      } else {
        resolve.id = hold_id + "/void";
        resolve.kind = TransferKind::kVoidPending;
        resolve.code = "refund.dispute_released";
      }
      CLOZIT_TRY(ledger_.CreateTransfers(tx, {resolve}, now));
    }
    if (lost && shortfall.micros() > 0) {
      CLOZIT_TRY(RecordShortfall(tx, {RefundShortfallId(), TenantId(tenant), paid->id, provider_.name(), event_id,
                                      disputed_minor, dispute.currency, due, held, shortfall, now}));
      spdlog::warn("purchase {} lost a dispute; {} credits were already used and are recorded as a shortfall", paid->id,
                   shortfall.ToString());
    }
    CLOZIT_TRY(tx.ExecLater("UPDATE billing_disputes SET status = $2, closed_at = $3 WHERE id = $1",
                            {dispute.dispute_id, dispute.status, detail::Ms(now)}, 1));
    json details = {{"dispute_id", dispute.dispute_id},
                    {"status", dispute.status},
                    {lost ? "removed" : "released", held.ToString()},
                    {"shortfall", lost ? shortfall.ToString() : "0"}};
    CLOZIT_TRY(audit_.Record(tx, kPaymentProviderActor,
                             {"purchase.dispute_closed", "purchase", paid->id, details.dump()}, tenant));
    CLOZIT_TRY(RecordBillingEvent(tx, tenant, "purchase.dispute_closed", paid->id, details.dump(), now, random_));
    outcome += (outcome.empty() ? "dispute " + dispute.dispute_id : std::string(";")) + " closed as " + dispute.status +
               ": " + held.ToString() + (lost ? " credits removed" : " credits released");
  }
  CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
  return EventOutcome{"processed", outcome};
}

Result<EventOutcome> Checkouts::ApplyReportedRefund(Tx& tx, const ReportedRefund& refund, TimePoint now) {
  CLOZIT_ASSIGN_OR_RETURN(ReportedRefundOutcome applied, purchases_.ApplyReportedRefund(tx, refund, now));
  return EventOutcome{applied.applied          ? "processed"
                      : applied.needs_operator ? "rejected"
                                               : "ignored",
                      std::move(applied.detail)};
}

Result<Page<RefundShortfall>> Checkouts::ListShortfalls(const PageRequest& page) {
  Page<RefundShortfall> out;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    out = {};
    CLOZIT_ASSIGN_OR_RETURN(auto rows,
                            tx.Query("SELECT id, tenant_id, purchase_id, provider, event_id, refunded_minor, currency, "
                                     "credits_due, removed, shortfall, created_at FROM billing_refund_shortfalls "
                                     "WHERE ($1 = '' OR id < $1) ORDER BY id DESC LIMIT $2",
                                     {page.cursor, page.limit + 1}));
    for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
      const Row& row = rows[i];
      out.items.push_back({RefundShortfallId(row.Text(0)), TenantId(row.Text(1)), row.Text(2), row.Text(3), row.Text(4),
                           row.Int(5), row.Text(6), Credits::FromMicros(row.Int(7)), Credits::FromMicros(row.Int(8)),
                           Credits::FromMicros(row.Int(9)), FromUnixMillis(row.Int(10))});
    }
    if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id.str();
    return Ok();
  }));
  return out;
}

}  // namespace clozit::billing
