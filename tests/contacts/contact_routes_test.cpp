// The contacts routes through the real Api pipeline (sessions, CSRF, roles,
// idempotency), every response checked against src/api/openapi.json.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "api/api_fixture.hpp"

namespace clozit::api::test {
namespace {

class ContactRoutesTest : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    owner_ = SignUp();
  }

  static json Consent() {
    return {{"type", "prior_express_written_consent"},
            {"obtained_where", "web form at example.com/quote"},
            {"obtained_at", "2025-11-01T09:30:00Z"},
            {"evidence", "https://example.com/consents/42"}};
  }

  // Polls an import until it is no longer pending or running.
  json WaitForImport(const std::string& id) {
    json job;
    for (int attempt = 0; attempt < 400; ++attempt) {
      auto reply = Send("GET", "/v1/contacts/imports/" + id, {}, owner_.Headers(false));
      EXPECT_EQ(reply.status, 200) << reply.body;
      job = reply.data;
      if (job["status"] != "pending" && job["status"] != "running") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return job;
  }

  Session owner_;
};

TEST_F(ContactRoutesTest, ContactsListsAndConsentThroughTheApi) {
  auto list = Send("POST", "/v1/contact-lists", R"({"name":"Spring leads"})", owner_.Headers());
  ASSERT_EQ(list.status, 201) << list.body;
  std::string list_id = list.data["id"];
  EXPECT_EQ(Send("POST", "/v1/contact-lists", R"({"name":"Spring leads"})", owner_.Headers()).status, 409);

  json body = {{"phone", "(305) 555-0123"}, {"name", "Ada Lovelace"}, {"tags", {"vip"}}, {"list_ids", {list_id}}};
  auto refused = Send("POST", "/v1/contacts", body.dump(), owner_.Headers());
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(refused.data["field"], "consent");
  body["consent"] = Consent();
  body["consent"]["evidence"] = "";
  EXPECT_EQ(Send("POST", "/v1/contacts", body.dump(), owner_.Headers()).data["field"], "consent.evidence");
  body["consent"] = Consent();
  auto created = Send("POST", "/v1/contacts", body.dump(), owner_.Headers());
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.data["phone"], "+13055550123");
  EXPECT_EQ(created.data["region"], "US-FL");
  EXPECT_EQ(created.data["time_zones"], json({"America/New_York", "America/Chicago"}));
  EXPECT_EQ(created.data["list_ids"], json({list_id}));
  std::string id = created.data["id"];
  EXPECT_EQ(Send("POST", "/v1/contacts", body.dump(), owner_.Headers()).status, 409);  // same number
  body["phone"] = "+1 900 555 0123";
  auto premium = Send("POST", "/v1/contacts", body.dump(), owner_.Headers());
  EXPECT_EQ(premium.status, 400);
  EXPECT_EQ(premium.data["field"], "phone");

  auto found = Send("GET", "/v1/contacts?number=%2B1305&tag=vip&list_id=" + list_id, {}, owner_.Headers(false));
  ASSERT_EQ(found.status, 200) << found.body;
  ASSERT_EQ(found.data["data"].size(), 1u);
  EXPECT_EQ(Send("GET", "/v1/contact-lists/" + list_id, {}, owner_.Headers(false)).data["contact_count"], 1);

  auto patched = Send("PATCH", "/v1/contacts/" + id, R"({"name":"Ada King","state":"TX"})", owner_.Headers());
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.data["name"], "Ada King");
  EXPECT_EQ(patched.data["time_zones"], json({"America/New_York", "America/Chicago", "America/Denver"}));

  auto csv = Send("GET", "/v1/contacts/export", {}, owner_.Headers(false));
  ASSERT_EQ(csv.status, 200);
  EXPECT_NE(csv.body.find(",+13055550123,"), std::string::npos);

  auto revoked =
      Send("POST", "/v1/contacts/" + id + "/consent-revocation", R"({"reason":"asked by email"})", owner_.Headers());
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_TRUE(revoked.data["consent_revoked_at"].is_string());
  auto check = Send("GET", "/v1/dnc/check?number=%2B13055550123", {}, owner_.Headers(false));
  ASSERT_EQ(check.status, 200) << check.body;
  EXPECT_TRUE(check.data["blocked"]);

  // Another tenant sees none of it.
  auto other = SignUp("other@example.com");
  EXPECT_EQ(Send("GET", "/v1/contacts/" + id, {}, other.Headers(false)).status, 404);
  EXPECT_EQ(Send("GET", "/v1/contact-lists/" + list_id, {}, other.Headers(false)).status, 404);
  EXPECT_FALSE(Send("GET", "/v1/dnc/check?number=%2B13055550123", {}, other.Headers(false)).data["blocked"]);

  EXPECT_EQ(Send("DELETE", "/v1/contacts/" + id, {}, owner_.Headers()).status, 204);
  EXPECT_EQ(Send("GET", "/v1/contacts/" + id, {}, owner_.Headers(false)).status, 404);
  EXPECT_EQ(Send("DELETE", "/v1/contact-lists/" + list_id, {}, owner_.Headers()).status, 204);
}

TEST_F(ContactRoutesTest, ViewersReadButCannotChange) {
  auto key = Send("POST", "/v1/api-keys", R"({"name":"reader","role":"viewer"})", owner_.Headers());
  ASSERT_EQ(key.status, 201) << key.body;
  auto bearer = Bearer(key.data["secret"]);
  EXPECT_EQ(Send("GET", "/v1/contacts", {}, bearer).status, 200);
  json body = {{"phone", "+14155552671"}, {"consent", Consent()}};
  EXPECT_EQ(Send("POST", "/v1/contacts", body.dump(), bearer).status, 403);
  EXPECT_EQ(Send("POST", "/v1/dnc", R"({"number":"+14155552671"})", bearer).status, 403);
  // Without the CSRF token a cookie session cannot change anything.
  EXPECT_EQ(Send("POST", "/v1/contacts", body.dump(), owner_.Headers(false)).status, 403);
}

TEST_F(ContactRoutesTest, UploadsACsvAndFollowsTheImport) {
  auto list = Send("POST", "/v1/contact-lists", R"({"name":"Uploads"})", owner_.Headers());
  std::string list_id = list.data["id"];
  std::string csv =
      "First Name,Last Name,Phone Number,Email\r\n"
      "Ada,Lovelace,(415) 555-2671,ada@example.com\r\n"
      "Grace,Hopper,+1 212 555 0100,grace@example.com\r\n"
      "Bad,Number,555-0100,bad@example.com\r\n"
      "Ada,Again,415.555.2671,ada2@example.com\r\n";
  auto headers = owner_.Headers();
  headers.emplace_back("Content-Type", "text/csv");
  auto missing = Send("POST", "/v1/contacts/imports?list_id=" + list_id, csv, headers);
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.data["field"], "consent_type");

  std::string query = "?list_id=" + list_id +
                      "&consent_type=prior_express_consent&consent_where=trade%20show&consent_at=2025-10-01"
                      "&consent_evidence=badge%20scans&tags=show,2025&file_name=leads.csv";
  auto started = Send("POST", "/v1/contacts/imports" + query, csv, headers);
  ASSERT_EQ(started.status, 202) << started.body;
  json job = WaitForImport(started.data["id"]);
  EXPECT_EQ(job["status"], "completed") << job.dump();
  EXPECT_EQ(job["rows_read"], 4);
  EXPECT_EQ(job["accepted"], 2);
  EXPECT_EQ(job["rejected"], 1);
  EXPECT_EQ(job["duplicates"], 1);
  EXPECT_EQ(job["bytes_read"], job["file_bytes"]);
  EXPECT_EQ(job["file_name"], "leads.csv");

  auto rejected =
      Send("GET", "/v1/contacts/imports/" + job["id"].get<std::string>() + "/rejected", {}, owner_.Headers(false));
  ASSERT_EQ(rejected.status, 200);
  EXPECT_NE(rejected.body.find("4,4,not a valid phone number,Bad,Number,555-0100"), std::string::npos) << rejected.body;
  auto listed = Send("GET", "/v1/contacts?list_id=" + list_id, {}, owner_.Headers(false));
  EXPECT_EQ(listed.data["data"].size(), 2u);
  EXPECT_EQ(listed.data["data"][0]["tags"], json({"show", "2025"}));
  auto jobs = Send("GET", "/v1/contacts/imports", {}, owner_.Headers(false));
  EXPECT_EQ(jobs.data["data"].size(), 1u);

  // The same upload again adds nothing.
  auto again = Send("POST", "/v1/contacts/imports" + query, csv, headers);
  ASSERT_EQ(again.status, 202);
  json second = WaitForImport(again.data["id"]);
  EXPECT_EQ(second["accepted"], 0);
  EXPECT_EQ(second["duplicates"], 3);
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), 2);
}

TEST_F(ContactRoutesTest, DoNotCallListThroughTheApi) {
  auto added = Send("POST", "/v1/dnc", R"({"number":"(415) 555-2671","note":"asked twice"})", owner_.Headers());
  ASSERT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(added.data["number"], "+14155552671");
  EXPECT_EQ(Send("POST", "/v1/dnc", R"({"number":"+14155552671"})", owner_.Headers()).status, 200);
  ASSERT_EQ(Send("POST", "/v1/dnc", R"({"number":"+1 212 *"})", owner_.Headers()).status, 201);
  EXPECT_EQ(Send("POST", "/v1/dnc", R"({"number":"*"})", owner_.Headers()).status, 400);

  auto check = Send("GET", "/v1/dnc/check?number=%2B12125550100", {}, owner_.Headers(false));
  EXPECT_TRUE(check.data["blocked"]);
  EXPECT_EQ(check.data["matches"][0]["number"], "+1212*");
  auto entries = Send("GET", "/v1/dnc?limit=1", {}, owner_.Headers(false));
  ASSERT_EQ(entries.status, 200) << entries.body;
  ASSERT_EQ(entries.data["data"].size(), 1u);
  std::string cursor = entries.data["next_cursor"];
  ASSERT_EQ(cursor[0], '+');
  auto next = Send("GET", "/v1/dnc?limit=1&cursor=%2B" + cursor.substr(1), {}, owner_.Headers(false));
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(next.data["data"].size(), 1u);
  EXPECT_EQ(Send("GET", "/v1/dnc?kind=nope", {}, owner_.Headers(false)).status, 400);

  EXPECT_EQ(Send("POST", "/v1/dnc/opt-outs", R"({"number":"+13055550199","source":"sms"})", owner_.Headers()).status,
            204);
  auto export_csv = Send("GET", "/v1/dnc/export", {}, owner_.Headers(false));
  ASSERT_EQ(export_csv.status, 200);
  EXPECT_NE(export_csv.body.find("+13055550199,tenant,sms,opt-out,"), std::string::npos) << export_csv.body;

  EXPECT_EQ(Send("DELETE", "/v1/dnc/%2B14155552671", {}, owner_.Headers()).status, 204);
  EXPECT_EQ(Send("DELETE", "/v1/dnc/%2B14155552671", {}, owner_.Headers()).status, 404);
  EXPECT_FALSE(Send("GET", "/v1/dnc/check?number=4155552671", {}, owner_.Headers(false)).data["blocked"]);

  auto headers = owner_.Headers();
  headers.emplace_back("Content-Type", "text/plain");
  auto registry = Send("POST", "/v1/dnc/registry-imports?registry=us_national&file_date=2026-01-15",
                       "4155550101\n4155550102\nnot a number\n", headers);
  ASSERT_EQ(registry.status, 201) << registry.body;
  EXPECT_EQ(registry.data["entries"], 2);
  EXPECT_EQ(registry.data["rejected"], 1);
  EXPECT_TRUE(Send("GET", "/v1/dnc/check?number=%2B14155550102", {}, owner_.Headers(false)).data["blocked"]);
  EXPECT_EQ(Send("GET", "/v1/dnc?kind=registry", {}, owner_.Headers(false)).data["data"].size(), 2u);

  // The tenant's own list, imported from a file: numbers in any format, wildcards, junk counted.
  auto imported = Send("POST", "/v1/dnc/imports?source=crm-export",
                       "(305) 555-0111\n+1 305 555 0112\n+1 646 *\n(305) 555-0111\nnonsense\n", headers);
  ASSERT_EQ(imported.status, 200) << imported.body;
  EXPECT_EQ(imported.data["added"], 3);
  EXPECT_EQ(imported.data["already_listed"], 1);
  EXPECT_EQ(imported.data["rejected"], 1);
  ASSERT_EQ(imported.data["errors"].size(), 1u);
  EXPECT_NE(imported.data["errors"][0].get<std::string>().find("line 5"), std::string::npos) << imported.body;
  auto wildcard = Send("GET", "/v1/dnc/check?number=%2B16465550100", {}, owner_.Headers(false));
  EXPECT_TRUE(wildcard.data["blocked"]);
  EXPECT_EQ(wildcard.data["matches"][0]["source"], "crm-export");
}

TEST_F(ContactRoutesTest, OperatorsKeepThePlatformListThatBindsEveryTenant) {
  auto ops = OperatorLogin();
  auto added = Send("POST", "/v1/admin/dnc", R"({"number":"+1 (786) 555-0190","note":"litigator"})", ops);
  ASSERT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(added.data["number"], "+17865550190");
  EXPECT_EQ(Send("POST", "/v1/admin/dnc", R"({"number":"+17865550190"})", ops).status, 200);
  EXPECT_EQ(Send("POST", "/v1/admin/dnc", R"({"number":"call me"})", ops).data["field"], "number");
  // Tenants cannot edit it...
  EXPECT_EQ(Send("POST", "/v1/admin/dnc", R"({"number":"+17865550191"})", owner_.Headers()).status, 401);
  EXPECT_EQ(Send("DELETE", "/v1/dnc/%2B17865550190", {}, owner_.Headers()).status, 404);
  // ...and it binds them all.
  auto other = SignUp("second@example.com");
  for (const auto* session : {&owner_, &other}) {
    auto check = Send("GET", "/v1/dnc/check?number=%2B17865550190", {}, session->Headers(false));
    ASSERT_EQ(check.status, 200) << check.body;
    EXPECT_TRUE(check.data["blocked"]);
    EXPECT_EQ(check.data["matches"][0]["kind"], "platform");
  }
  auto listed = Send("GET", "/v1/admin/dnc", {}, ops);
  ASSERT_EQ(listed.status, 200) << listed.body;
  ASSERT_EQ(listed.data["data"].size(), 1u);
  EXPECT_EQ(listed.data["data"][0]["note"], "litigator");
  EXPECT_EQ(Send("DELETE", "/v1/admin/dnc/%2B17865550190", {}, ops).status, 204);
  EXPECT_EQ(Send("DELETE", "/v1/admin/dnc/%2B17865550190", {}, ops).status, 404);
  EXPECT_FALSE(Send("GET", "/v1/dnc/check?number=%2B17865550190", {}, owner_.Headers(false)).data["blocked"]);
}

}  // namespace
}  // namespace clozit::api::test
