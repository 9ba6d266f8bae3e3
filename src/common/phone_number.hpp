// Phone-number parsing to E.164 with libphonenumber, shared by accounts
// (the owner's phone) and contacts (callees). Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace clozit {

struct ParsedPhoneNumber {
  std::string e164;      // "+14155552671"
  std::string region;    // ISO 3166 alpha-2, e.g. "US"
  int country_code = 0;  // 1
};

/// Parses `text` (international with "+", or national for `default_region`)
/// and requires a valid, dialable number. Errors name `field`.
Result<ParsedPhoneNumber> ParsePhoneNumber(std::string_view text, std::string_view default_region,
                                           const std::string& field);

}  // namespace clozit
