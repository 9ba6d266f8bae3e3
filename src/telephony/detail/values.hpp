// telephony/detail: small conversions the telephony services share (row values, number shapes).
#pragma once

#include <optional>
#include <regex>
#include <string>

#include "common/clock.hpp"
#include "storage/database.hpp"

namespace clozit::telephony::detail {

/// A nullable BIGINT millisecond column as an instant.
inline std::optional<TimePoint> OptionalTime(const storage::Row& row, size_t column) {
  auto value = row.OptionalInt(column);
  if (!value) return std::nullopt;
  return FromUnixMillis(*value);
}

/// "+" and 7 to 15 digits, no leading zero: the shape carriers accept; validity is the carrier's call.
inline bool IsE164(const std::string& number) {
  static const std::regex pattern(R"(\+[1-9][0-9]{6,14})");
  return std::regex_match(number, pattern);
}

}  // namespace clozit::telephony::detail
