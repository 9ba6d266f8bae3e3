#include "common/credits.hpp"

#include <cstdlib>

namespace clozit {
namespace {
Error Overflow() { return Error::Make(ErrorCode::kInvalidArgument, "credit amount out of range", "amount"); }
}  // namespace

Result<Credits> Credits::FromWhole(int64_t whole) {
  int64_t micros = 0;
  if (__builtin_mul_overflow(whole, kMicrosPerCredit, &micros)) return Overflow();
  return Credits(micros);
}

Result<Credits> Credits::Parse(std::string_view text) {
  auto bad = [] {
    return Error::InvalidArgument("amount", "expected a decimal number with at most 6 fractional digits");
  };
  if (text.empty()) return bad();
  bool negative = false;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  auto dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (whole.empty() || fraction.size() > 6 || (dot != std::string_view::npos && fraction.empty())) return bad();
  int64_t micros = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return bad();
    if (__builtin_mul_overflow(micros, int64_t{10}, &micros) ||
        __builtin_add_overflow(micros, int64_t{c - '0'}, &micros))
      return Overflow();
  }
  if (__builtin_mul_overflow(micros, kMicrosPerCredit, &micros)) return Overflow();
  int64_t fraction_micros = 0;
  int64_t scale = kMicrosPerCredit / 10;
  for (char c : fraction) {
    if (c < '0' || c > '9') return bad();
    fraction_micros += (c - '0') * scale;
    scale /= 10;
  }
  // The whole part alone can sit just below INT64_MAX, so its fraction can still overflow.
  if (__builtin_add_overflow(micros, fraction_micros, &micros)) return Overflow();
  return Credits(negative ? -micros : micros);
}

std::string Credits::ToString() const {
  // Work in unsigned to render INT64_MIN correctly.
  bool negative = micros_ < 0;
  uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(micros_) : static_cast<uint64_t>(micros_);
  std::string out = (negative ? "-" : "") + std::to_string(magnitude / kMicrosPerCredit);
  uint64_t fraction = magnitude % kMicrosPerCredit;
  if (fraction != 0) {
    std::string digits = std::to_string(fraction);
    digits.insert(0, 6 - digits.size(), '0');
    while (digits.back() == '0') digits.pop_back();
    out += "." + digits;
  }
  return out;
}

Result<Credits> Credits::Add(Credits other) const {
  int64_t sum = 0;
  if (__builtin_add_overflow(micros_, other.micros_, &sum)) return Overflow();
  return Credits(sum);
}

Result<Credits> Credits::Subtract(Credits other) const {
  int64_t difference = 0;
  if (__builtin_sub_overflow(micros_, other.micros_, &difference)) return Overflow();
  return Credits(difference);
}

Result<Credits> Credits::Multiply(int64_t factor) const {
  int64_t product = 0;
  if (__builtin_mul_overflow(micros_, factor, &product)) return Overflow();
  return Credits(product);
}

}  // namespace clozit
