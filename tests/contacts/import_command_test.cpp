#include "contacts/import_command.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "contacts/contacts_fixture.hpp"

namespace clozit::contacts::test {
namespace {

using storage::Dialect;

class ImportCommandTest : public ContactsTest {};

TEST_P(ImportCommandTest, ImportsIntoANamedListAndWritesTheRejectedRows) {
  auto rejected_path =
      std::filesystem::path(::testing::TempDir()) / ("rejected_" + storage::test::RandomSuffix() + ".csv");
  ImportCommand command;
  command.file = std::string(CLOZIT_CONTACTS_FIXTURES) + "/hubspot_contacts_export.csv";
  command.tenant_id = kTenantA;
  command.list_name = "November leads";
  command.consent_type = "prior_express_written_consent";
  command.consent_where = "hubspot landing page";
  command.consent_at = "2025-11-01";
  command.consent_evidence = "form submissions export 2025-11";
  command.attested_by = "usr_01JDZ3ABCDEFGHJKMNPQRSTVWX";
  command.rejected_out = rejected_path.string();
  std::ostringstream progress;
  auto summary = RunImportCommand(*db_, command, progress, true);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->substr(0, summary->find(" (job imp_")),
            "18 rows: 14 accepted, 3 rejected, 1 duplicates, 0 on a do-not-call list");
  EXPECT_NE(summary->find(", completed)"), std::string::npos);
  EXPECT_NE(progress.str().find("100%"), std::string::npos);
  EXPECT_EQ(progress.str().find("Lovelace"), std::string::npos);  // no personal data on the terminal
  std::ifstream rejected(rejected_path);
  std::string first_line;
  std::getline(rejected, first_line);
  EXPECT_EQ(first_line.substr(0, 20), "row,line,reason,Reco");
  std::filesystem::remove(rejected_path);

  auto lists = contacts_->ListLists(tenant_a_, {});
  ASSERT_EQ(lists->items.size(), 1u);
  EXPECT_EQ(lists->items[0].name, "November leads");
  EXPECT_EQ(lists->items[0].contact_count, 14);

  // Again into the same list: nothing new, no second list.
  command.rejected_out.clear();
  auto again = RunImportCommand(*db_, command, progress, false);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->substr(0, 42), "18 rows: 0 accepted, 3 rejected, 15 duplic");
  EXPECT_EQ(contacts_->ListLists(tenant_a_, {})->items.size(), 1u);
}

TEST_P(ImportCommandTest, RefusesAMissingConsentAndBadFlags) {
  ImportCommand command;
  command.file = std::string(CLOZIT_CONTACTS_FIXTURES) + "/hubspot_contacts_export.csv";
  command.tenant_id = kTenantA;
  command.attested_by = "usr_01JDZ3ABCDEFGHJKMNPQRSTVWX";
  std::ostringstream progress;
  auto refused = RunImportCommand(*db_, command, progress, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().field, "consent.type");
  command.consent_type = "opt_in";
  command.consent_where = "x";
  command.consent_evidence = "y";
  command.consent_at = "yesterday";
  EXPECT_EQ(RunImportCommand(*db_, command, progress, false).error().field, "consent.obtained_at");
  command.consent_at = "2025-11-01T09:30:00Z";
  command.mappings = {"phone"};
  EXPECT_EQ(RunImportCommand(*db_, command, progress, false).error().field, "map");
  EXPECT_EQ(Count("contacts"), 0);
}

TEST(ParseTimestamp, AcceptsDatesAndRfc3339) {
  EXPECT_EQ(FormatRfc3339(*ParseTimestamp("2025-11-01", "at")), "2025-11-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(*ParseTimestamp("2025-11-01T09:30:00Z", "at")), "2025-11-01T09:30:00.000Z");
  EXPECT_EQ(FormatRfc3339(*ParseTimestamp("2025-11-01T09:30:00.250+02:00", "at")), "2025-11-01T07:30:00.250Z");
  EXPECT_FALSE(ParseTimestamp("11/01/2025", "at").ok());
  EXPECT_FALSE(ParseTimestamp("2025-11-01 trailing", "at").ok());
}

CLOZIT_INSTANTIATE_BACKENDS(ImportCommandTest);

}  // namespace
}  // namespace clozit::contacts::test
