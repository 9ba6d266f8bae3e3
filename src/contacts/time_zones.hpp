// contacts: where a contact may be, as IANA time zones.
//
// A number or an address rarely pins down one zone: Florida, Indiana,
// Kentucky, Tennessee, Texas, Oregon, Idaho, Nebraska, Kansas, the Dakotas,
// Michigan (and several provinces) span two. So everything here answers with
// *candidate* zones; the compliance module intersects their calling windows.
// Zones are IANA names resolved with date/tz at call time — never fixed UTC
// offsets, which daylight saving time and Arizona make wrong.
//
// Sources: a hand-written US state / Canadian province → zones table, a US
// ZIP-prefix → state table, the operating system's tzdata `zone.tab` for
// every other country, and a few spellings people put in a "time zone"
// column ("Eastern", "PST", "US/Pacific").
//
// Thread-safe after construction (immutable).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clozit::contacts {

/// A first-level subdivision: country ISO 3166-1 alpha-2 and the subdivision's code, "US" + "CA".
struct Subdivision {
  std::string country;
  std::string code;
  std::string Iso() const { return country + "-" + code; }  // ISO 3166-2, "US-CA"
  friend bool operator==(const Subdivision&, const Subdivision&) = default;
};

class TimeZoneTable {
 public:
  /// Reads `<tz_directory>/zone.tab` for the zones of each country; a missing
  /// file leaves only the state and province table.
  explicit TimeZoneTable(const std::string& tz_directory = "/usr/share/zoneinfo");

  /// Candidate zones of a US state (or DC) or Canadian province/territory; empty if unknown.
  std::vector<std::string> ZonesForSubdivision(const Subdivision& subdivision) const;
  /// Every zone tzdata lists for a country (ISO alpha-2); empty if unknown.
  std::vector<std::string> ZonesForCountry(std::string_view country) const;

  /// "California", "CA", "ca", "Washington D.C.", "Québec", "Nova Scotia"...
  /// `country_hint` ("US" or "CA", may be empty) resolves two-letter codes
  /// both countries use. Unknown text gives nullopt.
  std::optional<Subdivision> ParseSubdivision(std::string_view text, std::string_view country_hint = {}) const;
  /// The subdivisions a libphonenumber geocoder description names: "Jersey
  /// City, NJ", "Ontario", "Nova Scotia/Prince Edward Island".
  std::vector<Subdivision> SubdivisionsFromGeocoder(std::string_view description, std::string_view country) const;

  /// The state of a US ZIP code ("94103", "94103-1234"); nullopt if not a ZIP or unassigned.
  std::optional<Subdivision> StateForZip(std::string_view zip) const;

  /// An IANA zone name from what people write: a valid IANA name as is,
  /// "US/Eastern", "Eastern", "EST", "Pacific Time"... nullopt when unknown.
  std::optional<std::string> CanonicalZone(std::string_view text) const;

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> country_zones_;
};

/// True when two zones give the same UTC offset at every instant from the
/// start of `from_year` to the start of `to_year` (same offset and daylight-
/// saving rules). The default window is the rules in force now (Yukon's 2020
/// switch to permanent UTC-7 is the latest change among North American zones).
bool SameRules(const std::string& zone_a, const std::string& zone_b, int from_year = 2021, int to_year = 2036);

}  // namespace clozit::contacts
