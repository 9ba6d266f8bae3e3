#include "contacts/dnc.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include "contacts/contacts_fixture.hpp"

namespace clozit::contacts::test {
namespace {

using storage::Dialect;

class DncStore : public ContactsTest {};

TEST_P(DncStore, CanonicalFormsOfNumbersAndWildcards) {
  EXPECT_EQ(*dnc_->Canonical("(415) 555-2671", "US"), "+14155552671");
  EXPECT_EQ(*dnc_->Canonical("+1 415 *", "US"), "+1415*");
  EXPECT_EQ(*dnc_->Canonical("415*", "US"), "+1415*");
  EXPECT_EQ(*dnc_->Canonical("020*", "GB"), "+4420*");
  EXPECT_EQ(*dnc_->Canonical("+1 900 555 0123", "US"), "+19005550123");  // refused as a contact, fine as a DNC entry
  EXPECT_EQ(*dnc_->Canonical("+1 227 555 0123", "US"), "+12275550123");  // an area code newer than libphonenumber
  EXPECT_FALSE(dnc_->Canonical("*", "US").ok());
  EXPECT_FALSE(dnc_->Canonical("+123456789*", "US").ok());
  EXPECT_FALSE(dnc_->Canonical("call me", "US").ok());
  EXPECT_EQ(DoNotCall::Mask("+14155552671"), "+1415*****71");
}

TEST_P(DncStore, TenantEntriesAndWildcardsBlockOnlyThatTenant) {
  auto added = dnc_->Add(tenant_a_, "415-555-2671", "US", "api", "asked twice", Actor());
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_TRUE(*added);
  EXPECT_FALSE(*dnc_->Add(tenant_a_, "+14155552671", "US", "api", "", Actor()));  // already there
  ASSERT_TRUE(dnc_->Add(tenant_a_, "+1 212 *", "US", "api", "", Actor()).ok());

  auto exact = dnc_->Check(tenant_a_, "+14155552671");
  ASSERT_TRUE(exact.ok()) << exact.error().message;
  EXPECT_TRUE(exact->blocked);
  ASSERT_EQ(exact->matches.size(), 1u);
  EXPECT_EQ(exact->matches[0].source, "api");
  EXPECT_EQ(exact->matches[0].note, "asked twice");
  EXPECT_EQ(exact->matches[0].added_at, clock_.Now());

  EXPECT_TRUE(dnc_->Check(tenant_a_, "+12125550100")->blocked);   // by the area-code wildcard
  EXPECT_FALSE(dnc_->Check(tenant_a_, "+14155552672")->blocked);  // a neighbour
  EXPECT_FALSE(dnc_->Check(tenant_b_, "+14155552671")->blocked);  // another tenant
  EXPECT_FALSE(dnc_->Check(tenant_b_, "+12125550100")->blocked);

  ASSERT_TRUE(dnc_->Remove(tenant_a_, "+14155552671", "US", Actor()).ok());
  EXPECT_FALSE(dnc_->Check(tenant_a_, "+14155552671")->blocked);
  EXPECT_EQ(dnc_->Remove(tenant_a_, "+14155552671", "US", Actor()).error().code, ErrorCode::kNotFound);
}

TEST_P(DncStore, PlatformListAppliesToEveryTenant) {
  privacy::Actor operator_actor{"operator", "opr_01JDZ3ABCDEFGHJKMNPQRSTVWX", "", "127.0.0.1", "req"};
  ASSERT_TRUE(dnc_->AddPlatform("+1 800 555 0199", "fraud report", "", operator_actor).ok());
  for (const auto& tenant : {tenant_a_, tenant_b_}) {
    auto check = dnc_->Check(tenant, "+18005550199");
    ASSERT_TRUE(check.ok());
    EXPECT_TRUE(check->blocked);
    EXPECT_EQ(check->matches.at(0).kind, DncKind::kPlatform);
  }
  ASSERT_TRUE(dnc_->RemovePlatform("+18005550199", operator_actor).ok());
  EXPECT_FALSE(dnc_->Check(tenant_a_, "+18005550199")->blocked);
}

TEST_P(DncStore, OptOutIsRecordedWithSourceAndTimeAndRevokesConsent) {
  ContactInput input;
  input.phone = "+14155552671";
  auto contact = contacts_->CreateContact(tenant_a_, input, Consent(), Actor());
  ASSERT_TRUE(contact.ok());
  TimePoint said_at = clock_.Now() - std::chrono::seconds(30);
  ASSERT_TRUE(dnc_->RecordOptOut(tenant_a_, "+1 415 555 2671", "US", "agent", said_at).ok());
  ASSERT_TRUE(dnc_->RecordOptOut(tenant_a_, "+1 415 555 2671", "US", "agent", said_at).ok());  // idempotent
  auto check = dnc_->Check(tenant_a_, "+14155552671");
  ASSERT_TRUE(check.ok());
  ASSERT_EQ(check->matches.size(), 1u);
  EXPECT_EQ(check->matches[0].source, "agent");
  EXPECT_EQ(check->matches[0].added_at, said_at);
  auto revoked = contacts_->GetContact(tenant_a_, contact->id.str());
  ASSERT_TRUE(revoked->consent_revoked_at.has_value());
  EXPECT_EQ(*revoked->consent_revoked_at, said_at);
  // A number libphonenumber does not know is still recorded.
  ASSERT_TRUE(dnc_->RecordOptOut(tenant_a_, "+1 (227) 555-0123", "US", "api", clock_.Now()).ok());
  EXPECT_TRUE(dnc_->Check(tenant_a_, "+12275550123")->blocked);
  auto audits = db_->Query("SELECT target_id, details FROM audit_log WHERE action = 'dnc.opt_out' ORDER BY id");
  ASSERT_TRUE(audits.ok());
  ASSERT_EQ(audits->size(), 2u);
  std::vector<std::string> targets = {audits->at(0).Text(0), audits->at(1).Text(0)};
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(targets, (std::vector<std::string>{"+1227*****23", "+1415*****71"}));
  EXPECT_EQ(dnc_->RecordOptOut(TenantId(), "+14155552671", "US", "agent", clock_.Now()).error().code,
            ErrorCode::kInvalidArgument);
  // The person's own opt-out is not the tenant's to remove.
  auto removed = dnc_->Remove(tenant_a_, "+14155552671", "US", Actor());
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(dnc_->Check(tenant_a_, "+14155552671")->blocked);
  // A national number is completed with the country it was given in, not always the US's +1.
  ASSERT_TRUE(dnc_->RecordOptOut(tenant_a_, "020 7946 0958", "GB", "agent", clock_.Now()).ok());
  EXPECT_TRUE(dnc_->Check(tenant_a_, "+442079460958")->blocked);
}

TEST_P(DncStore, ImportsAndExportsTheTenantList) {
  std::istringstream in("Phone Number,Note\n(415) 555-0101,x\n+1 212 555 0102,y\nnot a number,z\n415-555-0101,dup\n");
  auto imported = dnc_->ImportList(tenant_a_, in, "US", "crm_export", Actor());
  ASSERT_TRUE(imported.ok()) << imported.error().message;
  EXPECT_EQ(imported->added, 2);
  EXPECT_EQ(imported->already_listed, 1);
  EXPECT_EQ(imported->rejected, 1);
  EXPECT_EQ(imported->errors.at(0), "line 4: no phone number in the phone columns");
  std::ostringstream out;
  ASSERT_TRUE(dnc_->ExportList(tenant_a_, out).ok());
  EXPECT_EQ(out.str(),
            "number,kind,source,note,added_at\r\n"
            "+12125550102,tenant,crm_export,,2026-01-01T00:00:00.000Z\r\n"
            "+14155550101,tenant,crm_export,,2026-01-01T00:00:00.000Z\r\n");
}

// A CRM export: the header names the phone columns, so a record id that parses as a number is not listed, and
// every number the person gave is.
TEST_P(DncStore, AnImportWithAHeaderListsEveryNumberInItsPhoneColumnsOnly) {
  std::istringstream in(
      "Record ID,Phone Number,Mobile Phone Number,Amount\n"
      "4155550000,(415) 555-0111,(415) 555-0112,2125550000\n"
      "4155550001,,(305) 555-0113,0\n"
      "4155550002,,,3055550000\n");
  auto imported = dnc_->ImportList(tenant_a_, in, "US", "hubspot", Actor());
  ASSERT_TRUE(imported.ok()) << imported.error().message;
  EXPECT_EQ(imported->added, 3);
  EXPECT_EQ(imported->rejected, 1);
  EXPECT_EQ(imported->errors.at(0), "line 4: no phone number in the phone columns");
  EXPECT_TRUE(dnc_->Check(tenant_a_, "+14155550111")->blocked);
  EXPECT_TRUE(dnc_->Check(tenant_a_, "+14155550112")->blocked);
  EXPECT_TRUE(dnc_->Check(tenant_a_, "+13055550113")->blocked);
  for (const char* not_a_request : {"+14155550000", "+14155550001", "+12125550000", "+13055550000"}) {
    EXPECT_FALSE(dnc_->Check(tenant_a_, not_a_request)->blocked) << not_a_request;
  }
}

TEST_P(DncStore, RegistryFilesReplaceTheirPreviousCopy) {
  std::istringstream first("4155550101\n4155550102\n  2125550103\r\nbad line\n123\n");
  auto january =
      dnc_->ImportRegistry(tenant_a_, first, "us_national", clock_.Now() - std::chrono::hours(24), "1", Actor());
  ASSERT_TRUE(january.ok()) << january.error().message;
  EXPECT_EQ(january->entries, 3);
  EXPECT_EQ(january->rejected, 2);
  EXPECT_TRUE(dnc_->Check(tenant_a_, "+14155550102")->blocked);
  EXPECT_EQ(dnc_->Check(tenant_a_, "+14155550102")->matches.at(0).kind, DncKind::kRegistry);
  EXPECT_FALSE(dnc_->Check(tenant_b_, "+14155550102")->blocked);

  clock_.Advance(std::chrono::hours(24 * 30));
  std::istringstream second("4155550101\n3055550104\n");
  auto february = dnc_->ImportRegistry(tenant_a_, second, "us_national", clock_.Now(), "1", Actor());
  ASSERT_TRUE(february.ok()) << february.error().message;
  EXPECT_TRUE(dnc_->Check(tenant_a_, "+14155550101")->blocked);
  EXPECT_TRUE(dnc_->Check(tenant_a_, "+13055550104")->blocked);
  EXPECT_FALSE(dnc_->Check(tenant_a_, "+14155550102")->blocked);  // gone from the newer file
  EXPECT_EQ(Count("dnc_entries"), 2);
  auto latest = dnc_->LatestRegistry(tenant_a_, "us_national");
  ASSERT_TRUE(latest.ok());
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ((*latest)->id, february->id);
  EXPECT_EQ((*latest)->file_date, clock_.Now());
}

// A number on two registries stays listed while either lists it: replacing one registry's copy leaves the other's.
TEST_P(DncStore, ANumberOnTwoRegistriesStaysListedWhileEitherListsIt) {
  std::istringstream national("4155550101\n4155550102\n");
  ASSERT_TRUE(dnc_->ImportRegistry(tenant_a_, national, "us_national", clock_.Now(), "1", Actor()).ok());
  std::istringstream state("4155550101\n");
  ASSERT_TRUE(dnc_->ImportRegistry(tenant_a_, state, "state_ca", clock_.Now(), "1", Actor()).ok());
  EXPECT_EQ(dnc_->Check(tenant_a_, "+14155550101")->matches.size(), 2u);
  // Listed a page of one at a time, each registry's listing of a number is its own entry, none skipped.
  std::vector<std::string> listed;
  PageRequest page;
  page.limit = 1;
  for (int i = 0; i < 5; ++i) {
    auto entries = dnc_->List(tenant_a_, DncKind::kRegistry, page);
    ASSERT_TRUE(entries.ok()) << entries.error().message;
    for (const auto& entry : entries->items) listed.push_back(entry.number + " " + entry.registry);
    if (entries->next_cursor.empty()) break;
    page.cursor = entries->next_cursor;
  }
  EXPECT_EQ(listed, (std::vector<std::string>{"+14155550101 state_ca", "+14155550101 us_national",
                                              "+14155550102 us_national"}));

  clock_.Advance(std::chrono::hours(24));
  std::istringstream state_again("2125550199\n");
  ASSERT_TRUE(dnc_->ImportRegistry(tenant_a_, state_again, "state_ca", clock_.Now(), "1", Actor()).ok());
  auto still = dnc_->Check(tenant_a_, "+14155550101");
  ASSERT_TRUE(still.ok());
  EXPECT_TRUE(still->blocked) << "the national registry still lists it";
  ASSERT_EQ(still->matches.size(), 1u);
  EXPECT_EQ(still->matches[0].kind, DncKind::kRegistry);
  EXPECT_TRUE(dnc_->Check(tenant_a_, "+12125550199")->blocked);

  std::istringstream national_again("4155550102\n");
  ASSERT_TRUE(dnc_->ImportRegistry(tenant_a_, national_again, "us_national", clock_.Now(), "1", Actor()).ok());
  EXPECT_FALSE(dnc_->Check(tenant_a_, "+14155550101")->blocked);
  EXPECT_TRUE(dnc_->Check(tenant_a_, "+12125550199")->blocked);
  EXPECT_EQ(Count("dnc_entries"), 2);
}

// A million entries: the lookup is a handful of primary-key seeks.
TEST_P(DncStore, LookupStaysFastWithAMillionEntries) {
  constexpr int kEntries = 1000000;
  Script("WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g < " + std::to_string(kEntries - 1) +
         ") INSERT INTO dnc_entries (tenant_id, number, kind, source, note, registry_import_id, added_by, added_at) "
         "SELECT '" +
         std::string(kTenantA) +
         "', '+1415' || (2000000 + g), 'registry', 'registry:x', '', NULL, 'u', 0 "
         "FROM s");
  ASSERT_EQ(Count("dnc_entries"), kEntries);
  auto start = std::chrono::steady_clock::now();
  constexpr int kLookups = 2000;
  int blocked = 0;
  for (int i = 0; i < kLookups; ++i) {
    // Every other probe is a number just outside the entries.
    int offset = (i * 7919) % kEntries + (i % 2 == 0 ? 0 : kEntries);
    auto check = dnc_->Check(tenant_a_, "+1415" + std::to_string(2000000 + offset));
    ASSERT_TRUE(check.ok()) << check.error().message;
    blocked += check->blocked ? 1 : 0;
  }
  auto per_lookup = (std::chrono::steady_clock::now() - start) / kLookups;
  EXPECT_EQ(blocked, kLookups / 2);
  // Generous for a sanitizer build on a busy machine; a scan of a million rows takes far longer.
  EXPECT_LT(per_lookup, std::chrono::milliseconds(5));
  RecordProperty("lookup_us",
                 static_cast<int>(std::chrono::duration_cast<std::chrono::microseconds>(per_lookup).count()));

  std::string explain = postgres() ? "EXPLAIN " : "EXPLAIN QUERY PLAN ";
  auto plan =
      db_->Query(explain + "SELECT tenant_id FROM dnc_entries WHERE tenant_id IN ($1, '') AND number IN ($2, $3)",
                 {std::string(kTenantA), std::string("+14155552671"), std::string("+1415*")});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  std::string text;
  for (const auto& row : *plan) text += row.Text(row.size() - 1) + "\n";
  if (postgres()) {
    EXPECT_NE(text.find("Index"), std::string::npos) << text;
    EXPECT_EQ(text.find("Seq Scan"), std::string::npos) << text;
  } else {
    EXPECT_NE(text.find("USING"), std::string::npos) << text;
    EXPECT_EQ(text.find("SCAN dnc_entries"), std::string::npos) << text;
  }
}

CLOZIT_INSTANTIATE_BACKENDS(DncStore);

}  // namespace
}  // namespace clozit::contacts::test
