// billing/stripe: the PaymentProvider for Stripe (API version pinned by the
// account; only stable fields are used).
//
// Refund            POST /v1/refunds {payment_intent, amount, metadata}; a payment
//                   that is not Stripe's (an operator grant) is refused unasked
// Refund lookup     GET /v1/refunds?payment_intent=… (or charge=…), the ones whose
//                   metadata names the refund request (up to 100: a request makes
//                   a handful of attempts at most)
// Checkout Session  POST /v1/checkout/sessions, mode=payment, one line item
//                   priced inline (price_data) for the credit pack; our
//                   purchase id in client_reference_id and, with the tenant
//                   and pack, in metadata (also on the PaymentIntent).
// Requests are form-encoded with `Authorization: Bearer <secret key>` and an
// `Idempotency-Key` derived from the caller's key. Because Stripe replays the
// first result for a key, a retry can never refund or charge twice, so
// transport failures, 409 (a concurrent request with the key), 429 and 5xx
// are retried with the same key (and honour Stripe-Should-Retry); nothing
// else is. Stripe's errors {"error":{type,code,message}} map to stable
// codes: authentication → unauthenticated, rate limits → rate_limited,
// idempotency_error → idempotency_key_reused, charge_already_refunded and
// amount beyond the refundable and card errors → conflict, missing resources
// → not_found, other invalid requests → invalid_argument, 5xx and network →
// unavailable.
//
// Thread-safe (one connection per call). The secret key is never logged nor
// copied into an error.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "billing/payments.hpp"
#include "http/client.hpp"

namespace clozit::billing::stripe {

struct StripeSettings {
  std::string secret_key;
  std::string api_base = "https://api.stripe.com";  // origin only; tests point it at their fake
  http::ClientOptions client_options;
  int max_retries = 3;
  std::chrono::milliseconds first_backoff{250};  // doubles per retry
  /// Injectable so tests do not wait.
  std::function<void(std::chrono::milliseconds)> sleep;
};

class StripePaymentProvider final : public PaymentProvider {
 public:
  explicit StripePaymentProvider(StripeSettings settings);

  std::string name() const override { return "stripe"; }
  Result<RefundReceipt> Refund(const RefundCall& call) override;
  Result<std::vector<ProviderRefundState>> FindRefunds(const std::string& payment_reference,
                                                       const std::string& request_id) override;
  Result<CheckoutSession> CreateCheckoutSession(const CheckoutCall& call) override;

 private:
  /// POSTs a form (or GETs `path` with its query, `form` empty) with retries; the 2xx JSON body, or the mapped
  /// error. A GET changes nothing, so it carries no idempotency key.
  Result<std::string> Send(const std::string& method, const std::string& path, const std::string& form,
                           const std::string& idempotency_key);

  StripeSettings settings_;
};

/// Stripe amounts are in the currency's smallest unit and currencies lower case.
std::string StripeCurrency(std::string_view iso_upper);

}  // namespace clozit::billing::stripe
