// Seeded property test: thousands of random grants, purchases, reservations,
// extensions, settlements, voids, replays, refunds, adjustments, clock jumps
// and expiry sweeps over a few tenants, checked against a simple model and by
// CheckLedger.
//
// After every step (every kCheckEvery steps on PostgreSQL, which is slower):
//   - ledger-check finds no breach;
//   - each tenant's available balance is >= 0 and equals Σ (remaining −
//     reserved) of its unexpired lots; reserved equals the model's open holds;
//   - the tenant account's posted credits equal what was granted, bought and
//     restored, its posted debits what was charged, expired and refunded.
// A reservation must succeed exactly when the available balance covers it; a
// refund request is pending exactly when the policy allows it (within 7 days,
// the purchase's unused remainder, once) and refunds that remainder; an
// adjustment never restores more of a charge than it cost, over every claim.
//
// CLOZIT_PROPERTY_SEED and CLOZIT_PROPERTY_STEPS override the seed and step count.
#include <chrono>
#include <cstdlib>
#include <map>

#include "billing/chart.hpp"
#include "billing/payments.hpp"
#include "billing/purchases.hpp"
#include "billing_fixture.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono_literals;

class PropertyTest : public BillingTest {
 protected:
  /// The random walk; CLOZIT_PROPERTY_STEPS overrides `default_steps`.
  void Walk(int64_t default_steps);
};

class Dice {
 public:
  explicit Dice(uint64_t seed) : random_(seed) {}
  /// Uniform in [low, high].
  int64_t Between(int64_t low, int64_t high) {
    return low + static_cast<int64_t>(random_.NextU64() % static_cast<uint64_t>(high - low + 1));
  }
  bool Chance(int percent) { return Between(1, 100) <= percent; }

 private:
  SeededRandom random_;
};

struct OpenHold {
  TenantId tenant;
  Credits held;
};

struct Bought {
  TenantId tenant;
  Purchase purchase;
  bool refunded = false;
};

struct Model {
  std::map<std::string, Credits> granted, charged, expired, refunded;  // by tenant
  std::vector<Bought> bought;
  std::map<std::string, Credits> restored;  // by charge (usage transfer id), over every approved claim
  std::map<std::string, OpenHold> open;     // reservation id → hold
  struct Settled {
    TenantId tenant;
    std::vector<UsageItem> usage;
  };
  std::map<std::string, Settled> settled;  // reservation id → what it was settled with
  int64_t grants = 0, reserves = 0, refusals = 0, extends = 0, settles = 0, voids = 0, replays = 0, sweeps = 0,
          expired_holds = 0, expired_lots = 0, purchases = 0, refunds = 0, refunds_refused = 0, adjustments = 0,
          adjustments_refused = 0;
};

Credits Sum(Credits a, Credits b) { return *a.Add(b); }

int64_t EnvOr(const char* name, int64_t fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::strtoll(text, nullptr, 10) : fallback;
}

void PropertyTest::Walk(int64_t default_steps) {
  const int64_t steps = EnvOr("CLOZIT_PROPERTY_STEPS", default_steps);
  const int64_t check_every = EnvOr("CLOZIT_PROPERTY_CHECK_EVERY", 1);
  const auto seed = static_cast<uint64_t>(EnvOr("CLOZIT_PROPERTY_SEED", 0xC10217));
  SCOPED_TRACE("seed " + std::to_string(seed) + " (set CLOZIT_PROPERTY_SEED to reproduce)");
  Dice dice(seed);
  Model model;
  FakePaymentProvider provider;
  Purchases purchases(*db_, *ledger_, *charging_, provider, *audit_, clock_, random_);
  const privacy::Actor customer{"user", "usr_property"};
  const privacy::Actor staff{"operator", "opr_property"};
  std::vector<TenantId> tenants;
  tenants.reserve(4);
  for (int i = 0; i < 4; ++i) tenants.push_back(NewTenant());
  auto tenant_of = [&] { return tenants[static_cast<size_t>(dice.Between(0, 3))]; };
  auto any_open = [&]() -> std::string {
    if (model.open.empty()) return {};
    auto it = model.open.begin();
    std::advance(it, dice.Between(0, static_cast<int64_t>(model.open.size()) - 1));
    return it->first;
  };
  auto random_usage = [&](Credits held) {
    std::vector<UsageItem> usage;
    int64_t left = dice.Between(0, held.micros());
    for (UsageCategory category : kUsageCategories) {
      if (left == 0 || dice.Chance(30)) continue;
      int64_t part = category == UsageCategory::kCampaignExecution ? left : dice.Between(0, left);
      usage.push_back({category, Credits::FromMicros(part)});
      left -= part;
    }
    return usage;
  };
  auto usage_total = [](const std::vector<UsageItem>& usage) {
    Credits total;
    for (const auto& item : usage) total = Sum(total, item.amount);
    return total;
  };
  auto normalized = [](const std::vector<UsageItem>& usage) {
    std::vector<UsageItem> out;
    for (UsageCategory category : kUsageCategories) {
      Credits sum;
      for (const auto& item : usage) {
        if (item.category == category) sum = Sum(sum, item.amount);
      }
      if (sum.micros() > 0) out.push_back({category, sum});
    }
    return out;
  };
  auto record_expiry = [&](const ExpiryReport& report) {
    for (const auto& hold : report.reservations) {
      ASSERT_EQ(model.open.count(hold.reservation_id), 1u) << hold.reservation_id;
      EXPECT_EQ(model.open[hold.reservation_id].held, hold.released);
      model.open.erase(hold.reservation_id);
      ++model.expired_holds;
    }
    for (const auto& lot : report.lots) {
      model.expired[lot.tenant_id.str()] = Sum(model.expired[lot.tenant_id.str()], lot.amount);
      ++model.expired_lots;
    }
  };

  const auto started = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const int64_t roll = dice.Between(1, 100);
    if (roll <= 10) {
      // Grant a lot of a random kind, priority and expiry.
      TenantId tenant = tenant_of();
      GrantRequest request;
      request.tenant_id = tenant;
      request.amount = Credits::FromMicros(dice.Between(1, 20'000'000));
      request.kind = static_cast<LotKind>(dice.Between(0, 3));
      request.priority = dice.Between(-1, 1);
      if (dice.Chance(50)) request.expires_at = clock_.Now() + std::chrono::minutes(dice.Between(1, 600));
      request.idempotency_key = "g" + std::to_string(step);
      auto lot = charging_->Grant(request);
      ASSERT_TRUE(lot.ok()) << lot.error().message;
      model.granted[tenant.str()] = Sum(model.granted[tenant.str()], request.amount);
      ++model.grants;
    } else if (roll <= 14) {
      // Buy credits: a purchase lot, sometimes with an expiry.
      TenantId tenant = tenant_of();
      PurchaseRequest request;
      request.tenant_id = tenant;
      request.credits = Credits::FromMicros(dice.Between(1, 20'000'000));
      request.price_minor = dice.Between(0, 5000);
      request.currency = "EUR";
      request.payment_reference = "ch_" + std::to_string(step);
      request.idempotency_key = "p" + std::to_string(step);
      if (dice.Chance(30)) request.expires_at = clock_.Now() + std::chrono::minutes(dice.Between(60, 6000));
      auto bought = purchases.RecordPurchase(request);
      ASSERT_TRUE(bought.ok()) << bought.error().message;
      model.granted[tenant.str()] = Sum(model.granted[tenant.str()], request.credits);
      model.bought.push_back({tenant, *bought});
      ++model.purchases;
    } else if (roll <= 40) {
      // Reserve: must succeed exactly when the available balance covers the estimate.
      TenantId tenant = tenant_of();
      auto before = charging_->Balance(tenant);
      ASSERT_TRUE(before.ok());
      Credits estimate = Credits::FromMicros(dice.Between(1, 25'000'000));
      auto reservation =
          Reserve(tenant, estimate, "r" + std::to_string(step), std::chrono::minutes(dice.Between(1, 120)));
      if (estimate <= before->available) {
        ASSERT_TRUE(reservation.ok()) << reservation.error().message;
        model.open[reservation->id.str()] = {tenant, estimate};
        ++model.reserves;
        // The hold earmarked the unexpired lots greedily in burn-down order, and nothing else.
        auto after = charging_->Balance(tenant);
        ASSERT_TRUE(after.ok());
        std::map<std::string, Credits> reserved_after;
        for (const auto& lot : after->lots) reserved_after[lot.lot_id] = lot.reserved;
        int64_t needed = estimate.micros();
        for (const auto& lot : before->lots) {
          const int64_t take = std::min(needed, lot.available.micros());
          needed -= take;
          ASSERT_EQ(reserved_after[lot.lot_id].micros(), lot.reserved.micros() + take) << "lot " << lot.lot_id;
        }
        ASSERT_EQ(after->reserved, Sum(before->reserved, estimate));
      } else {
        ASSERT_FALSE(reservation.ok()) << "reserved " << estimate.ToString() << " with only "
                                       << before->available.ToString() << " available";
        ASSERT_EQ(reservation.error().code, ErrorCode::kInsufficientCredits) << reservation.error().message;
        ++model.refusals;
      }
    } else if (roll <= 47) {
      // Extend an open reservation: more credits and/or a later expiry.
      std::string id = any_open();
      if (id.empty()) continue;
      OpenHold& hold = model.open[id];
      Credits additional = Credits::FromMicros(dice.Chance(30) ? 0 : dice.Between(1, 10'000'000));
      std::optional<TimePoint> expires_at;
      if (dice.Chance(60)) expires_at = clock_.Now() + std::chrono::minutes(dice.Between(1, 120));
      auto current = charging_->GetReservation(hold.tenant, id);
      ASSERT_TRUE(current.ok());
      auto extended = charging_->Extend({hold.tenant, id, additional, expires_at, "x" + std::to_string(step)});
      if (current->state != ReservationState::kOpen) {
        ASSERT_FALSE(extended.ok());
        ASSERT_EQ(extended.error().code, ErrorCode::kConflict) << extended.error().message;
      } else if (extended.ok()) {
        hold.held = Sum(hold.held, additional);
        EXPECT_EQ(extended->held, hold.held);
        ++model.extends;
      } else {
        ASSERT_EQ(extended.error().code, ErrorCode::kInsufficientCredits) << extended.error().message;
      }
    } else if (roll <= 66) {
      // Settle an open reservation with random itemised usage within its hold.
      std::string id = any_open();
      if (id.empty()) continue;
      OpenHold hold = model.open[id];
      auto current = charging_->GetReservation(hold.tenant, id);
      ASSERT_TRUE(current.ok());
      std::vector<UsageItem> usage = random_usage(hold.held);
      auto settled = charging_->Settle(hold.tenant, id, usage);
      if (current->state == ReservationState::kOpen) {
        ASSERT_TRUE(settled.ok()) << settled.error().message;
        EXPECT_EQ(settled->charged, usage_total(usage));
        model.charged[hold.tenant.str()] = Sum(model.charged[hold.tenant.str()], usage_total(usage));
        model.settled[id] = {hold.tenant, usage};
        model.open.erase(id);
        ++model.settles;
      } else {
        ASSERT_EQ(current->state, ReservationState::kExpired);
        ASSERT_FALSE(settled.ok());
        ASSERT_EQ(settled.error().code, ErrorCode::kConflict);
      }
    } else if (roll <= 72) {
      // Void an open (possibly lapsed) reservation.
      std::string id = any_open();
      if (id.empty()) continue;
      OpenHold hold = model.open[id];
      auto voided = charging_->Void(hold.tenant, id);
      ASSERT_TRUE(voided.ok()) << voided.error().message;
      ASSERT_TRUE(voided->state == ReservationState::kVoided || voided->state == ReservationState::kExpired);
      model.open.erase(id);
      ++model.voids;
    } else if (roll <= 75) {
      // Replay a settlement, as a worker restarted after a crash would: same result, nothing charged twice.
      if (model.settled.empty()) continue;
      auto it = model.settled.begin();
      std::advance(it, dice.Between(0, static_cast<int64_t>(model.settled.size()) - 1));
      auto replay = charging_->Settle(it->second.tenant, it->first, it->second.usage);
      ASSERT_TRUE(replay.ok()) << replay.error().message;
      EXPECT_EQ(replay->usage, normalized(it->second.usage));
      ++model.replays;
    } else if (roll <= 79) {
      // Ask for a refund of a purchase, and decide it at once (a provider failure on the way, sometimes).
      if (model.bought.empty()) continue;
      Bought& b = model.bought[static_cast<size_t>(dice.Between(0, static_cast<int64_t>(model.bought.size()) - 1))];
      auto balance = charging_->Balance(b.tenant);
      ASSERT_TRUE(balance.ok());
      Credits unused;  // the lot's unreserved, unexpired remainder
      for (const auto& lot : balance->lots) {
        if (lot.lot_id == b.purchase.lot_id) unused = lot.available;
      }
      const bool in_window = clock_.Now() - b.purchase.created_at <= std::chrono::days(7);
      const bool eligible = !b.refunded && in_window && unused.micros() > 0;
      auto asked = purchases.RequestRefund(b.tenant, b.purchase.id.str(), "unused", customer);
      ASSERT_TRUE(asked.ok()) << asked.error().message;
      if (!eligible) {
        ASSERT_EQ(asked->status, RequestStatus::kRefused) << RefundReasonName(asked->reason_code);
        if (!in_window && !b.refunded) {
          ASSERT_EQ(asked->reason_code, RefundReason::kRefundWindowExpired);
        }
        ++model.refunds_refused;
        continue;
      }
      ASSERT_EQ(asked->status, RequestStatus::kPending) << RefundReasonName(asked->reason_code);
      ASSERT_EQ(asked->requested_credits, unused);
      if (dice.Chance(25)) {
        ASSERT_TRUE(purchases.RejectRefund(asked->id.str(), "bought for a campaign that ran", staff).ok());
        continue;
      }
      // A refusal releases the earmark, an unknown outcome keeps it; either way the retry refunds the same.
      const int trouble = dice.Chance(30) ? static_cast<int>(dice.Between(1, 3)) : 0;
      if (trouble == 1) provider.FailNext(1, "card declined", ErrorCode::kConflict);  // refused
      if (trouble == 2) provider.FailNext(1, "provider unreachable");                 // not sent, outcome unknown
      if (trouble == 3) provider.LoseNextReply();                                     // refunded, reply lost
      auto approved = purchases.ApproveRefund(asked->id.str(), staff);
      provider.FailNext(0);  // unused when the refund was worth nothing in money (not sent to the provider)
      if (!approved.ok()) {
        ASSERT_EQ(approved.error().code, ErrorCode::kUnavailable) << approved.error().message;
        // Refused: the credits are the tenant's again; in doubt: still held for the refund.
        auto between = charging_->Balance(b.tenant);
        ASSERT_TRUE(between.ok());
        Credits lot_available;
        for (const auto& lot : between->lots) {
          if (lot.lot_id == b.purchase.lot_id) lot_available = lot.available;
        }
        ASSERT_EQ(lot_available, trouble == 1 ? unused : Credits());
        approved = purchases.ApproveRefund(asked->id.str(), staff);
      }
      ASSERT_TRUE(approved.ok()) << approved.error().message;
      ASSERT_EQ(approved->status, RequestStatus::kApproved);
      ASSERT_EQ(approved->refunded_credits, unused);
      model.refunded[b.tenant.str()] = Sum(model.refunded[b.tenant.str()], unused);
      b.refunded = true;
      ++model.refunds;
    } else if (roll <= 83) {
      // Claim a settled charge was a platform error; the operator restores part or all of what is left of it,
      // or replaces it with credits, or rejects the claim.
      if (model.settled.empty()) continue;
      auto it = model.settled.begin();
      std::advance(it, dice.Between(0, static_cast<int64_t>(model.settled.size()) - 1));
      const auto items = normalized(it->second.usage);
      if (items.empty()) continue;
      const UsageItem& item = items[static_cast<size_t>(dice.Between(0, static_cast<int64_t>(items.size()) - 1))];
      const std::string charge = it->first + "/usage/" + std::string(UsageCategoryName(item.category));
      const TenantId tenant = it->second.tenant;
      auto claim = purchases.RequestAdjustment(tenant, {charge}, "the call dropped", customer);
      ASSERT_TRUE(claim.ok()) << claim.error().message;
      ASSERT_EQ(claim->status, RequestStatus::kPending);
      const Credits left = *item.amount.Subtract(model.restored[charge]);
      AdjustmentDecision decision;
      decision.resolution =
          dice.Chance(60) ? AdjustmentResolution::kCreditAdjustment : AdjustmentResolution::kReplacementCredits;
      decision.reason = "verified";
      Credits want = left;
      if (dice.Chance(50)) {
        want = Credits::FromMicros(dice.Between(0, left.micros() + 2'000'000));
        decision.amounts.emplace_back(charge, want);
      }
      if (decision.resolution == AdjustmentResolution::kReplacementCredits && dice.Chance(50)) {
        decision.expires_at = clock_.Now() + std::chrono::minutes(dice.Between(1, 600));
      }
      auto decided = purchases.ApproveAdjustment(claim->id.str(), decision, staff);
      if (want > left || want.micros() == 0) {
        // Never more than the charge cost, over every claim; nothing at all is no adjustment.
        ASSERT_FALSE(decided.ok()) << "restored " << want.ToString() << " of " << left.ToString() << " left";
        ASSERT_TRUE(purchases.RejectAdjustment(claim->id.str(), "nothing to restore", staff).ok());
        ++model.adjustments_refused;
        continue;
      }
      ASSERT_TRUE(decided.ok()) << decided.error().message;
      ASSERT_EQ(decided->restored, want);
      model.restored[charge] = Sum(model.restored[charge], want);
      ASSERT_LE(model.restored[charge], item.amount);
      model.granted[tenant.str()] = Sum(model.granted[tenant.str()], want);
      ++model.adjustments;
    } else if (roll <= 93) {
      clock_.Advance(std::chrono::seconds(dice.Between(1, int64_t{90} * 60)));
    } else {
      auto report = charging_->ExpireStale(dice.Between(1, 50));
      ASSERT_TRUE(report.ok()) << report.error().message;
      record_expiry(*report);
      if (HasFatalFailure()) return;
      ++model.sweeps;
    }

    if (step % check_every != 0 && step != steps - 1) continue;
    auto breaches = CheckLedger(*db_);
    ASSERT_TRUE(breaches.ok()) << breaches.error().message;
    ASSERT_TRUE(breaches->empty()) << "ledger-check found:" << Join(*breaches);
    for (const TenantId& tenant : tenants) {
      auto balance = charging_->Balance(tenant);
      ASSERT_TRUE(balance.ok());
      ASSERT_GE(balance->available.micros(), 0);
      Credits from_lots;
      for (const auto& lot : balance->lots) from_lots = Sum(from_lots, *lot.remaining.Subtract(lot.reserved));
      ASSERT_EQ(balance->available, from_lots);
      Credits held;
      for (const auto& [id, hold] : model.open) {
        if (hold.tenant == tenant) held = Sum(held, hold.held);
      }
      ASSERT_EQ(balance->reserved, held);
      auto account = ledger_->GetAccount(TenantCreditsAccount(tenant.str()).id);
      if (!account.ok()) continue;  // never granted anything
      ASSERT_EQ(account->credits_posted, model.granted[tenant.str()]);
      ASSERT_EQ(account->debits_posted,
                Sum(Sum(model.charged[tenant.str()], model.expired[tenant.str()]), model.refunded[tenant.str()]));
    }
  }
  // Catch up with every expiry and check the final books once more.
  clock_.Advance(24h);
  for (;;) {
    auto report = charging_->ExpireStale();
    ASSERT_TRUE(report.ok());
    record_expiry(*report);
    if (report->reservations.empty() && report->lots.empty()) break;
  }
  EXPECT_TRUE(model.open.empty());
  ExpectClean();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "[ property ] %s: %lld steps in %.1f s (checked every %lld): %lld grants, %lld reserves, %lld refusals, "
      "%lld extends, %lld settles, %lld voids, %lld replays, %lld sweeps, %lld holds and %lld lots expired, "
      "%lld purchases, %lld refunds (%lld refused), %lld adjustments (%lld refused)\n",
      postgres() ? "postgres" : "sqlite", static_cast<long long>(steps), seconds, static_cast<long long>(check_every),
      static_cast<long long>(model.grants), static_cast<long long>(model.reserves),
      static_cast<long long>(model.refusals), static_cast<long long>(model.extends),
      static_cast<long long>(model.settles), static_cast<long long>(model.voids), static_cast<long long>(model.replays),
      static_cast<long long>(model.sweeps), static_cast<long long>(model.expired_holds),
      static_cast<long long>(model.expired_lots), static_cast<long long>(model.purchases),
      static_cast<long long>(model.refunds), static_cast<long long>(model.refunds_refused),
      static_cast<long long>(model.adjustments), static_cast<long long>(model.adjustments_refused));
}

// Writes run optimistically first (storage/detail/write_queue.hpp): the ledger then assumes new ids and limits
// that hold, and a write whose assumption fails runs again carefully.
TEST_P(PropertyTest, RandomOperationsKeepTheBooksExact) { Walk(postgres() ? 1500 : 2000); }

// The same walk with every write careful from the start, so the exact path is covered on its own.
TEST_P(PropertyTest, RandomOperationsKeepTheBooksExactWhenEveryWriteIsCareful) {
  ReopenWithCarefulWrites();
  if (HasFatalFailure()) return;
  Walk(postgres() ? 600 : 800);
}

CLOZIT_INSTANTIATE_BACKENDS(PropertyTest);

}  // namespace
}  // namespace clozit::billing::test
