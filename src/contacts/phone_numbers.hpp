// contacts: callee phone numbers — parse, validate, classify, locate.
//
// PhoneNumbers turns what a CRM export holds ("(415) 555-2671",
// "+44 20 7946 0958", "1-212-555-0100") into a NormalizedNumber: E.164, the
// number type, the country, the region (US state or Canadian province from
// libphonenumber's offline geocoder) and the candidate IANA time zones
// (TimeZoneTable). National numbers take a default country. Invalid numbers,
// premium-rate numbers and types an agent cannot sensibly call (pagers,
// voicemail, shared-cost and personal numbers) are refused with a reason.
//
// Speed: libphonenumber needs 10–25 µs per number, too slow for a million-row
// import. Two exact shortcuts keep the result identical to asking it:
//  - a parser for the unambiguous NANP shapes (10 digits with a NANP default
//    country, or 11 digits starting with 1, with only spaces, dots, dashes,
//    slashes and parentheses around them); everything else goes to
//    libphonenumber's parser;
//  - a cache of validity, type and region per number prefix, where the prefix
//    is as long as libphonenumber's own metadata patterns can look
//    (detail/pattern_depth.hpp), so two numbers sharing it are
//    indistinguishable to libphonenumber;
//  - the geocoder is asked once per NANP area code (an area code never crosses
//    a state or province line).
//
// Thread-safe: the caches are guarded by a shared mutex.
#pragma once

#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"
#include "contacts/time_zones.hpp"

namespace clozit::contacts {

enum class NumberType { kFixedLine, kMobile, kFixedLineOrMobile, kTollFree, kVoip, kUan };
/// "fixed_line", "mobile", "fixed_line_or_mobile" (NANP numbers do not say), "toll_free", "voip", "uan".
std::string_view NumberTypeName(NumberType type);
std::optional<NumberType> ParseNumberType(std::string_view name);

struct NormalizedNumber {
  std::string e164;  // "+14155552671"
  NumberType type = NumberType::kFixedLine;
  std::string country;  // ISO 3166-1 alpha-2 of the number, "US"
  /// ISO 3166-2 codes of the state or province ("US-CA"; several joined by
  /// '/' when the geocoder names several), else the geocoder's place name
  /// ("London"), else empty.
  std::string region;
  std::vector<std::string> zones;  // candidate IANA zones, most likely first
};

/// Location columns of the contact's own record; each adds candidate zones.
struct LocationHints {
  std::string time_zone;  // "America/Chicago", "Eastern", "PST"
  std::string state;      // "TX", "Texas", "Ontario"
  std::string zip;        // US ZIP code
};

struct PhoneNumberStats {
  uint64_t fast_parses = 0;
  uint64_t library_parses = 0;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
};

class PhoneNumbers {
 public:
  explicit PhoneNumbers(const TimeZoneTable& zones);
  ~PhoneNumbers();
  PhoneNumbers(const PhoneNumbers&) = delete;
  PhoneNumbers& operator=(const PhoneNumbers&) = delete;

  /// Parses `text` (international with '+', or national for `default_country`,
  /// an ISO alpha-2 code such as "US"). Errors are invalid_argument on field
  /// `field` with a reason: "no phone number", "not a phone number", "not a
  /// valid phone number", "premium-rate numbers are refused", "… numbers are not accepted".
  Result<NormalizedNumber> Normalize(std::string_view text, std::string_view default_country,
                                     const std::string& field = "phone") const;

  /// E.164 for anything libphonenumber can parse, valid or not, with 8 to 15
  /// digits; else '+' and the digits when the text is '+' and 8–15 digits.
  /// For do-not-call entries and opt-outs, which must never be refused.
  std::optional<std::string> LenientE164(std::string_view text, std::string_view default_country) const;

  /// Adds the zones the contact's own columns imply (duplicates skipped).
  /// Returns the hint columns that could not be understood ("time_zone", "state", "zip").
  std::vector<std::string> AddHintZones(NormalizedNumber& number, const LocationHints& hints) const;

  /// True when `country` is a region libphonenumber knows ("US", "GB").
  bool IsKnownCountry(std::string_view country) const;

  PhoneNumberStats stats() const;
  const TimeZoneTable& zones() const { return zones_; }

  /// The slow path alone (libphonenumber for everything, no cache): tests
  /// compare it with Normalize.
  Result<NormalizedNumber> NormalizeUncached(std::string_view text, std::string_view default_country,
                                             const std::string& field = "phone") const;

 private:
  struct Impl;

  const TimeZoneTable& zones_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clozit::contacts
