// billing/billing: the billing components wired together, for the application
// and the API. Owns the ledger, charging, purchases and statements; the
// payment provider is the caller's (an UnconfiguredPaymentProvider until the
// Stripe adapter lands: refunds of paid purchases then fail and stay pending).
#pragma once

#include "billing/charging.hpp"
#include "billing/ledger.hpp"
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

struct Billing {
  Billing(storage::Database& db, privacy::AuditLog& audit, const Clock& clock, Random& random,
          PaymentProvider& provider)
      : ledger(db, clock, random),
        charging(db, ledger, audit, clock, random),
        purchases(db, ledger, charging, provider, audit, clock, random),
        statements(db, audit, clock, random) {}

  Ledger ledger;
  Charging charging;
  Purchases purchases;
  Statements statements;
};

}  // namespace clozit::billing
