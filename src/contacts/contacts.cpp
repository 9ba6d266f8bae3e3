#include "contacts/contacts.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "contacts/csv_writer.hpp"

namespace clozit::contacts {
namespace {

using json = nlohmann::json;
using storage::Row;
using storage::Tx;
using storage::Value;

constexpr const char* kContactColumns =
    "id, tenant_id, e164, number_type, country, region, time_zones, name, email, company, custom_fields, tags, "
    "source, consent_id, consent_revoked_at, created_at, updated_at";

constexpr const char* kConsentColumns =
    "id, tenant_id, consent_type, obtained_where, obtained_at, evidence, attested_by, created_at";

std::vector<std::string> ParseTags(const std::string& text) {
  std::vector<std::string> tags;
  auto parsed = json::parse(text, nullptr, false);
  if (!parsed.is_array()) return tags;
  for (const auto& tag : parsed) {
    if (tag.is_string()) tags.push_back(tag.get<std::string>());
  }
  return tags;
}

Contact ContactFromRow(const Row& row) {
  Contact contact;
  contact.id = ContactId(row.Text(0));
  contact.tenant_id = TenantId(row.Text(1));
  contact.e164 = row.Text(2);
  contact.number_type = ParseNumberType(row.Text(3)).value_or(NumberType::kFixedLine);
  contact.country = row.Text(4);
  contact.region = row.Text(5);
  contact.time_zones = SplitZones(row.Text(6));
  contact.name = row.Text(7);
  contact.email = row.Text(8);
  contact.company = row.Text(9);
  contact.custom_fields_json = row.Text(10);
  contact.tags = ParseTags(row.Text(11));
  contact.source = row.Text(12);
  contact.consent_id = ConsentId(row.Text(13));
  if (auto revoked = row.OptionalInt(14)) contact.consent_revoked_at = FromUnixMillis(*revoked);
  contact.created_at = FromUnixMillis(row.Int(15));
  contact.updated_at = FromUnixMillis(row.Int(16));
  return contact;
}

ConsentRecord ConsentFromRow(const Row& row) {
  ConsentRecord record;
  record.id = ConsentId(row.Text(0));
  record.tenant_id = TenantId(row.Text(1));
  record.type = ParseConsentType(row.Text(2)).value_or(ConsentType::kPriorExpressWrittenConsent);
  record.obtained_where = row.Text(3);
  record.obtained_at = FromUnixMillis(row.Int(4));
  record.evidence = row.Text(5);
  record.attested_by = row.Text(6);
  record.created_at = FromUnixMillis(row.Int(7));
  return record;
}

ContactList ListFromRow(const Row& row) {
  // id, tenant_id, name, created_at, updated_at, count
  return {ContactListId(row.Text(0)), TenantId(row.Text(1)),     row.Text(2), row.Int(5),
          FromUnixMillis(row.Int(3)), FromUnixMillis(row.Int(4))};
}

constexpr const char* kListSelect =
    "SELECT l.id, l.tenant_id, l.name, l.created_at, l.updated_at, "
    "(SELECT count(*) FROM contact_list_members m WHERE m.list_id = l.id) FROM contact_lists l ";

// LIKE pattern text with %, _ and the escape character escaped.
std::string LikeEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Details(const json& details) { return details.dump(-1, ' ', false, json::error_handler_t::replace); }

Result<std::string> CleanListName(std::string_view name) {
  CLOZIT_ASSIGN_OR_RETURN(std::string clean, CleanText(name, "name", 200));
  if (clean.empty()) return Error::InvalidArgument("name", "name must not be empty");
  return clean;
}

}  // namespace

std::string JoinZones(const std::vector<std::string>& zones) {
  std::string out;
  for (const auto& zone : zones) {
    if (!out.empty()) out += ',';
    out += zone;
  }
  return out;
}

std::vector<std::string> SplitZones(std::string_view text) {
  std::vector<std::string> zones;
  while (!text.empty()) {
    size_t comma = text.find(',');
    zones.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return zones;
}

std::string TagsJson(const std::vector<std::string>& tags) {
  return json(tags).dump(-1, ' ', false, json::error_handler_t::replace);
}

const std::vector<std::string>& ContactCsvColumns() {
  static const std::vector<std::string> columns = {
      "id",      "phone", "number_type",   "country", "region",     "time_zones",         "name",       "email",
      "company", "tags",  "custom_fields", "source",  "consent_id", "consent_revoked_at", "created_at", "updated_at"};
  return columns;
}

Contacts::Contacts(storage::Database& db, const Clock& clock, Random& random, privacy::AuditLog& audit,
                   const PhoneNumbers& numbers)
    : db_(db), clock_(clock), random_(random), audit_(audit), numbers_(numbers) {}

// ---- lists

Result<ContactList> Contacts::CreateList(const TenantId& tenant, std::string_view name, const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string clean, CleanListName(name));
  ContactList list{ContactListId::New(clock_, random_), tenant, clean, 0, clock_.Now(), clock_.Now()};
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(int64_t inserted,
                            tx.Exec("INSERT INTO contact_lists (id, tenant_id, name, created_at, updated_at) "
                                    "VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, name) DO NOTHING",
                                    {list.id.str(), tenant.str(), clean, ToUnixMillis(list.created_at)}));
    if (inserted == 0) return Error::Make(ErrorCode::kAlreadyExists, "a list with this name exists", "name");
    return audit_.Record(tx, actor, {"contact_list.create", "contact_list", list.id.str(), "{}"}, tenant.str());
  }));
  return list;
}

Result<ContactList> Contacts::RenameList(const TenantId& tenant, const std::string& list_id, std::string_view name,
                                         const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string clean, CleanListName(name));
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(RequireList(tx, tenant, list_id));
    CLOZIT_ASSIGN_OR_RETURN(auto taken, tx.Query("SELECT id FROM contact_lists WHERE tenant_id = $1 AND name = $2 "
                                                 "AND id <> $3",
                                                 {tenant.str(), clean, list_id}));
    if (!taken.empty()) return Error::Make(ErrorCode::kAlreadyExists, "a list with this name exists", "name");
    CLOZIT_TRY(tx.Exec("UPDATE contact_lists SET name = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
                       {clean, ToUnixMillis(clock_.Now()), tenant.str(), list_id}));
    return audit_.Record(tx, actor, {"contact_list.rename", "contact_list", list_id, "{}"}, tenant.str());
  }));
  return GetList(tenant, list_id);
}

Result<void> Contacts::DeleteList(const TenantId& tenant, const std::string& list_id, const privacy::Actor& actor) {
  return db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(RequireList(tx, tenant, list_id));
    CLOZIT_TRY(tx.Exec("DELETE FROM contact_list_members WHERE list_id = $1", {list_id}));
    CLOZIT_TRY(tx.Exec("DELETE FROM contact_lists WHERE tenant_id = $1 AND id = $2", {tenant.str(), list_id}));
    return audit_.Record(tx, actor, {"contact_list.delete", "contact_list", list_id, "{}"}, tenant.str());
  });
}

Result<ContactList> Contacts::GetList(const TenantId& tenant, const std::string& list_id) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string(kListSelect) + "WHERE l.tenant_id = $1 AND l.id = $2", {tenant.str(), list_id}));
  if (rows.empty()) return Error::NotFound("no such contact list");
  return ListFromRow(rows.front());
}

Result<Page<ContactList>> Contacts::ListLists(const TenantId& tenant, const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows,
                          db_.Query(std::string(kListSelect) + "WHERE l.tenant_id = $1 AND ($2 = '' OR l.id < $2) "
                                                               "ORDER BY l.id DESC LIMIT $3",
                                    {tenant.str(), page.cursor, page.limit + 1}));
  Page<ContactList> out;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
    out.items.push_back(ListFromRow(rows[i]));
  }
  if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id.str();
  return out;
}

Result<void> Contacts::RequireList(Tx& tx, const TenantId& tenant, const std::string& list_id) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, tx.Query("SELECT id FROM contact_lists WHERE tenant_id = $1 AND id = $2", {tenant.str(), list_id}));
  if (rows.empty()) return Error::NotFound("no such contact list");
  return Ok();
}

// ---- consent

Result<ConsentRecord> Contacts::CreateConsent(Tx& tx, const TenantId& tenant, const ConsentInput& input) {
  CLOZIT_TRY(ValidateConsent(input, clock_.Now()));
  ConsentRecord record;
  record.id = ConsentId::New(clock_, random_);
  record.tenant_id = tenant;
  record.type = *ParseConsentType(input.type);
  record.obtained_where = *CleanText(input.obtained_where, "consent.obtained_where", 500);
  record.obtained_at = *input.obtained_at;
  record.evidence = input.evidence;
  while (!record.evidence.empty() && std::isspace(static_cast<unsigned char>(record.evidence.back()))) {
    record.evidence.pop_back();
  }
  record.attested_by = input.attested_by;
  record.created_at = clock_.Now();
  CLOZIT_TRY(tx.Exec(
      std::string("INSERT INTO consent_records (") + kConsentColumns + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      {record.id.str(), tenant.str(), std::string(ConsentTypeName(record.type)), record.obtained_where,
       ToUnixMillis(record.obtained_at), record.evidence, record.attested_by, ToUnixMillis(record.created_at)}));
  return record;
}

Result<ConsentRecord> Contacts::CreateConsent(const TenantId& tenant, const ConsentInput& input,
                                              const privacy::Actor& actor) {
  Result<ConsentRecord> out = Error::Internal("not run");
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    out = CreateConsent(tx, tenant, input);
    if (!out) return out.error();
    return audit_.Record(tx, actor, {"consent.create", "consent_record", out->id.str(), "{}"}, tenant.str());
  }));
  return out;
}

Result<ConsentRecord> Contacts::GetConsent(const TenantId& tenant, const std::string& consent_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kConsentColumns +
                                                   " FROM consent_records WHERE tenant_id = $1 AND id = $2",
                                               {tenant.str(), consent_id}));
  if (rows.empty()) return Error::NotFound("no such consent record");
  return ConsentFromRow(rows.front());
}

// ---- contacts

Result<Contact> Contacts::Load(Tx& tx, const TenantId& tenant, const std::string& contact_id) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, tx.Query(std::string("SELECT ") + kContactColumns + " FROM contacts WHERE tenant_id = $1 AND id = $2",
                          {tenant.str(), contact_id}));
  if (rows.empty()) return Error::NotFound("no such contact");
  Contact contact = ContactFromRow(rows.front());
  CLOZIT_ASSIGN_OR_RETURN(auto lists, tx.Query("SELECT list_id FROM contact_list_members WHERE contact_id = $1 "
                                               "ORDER BY list_id",
                                               {contact_id}));
  for (const auto& row : lists) contact.list_ids.push_back(row.Text(0));
  return contact;
}

Result<Contact> Contacts::CreateContact(const TenantId& tenant, const ContactInput& input, const ConsentInput& consent,
                                        const privacy::Actor& actor) {
  CLOZIT_TRY(ValidateConsent(consent, clock_.Now()));
  CLOZIT_ASSIGN_OR_RETURN(NormalizedNumber number, numbers_.Normalize(input.phone, input.default_country, "phone"));
  auto unknown_hints = numbers_.AddHintZones(number, input.hints);
  if (!unknown_hints.empty()) {
    return Error::InvalidArgument(unknown_hints.front(), unknown_hints.front() + " is not understood");
  }
  Contact contact;
  contact.id = ContactId::New(clock_, random_);
  contact.tenant_id = tenant;
  contact.e164 = number.e164;
  contact.number_type = number.type;
  contact.country = number.country;
  contact.region = number.region;
  contact.time_zones = number.zones;
  CLOZIT_ASSIGN_OR_RETURN(contact.name, CleanText(input.name, "name", kMaxNameBytes));
  CLOZIT_ASSIGN_OR_RETURN(contact.email, CleanText(input.email, "email", kMaxEmailBytes));
  CLOZIT_ASSIGN_OR_RETURN(contact.company, CleanText(input.company, "company", kMaxCompanyBytes));
  CLOZIT_ASSIGN_OR_RETURN(contact.custom_fields_json, CleanCustomFields(input.custom_fields_json));
  CLOZIT_ASSIGN_OR_RETURN(contact.tags, CleanTags(input.tags));
  contact.source = "api";
  contact.created_at = contact.updated_at = clock_.Now();

  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    for (const auto& list_id : input.list_ids) CLOZIT_TRY(RequireList(tx, tenant, list_id.str()));
    CLOZIT_ASSIGN_OR_RETURN(ConsentRecord record, CreateConsent(tx, tenant, consent));
    contact.consent_id = record.id;
    CLOZIT_ASSIGN_OR_RETURN(
        int64_t inserted,
        tx.Exec(std::string("INSERT INTO contacts (") + kContactColumns +
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL, $15, $15) "
                    "ON CONFLICT (tenant_id, e164) DO NOTHING",
                {contact.id.str(), tenant.str(), contact.e164, std::string(NumberTypeName(contact.number_type)),
                 contact.country, contact.region, JoinZones(contact.time_zones), contact.name, contact.email,
                 contact.company, contact.custom_fields_json, TagsJson(contact.tags), contact.source, record.id.str(),
                 ToUnixMillis(contact.created_at)}));
    if (inserted == 0) {
      return Error::Make(ErrorCode::kAlreadyExists, "the tenant already has a contact with this number", "phone");
    }
    for (const auto& list_id : input.list_ids) {
      CLOZIT_TRY(
          tx.Exec("INSERT INTO contact_list_members (list_id, contact_id) VALUES ($1, $2) "
                  "ON CONFLICT (list_id, contact_id) DO NOTHING",
                  {list_id.str(), contact.id.str()}));
      contact.list_ids.push_back(list_id.str());
    }
    return audit_.Record(tx, actor,
                         {"contact.create", "contact", contact.id.str(), Details({{"consent_id", record.id.str()}})},
                         tenant.str());
  }));
  std::sort(contact.list_ids.begin(), contact.list_ids.end());
  contact.list_ids.erase(std::unique(contact.list_ids.begin(), contact.list_ids.end()), contact.list_ids.end());
  return contact;
}

Result<Contact> Contacts::GetContact(const TenantId& tenant, const std::string& contact_id) {
  Result<Contact> out = Error::Internal("not run");
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    out = Load(tx, tenant, contact_id);
    return Ok();
  }));
  return out;
}

Result<Contact> Contacts::FindByNumber(const TenantId& tenant, std::string_view e164) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT id FROM contacts WHERE tenant_id = $1 AND e164 = $2",
                                               {tenant.str(), std::string(e164)}));
  if (rows.empty()) return Error::NotFound("no such contact");
  return GetContact(tenant, rows.front().Text(0));
}

Result<Page<Contact>> Contacts::ListContacts(const TenantId& tenant, const ContactQuery& query,
                                             const PageRequest& page) {
  std::string number_pattern;
  if (!query.number.empty()) {
    std::string digits;
    for (char c : query.number) {
      if (c >= '0' && c <= '9') digits.push_back(c);
    }
    if (digits.empty()) return Error::InvalidArgument("number", "number must contain digits");
    // "+1415..." matches from the start; bare digits anywhere in the number.
    number_pattern = (query.number.find('+') != std::string::npos ? "+" : "%") + digits + "%";
  }
  std::string name_pattern = query.name.empty() ? "" : "%" + LikeEscape(Lower(query.name)) + "%";
  std::string tag_pattern = query.tag.empty() ? "" : "%" + LikeEscape(json(query.tag).dump()) + "%";
  Page<Contact> out;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(
        auto rows,
        tx.Query(
            std::string("SELECT ") + kContactColumns +
                " FROM contacts WHERE tenant_id = $1 AND ($2 = '' OR e164 LIKE $2) "
                "AND ($3 = '' OR lower(name) LIKE $3 ESCAPE '\\') AND ($4 = '' OR tags LIKE $4 ESCAPE '\\') "
                "AND ($5 = '' OR EXISTS (SELECT 1 FROM contact_list_members m WHERE m.list_id = $5 AND "
                "m.contact_id = contacts.id)) AND ($6 = '' OR id < $6) ORDER BY id DESC LIMIT $7",
            {tenant.str(), number_pattern, name_pattern, tag_pattern, query.list_id, page.cursor, page.limit + 1}));
    for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
      out.items.push_back(ContactFromRow(rows[i]));
    }
    if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id.str();
    for (auto& contact : out.items) {
      CLOZIT_ASSIGN_OR_RETURN(auto lists, tx.Query("SELECT list_id FROM contact_list_members WHERE contact_id = $1 "
                                                   "ORDER BY list_id",
                                                   {contact.id.str()}));
      for (const auto& row : lists) contact.list_ids.push_back(row.Text(0));
    }
    return Ok();
  }));
  return out;
}

Result<Contact> Contacts::UpdateContact(const TenantId& tenant, const std::string& contact_id,
                                        const ContactUpdate& update, const privacy::Actor& actor) {
  // Validate and normalise outside the transaction; apply inside.
  std::optional<NormalizedNumber> number;
  if (update.phone) {
    CLOZIT_ASSIGN_OR_RETURN(number, numbers_.Normalize(*update.phone, update.default_country, "phone"));
  }
  std::optional<std::string> name, email, company, custom;
  std::optional<std::vector<std::string>> tags;
  if (update.name) {
    CLOZIT_ASSIGN_OR_RETURN(name, CleanText(*update.name, "name", kMaxNameBytes));
  }
  if (update.email) {
    CLOZIT_ASSIGN_OR_RETURN(email, CleanText(*update.email, "email", kMaxEmailBytes));
  }
  if (update.company) {
    CLOZIT_ASSIGN_OR_RETURN(company, CleanText(*update.company, "company", kMaxCompanyBytes));
  }
  if (update.custom_fields_json) {
    CLOZIT_ASSIGN_OR_RETURN(custom, CleanCustomFields(*update.custom_fields_json));
  }
  if (update.tags) {
    CLOZIT_ASSIGN_OR_RETURN(tags, CleanTags(*update.tags));
  }
  if (update.consent) CLOZIT_TRY(ValidateConsent(*update.consent, clock_.Now()));

  Result<Contact> out = Error::Internal("not run");
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(Contact contact, Load(tx, tenant, contact_id));
    json changed = json::array();
    if (update.consent && !number) {
      return Error::InvalidArgument("consent", "a consent basis is given with a new phone only");
    }
    if (number || update.hints) {
      NormalizedNumber located;
      if (number) {
        located = *number;
      } else {
        CLOZIT_ASSIGN_OR_RETURN(located, numbers_.Normalize(contact.e164, "US", "phone"));
      }
      if (update.hints) {
        auto unknown = numbers_.AddHintZones(located, *update.hints);
        if (!unknown.empty()) return Error::InvalidArgument(unknown.front(), unknown.front() + " is not understood");
      }
      if (located.e164 != contact.e164) {
        CLOZIT_ASSIGN_OR_RETURN(auto taken, tx.Query("SELECT id FROM contacts WHERE tenant_id = $1 AND e164 = $2",
                                                     {tenant.str(), located.e164}));
        if (!taken.empty()) {
          return Error::Make(ErrorCode::kAlreadyExists, "the tenant already has a contact with this number", "phone");
        }
        if (contact.consent_revoked_at) {
          // The revocation stands for the person: a new number must not make them callable again.
          return Error::Make(ErrorCode::kConflict,
                             "this contact revoked consent; a new number cannot be given to it (create a new contact "
                             "with its own consent basis if the person consents again)",
                             "phone");
        }
        if (!update.consent) {
          return Error::InvalidArgument("consent",
                                        "a new number needs its own consent basis: consent {type, obtained_where, "
                                        "obtained_at, evidence} given for the old number does not cover it");
        }
        CLOZIT_ASSIGN_OR_RETURN(ConsentRecord record, CreateConsent(tx, tenant, *update.consent));
        contact.consent_id = record.id;
        changed.push_back("phone");
        changed.push_back("consent");
        if (!update.hints) {
          // Zones that came from location hints describe the person, not the number: they stay.
          CLOZIT_ASSIGN_OR_RETURN(NormalizedNumber previous, numbers_.Normalize(contact.e164, "US", "phone"));
          for (const auto& zone : contact.time_zones) {
            bool from_number = std::find(previous.zones.begin(), previous.zones.end(), zone) != previous.zones.end();
            bool present = std::find(located.zones.begin(), located.zones.end(), zone) != located.zones.end();
            if (!from_number && !present) located.zones.push_back(zone);
          }
        }
      } else if (update.consent) {
        return Error::InvalidArgument("consent", "a consent basis is given with a new phone only");
      }
      contact.e164 = located.e164;
      contact.number_type = located.type;
      contact.country = located.country;
      contact.region = located.region;
      contact.time_zones = located.zones;
      if (update.hints) changed.push_back("time_zones");
    }
    if (name) contact.name = *name, changed.push_back("name");
    if (email) contact.email = *email, changed.push_back("email");
    if (company) contact.company = *company, changed.push_back("company");
    if (custom) contact.custom_fields_json = *custom, changed.push_back("custom_fields");
    if (tags) contact.tags = *tags, changed.push_back("tags");
    contact.updated_at = clock_.Now();
    CLOZIT_TRY(tx.Exec(
        "UPDATE contacts SET e164 = $1, number_type = $2, country = $3, region = $4, time_zones = $5, name = $6, "
        "email = $7, company = $8, custom_fields = $9, tags = $10, updated_at = $11, consent_id = $14 "
        "WHERE tenant_id = $12 AND id = $13",
        {contact.e164, std::string(NumberTypeName(contact.number_type)), contact.country, contact.region,
         JoinZones(contact.time_zones), contact.name, contact.email, contact.company, contact.custom_fields_json,
         TagsJson(contact.tags), ToUnixMillis(contact.updated_at), tenant.str(), contact_id,
         contact.consent_id.str()}));
    out = contact;
    return audit_.Record(tx, actor, {"contact.update", "contact", contact_id, Details({{"fields", changed}})},
                         tenant.str());
  }));
  return out;
}

Result<void> Contacts::DeleteContact(const TenantId& tenant, const std::string& contact_id,
                                     const privacy::Actor& actor) {
  return db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(
        auto rows, tx.Query("SELECT id FROM contacts WHERE tenant_id = $1 AND id = $2", {tenant.str(), contact_id}));
    if (rows.empty()) return Error::NotFound("no such contact");
    CLOZIT_TRY(tx.Exec("DELETE FROM contact_list_members WHERE contact_id = $1", {contact_id}));
    CLOZIT_TRY(tx.Exec("DELETE FROM contacts WHERE tenant_id = $1 AND id = $2", {tenant.str(), contact_id}));
    return audit_.Record(tx, actor, {"contact.delete", "contact", contact_id, "{}"}, tenant.str());
  });
}

Result<void> Contacts::AddToList(const TenantId& tenant, const std::string& list_id,
                                 const std::vector<std::string>& contact_ids, const privacy::Actor& actor) {
  return db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(RequireList(tx, tenant, list_id));
    int64_t added = 0;
    for (const auto& contact_id : contact_ids) {
      CLOZIT_ASSIGN_OR_RETURN(
          auto rows, tx.Query("SELECT id FROM contacts WHERE tenant_id = $1 AND id = $2", {tenant.str(), contact_id}));
      if (rows.empty()) return Error::NotFound("no such contact: " + contact_id);
      CLOZIT_ASSIGN_OR_RETURN(int64_t inserted,
                              tx.Exec("INSERT INTO contact_list_members (list_id, contact_id) VALUES ($1, $2) "
                                      "ON CONFLICT (list_id, contact_id) DO NOTHING",
                                      {list_id, contact_id}));
      added += inserted;
    }
    return audit_.Record(tx, actor, {"contact_list.add", "contact_list", list_id, Details({{"added", added}})},
                         tenant.str());
  });
}

Result<void> Contacts::RemoveFromList(const TenantId& tenant, const std::string& list_id, const std::string& contact_id,
                                      const privacy::Actor& actor) {
  return db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(RequireList(tx, tenant, list_id));
    CLOZIT_ASSIGN_OR_RETURN(
        int64_t removed,
        tx.Exec("DELETE FROM contact_list_members WHERE list_id = $1 AND contact_id = $2", {list_id, contact_id}));
    if (removed == 0) return Error::NotFound("the contact is not on this list");
    return audit_.Record(tx, actor, {"contact_list.remove", "contact_list", list_id, "{}"}, tenant.str());
  });
}

Result<Contact> Contacts::RevokeConsent(const TenantId& tenant, const std::string& contact_id,
                                        const std::string& reason, const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string clean_reason, CleanText(reason, "reason", 500));
  Result<Contact> out = Error::Internal("not run");
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(Contact contact, Load(tx, tenant, contact_id));
    if (contact.consent_revoked_at) {
      out = contact;
      return Ok();
    }
    TimePoint now = clock_.Now();
    CLOZIT_TRY(tx.Exec("UPDATE contacts SET consent_revoked_at = $1, updated_at = $1 WHERE tenant_id = $2 AND id = $3",
                       {ToUnixMillis(now), tenant.str(), contact_id}));
    CLOZIT_TRY(DoNotCall::InsertEntry(
        tx, {tenant.str(), contact.e164, DncKind::kTenant, "consent_revoked", clean_reason, "", actor.id, now}));
    contact.consent_revoked_at = now;
    contact.updated_at = now;
    out = contact;
    return audit_.Record(tx, actor, {"contact.consent_revoke", "contact", contact_id, "{}"}, tenant.str());
  }));
  return out;
}

Result<int64_t> Contacts::ExportCsv(const TenantId& tenant, const ContactQuery& query, std::ostream& out) {
  WriteCsvRow(out, ContactCsvColumns(), false);
  int64_t written = 0;
  PageRequest page{1000, ""};
  for (;;) {
    CLOZIT_ASSIGN_OR_RETURN(auto contacts, ListContacts(tenant, query, page));
    std::string chunk;
    for (const auto& c : contacts.items) {
      chunk += CsvCell(c.id.str(), false) + "," + CsvCell(c.e164, false) + ",";
      AppendCsvRow(chunk, {std::string(NumberTypeName(c.number_type)), c.country, c.region, JoinZones(c.time_zones),
                           c.name, c.email, c.company, TagsJson(c.tags), c.custom_fields_json, c.source,
                           c.consent_id.str(), c.consent_revoked_at ? FormatRfc3339(*c.consent_revoked_at) : "",
                           FormatRfc3339(c.created_at), FormatRfc3339(c.updated_at)});
      ++written;
    }
    out << chunk;
    if (!out) return Error::Make(ErrorCode::kUnavailable, "cannot write the export");
    if (contacts.next_cursor.empty()) break;
    page.cursor = contacts.next_cursor;
  }
  return written;
}

}  // namespace clozit::contacts
