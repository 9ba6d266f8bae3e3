#include "billing/payments.hpp"

namespace clozit::billing {

Result<RefundReceipt> FakePaymentProvider::Refund(const RefundCall& call) {
  std::lock_guard lock(mu_);
  calls_.push_back(call);
  if (fail_next_ > 0) {
    --fail_next_;
    return Error::Make(fail_code_, fail_message_);
  }
  if (call.amount_minor <= 0) return Error::InvalidArgument("amount", "refund amount must be positive");
  auto found = by_key_.find(call.idempotency_key);
  if (found != by_key_.end()) {
    // Like Stripe: a key replays its first request's answer, and refuses other parameters.
    if (refunds_[found->second.index].amount_minor != call.amount_minor) {
      return Error::Make(ErrorCode::kIdempotencyMismatch, "idempotency key reused with another amount");
    }
    return found->second.receipt;
  }
  RefundReceipt receipt{"re_fake_" + std::to_string(refunds_.size() + 1), call.amount_minor};
  by_key_.emplace(call.idempotency_key, Made{receipt, refunds_.size()});
  refunds_.push_back(call);
  if (lose_next_reply_) {
    lose_next_reply_ = false;
    return Error::Make(ErrorCode::kUnavailable, "payment provider timed out");
  }
  return receipt;
}

Result<std::vector<ProviderRefundState>> FakePaymentProvider::FindRefunds(const std::string& payment_reference,
                                                                          const std::string& request_id) {
  std::lock_guard lock(mu_);
  if (fail_next_ > 0) {
    --fail_next_;
    return Error::Make(fail_code_, fail_message_);
  }
  std::vector<ProviderRefundState> found;
  for (size_t index = 0; index < refunds_.size(); ++index) {
    const RefundCall& made = refunds_[index];
    if (made.payment_reference != payment_reference || made.request_id != request_id) continue;
    found.push_back({"re_fake_" + std::to_string(index + 1), made.amount_minor, "succeeded", made.idempotency_key});
  }
  return found;
}

Result<CheckoutSession> FakePaymentProvider::CreateCheckoutSession(const CheckoutCall& call) {
  std::lock_guard lock(mu_);
  if (fail_next_ > 0) {
    --fail_next_;
    return Error::Make(fail_code_, fail_message_);
  }
  auto found = sessions_by_key_.find(call.idempotency_key);
  if (found != sessions_by_key_.end()) return found->second;
  const std::string id = "cs_fake_" + std::to_string(sessions_by_key_.size() + 1);
  CheckoutSession session{id, "https://checkout.invalid/pay/" + id};
  sessions_by_key_.emplace(call.idempotency_key, session);
  return session;
}

void FakePaymentProvider::FailNext(int calls, std::string message, ErrorCode code) {
  std::lock_guard lock(mu_);
  fail_next_ = calls;
  fail_message_ = std::move(message);
  fail_code_ = code;
  lose_next_reply_ = false;
}

void FakePaymentProvider::LoseNextReply() {
  std::lock_guard lock(mu_);
  fail_next_ = 0;
  lose_next_reply_ = true;
}

std::vector<RefundCall> FakePaymentProvider::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

std::vector<RefundCall> FakePaymentProvider::refunds() const {
  std::lock_guard lock(mu_);
  return refunds_;
}

}  // namespace clozit::billing
