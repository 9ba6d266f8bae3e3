// Subscriptions under the Cancellation & Refund Policy (P3) at chosen
// simulated dates: subscribe, renew at period end, cancel mid-cycle (service to
// period end, nothing further billed, nothing returned), upgrade now /
// downgrade next cycle, past_due when credits run short, never refundable.
#include <chrono>

#include "billing/payments.hpp"
#include "billing/price_book.hpp"
#include "billing/purchases.hpp"
#include "billing/subscriptions.hpp"
#include "billing_fixture.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

const privacy::Actor kOwner{"user", "usr_owner"};

TimePoint At(int y, unsigned m, unsigned d, int hour = 12) {
  return sys_days(year_month_day(year(y), month(m), day(d))) + hours(hour);
}

// Default book plans: starter 49 (60 included), growth 199 (260), scale 799 (1100).
class SubscriptionsTest : public BillingTest {
 protected:
  void SetUp() override {
    BillingTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    book_ = std::make_unique<PriceBook>(*db_, *audit_, clock_);
    subs_ = std::make_unique<Subscriptions>(*db_, *ledger_, *book_, *audit_, clock_, random_);
    purchases_ = std::make_unique<Purchases>(*db_, *ledger_, *charging_, provider_, *audit_, clock_, random_);
    clock_.Set(At(2027, 1, 31));
  }
  void TearDown() override {
    purchases_.reset();
    subs_.reset();
    book_.reset();
    BillingTest::TearDown();
  }

  std::unique_ptr<PriceBook> book_;
  std::unique_ptr<Subscriptions> subs_;
  std::unique_ptr<Purchases> purchases_;
  FakePaymentProvider provider_;
};

TEST_P(SubscriptionsTest, SubscribeChargesTheCycleAndGrantsIncludedCreditsToPeriodEnd) {
  TenantId tenant = NewTenant();
  EXPECT_EQ(subs_->Get(tenant)->status, SubscriptionStatus::kNone);
  GrantOk(tenant, Cr(100));
  auto sub = subs_->Subscribe(tenant, "starter", "sub-1", kOwner);
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  EXPECT_EQ(sub->status, SubscriptionStatus::kActive);
  EXPECT_EQ(sub->plan_code, "starter");
  EXPECT_EQ(sub->current_period_start, At(2027, 1, 31));
  EXPECT_EQ(sub->current_period_end, At(2027, 2, 28));
  EXPECT_EQ(sub->price, Cr(49));
  EXPECT_EQ(sub->included_credits, Cr(60));
  EXPECT_EQ(sub->price_version, 1);
  // 100 − 49 + 60 included.
  EXPECT_EQ(Available(tenant), Cr(111));
  auto balance = charging_->Balance(tenant);
  bool found_allowance = false;
  for (const auto& lot : balance->lots) {
    if (lot.kind == LotKind::kSubscription) {
      found_allowance = true;
      EXPECT_EQ(lot.original, Cr(60));
      EXPECT_EQ(*lot.expires_at, At(2027, 2, 28));
    }
  }
  EXPECT_TRUE(found_allowance);

  // A replay returns it; the same key for another plan is a mismatch; a second live subscription is refused.
  auto replay = subs_->Subscribe(tenant, "starter", "sub-1", kOwner);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->id, sub->id);
  EXPECT_EQ(Available(tenant), Cr(111));
  EXPECT_EQ(subs_->Subscribe(tenant, "growth", "sub-1", kOwner).error().code, ErrorCode::kIdempotencyMismatch);
  EXPECT_EQ(subs_->Subscribe(tenant, "growth", "sub-2", kOwner).error().code, ErrorCode::kConflict);
  EXPECT_EQ(subs_->Subscribe(tenant, "platinum", "sub-3", kOwner).error().field, "plan");
  ExpectClean();
}

TEST_P(SubscriptionsTest, SubscribingWithoutEnoughCreditsChargesNothing) {
  TenantId tenant = NewTenant();
  auto none = subs_->Subscribe(tenant, "starter", "k", kOwner);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kInsufficientCredits);
  GrantOk(tenant, Cr(48));
  auto short_by_one = subs_->Subscribe(tenant, "starter", "k", kOwner);
  ASSERT_FALSE(short_by_one.ok());
  EXPECT_EQ(short_by_one.error().code, ErrorCode::kInsufficientCredits);
  EXPECT_EQ(Available(tenant), Cr(48));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_subscriptions"), 0);
  ExpectClean();
}

TEST_P(SubscriptionsTest, RenewsAtPeriodEndAnchoredAtTheStart) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(200));
  ASSERT_TRUE(subs_->Subscribe(tenant, "starter", "k", kOwner).ok());
  clock_.Set(At(2027, 2, 28, 11));
  EXPECT_TRUE(subs_->RenewDue()->renewed.empty());
  clock_.Set(At(2027, 2, 28, 12));
  auto run = subs_->RenewDue();
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_EQ(run->renewed.size(), 1u);
  const Subscription& renewed = run->renewed[0];
  EXPECT_EQ(renewed.period, 1);
  EXPECT_EQ(renewed.current_period_start, At(2027, 2, 28));
  EXPECT_EQ(renewed.current_period_end, At(2027, 3, 31));
  EXPECT_EQ(renewed.price, Cr(49));
  // The first cycle's 60 included credits expired unused with it; the new cycle brings 60 more.
  EXPECT_EQ(Available(tenant), Cr(200 - 49 - 49 + 60));
  EXPECT_TRUE(subs_->RenewDue()->renewed.empty());  // once per cycle
  ExpectClean();
}

TEST_P(SubscriptionsTest, CancelMidCycleKeepsServiceToPeriodEndAndBillsNothingFurther) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(100));
  ASSERT_TRUE(subs_->Subscribe(tenant, "starter", "k", kOwner).ok());
  const Credits after_subscribe = Available(tenant);

  clock_.Set(At(2027, 2, 14));  // mid-cycle
  auto canceled = subs_->Cancel(tenant, kOwner);
  ASSERT_TRUE(canceled.ok()) << canceled.error().message;
  EXPECT_EQ(canceled->status, SubscriptionStatus::kActive);  // the service continues
  EXPECT_TRUE(canceled->cancel_at_period_end);
  EXPECT_EQ(canceled->current_period_end, At(2027, 2, 28));
  EXPECT_EQ(*canceled->canceled_at, At(2027, 2, 14));
  // Nothing billed is returned (P3): the balance, included credits too, is as it was.
  EXPECT_EQ(Available(tenant), after_subscribe);
  EXPECT_TRUE(subs_->Cancel(tenant, kOwner).ok());  // idempotent
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log WHERE action = 'subscription.cancel'"), 1);
  EXPECT_EQ(subs_->Change(tenant, "growth", kOwner).error().code, ErrorCode::kConflict);

  clock_.Set(At(2027, 2, 27));
  EXPECT_EQ(subs_->Get(tenant)->status, SubscriptionStatus::kActive);

  // At period end it ends, and nothing further is billed, then or later.
  clock_.Set(At(2027, 2, 28, 13));
  auto run = subs_->RenewDue();
  ASSERT_TRUE(run.ok());
  ASSERT_EQ(run->ended.size(), 1u);
  EXPECT_TRUE(run->renewed.empty());
  auto ended = subs_->Get(tenant);
  EXPECT_EQ(ended->status, SubscriptionStatus::kCanceled);
  EXPECT_EQ(*ended->ended_at, At(2027, 2, 28));
  clock_.Set(At(2027, 6, 1));
  EXPECT_TRUE(subs_->RenewDue()->renewed.empty());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM ledger_transfers WHERE code LIKE 'subscription.%'"), 1);
  EXPECT_EQ(Available(tenant), Cr(100 - 49));  // the allowance expired with its cycle
  // A new subscription may start afterwards.
  EXPECT_TRUE(subs_->Subscribe(tenant, "starter", "k2", kOwner).ok());
  ExpectClean();
}

TEST_P(SubscriptionsTest, UpgradeTakesEffectNowAndDowngradeAtTheNextCycle) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(1000));
  ASSERT_TRUE(subs_->Subscribe(tenant, "starter", "k", kOwner).ok());
  clock_.Set(At(2027, 2, 10));
  auto upgraded = subs_->Change(tenant, "growth", kOwner);
  ASSERT_TRUE(upgraded.ok()) << upgraded.error().message;
  EXPECT_EQ(upgraded->plan_code, "growth");
  EXPECT_EQ(upgraded->price, Cr(199));             // 49 + the 150 difference
  EXPECT_EQ(upgraded->included_credits, Cr(260));  // 60 + 200 more, to the same period end
  EXPECT_EQ(upgraded->current_period_end, At(2027, 2, 28));
  EXPECT_EQ(Available(tenant), Cr(1000 - 49 + 60 - 150 + 200));

  auto downgraded = subs_->Change(tenant, "starter", kOwner);
  ASSERT_TRUE(downgraded.ok()) << downgraded.error().message;
  EXPECT_EQ(downgraded->plan_code, "growth");  // the paid cycle keeps its plan
  EXPECT_EQ(downgraded->next_plan_code, "starter");
  EXPECT_EQ(Available(tenant), Cr(1000 - 49 + 60 - 150 + 200));  // nothing returned

  clock_.Set(At(2027, 2, 28, 12));
  auto run = subs_->RenewDue();
  ASSERT_TRUE(run.ok());
  ASSERT_EQ(run->renewed.size(), 1u);
  EXPECT_EQ(run->renewed[0].plan_code, "starter");
  EXPECT_EQ(run->renewed[0].price, Cr(49));
  EXPECT_TRUE(run->renewed[0].next_plan_code.empty());
  ExpectClean();
}

TEST_P(SubscriptionsTest, AnUpgradeAfterThePeriodEndedWaitsForTheRenewal) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(1000));
  ASSERT_TRUE(subs_->Subscribe(tenant, "starter", "k", kOwner).ok());
  // Past period end, before the renewal job ran: no charge for the period that is over.
  clock_.Set(At(2027, 2, 28, 12));
  const Credits before = Available(tenant);
  auto early = subs_->Change(tenant, "growth", kOwner);
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code, ErrorCode::kConflict);
  EXPECT_EQ(Available(tenant), before);
  ASSERT_EQ(subs_->RenewDue()->renewed.size(), 1u);
  auto upgraded = subs_->Change(tenant, "growth", kOwner);
  ASSERT_TRUE(upgraded.ok()) << upgraded.error().message;
  EXPECT_EQ(upgraded->plan_code, "growth");
  ExpectClean();
}

TEST_P(SubscriptionsTest, AFailedRenewalIsPastDueAndRetried) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(49));
  ASSERT_TRUE(subs_->Subscribe(tenant, "starter", "k", kOwner).ok());
  clock_.Set(At(2027, 3, 1));
  auto run = subs_->RenewDue();
  ASSERT_TRUE(run.ok());
  ASSERT_EQ(run->past_due.size(), 1u);
  EXPECT_EQ(subs_->Get(tenant)->status, SubscriptionStatus::kPastDue);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_events WHERE kind = 'subscription.past_due'"), 1);
  EXPECT_EQ(subs_->RenewDue()->past_due.size(), 1u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_events WHERE kind = 'subscription.past_due'"), 1);

  GrantOk(tenant, Cr(50));
  clock_.Set(At(2027, 3, 2));
  run = subs_->RenewDue();
  ASSERT_TRUE(run.ok());
  ASSERT_EQ(run->renewed.size(), 1u);
  EXPECT_EQ(run->renewed[0].status, SubscriptionStatus::kActive);
  EXPECT_EQ(run->renewed[0].current_period_end, At(2027, 3, 31));
  ExpectClean();
}

TEST_P(SubscriptionsTest, SubscriptionPeriodsAreNeverRefundable) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(100));
  auto sub = subs_->Subscribe(tenant, "starter", "k", kOwner);
  ASSERT_TRUE(sub.ok());
  clock_.Advance(24h);  // day 2: inside the 7-day window
  auto lots = charging_->Balance(tenant)->lots;
  std::string allowance;
  for (const auto& lot : lots) {
    if (lot.kind == LotKind::kSubscription) allowance = lot.lot_id;
  }
  ASSERT_FALSE(allowance.empty());
  const std::string prefix = "sub/" + sub->id.str() + "/0/cycle/";
  for (const std::string& subject : {sub->id.str(), prefix + "charge", prefix + "allowance", allowance}) {
    auto request = purchases_->RequestRefund(tenant, subject, "cancelled early", kOwner);
    ASSERT_TRUE(request.ok()) << request.error().message;
    EXPECT_EQ(request->status, RequestStatus::kRefused) << subject;
    EXPECT_EQ(request->reason_code, RefundReason::kSubscriptionNotRefundable) << subject;
  }
  // Another tenant learns nothing about it.
  TenantId other = NewTenant();
  EXPECT_EQ(purchases_->RequestRefund(other, sub->id.str(), "x", kOwner)->reason_code,
            RefundReason::kUnknownTransaction);
  ExpectClean();
}

CLOZIT_INSTANTIATE_BACKENDS(SubscriptionsTest);

}  // namespace
}  // namespace clozit::billing::test
