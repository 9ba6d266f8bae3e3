// The charging interface: reserve, extend, settle, void, grant, balance and
// the expiry sweep, including replays after a crash.
#include "billing/charging.hpp"

#include <chrono>

#include "billing/chart.hpp"
#include "billing_fixture.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono_literals;

// Counts the reads (Tx::Query) of the writes that go through it, to show which ones a hot path does without.
class ReadCountingDatabase final : public storage::Database {
 public:
  explicit ReadCountingDatabase(storage::Database& inner) : inner_(inner) {}

  int reads() const { return reads_; }
  void ResetReads() { reads_ = 0; }

  storage::Dialect dialect() const override { return inner_.dialect(); }
  Result<void> Write(const std::function<Result<void>(storage::Tx&)>& work) override {
    return inner_.Write([&](storage::Tx& tx) -> Result<void> {
      CountingTx counting(tx, reads_);
      auto result = work(counting);
      for (auto& done : counting.TakeAfterCommit()) tx.AfterCommit(std::move(done));
      return result;
    });
  }
  Result<void> Read(const std::function<Result<void>(storage::Tx&)>& work) override { return inner_.Read(work); }
  Result<void> Ping() override { return inner_.Ping(); }

 private:
  class CountingTx final : public storage::Tx {
   public:
    CountingTx(storage::Tx& inner, int& reads) : inner_(inner), reads_(reads) { set_careful(inner.careful()); }
    Result<storage::Rows> Query(std::string_view sql, const storage::Params& params) override {
      ++reads_;
      return inner_.Query(sql, params);
    }
    Result<int64_t> Exec(std::string_view sql, const storage::Params& params) override {
      return inner_.Exec(sql, params);
    }
    Result<void> ExecLater(std::string_view sql, const storage::Params& params, int64_t expected) override {
      return inner_.ExecLater(sql, params, expected);
    }
    Result<void> AddLater(std::string_view sql, const std::string& key, const std::vector<int64_t>& deltas,
                          AdditionParams params) override {
      return inner_.AddLater(sql, key, deltas, params);
    }
    Result<void> ExecScript(std::string_view sql) override { return inner_.ExecScript(sql); }
    storage::Dialect dialect() const override { return inner_.dialect(); }

   private:
    storage::Tx& inner_;
    int& reads_;
  };

  storage::Database& inner_;
  int reads_ = 0;
};

class ChargingTest : public BillingTest {
 protected:
  void SetUp() override {
    BillingTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    tenant_ = NewTenant();
    GrantOk(tenant_, Cr(100));
  }

  Credits Available() {
    auto balance = charging_->Balance(tenant_);
    EXPECT_TRUE(balance.ok());
    return balance.ok() ? balance->available : Credits();
  }

  Credits Revenue(UsageCategory category) {
    auto account = ledger_->GetAccount(RevenueAccount(category, PlatformShard(tenant_.str())).id);
    return account.ok() ? account->credits_posted : Credits();
  }

  TenantId tenant_;
};

TEST_P(ChargingTest, ReserveHoldsTheEstimateOrRefusesInsufficientCredits) {
  auto reservation = Reserve(tenant_, Cr(60), "call-1");
  ASSERT_TRUE(reservation.ok()) << reservation.error().message;
  EXPECT_TRUE(ReservationId::Valid(reservation->id.str()));
  EXPECT_EQ(reservation->state, ReservationState::kOpen);
  EXPECT_EQ(reservation->held, Cr(60));
  EXPECT_EQ(Available(), Cr(40));

  auto refused = Reserve(tenant_, Cr(41), "call-2");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInsufficientCredits);
  EXPECT_EQ(CodeName(refused.error().code), "insufficient_credits");
  EXPECT_EQ(Available(), Cr(40));

  auto nothing = Reserve(NewTenant(), Cr(1), "call-3");
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.error().code, ErrorCode::kInsufficientCredits);
  ExpectClean();
}

TEST_P(ChargingTest, ReserveIsIdempotentByKey) {
  auto first = Reserve(tenant_, Cr(30), "call-1");
  ASSERT_TRUE(first.ok());
  clock_.Advance(1s);
  auto replay = charging_->Reserve({tenant_, Cr(30), "test call", "call-1", first->expires_at});
  ASSERT_TRUE(replay.ok()) << replay.error().message;
  EXPECT_EQ(replay->id, first->id);
  EXPECT_EQ(Available(), Cr(70));

  auto different = charging_->Reserve({tenant_, Cr(31), "test call", "call-1", first->expires_at});
  ASSERT_FALSE(different.ok());
  EXPECT_EQ(different.error().code, ErrorCode::kIdempotencyMismatch);
  // The same key belongs to each tenant separately.
  TenantId other = NewTenant();
  GrantOk(other, Cr(5));
  EXPECT_TRUE(Reserve(other, Cr(5), "call-1").ok());

  // A retry that arrives after the reservation's expiry passed still gets the reservation it made.
  clock_.Set(first->expires_at + 1s);
  auto late = charging_->Reserve({tenant_, Cr(30), "test call", "call-1", first->expires_at});
  ASSERT_TRUE(late.ok()) << late.error().message;
  EXPECT_EQ(late->id, first->id);
  auto new_and_late = charging_->Reserve({tenant_, Cr(30), "test call", "call-2", first->expires_at});
  ASSERT_FALSE(new_and_late.ok());
  EXPECT_EQ(new_and_late.error().field, "expires_at");
  ExpectClean();
}

TEST_P(ChargingTest, SettlePostsEachCategoryToItsRevenueAccountAndReleasesTheRest) {
  auto reservation = Reserve(tenant_, Cr(50), "call-1");
  ASSERT_TRUE(reservation.ok());
  std::vector<UsageItem> usage = {{UsageCategory::kCallMinutes, Cr(12)},
                                  {UsageCategory::kAiProcessing, Cr(5)},
                                  {UsageCategory::kVoiceGeneration, Cr(3)},
                                  {UsageCategory::kCampaignExecution, Cr(1)},
                                  {UsageCategory::kCallMinutes, Cr(2)}};
  auto settled = charging_->Settle(tenant_, reservation->id.str(), usage);
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_EQ(settled->state, ReservationState::kSettled);
  EXPECT_EQ(settled->charged, Cr(23));
  EXPECT_EQ(settled->usage, (std::vector<UsageItem>{{UsageCategory::kCallMinutes, Cr(14)},
                                                    {UsageCategory::kAiProcessing, Cr(5)},
                                                    {UsageCategory::kVoiceGeneration, Cr(3)},
                                                    {UsageCategory::kCampaignExecution, Cr(1)}}));
  EXPECT_EQ(Available(), Cr(77));
  EXPECT_EQ(Revenue(UsageCategory::kCallMinutes), Cr(14));
  EXPECT_EQ(Revenue(UsageCategory::kAiProcessing), Cr(5));
  EXPECT_EQ(Revenue(UsageCategory::kVoiceGeneration), Cr(3));
  EXPECT_EQ(Revenue(UsageCategory::kCampaignExecution), Cr(1));
  auto usage_transfer = ledger_->LookupTransfer(reservation->id.str() + "/usage/call_minutes");
  ASSERT_TRUE(usage_transfer.ok());
  EXPECT_EQ(usage_transfer->tenant_id, tenant_.str());
  EXPECT_EQ(usage_transfer->code, "usage.call_minutes");
  ExpectClean();
}

TEST_P(ChargingTest, SettleReplaysAndRefusesADifferentSettlement) {
  auto reservation = Reserve(tenant_, Cr(50), "call-1");
  ASSERT_TRUE(reservation.ok());
  std::vector<UsageItem> usage = {{UsageCategory::kCallMinutes, Cr(10)}};
  ASSERT_TRUE(charging_->Settle(tenant_, reservation->id.str(), usage).ok());
  // A worker that crashed after settling replays the same call.
  auto replay = charging_->Settle(tenant_, reservation->id.str(), usage);
  ASSERT_TRUE(replay.ok()) << replay.error().message;
  EXPECT_EQ(replay->charged, Cr(10));
  auto different = charging_->Settle(tenant_, reservation->id.str(), {{UsageCategory::kCallMinutes, Cr(11)}});
  ASSERT_FALSE(different.ok());
  EXPECT_EQ(different.error().code, ErrorCode::kConflict);
  EXPECT_EQ(Available(), Cr(90));
  auto voided = charging_->Void(tenant_, reservation->id.str());
  ASSERT_FALSE(voided.ok());
  EXPECT_EQ(voided.error().code, ErrorCode::kConflict);
  ExpectClean();
}

TEST_P(ChargingTest, SettleOfZeroUsageReleasesEverything) {
  auto reservation = Reserve(tenant_, Cr(50), "call-1");
  ASSERT_TRUE(reservation.ok());
  auto settled = charging_->Settle(tenant_, reservation->id.str(), {});
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_EQ(settled->charged, Cr(0));
  EXPECT_TRUE(settled->usage.empty());
  EXPECT_EQ(Available(), Cr(100));
  ExpectClean();
}

TEST_P(ChargingTest, UsageAboveTheHoldIsRefused) {
  auto reservation = Reserve(tenant_, Cr(10), "call-1");
  ASSERT_TRUE(reservation.ok());
  auto over = charging_->Settle(tenant_, reservation->id.str(),
                                {{UsageCategory::kCallMinutes, Cr(8)}, {UsageCategory::kAiProcessing, Cr(3)}});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(over.error().field, "usage");
  auto negative = charging_->Settle(tenant_, reservation->id.str(), {{UsageCategory::kCallMinutes, Cr(-1)}});
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.error().code, ErrorCode::kInvalidArgument);
  auto still = charging_->GetReservation(tenant_, reservation->id.str());
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->state, ReservationState::kOpen);
  ExpectClean();
}

TEST_P(ChargingTest, VoidReleasesTheHoldAndReplays) {
  auto reservation = Reserve(tenant_, Cr(40), "call-1");
  ASSERT_TRUE(reservation.ok());
  auto voided = charging_->Void(tenant_, reservation->id.str());
  ASSERT_TRUE(voided.ok()) << voided.error().message;
  EXPECT_EQ(voided->state, ReservationState::kVoided);
  EXPECT_EQ(Available(), Cr(100));
  auto again = charging_->Void(tenant_, reservation->id.str());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->state, ReservationState::kVoided);
  auto settle = charging_->Settle(tenant_, reservation->id.str(), {{UsageCategory::kCallMinutes, Cr(1)}});
  ASSERT_FALSE(settle.ok());
  EXPECT_EQ(settle.error().code, ErrorCode::kConflict);
  ExpectClean();
}

TEST_P(ChargingTest, ExtendHoldsMoreAndLaterInOneStep) {
  auto reservation = Reserve(tenant_, Cr(20), "call-1", 1min);
  ASSERT_TRUE(reservation.ok());
  const TimePoint later = clock_.Now() + 5min;
  auto extended = charging_->Extend({tenant_, reservation->id.str(), Cr(30), later, "slice-2"});
  ASSERT_TRUE(extended.ok()) << extended.error().message;
  EXPECT_EQ(extended->held, Cr(50));
  EXPECT_EQ(extended->expires_at, later);
  EXPECT_NE(extended->hold_transfer_id, reservation->hold_transfer_id);
  EXPECT_EQ(Available(), Cr(50));

  auto replay = charging_->Extend({tenant_, reservation->id.str(), Cr(30), later, "slice-2"});
  ASSERT_TRUE(replay.ok()) << replay.error().message;
  EXPECT_EQ(replay->held, Cr(50));
  auto mismatch = charging_->Extend({tenant_, reservation->id.str(), Cr(31), later, "slice-2"});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, ErrorCode::kIdempotencyMismatch);

  // Too much: refused, and the reservation keeps what it had.
  auto too_much = charging_->Extend({tenant_, reservation->id.str(), Cr(51), std::nullopt, "slice-3"});
  ASSERT_FALSE(too_much.ok());
  EXPECT_EQ(too_much.error().code, ErrorCode::kInsufficientCredits);
  auto kept = charging_->GetReservation(tenant_, reservation->id.str());
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->held, Cr(50));
  EXPECT_EQ(kept->state, ReservationState::kOpen);

  // Only later: same amount, new expiry. The first expiry passes without effect.
  const TimePoint latest = clock_.Now() + 8min;
  ASSERT_TRUE(charging_->Extend({tenant_, reservation->id.str(), Cr(0), latest, "slice-4"}).ok());
  clock_.Advance(6min);
  auto swept = charging_->ExpireStale();
  ASSERT_TRUE(swept.ok());
  EXPECT_TRUE(swept->reservations.empty());
  auto settled = charging_->Settle(tenant_, reservation->id.str(), {{UsageCategory::kCallMinutes, Cr(45)}});
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_EQ(Available(), Cr(55));
  ExpectClean();
}

TEST_P(ChargingTest, StaleReservationsExpireAndAreReported) {
  auto stale = Reserve(tenant_, Cr(30), "call-1", 1min);
  auto live = Reserve(tenant_, Cr(30), "call-2", 10min);
  ASSERT_TRUE(stale.ok() && live.ok());
  clock_.Advance(2min);
  auto lapsed = charging_->GetReservation(tenant_, stale->id.str());
  ASSERT_TRUE(lapsed.ok());
  EXPECT_EQ(lapsed->state, ReservationState::kExpired);  // already, before the sweep
  auto late = charging_->Settle(tenant_, stale->id.str(), {{UsageCategory::kCallMinutes, Cr(1)}});
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::kConflict);

  auto swept = charging_->ExpireStale();
  ASSERT_TRUE(swept.ok()) << swept.error().message;
  ASSERT_EQ(swept->reservations.size(), 1u);
  EXPECT_EQ(swept->reservations.front().reservation_id, stale->id.str());
  EXPECT_EQ(swept->reservations.front().tenant_id, tenant_);
  EXPECT_EQ(swept->reservations.front().released, Cr(30));
  EXPECT_EQ(Available(), Cr(70));
  // Reported to the tenant too: the outbox of its webhooks holds one event per expired reservation.
  const std::string expired_events =
      "SELECT COUNT(*) FROM billing_events WHERE kind = 'reservation.expired' AND subject_id = $1";
  EXPECT_EQ(Count(expired_events, {stale->id.str()}), 1);
  EXPECT_EQ(Count(expired_events, {live->id.str()}), 0);
  // Voiding an expired reservation is a harmless no-op.
  auto voided = charging_->Void(tenant_, stale->id.str());
  ASSERT_TRUE(voided.ok()) << voided.error().message;
  EXPECT_EQ(voided->state, ReservationState::kExpired);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_events WHERE kind = 'reservation.expired'"), 1);
  ExpectClean();
}

TEST_P(ChargingTest, VoidingALapsedReservationBeforeTheSweepExpiresItOnce) {
  auto stale = Reserve(tenant_, Cr(30), "call-1", 1min);
  ASSERT_TRUE(stale.ok());
  clock_.Advance(2min);
  auto voided = charging_->Void(tenant_, stale->id.str());
  ASSERT_TRUE(voided.ok()) << voided.error().message;
  EXPECT_EQ(voided->state, ReservationState::kExpired);
  auto swept = charging_->ExpireStale();
  ASSERT_TRUE(swept.ok());
  EXPECT_TRUE(swept->reservations.empty());
  EXPECT_EQ(Available(), Cr(100));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_events WHERE kind = 'reservation.expired'"), 1);
  ExpectClean();
}

TEST_P(ChargingTest, ReservationsOfAnotherTenantAreNotFound) {
  auto reservation = Reserve(tenant_, Cr(10), "call-1");
  ASSERT_TRUE(reservation.ok());
  TenantId other = NewTenant();
  auto settle = charging_->Settle(other, reservation->id.str(), {});
  ASSERT_FALSE(settle.ok());
  EXPECT_EQ(settle.error().code, ErrorCode::kNotFound);
  auto voided = charging_->Void(other, reservation->id.str());
  ASSERT_FALSE(voided.ok());
  EXPECT_EQ(voided.error().code, ErrorCode::kNotFound);
  auto extend = charging_->Extend({other, reservation->id.str(), Cr(1), std::nullopt, "x"});
  ASSERT_FALSE(extend.ok());
  EXPECT_EQ(extend.error().code, ErrorCode::kNotFound);
}

TEST_P(ChargingTest, GrantIsIdempotentAndAudited) {
  GrantRequest request;
  request.tenant_id = tenant_;
  request.amount = Cr(25);
  request.kind = LotKind::kPromotional;
  request.expires_at = clock_.Now() + 24h;
  request.idempotency_key = "promo-2026";
  request.actor = {"operator", "opr_1", "", "127.0.0.1", "req_1"};
  auto lot = charging_->Grant(request);
  ASSERT_TRUE(lot.ok()) << lot.error().message;
  EXPECT_EQ(lot->kind, LotKind::kPromotional);
  EXPECT_EQ(lot->original, Cr(25));
  auto replay = charging_->Grant(request);
  ASSERT_TRUE(replay.ok()) << replay.error().message;
  EXPECT_EQ(replay->id, lot->id);
  EXPECT_EQ(Available(), Cr(125));
  // Replayed after its lot expired: the same lot, not "expiry must be in the future".
  clock_.Advance(25h);
  auto late = charging_->Grant(request);
  ASSERT_TRUE(late.ok()) << late.error().message;
  EXPECT_EQ(late->id, lot->id);
  request.idempotency_key = "promo-2026-late";
  auto new_one = charging_->Grant(request);
  ASSERT_FALSE(new_one.ok());
  EXPECT_EQ(new_one.error().field, "expires_at");
  request.idempotency_key = "promo-2026";

  request.amount = Cr(26);
  auto mismatch = charging_->Grant(request);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, ErrorCode::kIdempotencyMismatch);

  auto audit = audit_->List(*db_, tenant_.str(), {});
  ASSERT_TRUE(audit.ok()) << audit.error().message;
  int grants_by_operator = 0;
  for (const auto& entry : audit->items) {
    if (entry.event.action == "credits.grant" && entry.actor.kind == "operator") {
      ++grants_by_operator;
      EXPECT_EQ(entry.event.target_id, lot->id);
    }
  }
  EXPECT_EQ(grants_by_operator, 1);
  ExpectClean();
}

TEST_P(ChargingTest, RequestsAreValidated) {
  EXPECT_EQ(charging_->Reserve({tenant_, Cr(0), "p", "k", clock_.Now() + 1min}).error().field, "estimate");
  EXPECT_EQ(charging_->Reserve({tenant_, Cr(1), "", "k", clock_.Now() + 1min}).error().field, "purpose");
  EXPECT_EQ(charging_->Reserve({tenant_, Cr(1), "p", "", clock_.Now() + 1min}).error().field, "idempotency_key");
  EXPECT_EQ(charging_->Reserve({tenant_, Cr(1), "p", "k", clock_.Now()}).error().field, "expires_at");
  EXPECT_EQ(charging_->Reserve({tenant_, Cr(1), "p", "k", clock_.Now() + 25h}).error().field, "expires_at");
  EXPECT_EQ(charging_->Reserve({TenantId("nobody"), Cr(1), "p", "k", clock_.Now() + 1min}).error().field, "tenant_id");
  GrantRequest grant;
  grant.tenant_id = tenant_;
  grant.idempotency_key = "g";
  EXPECT_EQ(charging_->Grant(grant).error().field, "amount");
  grant.amount = Cr(1);
  grant.tenant_id = TenantId::New(clock_, random_);  // well-formed, but no such tenant
  auto unknown = charging_->Grant(grant);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  ExpectClean();
}

TEST_P(ChargingTest, ASettleOfAReservationThisNodeMadeReadsOnlyTheBalanceItLeaves) {
  ReadCountingDatabase counted(*db_);
  Ledger ledger(counted, clock_, random_);
  Charging charging(counted, ledger, *audit_, clock_, random_);
  // The first settle of a node also meets its platform accounts (reads them once, then knows them).
  auto warm = charging.Reserve({tenant_, Cr(1), "test call", "call-0", clock_.Now() + 10min});
  ASSERT_TRUE(warm.ok());
  ASSERT_TRUE(charging.Settle(tenant_, warm->id.str(), {{UsageCategory::kCallMinutes, Cr(1)}}).ok());
  // A low-balance threshold the settles cross, so they record the tenant's event as a read settle would.
  ASSERT_TRUE(db_->Write([&](storage::Tx& tx) -> Result<void> {
                   CLOZIT_TRY(
                       tx.Exec("INSERT INTO billing_balance_settings (tenant_id, low_balance_micros, "
                               "low_notified, depleted_notified, updated_at) VALUES ($1, $2, 0, 0, 0)",
                               {tenant_.str(), Cr(95).micros()}));
                   return Ok();
                 })
                  .ok());
  // Two reservations on the one lot, settled in the other order, so each settle meets the lot as the other
  // left it: the history rows it writes must still chain (seq, amounts after).
  auto first = charging.Reserve({tenant_, Cr(30), "test call", "call-1", clock_.Now() + 10min});
  auto second = charging.Reserve({tenant_, Cr(20), "test call", "call-2", clock_.Now() + 10min});
  ASSERT_TRUE(first.ok() && second.ok());
  counted.ResetReads();
  auto settled = charging.Settle(tenant_, second->id.str(), {{UsageCategory::kCallMinutes, Cr(5)}});
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_EQ(counted.reads(), 1);  // the balance, for the low-balance events
  counted.ResetReads();
  settled = charging.Settle(tenant_, first->id.str(), {{UsageCategory::kCallMinutes, Cr(7)}});
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_EQ(counted.reads(), 1);
  EXPECT_EQ(settled->charged, Cr(7));
  EXPECT_EQ(Available(), Cr(87));
  // What the settle answered without reading is what the database holds.
  auto stored = charging_->GetReservation(tenant_, first->id.str());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(settled->state, stored->state);
  EXPECT_EQ(settled->charged, stored->charged);
  EXPECT_EQ(settled->usage, stored->usage);
  EXPECT_EQ(settled->held, stored->held);
  EXPECT_EQ(settled->hold_transfer_id, stored->hold_transfer_id);
  EXPECT_EQ(settled->expires_at, stored->expires_at);
  EXPECT_EQ(settled->created_at, stored->created_at);
  EXPECT_EQ(settled->purpose, stored->purpose);
  EXPECT_EQ(settled->idempotency_key, stored->idempotency_key);
  EXPECT_EQ(settled->price_version, stored->price_version);
  // One low-balance event, at the first settle that left the balance under 95: 49 + 20 − 5.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_balance_events WHERE tenant_id = $1 AND kind = 'balance.low' "
                  "AND available = $2",
                  {tenant_.str(), Cr(64).micros()}),
            1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_balance_events WHERE tenant_id = $1", {tenant_.str()}), 1);

  // A replay has no facts left to go by: it reads, and answers the same.
  counted.ResetReads();
  auto replay = charging.Settle(tenant_, first->id.str(), {{UsageCategory::kCallMinutes, Cr(7)}});
  ASSERT_TRUE(replay.ok()) << replay.error().message;
  EXPECT_EQ(replay->charged, Cr(7));
  EXPECT_GT(counted.reads(), 1);

  auto lots = ledger_->ListLots(TenantCreditsAccount(tenant_.str()).id, false);
  ASSERT_TRUE(lots.ok() && lots->size() == 1u);
  auto history = ledger_->LotHistory(lots->front().id);
  ASSERT_TRUE(history.ok());
  int64_t remaining = 0, reserved = 0;
  for (size_t index = 0; index < history->size(); ++index) {
    const LotChange& change = (*history)[index];
    remaining += change.delta_remaining.micros();
    reserved += change.delta_reserved.micros();
    EXPECT_EQ(change.seq, static_cast<int64_t>(index) + 1);
    EXPECT_EQ(change.remaining_after.micros(), remaining) << "history row " << change.seq;
    EXPECT_EQ(change.reserved_after.micros(), reserved) << "history row " << change.seq;
  }
  EXPECT_EQ(remaining, Cr(87).micros());
  EXPECT_EQ(reserved, 0);
  ExpectClean();
}

// Each case starts right after the fixture's optimistic writes, so this node's settle tries its facts first.
class StaleFactsTest : public ChargingTest {
 protected:
  void SetUp() override {
    ChargingTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    other_ = std::make_unique<OtherNode>(OpenDatabase(), clock_, random_, *audit_);
    reservation_ = *Reserve(tenant_, Cr(10), "call-1");
  }
  void TearDown() override {
    other_.reset();
    ChargingTest::TearDown();
  }

  Result<Reservation> SettleHere(int64_t credits) {
    return charging_->Settle(tenant_, reservation_.id.str(), {{UsageCategory::kCallMinutes, Cr(credits)}});
  }

  // A write that failed after running statements makes the next few batches careful (storage's
  // write_queue.hpp); a case that needs this node's next settle optimistic waits for that to pass.
  void PassTheCarefulWindow() {
    for (int attempt = 0; attempt < 100; ++attempt) {
      bool careful = true;
      ASSERT_TRUE(db_->Write([&](storage::Tx& tx) -> Result<void> {
                       careful = tx.careful();
                       return Ok();
                     })
                      .ok());
      if (!careful) return;
    }
    FAIL() << "writes stayed careful";
  }

  std::unique_ptr<OtherNode> other_;
  Reservation reservation_;
};

TEST_P(StaleFactsTest, VoidedByAnotherNodeTheSettleIsRefusedAsThereWithNothingCharged) {
  ASSERT_TRUE(other_->charging.Void(tenant_, reservation_.id.str()).ok());
  auto refused = SettleHere(4);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  auto refused_there = other_->charging.Settle(tenant_, reservation_.id.str(), {{UsageCategory::kCallMinutes, Cr(4)}});
  ASSERT_FALSE(refused_there.ok());
  EXPECT_EQ(refused.error().message, refused_there.error().message);
  EXPECT_EQ(Available(), Cr(100));
  ExpectClean();
}

TEST_P(StaleFactsTest, ExtendedByAnotherNodeTheSettlePostsTheNewHoldNotTheOldOne) {
  ExtendRequest more;
  more.tenant_id = tenant_;
  more.reservation_id = reservation_.id.str();
  more.additional = Cr(10);
  more.idempotency_key = "more-1";
  auto extended = other_->charging.Extend(more);
  ASSERT_TRUE(extended.ok()) << extended.error().message;
  // Within the hold this node remembers, whose transfer the extension voided.
  auto settled = SettleHere(4);
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_EQ(settled->charged, Cr(4));
  EXPECT_EQ(settled->hold_transfer_id, extended->hold_transfer_id);
  EXPECT_EQ(settled->held, Cr(20));
  EXPECT_EQ(Available(), Cr(96));
  ExpectClean();
}

TEST_P(StaleFactsTest, SettledByAnotherNodeTheSameSettlementIsAReplayAndAnotherAConflict) {
  ASSERT_TRUE(other_->charging.Settle(tenant_, reservation_.id.str(), {{UsageCategory::kCallMinutes, Cr(4)}}).ok());
  auto replay = SettleHere(4);
  ASSERT_TRUE(replay.ok()) << replay.error().message;
  EXPECT_EQ(replay->charged, Cr(4));
  EXPECT_EQ(replay->state, ReservationState::kSettled);
  EXPECT_EQ(Available(), Cr(96));
  ExpectClean();
}

TEST_P(StaleFactsTest, SettledByAnotherNodeADifferentSettlementIsRefused) {
  ASSERT_TRUE(other_->charging.Settle(tenant_, reservation_.id.str(), {{UsageCategory::kCallMinutes, Cr(4)}}).ok());
  auto conflict = SettleHere(5);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict);
  EXPECT_EQ(Available(), Cr(96));
  ExpectClean();
}

TEST_P(StaleFactsTest, SettledWithoutUsageByAnotherNodeTheReplayChangesNothing) {
  // A refused resolution of the hold makes this node's ledger forget it; its charging still remembers the view.
  TransferSpec probe;
  probe.id = reservation_.hold_transfer_id + "/probe";
  probe.kind = TransferKind::kPostPending;
  probe.pending_id = reservation_.hold_transfer_id;
  probe.amount = Cr(11);
  ASSERT_FALSE(ledger_->CreateTransfer(probe).ok());
  PassTheCarefulWindow();
  ASSERT_TRUE(other_->charging.Settle(tenant_, reservation_.id.str(), {}).ok());
  ASSERT_TRUE(charging_->Settle(tenant_, reservation_.id.str(), {}, 7).ok());
  // A replay keeps the settlement as it was made, price version included.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_reservations WHERE id = $1 AND price_version IS NULL",
                  {reservation_.id.str()}),
            1);
  EXPECT_EQ(Available(), Cr(100));
  ExpectClean();
}

CLOZIT_INSTANTIATE_BACKENDS(ChargingTest);
CLOZIT_INSTANTIATE_BACKENDS(StaleFactsTest);

}  // namespace
}  // namespace clozit::billing::test
