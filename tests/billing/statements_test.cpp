// Statements: transactions with categories and cursor pages, usage per day and
// month, CSV export, low-balance and depleted events.
#include <algorithm>
#include <chrono>

#include "billing/chart.hpp"
#include "billing/payments.hpp"
#include "billing/purchases.hpp"
#include "billing/statements.hpp"
#include "billing_fixture.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono_literals;

class StatementsTest : public BillingTest {
 protected:
  void SetUp() override {
    BillingTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    statements_ = std::make_unique<Statements>(*db_, *audit_, clock_, random_);
  }
  void TearDown() override {
    statements_.reset();
    BillingTest::TearDown();
  }

  void Use(const TenantId& tenant, UsageCategory category, Credits used) {
    auto reservation = Reserve(tenant, used, "use-" + std::to_string(++counter_));
    ASSERT_TRUE(reservation.ok()) << reservation.error().message;
    auto settled = charging_->Settle(tenant, reservation->id.str(), {{category, used}});
    ASSERT_TRUE(settled.ok()) << settled.error().message;
  }

  std::vector<std::string> Kinds(const TenantId& tenant) {
    auto events = statements_->BalanceEvents(tenant, {});
    EXPECT_TRUE(events.ok());
    std::vector<std::string> kinds;
    if (events.ok()) {
      for (const auto& e : events->items) kinds.insert(kinds.begin(), e.kind);
    }
    return kinds;
  }

  std::unique_ptr<Statements> statements_;
  int counter_ = 0;
};

TEST_P(StatementsTest, TransactionsAreCategorisedSignedFilteredAndPaged) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(100), LotKind::kPurchase);
  clock_.Advance(1s);
  GrantOk(tenant, Cr(5), LotKind::kPromotional);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(1s);
    Use(tenant, i % 2 ? UsageCategory::kAiProcessing : UsageCategory::kCallMinutes, Cr(1));
  }
  auto all = statements_->Transactions(tenant, {}, {});
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->items.size(), 7u);  // 2 grants + 5 usage items; holds and settles are not shown
  EXPECT_EQ(all->items.front().category, "usage");
  EXPECT_EQ(all->items.front().amount, Cr(-1));
  EXPECT_EQ(all->items.back().category, "purchase");
  EXPECT_EQ(all->items.back().amount, Cr(100));

  StatementFilter usage_only{{"usage"}, {}, {}};
  std::vector<std::string> seen;
  PageRequest page{2, ""};
  do {
    auto chunk = statements_->Transactions(tenant, usage_only, page);
    ASSERT_TRUE(chunk.ok()) << chunk.error().message;
    for (const auto& e : chunk->items) {
      EXPECT_EQ(e.category, "usage");
      seen.push_back(e.id);
    }
    page.cursor = chunk->next_cursor;
  } while (!page.cursor.empty());
  EXPECT_EQ(seen.size(), 5u);
  StatementFilter grants{{"grant", "purchase"}, {}, {}};
  EXPECT_EQ(statements_->Transactions(tenant, grants, {})->items.size(), 2u);
  EXPECT_FALSE(statements_->Transactions(tenant, {{"bogus"}, {}, {}}, {}).ok());
  // Another tenant sees none of it.
  EXPECT_TRUE(statements_->Transactions(NewTenant(), {}, {})->items.empty());

  auto csv = statements_->TransactionsCsv(tenant, {});
  ASSERT_TRUE(csv.ok());
  EXPECT_EQ(csv->rfind("id,created_at,category,usage_category,code,amount,reference\r\n", 0), 0u);
  EXPECT_NE(csv->find(",purchase,,grant.purchase,100,"), std::string::npos) << *csv;
  EXPECT_EQ(std::count(csv->begin(), csv->end(), '\n'), 8);
  // An export has a ceiling: past it, the caller is told to export a shorter period.
  EXPECT_TRUE(statements_->TransactionsCsv(tenant, {}, 7).ok());
  auto too_many = statements_->TransactionsCsv(tenant, {}, 6);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.error().field, "from");
  ExpectClean();
}

TEST_P(StatementsTest, UsageIsSummedByCategoryPerDayAndMonth) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(100));
  clock_.Set(FromUnixMillis(1'790'000'000'000));  // 2026-09-21 UTC
  const TimePoint start = clock_.Now();
  Use(tenant, UsageCategory::kCallMinutes, Cr(2));
  Use(tenant, UsageCategory::kCallMinutes, Cr(3));
  Use(tenant, UsageCategory::kVoiceGeneration, Cr(1));
  clock_.Advance(24h);
  Use(tenant, UsageCategory::kCallMinutes, Cr(4));
  auto days = statements_->Usage(tenant, UsagePeriod::kDay, start - 1h, clock_.Now() + 1h);
  ASSERT_TRUE(days.ok()) << days.error().message;
  ASSERT_EQ(days->size(), 3u);
  EXPECT_EQ((*days)[0].period, "2026-09-21");
  EXPECT_EQ((*days)[0].category, "call_minutes");
  EXPECT_EQ((*days)[0].amount, Cr(5));
  EXPECT_EQ((*days)[0].charges, 2);
  EXPECT_EQ((*days)[2].period, "2026-09-22");
  auto months = statements_->Usage(tenant, UsagePeriod::kMonth, start - 1h, clock_.Now() + 1h);
  ASSERT_TRUE(months.ok());
  ASSERT_EQ(months->size(), 2u);
  EXPECT_EQ((*months)[0].period, "2026-09");
  EXPECT_EQ((*months)[0].amount, Cr(9));
}

TEST_P(StatementsTest, LowBalanceAndDepletedAreRecordedOncePerCrossing) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(10));
  ASSERT_TRUE(statements_->SetLowBalanceThreshold(tenant, Cr(5), {"user", "usr_x"}).ok());
  EXPECT_EQ(*statements_->LowBalanceThreshold(tenant), Cr(5));
  Use(tenant, UsageCategory::kCallMinutes, Cr(4));
  EXPECT_TRUE(Kinds(tenant).empty());
  Use(tenant, UsageCategory::kCallMinutes, Cr(2));  // 4 left
  EXPECT_EQ(Kinds(tenant), std::vector<std::string>({"balance.low"}));
  Use(tenant, UsageCategory::kCallMinutes, Cr(1));  // still low: no repeat
  EXPECT_EQ(Kinds(tenant).size(), 1u);
  Use(tenant, UsageCategory::kCallMinutes, Cr(3));  // nothing left
  EXPECT_EQ(Kinds(tenant), std::vector<std::string>({"balance.low", "credits.depleted"}));
  GrantOk(tenant, Cr(20));                           // back above: re-armed by the grant itself
  Use(tenant, UsageCategory::kCallMinutes, Cr(17));  // 3 left
  EXPECT_EQ(Kinds(tenant), std::vector<std::string>({"balance.low", "credits.depleted", "balance.low"}));
  ExpectClean();
}

TEST_P(StatementsTest, AVoidedHoldReArmsTheLowBalanceEvent) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(10));
  ASSERT_TRUE(statements_->SetLowBalanceThreshold(tenant, Cr(5), {"user", "usr_x"}).ok());
  auto held = Reserve(tenant, Cr(6), "big-hold");
  ASSERT_TRUE(held.ok()) << held.error().message;
  Use(tenant, UsageCategory::kCallMinutes, Cr(1));  // 3 available beside the hold: low
  EXPECT_EQ(Kinds(tenant), std::vector<std::string>({"balance.low"}));
  ASSERT_TRUE(charging_->Void(tenant, held->id.str()).ok());  // 9 available: re-armed
  Use(tenant, UsageCategory::kCallMinutes, Cr(5));            // 4 available: low again
  EXPECT_EQ(Kinds(tenant), std::vector<std::string>({"balance.low", "balance.low"}));
  ExpectClean();
}

TEST_P(StatementsTest, EveryWayCreditsComeAndGoReArmsOrRecordsTheEvents) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(10));
  ASSERT_TRUE(statements_->SetLowBalanceThreshold(tenant, Cr(5), {"user", "usr_x"}).ok());
  // Events of one write share an instant, so their order is not fixed: counted, not listed.
  auto count = [&](const char* kind) {
    auto kinds = Kinds(tenant);
    return std::count(kinds.begin(), kinds.end(), kind);
  };
  Use(tenant, UsageCategory::kCallMinutes, Cr(10));
  EXPECT_EQ(count("balance.low"), 1);
  EXPECT_EQ(count("credits.depleted"), 1);

  // A purchase re-arms both: spending all of it in one settle records both again.
  PurchaseRequest purchase;
  purchase.tenant_id = tenant;
  purchase.credits = Cr(20);
  purchase.price_minor = 2000;
  purchase.currency = "EUR";
  purchase.payment_reference = "ch_1";
  purchase.idempotency_key = "p1";
  FakePaymentProvider provider;
  Purchases purchases(*db_, *ledger_, *charging_, provider, *audit_, clock_, random_);
  ASSERT_TRUE(purchases.RecordPurchase(purchase).ok());
  Use(tenant, UsageCategory::kCallMinutes, Cr(20));
  EXPECT_EQ(count("balance.low"), 2);
  EXPECT_EQ(count("credits.depleted"), 2);

  // A hold that lapses gives its credits back (re-armed); credits that expire can deplete the balance.
  GrantOk(tenant, Cr(8), LotKind::kPromotional, clock_.Now() + 2h);
  auto held = Reserve(tenant, Cr(8), "lapsing", 30min);
  ASSERT_TRUE(held.ok()) << held.error().message;
  EXPECT_EQ(Kinds(tenant).size(), 4u);
  clock_.Advance(1h);
  ASSERT_TRUE(charging_->ExpireStale().ok());
  EXPECT_EQ(Kinds(tenant).size(), 4u);  // 8 available: neither low nor depleted
  clock_.Advance(2h);
  auto expiry = charging_->ExpireStale();
  ASSERT_TRUE(expiry.ok());
  EXPECT_EQ(expiry->lots.size(), 1u);
  EXPECT_EQ(count("balance.low"), 3);
  EXPECT_EQ(count("credits.depleted"), 3);
  ExpectClean();
}

TEST_P(StatementsTest, ASettleComparesTheBalanceAfterItsHoldIsReleased) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(10));
  ASSERT_TRUE(statements_->SetLowBalanceThreshold(tenant, Cr(5), {"user", "usr_x"}).ok());
  // Holding 8 leaves 2 available; settling 4 of it releases the rest: 6 left, not low.
  auto held = Reserve(tenant, Cr(8), "big-hold");
  ASSERT_TRUE(held.ok()) << held.error().message;
  ASSERT_TRUE(charging_->Settle(tenant, held->id.str(), {{UsageCategory::kCallMinutes, Cr(4)}}).ok());
  EXPECT_TRUE(Kinds(tenant).empty());
  EXPECT_EQ(Available(tenant), Cr(6));
  // 2 of a hold of 3: 4 left, low.
  held = Reserve(tenant, Cr(3), "small-hold");
  ASSERT_TRUE(held.ok()) << held.error().message;
  ASSERT_TRUE(charging_->Settle(tenant, held->id.str(), {{UsageCategory::kCallMinutes, Cr(2)}}).ok());
  EXPECT_EQ(Kinds(tenant), std::vector<std::string>({"balance.low"}));
  auto events = statements_->BalanceEvents(tenant, {});
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->items.size(), 1u);
  EXPECT_EQ(events->items.front().available, Cr(4));
  ExpectClean();
}

CLOZIT_INSTANTIATE_BACKENDS(StatementsTest);

}  // namespace
}  // namespace clozit::billing::test
