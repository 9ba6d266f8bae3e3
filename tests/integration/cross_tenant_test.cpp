// Tenant isolation over every route the API declares.
//
// Tenant A creates one of each resource; tenant B's owner, once with a cookie
// session and once with an owner API key, then calls every route in
// Api::routes() with A's ids substituted. Routes addressing a resource by
// {id} must answer 404 exactly as for a missing row; list routes must show
// none of A's data; operator routes refuse tenants. A route this walk does not
// know how to exercise fails the test, so a new route cannot ship without
// isolation coverage.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "accounts/accounts.hpp"
#include "api/api.hpp"
#include "common/clock.hpp"
#include "common/config.hpp"
#include "http/metrics.hpp"
#include "integration/harness.hpp"
#include "privacy/audit_log.hpp"
#include "storage/migrations.hpp"

namespace clozit::itest {
namespace {

using testing::StartsWith;

struct RouteKey {
  std::string method;
  std::string pattern;
  bool operator<(const RouteKey& other) const {
    return std::tie(method, pattern) < std::tie(other.method, other.pattern);
  }
};

std::ostream& operator<<(std::ostream& out, const RouteKey& route) {
  return out << route.method << " " << route.pattern;
}

/// The routes the server declares, read from an Api wired the way src/app/application.cpp wires it.
std::vector<RouteKey> DeclaredRoutes(const std::string& dir) {
  Config config;
  config.database.url = "sqlite:" + dir + "/routes.db";
  config.accounts.argon2_opslimit = 1;
  config.accounts.argon2_memlimit_kib = 8192;
  storage::OpenOptions options;
  options.url = config.database.url;
  auto db = storage::Open(options);
  if (!db) {
    ADD_FAILURE() << "cannot open " << options.url << ": " << db.error().message;
    return {};
  }
  SystemClock clock;
  SystemRandom random;
  auto migrated = storage::Migrate(**db, clock);
  if (!migrated) ADD_FAILURE() << "migrations failed: " << migrated.error().message;
  privacy::AuditLog audit(clock, random);
  accounts::Accounts accounts(**db, clock, random, audit, config.accounts);
  http::Metrics metrics;
  api::Api api(api::ApiDeps{**db, accounts, audit, metrics, clock, random, config});
  std::vector<RouteKey> routes;
  for (const auto& spec : api.routes()) routes.push_back({spec.method, spec.pattern});
  return routes;
}

// Every {parameter} of the pattern becomes `id` (operator routes may name a tenant and a resource of it).
std::string Substitute(const std::string& pattern, const std::string& id) {
  std::string out = pattern;
  for (auto open = out.find('{'); open != std::string::npos; open = out.find('{', open + id.size())) {
    out.replace(open, out.find('}', open) - open + 1, id);
  }
  return out;
}

http::Headers ContentType(std::string type) {
  http::Headers headers;
  headers.Set("Content-Type", std::move(type));
  return headers;
}

bool IsStateChanging(const std::string& method) { return method != "GET" && method != "HEAD"; }

class CrossTenantTest : public ServerTest {
 protected:
  /// Fails when `body` mentions any of tenant A's identifiers or personal data.
  void ExpectNoLeak(const std::string& what, const Response& response) {
    for (const auto& secret : a_private_) {
      EXPECT_EQ(response.body.find(secret), std::string::npos)
          << what << " leaked tenant A's \"" << secret << "\": " << response;
      for (const auto& [name, value] : response.headers.all()) {
        EXPECT_EQ(value.find(secret), std::string::npos) << what << " leaked \"" << secret << "\" in header " << name;
      }
    }
  }

  std::vector<std::string> a_private_;
};

TEST_P(CrossTenantTest, EveryRouteHidesOtherTenantsResources) {
  const std::vector<RouteKey> routes = DeclaredRoutes(dir());
  ASSERT_GT(routes.size(), 10u);

  ASSERT_NE(StartServer(), nullptr);
  auto client = Client();

  // ---- Tenant A: owner, an API key, an accepted invitation (a second user), a pending invitation.
  Account a = SignUp(*client, "tenant-a");
  ASSERT_FALSE(a.user_id.empty());
  json a_key = CreateApiKey(*client, a.cookie, "a-key", "admin");
  ASSERT_TRUE(a_key.contains("secret"));
  const std::string member_email = UniqueEmail("a-member");
  auto invited = client->Post("/v1/invitations", {{"email", member_email}, {"role", "member"}}, &a.cookie);
  ASSERT_EQ(invited.status, 201) << invited;
  const std::string accepted_invitation_id = invited.Json().value("id", "");
  EXPECT_EQ(invited.body.find("token"), std::string::npos) << "the invitation token must travel by email only";

  // The token only exists in the outbox mail.
  auto mail = database().Direct().Query("SELECT body FROM email_outbox WHERE to_address = $1", {member_email});
  ASSERT_TRUE(mail.ok()) << mail.error().message;
  ASSERT_EQ(mail->size(), 1u);
  std::smatch match;
  const std::string mail_body = (*mail)[0].Text(0);
  ASSERT_TRUE(std::regex_search(mail_body, match, std::regex(R"(:\s*([A-Za-z0-9_-]{20,})\s*$)"))) << mail_body;
  const std::string invitation_token = match[1].str();
  auto accepted = client->Post(
      "/v1/invitations/accept",
      {{"token", invitation_token}, {"name", "Amy Member"}, {"phone", "+14155552672"}, {"password", kPassword}});
  ASSERT_EQ(accepted.status, 201) << accepted;
  const std::string member_id = accepted.Json()["user"].value("id", "");
  ASSERT_THAT(member_id, StartsWith("usr_"));
  EXPECT_EQ(accepted.Json()["user"].value("tenant_id", ""), a.tenant_id);
  // A token works once.
  EXPECT_EQ(
      client
          ->Post(
              "/v1/invitations/accept",
              {{"token", invitation_token}, {"name", "Amy Again"}, {"phone", "+14155552672"}, {"password", kPassword}})
          .status,
      409);

  const std::string pending_email = UniqueEmail("a-pending");
  auto pending = client->Post("/v1/invitations", {{"email", pending_email}, {"role", "viewer"}}, &a.cookie);
  ASSERT_EQ(pending.status, 201) << pending;
  const std::string pending_invitation_id = pending.Json().value("id", "");

  // Billing: a refund request (refused: A bought nothing) and an adjustment request (written directly: filing
  // one through the API needs a settled charge).
  auto refund = client->Post("/v1/refund-requests", {{"purchase_id", "pur_01JAAAAAAAAAAAAAAAAAAAAAAA"}}, &a.cookie);
  ASSERT_EQ(refund.status, 201) << refund;
  const std::string a_refund_id = refund.Json().value("id", "");
  ASSERT_THAT(a_refund_id, StartsWith("rfd_"));
  EXPECT_EQ(refund.Json().value("reason_code", ""), "unknown_transaction");
  const std::string a_adjustment_id = "adj_01JAAAAAAAAAAAAAAAAAAAAAAA";
  auto inserted = database().Direct().Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_TRY(
        tx.Exec("INSERT INTO billing_adjustment_requests (id, tenant_id, description, status, restored, created_at, "
                "updated_at) VALUES ($1, $2, 'dropped call', 'pending', 0, 0, 0)",
                {a_adjustment_id, a.tenant_id}));
    return Ok();
  });
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  // A subscription of A's (written directly: subscribing through the API needs credits).
  const std::string a_subscription_id = "sub_01JAAAAAAAAAAAAAAAAAAAAAAA";
  auto subscribed = database().Direct().Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO billing_subscriptions (id, tenant_id, idempotency_key, status, plan_code, cancel_at_period_end, "
        "period, started_at, period_start, period_end, created_at, updated_at) "
        "VALUES ($1, $2, 'a-sub', 'active', 'growth', 0, 0, 0, 0, 4102444800000, 0, 0)",
        {a_subscription_id, a.tenant_id}));
    return Ok();
  });
  ASSERT_TRUE(subscribed.ok()) << subscribed.error().message;

  // Contacts: a list, a contact in it, an import, a do-not-call entry.
  auto a_list = client->Post("/v1/contact-lists", {{"name", "tenant-a spring leads"}}, &a.cookie);
  ASSERT_EQ(a_list.status, 201) << a_list;
  const std::string a_list_id = a_list.Json().value("id", "");
  const json consent = {{"type", "prior_express_written_consent"},
                        {"obtained_where", "web form"},
                        {"obtained_at", "2026-01-05T10:00:00Z"},
                        {"evidence", "https://example.com/consent/a"}};
  auto a_contact = client->Post(
      "/v1/contacts",
      {{"phone", "+14155552699"}, {"name", "Alice Privatecontact"}, {"list_ids", {a_list_id}}, {"consent", consent}},
      &a.cookie);
  ASSERT_EQ(a_contact.status, 201) << a_contact;
  const std::string a_contact_id = a_contact.Json().value("id", "");
  const std::string import_query =
      "?file_name=a.csv&consent_type=prior_express_written_consent&consent_where=web%20form"
      "&consent_at=2026-01-05T10:00:00Z&consent_evidence=ref-a";
  auto a_import = client->SendBytes("POST", "/v1/contacts/imports" + import_query,
                                    "phone,name\n+14155552698,Albert Privaterow\nnot-a-number,Bad Row\n", &a.cookie,
                                    ContentType("text/csv"));
  ASSERT_EQ(a_import.status, 202) << a_import;
  const std::string a_import_id = a_import.Json().value("id", "");
  ASSERT_EQ(client->Post("/v1/dnc", {{"number", "+14155552697"}}, &a.cookie).status, 201);

  // Telephony: A's own Telnyx account (creating one contacts no carrier) and a call on it (written directly:
  // placing one is an operator action).
  const std::string a_api_key = "KEYtenantAsecret0123456789";
  auto a_account = client->Post("/v1/provider-accounts",
                                {{"provider", "telnyx"},
                                 {"name", "tenant-a telnyx"},
                                 {"api_key", a_api_key},
                                 {"connection_id", "conn-tenant-a"},
                                 {"public_key", "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}},
                                &a.cookie);
  ASSERT_EQ(a_account.status, 201) << a_account;
  const std::string a_account_id = a_account.Json().value("id", "");
  const std::string a_call_id = "cal_01JAAAAAAAAAAAAAAAAAAAAAAA";
  auto call_inserted = database().Direct().Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO telephony_calls (id, tenant_id, account_id, provider, provider_call_id, direction, from_number, "
        "to_number, status, status_rank, created_at, updated_at) VALUES ($1, $2, $3, 'telnyx', 'v3:tenant-a-call', "
        "'outbound', '+14155552601', '+14155552602', 'completed', 4, 0, 0)",
        {a_call_id, a.tenant_id, a_account_id}));
    return Ok();
  });
  ASSERT_TRUE(call_inserted.ok()) << call_inserted.error().message;
  // A number imported from A's account (written directly: importing asks the carrier), in a caller-id pool.
  const std::string a_number_id = "num_01JAAAAAAAAAAAAAAAAAAAAAAA";
  auto number_inserted = database().Direct().Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO telephony_numbers (id, tenant_id, account_id, provider, provider_number_id, e164, country, "
        "number_type, capabilities, source, status, created_at, updated_at) VALUES ($1, $2, $3, 'telnyx', '77', "
        "'+14156712603', 'US', 'local', '[\"voice\"]', 'imported', 'active', 0, 0)",
        {a_number_id, a.tenant_id, a_account_id}));
    return Ok();
  });
  ASSERT_TRUE(number_inserted.ok()) << number_inserted.error().message;
  auto a_pool = client->Post("/v1/caller-id-pools", {{"name", "tenant-a pool"}}, &a.cookie);
  ASSERT_EQ(a_pool.status, 201) << a_pool;
  const std::string a_pool_id = a_pool.Json().value("id", "");
  auto a_pooled =
      client->Post("/v1/caller-id-pools/" + a_pool_id + "/numbers", {{"number_id", a_number_id}}, &a.cookie);
  ASSERT_EQ(a_pooled.status, 200) << a_pooled;

  a_private_ = {a.tenant_id,
                a_refund_id,
                a_adjustment_id,
                a_subscription_id,
                a.user_id,
                member_id,
                a_key.value("id", "?"),
                a_key.value("prefix", "?"),
                a_key.value("secret", "?"),
                accepted_invitation_id,
                pending_invitation_id,
                a.email,
                member_email,
                pending_email,
                a.cookie.session,
                a.cookie.csrf,
                "tenant-a Ltd",
                "Amy Member",
                "+14155552672",
                a_list_id,
                "tenant-a spring leads",
                a_contact_id,
                "Alice Privatecontact",
                "+14155552699",
                a_import_id,
                "Albert Privaterow",
                "+14155552698",
                "+14155552697",
                a_account_id,
                "tenant-a telnyx",
                "conn-tenant-a",
                a_api_key,
                a_call_id,
                "v3:tenant-a-call",
                "+14155552601",
                "+14155552602",
                a_number_id,
                "+14156712603",
                a_pool_id,
                "tenant-a pool"};
  for (const auto& value : a_private_) ASSERT_FALSE(value.empty() || value == "?");

  // ---- Tenant B's owner, with a cookie session and with an owner API key. B has data of its own.
  Account b = SignUp(*client, "tenant-b");
  json b_key = CreateApiKey(*client, b.cookie, "b-key", "owner");
  ASSERT_TRUE(b_key.contains("secret"));
  ASSERT_EQ(client->Post("/v1/invitations", {{"email", UniqueEmail("b-pending")}}, &b.cookie).status, 201);
  const std::vector<Credentials> b_credentials = {b.cookie, Credentials::Bearer(b_key.value("secret", ""))};

  // Which of A's resources each {id} route addresses.
  const std::map<std::string, std::vector<std::string>> a_ids = {
      {"/v1/users/{id}", {a.user_id, member_id}},
      {"/v1/api-keys/{id}", {a_key.value("id", "")}},
      {"/v1/invitations/{id}", {pending_invitation_id, accepted_invitation_id}},
      {"/v1/admin/tenants/{id}", {a.tenant_id}},
      {"/v1/refund-requests/{id}", {a_refund_id}},
      {"/v1/adjustment-requests/{id}", {a_adjustment_id}},
      {"/v1/admin/tenants/{id}/credit-grants", {a.tenant_id}},
      {"/v1/admin/tenants/{id}/reservations", {a.tenant_id}},
      {"/v1/admin/tenants/{id}/reservations/{reservation_id}/settle", {a.tenant_id}},
      {"/v1/admin/tenants/{id}/reservations/{reservation_id}/void", {a.tenant_id}},
      {"/v1/admin/tenants/{id}/suspension", {a.tenant_id}},
      {"/v1/admin/refund-requests/{id}", {a_refund_id}},
      {"/v1/admin/adjustment-requests/{id}", {a_adjustment_id}},
      {"/v1/admin/refund-requests/{id}/approve", {a_refund_id}},
      {"/v1/admin/refund-requests/{id}/reject", {a_refund_id}},
      {"/v1/admin/adjustment-requests/{id}/approve", {a_adjustment_id}},
      {"/v1/admin/adjustment-requests/{id}/reject", {a_adjustment_id}},
      {"/v1/admin/price-books/{version}", {"1"}},
      {"/v1/admin/price-books/{version}/publish", {"1"}},
      {"/v1/contact-lists/{id}", {a_list_id}},
      {"/v1/contacts/{id}", {a_contact_id}},
      {"/v1/contacts/{id}/consent-revocation", {a_contact_id}},
      {"/v1/contacts/imports/{id}", {a_import_id}},
      {"/v1/contacts/imports/{id}/rejected", {a_import_id}},
      {"/v1/dnc/{number}", {"+14155552697"}},
      {"/v1/admin/dnc/{number}", {"+14155552697"}},
      {"/v1/provider-accounts/{id}", {a_account_id}},
      {"/v1/provider-accounts/{id}/check", {a_account_id}},
      {"/v1/admin/provider-accounts/{id}", {a_account_id}},
      {"/v1/admin/provider-accounts/{id}/check", {a_account_id}},
      {"/v1/calls/{id}", {a_call_id}},
      {"/v1/phone-numbers/{id}", {a_number_id}},
      {"/v1/caller-id-pools/{id}", {a_pool_id}},
      {"/v1/caller-id-pools/{id}/numbers", {a_pool_id}},
      {"/v1/caller-id-pools/{id}/numbers/{number_id}", {a_pool_id}},
  };
  // What stands for a row that does not exist; numbers are validated before they are looked up.
  const auto missing_id = [](const std::string& pattern) -> std::string {
    return pattern.find("{number}") != std::string::npos ? "+14155550100" : "xyz_01ZZZZZZZZZZZZZZZZZZZZZZZZ";
  };

  std::set<RouteKey> exercised;
  int requests = 0;
  for (const auto& route : routes) {
    for (const auto& creds : b_credentials) {
      const std::string what = route.method + " " + route.pattern + " as B (" + creds.label + ")";
      SCOPED_TRACE(what);
      const bool has_id = route.pattern.find('{') != std::string::npos;
      const std::optional<json> generic_body =
          IsStateChanging(route.method) ? std::optional<json>(json{{"name", "Mallory"}}) : std::nullopt;

      if (route.pattern.starts_with("/v1/admin/")) {
        // Operator routes: a tenant's credentials authenticate nothing there.
        std::vector<std::string> targets = {route.pattern};
        if (has_id) {
          auto ids = a_ids.find(route.pattern);
          ASSERT_NE(ids, a_ids.end()) << what << ": no tenant-A resource known for this {id} route";
          targets.clear();
          for (const auto& id : ids->second) targets.push_back(Substitute(route.pattern, id));
        }
        for (const auto& target : targets) {
          std::optional<json> body = generic_body;
          if (route.pattern == "/v1/admin/login") body = json{{"email", a.email}, {"password", kPassword}};
          auto response = client->Send(route.method, target, body, &creds);
          ExpectProblem(response, 401, "unauthenticated");
          EXPECT_TRUE(response.Cookie("clozit_operator_session").value_or("").empty()) << response;
          ExpectNoLeak(what, response);
          ++requests;
        }
      } else if (route.pattern.starts_with("/v1/webhooks/") && route.pattern != "/v1/webhooks/stripe") {
        // Carrier webhooks: only the carrier's signature for A's account gets in; anyone else gets 403.
        auto response = client->SendBytes("POST", Substitute(route.pattern, a_account_id),
                                          R"({"data":{"event_type":"call.hangup","id":"x","payload":{}}})", &creds,
                                          ContentType("application/json"));
        ExpectProblem(response, 403, "permission_denied");
        ExpectNoLeak(what, response);
        ++requests;
      } else if (has_id) {
        auto ids = a_ids.find(route.pattern);
        ASSERT_NE(ids, a_ids.end()) << what
                                    << ": no tenant-A resource known for this {id} route; add one to a_ids so its "
                                       "isolation is tested";
        for (const auto& id : ids->second) {
          auto response = client->Send(route.method, Substitute(route.pattern, id), generic_body, &creds);
          // Exactly what a missing row looks like.
          ExpectProblem(response, 404, "not_found");
          ExpectNoLeak(what + " on " + id, response);
          ++requests;
        }
        // And a row that does not exist answers the same status and code.
        auto missing =
            client->Send(route.method, Substitute(route.pattern, missing_id(route.pattern)), generic_body, &creds);
        ExpectProblem(missing, 404, "not_found");
      } else if (route.method == "GET" && route.pattern == "/v1/dnc/check") {
        auto response = client->Get(route.pattern + "?number=%2B14155552697", &creds);  // on A's list only
        ASSERT_EQ(response.status, 200) << response;
        EXPECT_FALSE(response.Json().value("blocked", true)) << response;
        ++requests;
      } else if (route.method == "GET") {
        // Collections and singletons of the caller's own tenant, and public documents.
        auto response = client->Get(route.pattern, &creds);
        EXPECT_EQ(response.status, 200) << what << ": " << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/signup") {
        // A's email is taken, but nothing else about A shows.
        auto response = client->Post("/v1/signup",
                                     {{"company", "Copycat"},
                                      {"name", "Mallory"},
                                      {"email", a.email},
                                      {"phone", "+14155552671"},
                                      {"password", kPassword}},
                                     &creds);
        ExpectProblem(response, 409, "already_exists", "email");
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/login") {
        auto response = client->Post("/v1/login", {{"email", a.email}, {"password", "Wrong-Horse-77"}}, &creds);
        ExpectProblem(response, 401, "unauthenticated");
        EXPECT_TRUE(response.SetCookies().empty()) << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/logout") {
        // Logging out ends only the caller's own session (a throw-away one here).
        Credentials target = creds;
        if (!creds.session.empty()) {
          auto login = client->Post("/v1/login", {{"email", b.email}, {"password", kPassword}});
          ASSERT_EQ(login.status, 200) << login;
          target =
              Credentials::Cookie(login.Cookie("clozit_session").value_or(""), login.Json().value("csrf_token", ""));
        }
        auto response = client->Post("/v1/logout", json::object(), &target);
        EXPECT_EQ(response.status, creds.session.empty() ? 401 : 204) << response;
        ExpectNoLeak(what, response);
        EXPECT_EQ(client->Get("/v1/me", &a.cookie).status, 200) << "B's logout ended A's session";
        ++requests;
      } else if (route.method == "PATCH" && route.pattern == "/v1/tenant") {
        auto response = client->Send("PATCH", "/v1/tenant", json{{"name", "B Renamed"}}, &creds);
        ASSERT_EQ(response.status, 200) << response;
        EXPECT_EQ(response.Json().value("id", ""), b.tenant_id);
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/api-keys") {
        auto response = client->Post("/v1/api-keys", {{"name", "b-walk"}}, &creds);
        EXPECT_EQ(response.status, 201) << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/invitations") {
        auto response = client->Post("/v1/invitations", {{"email", UniqueEmail("b-walk")}}, &creds);
        EXPECT_EQ(response.status, 201) << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/invitations/accept") {
        // Only the emailed token accepts; A's invitation id is not a token.
        auto response = client->Post(
            "/v1/invitations/accept",
            {{"token", pending_invitation_id}, {"name", "Mallory"}, {"phone", "+14155552671"}, {"password", kPassword}},
            &creds);
        ExpectProblem(response, 404, "not_found", "token");
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "PUT" && route.pattern == "/v1/credits/low-balance-threshold") {
        auto response = client->Send("PUT", route.pattern, json{{"threshold", "5"}}, &creds);
        EXPECT_EQ(response.status, 200) << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/refund-requests") {
        // Only the caller's own purchases are known; anything else is refused as unknown.
        auto response = client->Post(route.pattern, {{"purchase_id", "pur_01JBBBBBBBBBBBBBBBBBBBBBBB"}}, &creds);
        ASSERT_EQ(response.status, 201) << response;
        EXPECT_EQ(response.Json().value("reason_code", ""), "unknown_transaction");
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/purchases/checkout") {
        // This server sells no packs (and has no payment provider): refused on the pack, nothing of A shows.
        http::Headers key;
        key.Set("Idempotency-Key", "b-checkout-" + creds.label);
        auto response = client->Post(route.pattern, {{"pack_id", "starter"}}, &creds, key);
        ExpectProblem(response, 400, "invalid_argument", "pack_id");
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/webhooks/stripe") {
        // Public, and without Stripe configured there is nothing to deliver to.
        auto response = client->Post(route.pattern,
                                     {{"id", "evt_1"}, {"type", "x"}, {"data", {{"object", json::object()}}}}, &creds);
        ExpectProblem(response, 503, "unavailable");
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/adjustment-requests") {
        auto response = client->Post(
            route.pattern,
            {{"charge_ids", {"rsv_01JAAAAAAAAAAAAAAAAAAAAAAA/usage/call_minutes"}}, {"description", "x"}}, &creds);
        ExpectProblem(response, 404, "not_found", "charge_ids");
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/subscription") {
        // B has no credits: refused, and nothing of A's subscription shows.
        http::Headers key;
        key.Set("Idempotency-Key", "b-sub-" + creds.label);
        auto response = client->Post(route.pattern, {{"plan", "starter"}}, &creds, key);
        ExpectProblem(response, 402, "insufficient_credits", "plan");
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" &&
                 (route.pattern == "/v1/subscription/cancel" || route.pattern == "/v1/subscription/change")) {
        // Only the caller's own subscription is addressed: B has none, A's is untouched.
        http::Headers key;
        key.Set("Idempotency-Key", "b" + route.pattern + "-" + creds.label);
        auto response = client->Post(route.pattern, {{"plan", "starter"}}, &creds, key);
        ExpectProblem(response, 404, "not_found");
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/contact-lists") {
        auto response = client->Post(route.pattern, {{"name", "b-walk list"}}, &creds);
        EXPECT_EQ(response.status, creds.label == "cookie" ? 201 : 409) << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/contacts") {
        // A's number is free for B: contacts are per tenant.
        auto response = client->Post(route.pattern, {{"phone", "+14155550142"}, {"consent", consent}}, &creds);
        EXPECT_EQ(response.status, creds.label == "cookie" ? 201 : 409) << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/contacts/imports") {
        auto response = client->SendBytes("POST", route.pattern + import_query, "phone\n+14155550143\n", &creds,
                                          ContentType("text/csv"));
        EXPECT_EQ(response.status, 202) << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/dnc/imports") {
        auto response = client->SendBytes("POST", route.pattern, "+14155550146\n", &creds, ContentType("text/plain"));
        EXPECT_EQ(response.status, 200) << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/dnc/registry-imports") {
        auto response = client->SendBytes("POST", route.pattern + "?file_date=2026-11-01T00:00:00Z", "4155550144\n",
                                          &creds, ContentType("text/plain"));
        EXPECT_EQ(response.status, 201) << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && (route.pattern == "/v1/dnc" || route.pattern == "/v1/dnc/opt-outs")) {
        auto response = client->Post(route.pattern, {{"number", "+14155550145"}}, &creds);
        EXPECT_LT(response.status, 300) << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/phone-numbers") {
        // B has no credits: nothing is bought, and A's number is not B's to buy anyway.
        http::Headers key;
        key.Set("Idempotency-Key", "b-walk-buy-" + creds.label);
        auto response = client->Post(route.pattern, {{"phone_number", "+14156712603"}}, &creds, key);
        ExpectProblem(response, 402, "insufficient_credits");
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/phone-numbers/imports") {
        auto response =
            client->Post(route.pattern, {{"phone_number", "+14156712603"}, {"account_id", a_account_id}}, &creds);
        ExpectProblem(response, 404, "not_found", "account_id");
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/caller-id-pools") {
        auto response = client->Post(route.pattern, {{"name", "b-walk pool"}}, &creds);
        EXPECT_EQ(response.status, creds.label == "cookie" ? 201 : 409) << response;
        ExpectNoLeak(what, response);
        ++requests;
      } else if (route.method == "POST" && route.pattern == "/v1/provider-accounts") {
        auto response = client->Post(route.pattern,
                                     {{"provider", "twilio"},
                                      {"name", "b-walk twilio " + creds.label},
                                      {"account_sid", "AC0123456789abcdef0123456789abcdef"},
                                      {"auth_token", "b-walk-token-0123456789"}},
                                     &creds);
        EXPECT_EQ(response.status, 201) << response;
        EXPECT_EQ(response.Json().value("scope", ""), "tenant");
        ExpectNoLeak(what, response);
        // Gone again, so that B's calls and number searches keep using the platform's (emulated) carrier.
        EXPECT_EQ(
            client->Send("DELETE", route.pattern + "/" + response.Json().value("id", ""), std::nullopt, &creds).status,
            204);
        ++requests;
      } else {
        ADD_FAILURE() << what << ": the cross-tenant walk does not know how to exercise this route; teach it";
        continue;
      }
      exercised.insert(route);
    }
  }
  for (const auto& route : routes) EXPECT_TRUE(exercised.count(route)) << route << " was not exercised";
  EXPECT_GT(requests, 2 * static_cast<int>(routes.size()) - 1);

  // ---- Nothing of A's changed.
  auto a_tenant = client->Get("/v1/tenant", &a.cookie);
  ASSERT_EQ(a_tenant.status, 200) << a_tenant;
  EXPECT_EQ(a_tenant.Json().value("name", ""), "tenant-a Ltd");
  auto a_users = ListAll(*client, "/v1/users", a.cookie);
  EXPECT_EQ(a_users.size(), 2u);
  auto a_member = client->Get("/v1/users/" + member_id, &a.cookie);
  ASSERT_EQ(a_member.status, 200) << a_member;
  EXPECT_EQ(a_member.Json().value("name", ""), "Amy Member");
  EXPECT_EQ(a_member.Json().value("role", ""), "member");
  auto a_key_now = client->Get("/v1/api-keys/" + a_key.value("id", ""), &a.cookie);
  ASSERT_EQ(a_key_now.status, 200) << a_key_now;
  EXPECT_TRUE(a_key_now.Json()["revoked_at"].is_null()) << a_key_now;
  const Credentials a_bearer = Credentials::Bearer(a_key.value("secret", ""));
  EXPECT_EQ(client->Get("/v1/me", &a_bearer).status, 200);
  auto a_pending = client->Get("/v1/invitations/" + pending_invitation_id, &a.cookie);
  ASSERT_EQ(a_pending.status, 200) << a_pending;
  EXPECT_EQ(a_pending.Json().value("status", ""), "pending");
  EXPECT_EQ(ListAll(*client, "/v1/api-keys", a.cookie).size(), 1u);
  EXPECT_EQ(ListAll(*client, "/v1/invitations", a.cookie).size(), 2u);
  EXPECT_EQ(ListAll(*client, "/v1/refund-requests", a.cookie).size(), 1u);
  auto a_subscription = client->Get("/v1/subscription", &a.cookie);
  ASSERT_EQ(a_subscription.status, 200) << a_subscription;
  EXPECT_EQ(a_subscription.Json().value("id", ""), a_subscription_id);
  EXPECT_FALSE(a_subscription.Json().value("cancel_at_period_end", true));
  EXPECT_EQ(a_subscription.Json().value("plan", ""), "growth");
  auto a_adjustment = client->Get("/v1/adjustment-requests/" + a_adjustment_id, &a.cookie);
  ASSERT_EQ(a_adjustment.status, 200) << a_adjustment;
  EXPECT_EQ(a_adjustment.Json().value("status", ""), "pending");

  auto a_contact_now = client->Get("/v1/contacts/" + a_contact_id, &a.cookie);
  ASSERT_EQ(a_contact_now.status, 200) << a_contact_now;
  EXPECT_EQ(a_contact_now.Json().value("name", ""), "Alice Privatecontact");
  EXPECT_TRUE(a_contact_now.Json()["consent_revoked_at"].is_null());
  auto a_dnc = client->Get("/v1/dnc/check?number=%2B14155552697", &a.cookie);
  ASSERT_EQ(a_dnc.status, 200) << a_dnc;
  EXPECT_TRUE(a_dnc.Json().value("blocked", false));
  EXPECT_EQ(client->Get("/v1/contact-lists/" + a_list_id, &a.cookie).Json().value("name", ""), "tenant-a spring leads");
  auto a_account_now = client->Get("/v1/provider-accounts/" + a_account_id, &a.cookie);
  ASSERT_EQ(a_account_now.status, 200) << a_account_now;
  EXPECT_EQ(a_account_now.Json().value("name", ""), "tenant-a telnyx");
  EXPECT_EQ(client->Get("/v1/calls/" + a_call_id, &a.cookie).Json().value("status", ""), "completed");
  EXPECT_EQ(client->Get("/v1/phone-numbers/" + a_number_id, &a.cookie).Json().value("status", ""), "active");
  auto a_pool_now = client->Get("/v1/caller-id-pools/" + a_pool_id, &a.cookie);
  ASSERT_EQ(a_pool_now.status, 200) << a_pool_now;
  EXPECT_EQ(a_pool_now.Json()["number_ids"], json::array({a_number_id}));

  // ---- And the isolation holds the other way round: A's audit log shows nothing of B.
  auto a_audit = client->Get("/v1/audit-log?limit=200", &a.cookie);
  ASSERT_EQ(a_audit.status, 200) << a_audit;
  for (const auto& b_value : {b.tenant_id, b.user_id, b_key.value("id", "?"), b.email}) {
    EXPECT_EQ(a_audit.body.find(b_value), std::string::npos) << "A's audit log shows B's " << b_value;
  }
  EXPECT_FALSE(a_audit.Json()["data"].empty());
}

CLOZIT_INSTANTIATE_BACKENDS(CrossTenantTest);

}  // namespace
}  // namespace clozit::itest
