#include "http/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace clozit::http {

RateLimiter::RateLimiter(const Clock& clock, int64_t rate, std::chrono::microseconds per, int64_t burst)
    : clock_(clock),
      tokens_per_us_(static_cast<double>(rate) / static_cast<double>(per.count())),
      burst_(static_cast<double>(burst)),
      last_sweep_(clock.Now()) {}

RateLimiter::Decision RateLimiter::Take(const std::string& key) {
  TimePoint now = clock_.Now();
  std::lock_guard lock(mutex_);
  auto refill_us = static_cast<int64_t>(burst_ / tokens_per_us_);
  if ((now - last_sweep_).count() > refill_us && buckets_.size() > 1024) {
    std::erase_if(buckets_, [&](const auto& entry) { return (now - entry.second.updated).count() > refill_us; });
    last_sweep_ = now;
  }
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& bucket = it->second;
  if (!inserted) {
    auto elapsed = std::max<int64_t>(0, (now - bucket.updated).count());
    bucket.tokens = std::min(burst_, bucket.tokens + static_cast<double>(elapsed) * tokens_per_us_);
    bucket.updated = now;
  }
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return {};
  }
  return Refusal(bucket.tokens);
}

RateLimiter::Decision RateLimiter::Peek(const std::string& key) {
  TimePoint now = clock_.Now();
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) return {};
  auto elapsed = std::max<int64_t>(0, (now - it->second.updated).count());
  const double tokens = std::min(burst_, it->second.tokens + static_cast<double>(elapsed) * tokens_per_us_);
  return tokens >= 1.0 ? Decision{} : Refusal(tokens);
}

RateLimiter::Decision RateLimiter::Refusal(double tokens) const {
  double wait_us = (1.0 - tokens) / tokens_per_us_;
  return {false, std::chrono::seconds(static_cast<int64_t>(std::ceil(wait_us / 1e6)))};
}

}  // namespace clozit::http
