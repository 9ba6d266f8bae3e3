// Routes for contact lists, contacts, CSV imports and do-not-call lists.
//
// The contacts module's services live as long as the routes: they are built
// here from the Api's dependencies and shared by the handlers. Imports are
// uploaded as the request body (text/csv), spooled to disk next to the SQLite
// file (or under var/imports) and run by a background ImportQueue; progress
// and the rejected rows are read back through their own routes. Numbers and
// names never go to the logs: handlers log nothing.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "api/api.hpp"
#include "api/json_body.hpp"
#include "contacts/contacts.hpp"
#include "contacts/dnc.hpp"
#include "contacts/header_mapping.hpp"
#include "contacts/import_command.hpp"
#include "contacts/import_queue.hpp"
#include "contacts/importer.hpp"
#include "contacts/phone_numbers.hpp"
#include "contacts/time_zones.hpp"

namespace clozit::api {
namespace {

using accounts::Role;
using json = nlohmann::json;

// Everything the routes use, built once per Api.
struct ContactServices {
  ContactServices(const ApiDeps& deps, const std::string& spool_directory)
      : numbers(zones),
        contacts(deps.db, deps.clock, deps.random, deps.audit, numbers),
        dnc(deps.db, deps.clock, deps.random, deps.audit, numbers),
        importer(deps.db, deps.clock, deps.random, deps.audit, numbers, contacts, dnc),
        queue(importer, deps.random, spool_directory) {}

  contacts::TimeZoneTable zones;
  contacts::PhoneNumbers numbers;
  contacts::Contacts contacts;
  contacts::DoNotCall dnc;
  contacts::Importer importer;
  contacts::ImportQueue queue;  // last: its worker thread stops first
};

std::string SpoolDirectory(const Config& config) { return DataDirectory(config) + "/imports"; }

json Nullable(const std::optional<TimePoint>& at) { return at ? json(FormatRfc3339(*at)) : json(nullptr); }

json ToJson(const contacts::ContactList& list) {
  return {{"id", list.id.str()},
          {"name", list.name},
          {"contact_count", list.contact_count},
          {"created_at", FormatRfc3339(list.created_at)},
          {"updated_at", FormatRfc3339(list.updated_at)}};
}

json ToJson(const contacts::Contact& contact) {
  json custom = json::parse(contact.custom_fields_json, nullptr, false);
  if (!custom.is_object()) custom = json::object();
  return {{"id", contact.id.str()},
          {"phone", contact.e164},
          {"number_type", contacts::NumberTypeName(contact.number_type)},
          {"country", contact.country},
          {"region", contact.region},
          {"time_zones", contact.time_zones},
          {"name", contact.name},
          {"email", contact.email},
          {"company", contact.company},
          {"custom_fields", custom},
          {"tags", contact.tags},
          {"list_ids", contact.list_ids},
          {"source", contact.source},
          {"consent_id", contact.consent_id.str()},
          {"consent_revoked_at", Nullable(contact.consent_revoked_at)},
          {"created_at", FormatRfc3339(contact.created_at)},
          {"updated_at", FormatRfc3339(contact.updated_at)}};
}

json ToJson(const contacts::ImportJob& job) {
  return {{"id", job.id.str()},
          {"status", job.status},
          {"file_name", job.file_name},
          {"format", job.format.empty() ? json(nullptr) : json(job.format)},
          {"list_id", job.list_id.empty() ? json(nullptr) : json(job.list_id)},
          {"consent_id", job.consent_id},
          {"file_bytes", job.file_bytes},
          {"bytes_read", job.bytes_read},
          {"rows_read", job.rows_read},
          {"accepted", job.accepted},
          {"rejected", job.rejected},
          {"duplicates", job.duplicates},
          {"on_dnc", job.on_dnc},
          {"error", job.error.empty() ? json(nullptr) : json(job.error)},
          {"created_at", FormatRfc3339(job.created_at)},
          {"updated_at", FormatRfc3339(job.updated_at)},
          {"finished_at", Nullable(job.finished_at)}};
}

json ToJson(const contacts::DncEntry& entry) {
  return {{"number", entry.number},
          {"kind", contacts::DncKindName(entry.kind)},
          {"source", entry.source},
          {"note", entry.note},
          {"registry", entry.registry.empty() ? json(nullptr) : json(entry.registry)},
          {"added_at", FormatRfc3339(entry.added_at)}};
}

json ToJson(const contacts::RegistryImport& registry) {
  return {{"id", registry.id.str()},
          {"registry", registry.registry},
          {"file_date", FormatRfc3339(registry.file_date)},
          {"entries", registry.entries},
          {"rejected", registry.rejected},
          {"imported_at", FormatRfc3339(registry.imported_at)}};
}

template <typename T>
http::Response PageOf(const Page<T>& page) {
  json items = json::array();
  for (const auto& item : page.items) items.push_back(ToJson(item));
  json body = {{"data", items}, {"has_more", !page.next_cursor.empty()}};
  body["next_cursor"] = page.next_cursor.empty() ? json(nullptr) : json(page.next_cursor);
  return http::Response::Json(200, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

template <typename T>
Result<http::Response> JsonOf(const Result<T>& result, int status = 200) {
  if (!result) return result.error();
  return http::Response::Json(status, ToJson(*result).dump(-1, ' ', false, json::error_handler_t::replace));
}

http::Response Csv(std::string body) { return http::Response::Text(200, std::move(body), "text/csv; charset=utf-8"); }

Result<std::vector<std::string>> StringArray(const json& body, const std::string& field) {
  std::vector<std::string> out;
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return out;
  if (!it->is_array()) return Error::InvalidArgument(field, field + " must be an array of strings");
  for (const auto& item : *it) {
    if (!item.is_string()) return Error::InvalidArgument(field, field + " must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<std::optional<std::string>> CustomFields(const json& body) {
  auto it = body.find("custom_fields");
  if (it == body.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_object()) return Error::InvalidArgument("custom_fields", "custom_fields must be an object");
  return std::optional<std::string>(it->dump(-1, ' ', false, json::error_handler_t::replace));
}

Result<contacts::ConsentInput> ConsentFrom(const json& body, const Context& c) {
  auto it = body.find("consent");
  if (it == body.end() || !it->is_object()) {
    return Error::InvalidArgument("consent",
                                  "a consent basis is required: consent {type, obtained_where, "
                                  "obtained_at, evidence}");
  }
  contacts::ConsentInput consent;
  CLOZIT_ASSIGN_OR_RETURN(auto type, OptionalString(*it, "type"));
  CLOZIT_ASSIGN_OR_RETURN(auto where, OptionalString(*it, "obtained_where"));
  CLOZIT_ASSIGN_OR_RETURN(auto at, OptionalString(*it, "obtained_at"));
  CLOZIT_ASSIGN_OR_RETURN(auto evidence, OptionalString(*it, "evidence"));
  consent.type = type.value_or("");
  consent.obtained_where = where.value_or("");
  if (at) {
    CLOZIT_ASSIGN_OR_RETURN(consent.obtained_at, contacts::ParseTimestamp(*at, "consent.obtained_at"));
  }
  consent.evidence = evidence.value_or("");
  consent.attested_by = c.principal->id;  // whoever calls vouches for it
  return consent;
}

contacts::ContactQuery QueryFrom(const http::Request& request) {
  return {request.QueryParam("number").value_or(""), request.QueryParam("name").value_or(""),
          request.QueryParam("tag").value_or(""), request.QueryParam("list_id").value_or("")};
}

Result<std::optional<contacts::LocationHints>> HintsFrom(const json& body) {
  contacts::LocationHints hints;
  bool any = false;
  for (auto [field, target] :
       {std::pair{"time_zone", &hints.time_zone}, std::pair{"state", &hints.state}, std::pair{"zip", &hints.zip}}) {
    CLOZIT_ASSIGN_OR_RETURN(auto value, OptionalString(body, field));
    if (value) {
      *target = *value;
      any = true;
    }
  }
  if (!any) return std::optional<contacts::LocationHints>();
  return std::optional<contacts::LocationHints>(hints);
}

// Pages of do-not-call entries: the cursor is a number ("+1415..."), which ParsePage's id-shaped check refuses.
Result<PageRequest> NumberCursorPage(const http::Request& request) {
  http::Request without_cursor;
  without_cursor.query = request.query;
  std::erase_if(without_cursor.query, [](const auto& pair) { return pair.first == "cursor"; });
  CLOZIT_ASSIGN_OR_RETURN(PageRequest page, ParsePage(without_cursor));
  page.cursor = request.QueryParam("cursor").value_or("");
  if (page.cursor.size() > 32) return Error::InvalidArgument("cursor", "malformed cursor");
  return page;
}

// A request body to read as a stream: the spooled file of a streamed route, or the in-memory body.
class BodyStream {
 public:
  explicit BodyStream(const http::Request& request) : spooled_(!request.body_file.empty()) {
    if (spooled_) {
      file_.open(request.body_file, std::ios::binary);
    } else {
      text_.str(request.body);
    }
  }
  std::istream& in() { return spooled_ ? static_cast<std::istream&>(file_) : text_; }
  Result<void> Check() {
    if (!in()) return Error::Make(ErrorCode::kUnavailable, "cannot read the upload");
    return Ok();
  }

 private:
  bool spooled_;
  std::ifstream file_;
  std::istringstream text_;
};

}  // namespace

void Api::AddContactRoutes() {
  auto services = std::make_shared<ContactServices>(deps_, SpoolDirectory(deps_.config));
  (void)services->queue.ResumeUnfinished();  // a failure leaves the jobs resumable on the next start
  const Clock& clock = deps_.clock;

  // ---- contact lists
  specs_.push_back({"GET", "/v1/contact-lists", Access::kTenant, Role::kViewer, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto lists, services->contacts.ListLists(c.principal->tenant_id, page));
                      return PageOf(lists);
                    }});
  specs_.push_back({"POST", "/v1/contact-lists", Access::kTenant, Role::kMember, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string name, RequiredString(body, "name"));
                      return JsonOf(services->contacts.CreateList(c.principal->tenant_id, name, c.actor), 201);
                    }});
  specs_.push_back({"GET", "/v1/contact-lists/{id}", Access::kTenant, Role::kViewer, false, [services](Context& c) {
                      return JsonOf(services->contacts.GetList(c.principal->tenant_id, c.request.Param("id")));
                    }});
  specs_.push_back({"PATCH", "/v1/contact-lists/{id}", Access::kTenant, Role::kMember, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string name, RequiredString(body, "name"));
                      return JsonOf(
                          services->contacts.RenameList(c.principal->tenant_id, c.request.Param("id"), name, c.actor));
                    }});
  specs_.push_back({"DELETE", "/v1/contact-lists/{id}", Access::kTenant, Role::kAdmin, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_TRY(services->contacts.DeleteList(c.principal->tenant_id, c.request.Param("id"), c.actor));
                      return http::Response::NoContent();
                    }});

  // ---- contacts
  specs_.push_back(
      {"GET", "/v1/contacts", Access::kTenant, Role::kViewer, false, [services](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
         CLOZIT_ASSIGN_OR_RETURN(auto found,
                                 services->contacts.ListContacts(c.principal->tenant_id, QueryFrom(c.request), page));
         return PageOf(found);
       }});
  specs_.push_back(
      {"POST", "/v1/contacts", Access::kTenant, Role::kMember, false, [services](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
         contacts::ContactInput input;
         CLOZIT_ASSIGN_OR_RETURN(input.phone, RequiredString(body, "phone"));
         CLOZIT_ASSIGN_OR_RETURN(auto country, OptionalString(body, "default_country"));
         if (country) input.default_country = *country;
         for (auto [field, target] : {std::pair{"name", &input.name}, std::pair{"email", &input.email},
                                      std::pair{"company", &input.company}}) {
           CLOZIT_ASSIGN_OR_RETURN(auto value, OptionalString(body, field));
           *target = value.value_or("");
         }
         CLOZIT_ASSIGN_OR_RETURN(auto custom, CustomFields(body));
         input.custom_fields_json = custom.value_or("{}");
         CLOZIT_ASSIGN_OR_RETURN(input.tags, StringArray(body, "tags"));
         CLOZIT_ASSIGN_OR_RETURN(auto hints, HintsFrom(body));
         if (hints) input.hints = *hints;
         CLOZIT_ASSIGN_OR_RETURN(auto lists, StringArray(body, "list_ids"));
         for (auto& list : lists) input.list_ids.emplace_back(std::move(list));
         CLOZIT_ASSIGN_OR_RETURN(auto consent, ConsentFrom(body, c));
         return JsonOf(services->contacts.CreateContact(c.principal->tenant_id, input, consent, c.actor), 201);
       }});
  specs_.push_back({"GET", "/v1/contacts/export", Access::kTenant, Role::kMember, false,
                    [services](Context& c) -> Result<http::Response> {
                      std::ostringstream out;
                      CLOZIT_TRY(services->contacts.ExportCsv(c.principal->tenant_id, QueryFrom(c.request), out));
                      return Csv(out.str());
                    }});
  specs_.push_back({"GET", "/v1/contacts/{id}", Access::kTenant, Role::kViewer, false, [services](Context& c) {
                      return JsonOf(services->contacts.GetContact(c.principal->tenant_id, c.request.Param("id")));
                    }});
  specs_.push_back({"PATCH", "/v1/contacts/{id}", Access::kTenant, Role::kMember, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      contacts::ContactUpdate update;
                      CLOZIT_ASSIGN_OR_RETURN(update.phone, OptionalString(body, "phone"));
                      CLOZIT_ASSIGN_OR_RETURN(auto country, OptionalString(body, "default_country"));
                      if (country) update.default_country = *country;
                      CLOZIT_ASSIGN_OR_RETURN(update.name, OptionalString(body, "name"));
                      CLOZIT_ASSIGN_OR_RETURN(update.email, OptionalString(body, "email"));
                      CLOZIT_ASSIGN_OR_RETURN(update.company, OptionalString(body, "company"));
                      CLOZIT_ASSIGN_OR_RETURN(update.custom_fields_json, CustomFields(body));
                      if (body.contains("tags") && !body["tags"].is_null()) {
                        CLOZIT_ASSIGN_OR_RETURN(update.tags, StringArray(body, "tags"));
                      }
                      CLOZIT_ASSIGN_OR_RETURN(update.hints, HintsFrom(body));
                      if (body.contains("consent") && !body["consent"].is_null()) {
                        CLOZIT_ASSIGN_OR_RETURN(update.consent, ConsentFrom(body, c));
                      }
                      return JsonOf(services->contacts.UpdateContact(c.principal->tenant_id, c.request.Param("id"),
                                                                     update, c.actor));
                    }});
  specs_.push_back({"DELETE", "/v1/contacts/{id}", Access::kTenant, Role::kAdmin, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_TRY(
                          services->contacts.DeleteContact(c.principal->tenant_id, c.request.Param("id"), c.actor));
                      return http::Response::NoContent();
                    }});
  specs_.push_back({"POST", "/v1/contacts/{id}/consent-revocation", Access::kTenant, Role::kMember, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto reason, OptionalString(body, "reason"));
                      return JsonOf(services->contacts.RevokeConsent(c.principal->tenant_id, c.request.Param("id"),
                                                                     reason.value_or(""), c.actor));
                    }});

  // ---- imports
  specs_.push_back(
      {"POST", "/v1/contacts/imports", Access::kTenant, Role::kMember, false,
       [services](Context& c) -> Result<http::Response> {
         const auto& r = c.request;
         std::error_code size_error;
         const bool spooled = !r.body_file.empty();
         if (spooled ? std::filesystem::file_size(r.body_file, size_error) == 0 || size_error : r.body.empty()) {
           return Error::InvalidArgument("body", "send the CSV file as the request body");
         }
         contacts::ImportRequest request;
         request.file_name = r.QueryParam("file_name").value_or("upload.csv");
         if (auto list = r.QueryParam("list_id"); list && !list->empty())
           request.list_id = contacts::ContactListId(*list);
         request.options.default_country = r.QueryParam("default_country").value_or("US");
         if (auto tags = r.QueryParam("tags")) request.options.tags = contacts::SplitTags(*tags);
         for (const auto& field : contacts::MappableFields()) {
           if (auto header = r.QueryParam("map." + field)) request.options.mapping[field] = *header;
         }
         request.consent.type = r.QueryParam("consent_type").value_or("");
         request.consent.obtained_where = r.QueryParam("consent_where").value_or("");
         if (auto at = r.QueryParam("consent_at")) {
           CLOZIT_ASSIGN_OR_RETURN(request.consent.obtained_at, contacts::ParseTimestamp(*at, "consent_at"));
         }
         request.consent.evidence = r.QueryParam("consent_evidence").value_or("");
         request.consent.attested_by = c.principal->id;
         // Refuse a missing consent before anything touches the disk.
         if (request.consent.type.empty()) {
           return Error::InvalidArgument("consent_type",
                                         "a consent basis is required: consent_type, consent_where, "
                                         "consent_at and consent_evidence");
         }
         CLOZIT_ASSIGN_OR_RETURN(request.file_path,
                                 spooled ? services->queue.Adopt(r.body_file) : services->queue.Spool(r.body));
         auto job = services->importer.Create(c.principal->tenant_id, request, c.actor);
         if (!job) {
           std::error_code ignored;
           std::filesystem::remove(request.file_path, ignored);
           return job.error();
         }
         CLOZIT_TRY(services->queue.Enqueue(c.principal->tenant_id, job->id));
         return http::Response::Json(202, ToJson(*job).dump(-1, ' ', false, json::error_handler_t::replace));
       }});
  specs_.back().streamed_body = true;  // multi-gigabyte files never sit in memory
  specs_.push_back({"GET", "/v1/contacts/imports", Access::kTenant, Role::kViewer, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto jobs, services->importer.List(c.principal->tenant_id, page));
                      return PageOf(jobs);
                    }});
  specs_.push_back({"GET", "/v1/contacts/imports/{id}", Access::kTenant, Role::kViewer, false, [services](Context& c) {
                      return JsonOf(
                          services->importer.Get(c.principal->tenant_id, contacts::ImportId(c.request.Param("id"))));
                    }});
  specs_.push_back({"GET", "/v1/contacts/imports/{id}/rejected", Access::kTenant, Role::kMember, false,
                    [services](Context& c) -> Result<http::Response> {
                      std::ostringstream out;
                      CLOZIT_TRY(services->importer.ExportRejected(c.principal->tenant_id,
                                                                   contacts::ImportId(c.request.Param("id")), out));
                      return Csv(out.str());
                    }});

  // ---- do-not-call
  specs_.push_back(
      {"GET", "/v1/dnc", Access::kTenant, Role::kViewer, false, [services](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(PageRequest page, NumberCursorPage(c.request));
         auto kind = contacts::ParseDncKind(c.request.QueryParam("kind").value_or("tenant"));
         if (!kind) return Error::InvalidArgument("kind", "kind must be tenant, registry or platform");
         CLOZIT_ASSIGN_OR_RETURN(auto entries, services->dnc.List(c.principal->tenant_id, *kind, page));
         return PageOf(entries);
       }});
  specs_.push_back(
      {"POST", "/v1/dnc", Access::kTenant, Role::kMember, false, [services](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
         CLOZIT_ASSIGN_OR_RETURN(std::string number, RequiredString(body, "number"));
         CLOZIT_ASSIGN_OR_RETURN(auto note, OptionalString(body, "note"));
         CLOZIT_ASSIGN_OR_RETURN(auto country, OptionalString(body, "default_country"));
         CLOZIT_ASSIGN_OR_RETURN(bool added, services->dnc.Add(c.principal->tenant_id, number, country.value_or("US"),
                                                               "api", note.value_or(""), c.actor));
         CLOZIT_ASSIGN_OR_RETURN(std::string canonical, services->dnc.Canonical(number, country.value_or("US")));
         json out = {{"number", canonical}, {"added", added}};
         return http::Response::Json(added ? 201 : 200, out.dump());
       }});
  specs_.push_back(
      {"GET", "/v1/dnc/check", Access::kTenant, Role::kViewer, false, [services](Context& c) -> Result<http::Response> {
         auto number = c.request.QueryParam("number");
         if (!number) return Error::InvalidArgument("number", "number is required");
         const std::string country = c.request.QueryParam("default_country").value_or("US");
         CLOZIT_ASSIGN_OR_RETURN(std::string canonical, services->dnc.Canonical(*number, country, "number"));
         CLOZIT_ASSIGN_OR_RETURN(auto check, services->dnc.Check(c.principal->tenant_id, canonical));
         json matches = json::array();
         for (const auto& entry : check.matches) matches.push_back(ToJson(entry));
         json out = {{"number", canonical}, {"blocked", check.blocked}, {"matches", matches}};
         return http::Response::Json(200, out.dump());
       }});
  specs_.push_back({"GET", "/v1/dnc/export", Access::kTenant, Role::kMember, false,
                    [services](Context& c) -> Result<http::Response> {
                      std::ostringstream out;
                      CLOZIT_TRY(services->dnc.ExportList(c.principal->tenant_id, out));
                      return Csv(out.str());
                    }});
  specs_.push_back({"POST", "/v1/dnc/opt-outs", Access::kTenant, Role::kMember, false,
                    [services, &clock](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string number, RequiredString(body, "number"));
                      CLOZIT_ASSIGN_OR_RETURN(auto source, OptionalString(body, "source"));
                      // A national number is completed with the caller's country: a UK "020 …" taken as US was stored
                      // under a number nobody has, and the callee stayed callable.
                      CLOZIT_ASSIGN_OR_RETURN(auto country, OptionalString(body, "default_country"));
                      CLOZIT_TRY(services->dnc.RecordOptOut(c.principal->tenant_id, number, country.value_or("US"),
                                                            source.value_or("api"), clock.Now()));
                      return http::Response::NoContent();
                    }});
  specs_.push_back({"POST", "/v1/dnc/registry-imports", Access::kTenant, Role::kAdmin, false,
                    [services](Context& c) -> Result<http::Response> {
                      const auto& r = c.request;
                      auto date = r.QueryParam("file_date");
                      if (!date)
                        return Error::InvalidArgument("file_date", "file_date (the registry's date) is required");
                      CLOZIT_ASSIGN_OR_RETURN(TimePoint file_date, contacts::ParseTimestamp(*date, "file_date"));
                      BodyStream body(r);
                      CLOZIT_TRY(body.Check());
                      return JsonOf(
                          services->dnc.ImportRegistry(c.principal->tenant_id, body.in(),
                                                       r.QueryParam("registry").value_or("us_national"), file_date,
                                                       r.QueryParam("country_code").value_or("1"), c.actor),
                          201);
                    }});
  specs_.back().streamed_body = true;
  specs_.push_back({"POST", "/v1/dnc/imports", Access::kTenant, Role::kMember, false,
                    [services](Context& c) -> Result<http::Response> {
                      const auto& r = c.request;
                      BodyStream body(r);
                      CLOZIT_TRY(body.Check());
                      CLOZIT_ASSIGN_OR_RETURN(
                          auto imported, services->dnc.ImportList(c.principal->tenant_id, body.in(),
                                                                  r.QueryParam("default_country").value_or("US"),
                                                                  r.QueryParam("source").value_or("import"), c.actor));
                      json out = {{"added", imported.added},
                                  {"already_listed", imported.already_listed},
                                  {"rejected", imported.rejected},
                                  {"errors", imported.errors}};
                      return http::Response::Json(200, out.dump(-1, ' ', false, json::error_handler_t::replace));
                    }});
  specs_.back().streamed_body = true;
  specs_.push_back({"DELETE", "/v1/dnc/{number}", Access::kTenant, Role::kAdmin, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_TRY(
                          services->dnc.Remove(c.principal->tenant_id, c.request.Param("number"), "US", c.actor));
                      return http::Response::NoContent();
                    }});

  // ---- the platform's do-not-call list (operators): numbers no tenant may call
  specs_.push_back({"GET", "/v1/admin/dnc", Access::kOperator, Role::kViewer, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(PageRequest page, NumberCursorPage(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto entries,
                                              services->dnc.List(TenantId(), contacts::DncKind::kPlatform, page));
                      return PageOf(entries);
                    }});
  specs_.push_back({"POST", "/v1/admin/dnc", Access::kOperator, Role::kViewer, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string number, RequiredString(body, "number"));
                      CLOZIT_ASSIGN_OR_RETURN(auto note, OptionalString(body, "note"));
                      CLOZIT_ASSIGN_OR_RETURN(auto source, OptionalString(body, "source"));
                      CLOZIT_ASSIGN_OR_RETURN(bool added, services->dnc.AddPlatform(number, source.value_or("operator"),
                                                                                    note.value_or(""), c.actor));
                      CLOZIT_ASSIGN_OR_RETURN(std::string canonical, services->dnc.Canonical(number, "US"));
                      json out = {{"number", canonical}, {"added", added}};
                      return http::Response::Json(added ? 201 : 200, out.dump());
                    }});
  specs_.push_back({"DELETE", "/v1/admin/dnc/{number}", Access::kOperator, Role::kViewer, false,
                    [services](Context& c) -> Result<http::Response> {
                      CLOZIT_TRY(services->dnc.RemovePlatform(c.request.Param("number"), c.actor));
                      return http::Response::NoContent();
                    }});
}

}  // namespace clozit::api
