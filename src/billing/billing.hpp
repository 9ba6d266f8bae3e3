// billing/billing: the billing components wired together, for the application
// and the API. Owns the ledger, charging, purchases, checkouts and statements;
// the payment provider is the caller's (billing/stripe/ when configured, else
// an UnconfiguredPaymentProvider: checkouts are unavailable and refunds of
// paid purchases fail and stay pending).
#pragma once

#include "billing/charging.hpp"
#include "billing/checkouts.hpp"
#include "billing/ledger.hpp"
#include "billing/payments.hpp"
#include "billing/purchases.hpp"
#include "billing/statements.hpp"

namespace clozit::billing {

/// Refuses every refund: no payment provider is configured.
class UnconfiguredPaymentProvider : public PaymentProvider {
 public:
  std::string name() const override { return "none"; }
  Result<RefundReceipt> Refund(const RefundCall&) override {
    return Error::Make(ErrorCode::kUnavailable, "no payment provider is configured");
  }
  Result<CheckoutSession> CreateCheckoutSession(const CheckoutCall&) override {
    return Error::Make(ErrorCode::kUnavailable, "no payment provider is configured: buying credits is not available");
  }
};

struct Billing {
  Billing(storage::Database& db, privacy::AuditLog& audit, const Clock& clock, Random& random,
          PaymentProvider& provider, CheckoutSettings checkout_settings = {})
      : ledger(db, clock, random),
        charging(db, ledger, audit, clock, random),
        purchases(db, ledger, charging, provider, audit, clock, random),
        checkouts(db, ledger, purchases, provider, audit, clock, random, std::move(checkout_settings)),
        statements(db, audit, clock, random) {}

  Ledger ledger;
  Charging charging;
  Purchases purchases;
  Checkouts checkouts;
  Statements statements;
};

}  // namespace clozit::billing
