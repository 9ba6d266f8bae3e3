// billing/jobs: the periodic billing work — phone-number fees that fell due,
// subscription renewals (and cancellations reaching their period end),
// stale reservations and expired lots (Charging::ExpireStale), and refund
// attempts whose earmark lapsed with their outcome unknown
// (Purchases::ResolveRefundsInDoubt, which asks the payment provider).
//
// RunOnce runs every job once, each catching up in batches; the components
// read the same injectable Clock, so tests call RunOnce at chosen instants.
// Start() runs RunOnce on a thread of its own whenever `interval` has passed
// on that clock (checked every `tick` of real time), until Stop() or the
// destructor; a failing job is logged and retried at the next run, and does
// not keep the others from running. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "billing/charging.hpp"
#include "billing/number_fees.hpp"
#include "billing/purchases.hpp"
#include "billing/subscriptions.hpp"
#include "common/clock.hpp"

namespace clozit::billing {

struct Billing;

struct BillingJobsSettings {
  std::chrono::milliseconds interval = std::chrono::seconds(60);
  std::chrono::milliseconds tick = std::chrono::seconds(1);  // how often the thread looks at the clock
  int64_t batch = 500;
  int max_batches = 100;  // per job and run: a backlog larger than this waits for the next run
};

struct BillingJobsReport {
  TimePoint at;
  FeeRunReport fees;
  SubscriptionRenewals renewals;
  ExpiryReport expiry;
  RefundResolutions refunds;        // refund attempts whose earmark lapsed in doubt, settled with the provider
  std::vector<std::string> errors;  // one line per failed job, subscription or number (left due for the next run)
};

class BillingJobs {
 public:
  BillingJobs(Billing& billing, const Clock& clock, BillingJobsSettings settings = {})
      : billing_(billing), clock_(clock), settings_(settings) {}
  ~BillingJobs() { Stop(); }
  BillingJobs(const BillingJobs&) = delete;
  BillingJobs& operator=(const BillingJobs&) = delete;

  /// Runs every job once, as of `now` (the clock's reading the components also use).
  BillingJobsReport RunOnce(TimePoint now);
  /// True when no run happened yet or `interval` has passed since the last.
  bool Due(TimePoint now) const;

  void Start();
  /// Stops the thread after the run in progress; idempotent.
  void Stop();

 private:
  void Loop();

  Billing& billing_;
  const Clock& clock_;
  const BillingJobsSettings settings_;
  mutable std::mutex mutex_;
  // Guarded by mutex_:
  std::optional<TimePoint> last_run_;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread thread_;  // started and joined by the owner's thread only
};

}  // namespace clozit::billing
