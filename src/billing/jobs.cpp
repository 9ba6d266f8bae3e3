#include "billing/jobs.hpp"

#include <spdlog/spdlog.h>

#include "billing/billing.hpp"

namespace clozit::billing {

bool BillingJobs::Due(TimePoint now) const {
  std::lock_guard lock(mutex_);
  return !last_run_ || now - *last_run_ >= settings_.interval;
}

BillingJobsReport BillingJobs::RunOnce(TimePoint now) {
  {
    std::lock_guard lock(mutex_);
    last_run_ = now;
  }
  BillingJobsReport report;
  report.at = now;
  auto failed = [&report](const char* job, const Error& error) {
    report.errors.push_back(std::string(job) + ": " + error.message);
  };
  // Each job in batches until a batch comes back short, so one run catches up on a backlog. What a batch
  // leaves due (short of credits, or failed) is skipped by the next batch of the run.
  int64_t skip = 0;
  for (int batch = 0; batch < settings_.max_batches; ++batch) {
    auto fees = billing_.number_fees.ChargeDueFees(settings_.batch, skip);
    if (!fees) {
      failed("number fees", fees.error());
      break;
    }
    const size_t handled =
        fees->charged.size() + fees->past_due.size() + fees->release_due.size() + fees->failed.size();
    skip += static_cast<int64_t>(fees->past_due.size() + fees->failed.size());
    for (auto& item : fees->charged) report.fees.charged.push_back(std::move(item));
    for (auto& item : fees->past_due) report.fees.past_due.push_back(std::move(item));
    for (auto& item : fees->release_due) report.fees.release_due.push_back(std::move(item));
    for (auto& item : fees->failed) report.errors.push_back("number fee " + item);
    if (handled < static_cast<size_t>(settings_.batch)) break;
  }
  skip = 0;
  for (int batch = 0; batch < settings_.max_batches; ++batch) {
    auto renewals = billing_.subscriptions.RenewDue(settings_.batch, skip);
    if (!renewals) {
      failed("subscription renewals", renewals.error());
      break;
    }
    const size_t handled =
        renewals->renewed.size() + renewals->ended.size() + renewals->past_due.size() + renewals->failed.size();
    skip += static_cast<int64_t>(renewals->past_due.size() + renewals->failed.size());
    for (auto& sub : renewals->renewed) report.renewals.renewed.push_back(std::move(sub));
    for (auto& sub : renewals->past_due) report.renewals.past_due.push_back(std::move(sub));
    for (auto& sub : renewals->ended) report.renewals.ended.push_back(std::move(sub));
    for (auto& item : renewals->failed) report.errors.push_back("subscription " + item);
    if (handled < static_cast<size_t>(settings_.batch)) break;
  }
  for (int batch = 0; batch < settings_.max_batches; ++batch) {
    auto expiry = billing_.charging.ExpireStale(settings_.batch);
    if (!expiry) {
      failed("expiry", expiry.error());
      break;
    }
    if (expiry->holds_expired == 0 && expiry->lots.empty()) break;
    for (auto& item : expiry->reservations) report.expiry.reservations.push_back(std::move(item));
    for (auto& item : expiry->lots) report.expiry.lots.push_back(std::move(item));
  }
  // After the expiry sweep, which lapses refund earmarks: the attempts it left in doubt hold up the provider's
  // refund events for their payments until the provider says what became of them. One batch per run: each
  // asks the provider, and what stays in doubt (unreachable, still pending there) is asked again next run.
  if (auto refunds = billing_.purchases.ResolveRefundsInDoubt(settings_.batch); !refunds) {
    failed("refunds in doubt", refunds.error());
  } else {
    report.refunds = std::move(*refunds);
    for (auto& item : report.refunds.failed) report.errors.push_back("refund request " + item);
  }
  return report;
}

void BillingJobs::Start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void BillingJobs::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BillingJobs::Loop() {
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;
    }
    const TimePoint now = clock_.Now();
    if (Due(now)) {
      BillingJobsReport report = RunOnce(now);
      // Counts only at info level: tenant and number ids stay out of the log.
      if (!report.fees.charged.empty() || !report.fees.release_due.empty() || !report.renewals.renewed.empty() ||
          !report.renewals.ended.empty() || !report.renewals.past_due.empty() || !report.expiry.reservations.empty() ||
          !report.refunds.approved.empty() || !report.refunds.unpaid.empty()) {
        spdlog::info(
            "billing jobs: {} number fees charged, {} past due, {} flagged for release; {} subscriptions renewed, {} "
            "past due, {} ended; {} reservations and {} lots expired; refunds in doubt: {} paid out, {} unpaid",
            report.fees.charged.size(), report.fees.past_due.size(), report.fees.release_due.size(),
            report.renewals.renewed.size(), report.renewals.past_due.size(), report.renewals.ended.size(),
            report.expiry.reservations.size(), report.expiry.lots.size(), report.refunds.approved.size(),
            report.refunds.unpaid.size());
      }
      for (const std::string& error : report.errors) spdlog::error("billing job failed: {}", error);
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, settings_.tick, [this] { return stopping_; });
    if (stopping_) return;
  }
}

}  // namespace clozit::billing
