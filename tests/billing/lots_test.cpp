// Credit lots: burn-down order, earmarks, lot history and lot expiry.
#include <chrono>

#include "billing/chart.hpp"
#include "billing_fixture.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono_literals;

class LotsTest : public BillingTest {
 protected:
  std::vector<Lot> AllLots(const TenantId& tenant) {
    auto lots = ledger_->ListLots(TenantCreditsAccount(tenant.str()).id, true);
    EXPECT_TRUE(lots.ok());
    return lots.ok() ? *lots : std::vector<Lot>{};
  }

  Lot LotNow(const TenantId& tenant, const std::string& id) {
    for (const Lot& lot : AllLots(tenant)) {
      if (lot.id == id) return lot;
    }
    ADD_FAILURE() << "no lot " << id;
    return {};
  }
};

TEST_P(LotsTest, BurnDownOrderIsPriorityThenExpiryThenGrantedBeforePaidThenOldest) {
  TenantId tenant = NewTenant();
  const TimePoint start = clock_.Now();
  Lot a = GrantOk(tenant, Cr(10), LotKind::kPurchase);
  clock_.Advance(1s);
  Lot b = GrantOk(tenant, Cr(10), LotKind::kPurchase);
  clock_.Advance(1s);
  Lot c = GrantOk(tenant, Cr(10), LotKind::kPromotional);
  Lot d = GrantOk(tenant, Cr(10), LotKind::kPurchase, start + 30 * 24h);
  Lot e = GrantOk(tenant, Cr(10), LotKind::kSubscription, start + 10 * 24h);
  Lot f = GrantOk(tenant, Cr(10), LotKind::kPurchase, start + 10 * 24h);
  Lot g = GrantOk(tenant, Cr(10), LotKind::kPromotional, std::nullopt, -1);

  std::vector<std::string> order;
  for (const Lot& lot : AllLots(tenant)) order.push_back(lot.id);
  EXPECT_EQ(order, (std::vector<std::string>{g.id, e.id, f.id, d.id, c.id, a.id, b.id}));

  auto balance = charging_->Balance(tenant);
  ASSERT_TRUE(balance.ok());
  EXPECT_EQ(balance->available, Cr(70));
  ASSERT_EQ(balance->lots.size(), 7u);
  EXPECT_EQ(balance->lots.front().lot_id, g.id);

  // Spending follows the same order.
  auto reservation = Reserve(tenant, Cr(25), "r1");
  ASSERT_TRUE(reservation.ok()) << reservation.error().message;
  auto settled = charging_->Settle(tenant, reservation->id.str(), {{UsageCategory::kCallMinutes, Cr(25)}});
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_EQ(LotNow(tenant, g.id).remaining, Cr(0));
  EXPECT_EQ(LotNow(tenant, e.id).remaining, Cr(0));
  EXPECT_EQ(LotNow(tenant, f.id).remaining, Cr(5));
  EXPECT_EQ(LotNow(tenant, d.id).remaining, Cr(10));
  EXPECT_EQ(LotNow(tenant, a.id).remaining, Cr(10));
  ExpectClean();
}

TEST_P(LotsTest, ReservationEarmarksLotsAndSettlementConsumesTheEarmarksInOrder) {
  TenantId tenant = NewTenant();
  Lot promo = GrantOk(tenant, Cr(10), LotKind::kPromotional);
  Lot paid = GrantOk(tenant, Cr(10), LotKind::kPurchase);
  auto reservation = Reserve(tenant, Cr(15), "r1");
  ASSERT_TRUE(reservation.ok()) << reservation.error().message;
  EXPECT_EQ(LotNow(tenant, promo.id).reserved, Cr(10));
  EXPECT_EQ(LotNow(tenant, paid.id).reserved, Cr(5));
  auto balance = charging_->Balance(tenant);
  ASSERT_TRUE(balance.ok());
  EXPECT_EQ(balance->available, Cr(5));
  EXPECT_EQ(balance->reserved, Cr(15));

  // A later grant, even one that burns first, cannot take over an earmark: the hold keeps the lots it took.
  clock_.Advance(1s);
  Lot later = GrantOk(tenant, Cr(10), LotKind::kPromotional, std::nullopt, -5);
  clock_.Advance(1s);
  ASSERT_TRUE(charging_->Settle(tenant, reservation->id.str(), {{UsageCategory::kAiProcessing, Cr(12)}}).ok());
  EXPECT_EQ(LotNow(tenant, later.id).remaining, Cr(10));
  Lot promo_after = LotNow(tenant, promo.id);
  Lot paid_after = LotNow(tenant, paid.id);
  EXPECT_EQ(promo_after.remaining, Cr(0));
  EXPECT_EQ(promo_after.reserved, Cr(0));
  EXPECT_EQ(paid_after.remaining, Cr(8));
  EXPECT_EQ(paid_after.reserved, Cr(0));

  auto history = ledger_->LotHistory(paid.id);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[2].seq, 3);
  EXPECT_EQ((*history)[0].change, "grant");
  EXPECT_EQ((*history)[1].change, "earmark");
  EXPECT_EQ((*history)[1].delta_reserved, Cr(5));
  EXPECT_EQ((*history)[2].change, "post");
  EXPECT_EQ((*history)[2].delta_remaining, Cr(-2));
  EXPECT_EQ((*history)[2].delta_reserved, Cr(-5));
  EXPECT_EQ((*history)[2].remaining_after, Cr(8));
  for (const LotChange& change : *history) EXPECT_FALSE(change.transfer_id.empty());
  ExpectClean();
}

TEST_P(LotsTest, ExpiredLotsStopCountingAndTheSweepMovesTheirRemainderOut) {
  TenantId tenant = NewTenant();
  Lot expiring = GrantOk(tenant, Cr(10), LotKind::kPromotional, clock_.Now() + 1h);
  Lot lasting = GrantOk(tenant, Cr(10), LotKind::kPurchase);
  auto reservation = Reserve(tenant, Cr(5), "r1", 3h);
  ASSERT_TRUE(reservation.ok()) << reservation.error().message;
  EXPECT_EQ(LotNow(tenant, expiring.id).reserved, Cr(5));

  clock_.Advance(2h);
  auto balance = charging_->Balance(tenant);
  ASSERT_TRUE(balance.ok());
  EXPECT_EQ(balance->available, Cr(10));  // only the lasting lot counts, before any sweep
  ASSERT_EQ(balance->lots.size(), 1u);
  EXPECT_EQ(balance->lots.front().lot_id, lasting.id);
  // The ledger account alone would allow 15; the lots do not.
  auto too_much = Reserve(tenant, Cr(11), "r2");
  ASSERT_FALSE(too_much.ok());
  EXPECT_EQ(too_much.error().code, ErrorCode::kInsufficientCredits);

  auto swept = charging_->ExpireStale();
  ASSERT_TRUE(swept.ok()) << swept.error().message;
  ASSERT_EQ(swept->lots.size(), 1u);
  EXPECT_EQ(swept->lots.front().lot_id, expiring.id);
  EXPECT_EQ(swept->lots.front().amount, Cr(5));  // the earmarked 5 stay with the open reservation
  EXPECT_TRUE(swept->reservations.empty());
  EXPECT_EQ(LotNow(tenant, expiring.id).remaining, Cr(5));
  ExpectClean();

  // The reservation may still use its earmark; what it releases expires at the next sweep.
  ASSERT_TRUE(charging_->Settle(tenant, reservation->id.str(), {{UsageCategory::kCallMinutes, Cr(3)}}).ok());
  EXPECT_EQ(LotNow(tenant, expiring.id).remaining, Cr(2));
  swept = charging_->ExpireStale();
  ASSERT_TRUE(swept.ok()) << swept.error().message;
  ASSERT_EQ(swept->lots.size(), 1u);
  EXPECT_EQ(swept->lots.front().amount, Cr(2));
  EXPECT_EQ(LotNow(tenant, expiring.id).remaining, Cr(0));
  auto expired_account = ledger_->GetAccount(ExpiredAccount(PlatformShard(tenant.str())).id);
  ASSERT_TRUE(expired_account.ok());
  EXPECT_EQ(expired_account->credits_posted, Cr(7));
  swept = charging_->ExpireStale();
  ASSERT_TRUE(swept.ok());
  EXPECT_TRUE(swept->lots.empty());
  ExpectClean();
}

TEST_P(LotsTest, ACreditToALotAccountMustOpenALot) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(1));
  OpenPlain("bank");
  TransferSpec spec;
  spec.id = "bare";
  spec.debit_account_id = "bank";
  spec.credit_account_id = TenantCreditsAccount(tenant.str()).id;
  spec.amount = Cr(5);
  auto bare = ledger_->CreateTransfer(spec);
  ASSERT_FALSE(bare.ok());
  EXPECT_EQ(bare.error().field, "new_lot");
  spec.new_lot = LotSpec{LotKind::kReplacement, 0, std::nullopt};
  auto with_lot = ledger_->CreateTransfer(spec);
  ASSERT_TRUE(with_lot.ok()) << with_lot.error().message;
  ExpectClean();
}

TEST_P(LotsTest, CheckLedgerReportsALotThatDisagreesWithItsHistory) {
  TenantId tenant = NewTenant();
  Lot lot = GrantOk(tenant, Cr(10));
  ExpectClean();
  Script("UPDATE ledger_lots SET remaining = remaining - 1 WHERE id = '" + lot.id + "'");
  auto breaches = CheckLedger(*db_);
  ASSERT_TRUE(breaches.ok());
  std::string all = Join(*breaches);
  EXPECT_NE(all.find("lot " + lot.id + ": remaining 9999999 / reserved 0 but its history sums to 10000000 / 0"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("but its lots hold 9999999"), std::string::npos) << all;
  Script("UPDATE ledger_lots SET remaining = -1 WHERE id = '" + lot.id + "'");
  breaches = CheckLedger(*db_);
  ASSERT_TRUE(breaches.ok());
  EXPECT_NE(Join(*breaches).find("is below zero"), std::string::npos);
}

TEST_P(LotsTest, ALotTakenToZeroIsMarkedExhaustedAndLeavesTheBurnDown) {
  TenantId tenant = NewTenant();
  Lot first = GrantOk(tenant, Cr(10), LotKind::kPromotional);
  Lot second = GrantOk(tenant, Cr(5), LotKind::kPurchase);
  auto exhausted = [&](const std::string& id) {
    return Count("SELECT exhausted FROM ledger_lots WHERE id = $1", {id});
  };
  // A hold of the whole first lot leaves it fully reserved, not exhausted; its post empties it.
  auto held = Reserve(tenant, Cr(10), "k1");
  ASSERT_TRUE(held.ok()) << held.error().message;
  EXPECT_EQ(exhausted(first.id), 0);
  auto settled = charging_->Settle(tenant, held->id.str(), {{UsageCategory::kCallMinutes, Cr(10)}});
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_EQ(exhausted(first.id), 1);
  EXPECT_EQ(exhausted(second.id), 0);
  ExpectClean();
  auto open = ledger_->ListLots(TenantCreditsAccount(tenant.str()).id);
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ(open->front().id, second.id);
  EXPECT_EQ(ledger_->ListLots(TenantCreditsAccount(tenant.str()).id, true)->size(), 2u);
  // A single-phase debit that empties a lot marks it too.
  TransferSpec debit;
  debit.id = "debit-all";
  debit.debit_account_id = TenantCreditsAccount(tenant.str()).id;
  debit.credit_account_id = OpenPlain("test/sink");
  debit.amount = Cr(5);
  ASSERT_TRUE(ledger_->CreateTransfer(debit).ok());
  EXPECT_EQ(exhausted(second.id), 1);
  ExpectClean();
}

TEST_P(LotsTest, CheckLedgerReportsALotWhoseExhaustedMarkIsWrong) {
  TenantId tenant = NewTenant();
  Lot lot = GrantOk(tenant, Cr(10));
  Script("UPDATE ledger_lots SET exhausted = 1 WHERE id = '" + lot.id + "'");
  auto breaches = CheckLedger(*db_);
  ASSERT_TRUE(breaches.ok());
  EXPECT_NE(Join(*breaches).find("lot " + lot.id + ": marked exhausted with 10000000 remaining"), std::string::npos)
      << Join(*breaches);
}

CLOZIT_INSTANTIATE_BACKENDS(LotsTest);

}  // namespace
}  // namespace clozit::billing::test
