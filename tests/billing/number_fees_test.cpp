// Phone-number fees (P4) at chosen simulated dates: charged at purchase and at
// each monthly anniversary (Jan 31 → Feb 28 → Mar 31), refused without
// credits, grace then release, never refundable, idempotent on replay.
#include <chrono>

#include "billing/chart.hpp"
#include "billing/detail/periods.hpp"
#include "billing/number_fees.hpp"
#include "billing/payments.hpp"
#include "billing/purchases.hpp"
#include "billing_fixture.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

TimePoint At(int y, unsigned m, unsigned d, int hour = 12) {
  return sys_days(year_month_day(year(y), month(m), day(d))) + hours(hour);
}

class NumberFeesTest : public BillingTest {
 protected:
  void SetUp() override {
    BillingTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    NumberFeePricer pricer = [this](storage::Tx&, const std::string& country, const std::string& type,
                                    TimePoint) -> Result<NumberFeeQuote> {
      ++priced_;
      if (country == "US" && type == "toll_free") return NumberFeeQuote{Cr(4), Credits::FromMicros(250'000), 0};
      return NumberFeeQuote{Cr(2), Credits::FromMicros(500'000), 0};
    };
    fees_ = std::make_unique<NumberFees>(*db_, *ledger_, *audit_, clock_, random_, pricer,
                                         NumberFeeSettings{std::chrono::hours(24 * 7)});
    purchases_ = std::make_unique<Purchases>(*db_, *ledger_, *charging_, provider_, *audit_, clock_, random_);
  }
  void TearDown() override {
    purchases_.reset();
    fees_.reset();
    BillingTest::TearDown();
  }

  NumberPurchase Local(const TenantId& tenant, const std::string& number_id) {
    return {tenant, number_id, "+14155550100", "US", "local", "buy-" + number_id};
  }

  std::unique_ptr<NumberFees> fees_;
  std::unique_ptr<Purchases> purchases_;
  FakePaymentProvider provider_;
  int priced_ = 0;
};

const Credits kLocalPeriod = Credits::FromMicros(2'500'000);

TEST(BillingPeriods, MonthlyAnniversariesClampToTheMonthEndAndStayAnchored) {
  const TimePoint jan31 = At(2027, 1, 31, 9);
  EXPECT_EQ(detail::AddMonthsClamped(jan31, 1), At(2027, 2, 28, 9));
  EXPECT_EQ(detail::AddMonthsClamped(jan31, 2), At(2027, 3, 31, 9));
  EXPECT_EQ(detail::AddMonthsClamped(jan31, 3), At(2027, 4, 30, 9));
  EXPECT_EQ(detail::AddMonthsClamped(At(2028, 1, 31, 9), 1), At(2028, 2, 29, 9));  // leap year
  EXPECT_EQ(detail::AddMonthsClamped(At(2027, 11, 15), 2), At(2028, 1, 15));
  EXPECT_EQ(detail::AddMonthsClamped(At(2027, 3, 31), -1), At(2027, 2, 28));
}

TEST_P(NumberFeesTest, PurchaseChargesMonthlyAndRegulatoryFeesAsLinkedTransfers) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(10));
  clock_.Set(At(2027, 1, 31));
  auto holding = fees_->ChargeNumberPurchase(Local(tenant, "num_a"));
  ASSERT_TRUE(holding.ok()) << holding.error().message;
  EXPECT_EQ(holding->status, HoldingStatus::kActive);
  EXPECT_EQ(holding->periods_charged, 1);
  EXPECT_EQ(holding->purchased_at, At(2027, 1, 31));
  ASSERT_TRUE(holding->next_fee_at.has_value());
  EXPECT_EQ(*holding->next_fee_at, At(2027, 2, 28));
  EXPECT_EQ(holding->monthly_fee, Cr(2));
  EXPECT_EQ(holding->regulatory_fee, Credits::FromMicros(500'000));
  EXPECT_EQ(Available(tenant), Credits::FromMicros(7'500'000));

  auto monthly = ledger_->LookupTransfer("numfee/" + tenant.str() + "/num_a/0/monthly");
  ASSERT_TRUE(monthly.ok()) << monthly.error().message;
  EXPECT_EQ(monthly->code, "fee.phone_number.monthly");
  EXPECT_EQ(monthly->amount, Cr(2));
  EXPECT_EQ(monthly->credit_account_id, FeeRevenueAccount("fee.phone_number.monthly", PlatformShard(tenant.str())).id);
  auto regulatory = ledger_->LookupTransfer("numfee/" + tenant.str() + "/num_a/0/regulatory");
  ASSERT_TRUE(regulatory.ok());
  EXPECT_EQ(regulatory->code, "fee.phone_number.regulatory");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log WHERE action = 'number.purchase'"), 1);

  // A replay with the same key returns the holding and charges nothing more.
  auto replay = fees_->ChargeNumberPurchase(Local(tenant, "num_a"));
  ASSERT_TRUE(replay.ok()) << replay.error().message;
  EXPECT_EQ(replay->number_id, "num_a");
  EXPECT_EQ(Available(tenant), Credits::FromMicros(7'500'000));
  // The same key for another number is a mismatch; the same number under another key is taken.
  NumberPurchase other = Local(tenant, "num_b");
  other.idempotency_key = "buy-num_a";
  EXPECT_EQ(fees_->ChargeNumberPurchase(other).error().code, ErrorCode::kIdempotencyMismatch);
  NumberPurchase again = Local(tenant, "num_a");
  again.idempotency_key = "buy-again";
  EXPECT_EQ(fees_->ChargeNumberPurchase(again).error().code, ErrorCode::kAlreadyExists);
  ExpectClean();
}

TEST_P(NumberFeesTest, PurchaseWithoutEnoughCreditsIsRefusedAndChargesNothing) {
  TenantId tenant = NewTenant();
  auto none = fees_->ChargeNumberPurchase(Local(tenant, "num_a"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kInsufficientCredits);

  GrantOk(tenant, Cr(2));  // the monthly fee, not the regulatory one
  auto short_by_half = fees_->ChargeNumberPurchase(Local(tenant, "num_a"));
  ASSERT_FALSE(short_by_half.ok());
  EXPECT_EQ(short_by_half.error().code, ErrorCode::kInsufficientCredits);
  EXPECT_EQ(Available(tenant), Cr(2));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM ledger_transfers WHERE code LIKE 'fee.%'"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_number_holdings"), 0);
  EXPECT_EQ(fees_->GetHolding(tenant, "num_a").error().code, ErrorCode::kNotFound);

  EXPECT_EQ(fees_->ChargeNumberPurchase({tenant, "num a", "+14155550100", "US", "local", "k"}).error().field,
            "number_id");
  EXPECT_EQ(fees_->ChargeNumberPurchase({tenant, "num_x", "4155550100", "US", "local", "k"}).error().field, "e164");
  EXPECT_EQ(fees_->ChargeNumberPurchase({tenant, "num_x", "+14155550100", "us", "local", "k"}).error().field,
            "country");
  EXPECT_EQ(fees_->ChargeNumberPurchase({tenant, "num_x", "+14155550100", "US", "landline", "k"}).error().field,
            "number_type");
  ExpectClean();
}

TEST_P(NumberFeesTest, AnniversariesAreChargedOncePerPeriodIncludingJan31ToFeb28) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(100));
  clock_.Set(At(2027, 1, 31));
  ASSERT_TRUE(fees_->ChargeNumberPurchase(Local(tenant, "num_a")).ok());

  // Before the anniversary nothing is due.
  clock_.Set(At(2027, 2, 28, 11));
  auto early = fees_->ChargeDueFees();
  ASSERT_TRUE(early.ok()) << early.error().message;
  EXPECT_TRUE(early->charged.empty());

  clock_.Set(At(2027, 2, 28, 12));
  auto february = fees_->ChargeDueFees();
  ASSERT_TRUE(february.ok()) << february.error().message;
  ASSERT_EQ(february->charged.size(), 1u);
  EXPECT_EQ(february->charged[0].period, 1);
  EXPECT_EQ(february->charged[0].amount, kLocalPeriod);
  // A second run at the same instant charges nothing again.
  auto again = fees_->ChargeDueFees();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->charged.empty());
  auto holding = fees_->GetHolding(tenant, "num_a");
  ASSERT_TRUE(holding.ok());
  EXPECT_EQ(holding->periods_charged, 2);
  EXPECT_EQ(*holding->next_fee_at, At(2027, 3, 31));  // back on the 31st, anchored at the purchase

  // A server down through April and May catches up each missed period once.
  clock_.Set(At(2027, 6, 1));
  auto catch_up = fees_->ChargeDueFees();
  ASSERT_TRUE(catch_up.ok());
  ASSERT_EQ(catch_up->charged.size(), 3u);  // Mar 31, Apr 30, May 31
  EXPECT_EQ(catch_up->charged[2].period, 4);
  holding = fees_->GetHolding(tenant, "num_a");
  EXPECT_EQ(*holding->next_fee_at, At(2027, 6, 30));
  EXPECT_EQ(Available(tenant), Credits::FromMicros(100'000'000 - 5 * 2'500'000));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_number_fee_charges"), 5);
  ExpectClean();
}

TEST_P(NumberFeesTest, ShortCreditsGivePastDueThenReleaseDueAfterGraceAndTopUpRecovers) {
  TenantId tenant = NewTenant();
  TenantId solvent = NewTenant();
  GrantOk(tenant, Cr(3));
  GrantOk(solvent, Cr(50));
  clock_.Set(At(2027, 3, 10));
  ASSERT_TRUE(fees_->ChargeNumberPurchase(Local(tenant, "num_a")).ok());
  ASSERT_TRUE(fees_->ChargeNumberPurchase(Local(tenant, "num_b")).ok() == false);  // 0.5 left
  ASSERT_TRUE(fees_->ChargeNumberPurchase(Local(solvent, "num_s")).ok());

  clock_.Set(At(2027, 4, 10, 13));
  auto run = fees_->ChargeDueFees();
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_EQ(run->past_due.size(), 1u);
  EXPECT_EQ(run->past_due[0].number_id, "num_a");
  ASSERT_EQ(run->charged.size(), 1u);  // the other tenant's number is charged regardless
  EXPECT_EQ(run->charged[0].number_id, "num_s");
  auto holding = fees_->GetHolding(tenant, "num_a");
  ASSERT_TRUE(holding.ok());
  EXPECT_EQ(holding->status, HoldingStatus::kPastDue);
  EXPECT_EQ(*holding->grace_until, At(2027, 4, 17, 13));       // the notice + 7 days
  EXPECT_EQ(Available(tenant), Credits::FromMicros(500'000));  // nothing taken
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_events WHERE kind = 'number.past_due'"), 1);

  // Retried while in grace: still past due, no second event.
  clock_.Set(At(2027, 4, 14));
  run = fees_->ChargeDueFees();
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->past_due.size(), 1u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_events WHERE kind = 'number.past_due'"), 1);
  auto release = fees_->ReleaseDue();
  ASSERT_TRUE(release.ok());
  EXPECT_TRUE(release->empty());

  // Past the grace: flagged for release with a notice.
  clock_.Set(At(2027, 4, 17, 13));
  run = fees_->ChargeDueFees();
  ASSERT_TRUE(run.ok());
  ASSERT_EQ(run->release_due.size(), 1u);
  release = fees_->ReleaseDue();
  ASSERT_TRUE(release.ok());
  ASSERT_EQ(release->size(), 1u);
  EXPECT_EQ((*release)[0].number_id, "num_a");
  EXPECT_EQ((*release)[0].status, HoldingStatus::kReleaseDue);
  EXPECT_EQ(
      Count("SELECT COUNT(*) FROM billing_events WHERE kind = 'number.release_due' AND tenant_id = $1", {tenant.str()}),
      1);
  // Flagged numbers are not charged further; the telephony module releases them.
  run = fees_->ChargeDueFees();
  ASSERT_TRUE(run.ok());
  EXPECT_TRUE(run->release_due.empty() && run->past_due.empty());
  auto released = fees_->ReleaseNumber(tenant, "num_a");
  ASSERT_TRUE(released.ok()) << released.error().message;
  EXPECT_EQ(released->status, HoldingStatus::kReleased);
  EXPECT_TRUE(fees_->ReleaseDue()->empty());
  ExpectClean();
}

// The job did not run for two months: it charges what the credits cover, and the period they do not cover gets its
// whole grace from the notice, instead of being flagged for release in the same run.
TEST_P(NumberFeesTest, APeriodFoundShortLateStillGetsItsWholeGrace) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Credits::FromMicros(2 * kLocalPeriod.micros()));
  clock_.Set(At(2027, 5, 1));
  ASSERT_TRUE(fees_->ChargeNumberPurchase(Local(tenant, "num_a")).ok());
  clock_.Set(At(2027, 7, 20));
  auto run = fees_->ChargeDueFees();
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_EQ(run->charged.size(), 1u) << "June's period";
  EXPECT_TRUE(run->release_due.empty()) << "July's period was flagged without any grace";
  ASSERT_EQ(run->past_due.size(), 1u);
  auto holding = fees_->GetHolding(tenant, "num_a");
  ASSERT_TRUE(holding.ok());
  EXPECT_EQ(holding->status, HoldingStatus::kPastDue);
  EXPECT_EQ(*holding->grace_until, At(2027, 7, 27));
  clock_.Set(At(2027, 7, 27));
  ASSERT_EQ(fees_->ChargeDueFees()->release_due.size(), 1u);
  ExpectClean();
}

TEST_P(NumberFeesTest, APastDueNumberIsChargedWhenCreditsArriveWithinGrace) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, kLocalPeriod);
  clock_.Set(At(2027, 5, 1));
  ASSERT_TRUE(fees_->ChargeNumberPurchase(Local(tenant, "num_a")).ok());
  clock_.Set(At(2027, 6, 2));
  ASSERT_EQ(fees_->ChargeDueFees()->past_due.size(), 1u);
  GrantOk(tenant, Cr(5));
  clock_.Set(At(2027, 6, 3));
  auto run = fees_->ChargeDueFees();
  ASSERT_TRUE(run.ok());
  ASSERT_EQ(run->charged.size(), 1u);
  auto holding = fees_->GetHolding(tenant, "num_a");
  EXPECT_EQ(holding->status, HoldingStatus::kActive);
  EXPECT_FALSE(holding->grace_until.has_value());
  EXPECT_EQ(*holding->next_fee_at, At(2027, 7, 1));  // the anchor does not move with a late charge
  ExpectClean();
}

TEST_P(NumberFeesTest, ReleaseStopsFutureFeesAndRefundsNothing) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(20));
  clock_.Set(At(2027, 1, 15));
  ASSERT_TRUE(fees_->ChargeNumberPurchase(Local(tenant, "num_a")).ok());
  clock_.Set(At(2027, 1, 20));
  auto released = fees_->ReleaseNumber(tenant, "num_a");
  ASSERT_TRUE(released.ok()) << released.error().message;
  EXPECT_EQ(released->status, HoldingStatus::kReleased);
  EXPECT_FALSE(released->next_fee_at.has_value());
  EXPECT_EQ(Available(tenant), Credits::FromMicros(20'000'000 - kLocalPeriod.micros()));
  // Idempotent, and the anniversaries pass without a charge.
  ASSERT_TRUE(fees_->ReleaseNumber(tenant, "num_a").ok());
  clock_.Set(At(2027, 5, 1));
  auto run = fees_->ChargeDueFees();
  ASSERT_TRUE(run.ok());
  EXPECT_TRUE(run->charged.empty());
  EXPECT_EQ(Available(tenant), Credits::FromMicros(20'000'000 - kLocalPeriod.micros()));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log WHERE action = 'number.release'"), 1);
  // Another tenant cannot see or release it.
  TenantId other = NewTenant();
  EXPECT_EQ(fees_->ReleaseNumber(other, "num_a").error().code, ErrorCode::kNotFound);
  ExpectClean();
}

TEST_P(NumberFeesTest, NumberFeesAreNeverRefundable) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(20));
  ASSERT_TRUE(fees_->ChargeNumberPurchase(Local(tenant, "num_a")).ok());
  const privacy::Actor user{"user", "usr_test"};
  for (const std::string& subject : {"numfee/" + tenant.str() + "/num_a/0/monthly",
                                     "numfee/" + tenant.str() + "/num_a/0/regulatory", std::string("num_a")}) {
    auto request = purchases_->RequestRefund(tenant, subject, "changed my mind", user);
    ASSERT_TRUE(request.ok()) << request.error().message;
    EXPECT_EQ(request->status, RequestStatus::kRefused) << subject;
    EXPECT_EQ(request->reason_code, RefundReason::kPhoneNumberFeeNotRefundable) << subject;
  }
  // On day 2 too (inside the 7-day window), and after the number is released.
  clock_.Advance(48h);
  ASSERT_TRUE(fees_->ReleaseNumber(tenant, "num_a").ok());
  auto request = purchases_->RequestRefund(tenant, "num_a", "released it", user);
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->reason_code, RefundReason::kPhoneNumberFeeNotRefundable);
  // Another tenant asking about the same ids learns nothing.
  TenantId other = NewTenant();
  auto foreign = purchases_->RequestRefund(other, "num_a", "x", user);
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(foreign->reason_code, RefundReason::kUnknownTransaction);
  ExpectClean();
}

TEST_P(NumberFeesTest, AbortReversesThePurchaseChargeWithCorrectingTransfers) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(10));
  ASSERT_TRUE(fees_->ChargeNumberPurchase(Local(tenant, "num_a")).ok());
  ASSERT_EQ(Available(tenant), Credits::FromMicros(10'000'000 - kLocalPeriod.micros()));
  auto aborted = fees_->AbortNumberPurchase(tenant, "num_a");
  ASSERT_TRUE(aborted.ok()) << aborted.error().message;
  EXPECT_EQ(Available(tenant), Cr(10));
  auto reversal = ledger_->LookupTransfer("numfee/" + tenant.str() + "/num_a/0/monthly/reversal");
  ASSERT_TRUE(reversal.ok()) << reversal.error().message;
  EXPECT_EQ(reversal->corrects, "numfee/" + tenant.str() + "/num_a/0/monthly");
  ASSERT_TRUE(reversal->new_lot.has_value());
  EXPECT_EQ(reversal->new_lot->kind, LotKind::kReplacement);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log WHERE action = 'number.purchase_abort'"), 1);
  auto holding = fees_->GetHolding(tenant, "num_a");
  EXPECT_EQ(holding->status, HoldingStatus::kAborted);
  // A replay gives nothing back twice; an aborted number accrues no fees and cannot be released.
  ASSERT_TRUE(fees_->AbortNumberPurchase(tenant, "num_a").ok());
  EXPECT_EQ(Available(tenant), Cr(10));
  clock_.Advance(hours(24 * 40));
  EXPECT_TRUE(fees_->ChargeDueFees()->charged.empty());
  EXPECT_EQ(fees_->ReleaseNumber(tenant, "num_a").error().code, ErrorCode::kConflict);

  // A number already charged for a later period is no failed purchase.
  ASSERT_TRUE(fees_->ChargeNumberPurchase(Local(tenant, "num_b")).ok());
  clock_.Advance(hours(24 * 32));
  ASSERT_EQ(fees_->ChargeDueFees()->charged.size(), 1u);
  EXPECT_EQ(fees_->AbortNumberPurchase(tenant, "num_b").error().code, ErrorCode::kConflict);
  ExpectClean();
}

TEST_P(NumberFeesTest, LedgerCheckNoticesAFeePeriodThatDisagreesWithItsTransfers) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(10));
  ASSERT_TRUE(fees_->ChargeNumberPurchase(Local(tenant, "num_a")).ok());
  ExpectClean();
  auto tampered = db_->Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec("UPDATE billing_number_fee_charges SET monthly_fee = monthly_fee + 1"));
    return Ok();
  });
  ASSERT_TRUE(tampered.ok()) << tampered.error().message;
  auto breaches = CheckLedger(*db_);
  ASSERT_TRUE(breaches.ok()) << breaches.error().message;
  ASSERT_EQ(breaches->size(), 1u) << Join(*breaches);
  EXPECT_NE((*breaches)[0].find("number num_a"), std::string::npos) << (*breaches)[0];
  EXPECT_NE((*breaches)[0].find("fee period 0"), std::string::npos) << (*breaches)[0];
}

TEST_P(NumberFeesTest, TollFreeNumbersArePricedByCountryAndType) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(10));
  auto holding = fees_->ChargeNumberPurchase({tenant, "num_tf", "+18005550100", "US", "toll_free", "tf"});
  ASSERT_TRUE(holding.ok()) << holding.error().message;
  EXPECT_EQ(holding->monthly_fee, Cr(4));
  EXPECT_EQ(holding->regulatory_fee, Credits::FromMicros(250'000));
  EXPECT_EQ(Available(tenant), Credits::FromMicros(5'750'000));
  ExpectClean();
}

CLOZIT_INSTANTIATE_BACKENDS(NumberFeesTest);

}  // namespace
}  // namespace clozit::billing::test
