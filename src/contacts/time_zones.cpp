#include "contacts/time_zones.hpp"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <sstream>

namespace clozit::contacts {
namespace {

struct SubdivisionZones {
  const char* country;
  const char* code;
  const char* name;
  std::vector<const char*> zones;  // the first is where most people live
};

// Every US state, DC and territory, and every Canadian province and territory,
// with each zone some part of it keeps. Where a state is split the minority
// zone is listed too: the compliance module intersects the calling windows.
const std::vector<SubdivisionZones>& SubdivisionTable() {
  static const std::vector<SubdivisionZones> table = {
      {"US", "AL", "Alabama", {"America/Chicago"}},
      // The Aleutians west of 169.5°W keep Hawaii-Aleutian time with DST (Adak); some
      // Aleutian exchanges are listed under Honolulu (no DST) elsewhere: keep both.
      {"US", "AK", "Alaska", {"America/Anchorage", "America/Adak", "Pacific/Honolulu"}},
      {"US", "AZ", "Arizona", {"America/Phoenix", "America/Denver"}},  // the Navajo Nation keeps DST
      {"US", "AR", "Arkansas", {"America/Chicago"}},
      {"US", "CA", "California", {"America/Los_Angeles"}},
      {"US", "CO", "Colorado", {"America/Denver"}},
      {"US", "CT", "Connecticut", {"America/New_York"}},
      {"US", "DE", "Delaware", {"America/New_York"}},
      {"US", "DC", "District of Columbia", {"America/New_York"}},
      {"US", "FL", "Florida", {"America/New_York", "America/Chicago"}},
      {"US", "GA", "Georgia", {"America/New_York"}},
      {"US", "HI", "Hawaii", {"Pacific/Honolulu"}},
      {"US", "ID", "Idaho", {"America/Boise", "America/Los_Angeles"}},
      {"US", "IL", "Illinois", {"America/Chicago"}},
      {"US", "IN", "Indiana", {"America/Indiana/Indianapolis", "America/Chicago"}},
      {"US", "IA", "Iowa", {"America/Chicago"}},
      {"US", "KS", "Kansas", {"America/Chicago", "America/Denver"}},
      {"US", "KY", "Kentucky", {"America/New_York", "America/Chicago"}},
      {"US", "LA", "Louisiana", {"America/Chicago"}},
      {"US", "ME", "Maine", {"America/New_York"}},
      {"US", "MD", "Maryland", {"America/New_York"}},
      {"US", "MA", "Massachusetts", {"America/New_York"}},
      {"US", "MI", "Michigan", {"America/Detroit", "America/Menominee"}},
      {"US", "MN", "Minnesota", {"America/Chicago"}},
      {"US", "MS", "Mississippi", {"America/Chicago"}},
      {"US", "MO", "Missouri", {"America/Chicago"}},
      {"US", "MT", "Montana", {"America/Denver"}},
      {"US", "NE", "Nebraska", {"America/Chicago", "America/Denver"}},
      {"US", "NV", "Nevada", {"America/Los_Angeles", "America/Denver"}},  // West Wendover keeps Mountain time
      {"US", "NH", "New Hampshire", {"America/New_York"}},
      {"US", "NJ", "New Jersey", {"America/New_York"}},
      {"US", "NM", "New Mexico", {"America/Denver"}},
      {"US", "NY", "New York", {"America/New_York"}},
      {"US", "NC", "North Carolina", {"America/New_York"}},
      {"US", "ND", "North Dakota", {"America/Chicago", "America/Denver"}},
      {"US", "OH", "Ohio", {"America/New_York"}},
      {"US", "OK", "Oklahoma", {"America/Chicago"}},
      {"US", "OR", "Oregon", {"America/Los_Angeles", "America/Boise"}},
      {"US", "PA", "Pennsylvania", {"America/New_York"}},
      {"US", "RI", "Rhode Island", {"America/New_York"}},
      {"US", "SC", "South Carolina", {"America/New_York"}},
      {"US", "SD", "South Dakota", {"America/Chicago", "America/Denver"}},
      {"US", "TN", "Tennessee", {"America/Chicago", "America/New_York"}},
      {"US", "TX", "Texas", {"America/Chicago", "America/Denver"}},
      {"US", "UT", "Utah", {"America/Denver"}},
      {"US", "VT", "Vermont", {"America/New_York"}},
      {"US", "VA", "Virginia", {"America/New_York"}},
      {"US", "WA", "Washington", {"America/Los_Angeles"}},
      {"US", "WV", "West Virginia", {"America/New_York"}},
      {"US", "WI", "Wisconsin", {"America/Chicago"}},
      {"US", "WY", "Wyoming", {"America/Denver"}},
      {"US", "PR", "Puerto Rico", {"America/Puerto_Rico"}},
      {"US", "VI", "U.S. Virgin Islands", {"America/St_Thomas"}},
      {"US", "GU", "Guam", {"Pacific/Guam"}},
      {"US", "MP", "Northern Mariana Islands", {"Pacific/Saipan"}},
      {"US", "AS", "American Samoa", {"Pacific/Pago_Pago"}},
      {"CA", "AB", "Alberta", {"America/Edmonton"}},
      {"CA",
       "BC",
       "British Columbia",
       {"America/Vancouver", "America/Edmonton", "America/Dawson_Creek", "America/Fort_Nelson", "America/Creston"}},
      {"CA", "MB", "Manitoba", {"America/Winnipeg"}},
      {"CA", "NB", "New Brunswick", {"America/Moncton"}},
      // Labrador keeps Atlantic time; its Straits communities by Blanc-Sablon keep it without DST.
      {"CA", "NL", "Newfoundland and Labrador", {"America/St_Johns", "America/Goose_Bay", "America/Blanc-Sablon"}},
      {"CA", "NS", "Nova Scotia", {"America/Halifax"}},
      {"CA", "NT", "Northwest Territories", {"America/Edmonton", "America/Inuvik"}},
      {"CA", "NU", "Nunavut", {"America/Iqaluit", "America/Rankin_Inlet", "America/Cambridge_Bay"}},
      {"CA", "ON", "Ontario", {"America/Toronto", "America/Winnipeg", "America/Atikokan"}},
      {"CA", "PE", "Prince Edward Island", {"America/Halifax"}},
      {"CA", "QC", "Quebec", {"America/Toronto", "America/Halifax", "America/Blanc-Sablon"}},
      // Lloydminster keeps Alberta's time; Creighton keeps Manitoba's, with DST.
      {"CA", "SK", "Saskatchewan", {"America/Regina", "America/Swift_Current", "America/Edmonton", "America/Winnipeg"}},
      // Yukon moved to permanent UTC-7 in 2020; numbering data still lists its
      // exchanges under Pacific time, so Vancouver stays a candidate (the
      // intersection of windows is then right either way).
      {"CA", "YT", "Yukon", {"America/Whitehorse", "America/Dawson", "America/Vancouver"}},
  };
  return table;
}

// Other spellings of subdivisions, lower case, without dots.
struct Alias {
  const char* text;
  const char* country;
  const char* code;
};
constexpr std::array kAliases = {
    Alias{"washington state", "US", "WA"},
    Alias{"washington dc", "US", "DC"},
    Alias{"washington, dc", "US", "DC"},
    Alias{"dc", "US", "DC"},
    Alias{"us virgin islands", "US", "VI"},
    Alias{"virgin islands", "US", "VI"},
    Alias{"newfoundland", "CA", "NL"},
    Alias{"labrador", "CA", "NL"},
    Alias{"newfoundland & labrador", "CA", "NL"},
    Alias{"pei", "CA", "PE"},
    Alias{"yukon territory", "CA", "YT"},
    Alias{"nwt", "CA", "NT"},
    // Geocoder descriptions that name a place without its state.
    Alias{"philadelphia", "US", "PA"},
    Alias{"long island", "US", "NY"},
    Alias{"watson lake", "CA", "YT"},
};

// US ZIP code prefixes (first three digits) → state, as assigned by USPS.
struct ZipRange {
  int low;
  int high;
  const char* state;
};
constexpr std::array kZipRanges = {
    ZipRange{5, 5, "NY"},     ZipRange{6, 7, "PR"},     ZipRange{8, 8, "VI"},     ZipRange{9, 9, "PR"},
    ZipRange{10, 27, "MA"},   ZipRange{28, 29, "RI"},   ZipRange{30, 38, "NH"},   ZipRange{39, 49, "ME"},
    ZipRange{50, 54, "VT"},   ZipRange{55, 55, "MA"},   ZipRange{56, 59, "VT"},   ZipRange{60, 69, "CT"},
    ZipRange{70, 89, "NJ"},   ZipRange{100, 149, "NY"}, ZipRange{150, 196, "PA"}, ZipRange{197, 199, "DE"},
    ZipRange{200, 200, "DC"}, ZipRange{201, 201, "VA"}, ZipRange{202, 205, "DC"}, ZipRange{206, 219, "MD"},
    ZipRange{220, 246, "VA"}, ZipRange{247, 268, "WV"}, ZipRange{270, 289, "NC"}, ZipRange{290, 299, "SC"},
    ZipRange{300, 319, "GA"}, ZipRange{320, 339, "FL"}, ZipRange{341, 349, "FL"}, ZipRange{350, 369, "AL"},
    ZipRange{370, 385, "TN"}, ZipRange{386, 397, "MS"}, ZipRange{398, 399, "GA"}, ZipRange{400, 427, "KY"},
    ZipRange{430, 459, "OH"}, ZipRange{460, 479, "IN"}, ZipRange{480, 499, "MI"}, ZipRange{500, 528, "IA"},
    ZipRange{530, 549, "WI"}, ZipRange{550, 567, "MN"}, ZipRange{569, 569, "DC"}, ZipRange{570, 577, "SD"},
    ZipRange{580, 588, "ND"}, ZipRange{590, 599, "MT"}, ZipRange{600, 629, "IL"}, ZipRange{630, 658, "MO"},
    ZipRange{660, 679, "KS"}, ZipRange{680, 693, "NE"}, ZipRange{700, 714, "LA"}, ZipRange{716, 729, "AR"},
    ZipRange{730, 732, "OK"}, ZipRange{733, 733, "TX"}, ZipRange{734, 749, "OK"}, ZipRange{750, 799, "TX"},
    ZipRange{800, 816, "CO"}, ZipRange{820, 831, "WY"}, ZipRange{832, 838, "ID"}, ZipRange{840, 847, "UT"},
    ZipRange{850, 865, "AZ"}, ZipRange{870, 884, "NM"}, ZipRange{885, 885, "TX"}, ZipRange{889, 898, "NV"},
    ZipRange{900, 961, "CA"}, ZipRange{967, 968, "HI"}, ZipRange{969, 969, "GU"}, ZipRange{970, 979, "OR"},
    ZipRange{980, 994, "WA"}, ZipRange{995, 999, "AK"},
};

// What people write in a "time zone" column, lower case, "time" words removed.
struct ZoneAlias {
  const char* text;
  const char* zone;
};
constexpr std::array kZoneAliases = {
    ZoneAlias{"eastern", "America/New_York"},
    ZoneAlias{"et", "America/New_York"},
    ZoneAlias{"est", "America/New_York"},
    ZoneAlias{"edt", "America/New_York"},
    ZoneAlias{"central", "America/Chicago"},
    ZoneAlias{"ct", "America/Chicago"},
    ZoneAlias{"cst", "America/Chicago"},
    ZoneAlias{"cdt", "America/Chicago"},
    ZoneAlias{"mountain", "America/Denver"},
    ZoneAlias{"mt", "America/Denver"},
    ZoneAlias{"mst", "America/Denver"},
    ZoneAlias{"mdt", "America/Denver"},
    ZoneAlias{"arizona", "America/Phoenix"},
    ZoneAlias{"pacific", "America/Los_Angeles"},
    ZoneAlias{"pt", "America/Los_Angeles"},
    ZoneAlias{"pst", "America/Los_Angeles"},
    ZoneAlias{"pdt", "America/Los_Angeles"},
    ZoneAlias{"alaska", "America/Anchorage"},
    ZoneAlias{"akst", "America/Anchorage"},
    ZoneAlias{"akdt", "America/Anchorage"},
    ZoneAlias{"hawaii", "Pacific/Honolulu"},
    ZoneAlias{"hst", "Pacific/Honolulu"},
    ZoneAlias{"hawaii-aleutian", "America/Adak"},
    ZoneAlias{"atlantic", "America/Halifax"},
    ZoneAlias{"ast", "America/Halifax"},
    ZoneAlias{"adt", "America/Halifax"},
    ZoneAlias{"newfoundland", "America/St_Johns"},
    ZoneAlias{"nst", "America/St_Johns"},
    ZoneAlias{"ndt", "America/St_Johns"},
    ZoneAlias{"utc", "Etc/UTC"},
    ZoneAlias{"gmt", "Etc/UTC"},
    ZoneAlias{"z", "Etc/UTC"},
};

std::string Trim(std::string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

// Lower case ASCII, dots dropped, "é" folded to "e", runs of spaces collapsed.
std::string Fold(std::string_view text) {
  std::string out;
  std::string trimmed = Trim(text);
  for (size_t i = 0; i < trimmed.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(trimmed[i]);
    if (c == 0xC3 && i + 1 < trimmed.size() && (static_cast<unsigned char>(trimmed[i + 1]) | 0x20) == 0xA9) {
      out.push_back('e');  // é / É
      ++i;
    } else if (c == '.') {
      continue;
    } else if (std::isspace(c)) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(static_cast<char>(std::tolower(c)));
    }
  }
  return out;
}

}  // namespace

TimeZoneTable::TimeZoneTable(const std::string& tz_directory) {
  std::ifstream in(tz_directory + "/zone.tab");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string country, coordinates, zone;
    if (!std::getline(fields, country, '\t') || !std::getline(fields, coordinates, '\t') ||
        !std::getline(fields, zone, '\t')) {
      continue;
    }
    if (country.size() != 2 || zone.empty()) continue;
    country_zones_[country].push_back(zone);
  }
}

std::vector<std::string> TimeZoneTable::ZonesForSubdivision(const Subdivision& subdivision) const {
  for (const auto& entry : SubdivisionTable()) {
    if (subdivision.country == entry.country && subdivision.code == entry.code) {
      return {entry.zones.begin(), entry.zones.end()};
    }
  }
  return {};
}

std::vector<std::string> TimeZoneTable::ZonesForCountry(std::string_view country) const {
  auto found = country_zones_.find(country);
  return found == country_zones_.end() ? std::vector<std::string>{} : found->second;
}

std::optional<Subdivision> TimeZoneTable::ParseSubdivision(std::string_view text, std::string_view country_hint) const {
  std::string folded = Fold(text);
  if (folded.empty()) return std::nullopt;
  const auto& table = SubdivisionTable();
  if (folded.size() == 2) {
    std::string code = {static_cast<char>(std::toupper(static_cast<unsigned char>(folded[0]))),
                        static_cast<char>(std::toupper(static_cast<unsigned char>(folded[1])))};
    const SubdivisionZones* match = nullptr;
    for (const auto& entry : table) {
      if (code != entry.code) continue;
      if (match == nullptr || country_hint == entry.country) match = &entry;
    }
    if (match != nullptr) return Subdivision{match->country, match->code};
  }
  for (const auto& entry : table) {
    if (folded == Fold(entry.name)) return Subdivision{entry.country, entry.code};
  }
  for (const auto& alias : kAliases) {
    if (folded == alias.text) return Subdivision{alias.country, alias.code};
  }
  return std::nullopt;
}

std::vector<Subdivision> TimeZoneTable::SubdivisionsFromGeocoder(std::string_view description,
                                                                 std::string_view country) const {
  std::vector<Subdivision> out;
  size_t start = 0;
  while (start <= description.size()) {
    size_t slash = description.find('/', start);
    std::string_view part =
        description.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    // "Jersey City, NJ": the code after the last comma; otherwise a whole name.
    size_t comma = part.rfind(", ");
    std::optional<Subdivision> found;
    if (comma != std::string_view::npos) found = ParseSubdivision(part.substr(comma + 2), country);
    if (!found) found = ParseSubdivision(part, country);
    if (found && (country.empty() || found->country == country) &&
        std::find(out.begin(), out.end(), *found) == out.end()) {
      out.push_back(*found);
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

std::optional<Subdivision> TimeZoneTable::StateForZip(std::string_view zip) const {
  std::string text = Trim(zip);
  // "94103", "94103-1234", "941031234"; a leading zero lost by a spreadsheet ("2134") is restored.
  if (text.size() == 10 && text[5] == '-') text = text.substr(0, 5) + text.substr(6);
  if (text.size() != 4 && text.size() != 5 && text.size() != 9) return std::nullopt;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  if (text.size() == 4) text = "0" + text;
  int prefix = (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
  for (const auto& range : kZipRanges) {
    if (prefix >= range.low && prefix <= range.high) return Subdivision{"US", range.state};
  }
  return std::nullopt;
}

std::optional<std::string> TimeZoneTable::CanonicalZone(std::string_view text) const {
  std::string trimmed = Trim(text);
  if (trimmed.empty() || trimmed.size() > 64) return std::nullopt;
  if (trimmed.find('/') != std::string::npos) {
    try {
      if (date::locate_zone(trimmed) != nullptr) return trimmed;
    } catch (const std::exception&) {
      // Not an IANA name; try the spellings below.
    }
  }
  std::string folded = Fold(trimmed);
  if (folded.rfind("us/", 0) == 0) folded = folded.substr(3);
  for (std::string_view suffix : {" standard time", " daylight time", " time zone", " time"}) {
    if (folded.size() > suffix.size() && folded.compare(folded.size() - suffix.size(), suffix.size(), suffix) == 0) {
      folded.resize(folded.size() - suffix.size());
      break;
    }
  }
  for (const auto& alias : kZoneAliases) {
    if (folded == alias.text) return std::string(alias.zone);
  }
  return std::nullopt;
}

bool SameRules(const std::string& zone_a, const std::string& zone_b, int from_year, int to_year) {
  if (zone_a == zone_b) return true;
  try {
    const date::time_zone* a = date::locate_zone(zone_a);
    const date::time_zone* b = date::locate_zone(zone_b);
    using std::chrono::seconds;
    date::sys_seconds t = date::sys_days(date::year(from_year) / 1 / 1);
    date::sys_seconds end = date::sys_days(date::year(to_year) / 1 / 1);
    while (t < end) {
      date::sys_info info_a = a->get_info(t);
      date::sys_info info_b = b->get_info(t);
      if (info_a.offset != info_b.offset) return false;
      t = std::min(info_a.end, info_b.end);
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace clozit::contacts
