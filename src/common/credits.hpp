// Credits: the platform's money, an int64 count of millionths of a credit.
//
// Never floating point. Arithmetic is overflow-checked and returns a Result so
// a ledger can refuse rather than wrap. Parsing and formatting are exact
// decimal with up to six fractional digits.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace clozit {

class Credits {
 public:
  static constexpr int64_t kMicrosPerCredit = 1'000'000;

  constexpr Credits() = default;
  static constexpr Credits FromMicros(int64_t micros) { return Credits(micros); }
  /// Whole credits; fails when out of range.
  static Result<Credits> FromWhole(int64_t whole);
  /// "12", "12.5", "-0.000001"; at most six fractional digits, no exponent.
  static Result<Credits> Parse(std::string_view text);

  constexpr int64_t micros() const { return micros_; }
  /// Exact decimal, trailing zeros trimmed: "12.5", "-0.000001", "0".
  std::string ToString() const;

  Result<Credits> Add(Credits other) const;
  Result<Credits> Subtract(Credits other) const;
  Result<Credits> Multiply(int64_t factor) const;

  friend constexpr auto operator<=>(Credits, Credits) = default;

 private:
  constexpr explicit Credits(int64_t micros) : micros_(micros) {}
  int64_t micros_ = 0;
};

}  // namespace clozit
