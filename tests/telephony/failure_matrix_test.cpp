// The failure matrix, in Beast's fail_count style: for each fault kind — the
// n-th carrier REST request answered 500 (not processed), the n-th processed
// but its answer lost (504), the n-th webhook delivery finding the platform's
// endpoint down — and for every n until a run completes without the fault
// firing, a realistic flow runs against the real carrier emulator over
// loopback HTTP, on Twilio and on Telnyx, on SQLite and PostgreSQL: buy a
// number (fees through billing), place calls that are answered and hung up,
// busy, not answered and rejected, release the number, let the carrier settle
// and reconcile. Then the platform and the carrier must agree: every carrier
// call is known to the platform under its carrier id and both consider it
// over (Twilio: with the same outcome), no platform call is left non-final,
// the number is held at the carrier exactly when the platform says it is
// active, each number the platform bought was charged once and never given
// back, and the ledger checks clean.
//
// Then the same flow and checks with two faults per run, for a seeded sample
// of pairs: two REST requests (each 5xx or a lost answer), two webhook
// deliveries, a lost answer and a webhook delivery down.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "carrier_fixture.hpp"

namespace clozit::telephony {
namespace {

using nlohmann::json;
using storage::Dialect;
using test::kGrant;
using test::kNumberFees;

enum class Fault { kServerError, kLostAnswer, kWebhookDown };

const char* FaultName(Fault fault) {
  switch (fault) {
    case Fault::kServerError:
      return "5xx";
    case Fault::kLostAnswer:
      return "lost answer";
    case Fault::kWebhookDown:
      return "webhook down";
  }
  return "?";
}

class FailureMatrixTest : public test::CarrierFixture {
 protected:
  // Waits until the platform sees `call` answered or over (the emulator answers in tens of ms).
  Call AwaitAnsweredOrOver(const std::string& tenant, const Call& call) {
    for (int i = 0; i < 200; ++i) {
      auto detail = telephony_->calls.Get(tenant, call.id.str());
      if (detail && (detail->call.status == "in_progress" || detail->call.ended_at.has_value())) {
        return detail->call;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return call;
  }

  // One run of the flow on `provider` for tenant `tenant`. A failed purchase or hang-up is retried once, as a
  // user or the dialer would; the point is what state failures leave behind.
  void Flow(ProviderKind provider, const std::string& tenant) {
    const ProviderAccount& account = accounts_.at(provider);
    privacy::Actor actor{"user", "matrix", tenant, "127.0.0.1", "test"};
    std::string number_id;
    std::string from = "+15550009999";
    for (int attempt = 0; attempt < 2 && number_id.empty(); ++attempt) {
      NumberSearchInput search;
      search.account_id = account.id.str();
      search.limit = 3;
      auto found = telephony_->numbers.Search(tenant, search);
      if (!found || found->empty()) continue;
      BuyNumberInput buy;
      buy.phone_number = (*found)[static_cast<size_t>(attempt) % found->size()].phone_number;
      buy.account_id = account.id.str();
      auto bought = telephony_->numbers.Buy(tenant, buy, actor);
      if (bought) {
        number_id = bought->id.str();
        from = bought->e164;
      }
    }

    auto adapter = telephony_->accounts.ProviderFor(account);
    ASSERT_TRUE(adapter.ok());
    for (const char* to : {"+15550001001", "+15550001003", "+15550001004", "+15550001006"}) {
      PlaceCallInput input;
      input.from = from;
      input.to = to;
      input.ring_timeout_seconds = 5;
      input.account_id = account.id.str();
      auto placed = telephony_->calls.Place(tenant, input);
      if (!placed || std::string(to) != "+15550001001") continue;
      Call answered = AwaitAnsweredOrOver(tenant, *placed);
      if (answered.status != "in_progress") continue;
      for (int attempt = 0; attempt < 2; ++attempt) {
        auto hung_up = (*adapter)->Hangup(answered.provider_call_id);
        if (hung_up || hung_up.error().code == ErrorCode::kConflict) break;
      }
    }

    // Not retried: a release the platform reports failed must leave the number held on both sides.
    if (!number_id.empty()) (void)telephony_->numbers.Release(tenant, number_id, actor);
  }

  // Lets the carrier finish every call and deliver (or fail to deliver) every webhook, then reconciles calls and
  // settles half-bought numbers as the number job does.
  void Settle() {
    for (int i = 0; i < 100; ++i) {
      json calls = EmulatorGet("calls");
      bool all_ended = std::all_of(calls.begin(), calls.end(), [](const json& c) { return c.value("ended", false); });
      if (all_ended && emulator_->WaitIdle(std::chrono::milliseconds(100))) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto reconciled = telephony_->calls.Reconcile(std::chrono::milliseconds(0));
    EXPECT_TRUE(reconciled.ok()) << reconciled.error().message;
    auto swept = telephony_->numbers.SweepPurchasing(std::chrono::milliseconds(0));
    EXPECT_TRUE(swept.ok()) << swept.error().message;
    emulator_->WaitIdle(std::chrono::seconds(2));  // hang-ups of adopted calls
  }

  void ExpectConsistent(ProviderKind provider, const std::string& tenant, size_t first_carrier_call,
                        const std::string& label) {
    SCOPED_TRACE(label);
    const ProviderAccount& account = accounts_.at(provider);
    // Calls: platform side.
    auto calls = db_->Query(
        "SELECT id, provider_call_id, status, status_rank, hangup_cause FROM telephony_calls WHERE tenant_id = $1",
        {tenant});
    ASSERT_TRUE(calls.ok());
    std::map<std::string, std::string> platform_status_by_carrier_id;
    for (const auto& row : *calls) {
      EXPECT_EQ(row.Int(3), 4) << "call " << row.Text(0) << " is still " << row.Text(2);
      if (!row.IsNull(1)) platform_status_by_carrier_id[row.Text(1)] = row.Text(2) + "/" + row.Text(4);
    }
    // Calls: carrier side — the calls the carrier made since this run began (runs do not overlap).
    std::set<std::string> carrier_ids;
    json carrier_calls = EmulatorGet("calls");
    for (size_t i = first_carrier_call; i < carrier_calls.size(); ++i) {
      const json& call = carrier_calls[i];
      const std::string id = call.value("id", "");
      carrier_ids.insert(id);
      EXPECT_TRUE(call.value("ended", false)) << "carrier call " << id << " is still " << call.value("status", "");
      auto it = platform_status_by_carrier_id.find(id);
      if (it == platform_status_by_carrier_id.end()) {
        ADD_FAILURE() << "orphan: carrier call " << id << " (" << call.value("to", "") << ") unknown to the platform";
        continue;
      }
      std::string expected = call.value("status", "");
      std::replace(expected.begin(), expected.end(), '-', '_');
      const bool adopted = it->second.ends_with("/orphan_hung_up");
      const bool reconciled = it->second.ends_with("/reconciled");
      if (provider == ProviderKind::kTwilio && !adopted && !reconciled) {
        EXPECT_EQ(it->second.substr(0, it->second.find('/')), expected) << "call " << id;
      }
    }
    for (const auto& [id, status] : platform_status_by_carrier_id) {
      EXPECT_TRUE(carrier_ids.contains(id)) << "the platform knows carrier call " << id << " the carrier does not";
    }

    // Numbers: held at the carrier exactly when active here; each one that was bought charged exactly once.
    auto adapter = telephony_->accounts.ProviderFor(account);
    ASSERT_TRUE(adapter.ok());
    auto held = (*adapter)->ListNumbers();
    ASSERT_TRUE(held.ok()) << held.error().message;
    auto numbers =
        db_->Query("SELECT id, e164, status, purchased_at FROM telephony_numbers WHERE tenant_id = $1", {tenant});
    ASSERT_TRUE(numbers.ok());
    int64_t charged = 0;
    for (const auto& row : *numbers) {
      const std::string e164 = row.Text(1);
      const bool at_carrier =
          std::any_of(held->begin(), held->end(), [&](const OwnedNumber& n) { return n.phone_number == e164; });
      EXPECT_EQ(at_carrier, row.Text(2) == "active") << "number " << e164 << " is " << row.Text(2);
      EXPECT_NE(row.Text(2), "purchasing") << "number " << e164 << " left half-bought";
      auto holding = fees_->GetHolding(TenantId(tenant), row.Text(0));
      if (row.IsNull(3)) {
        EXPECT_TRUE(!holding.ok() || holding->status == billing::HoldingStatus::kAborted) << e164;
        continue;
      }
      ++charged;
      ASSERT_TRUE(holding.ok()) << holding.error().message;
      EXPECT_EQ(holding->periods_charged, 1) << e164;
    }
    for (const auto& number : *held) {
      // A number at the carrier that no row of this tenant claims is one nobody pays for.
      auto claimed = db_->Query("SELECT status FROM telephony_numbers WHERE e164 = $1 AND status = 'active'",
                                {number.phone_number});
      ASSERT_TRUE(claimed.ok());
      EXPECT_FALSE(claimed->empty()) << "number " << number.phone_number << " held at the carrier, not active here";
    }
    auto balance = charging_->Balance(TenantId(tenant));
    ASSERT_TRUE(balance.ok());
    EXPECT_EQ(balance->available.micros(), kGrant.micros() - charged * kNumberFees.micros())
        << "fees charged for " << charged << " numbers";
  }

  /// One run of the flow with the given faults (REST request and webhook numbers counted from the run's start),
  /// then the end-state checks. Returns how many of the faults fired.
  int Run(ProviderKind provider, const std::string& label, const std::set<int>& fail, const std::set<int>& lose,
          const std::set<int>& webhooks_down) {
    const std::string tenant = NewTenant();
    const int fired_before = emulator_->FaultsTriggered();
    const size_t first_carrier_call = EmulatorGet("calls").size();
    emulator_->InjectFaults(fail, lose, webhooks_down);
    Flow(provider, tenant);
    Settle();
    const int fired = emulator_->FaultsTriggered() - fired_before;
    emulator_->SetFaults(false, false, {});  // an unfired fault must not hit the checks
    ExpectConsistent(provider, tenant, first_carrier_call, label);
    return fired;
  }

  void Matrix(ProviderKind provider) {
    for (Fault fault : {Fault::kServerError, Fault::kLostAnswer, Fault::kWebhookDown}) {
      for (int n = 1; n < 200; ++n) {
        const std::string label =
            std::string(ProviderName(provider)) + ", " + FaultName(fault) + " at " + std::to_string(n);
        std::set<int> at = {n};
        const int fired = Run(provider, label, fault == Fault::kServerError ? at : std::set<int>{},
                              fault == Fault::kLostAnswer ? at : std::set<int>{},
                              fault == Fault::kWebhookDown ? at : std::set<int>{});
        if (HasFailure() || fired == 0) {
          // The matrix's size, for the log: how many runs each fault kind took.
          std::printf("%s: %d runs\n", label.c_str(), n);
          break;
        }
      }
      if (HasFailure()) return;
    }
    ExpectLedgerClean();
  }

  /// Two faults per run, for a seeded sample of pairs: two REST requests (each 5xx or a lost answer), two webhook
  /// deliveries, and a lost answer with a webhook delivery down. All pairs would be O(n²) runs; a sample keeps the
  /// time bounded, and the seed (printed, CLOZIT_MATRIX_SEED to choose another) makes a failure reproducible.
  void PairMatrix(ProviderKind provider) {
    const char* seed_text = std::getenv("CLOZIT_MATRIX_SEED");
    const uint64_t seed = seed_text != nullptr ? std::strtoull(seed_text, nullptr, 10) : 20261127;
    std::mt19937_64 random(seed);
    auto pick = [&](int count) { return static_cast<int>(random() % static_cast<uint64_t>(count)) + 1; };
    auto two_of = [&](int count) {
      const int n = pick(count);
      int m = pick(count - 1);
      return std::pair<int, int>{n, m >= n ? m + 1 : m};
    };

    // How many REST requests and webhook deliveries a run makes without faults: the range the faults fall in.
    const json before = EmulatorGet("health");
    Run(provider, std::string(ProviderName(provider)) + ", no fault", {}, {}, {});
    const json after = EmulatorGet("health");
    const int requests = after.value("requests", 0) - before.value("requests", 0);
    const int webhooks = after.value("webhooks", 0) - before.value("webhooks", 0);
    ASSERT_GE(requests, 2);
    ASSERT_GE(webhooks, 2);

    constexpr int kRunsPerKind = 4;
    int runs = 0, faults = 0, fired = 0;
    for (int i = 0; i < kRunsPerKind && !HasFailure(); ++i) {
      auto [n, m] = two_of(requests);
      const bool n_lost = random() % 2 == 0, m_lost = random() % 2 == 0;
      std::set<int> fail, lose;
      (n_lost ? lose : fail).insert(n);
      (m_lost ? lose : fail).insert(m);
      const std::string label =
          std::string(ProviderName(provider)) + ", " + FaultName(n_lost ? Fault::kLostAnswer : Fault::kServerError) +
          " at " + std::to_string(n) + " and " + FaultName(m_lost ? Fault::kLostAnswer : Fault::kServerError) + " at " +
          std::to_string(m) + " (seed " + std::to_string(seed) + ")";
      fired += Run(provider, label, fail, lose, {});
      faults += 2;
      ++runs;
    }
    for (int i = 0; i < kRunsPerKind && !HasFailure(); ++i) {
      auto [n, m] = two_of(webhooks);
      const std::string label = std::string(ProviderName(provider)) + ", webhook down at " + std::to_string(n) +
                                " and " + std::to_string(m) + " (seed " + std::to_string(seed) + ")";
      fired += Run(provider, label, {}, {}, {n, m});
      faults += 2;
      ++runs;
    }
    for (int i = 0; i < kRunsPerKind && !HasFailure(); ++i) {
      const int n = pick(requests), m = pick(webhooks);
      const std::string label = std::string(ProviderName(provider)) + ", lost answer at " + std::to_string(n) +
                                " and webhook down at " + std::to_string(m) + " (seed " + std::to_string(seed) + ")";
      fired += Run(provider, label, {}, {n}, {m});
      faults += 2;
      ++runs;
    }
    std::printf("%s pairs: seed %llu, %d runs, %d of %d faults fired (%d requests, %d webhooks a run)\n",
                std::string(ProviderName(provider)).c_str(), static_cast<unsigned long long>(seed), runs, fired, faults,
                requests, webhooks);
    ExpectLedgerClean();
  }
};

TEST_P(FailureMatrixTest, TwilioEndsConsistentWhicheverRequestOrWebhookFails) { Matrix(ProviderKind::kTwilio); }

TEST_P(FailureMatrixTest, TelnyxEndsConsistentWhicheverRequestOrWebhookFails) { Matrix(ProviderKind::kTelnyx); }

TEST_P(FailureMatrixTest, TwilioEndsConsistentWhenTwoRequestsOrWebhooksFail) { PairMatrix(ProviderKind::kTwilio); }

TEST_P(FailureMatrixTest, TelnyxEndsConsistentWhenTwoRequestsOrWebhooksFail) { PairMatrix(ProviderKind::kTelnyx); }

CLOZIT_INSTANTIATE_BACKENDS(FailureMatrixTest);

}  // namespace
}  // namespace clozit::telephony
