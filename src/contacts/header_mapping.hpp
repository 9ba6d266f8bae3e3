// contacts: which CSV column holds what — CRM export headers mapped to
// contact fields.
//
// Recognises the exports of HubSpot ("Phone Number", "Mobile Phone Number",
// "State/Region"), Salesforce ("Mobile Phone", "Account Name", "Mailing
// Zip/Postal Code"), Pipedrive ("Person - Phone", "Organization - Name"),
// Zoho ("Mobile", "Mailing State"), Google Contacts ("Phone 1 - Value",
// "Given Name", "Labels") and any file with a plain `phone` column. Header
// names are compared case-, space- and punctuation-insensitively. An
// explicit mapping (field → header name) overrides detection field by field.
// Columns mapped to no field become the contact's custom fields.
//
// Stateless and thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace clozit::contacts {

/// Column indexes of each field in the header; -1 when absent.
struct HeaderMapping {
  std::string format = "generic";  // hubspot | salesforce | pipedrive | zoho | google | generic | explicit
  std::vector<int> phones;         // tried in order: the first non-empty one is the contact's number
  int name = -1;                   // a full name
  int first_name = -1;
  int last_name = -1;
  int email = -1;
  int company = -1;
  int tags = -1;
  int time_zone = -1;
  int state = -1;
  int zip = -1;
  int country = -1;
  std::vector<int> custom;  // every other column, kept as custom fields under its header name
};

/// The field names an explicit mapping may use.
const std::vector<std::string>& MappableFields();  // phone, name, first_name, last_name, email, ...

/// Maps `header`. `explicit_mapping` (field → header name; "phone" may list
/// several names separated by '|') takes precedence. invalid_argument when
/// no phone column is found or an explicit name is not in the header.
Result<HeaderMapping> MapHeader(const std::vector<std::string>& header,
                                const std::map<std::string, std::string>& explicit_mapping = {});

/// "Phone 1 - Value" → "phone1value": how header names are compared.
std::string NormalizeHeaderName(std::string_view name);

/// Splits a tags cell on ',', ';', '|' and Google's ":::" ("* myContacts ::: Friends" → myContacts, Friends).
std::vector<std::string> SplitTags(std::string_view cell);

}  // namespace clozit::contacts
