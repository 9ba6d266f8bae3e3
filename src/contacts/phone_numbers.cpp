#include "contacts/phone_numbers.hpp"

#include <phonenumbers/geocoding/phonenumber_offline_geocoder.h>
#include <phonenumbers/phonemetadata.pb.h>
#include <phonenumbers/phonenumberutil.h>
#include <unicode/locid.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <mutex>

#include "contacts/detail/pattern_depth.hpp"

// The serialized metadata libphonenumber is built with. Declared in its
// phonenumbers/metadata.h, which Debian does not install; the symbols are
// exported from libphonenumber.so.
namespace i18n::phonenumbers {
int metadata_size();
const void* metadata_get();
}  // namespace i18n::phonenumbers

namespace clozit::contacts {

namespace pn = i18n::phonenumbers;
using Util = pn::PhoneNumberUtil;

std::string_view NumberTypeName(NumberType type) {
  switch (type) {
    case NumberType::kFixedLine:
      return "fixed_line";
    case NumberType::kMobile:
      return "mobile";
    case NumberType::kFixedLineOrMobile:
      return "fixed_line_or_mobile";
    case NumberType::kTollFree:
      return "toll_free";
    case NumberType::kVoip:
      return "voip";
    case NumberType::kUan:
      return "uan";
  }
  return "fixed_line";
}

std::optional<NumberType> ParseNumberType(std::string_view name) {
  for (auto type : {NumberType::kFixedLine, NumberType::kMobile, NumberType::kFixedLineOrMobile, NumberType::kTollFree,
                    NumberType::kVoip, NumberType::kUan}) {
    if (NumberTypeName(type) == name) return type;
  }
  return std::nullopt;
}

namespace {

struct Classification {
  bool valid = false;
  Util::PhoneNumberType type = Util::UNKNOWN;
  std::string region;
};

// A trailing extension — " x123", " ext. 12", " extension 9" — that
// libphonenumber keeps apart from the number (E.164 has no extension).
// Returns the text without it; the text as is when there is none.
std::string_view StripExtension(std::string_view text) {
  size_t digits_end = text.size();
  size_t digits_start = digits_end;
  while (digits_start > 0 && text[digits_start - 1] >= '0' && text[digits_start - 1] <= '9') --digits_start;
  size_t count = digits_end - digits_start;
  if (count == 0 || count > 7) return text;
  size_t marker_end = digits_start;
  while (marker_end > 0 && text[marker_end - 1] == ' ') --marker_end;
  auto lower = [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); };
  for (std::string_view marker : {"extension", "ext.", "ext", "x"}) {
    if (marker_end < marker.size()) continue;
    size_t start = marker_end - marker.size();
    bool same = true;
    for (size_t i = 0; i < marker.size() && same; ++i) same = lower(text[start + i]) == marker[i];
    // The marker must follow a space or a digit: "…2671 x12", "…2671x12".
    if (same && start > 0 && (text[start - 1] == ' ' || (text[start - 1] >= '0' && text[start - 1] <= '9'))) {
      size_t number_end = start;
      while (number_end > 0 && text[number_end - 1] == ' ') --number_end;
      return text.substr(0, number_end);
    }
  }
  return text;
}

// The NANP shapes that libphonenumber parses to country code 1 and these ten
// digits whatever the (NANP) default region: "+1" and ten digits, or without
// '+' ten digits or "1" and ten digits, the first of the ten 2-9, separated
// only by spaces, dots, dashes, slashes and parentheses, optionally followed
// by an extension.
bool ParseNanpFast(std::string_view text, bool default_is_nanp, std::string& national_number) {
  text = StripExtension(text);
  char digits[11];
  size_t count = 0;
  size_t i = 0;
  bool plus = !text.empty() && text[0] == '+';
  if (plus) i = 1;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      if (count == 11) return false;
      digits[count++] = c;
    } else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')' && c != '/') {
      return false;
    }
  }
  size_t start = 0;
  if (count == 11 && digits[0] == '1') {
    start = 1;
    if (!plus && !default_is_nanp) return false;
  } else if (count == 10 && !plus && default_is_nanp) {
    start = 0;
  } else {
    return false;
  }
  if (digits[start] < '2') return false;
  national_number.assign(digits + start, 10);
  return true;
}

std::string Trim(std::string_view text) {
  size_t begin = 0, end = text.size();
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; };
  while (begin < end && space(text[begin])) ++begin;
  while (end > begin && space(text[end - 1])) --end;
  return std::string(text.substr(begin, end - begin));
}

std::string UpperAscii(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  return out;
}

}  // namespace

struct PhoneNumbers::Impl {
  const Util* util = Util::GetInstance();
  std::unordered_map<int, detail::PrefixDepth> depth_by_country_code;
  icu::Locale english{"en", "US"};

  std::mutex geocoder_mutex;
  std::unique_ptr<pn::PhoneNumberOfflineGeocoder> geocoder;  // guarded by geocoder_mutex

  std::shared_mutex cache_mutex;
  // State below is guarded by cache_mutex.
  std::unordered_map<std::string, Classification> classifications;       // "cc:length:prefix"
  std::unordered_map<std::string, int> depths;                           // "cc:first digits" → prefix length
  std::unordered_map<std::string, std::vector<Subdivision>> area_codes;  // NANP area code → subdivisions
  std::unordered_map<std::string, bool> nanp_regions;                    // default region → uses +1
  std::unordered_map<std::string, std::string> country_names;            // ISO code → English name

  std::atomic<uint64_t> fast_parses{0}, library_parses{0}, cache_hits{0}, cache_misses{0};

  static constexpr size_t kMaxCacheEntries = 1 << 20;

  Impl() : geocoder(std::make_unique<pn::PhoneNumberOfflineGeocoder>()) {
    pn::PhoneMetadataCollection collection;
    if (!collection.ParseFromArray(pn::metadata_get(), pn::metadata_size())) return;
    for (const auto& metadata : collection.metadata()) {
      auto& depth = depth_by_country_code[metadata.country_code()];
      for (const pn::PhoneNumberDesc* desc :
           {&metadata.general_desc(), &metadata.fixed_line(), &metadata.mobile(), &metadata.toll_free(),
            &metadata.premium_rate(), &metadata.shared_cost(), &metadata.personal_number(), &metadata.voip(),
            &metadata.pager(), &metadata.uan(), &metadata.voicemail()}) {
        if (desc->has_national_number_pattern()) depth.Add(desc->national_number_pattern(), false);
      }
      if (metadata.has_leading_digits()) depth.Add(metadata.leading_digits(), true);
    }
  }

  bool IsNanpRegion(const std::string& region) {
    {
      std::shared_lock lock(cache_mutex);
      if (auto found = nanp_regions.find(region); found != nanp_regions.end()) return found->second;
    }
    bool nanp = util->GetCountryCodeForRegion(region) == 1;
    std::unique_lock lock(cache_mutex);
    if (nanp_regions.size() < 1024) nanp_regions.emplace(region, nanp);
    return nanp;
  }

  static Classification ClassifyDirect(const Util& util, const pn::PhoneNumber& number) {
    Classification out;
    out.valid = util.IsValidNumber(number);
    out.type = util.GetNumberType(number);
    util.GetRegionCodeForNumber(number, &out.region);
    return out;
  }

  // The prefix of the national number that decides libphonenumber's answer, or -1 to not cache.
  int KeyLength(int country_code, const std::string& national_number) {
    std::string depth_key = std::to_string(country_code) + ":" + national_number.substr(0, 3);
    {
      std::shared_lock lock(cache_mutex);
      if (auto found = depths.find(depth_key); found != depths.end()) return found->second;
    }
    int length = -1;
    auto patterns = depth_by_country_code.find(country_code);
    if (patterns != depth_by_country_code.end()) {
      if (auto depth = patterns->second.Depth(national_number, 3)) length = *depth;
    }
    std::unique_lock lock(cache_mutex);
    if (depths.size() < kMaxCacheEntries) depths.emplace(depth_key, length);
    return length;
  }

  Classification Classify(const pn::PhoneNumber& number, int country_code, const std::string& national_number,
                          bool use_cache) {
    if (!use_cache) return ClassifyDirect(*util, number);
    int key_length = KeyLength(country_code, national_number);
    if (key_length < 0 || static_cast<size_t>(key_length) >= national_number.size()) {
      cache_misses.fetch_add(1, std::memory_order_relaxed);
      return ClassifyDirect(*util, number);
    }
    std::string key = std::to_string(country_code);
    key += ':';
    key += std::to_string(national_number.size());
    key += ':';
    key.append(national_number, 0, static_cast<size_t>(key_length));
    {
      std::shared_lock lock(cache_mutex);
      if (auto found = classifications.find(key); found != classifications.end()) {
        cache_hits.fetch_add(1, std::memory_order_relaxed);
        return found->second;
      }
    }
    cache_misses.fetch_add(1, std::memory_order_relaxed);
    Classification computed = ClassifyDirect(*util, number);
    std::unique_lock lock(cache_mutex);
    if (classifications.size() >= kMaxCacheEntries) classifications.clear();
    classifications.emplace(std::move(key), computed);
    return computed;
  }

  std::string Geocode(const pn::PhoneNumber& number) {
    std::lock_guard lock(geocoder_mutex);
    return geocoder->GetDescriptionForValidNumber(number, english);
  }

  Result<NormalizedNumber> Finish(const TimeZoneTable& zones, const pn::PhoneNumber& number,
                                  const std::string& national_number, const Classification& classification,
                                  const std::string& field, bool use_cache);

  std::string CountryName(const std::string& country) {
    {
      std::shared_lock lock(cache_mutex);
      if (auto found = country_names.find(country); found != country_names.end()) return found->second;
    }
    icu::UnicodeString name;
    icu::Locale("", country.c_str()).getDisplayCountry(english, name);
    std::string out;
    name.toUTF8String(out);
    std::unique_lock lock(cache_mutex);
    if (country_names.size() < 1024) country_names.emplace(country, out);
    return out;
  }
};

Result<NormalizedNumber> PhoneNumbers::Impl::Finish(const TimeZoneTable& zones, const pn::PhoneNumber& number,
                                                    const std::string& national_number,
                                                    const Classification& classification, const std::string& field,
                                                    bool use_cache) {
  if (!classification.valid) return Error::InvalidArgument(field, "not a valid phone number");
  NormalizedNumber out;
  switch (classification.type) {
    case Util::FIXED_LINE:
      out.type = NumberType::kFixedLine;
      break;
    case Util::MOBILE:
      out.type = NumberType::kMobile;
      break;
    case Util::FIXED_LINE_OR_MOBILE:
      out.type = NumberType::kFixedLineOrMobile;
      break;
    case Util::TOLL_FREE:
      out.type = NumberType::kTollFree;
      break;
    case Util::VOIP:
      out.type = NumberType::kVoip;
      break;
    case Util::UAN:
      out.type = NumberType::kUan;
      break;
    case Util::PREMIUM_RATE:
      return Error::InvalidArgument(field, "premium-rate numbers are refused");
    case Util::SHARED_COST:
      return Error::InvalidArgument(field, "shared-cost numbers are not accepted");
    case Util::PERSONAL_NUMBER:
      return Error::InvalidArgument(field, "personal-number services are not accepted");
    case Util::PAGER:
      return Error::InvalidArgument(field, "pager numbers are not accepted");
    case Util::VOICEMAIL:
      return Error::InvalidArgument(field, "voicemail access numbers are not accepted");
    default:
      return Error::InvalidArgument(field, "not a valid phone number");
  }
  out.e164 = "+" + std::to_string(number.country_code()) + national_number;
  out.country = classification.region;

  if (number.country_code() == 1 && (out.country == "US" || out.country == "CA")) {
    // An area code rarely crosses a state or province line: ask the geocoder once per area code, except for
    // those that do (867: Yukon, Northwest Territories and Nunavut, three time zones; 902/782: Nova Scotia and
    // Prince Edward Island), where the first number's answer would be every later number's.
    std::string area_code = national_number.substr(0, 3);
    const bool shared_area = area_code == "867" || area_code == "902" || area_code == "782";
    std::vector<Subdivision> subdivisions;
    bool cached = false;
    if (use_cache && !shared_area) {
      std::shared_lock lock(cache_mutex);
      if (auto found = area_codes.find(area_code); found != area_codes.end()) {
        subdivisions = found->second;
        cached = true;
      }
    }
    if (!cached) {
      subdivisions = zones.SubdivisionsFromGeocoder(Geocode(number), out.country);
      if (use_cache && !shared_area && !subdivisions.empty()) {
        std::unique_lock lock(cache_mutex);
        area_codes.emplace(area_code, subdivisions);
      }
    }
    for (const auto& subdivision : subdivisions) {
      if (!out.region.empty()) out.region += '/';
      out.region += subdivision.Iso();
      for (auto& zone : zones.ZonesForSubdivision(subdivision)) {
        if (std::find(out.zones.begin(), out.zones.end(), zone) == out.zones.end()) out.zones.push_back(zone);
      }
    }
  } else {
    std::string description = Geocode(number);
    if (!description.empty() && description != CountryName(out.country)) out.region = description;
  }
  if (out.zones.empty()) out.zones = zones.ZonesForCountry(out.country);
  return out;
}

PhoneNumbers::PhoneNumbers(const TimeZoneTable& zones) : zones_(zones), impl_(std::make_unique<Impl>()) {}

PhoneNumbers::~PhoneNumbers() = default;

bool PhoneNumbers::IsKnownCountry(std::string_view country) const {
  std::string upper = UpperAscii(country);
  return upper.size() == 2 && impl_->util->GetCountryCodeForRegion(upper) != 0;
}

PhoneNumberStats PhoneNumbers::stats() const {
  return {impl_->fast_parses.load(), impl_->library_parses.load(), impl_->cache_hits.load(),
          impl_->cache_misses.load()};
}

Result<NormalizedNumber> PhoneNumbers::Normalize(std::string_view text, std::string_view default_country,
                                                 const std::string& field) const {
  std::string trimmed = Trim(text);
  if (trimmed.empty()) return Error::InvalidArgument(field, "no phone number");
  if (trimmed.size() > 64) return Error::InvalidArgument(field, "not a phone number");
  std::string region = UpperAscii(default_country);
  std::string national_number;
  pn::PhoneNumber number;
  if (ParseNanpFast(trimmed, impl_->IsNanpRegion(region), national_number)) {
    impl_->fast_parses.fetch_add(1, std::memory_order_relaxed);
    number.set_country_code(1);
    uint64_t value = 0;
    std::from_chars(national_number.data(), national_number.data() + national_number.size(), value);
    number.set_national_number(value);
  } else {
    impl_->library_parses.fetch_add(1, std::memory_order_relaxed);
    if (impl_->util->Parse(trimmed, region, &number) != Util::NO_PARSING_ERROR) {
      return Error::InvalidArgument(field, "not a phone number");
    }
    impl_->util->GetNationalSignificantNumber(number, &national_number);
  }
  Classification classification = impl_->Classify(number, number.country_code(), national_number, true);
  return impl_->Finish(zones_, number, national_number, classification, field, true);
}

Result<NormalizedNumber> PhoneNumbers::NormalizeUncached(std::string_view text, std::string_view default_country,
                                                         const std::string& field) const {
  std::string trimmed = Trim(text);
  if (trimmed.empty()) return Error::InvalidArgument(field, "no phone number");
  if (trimmed.size() > 64) return Error::InvalidArgument(field, "not a phone number");
  pn::PhoneNumber number;
  if (impl_->util->Parse(trimmed, UpperAscii(default_country), &number) != Util::NO_PARSING_ERROR) {
    return Error::InvalidArgument(field, "not a phone number");
  }
  std::string national_number;
  impl_->util->GetNationalSignificantNumber(number, &national_number);
  Classification classification = Impl::ClassifyDirect(*impl_->util, number);
  return impl_->Finish(zones_, number, national_number, classification, field, false);
}

std::optional<std::string> PhoneNumbers::LenientE164(std::string_view text, std::string_view default_country) const {
  std::string trimmed = Trim(text);
  if (trimmed.empty() || trimmed.size() > 64) return std::nullopt;
  auto digit_count = [](const std::string& e164) {
    return std::count_if(e164.begin(), e164.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  pn::PhoneNumber number;
  if (impl_->util->Parse(trimmed, UpperAscii(default_country), &number) == Util::NO_PARSING_ERROR) {
    std::string e164;
    impl_->util->Format(number, Util::E164, &e164);
    auto digits = digit_count(e164);
    if (digits >= 8 && digits <= 15) return e164;
  }
  if (trimmed[0] != '+') return std::nullopt;
  std::string digits_only = "+";
  for (char c : trimmed.substr(1)) {
    if (c >= '0' && c <= '9') {
      digits_only.push_back(c);
    } else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') {
      return std::nullopt;
    }
  }
  if (digits_only.size() < 9 || digits_only.size() > 16) return std::nullopt;
  return digits_only;
}

std::vector<std::string> PhoneNumbers::AddHintZones(NormalizedNumber& number, const LocationHints& hints) const {
  std::vector<std::string> not_understood;
  auto add = [&](const std::string& zone) {
    if (std::find(number.zones.begin(), number.zones.end(), zone) == number.zones.end()) number.zones.push_back(zone);
  };
  if (!Trim(hints.time_zone).empty()) {
    if (auto zone = zones_.CanonicalZone(hints.time_zone)) {
      add(*zone);
    } else {
      not_understood.push_back("time_zone");
    }
  }
  if (!Trim(hints.state).empty()) {
    if (auto subdivision = zones_.ParseSubdivision(hints.state, number.country)) {
      for (const auto& zone : zones_.ZonesForSubdivision(*subdivision)) add(zone);
    } else {
      not_understood.push_back("state");
    }
  }
  if (!Trim(hints.zip).empty()) {
    if (auto state = zones_.StateForZip(hints.zip)) {
      for (const auto& zone : zones_.ZonesForSubdivision(*state)) add(zone);
    } else {
      not_understood.push_back("zip");
    }
  }
  return not_understood;
}

}  // namespace clozit::contacts
