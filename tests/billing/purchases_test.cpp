// Purchases, refund requests and platform-error adjustments: the operator's
// Cancellation & Refund Policy (billing.md P2, P4-P7) at chosen simulated dates.
#include <chrono>
#include <random>

#include "billing/chart.hpp"
#include "billing/payments.hpp"
#include "billing/purchases.hpp"
#include "billing_fixture.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono_literals;

const privacy::Actor kTenantUser{"user", "usr_test"};
const privacy::Actor kOperator{"operator", "op_test"};

class PurchasesTest : public BillingTest {
 protected:
  void SetUp() override {
    BillingTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    purchases_ = std::make_unique<Purchases>(*db_, *ledger_, *charging_, provider_, *audit_, clock_, random_);
  }
  void TearDown() override {
    purchases_.reset();
    BillingTest::TearDown();
  }

  Purchase Buy(const TenantId& tenant, Credits credits, int64_t price_minor) {
    PurchaseRequest request;
    request.tenant_id = tenant;
    request.credits = credits;
    request.price_minor = price_minor;
    request.currency = "EUR";
    request.payment_reference = "pay_" + std::to_string(++purchase_counter_);
    request.idempotency_key = "purchase-" + std::to_string(purchase_counter_);
    request.actor = kOperator;
    auto purchase = purchases_->RecordPurchase(request);
    EXPECT_TRUE(purchase.ok()) << (purchase.ok() ? "" : purchase.error().message);
    return purchase.ok() ? *purchase : Purchase{};
  }

  // Reserves and settles `used` of call minutes; returns the charge's transfer id.
  std::string Use(const TenantId& tenant, Credits used) {
    auto reservation = Reserve(tenant, used, "use-" + std::to_string(++use_counter_));
    EXPECT_TRUE(reservation.ok()) << (reservation.ok() ? "" : reservation.error().message);
    if (!reservation.ok()) return {};
    auto settled = charging_->Settle(tenant, reservation->id.str(), {{UsageCategory::kCallMinutes, used}});
    EXPECT_TRUE(settled.ok()) << (settled.ok() ? "" : settled.error().message);
    return reservation->id.str() + "/usage/call_minutes";
  }

  RefundRequest Ask(const TenantId& tenant, const std::string& subject) {
    auto request = purchases_->RequestRefund(tenant, subject, "no longer needed", kTenantUser);
    EXPECT_TRUE(request.ok()) << (request.ok() ? "" : request.error().message);
    return request.ok() ? *request : RefundRequest{};
  }

  int64_t AuditCount(const std::string& action) {
    auto rows = db_->Query("SELECT COUNT(*) FROM audit_log WHERE action = $1", {action});
    return rows.ok() && !rows->empty() ? rows->front().Int(0) : -1;
  }

  FakePaymentProvider provider_;
  std::unique_ptr<Purchases> purchases_;
  int purchase_counter_ = 0;
  int use_counter_ = 0;
};

TEST_P(PurchasesTest, APurchaseOpensALinkedPurchaseLotAndIsIdempotent) {
  TenantId tenant = NewTenant();
  PurchaseRequest request{tenant, Cr(100), 4900, "EUR", "ch_1", "operator_grant", "k1", std::nullopt, kOperator};
  auto first = purchases_->RecordPurchase(request);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->credits, Cr(100));
  EXPECT_EQ(first->lot_remaining, Cr(100));
  auto again = purchases_->RecordPurchase(request);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, first->id);
  // The keys paid checkouts use are not an operator's to take.
  PurchaseRequest squatting = request;
  squatting.idempotency_key = "checkout/pur_01J0000000000000000000000";
  auto reserved = purchases_->RecordPurchase(squatting);
  ASSERT_FALSE(reserved.ok());
  EXPECT_EQ(reserved.error().field, "idempotency_key");
  request.price_minor = 5000;
  auto changed = purchases_->RecordPurchase(request);
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.error().code, ErrorCode::kIdempotencyMismatch);
  auto balance = charging_->Balance(tenant);
  ASSERT_TRUE(balance.ok());
  ASSERT_EQ(balance->lots.size(), 1u);
  EXPECT_EQ(balance->lots[0].lot_id, first->lot_id);
  EXPECT_EQ(balance->lots[0].kind, LotKind::kPurchase);
  auto listed = purchases_->ListPurchases(tenant, {});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(AuditCount("credits.purchase"), 1);
  ExpectClean();
}

TEST_P(PurchasesTest, RefundOnDaySixIsAcceptedAndApprovalRefundsTheWholeUnusedLot) {
  TenantId tenant = NewTenant();
  Purchase purchase = Buy(tenant, Cr(100), 10000);
  clock_.Advance(6 * 24h);
  RefundRequest request = Ask(tenant, purchase.id.str());
  EXPECT_EQ(request.status, RequestStatus::kPending);
  EXPECT_EQ(request.reason_code, RefundReason::kEligible);
  EXPECT_EQ(request.requested_credits, Cr(100));
  clock_.Advance(2 * 24h);  // the operator decides on day 8: the window bounds the submission
  auto approved = purchases_->ApproveRefund(request.id.str(), kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(approved->status, RequestStatus::kApproved);
  EXPECT_EQ(approved->refunded_credits, Cr(100));
  EXPECT_EQ(approved->refunded_minor, 10000);
  ASSERT_EQ(provider_.refunds().size(), 1u);
  EXPECT_EQ(provider_.refunds()[0].amount_minor, 10000);
  EXPECT_EQ(provider_.refunds()[0].payment_reference, purchase.payment_reference);
  EXPECT_EQ(Available(tenant), Credits());
  EXPECT_EQ(AuditCount("refund_request.approve"), 1);
  // A replay changes nothing.
  auto replay = purchases_->ApproveRefund(request.id.str(), kOperator);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(provider_.refunds().size(), 1u);
  ExpectClean();
}

TEST_P(PurchasesTest, RefundOnDayEightIsRefused) {
  TenantId tenant = NewTenant();
  Purchase purchase = Buy(tenant, Cr(100), 10000);
  clock_.Advance(8 * 24h);
  RefundRequest request = Ask(tenant, purchase.id.str());
  EXPECT_EQ(request.status, RequestStatus::kRefused);
  EXPECT_EQ(request.reason_code, RefundReason::kRefundWindowExpired);
  auto approve = purchases_->ApproveRefund(request.id.str(), kOperator);
  ASSERT_FALSE(approve.ok());
  EXPECT_EQ(approve.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(provider_.calls().empty());
  EXPECT_EQ(Available(tenant), Cr(100));
  EXPECT_EQ(AuditCount("refund_request.refuse"), 1);
  ExpectClean();
}

TEST_P(PurchasesTest, AfterPartialUseOnlyTheUnusedRemainderIsRefunded) {
  TenantId tenant = NewTenant();
  Purchase purchase = Buy(tenant, Cr(100), 10000);
  clock_.Advance(24h);
  Use(tenant, Cr(30));
  clock_.Advance(24h);
  RefundRequest request = Ask(tenant, purchase.id.str());
  ASSERT_EQ(request.status, RequestStatus::kPending);
  EXPECT_EQ(request.requested_credits, Cr(70));
  Use(tenant, Cr(5));  // spent while the request waits: not refundable either
  auto approved = purchases_->ApproveRefund(request.id.str(), kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(approved->refunded_credits, Cr(65));
  EXPECT_EQ(approved->refunded_minor, 6500);
  EXPECT_EQ(Available(tenant), Credits());
  // The used credits cannot be refunded: the purchase has nothing left, and a usage charge is refused.
  RefundRequest again = Ask(tenant, purchase.id.str());
  EXPECT_EQ(again.reason_code, RefundReason::kAlreadyRequested);
  ExpectClean();
}

TEST_P(PurchasesTest, OnlyThePurchasesOwnLotIsRefundedNotOtherCreditsOrReservedOnes) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(20), LotKind::kPromotional);  // burns first
  Purchase purchase = Buy(tenant, Cr(50), 5000);
  Use(tenant, Cr(30));                               // 20 promotional + 10 purchased
  auto open = Reserve(tenant, Cr(15), "in-flight");  // earmarks 15 of the purchase lot
  ASSERT_TRUE(open.ok());
  RefundRequest request = Ask(tenant, purchase.id.str());
  EXPECT_EQ(request.requested_credits, Cr(25));
  auto approved = purchases_->ApproveRefund(request.id.str(), kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(approved->refunded_credits, Cr(25));
  EXPECT_EQ(approved->refunded_minor, 2500);
  // The call in flight still has its credits.
  auto settled = charging_->Settle(tenant, open->id.str(), {{UsageCategory::kAiProcessing, Cr(15)}});
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  ExpectClean();
}

TEST_P(PurchasesTest, UsedCreditsSubscriptionsPhoneNumberFeesAndGrantsAreRefused) {
  TenantId tenant = NewTenant();
  Buy(tenant, Cr(100), 10000);
  Lot subscription = GrantOk(tenant, Cr(10), LotKind::kSubscription);
  Lot promo = GrantOk(tenant, Cr(10), LotKind::kPromotional);
  const std::string charge = Use(tenant, Cr(5));
  // A phone number's monthly fee, as the telephony work will post it.
  OpenPlain("platform/test.number_fees");
  TransferSpec fee;
  fee.id = "fee-1";
  fee.debit_account_id = TenantCreditsAccount(tenant.str()).id;
  fee.credit_account_id = "platform/test.number_fees";
  fee.amount = Cr(3);
  fee.code = "fee.phone_number.monthly";
  fee.reference = "num_1";
  fee.tenant_id = tenant.str();
  ASSERT_TRUE(ledger_->CreateTransfer(fee).ok());

  EXPECT_EQ(Ask(tenant, "fee-1").reason_code, RefundReason::kPhoneNumberFeeNotRefundable);
  EXPECT_EQ(Ask(tenant, charge).reason_code, RefundReason::kUsedCreditsNotRefundable);
  EXPECT_EQ(Ask(tenant, subscription.id).reason_code, RefundReason::kSubscriptionNotRefundable);
  EXPECT_EQ(Ask(tenant, promo.id).reason_code, RefundReason::kGrantedCreditsNotRefundable);
  EXPECT_EQ(Ask(tenant, "pur_01JZZZZZZZZZZZZZZZZZZZZZZZ").reason_code, RefundReason::kUnknownTransaction);
  // Another tenant's purchase is unknown here.
  TenantId other = NewTenant();
  Purchase theirs = Buy(other, Cr(10), 1000);
  RefundRequest foreign = Ask(tenant, theirs.id.str());
  EXPECT_EQ(foreign.reason_code, RefundReason::kUnknownTransaction);
  EXPECT_EQ(foreign.status, RequestStatus::kRefused);
  EXPECT_TRUE(provider_.calls().empty());
  ExpectClean();
}

TEST_P(PurchasesTest, AnAccountSuspendedForFraudGetsNoRefundButOtherSuspensionsDo) {
  TenantId fraud = NewTenant();
  Purchase purchase = Buy(fraud, Cr(100), 10000);
  clock_.Advance(24h);
  Suspend(fraud, "fraud");
  RefundRequest request = Ask(fraud, purchase.id.str());
  EXPECT_EQ(request.status, RequestStatus::kRefused);
  EXPECT_EQ(request.reason_code, RefundReason::kAccountSuspendedForAbuse);

  // Suspended for spam after asking: the approval re-checks and refuses.
  TenantId spam = NewTenant();
  Purchase spam_purchase = Buy(spam, Cr(10), 1000);
  RefundRequest pending = Ask(spam, spam_purchase.id.str());
  ASSERT_EQ(pending.status, RequestStatus::kPending);
  Suspend(spam, "spam");
  auto approve = purchases_->ApproveRefund(pending.id.str(), kOperator);
  ASSERT_FALSE(approve.ok());
  EXPECT_NE(approve.error().message.find("account_suspended_for_abuse"), std::string::npos);

  TenantId unpaid = NewTenant();
  Purchase unpaid_purchase = Buy(unpaid, Cr(10), 1000);
  Suspend(unpaid, "non_payment");
  EXPECT_EQ(Ask(unpaid, unpaid_purchase.id.str()).reason_code, RefundReason::kEligible);
  EXPECT_TRUE(provider_.calls().empty());
  ExpectClean();
}

TEST_P(PurchasesTest, AProviderRefusalReleasesTheEarmarkAndLeavesTheRequestPendingWithTheError) {
  TenantId tenant = NewTenant();
  Purchase purchase = Buy(tenant, Cr(100), 10000);
  RefundRequest request = Ask(tenant, purchase.id.str());
  provider_.FailNext(1, "card declined", ErrorCode::kConflict);
  auto failed = purchases_->ApproveRefund(request.id.str(), kOperator);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kUnavailable);
  auto stored = purchases_->GetRefundRequest(tenant, request.id.str());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->status, RequestStatus::kPending);
  EXPECT_EQ(stored->last_error, "card declined");
  EXPECT_EQ(Available(tenant), Cr(100));
  EXPECT_TRUE(provider_.refunds().empty());
  ExpectClean();
  // Spendable again in between, and the retry succeeds.
  auto approved = purchases_->ApproveRefund(request.id.str(), kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(approved->refunded_credits, Cr(100));
  EXPECT_EQ(approved->attempts, 2);
  EXPECT_EQ(Available(tenant), Credits());
  ExpectClean();
}

TEST_P(PurchasesTest, AnUnknownOutcomeKeepsTheEarmarkSoTheRetryAsksForTheSameAmountAndRefundsOnce) {
  TenantId tenant = NewTenant();
  Purchase purchase = Buy(tenant, Cr(100), 10000);
  RefundRequest request = Ask(tenant, purchase.id.str());
  // The provider refunds but its answer is lost: the credits must not become spendable again, or the
  // retry would ask for less under the same key (refused) or a new key (refunded twice).
  provider_.LoseNextReply();
  auto lost = purchases_->ApproveRefund(request.id.str(), kOperator);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(purchases_->GetRefundRequest(tenant, request.id.str())->last_error, "payment provider timed out");
  EXPECT_EQ(Available(tenant), Credits());
  EXPECT_FALSE(Reserve(tenant, Cr(30), "spend-while-unknown").ok());
  // Nor can it be rejected while in doubt: only asking the provider again settles it.
  auto rejected = purchases_->RejectRefund(request.id.str(), "changed my mind", kOperator);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().code, ErrorCode::kConflict);
  ExpectClean();
  auto approved = purchases_->ApproveRefund(request.id.str(), kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(approved->refunded_credits, Cr(100));
  EXPECT_EQ(approved->refunded_minor, 10000);
  EXPECT_EQ(approved->attempts, 1);
  ASSERT_EQ(provider_.refunds().size(), 1u);
  EXPECT_EQ(provider_.calls().size(), 2u);
  EXPECT_EQ(provider_.calls()[0].idempotency_key, provider_.calls()[1].idempotency_key);
  EXPECT_EQ(provider_.calls()[0].amount_minor, provider_.calls()[1].amount_minor);
  ExpectClean();
}

TEST_P(PurchasesTest, RejectingARefundNeedsAReasonAndIsFinal) {
  TenantId tenant = NewTenant();
  Purchase purchase = Buy(tenant, Cr(100), 10000);
  RefundRequest request = Ask(tenant, purchase.id.str());
  EXPECT_FALSE(purchases_->RejectRefund(request.id.str(), "", kOperator).ok());
  auto rejected = purchases_->RejectRefund(request.id.str(), "bought for a campaign that ran", kOperator);
  ASSERT_TRUE(rejected.ok());
  EXPECT_EQ(rejected->status, RequestStatus::kRejected);
  EXPECT_FALSE(purchases_->ApproveRefund(request.id.str(), kOperator).ok());
  EXPECT_EQ(Available(tenant), Cr(100));
  // The tenant may ask again once rejected.
  EXPECT_EQ(Ask(tenant, purchase.id.str()).status, RequestStatus::kPending);
  // Other tenants do not see it.
  EXPECT_EQ(purchases_->GetRefundRequest(NewTenant(), request.id.str()).error().code, ErrorCode::kNotFound);
  ExpectClean();
}

TEST_P(PurchasesTest, AnAdjustmentNeverRestoresMoreThanWasChargedAcrossClaims) {
  TenantId tenant = NewTenant();
  Buy(tenant, Cr(100), 10000);
  const std::string charge = Use(tenant, Cr(10));
  auto first = purchases_->RequestAdjustment(tenant, {charge}, "the call dropped at once", kTenantUser);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(first->items.size(), 1u);
  EXPECT_EQ(first->items[0].charged, Cr(10));
  EXPECT_NE(first->items[0].evidence.find("\"purpose\":\"test call\""), std::string::npos) << first->items[0].evidence;
  auto second = purchases_->RequestAdjustment(tenant, {charge}, "and again", kTenantUser);
  ASSERT_TRUE(second.ok());

  AdjustmentDecision partial{AdjustmentResolution::kCreditAdjustment, {{charge, Cr(6)}}, "verified outage", {}};
  auto approved = purchases_->ApproveAdjustment(first->id.str(), partial, kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(approved->restored, Cr(6));
  EXPECT_EQ(Available(tenant), Cr(96));
  // The second claim may take only the 4 left, in whichever form.
  AdjustmentDecision too_much{AdjustmentResolution::kReplacementCredits, {{charge, Cr(5)}}, "", {}};
  auto refused = purchases_->ApproveAdjustment(second->id.str(), too_much, kOperator);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  // Zero for a charge that still has something left is a mistake in the decision, not the claim's state.
  AdjustmentDecision zero{AdjustmentResolution::kReplacementCredits, {{charge, Credits()}}, "", {}};
  auto none = purchases_->ApproveAdjustment(second->id.str(), zero, kOperator);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(none.error().field, "amounts");
  AdjustmentDecision rest{AdjustmentResolution::kReplacementCredits, {}, "", {}};
  auto approved2 = purchases_->ApproveAdjustment(second->id.str(), rest, kOperator);
  ASSERT_TRUE(approved2.ok()) << approved2.error().message;
  EXPECT_EQ(approved2->restored, Cr(4));
  EXPECT_EQ(Available(tenant), Cr(100));
  // A third claim finds nothing left.
  auto third = purchases_->RequestAdjustment(tenant, {charge}, "once more", kTenantUser);
  ASSERT_TRUE(third.ok());
  auto nothing = purchases_->ApproveAdjustment(third->id.str(), rest, kOperator);
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.error().code, ErrorCode::kConflict);
  auto rejected = purchases_->RejectAdjustment(third->id.str(), "already restored in full", kOperator);
  ASSERT_TRUE(rejected.ok());
  EXPECT_EQ(rejected->status, RequestStatus::kRejected);
  EXPECT_EQ(AuditCount("adjustment_request.approve"), 2);
  ExpectClean();
}

TEST_P(PurchasesTest, AClaimNamesOnlyTheTenantsOwnSettledUsage) {
  TenantId tenant = NewTenant();
  TenantId other = NewTenant();
  Buy(tenant, Cr(100), 10000);
  Buy(other, Cr(100), 10000);
  const std::string theirs = Use(other, Cr(5));
  auto foreign = purchases_->RequestAdjustment(tenant, {theirs}, "not mine", kTenantUser);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().code, ErrorCode::kNotFound);
  auto purchase = purchases_->ListPurchases(tenant, {});
  ASSERT_TRUE(purchase.ok());
  auto grant = purchases_->RequestAdjustment(tenant, {"purchase/" + purchase->items[0].id.str()}, "x", kTenantUser);
  ASSERT_FALSE(grant.ok());
  EXPECT_EQ(purchases_->GetAdjustmentRequest(tenant, "adj_01JZZZZZZZZZZZZZZZZZZZZZZZ").error().code,
            ErrorCode::kNotFound);
  ExpectClean();
}

// Seeded random purchases, usage, refunds (some failing at the provider) and
// claims, with the books and the policy checked after every step.
TEST_P(PurchasesTest, RandomRefundsAndAdjustmentsKeepTheBooksAndThePolicy) {
  std::mt19937_64 rng(20261126);
  auto pick = [&rng](int64_t n) { return static_cast<int64_t>(rng() % static_cast<uint64_t>(n)); };
  std::vector<TenantId> tenants = {NewTenant(), NewTenant()};
  std::vector<std::pair<TenantId, std::string>> purchases, charges, refunds, claims;
  const int steps = 400;
  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const TenantId& tenant = tenants[static_cast<size_t>(pick(2))];
    switch (pick(7)) {
      case 0:
        purchases.emplace_back(tenant, Buy(tenant, Cr(1 + pick(50)), pick(10000)).id.str());
        break;
      case 1: {
        Credits available = Available(tenant);
        if (available.micros() <= 0) break;
        charges.emplace_back(tenant, Use(tenant, Credits::FromMicros(1 + pick(available.micros()))));
        break;
      }
      case 2:
        if (!purchases.empty()) {
          auto& [owner, id] = purchases[static_cast<size_t>(pick(static_cast<int64_t>(purchases.size())))];
          auto request = purchases_->RequestRefund(owner, id, "", kTenantUser);
          ASSERT_TRUE(request.ok()) << request.error().message;
          if (request->status == RequestStatus::kPending) refunds.emplace_back(owner, request->id.str());
        }
        break;
      case 3:
        if (!refunds.empty()) {
          auto [owner, id] = refunds[static_cast<size_t>(pick(static_cast<int64_t>(refunds.size())))];
          if (pick(4) == 0) provider_.FailNext(1);
          if (pick(3) == 0) {
            (void)purchases_->RejectRefund(id, "no", kOperator);
          } else {
            (void)purchases_->ApproveRefund(id, kOperator);
          }
        }
        break;
      case 4:
        if (!charges.empty()) {
          auto& [owner, id] = charges[static_cast<size_t>(pick(static_cast<int64_t>(charges.size())))];
          auto claim = purchases_->RequestAdjustment(owner, {id}, "error", kTenantUser);
          ASSERT_TRUE(claim.ok()) << claim.error().message;
          claims.emplace_back(owner, claim->id.str());
        }
        break;
      case 5:
        if (!claims.empty()) {
          auto [owner, id] = claims[static_cast<size_t>(pick(static_cast<int64_t>(claims.size())))];
          auto claim = purchases_->GetAdjustmentRequest(owner, id);
          ASSERT_TRUE(claim.ok());
          AdjustmentDecision decision;
          decision.resolution =
              pick(2) ? AdjustmentResolution::kCreditAdjustment : AdjustmentResolution::kReplacementCredits;
          if (pick(2)) {
            decision.amounts = {
                {claim->items[0].transfer_id, Credits::FromMicros(pick(claim->items[0].charged.micros() + 1))}};
          }
          (void)purchases_->ApproveAdjustment(id, decision, kOperator);
        }
        break;
      case 6:
        clock_.Advance(std::chrono::hours(pick(60)));
        break;
    }
    ExpectClean();
    if (HasFailure()) return;
    // P6: no charge ever restored beyond what it cost.
    auto over = db_->Query(
        "SELECT i.transfer_id FROM billing_adjustment_items i JOIN billing_adjustment_requests r "
        "ON r.id = i.request_id WHERE r.status = 'approved' GROUP BY i.transfer_id, i.charged "
        "HAVING SUM(i.restored) > i.charged");
    ASSERT_TRUE(over.ok());
    EXPECT_TRUE(over->empty());
    // P7 and the lot: a refund asked within 7 days of its purchase, never more than the purchase's credits.
    auto bad = db_->Query(
        "SELECT r.id FROM billing_refund_requests r JOIN billing_purchases p ON p.id = r.purchase_id "
        "WHERE r.status IN ('pending', 'approved') AND (r.created_at - p.created_at > 604800000 "
        "OR COALESCE(r.refunded_credits, 0) > p.credits)");
    ASSERT_TRUE(bad.ok());
    EXPECT_TRUE(bad->empty());
  }
  EXPECT_GT(provider_.refunds().size(), 0u);
}

CLOZIT_INSTANTIATE_BACKENDS(PurchasesTest);

}  // namespace
}  // namespace clozit::billing::test
