// billing/billing: the billing components wired together, for the application
// and the API. Owns the ledger, charging, purchases, statements and
// phone-number fees; the
// payment provider is the caller's (an UnconfiguredPaymentProvider until the
// Stripe adapter lands: refunds of paid purchases then fail and stay pending).
#pragma once

#include "billing/charging.hpp"
#include "billing/ledger.hpp"
#include "billing/number_fees.hpp"
#include "billing/payments.hpp"
#include "billing/purchases.hpp"
#include "billing/statements.hpp"

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
  /// Phone-number fees per month until the price book prices them: monthly, regulatory.
  Credits default_number_monthly_fee = Credits::FromMicros(2'000'000);
  Credits default_number_regulatory_fee = Credits::FromMicros(500'000);
};

struct Billing {
  Billing(storage::Database& db, privacy::AuditLog& audit, const Clock& clock, Random& random,
          PaymentProvider& provider, BillingSettings settings = {})
      : ledger(db, clock, random),
        charging(db, ledger, audit, clock, random),
        purchases(db, ledger, charging, provider, audit, clock, random),
        statements(db, audit, clock, random),
        number_fees(db, ledger, audit, clock, random, DefaultNumberFees(settings), settings.number_fees) {}

  Ledger ledger;
  Charging charging;
  Purchases purchases;
  Statements statements;
  NumberFees number_fees;

 private:
  static NumberFeePricer DefaultNumberFees(const BillingSettings& settings) {
    return [monthly = settings.default_number_monthly_fee, regulatory = settings.default_number_regulatory_fee](
               const std::string&, const std::string&, TimePoint) -> Result<NumberFeeQuote> {
      return NumberFeeQuote{monthly, regulatory, 0};
    };
  }
};

}  // namespace clozit::billing
