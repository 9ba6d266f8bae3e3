// http: token-bucket rate limiting keyed by an arbitrary string (API key id,
// session id, "ip:1.2.3.4"). Time comes from the injected Clock. Buckets idle
// for longer than a full refill are dropped so memory stays bounded by the
// active keys. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/clock.hpp"

namespace clozit::http {

class RateLimiter {
 public:
  /// `rate` tokens per `per`, holding at most `burst`.
  RateLimiter(const Clock& clock, int64_t rate, std::chrono::microseconds per, int64_t burst);

  struct Decision {
    bool allowed = true;
    std::chrono::seconds retry_after{0};
  };
  Decision Take(const std::string& key);
  /// What Take would decide now, without taking a token (a check ahead of the request it will count).
  Decision Peek(const std::string& key);

 private:
  Decision Refusal(double tokens) const;
  struct Bucket {
    double tokens;
    TimePoint updated;
  };
  const Clock& clock_;
  double tokens_per_us_;
  double burst_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;  // guarded by mutex_
  TimePoint last_sweep_;                             // guarded by mutex_
};

}  // namespace clozit::http
