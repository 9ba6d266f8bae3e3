// PhoneNumbers::SweepPurchasing against the real carrier emulator, on Twilio
// and Telnyx, on SQLite and PostgreSQL. A number is left `purchasing` the way
// it happens in production: the carrier's answer to the buy is lost (or the
// buy fails unprocessed) and its number list is unavailable right after, so
// Buy cannot tell. After the grace period the sweep asks the list again: held
// → active with its one charge; never obtained → failed, the fees returned as
// replacement credits (ADR 0016).
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

#include "carrier_fixture.hpp"

namespace clozit::telephony {
namespace {

using storage::Dialect;
using test::kGrant;
using test::kNumberFees;

constexpr std::chrono::minutes kGrace{10};
// A GET is tried 1 + max_retries (2) times before the adapter reports the list unavailable.
const std::set<int> kListDown = {2, 3, 4};

class NumberSweepTest : public test::CarrierFixture {
 protected:
  /// Buys a searched number with the REST faults given (counted from the buy); the buy must fail unavailable and
  /// leave its row `purchasing`, charged once.
  PhoneNumber BuyLeftPurchasing(ProviderKind provider, const std::string& tenant, const std::set<int>& fail,
                                const std::set<int>& lose) {
    NumberSearchInput search;
    search.account_id = accounts_.at(provider).id.str();
    search.limit = 1;
    auto found = telephony_->numbers.Search(tenant, search);
    EXPECT_TRUE(found.ok() && !found->empty());
    if (!found.ok() || found->empty()) return {};
    BuyNumberInput buy;
    buy.phone_number = found->front().phone_number;
    buy.account_id = search.account_id;
    emulator_->InjectFaults(fail, lose, {});
    auto bought = telephony_->numbers.Buy(tenant, buy, actor_);
    emulator_->SetFaults(false, false, {});
    EXPECT_FALSE(bought.ok());
    if (!bought.ok()) {
      EXPECT_EQ(bought.error().code, ErrorCode::kUnavailable) << bought.error().message;
    }
    auto rows = telephony_->numbers.List(tenant, "purchasing", PageRequest{});
    EXPECT_TRUE(rows.ok() && rows->items.size() == 1);
    if (!rows.ok() || rows->items.size() != 1) return {};
    EXPECT_EQ(Available(tenant), kGrant.micros() - kNumberFees.micros());
    return rows->items.front();
  }

  bool HeldAtCarrier(ProviderKind provider, const std::string& e164) {
    auto adapter = telephony_->accounts.ProviderFor(accounts_.at(provider));
    EXPECT_TRUE(adapter.ok());
    if (!adapter.ok()) return false;
    auto held = (*adapter)->ListNumbers();
    EXPECT_TRUE(held.ok());
    if (!held.ok()) return false;
    return std::any_of(held->begin(), held->end(), [&](const OwnedNumber& n) { return n.phone_number == e164; });
  }

  int64_t Available(const std::string& tenant) {
    auto balance = charging_->Balance(TenantId(tenant));
    EXPECT_TRUE(balance.ok());
    return balance.ok() ? balance->available.micros() : -1;
  }

  Result<int64_t> Sweep() { return telephony_->numbers.SweepPurchasing(kGrace); }

  /// Moves past the grace and sweeps, which must settle `settled` numbers; returns `stuck` as the sweep left it.
  PhoneNumber SweepAfterGrace(const std::string& tenant, const PhoneNumber& stuck, int64_t settled) {
    clock_.Advance(kGrace + std::chrono::seconds(1));
    auto swept = Sweep();
    EXPECT_EQ(swept.ok() ? *swept : -1, settled);
    auto number = telephony_->numbers.Get(tenant, stuck.id.str());
    EXPECT_TRUE(number.ok());
    return number.ok() ? *number : PhoneNumber{};
  }

  privacy::Actor actor_{"user", "sweep", "", "127.0.0.1", "test"};
};

TEST_P(NumberSweepTest, ANumberTheCarrierHoldsBecomesActiveWithItsOneCharge) {
  for (ProviderKind provider : {ProviderKind::kTwilio, ProviderKind::kTelnyx}) {
    SCOPED_TRACE(ProviderName(provider));
    const std::string tenant = NewTenant();
    // The buy is done but its answer lost, then the list that would tell is down.
    const PhoneNumber stuck = BuyLeftPurchasing(provider, tenant, kListDown, {1});
    ASSERT_FALSE(stuck.id.str().empty());
    ASSERT_TRUE(HeldAtCarrier(provider, stuck.e164));

    // Within the grace the buy may still be running: left alone.
    auto early = Sweep();
    ASSERT_TRUE(early.ok()) << early.error().message;
    EXPECT_EQ(*early, 0);
    EXPECT_EQ(telephony_->numbers.Get(tenant, stuck.id.str())->status, "purchasing");

    const PhoneNumber number = SweepAfterGrace(tenant, stuck, 1);
    EXPECT_EQ(number.status, "active");
    EXPECT_FALSE(number.provider_number_id.empty());
    EXPECT_TRUE(number.purchased_at.has_value());
    EXPECT_TRUE(number.next_fee_at.has_value());
    auto holding = fees_->GetHolding(TenantId(tenant), stuck.id.str());
    ASSERT_TRUE(holding.ok()) << holding.error().message;
    EXPECT_EQ(holding->status, billing::HoldingStatus::kActive);
    EXPECT_EQ(holding->periods_charged, 1);
    EXPECT_EQ(Available(tenant), kGrant.micros() - kNumberFees.micros()) << "charged exactly once";

    auto again = Sweep();
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, 0);

    // The carrier's id was recorded: the number can be released through it, and no fee comes back (P4).
    auto released = telephony_->numbers.Release(tenant, stuck.id.str(), actor_);
    ASSERT_TRUE(released.ok()) << released.error().message;
    EXPECT_FALSE(HeldAtCarrier(provider, stuck.e164));
    EXPECT_EQ(Available(tenant), kGrant.micros() - kNumberFees.micros());
  }
  ExpectLedgerClean();
}

TEST_P(NumberSweepTest, ANumberNeverObtainedFailsAndItsFeesComeBackAsReplacementCredits) {
  for (ProviderKind provider : {ProviderKind::kTwilio, ProviderKind::kTelnyx}) {
    SCOPED_TRACE(ProviderName(provider));
    const std::string tenant = NewTenant();
    // The buy fails unprocessed (5xx), then the list is down.
    const PhoneNumber stuck = BuyLeftPurchasing(provider, tenant, {1, 2, 3, 4}, {});
    ASSERT_FALSE(stuck.id.str().empty());
    ASSERT_FALSE(HeldAtCarrier(provider, stuck.e164));

    const PhoneNumber number = SweepAfterGrace(tenant, stuck, 1);
    EXPECT_EQ(number.status, "failed");
    EXPECT_EQ(number.error_code, "unavailable");
    auto holding = fees_->GetHolding(TenantId(tenant), stuck.id.str());
    ASSERT_TRUE(holding.ok()) << holding.error().message;
    EXPECT_EQ(holding->status, billing::HoldingStatus::kAborted);
    // Back in full, but as credits that cannot be refunded for money: the fees themselves never are (P4).
    EXPECT_EQ(Available(tenant), kGrant.micros());
    auto lots = db_->Query("SELECT original FROM ledger_lots WHERE tenant_id = $1 AND kind = 'replacement'", {tenant});
    ASSERT_TRUE(lots.ok());
    int64_t replaced = 0;
    for (const auto& lot : *lots) replaced += lot.Int(0);
    EXPECT_EQ(replaced, kNumberFees.micros());

    auto again = Sweep();
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, 0);
    // The number is free to buy again, for one more charge.
    BuyNumberInput retry;
    retry.phone_number = stuck.e164;
    retry.account_id = accounts_.at(provider).id.str();
    auto bought = telephony_->numbers.Buy(tenant, retry, actor_);
    ASSERT_TRUE(bought.ok()) << bought.error().message;
    EXPECT_EQ(Available(tenant), kGrant.micros() - kNumberFees.micros());
  }
  ExpectLedgerClean();
}

TEST_P(NumberSweepTest, ANumberWhoseCarrierCannotBeAskedWaitsForTheNextRun) {
  const std::string tenant = NewTenant();
  const PhoneNumber stuck = BuyLeftPurchasing(ProviderKind::kTwilio, tenant, kListDown, {1});
  ASSERT_FALSE(stuck.id.str().empty());
  emulator_->InjectFaults({1, 2, 3}, {}, {});
  const PhoneNumber unknown = SweepAfterGrace(tenant, stuck, 0);
  emulator_->SetFaults(false, false, {});
  EXPECT_EQ(unknown.status, "purchasing");
  EXPECT_EQ(Available(tenant), kGrant.micros() - kNumberFees.micros()) << "not refunded while unknown";

  auto swept = Sweep();
  ASSERT_TRUE(swept.ok());
  EXPECT_EQ(*swept, 1);
  EXPECT_EQ(telephony_->numbers.Get(tenant, stuck.id.str())->status, "active");
  ExpectLedgerClean();
}

TEST_P(NumberSweepTest, ARowNeverChargedIsDeletedWithoutAskingTheCarrier) {
  // Left by a crash between Buy's first write and its charge: the carrier is only asked after the charge.
  const std::string tenant = NewTenant();
  const std::string id = PhoneNumberId::New(clock_, random_).str();
  ASSERT_TRUE(db_->Write([&](storage::Tx& tx) -> Result<void> {
                   CLOZIT_TRY(tx.Exec(
                       "INSERT INTO telephony_numbers (id, tenant_id, account_id, provider, e164, country, "
                       "number_type, capabilities, source, status, created_at, updated_at) VALUES ($1, $2, $3, "
                       "'twilio', '+15550107777', 'US', 'local', '[\"voice\"]', 'purchased', 'purchasing', $4, $4)",
                       {id, tenant, accounts_.at(ProviderKind::kTwilio).id.str(), ToUnixMillis(clock_.Now())}));
                   return Ok();
                 })
                  .ok());
  clock_.Advance(kGrace + std::chrono::seconds(1));
  const size_t requests_before = EmulatorGet("requests").size();
  auto swept = Sweep();
  ASSERT_TRUE(swept.ok()) << swept.error().message;
  EXPECT_EQ(*swept, 1);
  EXPECT_EQ(telephony_->numbers.Get(tenant, id).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(EmulatorGet("requests").size(), requests_before);
  EXPECT_EQ(Available(tenant), kGrant.micros());
}

CLOZIT_INSTANTIATE_BACKENDS(NumberSweepTest);

}  // namespace
}  // namespace clozit::telephony
