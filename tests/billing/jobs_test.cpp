// The billing jobs runner at chosen instants: one RunOnce charges the number
// fees that fell due, renews subscriptions and expires stale reservations; the
// thread runs it on the injectable clock's interval and stops cleanly.
#include <chrono>
#include <thread>

#include "billing/billing.hpp"
#include "billing/jobs.hpp"
#include "billing_fixture.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono_literals;

class BillingJobsTest : public BillingTest {
 protected:
  void SetUp() override {
    BillingTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    billing_ = std::make_unique<Billing>(*db_, *audit_, clock_, random_, provider_);
  }
  void TearDown() override {
    billing_.reset();
    BillingTest::TearDown();
  }

  FakePaymentProvider provider_;
  std::unique_ptr<Billing> billing_;
};

TEST_P(BillingJobsTest, OneRunChargesFeesRenewsSubscriptionsAndExpiresStaleReservations) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(200));
  const privacy::Actor owner{"user", "usr_owner"};
  ASSERT_TRUE(billing_->number_fees.ChargeNumberPurchase({tenant, "num_a", "+14155550100", "US", "local", "n"}).ok());
  ASSERT_TRUE(billing_->subscriptions.Subscribe(tenant, "starter", "s", owner).ok());
  auto reservation = billing_->charging.Reserve({tenant, Cr(5), "call", "r", clock_.Now() + 10min});
  ASSERT_TRUE(reservation.ok()) << reservation.error().message;

  BillingJobs jobs(*billing_, clock_, {std::chrono::hours(1)});
  EXPECT_TRUE(jobs.Due(clock_.Now()));
  auto nothing = jobs.RunOnce(clock_.Now());
  EXPECT_TRUE(nothing.errors.empty());
  EXPECT_TRUE(nothing.fees.charged.empty() && nothing.renewals.renewed.empty() && nothing.expiry.reservations.empty());
  EXPECT_FALSE(jobs.Due(clock_.Now() + 59min));
  EXPECT_TRUE(jobs.Due(clock_.Now() + 60min));

  clock_.Advance(std::chrono::hours(24 * 32));
  auto run = jobs.RunOnce(clock_.Now());
  EXPECT_TRUE(run.errors.empty()) << run.errors.front();
  EXPECT_EQ(run.fees.charged.size(), 1u);
  EXPECT_EQ(run.renewals.renewed.size(), 1u);
  ASSERT_EQ(run.expiry.reservations.size(), 1u);
  EXPECT_EQ(run.expiry.reservations[0].reservation_id, reservation->id.str());
  EXPECT_FALSE(run.expiry.lots.empty());  // the first cycle's included credits
  // 200 − 2.5 (number) − 49 (cycle 1) − 2.5 (fee) − 49 (cycle 2) + 60 (cycle 2's credits).
  EXPECT_EQ(Available(tenant), Credits::FromMicros(157'000'000));
  auto again = jobs.RunOnce(clock_.Now());
  EXPECT_TRUE(again.fees.charged.empty() && again.renewals.renewed.empty() && again.expiry.reservations.empty());
  ExpectClean();
}

// A batch of the expiry sweep that expired only holds that are not reservations' (a refund's earmark) is not the
// end of the sweep: the reservations' holds due after them are expired in the same run.
TEST_P(BillingJobsTest, TheExpirySweepGoesOnPastHoldsThatAreNotReservations) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(100));
  const std::string sink = OpenPlain("sink");
  TransferSpec earmark;
  earmark.id = "earmark";
  earmark.kind = TransferKind::kPending;
  earmark.debit_account_id = TenantCreditsAccount(tenant.str()).id;
  earmark.credit_account_id = sink;
  earmark.amount = Cr(5);
  earmark.expires_at = clock_.Now() + 1min;
  ASSERT_TRUE(ledger_->CreateTransfer(earmark).ok());
  auto reservation = billing_->charging.Reserve({tenant, Cr(5), "call", "r", clock_.Now() + 10min});
  ASSERT_TRUE(reservation.ok()) << reservation.error().message;
  clock_.Advance(1h);
  BillingJobsSettings settings;
  settings.batch = 1;
  BillingJobs jobs(*billing_, clock_, settings);
  auto run = jobs.RunOnce(clock_.Now());
  EXPECT_TRUE(run.errors.empty()) << run.errors.front();
  ASSERT_EQ(run.expiry.reservations.size(), 1u) << "the sweep stopped after the earmark's batch";
  EXPECT_EQ(run.expiry.reservations[0].reservation_id, reservation->id.str());
  EXPECT_EQ(Available(tenant), Cr(100));
  ExpectClean();
}

TEST_P(BillingJobsTest, TheThreadRunsOnTheClocksIntervalAndStopsCleanly) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(10));
  ASSERT_TRUE(billing_->number_fees.ChargeNumberPurchase({tenant, "num_a", "+14155550100", "US", "local", "n"}).ok());
  BillingJobsSettings settings;
  settings.interval = std::chrono::hours(1);
  settings.tick = 5ms;
  BillingJobs jobs(*billing_, clock_, settings);
  jobs.Start();
  jobs.Start();  // once is enough
  auto wait_until = [&](auto done) {
    for (int i = 0; i < 400 && !done(); ++i) std::this_thread::sleep_for(10ms);
    return done();
  };
  ASSERT_TRUE(wait_until([&] { return !jobs.Due(clock_.Now()); }));  // the first run happened
  // A month later on the clock (no real time passes) the fee is charged by the thread.
  clock_.Advance(std::chrono::hours(24 * 31));
  EXPECT_TRUE(wait_until([&] { return billing_->number_fees.GetHolding(tenant, "num_a")->periods_charged == 2; }));
  jobs.Stop();
  jobs.Stop();
  ExpectClean();
}

TEST_P(BillingJobsTest, OneSubscriptionOrNumberThatCannotBePricedHoldsUpNoOther) {
  const privacy::Actor owner{"user", "usr_owner"};
  TenantId broken = NewTenant();
  TenantId fine = NewTenant();
  for (const TenantId& tenant : {broken, fine}) {
    GrantOk(tenant, Cr(200));
    ASSERT_TRUE(billing_->subscriptions.Subscribe(tenant, "starter", "s", owner).ok());
    ASSERT_TRUE(billing_->number_fees.ChargeNumberPurchase({tenant, "num_a", "+14155550100", "US", "local", "n"}).ok());
  }
  // What an operator's price book without that plan or country leaves behind.
  ASSERT_TRUE(
      db_->Write([&](storage::Tx& tx) -> Result<void> {
           CLOZIT_TRY(tx.Exec("UPDATE billing_subscriptions SET next_plan_code = 'retired' WHERE tenant_id = $1",
                              {broken.str()}));
           CLOZIT_TRY(
               tx.Exec("UPDATE billing_number_holdings SET country = 'ZZ' WHERE tenant_id = $1", {broken.str()}));
           return Ok();
         })
          .ok());

  clock_.Advance(std::chrono::hours(24 * 32));
  BillingJobs jobs(*billing_, clock_, {std::chrono::hours(1)});
  auto run = jobs.RunOnce(clock_.Now());
  ASSERT_EQ(run.renewals.renewed.size(), 1u);
  EXPECT_EQ(run.renewals.renewed[0].tenant_id, fine);
  ASSERT_EQ(run.fees.charged.size(), 1u);
  EXPECT_EQ(run.fees.charged[0].tenant_id, fine);
  ASSERT_EQ(run.errors.size(), 2u);
  EXPECT_NE(run.errors[0].find("number fee " + broken.str() + "/num_a: "), std::string::npos) << run.errors[0];
  EXPECT_NE(run.errors[1].find("subscription sub_"), std::string::npos) << run.errors[1];
  // Still due, and tried again by the next run.
  EXPECT_EQ(jobs.RunOnce(clock_.Now()).errors.size(), 2u);
  ExpectClean();
}

TEST_P(BillingJobsTest, WhatStaysPastDueDoesNotStarveTheRestOfTheQueue) {
  const privacy::Actor owner{"user", "usr_owner"};
  // Three subscriptions and numbers that fall due first and cannot be paid, then one of each that can.
  std::vector<TenantId> broke;
  for (int i = 0; i < 3; ++i) {
    broke.push_back(NewTenant());
    // The first cycle and the number's first month; the cycle's included credits expire at its end.
    GrantOk(broke.back(), Cr(50));
    ASSERT_TRUE(billing_->subscriptions.Subscribe(broke.back(), "starter", "s", owner).ok());
    ASSERT_TRUE(
        billing_->number_fees.ChargeNumberPurchase({broke.back(), "num_a", "+14155550100", "US", "local", "n"}).ok());
    clock_.Advance(std::chrono::minutes(1));
  }
  TenantId paying = NewTenant();
  GrantOk(paying, Cr(500));
  ASSERT_TRUE(billing_->subscriptions.Subscribe(paying, "starter", "s", owner).ok());
  ASSERT_TRUE(billing_->number_fees.ChargeNumberPurchase({paying, "num_a", "+14155550100", "US", "local", "n"}).ok());

  clock_.Advance(std::chrono::hours(24 * 32));
  BillingJobsSettings settings;
  settings.interval = std::chrono::hours(1);
  settings.batch = 2;
  BillingJobs jobs(*billing_, clock_, settings);
  auto run = jobs.RunOnce(clock_.Now());
  EXPECT_TRUE(run.errors.empty()) << run.errors.front();
  EXPECT_EQ(run.renewals.past_due.size(), 3u);
  ASSERT_EQ(run.renewals.renewed.size(), 1u);
  EXPECT_EQ(run.renewals.renewed[0].tenant_id, paying);
  EXPECT_EQ(run.fees.past_due.size(), 3u);
  ASSERT_EQ(run.fees.charged.size(), 1u);
  EXPECT_EQ(run.fees.charged[0].tenant_id, paying);
  ExpectClean();
}

CLOZIT_INSTANTIATE_BACKENDS(BillingJobsTest);

}  // namespace
}  // namespace clozit::billing::test
