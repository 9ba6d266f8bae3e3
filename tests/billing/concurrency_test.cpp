// Eight threads reserve against one tenant's balance at once: the balance
// limit (pending debits included) must hold however the writes interleave.
// Two nodes race to settle and void the same reservations: one resolution
// wins each, whatever each node remembers of them.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "billing/chart.hpp"
#include "billing_fixture.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono_literals;

class ConcurrencyTest : public BillingTest {};

// A caller's retry loop: PostgreSQL reports contention on the hot row as
// kUnavailable once its own retries are spent; the same idempotency key makes
// retrying safe.
template <typename F>
auto Retrying(F call) {
  for (int attempt = 0;; ++attempt) {
    auto result = call();
    if (result.ok() || result.error().code != ErrorCode::kUnavailable || attempt == 100) return result;
    std::this_thread::sleep_for(std::chrono::milliseconds(1 + attempt % 7));
  }
}

TEST_P(ConcurrencyTest, EightThreadsReservingNeverOverspend) {
  constexpr int kThreads = 8;
  constexpr int kAttemptsPerThread = 25;
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(100));

  std::mutex mutex;
  Credits held_open;  // guarded by mutex
  Credits charged;    // guarded by mutex
  std::atomic<int> granted_reservations{0}, refused{0}, unavailable{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < kAttemptsPerThread; ++n) {
        Credits amount = Cr(1 + (t * 7 + n * 3) % 9);
        std::string key = "t" + std::to_string(t) + "-" + std::to_string(n);
        auto reservation = Retrying([&] { return Reserve(tenant, amount, key); });
        if (!reservation.ok()) {
          if (reservation.error().code == ErrorCode::kInsufficientCredits) {
            ++refused;
          } else {
            ++unavailable;
            ADD_FAILURE() << reservation.error().message;
          }
          continue;
        }
        ++granted_reservations;
        // Settle every third reservation for part of its hold, keep the rest open.
        if (n % 3 == 0) {
          Credits used = Credits::FromMicros(amount.micros() / 2);
          auto settled = Retrying([&] {
            return charging_->Settle(tenant, reservation->id.str(), {{UsageCategory::kCallMinutes, used}});
          });
          ASSERT_TRUE(settled.ok()) << settled.error().message;
          std::lock_guard lock(mutex);
          charged = *charged.Add(used);
        } else {
          std::lock_guard lock(mutex);
          held_open = *held_open.Add(amount);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_GT(granted_reservations.load(), 0);
  EXPECT_GT(refused.load(), 0) << "the test should exhaust the balance";
  EXPECT_EQ(unavailable.load(), 0);
  EXPECT_LE(held_open.micros() + charged.micros(), Cr(100).micros());
  auto balance = charging_->Balance(tenant);
  ASSERT_TRUE(balance.ok());
  EXPECT_GE(balance->available.micros(), 0);
  EXPECT_EQ(balance->reserved, held_open);
  EXPECT_EQ(balance->available.micros(), Cr(100).micros() - held_open.micros() - charged.micros());
  ExpectClean();
}

TEST_P(ConcurrencyTest, TwoNodesRacingToResolveTheSameReservationsAgreeOnEach) {
  constexpr int kReservations = 48;
  constexpr int kThreadsPerNode = 4;
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(1000));
  // This node (charging_) made the reservations and remembers them; the other node, on connections and write
  // batches of its own, knows nothing of them.
  OtherNode node(OpenDatabase(), clock_, random_, *audit_);
  Charging& other = node.charging;
  std::vector<Reservation> reservations;
  for (int i = 0; i < kReservations; ++i) {
    auto reservation = Reserve(tenant, Cr(10), "race-" + std::to_string(i));
    ASSERT_TRUE(reservation.ok()) << reservation.error().message;
    reservations.push_back(*reservation);
  }
  auto usage = [](int i) { return std::vector<UsageItem>{{UsageCategory::kCallMinutes, Cr(1 + i % 9)}}; };

  // Even reservations: both nodes settle them alike (one settles, the other replays). Odd ones: this node
  // settles, the other voids (one wins, the other is refused).
  std::vector<Result<Reservation>> here(kReservations, Error::Internal("not run"));
  std::vector<Result<Reservation>> there(kReservations, Error::Internal("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreadsPerNode; ++t) {
    threads.emplace_back([&, t] {
      const bool this_node = t < kThreadsPerNode;
      for (int i = t % kThreadsPerNode; i < kReservations; i += kThreadsPerNode) {
        const std::string id = reservations[static_cast<size_t>(i)].id.str();
        if (this_node) {
          here[static_cast<size_t>(i)] = Retrying([&] { return charging_->Settle(tenant, id, usage(i)); });
        } else if (i % 2 == 0) {
          there[static_cast<size_t>(i)] = Retrying([&] { return other.Settle(tenant, id, usage(i)); });
        } else {
          there[static_cast<size_t>(i)] = Retrying([&] { return other.Void(tenant, id); });
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  Credits charged;
  for (int i = 0; i < kReservations; ++i) {
    const auto& a = here[static_cast<size_t>(i)];
    const auto& b = there[static_cast<size_t>(i)];
    const Credits used = usage(i).front().amount;
    if (i % 2 == 0) {
      ASSERT_TRUE(a.ok() && b.ok()) << i << ": " << (a.ok() ? b.error().message : a.error().message);
      EXPECT_EQ(a->charged, used);
      EXPECT_EQ(b->charged, used);
      charged = *charged.Add(used);
      continue;
    }
    ASSERT_NE(a.ok(), b.ok()) << i << ": exactly one of settle and void wins";
    const auto& loser = a.ok() ? b : a;
    EXPECT_EQ(loser.error().code, ErrorCode::kConflict) << i << ": " << loser.error().message;
    auto stored = charging_->GetReservation(tenant, reservations[static_cast<size_t>(i)].id.str());
    ASSERT_TRUE(stored.ok());
    EXPECT_EQ(stored->state, a.ok() ? ReservationState::kSettled : ReservationState::kVoided) << i;
    if (a.ok()) charged = *charged.Add(used);
  }
  auto balance = charging_->Balance(tenant);
  ASSERT_TRUE(balance.ok());
  EXPECT_EQ(balance->reserved, Credits());
  EXPECT_EQ(balance->available.micros(), Cr(1000).micros() - charged.micros());
  ExpectClean();
}

CLOZIT_INSTANTIATE_BACKENDS(ConcurrencyTest);

}  // namespace
}  // namespace clozit::billing::test
