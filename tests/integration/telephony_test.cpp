// Telephony end to end: `clozit serve` with its embedded carrier emulator.
//
// An operator places calls on the platform's Twilio and Telnyx accounts (both
// point at the emulator); the emulator posts signed webhooks back to the
// server's public endpoints, which verify them and move each call to its
// final state. Outcomes come from a scenario file (answer, machine, busy, no
// answer, invalid, reject). Also: duplicated and reordered deliveries end in
// the same state; unsigned or wrongly signed webhooks get 403 and store
// nothing; provider credentials never appear in API output or logs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "integration/harness.hpp"

namespace clozit::itest {
namespace {

using namespace std::chrono_literals;
using testing::HasSubstr;
using testing::Not;

constexpr const char* kOperatorPassword = "Night-Shift-2048";

http::Headers Key(const std::string& key) {
  http::Headers headers;
  headers.Set("Idempotency-Key", key);
  return headers;
}

struct Outcome {
  std::string to;
  bool machine_detection;
  std::string status;       // final
  std::string answered_by;  // "" when not checked
};

class TelephonyTest : public ServerTest {
 protected:
  void StartPlatform(const Env& extra = {}) {
    const std::string scenario = dir() + "/scenario.json";
    {
      std::ofstream out(scenario);
      out << R"({"default": {"persona": "answer", "talk_seconds": 2, "ring_seconds": 1},
                 "rules": [{"match": "+15550001001", "persona": "answer", "ring_seconds": 1, "talk_seconds": 2},
                           {"match": "+15550001002", "persona": "machine", "ring_seconds": 1, "talk_seconds": 2},
                           {"match": "+15550001003", "persona": "busy", "ring_seconds": 1},
                           {"match": "+15550001004", "persona": "no_answer"},
                           {"match": "+15550001005", "persona": "invalid"},
                           {"match": "+15550001006", "persona": "reject", "ring_seconds": 1}]})";
    }
    Env command_env = {{"CLOZIT_DATABASE__URL", database().url()},
                       {"CLOZIT_ACCOUNTS__ARGON2_OPSLIMIT", "1"},
                       {"CLOZIT_ACCOUNTS__ARGON2_MEMLIMIT_KIB", "8192"},
                       {"CLOZIT_OPERATOR_PASSWORD", kOperatorPassword}};
    auto created = RunClozit({"admin", "create-operator", "--email", "ops@example.com", "--name", "Olga Ops"},
                             command_env, dir(), 30s);
    ASSERT_EQ(created.exit_code, 0) << created.err;
    Env env = {{"CLOZIT_TELEPHONY__EMULATOR_SCENARIO", scenario},
               {"CLOZIT_TELEPHONY__EMULATOR_TIME_SCALE_PERCENT", "1"}};
    for (const auto& [name, value] : extra) env[name] = value;
    server_ = StartServer(env);
    ASSERT_NE(server_, nullptr);
    client_ = Client();
    auto login = client_->Post("/v1/admin/login", {{"email", "ops@example.com"}, {"password", kOperatorPassword}});
    ASSERT_EQ(login.status, 200) << login;
    op_ = Credentials::Operator(login.Cookie("clozit_operator_session").value_or(""),
                                login.Json().value("csrf_token", ""));
    auto accounts = client_->Get("/v1/admin/provider-accounts", &op_);
    ASSERT_EQ(accounts.status, 200) << accounts;
    const json listed = accounts.Json();
    for (const auto& account : listed["data"]) {
      if (account.value("managed_by", json()) == "embedded-emulator-twilio") twilio_ = account;
      if (account.value("managed_by", json()) == "embedded-emulator-telnyx") telnyx_ = account;
    }
    ASSERT_TRUE(twilio_.is_object() && telnyx_.is_object()) << accounts;
    EXPECT_TRUE(twilio_.value("is_default", false));
    tenant_ = SignUp(*client_, "caller");
  }

  json PlaceCall(const json& account, const std::string& to, bool machine_detection, int expect_status = 201) {
    auto placed = client_->Post("/v1/admin/calls",
                                {{"tenant_id", tenant_.tenant_id},
                                 {"account_id", account.value("id", "")},
                                 {"from", "+15550009999"},
                                 {"to", to},
                                 {"machine_detection", machine_detection},
                                 {"ring_timeout_seconds", 5}},
                                &op_);
    EXPECT_EQ(placed.status, expect_status) << placed;
    return placed.Json();
  }

  /// Polls the tenant's view of the call until it is final.
  json WaitFinal(const std::string& call_id) {
    json call;
    for (int attempt = 0; attempt < 300; ++attempt) {
      auto got = client_->Get("/v1/calls/" + call_id, &tenant_.cookie);
      EXPECT_EQ(got.status, 200) << got;
      call = got.Json();
      const std::string status = call.value("status", "");
      if (status != "queued" && status != "initiated" && status != "ringing" && status != "in_progress") {
        // AMD may land just after the hangup; give late events a moment, then read again.
        std::this_thread::sleep_for(150ms);
        return client_->Get("/v1/calls/" + call_id, &tenant_.cookie).Json();
      }
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "call " << call_id << " never ended: " << call.dump();
    return call;
  }

  void ExpectOutcomes(const json& account, const std::vector<Outcome>& outcomes) {
    for (const auto& outcome : outcomes) {
      SCOPED_TRACE(account.value("provider", "") + " " + outcome.to);
      json placed = PlaceCall(account, outcome.to, outcome.machine_detection);
      ASSERT_THAT(placed.value("id", ""), testing::StartsWith("cal_"));
      json call = WaitFinal(placed.value("id", ""));
      EXPECT_EQ(call.value("status", ""), outcome.status) << call.dump();
      if (!outcome.answered_by.empty()) {
        EXPECT_EQ(call.value("answered_by", json()), outcome.answered_by) << call;
      }
      EXPECT_FALSE(call["ended_at"].is_null()) << call;
      EXPECT_FALSE(call["events"].empty()) << call;
      if (outcome.status == "completed") {
        EXPECT_FALSE(call["answered_at"].is_null()) << call;
      }
      for (const auto& event : call["events"]) EXPECT_NE(event.value("effect", ""), "pending") << call;
    }
  }

  int64_t Count(const std::string& sql) {
    auto rows = database().Direct().Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    return rows.ok() && !rows->empty() ? (*rows)[0].Int(0) : -1;
  }

  ServerProcess* server_ = nullptr;
  std::unique_ptr<TestClient> client_;
  Credentials op_;
  json twilio_;
  json telnyx_;
  Account tenant_;
};

const std::vector<Outcome> kOutcomes = {
    {"+15550001001", false, "completed", ""}, {"+15550001002", true, "completed", "machine"},
    {"+15550001003", false, "busy", ""},      {"+15550001004", false, "no_answer", ""},
    {"+15550001006", false, "failed", ""},
};

TEST_P(TelephonyTest, SignedWebhooksFromTheEmulatorMoveEveryCallToItsOutcome) {
  ASSERT_NO_FATAL_FAILURE(StartPlatform());
  ExpectOutcomes(twilio_, kOutcomes);
  ExpectOutcomes(telnyx_, kOutcomes);

  // The answered call's events, in the shared vocabulary.
  auto calls = ListAll(*client_, "/v1/calls?to=%2B15550001001", tenant_.cookie);
  ASSERT_EQ(calls.size(), 2u);
  for (const auto& listed : calls) {
    json call = client_->Get("/v1/calls/" + listed.value("id", ""), &tenant_.cookie).Json();
    std::vector<std::string> kinds;
    for (const auto& event : call["events"]) kinds.push_back(event.value("kind", ""));
    EXPECT_THAT(kinds, testing::Contains("answered")) << call;
    EXPECT_THAT(kinds, testing::Contains("ended")) << call;
    EXPECT_EQ(call.value("hangup_cause", ""), call.value("provider", "") == "telnyx" ? "normal_clearing" : "completed");
  }
  // Filters and pagination.
  EXPECT_EQ(ListAll(*client_, "/v1/calls?status=busy", tenant_.cookie).size(), 2u);
  auto first = client_->Get("/v1/calls?limit=3", &tenant_.cookie);
  ASSERT_EQ(first.status, 200) << first;
  EXPECT_EQ(first.Json()["data"].size(), 3u);
  EXPECT_TRUE(first.Json().value("has_more", false));
  EXPECT_EQ(ListAll(*client_, "/v1/calls", tenant_.cookie).size(), 2 * kOutcomes.size());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM telephony_raw_events"),
            Count("SELECT COUNT(*) FROM telephony_call_events") + Count("SELECT COUNT(*) FROM telephony_raw_events "
                                                                        "WHERE outcome NOT IN ('applied', 'stale', "
                                                                        "'pending')"));
}

TEST_P(TelephonyTest, InvalidNumberIsRefusedWithAStableCodeAndLeavesAFailedCall) {
  ASSERT_NO_FATAL_FAILURE(StartPlatform());
  for (const json* account : {&twilio_, &telnyx_}) {
    SCOPED_TRACE(account->value("provider", ""));
    auto placed = client_->Post("/v1/admin/calls",
                                {{"tenant_id", tenant_.tenant_id},
                                 {"account_id", account->value("id", "")},
                                 {"from", "+15550009999"},
                                 {"to", "+15550001005"}},
                                &op_);
    ExpectProblem(placed, 400, "invalid_argument", "to");
  }
  auto failed = ListAll(*client_, "/v1/calls?to=%2B15550001005", tenant_.cookie);
  ASSERT_EQ(failed.size(), 2u);
  for (const auto& call : failed) {
    EXPECT_EQ(call.value("status", ""), "failed");
    EXPECT_EQ(call.value("error_code", ""), "invalid_argument");
    EXPECT_TRUE(call["provider_call_id"].is_null());
  }
  // Our own validation answers before any provider is asked.
  ExpectProblem(
      client_->Post("/v1/admin/calls", {{"tenant_id", tenant_.tenant_id}, {"from", "+1555"}, {"to", "x"}}, &op_), 400,
      "invalid_argument", "to");
  ExpectProblem(
      client_->Post("/v1/admin/calls",
                    {{"tenant_id", "ten_01ZZZZZZZZZZZZZZZZZZZZZZZZ"}, {"from", "+15550009999"}, {"to", "+15550001001"}},
                    &op_),
      404, "not_found", "tenant_id");
}

TEST_P(TelephonyTest, DuplicatedAndReorderedDeliveriesEndInTheSameState) {
  ASSERT_NO_FATAL_FAILURE(StartPlatform());
  TestClient emulator(twilio_.value("api_base", ""));
  auto faults = emulator.Post("/_emulator/faults", {{"duplicate_webhooks", true}, {"reorder_webhooks", true}});
  ASSERT_LT(faults.status, 300) << faults;
  ExpectOutcomes(twilio_, kOutcomes);
  ExpectOutcomes(telnyx_, kOutcomes);
  // Every delivery was stored; the copies were recognised as such.
  EXPECT_GT(Count("SELECT COUNT(*) FROM telephony_raw_events WHERE outcome = 'duplicate'"), 0);
  EXPECT_GT(Count("SELECT COUNT(*) FROM telephony_raw_events"), Count("SELECT COUNT(*) FROM telephony_call_events"));
  // Reordering shows up as events that arrived too late to move their call.
  EXPECT_GT(Count("SELECT COUNT(*) FROM telephony_call_events WHERE effect = 'stale'"), 0);
}

TEST_P(TelephonyTest, UnsignedOrWronglySignedWebhooksAreRefusedAndNothingIsStored) {
  ASSERT_NO_FATAL_FAILURE(StartPlatform());
  const std::string twilio_path = "/v1/webhooks/twilio/" + twilio_.value("id", "") + "/status";
  const std::string telnyx_path = "/v1/webhooks/telnyx/" + telnyx_.value("id", "");
  const std::string form =
      "AccountSid=" + twilio_.value("account_sid", "") +
      "&CallSid=CA0123456789abcdef0123456789abcdef&CallStatus=completed&SequenceNumber=3&To=%2B15550001001";
  http::Headers form_type;
  form_type.Set("Content-Type", "application/x-www-form-urlencoded");
  auto missing = client_->SendRaw("POST", twilio_path, form, form_type);
  ExpectProblem(missing, 403, "permission_denied");
  http::Headers forged = form_type;
  forged.Set("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
  ExpectProblem(client_->SendRaw("POST", twilio_path, form, forged), 403, "permission_denied");

  const std::string body =
      R"({"data":{"event_type":"call.hangup","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","payload":{"call_control_id":"v3:x","hangup_cause":"normal_clearing"}}})";
  http::Headers json_type;
  json_type.Set("Content-Type", "application/json");
  ExpectProblem(client_->SendRaw("POST", telnyx_path, body, json_type), 403, "permission_denied");
  http::Headers stale = json_type;
  stale.Set("telnyx-timestamp", "1700000000");
  stale.Set("telnyx-signature-ed25519",
            "0PWVo189R58m/SmUi7G1Ppc6JGQ4hlaUtImK+xGxrh93j9DFB8uDG1vMA6WDGtxDtsN2gFbn7KjUPN5JIYSEBw==");
  ExpectProblem(client_->SendRaw("POST", telnyx_path, body, stale), 403, "permission_denied");
  // An account that does not exist, or the wrong provider's endpoint, looks the same.
  ExpectProblem(client_->SendRaw("POST", "/v1/webhooks/twilio/pac_01ZZZZZZZZZZZZZZZZZZZZZZZZ/status", form, forged),
                403, "permission_denied");
  ExpectProblem(client_->SendRaw("POST", "/v1/webhooks/telnyx/" + twilio_.value("id", ""), body, stale), 403,
                "permission_denied");

  EXPECT_EQ(Count("SELECT COUNT(*) FROM telephony_raw_events"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM telephony_call_events"), 0);
  std::this_thread::sleep_for(200ms);  // the log is written by an async thread
  const std::string log = server_->Log();
  EXPECT_THAT(log, HasSubstr("telephony webhook refused: bad or missing signature"));
  EXPECT_THAT(log, HasSubstr("telephony webhook refused: unknown provider account"));
  EXPECT_THAT(log, Not(HasSubstr("+15550001001")));
}

TEST_P(TelephonyTest, CredentialsNeverComeBackFromTheApiNorReachTheLogs) {
  ASSERT_NO_FATAL_FAILURE(StartPlatform());
  const std::string origin = twilio_.value("api_base", "");
  const std::string twilio_token = "tok-secret-1234567890-abcdef";
  const std::string telnyx_key = "KEY-secret-0987654321-zyxwvu";

  // A tenant may not send requests wherever it likes.
  ExpectProblem(client_->Post("/v1/provider-accounts",
                              {{"provider", "twilio"},
                               {"name", "elsewhere"},
                               {"api_base", "http://169.254.169.254"},
                               {"account_sid", "AC0123456789abcdef0123456789abcdef"},
                               {"auth_token", twilio_token}},
                              &tenant_.cookie),
                400, "invalid_argument", "api_base");
  ExpectProblem(client_->Post("/v1/provider-accounts", {{"provider", "twilio"}, {"name", "no token"}}, &tenant_.cookie),
                400, "invalid_argument", "account_sid");

  auto twilio = client_->Post("/v1/provider-accounts",
                              {{"provider", "twilio"},
                               {"name", "our twilio"},
                               {"api_base", origin},
                               {"account_sid", "AC0123456789abcdef0123456789abcdef"},
                               {"auth_token", twilio_token}},
                              &tenant_.cookie);
  ASSERT_EQ(twilio.status, 201) << twilio;
  EXPECT_EQ(twilio.Json().value("credential_hint", ""), "••••cdef");
  EXPECT_TRUE(twilio.Json().value("is_default", false)) << "a tenant's first account is its default";
  auto telnyx = client_->Post("/v1/provider-accounts",
                              {{"provider", "telnyx"},
                               {"name", "our telnyx"},
                               {"api_base", origin},
                               {"api_key", telnyx_key},
                               {"connection_id", "conn-1"},
                               {"public_key", telnyx_.value("public_key", "")}},
                              &tenant_.cookie);
  ASSERT_EQ(telnyx.status, 201) << telnyx;
  const std::string twilio_id = twilio.Json().value("id", "");
  const std::string telnyx_id = telnyx.Json().value("id", "");

  // The connectivity check goes to the carrier: the emulator knows only its own Twilio token.
  auto refused = client_->Post("/v1/provider-accounts/" + twilio_id + "/check", json::object(), &tenant_.cookie);
  ASSERT_EQ(refused.status, 200) << refused;
  EXPECT_FALSE(refused.Json().value("ok", true));
  EXPECT_EQ(refused.Json().value("error_code", ""), "unauthenticated");
  auto accepted = client_->Post("/v1/provider-accounts/" + telnyx_id + "/check", json::object(), &tenant_.cookie);
  ASSERT_EQ(accepted.status, 200) << accepted;
  EXPECT_TRUE(accepted.Json().value("ok", false)) << accepted;
  auto platform_check =
      client_->Post("/v1/admin/provider-accounts/" + twilio_.value("id", "") + "/check", json::object(), &op_);
  ASSERT_EQ(platform_check.status, 200) << platform_check;
  EXPECT_TRUE(platform_check.Json().value("ok", false)) << platform_check;

  std::vector<Response> outputs = {twilio,
                                   telnyx,
                                   refused,
                                   accepted,
                                   client_->Get("/v1/provider-accounts", &tenant_.cookie),
                                   client_->Get("/v1/provider-accounts/" + twilio_id, &tenant_.cookie),
                                   client_->Get("/v1/provider-accounts/" + telnyx_id, &tenant_.cookie),
                                   client_->Get("/v1/admin/provider-accounts", &op_),
                                   client_->Get("/v1/audit-log?limit=200", &tenant_.cookie)};
  for (const auto& output : outputs) {
    EXPECT_THAT(output.body, Not(HasSubstr(twilio_token)));
    EXPECT_THAT(output.body, Not(HasSubstr(telnyx_key)));
    EXPECT_THAT(output.body, Not(HasSubstr("auth_token")));
    EXPECT_THAT(output.body, Not(HasSubstr("sealed")));
  }
  // Sealed at rest.
  auto rows = database().Direct().Query("SELECT sealed_secret FROM telephony_accounts");
  ASSERT_TRUE(rows.ok());
  for (const auto& row : *rows) {
    EXPECT_THAT(row.Text(0), Not(HasSubstr("secret")));
    EXPECT_GT(row.Text(0).size(), 40u);
  }

  // Deleting an account hides it; the tenant's calls then go through the platform default again.
  ASSERT_EQ(client_->Send("DELETE", "/v1/provider-accounts/" + twilio_id, std::nullopt, &tenant_.cookie).status, 204);
  ExpectProblem(client_->Get("/v1/provider-accounts/" + twilio_id, &tenant_.cookie), 404, "not_found");
  EXPECT_EQ(ListAll(*client_, "/v1/provider-accounts", tenant_.cookie).size(), 1u);

  std::this_thread::sleep_for(200ms);
  const std::string log = server_->Log();
  EXPECT_THAT(log, Not(HasSubstr(twilio_token)));
  EXPECT_THAT(log, Not(HasSubstr(telnyx_key)));
  EXPECT_THAT(log, HasSubstr("embedded carrier emulator on"));
}

TEST_P(TelephonyTest, TheCredentialsKeyFileIsPrivateAndReused) {
  if (backend() != Backend::kSqlite) GTEST_SKIP() << "the key file sits beside the SQLite database";
  ASSERT_NO_FATAL_FAILURE(StartPlatform());
  const std::string db_path = database().url().substr(7);
  const std::string key_file = std::filesystem::path(db_path).parent_path().string() + "/telephony-credentials.key";
  ASSERT_TRUE(std::filesystem::exists(key_file)) << key_file;
  EXPECT_EQ(std::filesystem::status(key_file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::ifstream in(key_file);
  std::string before((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A restart reuses the key: the platform accounts it sealed still open (the check reaches the emulator).
  server_->Stop();
  server_ = StartServer({{"CLOZIT_TELEPHONY__EMULATOR_TIME_SCALE_PERCENT", "1"}});
  ASSERT_NE(server_, nullptr);
  client_ = Client();
  auto login = client_->Post("/v1/admin/login", {{"email", "ops@example.com"}, {"password", kOperatorPassword}});
  ASSERT_EQ(login.status, 200) << login;
  op_ =
      Credentials::Operator(login.Cookie("clozit_operator_session").value_or(""), login.Json().value("csrf_token", ""));
  auto check = client_->Post("/v1/admin/provider-accounts/" + twilio_.value("id", "") + "/check", json::object(), &op_);
  ASSERT_EQ(check.status, 200) << check;
  EXPECT_TRUE(check.Json().value("ok", false)) << check;
  std::ifstream again(key_file);
  std::string after((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  EXPECT_EQ(before, after);
}

TEST_P(TelephonyTest, NumbersAreChargedBeforeTheyAreBoughtGivenBackOnRefusalReleasedAndPooled) {
  ASSERT_NO_FATAL_FAILURE(StartPlatform());
  auto search = client_->Get("/v1/phone-numbers/available?country=US&limit=5", &tenant_.cookie);
  ASSERT_EQ(search.status, 200) << search;
  const json offered = search.Json()["data"];
  ASSERT_GE(offered.size(), 3u) << search;
  const std::string first = offered[0].value("phone_number", "");
  const std::string second = offered[1].value("phone_number", "");
  ExpectProblem(client_->Get("/v1/phone-numbers/available?country=usa", &tenant_.cookie), 400, "invalid_argument",
                "country");

  ExpectProblem(client_->Post("/v1/phone-numbers", {{"phone_number", first}}, &tenant_.cookie), 400, "invalid_argument",
                "Idempotency-Key");
  // No credits: refused, nothing bought, nothing held.
  ExpectProblem(client_->Post("/v1/phone-numbers", {{"phone_number", first}}, &tenant_.cookie, Key("buy-1")), 402,
                "insufficient_credits");
  EXPECT_TRUE(ListAll(*client_, "/v1/phone-numbers", tenant_.cookie).empty());

  auto granted = client_->Post(
      "/v1/admin/tenants/" + tenant_.tenant_id + "/credit-grants",
      {{"credits", "10"}, {"price_minor", 1000}, {"currency", "USD"}, {"payment_reference", "telephony-test"}}, &op_,
      Key("grant"));
  ASSERT_EQ(granted.status, 201) << granted;
  auto balance = [&] { return client_->Get("/v1/credits", &tenant_.cookie).Json().value("available", ""); };
  EXPECT_EQ(balance(), "10");

  auto bought = client_->Post("/v1/phone-numbers", {{"phone_number", first}}, &tenant_.cookie, Key("buy-2"));
  ASSERT_EQ(bought.status, 201) << bought;
  const json number = bought.Json();
  EXPECT_EQ(number.value("status", ""), "active");
  EXPECT_EQ(number.value("source", ""), "purchased");
  EXPECT_EQ(number.value("provider", ""), "twilio");
  EXPECT_EQ(number["capabilities"], json::array({"voice"}));
  EXPECT_FALSE(number["purchased_at"].is_null());
  EXPECT_FALSE(number["next_fee_at"].is_null());
  EXPECT_EQ(balance(), "7.5") << "first monthly (2) and regulatory (0.5) fee";
  ExpectProblem(client_->Post("/v1/phone-numbers", {{"phone_number", first}}, &tenant_.cookie, Key("buy-3")), 409,
                "conflict", "phone_number");
  EXPECT_EQ(balance(), "7.5");

  // The carrier fails the purchase: the fees come back and the number is recorded as failed.
  TestClient emulator(twilio_.value("api_base", ""));
  ASSERT_LT(emulator.Post("/_emulator/faults", {{"fail_next", {1}}}).status, 300);
  auto refused = client_->Post("/v1/phone-numbers", {{"phone_number", second}}, &tenant_.cookie, Key("buy-4"));
  ExpectProblem(refused, 503, "unavailable");
  EXPECT_EQ(balance(), "7.5");
  auto failed = ListAll(*client_, "/v1/phone-numbers?status=failed", tenant_.cookie);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].value("phone_number", ""), second);
  EXPECT_EQ(failed[0].value("error_code", ""), "unavailable");

  // A pool presents the number as caller id.
  auto pool = client_->Post("/v1/caller-id-pools", {{"name", "sales"}}, &tenant_.cookie);
  ASSERT_EQ(pool.status, 201) << pool;
  const std::string pool_id = pool.Json().value("id", "");
  ExpectProblem(client_->Post("/v1/caller-id-pools/" + pool_id + "/numbers", {{"number_id", failed[0].value("id", "")}},
                              &tenant_.cookie),
                409, "conflict", "number_id");
  auto added = client_->Post("/v1/caller-id-pools/" + pool_id + "/numbers", {{"number_id", number.value("id", "")}},
                             &tenant_.cookie);
  ASSERT_EQ(added.status, 200) << added;
  EXPECT_EQ(added.Json()["number_ids"], json::array({number.value("id", "")}));
  auto call = client_->Post(
      "/v1/admin/calls", {{"tenant_id", tenant_.tenant_id}, {"from_pool_id", pool_id}, {"to", "+15550001001"}}, &op_);
  ASSERT_EQ(call.status, 201) << call;
  EXPECT_EQ(call.Json().value("from", ""), first);
  EXPECT_EQ(WaitFinal(call.Json().value("id", "")).value("status", ""), "completed");

  // Release: gone at the carrier, no further fees, out of the pool; nothing refunded.
  auto released = client_->Send("DELETE", "/v1/phone-numbers/" + number.value("id", ""), std::nullopt, &tenant_.cookie);
  ASSERT_EQ(released.status, 200) << released;
  EXPECT_EQ(released.Json().value("status", ""), "released");
  EXPECT_TRUE(released.Json()["next_fee_at"].is_null());
  EXPECT_FALSE(released.Json()["released_at"].is_null());
  EXPECT_EQ(balance(), "7.5");
  EXPECT_TRUE(client_->Get("/v1/caller-id-pools/" + pool_id, &tenant_.cookie).Json()["number_ids"].empty());
  ExpectProblem(client_->Send("DELETE", "/v1/phone-numbers/" + number.value("id", ""), std::nullopt, &tenant_.cookie),
                409, "conflict");
  // Released, it can be bought again.
  ASSERT_EQ(client_->Post("/v1/phone-numbers", {{"phone_number", first}}, &tenant_.cookie, Key("buy-5")).status, 201);
  EXPECT_EQ(balance(), "5");
}

TEST_P(TelephonyTest, ANumberHeldAtTheTenantsOwnAccountIsImportedWithoutFees) {
  ASSERT_NO_FATAL_FAILURE(StartPlatform());
  // The tenant's own Telnyx account (the emulator accepts any API key) holds a number bought there directly.
  auto account = client_->Post("/v1/provider-accounts",
                               {{"provider", "telnyx"},
                                {"name", "own telnyx"},
                                {"api_base", telnyx_.value("api_base", "")},
                                {"api_key", "own-key-0123456789abcdef"},
                                {"connection_id", "own-conn"},
                                {"public_key", telnyx_.value("public_key", "")}},
                               &tenant_.cookie);
  ASSERT_EQ(account.status, 201) << account;
  const std::string account_id = account.Json().value("id", "");
  auto search =
      client_->Get("/v1/phone-numbers/available?limit=2&account_id=" + account_id, &tenant_.cookie).Json()["data"];
  ASSERT_FALSE(search.empty());
  const std::string held = search[0].value("phone_number", "");
  TestClient carrier(telnyx_.value("api_base", ""));
  http::Headers auth;
  auth.Set("Authorization", "Bearer own-key-0123456789abcdef");
  auth.Set("Content-Type", "application/json");
  auto ordered =
      carrier.SendRaw("POST", "/v2/number_orders", json{{"phone_numbers", {{{"phone_number", held}}}}}.dump(), auth);
  ASSERT_LT(ordered.status, 300) << ordered;

  ExpectProblem(client_->Post("/v1/phone-numbers/imports",
                              {{"phone_number", "+15550007777"}, {"account_id", account_id}}, &tenant_.cookie),
                404, "not_found", "phone_number");
  ExpectProblem(client_->Post("/v1/phone-numbers/imports",
                              {{"phone_number", held}, {"account_id", twilio_.value("id", "")}}, &tenant_.cookie),
                404, "not_found", "account_id");
  auto imported =
      client_->Post("/v1/phone-numbers/imports", {{"phone_number", held}, {"account_id", account_id}}, &tenant_.cookie);
  ASSERT_EQ(imported.status, 201) << imported;
  EXPECT_EQ(imported.Json().value("source", ""), "imported");
  EXPECT_EQ(imported.Json().value("provider", ""), "telnyx");
  EXPECT_TRUE(imported.Json()["next_fee_at"].is_null());
  EXPECT_EQ(client_->Get("/v1/credits", &tenant_.cookie).Json().value("available", ""), "0");
  auto released =
      client_->Send("DELETE", "/v1/phone-numbers/" + imported.Json().value("id", ""), std::nullopt, &tenant_.cookie);
  ASSERT_EQ(released.status, 200) << released;
  EXPECT_EQ(released.Json().value("status", ""), "released");
}

CLOZIT_INSTANTIATE_BACKENDS(TelephonyTest);

}  // namespace
}  // namespace clozit::itest
