// billing/billing: the billing components wired together, for the application
// and the API. Owns the ledger, charging, purchases, checkouts, statements,
// the price book, phone-number fees (priced by the price book) and
// subscriptions; the payment provider is the caller's (billing/stripe/ when
// configured, else an UnconfiguredPaymentProvider: checkouts are unavailable
// and refunds of paid purchases fail and stay pending).
#pragma once

#include "billing/charging.hpp"
#include "billing/checkouts.hpp"
#include "billing/ledger.hpp"
#include "billing/number_fees.hpp"
#include "billing/payments.hpp"
#include "billing/price_book.hpp"
#include "billing/purchases.hpp"
#include "billing/statements.hpp"
#include "billing/subscriptions.hpp"

namespace clozit::billing {

/// Refuses every refund: no payment provider is configured. A refusal, not an unknown outcome: nothing was
/// sent anywhere, so the refund's earmark is released at once rather than held in doubt.
class UnconfiguredPaymentProvider : public PaymentProvider {
 public:
  std::string name() const override { return "none"; }
  Result<RefundReceipt> Refund(const RefundCall&) override {
    return Error::Make(ErrorCode::kConflict, "no payment provider is configured");
  }
  Result<std::vector<ProviderRefundState>> FindRefunds(const std::string&, const std::string&) override {
    return std::vector<ProviderRefundState>();  // nothing was ever refunded through no provider
  }
  Result<CheckoutSession> CreateCheckoutSession(const CheckoutCall&) override {
    return Error::Make(ErrorCode::kUnavailable, "no payment provider is configured: buying credits is not available");
  }
};

/// What the application configures (the `[billing]` section of the configuration).
struct BillingSettings {
  NumberFeeSettings number_fees;
  CheckoutSettings checkout;
};

struct Billing {
  Billing(storage::Database& db, privacy::AuditLog& audit, const Clock& clock, Random& random,
          PaymentProvider& provider, BillingSettings settings = {})
      : ledger(db, clock, random),
        charging(db, ledger, audit, clock, random),
        purchases(db, ledger, charging, provider, audit, clock, random),
        checkouts(db, ledger, purchases, provider, audit, clock, random, std::move(settings.checkout)),
        statements(db, audit, clock, random),
        price_book(db, audit, clock),
        number_fees(db, ledger, audit, clock, random, PricedBy(price_book), settings.number_fees),
        subscriptions(db, ledger, price_book, audit, clock, random) {}

  Ledger ledger;
  Charging charging;
  Purchases purchases;
  Checkouts checkouts;
  Statements statements;
  PriceBook price_book;
  NumberFees number_fees;
  Subscriptions subscriptions;

 private:
  static NumberFeePricer PricedBy(PriceBook& book) {
    return [&book](storage::Tx& tx, const std::string& country, const std::string& number_type,
                   TimePoint at) -> Result<NumberFeeQuote> { return book.NumberFees(tx, country, number_type, at); };
  }
};

}  // namespace clozit::billing
