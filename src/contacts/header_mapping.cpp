#include "contacts/header_mapping.hpp"

#include <algorithm>
#include <cctype>

namespace clozit::contacts {
namespace {

// Normalised header names per field, most specific first. Phone columns are
// listed in the order they are tried for the contact's number.
const std::vector<std::string> kPhoneNames = {"phone",          "phonenumber",     "personphone",       "phone1value",
                                              "mobile",         "mobilephone",     "mobilephonenumber", "personmobile",
                                              "cell",           "cellphone",       "workphone",         "phonework",
                                              "businessphone",  "directphone",     "telephone",         "tel",
                                              "primaryphone",   "phonemobile",     "homephone",         "phonehome",
                                              "otherphone",     "phoneother",      "phone2value",       "phone3value",
                                              "contactphone",   "phonenumbers",    "mainphone",         "companyphone",
                                              "assistantphone", "personphonework", "personphonemobile"};
const std::vector<std::string> kNameNames = {"name", "fullname", "contactname", "personname", "displayname", "contact"};
const std::vector<std::string> kFirstNameNames = {"firstname", "givenname", "personfirstname", "first"};
const std::vector<std::string> kLastNameNames = {"lastname", "familyname", "surname", "personlastname", "last"};
const std::vector<std::string> kEmailNames = {"email",           "emailaddress", "email1value",
                                              "personemail",     "workemail",    "primaryemail",
                                              "personemailwork", "emailwork",    "businessemail"};
const std::vector<std::string> kCompanyNames = {
    "company",          "companyname",       "accountname",        "account", "organization", "organisation",
    "organizationname", "organization1name", "personorganization", "employer"};
const std::vector<std::string> kTagNames = {"tags", "tag", "labels", "label", "personlabels", "grouplabels"};
const std::vector<std::string> kTimeZoneNames = {"timezone", "tz", "contacttimezone", "localtimezone"};
const std::vector<std::string> kStateNames = {"state",
                                              "stateregion",
                                              "province",
                                              "stateprovince",
                                              "mailingstate",
                                              "mailingstateprovince",
                                              "mailingstatecode",
                                              "billingstate",
                                              "billingstateprovince",
                                              "address1region",
                                              "region",
                                              "mailingprovince",
                                              "otherstate"};
const std::vector<std::string> kZipNames = {"zip",
                                            "zipcode",
                                            "postalcode",
                                            "postcode",
                                            "zippostalcode",
                                            "mailingzippostalcode",
                                            "mailingzip",
                                            "mailingpostalcode",
                                            "billingzippostalcode",
                                            "address1postalcode",
                                            "billingpostalcode",
                                            "otherzip"};
const std::vector<std::string> kCountryNames = {"country",        "countryregion",   "mailingcountry",
                                                "billingcountry", "address1country", "countrycode"};

int FindFirst(const std::vector<std::string>& normalized, const std::vector<std::string>& names,
              const std::vector<bool>& taken) {
  for (const auto& name : names) {
    for (size_t i = 0; i < normalized.size(); ++i) {
      if (!taken[i] && normalized[i] == name) return static_cast<int>(i);
    }
  }
  return -1;
}

bool Has(const std::vector<std::string>& normalized, std::string_view name) {
  return std::find(normalized.begin(), normalized.end(), name) != normalized.end();
}

std::string DetectFormat(const std::vector<std::string>& raw, const std::vector<std::string>& normalized) {
  for (const auto& header : raw) {
    if (header.rfind("Person - ", 0) == 0 || header.rfind("Organization - ", 0) == 0) return "pipedrive";
  }
  if (Has(normalized, "phone1value") || Has(normalized, "givenname")) return "google";
  if (Has(normalized, "recordid") && (Has(normalized, "phonenumber") || Has(normalized, "lifecyclestage"))) {
    return "hubspot";
  }
  if (Has(normalized, "contactowner") && (Has(normalized, "recordid") || Has(normalized, "mobile"))) return "zoho";
  if (Has(normalized, "accountname") || Has(normalized, "mailingstreet") || Has(normalized, "salutation")) {
    return "salesforce";
  }
  return "generic";
}

}  // namespace

std::string NormalizeHeaderName(std::string_view name) {
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c)) out.push_back(static_cast<char>(std::tolower(c)));
  }
  // "E-mail 1 - Value" and "Email 1 - Value" alike.
  return out;
}

const std::vector<std::string>& MappableFields() {
  static const std::vector<std::string> fields = {"phone", "name",      "first_name", "last_name", "email",  "company",
                                                  "tags",  "time_zone", "state",      "zip",       "country"};
  return fields;
}

Result<HeaderMapping> MapHeader(const std::vector<std::string>& header,
                                const std::map<std::string, std::string>& explicit_mapping) {
  std::vector<std::string> normalized;
  normalized.reserve(header.size());
  for (const auto& name : header) normalized.push_back(NormalizeHeaderName(name));
  std::vector<bool> taken(header.size(), false);
  HeaderMapping mapping;
  mapping.format = DetectFormat(header, normalized);

  auto column_of = [&](const std::string& field, const std::string& wanted) -> Result<int> {
    std::string target = NormalizeHeaderName(wanted);
    for (size_t i = 0; i < normalized.size(); ++i) {
      if (normalized[i] == target && !target.empty()) return static_cast<int>(i);
    }
    return Error::InvalidArgument("mapping." + field, "the file has no column named \"" + wanted + "\"");
  };

  // Explicit choices first, so detection cannot take their columns.
  std::map<std::string, int*> single = {
      {"name", &mapping.name},           {"first_name", &mapping.first_name}, {"last_name", &mapping.last_name},
      {"email", &mapping.email},         {"company", &mapping.company},       {"tags", &mapping.tags},
      {"time_zone", &mapping.time_zone}, {"state", &mapping.state},           {"zip", &mapping.zip},
      {"country", &mapping.country}};
  for (const auto& [field, wanted] : explicit_mapping) {
    if (field == "phone") {
      size_t start = 0;
      while (start <= wanted.size()) {
        size_t bar = wanted.find('|', start);
        std::string name = wanted.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
        CLOZIT_ASSIGN_OR_RETURN(int column, column_of(field, name));
        mapping.phones.push_back(column);
        taken[static_cast<size_t>(column)] = true;
        if (bar == std::string::npos) break;
        start = bar + 1;
      }
      continue;
    }
    auto target = single.find(field);
    if (target == single.end()) {
      std::string fields;
      for (const auto& name : MappableFields()) fields += (fields.empty() ? "" : ", ") + name;
      return Error::InvalidArgument("mapping." + field, "unknown field \"" + field + "\"; use " + fields);
    }
    if (wanted.empty()) continue;
    CLOZIT_ASSIGN_OR_RETURN(int column, column_of(field, wanted));
    *target->second = column;
    taken[static_cast<size_t>(column)] = true;
  }
  if (!explicit_mapping.empty()) mapping.format = "explicit";

  if (mapping.phones.empty()) {
    for (const auto& name : kPhoneNames) {
      for (size_t i = 0; i < normalized.size(); ++i) {
        if (!taken[i] && normalized[i] == name) {
          mapping.phones.push_back(static_cast<int>(i));
          taken[i] = true;
        }
      }
    }
  }
  if (mapping.phones.empty()) {
    return Error::InvalidArgument("mapping.phone",
                                  "no phone column found; name one with an explicit mapping (mapping.phone)");
  }
  auto detect = [&](int& column, const std::vector<std::string>& names) {
    if (column >= 0) return;
    column = FindFirst(normalized, names, taken);
    if (column >= 0) taken[static_cast<size_t>(column)] = true;
  };
  detect(mapping.first_name, kFirstNameNames);
  detect(mapping.last_name, kLastNameNames);
  detect(mapping.name, kNameNames);
  detect(mapping.email, kEmailNames);
  detect(mapping.company, kCompanyNames);
  detect(mapping.tags, kTagNames);
  detect(mapping.time_zone, kTimeZoneNames);
  detect(mapping.state, kStateNames);
  detect(mapping.zip, kZipNames);
  detect(mapping.country, kCountryNames);
  for (size_t i = 0; i < header.size(); ++i) {
    if (!taken[i] && !normalized[i].empty()) mapping.custom.push_back(static_cast<int>(i));
  }
  return mapping;
}

std::vector<std::string> SplitTags(std::string_view cell) {
  std::vector<std::string> tags;
  std::string current;
  auto flush = [&] {
    std::string_view tag = current;
    while (!tag.empty() && (std::isspace(static_cast<unsigned char>(tag.front())) || tag.front() == '*')) {
      tag.remove_prefix(1);
    }
    while (!tag.empty() && std::isspace(static_cast<unsigned char>(tag.back()))) tag.remove_suffix(1);
    if (!tag.empty() && std::find(tags.begin(), tags.end(), tag) == tags.end()) tags.emplace_back(tag);
    current.clear();
  };
  for (size_t i = 0; i < cell.size(); ++i) {
    char c = cell[i];
    if (c == ',' || c == ';' || c == '|') {
      flush();
    } else if (c == ':' && cell.substr(i, 3) == ":::") {
      flush();
      i += 2;
    } else {
      current.push_back(c);
    }
  }
  flush();
  return tags;
}

}  // namespace clozit::contacts
