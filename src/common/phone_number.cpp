#include "common/phone_number.hpp"

#include <phonenumbers/phonenumberutil.h>

namespace clozit {

Result<ParsedPhoneNumber> ParsePhoneNumber(std::string_view text, std::string_view default_region,
                                           const std::string& field) {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  if (text.empty() || text.size() > 64) return Error::InvalidArgument(field, "expected a phone number");
  const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  if (util->Parse(std::string(text), std::string(default_region), &number) != PhoneNumberUtil::NO_PARSING_ERROR) {
    return Error::InvalidArgument(field, "not a phone number");
  }
  if (!util->IsValidNumber(number)) return Error::InvalidArgument(field, "not a valid phone number");
  ParsedPhoneNumber out;
  util->Format(number, PhoneNumberUtil::E164, &out.e164);
  util->GetRegionCodeForNumber(number, &out.region);
  out.country_code = number.country_code();
  return out;
}

}  // namespace clozit
