// Injectable time and randomness.
//
// Nothing in Clozit reads the wall clock or the OS random source directly: the
// dialer, billing cycles, retention and calling windows take a Clock& and a
// Random& so tests can run them at any simulated instant with repeatable ids.
// SystemClock, ManualClock and both Random implementations are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>

namespace clozit {

using TimePoint = std::chrono::sys_time<std::chrono::microseconds>;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override;
};

/// A clock that only moves when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start) : now_us_(start.time_since_epoch().count()) {}
  TimePoint Now() const override { return TimePoint(std::chrono::microseconds(now_us_.load())); }
  void Set(TimePoint t) { now_us_.store(t.time_since_epoch().count()); }
  void Advance(std::chrono::microseconds d) { now_us_.fetch_add(d.count()); }

 private:
  std::atomic<int64_t> now_us_;
};

/// Milliseconds since the Unix epoch: how instants are stored in the database.
int64_t ToUnixMillis(TimePoint t);
TimePoint FromUnixMillis(int64_t ms);
/// RFC 3339 in UTC with millisecond precision, e.g. "2026-11-26T13:33:06.123Z".
std::string FormatRfc3339(TimePoint t);

class Random {
 public:
  virtual ~Random() = default;
  virtual void Fill(std::span<uint8_t> out) = 0;
  uint64_t NextU64();
};

/// Cryptographically secure randomness from libsodium.
class SystemRandom final : public Random {
 public:
  SystemRandom();
  void Fill(std::span<uint8_t> out) override;
};

/// Deterministic randomness for tests (splitmix64). Never use for secrets in production.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  void Fill(std::span<uint8_t> out) override;

 private:
  std::mutex mutex_;
  uint64_t state_;  // guarded by mutex_
};

/// `bytes` random bytes rendered as unpadded base64url: session ids, tokens, key secrets.
std::string RandomToken(Random& random, size_t bytes);

}  // namespace clozit
