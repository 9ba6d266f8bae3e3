// billing/billing: the billing components wired together, for the application
// and the API. Owns the ledger, charging, purchases, statements, the price
// book, phone-number fees (priced by the price book) and subscriptions; the
// payment provider is the caller's (an UnconfiguredPaymentProvider until the
// Stripe adapter lands: refunds of paid purchases then fail and stay pending).
#pragma once

#include "billing/charging.hpp"
#include "billing/ledger.hpp"
#include "billing/number_fees.hpp"
#include "billing/payments.hpp"
#include "billing/price_book.hpp"
#include "billing/purchases.hpp"
#include "billing/statements.hpp"
#include "billing/subscriptions.hpp"

namespace clozit::billing {

/// Refuses every refund: no payment provider is configured.
class UnconfiguredPaymentProvider : public PaymentProvider {
 public:
  Result<RefundReceipt> Refund(const RefundCall&) override {
    return Error::Make(ErrorCode::kUnavailable, "no payment provider is configured");
  }
};

/// What the application configures (the `[billing]` section of the configuration).
struct BillingSettings {
  NumberFeeSettings number_fees;
};

struct Billing {
  Billing(storage::Database& db, privacy::AuditLog& audit, const Clock& clock, Random& random,
          PaymentProvider& provider, BillingSettings settings = {})
      : ledger(db, clock, random),
        charging(db, ledger, audit, clock, random),
        purchases(db, ledger, charging, provider, audit, clock, random),
        statements(db, audit, clock, random),
        price_book(db, audit, clock),
        number_fees(db, ledger, audit, clock, random, PricedBy(price_book), settings.number_fees),
        subscriptions(db, ledger, price_book, audit, clock, random) {}

  Ledger ledger;
  Charging charging;
  Purchases purchases;
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
