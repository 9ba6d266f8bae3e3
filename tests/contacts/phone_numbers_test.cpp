#include "contacts/phone_numbers.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "contacts/detail/pattern_depth.hpp"

namespace clozit::contacts {
namespace {

class PhoneNumbersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    table_ = new TimeZoneTable();
    numbers_ = new PhoneNumbers(*table_);
  }
  static void TearDownTestSuite() {
    delete numbers_;
    delete table_;
  }
  static TimeZoneTable* table_;
  static PhoneNumbers* numbers_;
};
TimeZoneTable* PhoneNumbersTest::table_ = nullptr;
PhoneNumbers* PhoneNumbersTest::numbers_ = nullptr;

TEST_F(PhoneNumbersTest, NormalisesCommonFormatsToE164) {
  for (const char* text : {"(415) 555-2671", "415.555.2671", "415-555-2671", "1-415-555-2671", "+1 415 555 2671",
                           "+14155552671", " 4155552671 ", "1 (415) 555 2671", "+1 (415) 555-2671 ext. 12"}) {
    auto number = numbers_->Normalize(text, "US");
    ASSERT_TRUE(number.ok()) << text << ": " << number.error().message;
    EXPECT_EQ(number->e164, "+14155552671") << text;
    EXPECT_EQ(number->country, "US");
    EXPECT_EQ(number->region, "US-CA");
    EXPECT_EQ(number->zones, (std::vector<std::string>{"America/Los_Angeles"}));
    EXPECT_EQ(number->type, NumberType::kFixedLineOrMobile);
  }
}

TEST_F(PhoneNumbersTest, NationalNumbersTakeTheDefaultCountry) {
  auto london = numbers_->Normalize("020 7946 0958", "GB");
  ASSERT_TRUE(london.ok()) << london.error().message;
  EXPECT_EQ(london->e164, "+442079460958");
  EXPECT_EQ(london->type, NumberType::kFixedLine);
  EXPECT_EQ(london->country, "GB");
  EXPECT_EQ(london->region, "London");
  EXPECT_EQ(london->zones, (std::vector<std::string>{"Europe/London"}));

  auto mobile = numbers_->Normalize("07911 123456", "gb");
  ASSERT_TRUE(mobile.ok()) << mobile.error().message;
  EXPECT_EQ(mobile->e164, "+447911123456");
  EXPECT_EQ(mobile->type, NumberType::kMobile);

  auto berlin = numbers_->Normalize("+49 30 901820", "US");
  ASSERT_TRUE(berlin.ok()) << berlin.error().message;
  EXPECT_EQ(berlin->e164, "+4930901820");
  EXPECT_EQ(berlin->region, "Berlin");
  EXPECT_EQ(berlin->zones, (std::vector<std::string>{"Europe/Berlin", "Europe/Busingen"}));

  // International prefix from the default country.
  auto dialled = numbers_->Normalize("011 44 20 7946 0958", "US");
  ASSERT_TRUE(dialled.ok()) << dialled.error().message;
  EXPECT_EQ(dialled->e164, "+442079460958");
}

TEST_F(PhoneNumbersTest, ClassifiesTollFreeAndVoip) {
  auto toll_free = numbers_->Normalize("1-800-555-0199", "US");
  ASSERT_TRUE(toll_free.ok()) << toll_free.error().message;
  EXPECT_EQ(toll_free->type, NumberType::kTollFree);
  EXPECT_EQ(toll_free->region, "");
  EXPECT_GT(toll_free->zones.size(), 5u);  // no state: every US zone is a candidate

  auto voip = numbers_->Normalize("+44 56 1234 5678", "GB");
  ASSERT_TRUE(voip.ok()) << voip.error().message;
  EXPECT_EQ(voip->type, NumberType::kVoip);
}

TEST_F(PhoneNumbersTest, RefusesPremiumRateInvalidAndGarbage) {
  struct Case {
    const char* text;
    const char* country;
    const char* reason;
  };
  for (const auto& c : std::vector<Case>{
           {"+1 900 555 0123", "US", "premium-rate numbers are refused"},
           {"09098 790123", "GB", "premium-rate numbers are refused"},
           {"+1 123 456 7890", "US", "not a valid phone number"},
           {"555-0123", "US", "not a valid phone number"},
           {"+44 20 7946", "US", "not a valid phone number"},
           {"call me maybe", "US", "not a phone number"},
           {"", "US", "no phone number"},
           {"   ", "US", "no phone number"},
           {"4155552671", "", "not a phone number"},
           {"07624 123456", "ZZ", "not a phone number"},
           {"+44 7624 123456 1234567890123456789012345678901234567890123456789012345", "GB", "not a phone number"},
           {"+44 7640 123456", "GB", "pager numbers are not accepted"},
           {"+44 70 1234 5678", "GB", "personal-number services are not accepted"},
       }) {
    auto number = numbers_->Normalize(c.text, c.country);
    ASSERT_FALSE(number.ok()) << c.text << " was accepted as " << number->e164;
    EXPECT_EQ(number.error().message, c.reason) << c.text;
    EXPECT_EQ(number.error().field, "phone");
  }
}

TEST_F(PhoneNumbersTest, RegionsAndZonesOfNanpNumbers) {
  struct Case {
    const char* text;
    const char* country;
    const char* region;
    std::vector<std::string> zones;
  };
  for (const auto& c : std::vector<Case>{
           {"+1 201 200 1234", "US", "US-NJ", {"America/New_York"}},
           {"+1 305 555 0123", "US", "US-FL", {"America/New_York", "America/Chicago"}},
           {"+1 208 555 0123", "US", "US-ID", {"America/Boise", "America/Los_Angeles"}},
           {"+1 416 555 0199", "CA", "CA-ON", {"America/Toronto", "America/Winnipeg", "America/Atikokan"}},
           {"+1 902 555 0123", "CA", "CA-NS/CA-PE", {"America/Halifax"}},
           {"+1 787 555 1234", "PR", "", {"America/Puerto_Rico"}},
           {"+1 808 555 1234", "US", "US-HI", {"Pacific/Honolulu"}},
       }) {
    auto number = numbers_->Normalize(c.text, "US");
    ASSERT_TRUE(number.ok()) << c.text << ": " << number.error().message;
    EXPECT_EQ(number->country, c.country) << c.text;
    EXPECT_EQ(number->region, c.region) << c.text;
    EXPECT_EQ(number->zones, c.zones) << c.text;
  }
}

// 867 spans three territories and time zones: the first number normalised must not decide the others' zones.
TEST_F(PhoneNumbersTest, AnAreaCodeAcrossTerritoriesIsLookedUpPerNumber) {
  auto yellowknife = numbers_->Normalize("+1 867 873 1234", "CA");
  auto iqaluit = numbers_->Normalize("+1 867 979 1234", "CA");
  auto whitehorse = numbers_->Normalize("+1 867 667 1234", "CA");
  ASSERT_TRUE(yellowknife.ok() && iqaluit.ok() && whitehorse.ok());
  EXPECT_EQ(yellowknife->region, "CA-NT");
  EXPECT_EQ(iqaluit->region, "CA-NU");
  EXPECT_EQ(whitehorse->region, "CA-YT");
  EXPECT_NE(iqaluit->zones, yellowknife->zones);
}

TEST_F(PhoneNumbersTest, ContactColumnsAddCandidateZones) {
  auto number = numbers_->Normalize("+1 415 555 2671", "US");
  ASSERT_TRUE(number.ok());
  auto not_understood = numbers_->AddHintZones(*number, {"Eastern", "Texas", "33101"});
  EXPECT_TRUE(not_understood.empty());
  EXPECT_EQ(number->zones,
            (std::vector<std::string>{"America/Los_Angeles", "America/New_York", "America/Chicago", "America/Denver"}));
  not_understood = numbers_->AddHintZones(*number, {"Mars/Olympus", "Atlantis", "ABCDE"});
  EXPECT_EQ(not_understood, (std::vector<std::string>{"time_zone", "state", "zip"}));
  EXPECT_EQ(number->zones.size(), 4u);
}

// The fast NANP parser and the per-prefix cache must agree with plain
// libphonenumber on everything: generate numbers in every shape a CRM export
// has, for many default countries, and compare.
TEST_F(PhoneNumbersTest, FastPathAndCacheAgreeWithLibphonenumber) {
  std::mt19937_64 random(7);
  const std::vector<std::string> regions = {"US", "CA", "JM", "PR", "BB", "AG", "BS", "DO", "GB", "DE",
                                            "FR", "AU", "IN", "MX", "BR", "IT", "NL", "ES", "ZZ", ""};
  const std::vector<std::string> country_codes = {"1", "1", "1", "44", "49", "33", "61", "91", "52", "39", "7", "86"};
  auto digits = [&](int count) {
    std::string out;
    for (int i = 0; i < count; ++i) out.push_back(static_cast<char>('0' + random() % 10));
    return out;
  };
  int accepted = 0;
  for (int i = 0; i < 6000; ++i) {
    std::string text;
    int shape = static_cast<int>(random() % 10);
    std::string national = digits(10);
    if (random() % 3 != 0) national[0] = static_cast<char>('2' + random() % 8);
    switch (shape) {
      case 0:
        text = national;
        break;
      case 1:
        text = "(" + national.substr(0, 3) + ") " + national.substr(3, 3) + "-" + national.substr(6);
        break;
      case 2:
        text = "1-" + national.substr(0, 3) + "-" + national.substr(3, 3) + "-" + national.substr(6);
        break;
      case 3:
        text = "+1 " + national.substr(0, 3) + "." + national.substr(3, 3) + "." + national.substr(6);
        break;
      case 4:
        text = "+" + country_codes[random() % country_codes.size()] + " " + digits(4 + random() % 8);
        break;
      case 5:
        text = "0" + digits(6 + random() % 6);
        break;
      case 6:
        text = "+1" + national.substr(0, 9);  // too short
        break;
      case 7:
        text = "+1 " + national + digits(1);  // too long
        break;
      case 8: {
        static const char* kMarkers[] = {" x", "x", " ext. ", " ext", " Extension ", " EXT ", " #", " x ", " ex"};
        text = national.substr(0, 3) + "-" + national.substr(3, 3) + "-" + national.substr(6) + kMarkers[random() % 9] +
               digits(1 + random() % 8);
        break;
      }
      default:
        text = "1 (" + national.substr(0, 3) + ") " + national.substr(3) + " x" + digits(random() % 3);
        break;
    }
    const std::string& region = regions[random() % regions.size()];
    auto fast = numbers_->Normalize(text, region);
    auto slow = numbers_->NormalizeUncached(text, region);
    ASSERT_EQ(fast.ok(), slow.ok()) << text << " in " << region << ": "
                                    << (fast.ok() ? slow.error().message : fast.error().message);
    if (!fast.ok()) {
      EXPECT_EQ(fast.error().message, slow.error().message) << text;
      continue;
    }
    ++accepted;
    EXPECT_EQ(fast->e164, slow->e164) << text;
    EXPECT_EQ(fast->type, slow->type) << text;
    EXPECT_EQ(fast->country, slow->country) << text;
    EXPECT_EQ(fast->zones, slow->zones) << text;
  }
  EXPECT_GT(accepted, 1000);
  auto stats = numbers_->stats();
  EXPECT_GT(stats.fast_parses, 0u);
  EXPECT_GT(stats.cache_hits, 0u);
}

// Ten thousand numbers of one area code are decided by a handful of prefixes.
TEST_F(PhoneNumbersTest, CacheMakesAreaCodesCheap) {
  auto before = numbers_->stats();
  for (int i = 0; i < 10000; ++i) {
    std::string line = std::to_string(1000 + i % 9000);
    auto number = numbers_->Normalize("(512) 2" + std::to_string(10 + i % 80) + "-" + line, "US");
    ASSERT_TRUE(number.ok());
  }
  auto after = numbers_->stats();
  EXPECT_LT(after.cache_misses - before.cache_misses, 20u);
  EXPECT_EQ(after.fast_parses - before.fast_parses, 10000u);
}

TEST(PatternDepth, MeasuresWhatAPatternConstrains) {
  using detail::ConstrainedDepth;
  using detail::Derive;
  using detail::ParsePattern;
  auto depth = [](const char* pattern) { return ConstrainedDepth(*ParsePattern(pattern)); };
  EXPECT_EQ(depth("\\d{10}"), 0);
  EXPECT_EQ(depth("[2-9]\\d{9}"), 1);
  EXPECT_EQ(depth("415[2-9]\\d{6}"), 4);
  EXPECT_EQ(depth("246521[0369]\\d{3}|246(?:2(?:2[78]|7[0-4]))\\d{4}"), 7);
  EXPECT_EQ(depth("\\d{2,3}5"), 4);
  EXPECT_EQ(depth("1?[2-9]\\d{2}"), 2);
  EXPECT_GE(depth("\\d*5"), detail::kUnboundedDepth);
  EXPECT_FALSE(ParsePattern("[a-z]").has_value());
  EXPECT_FALSE(ParsePattern("(?=1)").has_value());
  EXPECT_FALSE(ParsePattern("1{3,2}").has_value());

  // Derivatives: what remains after the first digits.
  auto barbados = *ParsePattern("246521[0369]\\d{3}|8(?:00|33)[2-9]\\d{6}");
  EXPECT_EQ(Derive(barbados, "415"), nullptr);
  EXPECT_EQ(ConstrainedDepth(Derive(barbados, "800")), 1);
  EXPECT_EQ(ConstrainedDepth(Derive(barbados, "246")), 4);

  detail::PrefixDepth nanp;
  nanp.Add("[2-9]\\d{9}", false);
  nanp.Add("246521[0369]\\d{3}", false);
  nanp.Add("876", true);
  EXPECT_EQ(nanp.Depth("4155552671"), 3);
  EXPECT_EQ(nanp.Depth("2465210123"), 7);
  EXPECT_EQ(nanp.Depth("8765550123"), 3);
}

}  // namespace
}  // namespace clozit::contacts
