// billing/payments: the seam to whoever takes the money (Stripe:
// billing/stripe/). Three calls: open a hosted checkout for a credit pack,
// return part of a payment, and look up the refunds made for a refund request
// (how an attempt whose answer was lost learns its outcome). An operator grant records a payment taken
// elsewhere, so its provider is "operator_grant".
//
// A call may fail (network, provider refusal); callers treat a failure as
// "nothing happened" and may retry with the same idempotency key, which a
// provider must honour (a repeat returns the first refund or session).
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
  std::string idempotency_key;  // stable per attempt: a retry of an attempt whose outcome is unknown reuses it
  std::string request_id;       // the refund request, kept with the refund (its events name it)
};

/// A refund as the provider holds it now, with what Clozit put in its metadata: how Clozit learns the outcome
/// of an attempt whose answer it never got.
struct ProviderRefundState {
  std::string refund_id;
  int64_t amount_minor = 0;
  std::string status;   // the provider's: succeeded | pending | requires_action | failed | canceled
  std::string attempt;  // the attempt's idempotency key (RefundCall::idempotency_key); empty on older refunds
};

struct RefundReceipt {
  std::string refund_id;  // the provider's refund id
  int64_t amount_minor = 0;
  bool pending = false;  // accepted, not yet paid out (the provider reports the outcome later)
};

/// A hosted payment page for one credit pack.
struct CheckoutCall {
  std::string purchase_id;  // ours: the purchase the payment will complete
  std::string tenant_id;
  std::string pack_id;
  std::string description;   // what the payer sees, e.g. "1,000 Clozit credits"
  int64_t amount_minor = 0;  // > 0
  std::string currency;      // ISO 4217, upper case
  std::string success_url;
  std::string cancel_url;
  std::string idempotency_key;  // stable per purchase
};

struct CheckoutSession {
  std::string session_id;  // the provider's id, e.g. "cs_…"
  std::string url;         // where the payer goes
};

class PaymentProvider {
 public:
  virtual ~PaymentProvider() = default;
  /// The provider's name as stored on purchases ("stripe").
  virtual std::string name() const = 0;
  virtual Result<RefundReceipt> Refund(const RefundCall& call) = 0;
  /// The payment's refunds made for refund request `request_id`, any attempt, oldest first.
  virtual Result<std::vector<ProviderRefundState>> FindRefunds(const std::string& payment_reference,
                                                               const std::string& request_id) = 0;
  virtual Result<CheckoutSession> CreateCheckoutSession(const CheckoutCall& call) = 0;
};

/// In-memory provider for tests and development: records calls, succeeds
/// unless told to fail the next N calls. Thread-safe.
class FakePaymentProvider : public PaymentProvider {
 public:
  std::string name() const override { return "fake"; }
  Result<RefundReceipt> Refund(const RefundCall& call) override;
  Result<std::vector<ProviderRefundState>> FindRefunds(const std::string& payment_reference,
                                                       const std::string& request_id) override;
  Result<CheckoutSession> CreateCheckoutSession(const CheckoutCall& call) override;
  /// The next `calls` calls fail with `code` (kUnavailable: the outcome is unknown to the caller). Each of
  /// FailNext and LoseNextReply replaces the trouble set before; FailNext(0) clears it.
  void FailNext(int calls, std::string message = "payment provider unavailable",
                ErrorCode code = ErrorCode::kUnavailable);
  /// The next refund is made, but its answer is lost on the way back (kUnavailable), as a timeout would.
  void LoseNextReply();
  std::vector<RefundCall> calls() const;
  /// Refunds actually made (a replay with the same idempotency key counts once).
  std::vector<RefundCall> refunds() const;

 private:
  mutable std::mutex mu_;
  int fail_next_ = 0;
  std::string fail_message_;
  ErrorCode fail_code_ = ErrorCode::kUnavailable;
  bool lose_next_reply_ = false;
  std::vector<RefundCall> calls_;
  std::vector<RefundCall> refunds_;
  struct Made {
    RefundReceipt receipt;
    size_t index = 0;  // in refunds_
  };
  std::map<std::string, Made> by_key_;
  std::map<std::string, CheckoutSession> sessions_by_key_;
};

}  // namespace clozit::billing
