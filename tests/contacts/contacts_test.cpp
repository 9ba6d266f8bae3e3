#include "contacts/contacts.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "contacts/contacts_fixture.hpp"

namespace clozit::contacts::test {
namespace {

using storage::Dialect;

class ContactsStore : public ContactsTest {};

TEST_P(ContactsStore, CreatesAContactWithItsConsentNumberRegionAndZones) {
  ContactInput input;
  input.phone = "(305) 555-0123";
  input.name = " Ada Lovelace ";
  input.email = "ada@example.com";
  input.company = "Analytical Engines";
  input.custom_fields_json = R"({"plan": "pro"})";
  input.tags = {"vip", "vip", " florida "};
  input.hints.zip = "32501";
  auto created = contacts_->CreateContact(tenant_a_, input, Consent(), Actor());
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(ContactId::Valid(created->id.str()));
  EXPECT_EQ(created->e164, "+13055550123");
  EXPECT_EQ(created->number_type, NumberType::kFixedLineOrMobile);
  EXPECT_EQ(created->region, "US-FL");
  EXPECT_EQ(created->time_zones, (std::vector<std::string>{"America/New_York", "America/Chicago"}));
  EXPECT_EQ(created->name, "Ada Lovelace");
  EXPECT_EQ(created->tags, (std::vector<std::string>{"vip", "florida"}));

  auto loaded = contacts_->GetContact(tenant_a_, created->id.str());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->e164, created->e164);
  EXPECT_EQ(loaded->custom_fields_json, R"({"plan":"pro"})");
  EXPECT_EQ(loaded->tags, created->tags);
  EXPECT_EQ(loaded->time_zones, created->time_zones);
  EXPECT_FALSE(loaded->consent_revoked_at.has_value());

  auto consent = contacts_->GetConsent(tenant_a_, loaded->consent_id.str());
  ASSERT_TRUE(consent.ok()) << consent.error().message;
  EXPECT_EQ(consent->type, ConsentType::kPriorExpressWrittenConsent);
  EXPECT_EQ(consent->evidence, "https://example.com/consents/123");
  EXPECT_EQ(consent->attested_by, "usr_01JDZ3ABCDEFGHJKMNPQRSTVWX");

  // Another tenant sees nothing.
  EXPECT_EQ(contacts_->GetContact(tenant_b_, created->id.str()).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(contacts_->GetConsent(tenant_b_, loaded->consent_id.str()).error().code, ErrorCode::kNotFound);
}

TEST_P(ContactsStore, RefusesAContactWithoutAConsentBasis) {
  ContactInput input;
  input.phone = "+14155552671";
  struct Case {
    std::function<void(ConsentInput&)> spoil;
    const char* field;
  };
  for (const auto& c : std::vector<Case>{
           {[](ConsentInput& consent) { consent.type.clear(); }, "consent.type"},
           {[](ConsentInput& consent) { consent.type = "we_bought_a_list"; }, "consent.type"},
           {[](ConsentInput& consent) { consent.obtained_where = " "; }, "consent.obtained_where"},
           {[](ConsentInput& consent) { consent.obtained_at.reset(); }, "consent.obtained_at"},
           {[&](ConsentInput& consent) { consent.obtained_at = clock_.Now() + std::chrono::hours(48); },
            "consent.obtained_at"},
           {[](ConsentInput& consent) { consent.evidence.clear(); }, "consent.evidence"},
           {[](ConsentInput& consent) { consent.attested_by.clear(); }, "consent.attested_by"},
       }) {
    ConsentInput consent = Consent();
    c.spoil(consent);
    auto created = contacts_->CreateContact(tenant_a_, input, consent, Actor());
    ASSERT_FALSE(created.ok()) << c.field;
    EXPECT_EQ(created.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(created.error().field, c.field);
  }
  EXPECT_EQ(Count("contacts"), 0);
  EXPECT_EQ(Count("consent_records"), 0);
}

TEST_P(ContactsStore, RefusesInvalidAndPremiumNumbersAndDuplicates) {
  ContactInput input;
  input.phone = "+1 900 555 0123";
  auto premium = contacts_->CreateContact(tenant_a_, input, Consent(), Actor());
  ASSERT_FALSE(premium.ok());
  EXPECT_EQ(premium.error().field, "phone");
  EXPECT_EQ(premium.error().message, "premium-rate numbers are refused");

  input.phone = "415-555-2671";
  ASSERT_TRUE(contacts_->CreateContact(tenant_a_, input, Consent(), Actor()).ok());
  input.phone = "+1 (415) 555 2671";
  auto duplicate = contacts_->CreateContact(tenant_a_, input, Consent(), Actor());
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(Count("consent_records"), 1);  // the refused contact's consent rolled back with it
  // The same number in another tenant is another contact.
  EXPECT_TRUE(contacts_->CreateContact(tenant_b_, input, Consent(), Actor(kTenantB)).ok());
}

TEST_P(ContactsStore, ListsCreateRenameCountAndDelete) {
  auto list = contacts_->CreateList(tenant_a_, "Spring leads", Actor());
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(contacts_->CreateList(tenant_a_, "Spring leads", Actor()).error().code, ErrorCode::kAlreadyExists);
  ASSERT_TRUE(contacts_->CreateList(tenant_b_, "Spring leads", Actor(kTenantB)).ok());

  ContactInput input;
  input.list_ids = {list->id};
  for (const char* phone : {"+14155550101", "+14155550102", "+14155550103"}) {
    input.phone = phone;
    ASSERT_TRUE(contacts_->CreateContact(tenant_a_, input, Consent(), Actor()).ok()) << phone;
  }
  auto counted = contacts_->GetList(tenant_a_, list->id.str());
  ASSERT_TRUE(counted.ok());
  EXPECT_EQ(counted->contact_count, 3);

  auto renamed = contacts_->RenameList(tenant_a_, list->id.str(), "Summer leads", Actor());
  ASSERT_TRUE(renamed.ok()) << renamed.error().message;
  EXPECT_EQ(renamed->name, "Summer leads");
  EXPECT_EQ(contacts_->RenameList(tenant_b_, list->id.str(), "Mine now", Actor(kTenantB)).error().code,
            ErrorCode::kNotFound);

  auto lists = contacts_->ListLists(tenant_a_, {});
  ASSERT_TRUE(lists.ok());
  ASSERT_EQ(lists->items.size(), 1u);

  ASSERT_TRUE(contacts_->DeleteList(tenant_a_, list->id.str(), Actor()).ok());
  EXPECT_EQ(Count("contact_list_members"), 0);
  EXPECT_EQ(Count("contacts"), 3);  // contacts outlive their lists
}

TEST_P(ContactsStore, SearchesByNumberNameTagAndList) {
  auto list = contacts_->CreateList(tenant_a_, "Q1", Actor());
  ASSERT_TRUE(list.ok());
  struct Seed {
    const char* phone;
    const char* name;
    std::vector<std::string> tags;
    bool listed;
  };
  for (const auto& seed : std::vector<Seed>{{"+14155550101", "Ada Lovelace", {"vip"}, true},
                                            {"+12125550102", "Grace Hopper", {"vip", "ny"}, false},
                                            {"+442079460958", "Alan Turing", {"uk"}, true},
                                            {"+14155550104", "100% Real_Name", {}, false}}) {
    ContactInput input;
    input.phone = seed.phone;
    input.name = seed.name;
    input.tags = seed.tags;
    if (seed.listed) input.list_ids = {list->id};
    ASSERT_TRUE(contacts_->CreateContact(tenant_a_, input, Consent(), Actor()).ok()) << seed.phone;
  }
  auto names = [&](ContactQuery query) {
    std::vector<std::string> out;
    auto page = contacts_->ListContacts(tenant_a_, query, {});
    EXPECT_TRUE(page.ok()) << (page.ok() ? "" : page.error().message);
    if (page.ok()) {
      for (const auto& contact : page->items) out.push_back(contact.name);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(names({"+1415", "", "", ""}), (std::vector<std::string>{"100% Real_Name", "Ada Lovelace"}));
  EXPECT_EQ(names({"7946", "", "", ""}), (std::vector<std::string>{"Alan Turing"}));
  EXPECT_EQ(names({"", "LOVE", "", ""}), (std::vector<std::string>{"Ada Lovelace"}));
  EXPECT_EQ(names({"", "0% r", "", ""}), (std::vector<std::string>{"100% Real_Name"}));
  EXPECT_EQ(names({"", "_", "", ""}), (std::vector<std::string>{"100% Real_Name"}));  // no LIKE wildcards
  EXPECT_EQ(names({"", "", "vip", ""}), (std::vector<std::string>{"Ada Lovelace", "Grace Hopper"}));
  EXPECT_EQ(names({"", "", "", list->id.str()}), (std::vector<std::string>{"Ada Lovelace", "Alan Turing"}));
  EXPECT_EQ(names({"", "", "vip", list->id.str()}), (std::vector<std::string>{"Ada Lovelace"}));

  // Pagination: newest first, two by two.
  auto first = contacts_->ListContacts(tenant_a_, {}, {2, ""});
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->items.size(), 2u);
  ASSERT_FALSE(first->next_cursor.empty());
  auto second = contacts_->ListContacts(tenant_a_, {}, {2, first->next_cursor});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->items.size(), 2u);
  EXPECT_TRUE(second->next_cursor.empty());
  EXPECT_GT(first->items[1].id.str(), second->items[0].id.str());
  // The other tenant's search finds none of them.
  auto other = contacts_->ListContacts(tenant_b_, {}, {});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->items.empty());
}

TEST_P(ContactsStore, UpdatesFieldsAndRenormalisesTheNumber) {
  ContactInput input;
  input.phone = "+14155552671";
  input.name = "Ada";
  auto created = contacts_->CreateContact(tenant_a_, input, Consent(), Actor());
  ASSERT_TRUE(created.ok());
  input.phone = "+12125550100";
  ASSERT_TRUE(contacts_->CreateContact(tenant_a_, input, Consent(), Actor()).ok());

  ContactUpdate update;
  update.name = "Ada King";
  update.phone = "(305) 555 0199";
  update.tags = std::vector<std::string>{"moved"};
  update.consent = Consent();
  auto updated = contacts_->UpdateContact(tenant_a_, created->id.str(), update, Actor());
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(updated->name, "Ada King");
  EXPECT_EQ(updated->e164, "+13055550199");
  EXPECT_EQ(updated->region, "US-FL");
  EXPECT_EQ(updated->tags, (std::vector<std::string>{"moved"}));

  ContactUpdate clash;
  clash.phone = "212-555-0100";
  clash.consent = Consent();
  EXPECT_EQ(contacts_->UpdateContact(tenant_a_, created->id.str(), clash, Actor()).error().code,
            ErrorCode::kAlreadyExists);
  ContactUpdate bad;
  bad.custom_fields_json = "[1,2]";
  EXPECT_EQ(contacts_->UpdateContact(tenant_a_, created->id.str(), bad, Actor()).error().field, "custom_fields");
  EXPECT_EQ(contacts_->UpdateContact(tenant_b_, created->id.str(), update, Actor(kTenantB)).error().code,
            ErrorCode::kNotFound);
}

// Consent is given for a number: a new number needs a basis of its own, a revoked contact cannot take a new
// number, and zones that came from location hints (the person's whereabouts) survive the change.
TEST_P(ContactsStore, ANewNumberNeedsItsOwnConsentAndKeepsTheHintedZones) {
  ContactInput input;
  input.phone = "+14155552671";  // San Francisco: Pacific
  input.hints.zip = "60601";     // lives in Chicago: Central
  auto created = contacts_->CreateContact(tenant_a_, input, Consent(), Actor());
  ASSERT_TRUE(created.ok()) << created.error().message;
  ASSERT_EQ(created->time_zones, (std::vector<std::string>{"America/Los_Angeles", "America/Chicago"}));

  ContactUpdate moved;
  moved.phone = "+12125550142";  // New York: Eastern
  auto without_consent = contacts_->UpdateContact(tenant_a_, created->id.str(), moved, Actor());
  ASSERT_FALSE(without_consent.ok());
  EXPECT_EQ(without_consent.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(without_consent.error().field, "consent");
  EXPECT_EQ(contacts_->GetContact(tenant_a_, created->id.str())->e164, "+14155552671");

  ContactUpdate renamed;
  renamed.name = "Ada";
  renamed.consent = Consent();
  EXPECT_EQ(contacts_->UpdateContact(tenant_a_, created->id.str(), renamed, Actor()).error().field, "consent");
  ContactUpdate same_number = renamed;
  same_number.phone = "415-555-2671";
  EXPECT_EQ(contacts_->UpdateContact(tenant_a_, created->id.str(), same_number, Actor()).error().field, "consent");

  moved.consent = Consent();
  moved.consent->evidence = "form 42, new number";
  auto updated = contacts_->UpdateContact(tenant_a_, created->id.str(), moved, Actor());
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(updated->e164, "+12125550142");
  EXPECT_NE(updated->consent_id.str(), created->consent_id.str());
  EXPECT_EQ(updated->time_zones, (std::vector<std::string>{"America/New_York", "America/Chicago"}));
  auto loaded = contacts_->GetContact(tenant_a_, created->id.str());
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->consent_id.str(), updated->consent_id.str());
  EXPECT_EQ(loaded->time_zones, updated->time_zones);
  auto consent = contacts_->GetConsent(tenant_a_, loaded->consent_id.str());
  ASSERT_TRUE(consent.ok()) << consent.error().message;
  EXPECT_EQ(consent->evidence, "form 42, new number");

  ASSERT_TRUE(contacts_->RevokeConsent(tenant_a_, created->id.str(), "asked", Actor()).ok());
  ContactUpdate after_revocation;
  after_revocation.phone = "+13055550177";
  after_revocation.consent = Consent();
  auto refused = contacts_->UpdateContact(tenant_a_, created->id.str(), after_revocation, Actor());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_EQ(refused.error().field, "phone");
}

TEST_P(ContactsStore, DeletionIsRealAndAudited) {
  auto list = contacts_->CreateList(tenant_a_, "L", Actor());
  ContactInput input;
  input.phone = "+14155552671";
  input.name = "Ada Lovelace";
  input.list_ids = {list->id};
  auto created = contacts_->CreateContact(tenant_a_, input, Consent(), Actor());
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(contacts_->DeleteContact(tenant_b_, created->id.str(), Actor(kTenantB)).error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(contacts_->DeleteContact(tenant_a_, created->id.str(), Actor()).ok());
  EXPECT_EQ(Count("contacts"), 0);
  EXPECT_EQ(Count("contact_list_members"), 0);
  EXPECT_EQ(contacts_->GetContact(tenant_a_, created->id.str()).error().code, ErrorCode::kNotFound);
  // The audit log names the contact by id only: no number, no name.
  auto rows = db_->Query("SELECT action, target_id, details FROM audit_log ORDER BY id");
  ASSERT_TRUE(rows.ok());
  bool deleted = false;
  for (const auto& row : *rows) {
    EXPECT_EQ(row.Text(2).find("4155552671"), std::string::npos);
    EXPECT_EQ(row.Text(2).find("Lovelace"), std::string::npos);
    if (row.Text(0) == "contact.delete") deleted = row.Text(1) == created->id.str();
  }
  EXPECT_TRUE(deleted);
}

TEST_P(ContactsStore, RevokingConsentIsImmediateAuditedAndBlocksTheNumber) {
  ContactInput input;
  input.phone = "+14155552671";
  auto created = contacts_->CreateContact(tenant_a_, input, Consent(), Actor());
  ASSERT_TRUE(created.ok());
  clock_.Advance(std::chrono::minutes(5));
  auto revoked = contacts_->RevokeConsent(tenant_a_, created->id.str(), "asked by email", Actor());
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  ASSERT_TRUE(revoked->consent_revoked_at.has_value());
  EXPECT_EQ(*revoked->consent_revoked_at, clock_.Now());
  auto check = dnc_->Check(tenant_a_, "+14155552671");
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->blocked);
  EXPECT_EQ(check->matches.at(0).source, "consent_revoked");
  EXPECT_FALSE(dnc_->Check(tenant_b_, "+14155552671")->blocked);
  // Again: nothing changes, no second audit entry.
  clock_.Advance(std::chrono::minutes(5));
  auto again = contacts_->RevokeConsent(tenant_a_, created->id.str(), "", Actor());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again->consent_revoked_at, *revoked->consent_revoked_at);
  auto audits = db_->Query("SELECT count(*) FROM audit_log WHERE action = 'contact.consent_revoke'");
  EXPECT_EQ(audits->front().Int(0), 1);
}

TEST_P(ContactsStore, ExportsCsvPageByPage) {
  for (int i = 0; i < 1205; ++i) {
    Script("INSERT INTO consent_records VALUES ('cns_" + std::to_string(100000 + i) + "', '" + kTenantA +
           "', 'prior_express_consent', 'w', 0, 'e', 'u', 0)");
  }
  ContactInput input;
  input.name = "=HYPERLINK(\"http://evil\")";
  input.company = "Commas, Inc.";
  input.phone = "+14155550100";
  ASSERT_TRUE(contacts_->CreateContact(tenant_a_, input, Consent(), Actor()).ok());
  std::ostringstream out;
  auto written = contacts_->ExportCsv(tenant_a_, {}, out);
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(*written, 1);
  std::string csv = out.str();
  EXPECT_EQ(csv.substr(0, csv.find("\r\n")),
            "id,phone,number_type,country,region,time_zones,name,email,company,tags,custom_fields,source,consent_id,"
            "consent_revoked_at,created_at,updated_at");
  EXPECT_NE(csv.find(",+14155550100,fixed_line_or_mobile,US,US-CA,America/Los_Angeles,"), std::string::npos);
  EXPECT_NE(csv.find("\"'=HYPERLINK(\"\"http://evil\"\")\""), std::string::npos);  // formula neutralised
  EXPECT_NE(csv.find("\"Commas, Inc.\""), std::string::npos);
}

CLOZIT_INSTANTIATE_BACKENDS(ContactsStore);

}  // namespace
}  // namespace clozit::contacts::test
