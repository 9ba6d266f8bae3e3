// billing/payments: the seam to whoever took the money (Stripe later). Only
// what refunds need for now: return part of a payment. An operator grant
// records a payment taken elsewhere, so its provider is "operator_grant".
//
// A refund call may fail (network, provider refusal); callers treat a failure
// as "nothing happened" and may retry with the same idempotency key, which a
// provider must honour (a repeat returns the first refund).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace clozit::billing {

struct RefundCall {
  std::string payment_reference;  // the provider's payment/charge id
  int64_t amount_minor = 0;       // > 0, minor units of `currency`
  std::string currency;
  std::string idempotency_key;  // stable per refund request
};

struct RefundReceipt {
  std::string refund_id;  // the provider's refund id
  int64_t amount_minor = 0;
};

class PaymentProvider {
 public:
  virtual ~PaymentProvider() = default;
  virtual Result<RefundReceipt> Refund(const RefundCall& call) = 0;
};

/// In-memory provider for tests and development: records calls, succeeds
/// unless told to fail the next N calls. Thread-safe.
class FakePaymentProvider : public PaymentProvider {
 public:
  Result<RefundReceipt> Refund(const RefundCall& call) override;
  void FailNext(int calls, std::string message = "payment provider unavailable");
  std::vector<RefundCall> calls() const;
  /// Refunds actually made (a replay with the same idempotency key counts once).
  std::vector<RefundCall> refunds() const;

 private:
  mutable std::mutex mu_;
  int fail_next_ = 0;
  std::string fail_message_;
  std::vector<RefundCall> calls_;
  std::vector<RefundCall> refunds_;
  std::map<std::string, RefundReceipt> by_key_;
};

}  // namespace clozit::billing
