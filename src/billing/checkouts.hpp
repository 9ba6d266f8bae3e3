// billing/checkouts: credit packs bought through a payment provider's hosted
// checkout (Stripe Checkout), and what the provider's events do to them.
//
// Packs      operator-configured (billing.credit_packs): id, credits, price
//            in minor units, currency.
// Start      a tenant picks a pack: a pending checkout is recorded under a
//            purchase id reserved at once (idempotent per tenant by key),
//            then the provider opens a session keyed by that purchase id (a
//            retry after a crash gets the same session back), and its URL is
//            stored and returned.
// Paid       the provider reports the payment (a verified webhook): in the
//            caller's transaction, the checkout moves pending → completed and
//            the purchase with its credit lot is recorded — exactly once,
//            however many events say so. Amount, currency and tenant must
//            match what was offered, or the event is rejected (kept for the
//            operator, nothing granted).
// Refunded   the provider reports a payment's cumulative refunded amount.
//            What Clozit refunded itself (approved refund requests) is
//            subtracted; the rest was refunded outside Clozit, and its share
//            of the purchase's credits is taken back from the purchase lot's
//            unreserved remainder. What cannot be taken back (spent,
//            reserved, expired) is recorded as a shortfall for operators.
//            Cumulative totals make duplicates and stale events no-ops; a
//            refund event for a payment not completed yet is deferred and
//            applied when the payment completes; while a Clozit refund of
//            the purchase is in flight the event is refused (unavailable) so
//            the provider redelivers it after the refund is settled.
// Disputed   a card holder disputes a payment (a chargeback, or an inquiry
//            that may become one): the disputed amount's share of the
//            purchase's credits is frozen — a hold on the purchase lot that
//            does not lapse; what was already spent, reserved or expired is
//            the dispute's shortfall — until it closes: lost, the frozen
//            credits go for good and the shortfall is recorded for operators;
//            won, or an inquiry closed, they are spendable again. Refund
//            requests for a disputed purchase are refused. Each dispute is
//            opened and closed at most once; a close reported first does both.
//            A dispute of a payment not completed yet is deferred (the
//            webhook applies it when the payment completes, ADR 0030).
// Thread-safe; methods block on the database and the provider.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "billing/ledger.hpp"
#include "billing/payments.hpp"
#include "billing/purchases.hpp"
#include "common/clock.hpp"
#include "common/credits.hpp"
#include "common/ids.hpp"
#include "common/page.hpp"
#include "common/result.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::billing {

struct RefundShortfallTag {
  static constexpr const char* kPrefix = "rsf";
};
using RefundShortfallId = TypedId<RefundShortfallTag>;

struct CreditPack {
  std::string id;  // [a-z0-9_-], 1..40
  Credits credits;
  int64_t price_minor = 0;  // > 0
  std::string currency;     // ISO 4217, upper case
};

/// "starter:100:1000:USD, pro:1200:10000:EUR" (id:credits:price_minor:currency, comma-separated).
/// Errors name the field "billing.credit_packs".
Result<std::vector<CreditPack>> ParseCreditPacks(std::string_view text);

struct CheckoutSettings {
  std::vector<CreditPack> packs;
  std::string success_url = "http://127.0.0.1:8080/billing/success";
  std::string cancel_url = "http://127.0.0.1:8080/billing/cancelled";
};

struct Checkout {
  PurchaseId purchase_id;
  TenantId tenant_id;
  std::string pack_id;
  Credits credits;
  int64_t price_minor = 0;
  std::string currency;
  std::string status;  // pending | completed
  std::string session_id;
  std::string url;
  TimePoint created_at;
};

/// A completed payment, as the provider reported it.
struct PaidCheckout {
  std::string purchase_id;  // from the session's metadata / client_reference_id
  std::string tenant_id;    // from the metadata; must match
  std::string session_id;
  std::string payment_reference;  // the PaymentIntent
  int64_t amount_minor = 0;
  std::string currency;  // upper case
  /// When the provider says the payment completed (the event's creation): a delivery retried for days must not
  /// move the start of the refund window.
  std::optional<TimePoint> paid_at;
};

/// A payment's refunds so far, as the provider reported them.
struct ProviderRefund {
  std::string payment_reference;
  int64_t refunded_minor = 0;  // cumulative
  std::string currency;        // upper case
  /// When the provider stated the amount (the event's creation). A refund of Clozit's that failed and was
  /// reversed after this instant is still inside `refunded_minor`; without it, reversed refunds are not.
  std::optional<TimePoint> stated_at;
};

/// A dispute of a payment, as the provider reported it.
struct ProviderDispute {
  std::string dispute_id;         // the provider's (dp_…)
  std::string payment_reference;  // the PaymentIntent
  int64_t amount_minor = 0;
  std::string currency;  // upper case
  std::string reason;    // fraudulent, product_not_received, …
  /// The provider's status: won, lost and warning_closed close it; anything else (needs_response, under_review,
  /// warning_needs_response, …) means open.
  std::string status;
};

/// What an event did: processed | ignored | rejected | deferred, and why.
struct EventOutcome {
  std::string outcome;
  std::string detail;
};

struct RefundShortfall {
  RefundShortfallId id;
  TenantId tenant_id;
  std::string purchase_id;
  std::string provider;
  std::string event_id;
  int64_t refunded_minor = 0;
  std::string currency;
  Credits credits_due;
  Credits removed;
  Credits shortfall;
  TimePoint created_at;
};

class Checkouts {
 public:
  Checkouts(storage::Database& db, Ledger& ledger, Purchases& purchases, PaymentProvider& provider,
            privacy::AuditLog& audit, const Clock& clock, Random& random, CheckoutSettings settings)
      : db_(db),
        ledger_(ledger),
        purchases_(purchases),
        provider_(provider),
        audit_(audit),
        clock_(clock),
        random_(random),
        settings_(std::move(settings)) {}

  const std::vector<CreditPack>& packs() const { return settings_.packs; }

  Result<Checkout> Start(const TenantId& tenant_id, const std::string& pack_id, const std::string& idempotency_key,
                         const privacy::Actor& actor);

  /// Inside the caller's transaction (the one that stores the event).
  Result<EventOutcome> CompletePaid(storage::Tx& tx, const PaidCheckout& paid, const std::string& event_id,
                                    TimePoint now);
  /// Inside the caller's transaction. kUnavailable while a Clozit refund of the purchase is in flight.
  Result<EventOutcome> ApplyProviderRefund(storage::Tx& tx, const ProviderRefund& refund, const std::string& event_id,
                                           TimePoint now);

  /// Inside the caller's transaction: a dispute opened or closed (or both, when its close is the first news);
  /// "deferred" when no completed purchase has the payment yet.
  Result<EventOutcome> ApplyDispute(storage::Tx& tx, const ProviderDispute& dispute, const std::string& event_id,
                                    TimePoint now);

  /// Inside the caller's transaction: a refund the provider made (or failed) for one of Clozit's refund requests.
  Result<EventOutcome> ApplyReportedRefund(storage::Tx& tx, const ReportedRefund& refund, TimePoint now);

  /// Newest first.
  Result<Page<RefundShortfall>> ListShortfalls(const PageRequest& page);

 private:
  /// `shortfall.id` is assigned here.
  Result<void> RecordShortfall(storage::Tx& tx, const RefundShortfall& shortfall);

  storage::Database& db_;
  Ledger& ledger_;
  Purchases& purchases_;
  PaymentProvider& provider_;
  privacy::AuditLog& audit_;
  const Clock& clock_;
  Random& random_;
  const CheckoutSettings settings_;
};

}  // namespace clozit::billing
