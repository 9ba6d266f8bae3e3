#include "contacts/time_zones.hpp"

#include <date/tz.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "contacts/phone_numbers.hpp"

namespace clozit::contacts {
namespace {

TEST(TimeZoneTable, EveryTableZoneExistsInTzdata) {
  TimeZoneTable table;
  for (const char* country : {"US", "CA"}) {
    for (const char* code :
         {"AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
          "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH",
          "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "PR", "VI", "GU",
          "MP", "AS", "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"}) {
      for (const auto& zone : table.ZonesForSubdivision({country, code})) {
        EXPECT_NO_THROW(date::locate_zone(zone)) << zone;
      }
    }
  }
  EXPECT_EQ(table.ZonesForSubdivision({"US", "TX"}), (std::vector<std::string>{"America/Chicago", "America/Denver"}));
  EXPECT_TRUE(table.ZonesForSubdivision({"US", "ON"}).empty());
  EXPECT_EQ(table.ZonesForCountry("FR"), (std::vector<std::string>{"Europe/Paris"}));
  EXPECT_GT(table.ZonesForCountry("US").size(), 20u);
  EXPECT_TRUE(table.ZonesForCountry("XX").empty());
}

TEST(TimeZoneTable, ParsesStateAndProvinceSpellings) {
  TimeZoneTable table;
  auto parse = [&](const char* text) {
    auto found = table.ParseSubdivision(text);
    return found ? found->Iso() : std::string("none");
  };
  EXPECT_EQ(parse("CA"), "US-CA");
  EXPECT_EQ(parse("ca"), "US-CA");
  EXPECT_EQ(parse(" Texas "), "US-TX");
  EXPECT_EQ(parse("new  york"), "US-NY");
  EXPECT_EQ(parse("Washington D.C."), "US-DC");
  EXPECT_EQ(parse("Washington State"), "US-WA");
  EXPECT_EQ(parse("Québec"), "CA-QC");
  EXPECT_EQ(parse("ON"), "CA-ON");
  EXPECT_EQ(parse("Newfoundland"), "CA-NL");
  EXPECT_EQ(parse("Atlantis"), "none");
  EXPECT_EQ(parse(""), "none");

  auto geocoded = table.SubdivisionsFromGeocoder("Northwest Territories/Nunavut/Yukon", "CA");
  ASSERT_EQ(geocoded.size(), 3u);
  EXPECT_EQ(geocoded[2].Iso(), "CA-YT");
  EXPECT_EQ(table.SubdivisionsFromGeocoder("Jersey City, NJ", "US").at(0).Iso(), "US-NJ");
  EXPECT_TRUE(table.SubdivisionsFromGeocoder("United States", "US").empty());
  EXPECT_TRUE(table.SubdivisionsFromGeocoder("Ontario", "US").empty());  // wrong country
}

TEST(TimeZoneTable, ZipCodesGiveTheirState) {
  TimeZoneTable table;
  auto state = [&](const char* zip) {
    auto found = table.StateForZip(zip);
    return found ? found->code : std::string("none");
  };
  EXPECT_EQ(state("94103"), "CA");
  EXPECT_EQ(state("10001-2345"), "NY");
  EXPECT_EQ(state("2134"), "MA");  // Boston, leading zero lost by a spreadsheet
  EXPECT_EQ(state("73301"), "TX");
  EXPECT_EQ(state("20500"), "DC");
  EXPECT_EQ(state("99501"), "AK");
  EXPECT_EQ(state("00901"), "PR");
  EXPECT_EQ(state("34000"), "none");  // military mail
  EXPECT_EQ(state("ABCDE"), "none");
  EXPECT_EQ(state("123"), "none");
}

TEST(TimeZoneTable, UnderstandsTimeZoneColumns) {
  TimeZoneTable table;
  auto zone = [&](const char* text) { return table.CanonicalZone(text).value_or("none"); };
  EXPECT_EQ(zone("America/Chicago"), "America/Chicago");
  EXPECT_EQ(zone("US/Eastern"), "US/Eastern");
  EXPECT_EQ(zone("Eastern"), "America/New_York");
  EXPECT_EQ(zone("Pacific Time"), "America/Los_Angeles");
  EXPECT_EQ(zone("Central Standard Time"), "America/Chicago");
  EXPECT_EQ(zone("MST"), "America/Denver");
  EXPECT_EQ(zone("Arizona"), "America/Phoenix");
  EXPECT_EQ(zone("Mars/Olympus_Mons"), "none");
  EXPECT_EQ(zone("UTC-05:00"), "none");  // a fixed offset is never a zone
}

TEST(TimeZoneTable, SameRulesComparesOffsetsAndDaylightSaving) {
  EXPECT_TRUE(SameRules("America/Boise", "America/Denver"));
  EXPECT_TRUE(SameRules("America/Indiana/Indianapolis", "America/New_York"));
  EXPECT_FALSE(SameRules("America/Phoenix", "America/Denver"));  // no DST in Arizona
  EXPECT_FALSE(SameRules("America/Chicago", "America/Denver"));
  EXPECT_FALSE(SameRules("Europe/London", "Europe/Lisbon") && SameRules("Europe/London", "Europe/Paris"));
  EXPECT_FALSE(SameRules("America/New_York", "Not/A_Zone"));
}

// The acceptance check from the issue: for every +1 row of the oracle
// (libphonenumber's Java time-zone map, read here only), every oracle zone
// is among the candidates derived from the geocoder region, or keeps the
// same UTC offset and daylight-saving rules as one of them.
TEST(TimeZoneOracle, DerivedCandidatesCoverEveryNanpPrefix) {
  std::ifstream in(CLOZIT_NANP_ORACLE);
  if (!in) GTEST_SKIP() << "oracle not found at " << CLOZIT_NANP_ORACLE;
  TimeZoneTable table;
  PhoneNumbers numbers(table);

  int rows = 0, area_code_rows = 0, checked = 0, unparseable = 0;
  std::vector<std::string> no_valid_number;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t bar = line.find('|');
    ASSERT_NE(bar, std::string::npos) << line;
    std::string prefix = line.substr(0, bar);
    std::vector<std::string> oracle_zones;
    std::stringstream zones(line.substr(bar + 1));
    for (std::string zone; std::getline(zones, zone, '&');) oracle_zones.push_back(zone);
    ++rows;
    if (prefix.size() == 4) ++area_code_rows;
    if (prefix.size() < 4 || prefix.size() > 11 || prefix[0] != '1') {
      ++unparseable;
      continue;
    }

    // A valid number under the prefix: try completions until libphonenumber accepts one.
    Result<NormalizedNumber> derived = Error::Internal("none");
    size_t missing = 11 - prefix.size();
    uint64_t modulus = 1;
    for (size_t i = 0; i < missing; ++i) modulus *= 10;
    for (uint64_t attempt = 0; attempt < 4000 && !derived.ok(); ++attempt) {
      std::string completion = std::to_string((attempt * 7919 + 2345678) % modulus);
      completion.insert(0, missing - completion.size(), '0');
      derived = numbers.Normalize("+" + prefix + completion, "US");
    }
    if (!derived.ok()) {
      no_valid_number.push_back(prefix);
      continue;
    }
    ++checked;
    for (const auto& zone : oracle_zones) {
      bool covered = false;
      for (const auto& candidate : derived->zones) {
        if (candidate == zone || SameRules(candidate, zone)) {
          covered = true;
          break;
        }
      }
      std::string candidates;
      for (const auto& candidate : derived->zones) candidates += candidate + " ";
      EXPECT_TRUE(covered) << "prefix " << prefix << ": oracle zone " << zone << " not covered by [ " << candidates
                           << "] (" << derived->country << " " << derived->region << ")";
    }
  }
  std::string missing_list;
  for (const auto& prefix : no_valid_number) missing_list += prefix + " ";
  RecordProperty("oracle_rows", rows);
  RecordProperty("checked_rows", checked);
  std::cout << "oracle rows " << rows << " (" << area_code_rows << " area codes), checked " << checked
            << ", without any number libphonenumber 8.12 accepts: " << no_valid_number.size() << " [ " << missing_list
            << "]\n";
  EXPECT_EQ(unparseable, 0);
  EXPECT_GT(checked, rows * 9 / 10);
}

}  // namespace
}  // namespace clozit::contacts
