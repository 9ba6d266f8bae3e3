#include "common/clock.hpp"

#include <sodium.h>

#include <cstdio>
#include <stdexcept>
#include <vector>

#include <date/date.h>

#include "common/encoding.hpp"

namespace clozit {

TimePoint SystemClock::Now() const {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

int64_t ToUnixMillis(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

TimePoint FromUnixMillis(int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

std::string FormatRfc3339(TimePoint t) {
  // Called for every timestamp in every response: civil-date arithmetic, not date::format's iostreams.
  auto ms = std::chrono::floor<std::chrono::milliseconds>(t);
  auto day = std::chrono::floor<date::days>(ms);
  date::year_month_day ymd(day);
  date::hh_mm_ss<std::chrono::milliseconds> time(ms - day);
  char buffer[32];
  auto written =
      std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                    static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                    static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                    static_cast<int>(time.seconds().count()), static_cast<int>(time.subseconds().count()));
  return std::string(buffer, static_cast<size_t>(written));
}

uint64_t Random::NextU64() {
  uint64_t value = 0;
  Fill(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&value), sizeof value));
  return value;
}

SystemRandom::SystemRandom() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

void SystemRandom::Fill(std::span<uint8_t> out) { randombytes_buf(out.data(), out.size()); }

void SeededRandom::Fill(std::span<uint8_t> out) {
  std::lock_guard lock(mutex_);
  for (auto& byte : out) {
    state_ += 0x9E3779B97F4A7C15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    byte = static_cast<uint8_t>(z ^ (z >> 31));
  }
}

std::string RandomToken(Random& random, size_t bytes) {
  std::vector<uint8_t> buffer(bytes);
  random.Fill(buffer);
  return Base64Url(buffer);
}

}  // namespace clozit
