// contacts: the values the module stores and returns — contact lists,
// contacts, consent records — and their validation rules.
//
// Plain values; no thread-safety concerns.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/result.hpp"
#include "contacts/phone_numbers.hpp"

namespace clozit::contacts {

// clang-format off
struct ContactTag { static constexpr const char* kPrefix = "con"; };
struct ContactListTag { static constexpr const char* kPrefix = "lst"; };
struct ConsentTag { static constexpr const char* kPrefix = "cns"; };
struct ImportTag { static constexpr const char* kPrefix = "imp"; };
struct RegistryImportTag { static constexpr const char* kPrefix = "dri"; };
// clang-format on

using ContactId = TypedId<ContactTag>;
using ContactListId = TypedId<ContactListTag>;
using ConsentId = TypedId<ConsentTag>;
using ImportId = TypedId<ImportTag>;
using RegistryImportId = TypedId<RegistryImportTag>;

/// The legal basis a tenant claims for calling a contact.
enum class ConsentType {
  kPriorExpressWrittenConsent,       // telemarketing with an AI voice (FCC 24-17)
  kPriorExpressConsent,              // informational calls
  kEstablishedBusinessRelationship,  // purchase within 18 months, inquiry within 3 (TSR)
  kOptIn,                            // GDPR/PECR-style opt-in for marketing calls
};
/// "prior_express_written_consent", "prior_express_consent", "established_business_relationship", "opt_in".
std::string_view ConsentTypeName(ConsentType type);
std::optional<ConsentType> ParseConsentType(std::string_view name);
/// The accepted names, comma-separated, for error messages.
std::string ConsentTypeNames();

/// A consent basis as the caller states it.
struct ConsentInput {
  std::string type;            // a ConsentType name
  std::string obtained_where;  // "web form at example.com/quote", "inbound call 2026-01-04"
  std::optional<TimePoint> obtained_at;
  std::string evidence;     // text, URL or reference
  std::string attested_by;  // id of the tenant user or API key that vouches for it (set by the caller's principal)
};

struct ConsentRecord {
  ConsentId id;
  TenantId tenant_id;
  ConsentType type = ConsentType::kPriorExpressWrittenConsent;
  std::string obtained_where;
  TimePoint obtained_at;
  std::string evidence;
  std::string attested_by;
  TimePoint created_at;
};

/// Validates a consent basis; errors name the field as "consent.<name>".
Result<void> ValidateConsent(const ConsentInput& input, TimePoint now);

struct ContactList {
  ContactListId id;
  TenantId tenant_id;
  std::string name;
  int64_t contact_count = 0;
  TimePoint created_at;
  TimePoint updated_at;
};

struct Contact {
  ContactId id;
  TenantId tenant_id;
  std::string e164;
  NumberType number_type = NumberType::kFixedLine;
  std::string country;
  std::string region;
  std::vector<std::string> time_zones;
  std::string name;
  std::string email;
  std::string company;
  std::string custom_fields_json = "{}";  // a JSON object
  std::vector<std::string> tags;
  std::string source;
  ConsentId consent_id;
  std::optional<TimePoint> consent_revoked_at;
  std::vector<std::string> list_ids;
  TimePoint created_at;
  TimePoint updated_at;
};

/// A contact as a caller supplies it.
struct ContactInput {
  std::string phone;  // any format; national numbers take default_country
  std::string default_country = "US";
  std::string name;
  std::string email;
  std::string company;
  std::string custom_fields_json = "{}";
  std::vector<std::string> tags;
  LocationHints hints;
  std::vector<ContactListId> list_ids;
};

/// Fields to change; unset ones stay.
struct ContactUpdate {
  std::optional<std::string> phone;
  std::string default_country = "US";
  std::optional<std::string> name;
  std::optional<std::string> email;
  std::optional<std::string> company;
  std::optional<std::string> custom_fields_json;
  std::optional<std::vector<std::string>> tags;
  std::optional<LocationHints> hints;
  /// Required with a new number, and only then: consent is given for a number, so one given for the old number
  /// does not cover the new one.
  std::optional<ConsentInput> consent;
};

struct ContactQuery {
  std::string number;  // digits of the number, matched as a prefix of E.164 ("+1415", "1415", "415" with +1)
  std::string name;    // case-insensitive substring of the name
  std::string tag;     // exact tag
  std::string list_id;
};

// Field rules shared by the API and the importer.
constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxEmailBytes = 320;
constexpr size_t kMaxCompanyBytes = 200;
constexpr size_t kMaxTagBytes = 64;
constexpr size_t kMaxTags = 50;
constexpr size_t kMaxCustomFieldsBytes = 16 * 1024;

/// Trims and checks one text field: length and no control characters.
Result<std::string> CleanText(std::string_view text, const std::string& field, size_t max_bytes);
/// Trims, drops empties and duplicates, checks each tag.
Result<std::vector<std::string>> CleanTags(const std::vector<std::string>& tags, const std::string& field = "tags");
/// Requires a JSON object of at most kMaxCustomFieldsBytes; returns it compact.
Result<std::string> CleanCustomFields(std::string_view json, const std::string& field = "custom_fields");

}  // namespace clozit::contacts
