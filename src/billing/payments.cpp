#include "billing/payments.hpp"

namespace clozit::billing {

Result<RefundReceipt> FakePaymentProvider::Refund(const RefundCall& call) {
  std::lock_guard lock(mu_);
  calls_.push_back(call);
  if (fail_next_ > 0) {
    --fail_next_;
    return Error::Make(ErrorCode::kUnavailable, fail_message_);
  }
  if (call.amount_minor <= 0) return Error::InvalidArgument("amount", "refund amount must be positive");
  auto found = by_key_.find(call.idempotency_key);
  if (found != by_key_.end()) return found->second;
  RefundReceipt receipt{"re_fake_" + std::to_string(refunds_.size() + 1), call.amount_minor};
  refunds_.push_back(call);
  by_key_.emplace(call.idempotency_key, receipt);
  return receipt;
}

Result<CheckoutSession> FakePaymentProvider::CreateCheckoutSession(const CheckoutCall& call) {
  std::lock_guard lock(mu_);
  if (fail_next_ > 0) {
    --fail_next_;
    return Error::Make(ErrorCode::kUnavailable, fail_message_);
  }
  auto found = sessions_by_key_.find(call.idempotency_key);
  if (found != sessions_by_key_.end()) return found->second;
  const std::string id = "cs_fake_" + std::to_string(sessions_by_key_.size() + 1);
  CheckoutSession session{id, "https://checkout.invalid/pay/" + id};
  sessions_by_key_.emplace(call.idempotency_key, session);
  return session;
}

void FakePaymentProvider::FailNext(int calls, std::string message) {
  std::lock_guard lock(mu_);
  fail_next_ = calls;
  fail_message_ = std::move(message);
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
