#include "contacts/model.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "contacts/csv_reader.hpp"

namespace clozit::contacts {
namespace {

std::string Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return std::string(text);
}

constexpr ConsentType kConsentTypes[] = {ConsentType::kPriorExpressWrittenConsent, ConsentType::kPriorExpressConsent,
                                         ConsentType::kEstablishedBusinessRelationship, ConsentType::kOptIn};

}  // namespace

std::string_view ConsentTypeName(ConsentType type) {
  switch (type) {
    case ConsentType::kPriorExpressWrittenConsent:
      return "prior_express_written_consent";
    case ConsentType::kPriorExpressConsent:
      return "prior_express_consent";
    case ConsentType::kEstablishedBusinessRelationship:
      return "established_business_relationship";
    case ConsentType::kOptIn:
      return "opt_in";
  }
  return "prior_express_written_consent";
}

std::optional<ConsentType> ParseConsentType(std::string_view name) {
  for (auto type : kConsentTypes) {
    if (ConsentTypeName(type) == name) return type;
  }
  return std::nullopt;
}

std::string ConsentTypeNames() {
  std::string out;
  for (auto type : kConsentTypes) {
    if (!out.empty()) out += ", ";
    out += ConsentTypeName(type);
  }
  return out;
}

Result<void> ValidateConsent(const ConsentInput& input, TimePoint now) {
  if (input.type.empty()) {
    return Error::InvalidArgument("consent.type",
                                  "a consent basis is required: consent.type must be one of " + ConsentTypeNames());
  }
  if (!ParseConsentType(input.type)) {
    return Error::InvalidArgument("consent.type", "consent.type must be one of " + ConsentTypeNames());
  }
  auto where = CleanText(input.obtained_where, "consent.obtained_where", 500);
  if (!where) return where.error();
  if (where->empty()) {
    return Error::InvalidArgument("consent.obtained_where",
                                  "say where the consent was obtained (consent.obtained_where)");
  }
  if (!input.obtained_at) {
    return Error::InvalidArgument("consent.obtained_at", "say when the consent was obtained (consent.obtained_at)");
  }
  if (*input.obtained_at > now + std::chrono::minutes(5)) {
    return Error::InvalidArgument("consent.obtained_at", "consent.obtained_at is in the future");
  }
  if (*input.obtained_at < FromUnixMillis(0)) {
    return Error::InvalidArgument("consent.obtained_at", "consent.obtained_at is before 1970");
  }
  std::string evidence = Trim(input.evidence);
  if (evidence.empty()) {
    return Error::InvalidArgument("consent.evidence", "give the consent's evidence: text, a URL or a reference");
  }
  if (evidence.size() > 4000) return Error::InvalidArgument("consent.evidence", "consent.evidence is over 4000 bytes");
  if (!IsValidUtf8(evidence)) return Error::InvalidArgument("consent.evidence", "consent.evidence is not UTF-8");
  if (Trim(input.attested_by).empty()) {
    return Error::InvalidArgument("consent.attested_by", "a tenant user must attest the consent");
  }
  return Ok();
}

Result<std::string> CleanText(std::string_view text, const std::string& field, size_t max_bytes) {
  std::string value = Trim(text);
  if (value.size() > max_bytes) {
    return Error::InvalidArgument(field, field + " is longer than " + std::to_string(max_bytes) + " bytes");
  }
  if (!IsValidUtf8(value)) return Error::InvalidArgument(field, field + " is not valid UTF-8");
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) return Error::InvalidArgument(field, field + " contains control characters");
  }
  return value;
}

Result<std::vector<std::string>> CleanTags(const std::vector<std::string>& tags, const std::string& field) {
  std::vector<std::string> out;
  for (const auto& tag : tags) {
    CLOZIT_ASSIGN_OR_RETURN(std::string clean, CleanText(tag, field, kMaxTagBytes));
    if (clean.empty() || std::find(out.begin(), out.end(), clean) != out.end()) continue;
    out.push_back(std::move(clean));
  }
  if (out.size() > kMaxTags) {
    return Error::InvalidArgument(field, "at most " + std::to_string(kMaxTags) + " tags per contact");
  }
  return out;
}

Result<std::string> CleanCustomFields(std::string_view json, const std::string& field) {
  if (Trim(json).empty()) return std::string("{}");
  if (json.size() > kMaxCustomFieldsBytes) {
    return Error::InvalidArgument(field, field + " is larger than " + std::to_string(kMaxCustomFieldsBytes) + " bytes");
  }
  auto parsed = nlohmann::json::parse(json, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Error::InvalidArgument(field, field + " must be a JSON object");
  }
  return parsed.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace clozit::contacts
