#include "contacts/importer.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "contacts/contacts_fixture.hpp"
#include "contacts/header_mapping.hpp"
#include "contacts/import_queue.hpp"

namespace clozit::contacts::test {
namespace {

using storage::Dialect;

std::string Fixture(const char* name) { return std::string(CLOZIT_CONTACTS_FIXTURES) + "/" + name; }

class ImporterTest : public ContactsTest {
 protected:
  void SetUp() override {
    ContactsTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    importer_ = std::make_unique<Importer>(*db_, clock_, random_, *audit_, SharedNumbers(), *contacts_, *dnc_,
                                           ImporterSettings{.batch_rows = batch_rows_});
    files_ = std::filesystem::path(::testing::TempDir()) / ("clozit_import_" + storage::test::RandomSuffix());
    std::filesystem::create_directories(files_);
  }
  void TearDown() override {
    importer_.reset();
    if (!files_.empty()) std::filesystem::remove_all(files_);
    ContactsTest::TearDown();
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    auto path = files_ / name;
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  Result<ImportJob> Import(const std::string& path, std::optional<ContactListId> list = std::nullopt,
                           ImportOptions options = {}) {
    ImportRequest request{path, std::filesystem::path(path).filename().string(), list, Consent(), options};
    CLOZIT_ASSIGN_OR_RETURN(ImportJob job, importer_->Create(tenant_a_, request, Actor()));
    return importer_->Run(tenant_a_, job.id);
  }

  // E.164 → name of every contact of tenant A.
  std::map<std::string, std::string> Numbers() {
    std::map<std::string, std::string> out;
    auto rows = db_->Query("SELECT e164, name FROM contacts WHERE tenant_id = $1", {std::string(kTenantA)});
    EXPECT_TRUE(rows.ok());
    for (const auto& row : *rows) out[row.Text(0)] = row.Text(1);
    return out;
  }

  std::vector<std::string> Rejected(const ImportJob& job) {
    std::ostringstream out;
    auto written = importer_->ExportRejected(tenant_a_, job.id, out);
    EXPECT_TRUE(written.ok());
    std::vector<std::string> lines;
    std::string text = out.str();
    MemorySource source(text);
    CsvOptions options;
    options.header = false;  // a ragged row is exported as it was
    CsvReader reader(source, options);
    CsvRecord record;
    while (reader.Next(record)) {
      EXPECT_TRUE(record.ok()) << record.error_message;
      // row,line,reason; the header line whole.
      std::string line;
      size_t cells = lines.empty() ? record.size() : std::min<size_t>(3, record.size());
      for (size_t i = 0; i < cells; ++i) line += (i ? "," : "") + std::string(record.field(i));
      lines.push_back(line);
    }
    return lines;
  }

  size_t batch_rows_ = 5000;
  std::unique_ptr<Importer> importer_;
  std::filesystem::path files_;
};

TEST_P(ImporterTest, HubSpotAndSalesforceExportsLandExactlyTheExpectedContacts) {
  auto list = contacts_->CreateList(tenant_a_, "CRM", Actor());
  ASSERT_TRUE(list.ok());

  auto hubspot = Import(Fixture("hubspot_contacts_export.csv"), list->id);
  ASSERT_TRUE(hubspot.ok()) << hubspot.error().message;
  EXPECT_EQ(hubspot->status, "completed");
  EXPECT_EQ(hubspot->format, "hubspot");
  EXPECT_EQ(hubspot->rows_read, 18u);
  EXPECT_EQ(hubspot->accepted, 14u);
  EXPECT_EQ(hubspot->duplicates, 1u);
  EXPECT_EQ(hubspot->rejected, 3u);
  EXPECT_EQ(hubspot->bytes_read, hubspot->file_bytes);
  EXPECT_EQ(Rejected(*hubspot), (std::vector<std::string>{
                                    "row,line,reason,Record ID,First Name,Last Name,Email,Phone Number,Mobile Phone "
                                    "Number,Company Name,Lifecycle Stage,Contact owner,Create Date,State/Region,Postal "
                                    "Code,Country/Region,Notes",
                                    "9,9,premium-rate numbers are refused",
                                    "10,10,not a valid phone number",
                                    "11,11,no phone number",
                                }));

  auto salesforce = Import(Fixture("salesforce_contacts_export.csv"), list->id);
  ASSERT_TRUE(salesforce.ok()) << salesforce.error().message;
  EXPECT_EQ(salesforce->format, "salesforce");
  EXPECT_EQ(salesforce->rows_read, 14u);
  EXPECT_EQ(salesforce->accepted, 9u);
  EXPECT_EQ(salesforce->duplicates, 1u);  // Grace Hopper came with the HubSpot file
  EXPECT_EQ(salesforce->rejected, 4u);
  auto rejected = Rejected(*salesforce);
  ASSERT_EQ(rejected.size(), 5u);
  EXPECT_EQ(rejected[1], "8,8,not a phone number");
  EXPECT_EQ(rejected[2], "9,9,not a valid phone number");
  EXPECT_EQ(rejected[3].substr(0, 32), "12,12,text after the closing quo");
  EXPECT_EQ(rejected[4], "13,13,expected 16 fields, found 6");

  std::map<std::string, std::string> expected = {
      // HubSpot
      {"+14155552671", "Ada Lovelace"},
      {"+12125550100", "Grace Hopper"},
      {"+442079460958", "Alan Turing"},
      {"+13105550142", "Hedy Lamarr"},
      {"+17575550199", "Katherine Johnson"},
      {"+4930901820", "Linus Berger"},
      {"+442079460000", "Tim Berners-Lee"},
      {"+14165550199", "Margaret Atwood"},
      {"+61293744000", "Cathy Freeman"},
      {"+13125550148", "Conan O'Brien"},
      {"+18005550199", "Toll Free"},
      {"+16175550123", "Mary Jackson"},
      {"+33612345678", "Marie Curie"},
      {"+16465550199", "Dorothy Vaughan"},
      // Salesforce
      {"+14085551010", "Tim Apple"},
      {"+441614960000", "Jane Doe"},
      {"+493012345678", "Max Mustermann"},
      {"+15125550134", "Sam Houston"},
      {"+525512345678", "Diego Rivera"},
      {"+35312345678", "James Joyce"},
      {"+12065550177", "Ada Seattle"},
      {"+34612345678", "Frida Kahlo"},
      {"+919876543210", "Ravi Shankar"},
  };
  EXPECT_EQ(Numbers(), expected);

  // Details of a few: fields, custom columns, zones from the CRM's state column, membership.
  auto mary = contacts_->FindByNumber(tenant_a_, "+16175550123");
  ASSERT_TRUE(mary.ok());
  EXPECT_EQ(mary->email, "mary@wind.example");
  EXPECT_EQ(mary->company, "Wind Tunnel LLC");
  EXPECT_EQ(mary->source, "import:" + hubspot->id.str());
  EXPECT_EQ(mary->consent_id.str(), hubspot->consent_id);
  EXPECT_EQ(mary->list_ids, (std::vector<std::string>{list->id.str()}));
  auto custom = nlohmann::json::parse(mary->custom_fields_json);
  EXPECT_EQ(custom["Record ID"], "51234016");
  EXPECT_EQ(custom["Notes"], "Called twice.\nPrefers mornings, \"not before 9\"");
  EXPECT_FALSE(custom.contains("Email"));
  auto hedy = contacts_->FindByNumber(tenant_a_, "+13105550142");
  EXPECT_EQ(hedy->time_zones, (std::vector<std::string>{"America/Los_Angeles"}));
  auto sam = contacts_->FindByNumber(tenant_a_, "+15125550134");
  EXPECT_EQ(sam->region, "US-TX");
  EXPECT_EQ(sam->company, "Lone Star BBQ");
  auto toll_free = contacts_->FindByNumber(tenant_a_, "+18005550199");
  EXPECT_EQ(toll_free->number_type, NumberType::kTollFree);
  auto grace = contacts_->FindByNumber(tenant_a_, "+12125550100");
  EXPECT_EQ(grace->email, "grace@navy.example");
  EXPECT_EQ(grace->source, "import:" + hubspot->id.str());  // the first import keeps it
  auto counted = contacts_->GetList(tenant_a_, list->id.str());
  EXPECT_EQ(counted->contact_count, 23);
}

TEST_P(ImporterTest, SameFileAgainAddsNothing) {
  auto first = Import(Fixture("hubspot_contacts_export.csv"));
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto before = Numbers();
  int64_t members_before = Count("contact_list_members");
  auto second = Import(Fixture("hubspot_contacts_export.csv"));
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->accepted, 0u);
  EXPECT_EQ(second->duplicates, first->accepted + first->duplicates);
  EXPECT_EQ(second->rejected, first->rejected);
  EXPECT_EQ(Numbers(), before);
  EXPECT_EQ(Count("contact_list_members"), members_before);
}

TEST_P(ImporterTest, RequiresAConsentBasis) {
  ImportRequest request{Fixture("hubspot_contacts_export.csv"), "hubspot.csv", std::nullopt, Consent(), {}};
  request.consent.type.clear();
  auto refused = importer_->Create(tenant_a_, request, Actor());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().field, "consent.type");
  request.consent = Consent();
  request.consent.evidence = "";
  EXPECT_EQ(importer_->Create(tenant_a_, request, Actor()).error().field, "consent.evidence");
  EXPECT_EQ(Count("contact_imports"), 0);
  EXPECT_EQ(Count("contacts"), 0);
}

TEST_P(ImporterTest, RefusesBadRequests) {
  ImportRequest request{(files_ / "missing.csv").string(), "missing.csv", std::nullopt, Consent(), {}};
  EXPECT_EQ(importer_->Create(tenant_a_, request, Actor()).error().field, "file");
  request.file_path = Fixture("hubspot_contacts_export.csv");
  request.options.default_country = "XX";
  EXPECT_EQ(importer_->Create(tenant_a_, request, Actor()).error().field, "default_country");
  request.options.default_country = "us";
  request.options.mapping = {{"shoe_size", "Size"}};
  EXPECT_EQ(importer_->Create(tenant_a_, request, Actor()).error().field, "mapping.shoe_size");
  request.options.mapping = {};
  request.list_id = ContactListId("lst_01JDZ3AAAAAAAAAAAAAAAAAAAA");
  EXPECT_EQ(importer_->Create(tenant_a_, request, Actor()).error().code, ErrorCode::kNotFound);

  auto no_phone = Import(WriteFile("no_phone.csv", "name,email\nAda,ada@example.com\n"));
  ASSERT_FALSE(no_phone.ok());
  EXPECT_EQ(no_phone.error().field, "mapping.phone");
  auto jobs = importer_->List(tenant_a_, {});
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->items.size(), 1u);
  EXPECT_EQ(jobs->items[0].status, "failed");
  EXPECT_NE(jobs->items[0].error.find("no phone column"), std::string::npos);
  EXPECT_FALSE(Import(WriteFile("empty.csv", "")).ok());
}

TEST_P(ImporterTest, ExplicitMappingDelimitersAndDefaultCountry) {
  std::string path = WriteFile("custom.csv",
                               "Who;Cell #;Where;Zone\n"
                               "Ada;020 7946 0958;London;\n"
                               "Bob;+1 415 555 0100;SF;Pacific\n");
  ImportOptions options;
  options.default_country = "GB";
  options.mapping = {{"phone", "cell #"}, {"name", "Who"}, {"time_zone", "Zone"}};
  options.tags = {"spring-campaign"};
  auto job = Import(path, std::nullopt, options);
  ASSERT_TRUE(job.ok()) << job.error().message;
  EXPECT_EQ(job->format, "explicit");
  EXPECT_EQ(job->accepted, 2u);
  auto ada = contacts_->FindByNumber(tenant_a_, "+442079460958");
  ASSERT_TRUE(ada.ok());
  EXPECT_EQ(ada->name, "Ada");
  EXPECT_EQ(ada->tags, (std::vector<std::string>{"spring-campaign"}));
  EXPECT_EQ(nlohmann::json::parse(ada->custom_fields_json), nlohmann::json({{"Where", "London"}}));

  auto tabbed = Import(WriteFile("tabbed.tsv", "phone\ttags\n2125550111\tvip, ny\n"));
  ASSERT_TRUE(tabbed.ok()) << tabbed.error().message;
  EXPECT_EQ(contacts_->FindByNumber(tenant_a_, "+12125550111")->tags, (std::vector<std::string>{"vip", "ny"}));
}

TEST_P(ImporterTest, MarksNumbersOnDoNotCallLists) {
  ASSERT_TRUE(dnc_->Add(tenant_a_, "+14155552671", "US", "api", "", Actor()).ok());
  ASSERT_TRUE(dnc_->Add(tenant_a_, "+1 212 *", "US", "api", "", Actor()).ok());
  ASSERT_TRUE(dnc_->Add(tenant_b_, "+13105550142", "US", "api", "", Actor(kTenantB)).ok());  // not ours
  auto job = Import(Fixture("hubspot_contacts_export.csv"));
  ASSERT_TRUE(job.ok()) << job.error().message;
  EXPECT_EQ(job->on_dnc, 2u);  // Ada by number, Grace by area code; the in-file duplicate of Ada is not counted
  EXPECT_EQ(job->accepted, 14u);
}

TEST_P(ImporterTest, StopsAndResumesWithoutImportingTwice) {
  batch_rows_ = 4;
  importer_ = std::make_unique<Importer>(*db_, clock_, random_, *audit_, SharedNumbers(), *contacts_, *dnc_,
                                         ImporterSettings{.batch_rows = batch_rows_});
  ImportRequest request{Fixture("hubspot_contacts_export.csv"), "hubspot.csv", std::nullopt, Consent(), {}};
  auto job = importer_->Create(tenant_a_, request, Actor());
  ASSERT_TRUE(job.ok()) << job.error().message;
  std::atomic<bool> stop{true};
  std::vector<uint64_t> offsets;
  auto stopped = importer_->Run(
      tenant_a_, job->id, [&](const ImportJob& p) { offsets.push_back(p.bytes_read); }, &stop);
  ASSERT_TRUE(stopped.ok()) << stopped.error().message;
  EXPECT_EQ(stopped->status, "running");
  EXPECT_GT(stopped->bytes_read, 0u);
  EXPECT_LT(stopped->bytes_read, stopped->file_bytes);
  auto unfinished = importer_->Unfinished();
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 1u);

  // Another process picks it up from the committed offset.
  auto fresh = std::make_unique<Importer>(*db_, clock_, random_, *audit_, SharedNumbers(), *contacts_, *dnc_,
                                          ImporterSettings{.batch_rows = batch_rows_});
  auto finished = fresh->Run(tenant_a_, job->id, [&](const ImportJob& p) { offsets.push_back(p.bytes_read); });
  ASSERT_TRUE(finished.ok()) << finished.error().message;
  EXPECT_EQ(finished->status, "completed");
  EXPECT_EQ(finished->rows_read, 18u);
  EXPECT_EQ(finished->accepted, 14u);
  EXPECT_EQ(finished->duplicates, 1u);
  EXPECT_EQ(finished->rejected, 3u);
  EXPECT_TRUE(std::is_sorted(offsets.begin(), offsets.end()));
  EXPECT_EQ(offsets.back(), finished->file_bytes);
  EXPECT_EQ(Numbers().size(), 14u);
  auto stored = importer_->Get(tenant_a_, job->id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->accepted, 14u);
  EXPECT_EQ(stored->rejected, 3u);
  EXPECT_TRUE(stored->finished_at.has_value());
  // Running a completed job again changes nothing.
  auto again = fresh->Run(tenant_a_, job->id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->accepted, 14u);
  EXPECT_FALSE(importer_->Get(tenant_b_, job->id).ok());
}

TEST_P(ImporterTest, MalformedFileIsReportedRowByRow) {
  std::string content = "phone,name\n";
  content += "4155550101,\"Good\"\n";
  content += "4155550102,\"Open quote\n";  // swallows the rest as one field
  auto job = Import(WriteFile("broken.csv", content + "4155550103,Lost\n"));
  ASSERT_TRUE(job.ok()) << job.error().message;
  EXPECT_EQ(job->accepted, 1u);
  EXPECT_EQ(job->rejected, 1u);
  auto rejected = Rejected(*job);
  ASSERT_EQ(rejected.size(), 2u);
  EXPECT_EQ(rejected[1], "3,3,the quoted field 2 opened on line 3 is never closed");

  std::string garbage = "phone,name\n";
  for (int i = 0; i < 2000; ++i) garbage.push_back(static_cast<char>((i * 7919) % 256));
  auto noisy = Import(WriteFile("garbage.csv", garbage));
  ASSERT_TRUE(noisy.ok()) << noisy.error().message;
  EXPECT_EQ(noisy->accepted, 0u);
  EXPECT_EQ(noisy->bytes_read, noisy->file_bytes);
}

TEST_P(ImporterTest, AChangedFileIsNotResumed) {
  std::string path = WriteFile("changing.csv", "phone\n4155550101\n");
  ImportRequest request{path, "changing.csv", std::nullopt, Consent(), {}};
  auto job = importer_->Create(tenant_a_, request, Actor());
  ASSERT_TRUE(job.ok());
  WriteFile("changing.csv", "phone\n4155550101\n4155550102\n");
  auto run = importer_->Run(tenant_a_, job->id);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().code, ErrorCode::kConflict);
  EXPECT_EQ(importer_->Get(tenant_a_, job->id)->status, "failed");
}

TEST_P(ImporterTest, QueueRunsUploadsAndResumesUnfinishedJobsAtStartUp) {
  std::string spool = (files_ / "spool").string();
  std::string first_path;
  ImportId pending;
  {
    ImportQueue queue(*importer_, random_, spool);
    auto spooled = queue.Spool("phone\n4155550101\n");
    ASSERT_TRUE(spooled.ok()) << spooled.error().message;
    first_path = *spooled;
    auto job = importer_->Create(tenant_a_, {first_path, "a.csv", std::nullopt, Consent(), {}}, Actor());
    ASSERT_TRUE(job.ok()) << job.error().message;
    ASSERT_TRUE(queue.Enqueue(tenant_a_, job->id).ok());
    queue.WaitIdle();
    EXPECT_EQ(importer_->Get(tenant_a_, job->id)->status, "completed");
    EXPECT_FALSE(std::filesystem::exists(first_path));  // a completed upload's spool file is removed

    // A job created but never run, as a crash would leave it.
    auto second = queue.Spool("phone\n4155550102\n");
    auto created = importer_->Create(tenant_a_, {*second, "b.csv", std::nullopt, Consent(), {}}, Actor());
    ASSERT_TRUE(created.ok());
    pending = created->id;
    // And one whose file is on another node.
    ASSERT_TRUE(
        importer_
            ->Create(tenant_a_, {Fixture("hubspot_contacts_export.csv"), "c.csv", std::nullopt, Consent(), {}}, Actor())
            .ok());
    ASSERT_TRUE(db_->Write([&](storage::Tx& tx) -> Result<void> {
                     CLOZIT_TRY(
                         tx.Exec("UPDATE contact_imports SET file_path = '/nonexistent/c.csv' "
                                 "WHERE file_name = 'c.csv'"));
                     return Ok();
                   })
                    .ok());
  }
  ImportQueue restarted(*importer_, random_, spool);
  auto resumed = restarted.ResumeUnfinished();
  ASSERT_TRUE(resumed.ok()) << resumed.error().message;
  EXPECT_EQ(*resumed, 1);
  restarted.WaitIdle();
  EXPECT_EQ(importer_->Get(tenant_a_, pending)->status, "completed");
  EXPECT_EQ(Numbers().size(), 2u);
}

CLOZIT_INSTANTIATE_BACKENDS(ImporterTest);

TEST(HeaderMapping, RecognisesCrmExports) {
  auto map = [](std::vector<std::string> header) { return MapHeader(header); };
  auto pipedrive = map({"Person - Name", "Person - Phone", "Person - Email", "Organization - Name", "Person - Labels"});
  ASSERT_TRUE(pipedrive.ok());
  EXPECT_EQ(pipedrive->format, "pipedrive");
  EXPECT_EQ(pipedrive->phones, (std::vector<int>{1}));
  EXPECT_EQ(pipedrive->name, 0);
  EXPECT_EQ(pipedrive->company, 3);
  EXPECT_EQ(pipedrive->tags, 4);

  auto google = map({"Name", "Given Name", "Family Name", "E-mail 1 - Type", "E-mail 1 - Value", "Phone 1 - Type",
                     "Phone 1 - Value", "Phone 2 - Type", "Phone 2 - Value", "Labels", "Organization 1 - Name"});
  ASSERT_TRUE(google.ok());
  EXPECT_EQ(google->format, "google");
  EXPECT_EQ(google->phones, (std::vector<int>{6, 8}));
  EXPECT_EQ(google->email, 4);
  EXPECT_EQ(google->tags, 9);
  EXPECT_EQ(google->company, 10);

  auto zoho = map({"Record Id", "Contact Owner", "First Name", "Last Name", "Email", "Phone", "Mobile", "Mailing State",
                   "Mailing Zip", "Mailing Country"});
  ASSERT_TRUE(zoho.ok());
  EXPECT_EQ(zoho->format, "zoho");
  EXPECT_EQ(zoho->phones, (std::vector<int>{5, 6}));
  EXPECT_EQ(zoho->state, 7);
  EXPECT_EQ(zoho->zip, 8);
  EXPECT_EQ(zoho->country, 9);
  EXPECT_EQ(zoho->custom, (std::vector<int>{0, 1}));

  auto plain = map({"PHONE"});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->format, "generic");
  EXPECT_FALSE(map({"name", "email"}).ok());
  EXPECT_EQ(MapHeader({"a", "b"}, {{"phone", "c"}}).error().field, "mapping.phone");
  auto several = MapHeader({"Work", "Cell", "Name"}, {{"phone", "Cell|Work"}});
  ASSERT_TRUE(several.ok());
  EXPECT_EQ(several->phones, (std::vector<int>{1, 0}));
  EXPECT_EQ(several->name, 2);
}

TEST(HeaderMapping, SplitsTagsAndReadsCountries) {
  EXPECT_EQ(SplitTags("* myContacts ::: Friends"), (std::vector<std::string>{"myContacts", "Friends"}));
  EXPECT_EQ(SplitTags("vip; ny, vip|  "), (std::vector<std::string>{"vip", "ny"}));
  EXPECT_TRUE(SplitTags("").empty());
  auto& numbers = SharedNumbers();
  EXPECT_EQ(CountryCodeFor("United States", numbers), "US");
  EXPECT_EQ(CountryCodeFor("U.S.A.", numbers), "US");
  EXPECT_EQ(CountryCodeFor("uk", numbers), "GB");
  EXPECT_EQ(CountryCodeFor("Germany", numbers), "DE");
  EXPECT_EQ(CountryCodeFor("de", numbers), "DE");
  EXPECT_EQ(CountryCodeFor("Atlantis", numbers), std::nullopt);
  EXPECT_EQ(SanitizeUtf8(std::string("a\0b\xC3", 4)),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
}

}  // namespace
}  // namespace clozit::contacts::test
