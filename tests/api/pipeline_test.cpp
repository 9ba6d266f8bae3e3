// The request pipeline of the real Api, in process: routing errors, JSON
// body validation, authentication, CSRF, roles, Idempotency-Key replay, rate
// limits, and the account flows end to end. Every reply is also checked
// against the OpenAPI document (see api_fixture.hpp).
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/api_fixture.hpp"

namespace clozit::api::test {
namespace {

class PipelineTest : public ApiTest {
 protected:
  /// Creates an API key with `role` through the API as `owner`; returns its secret.
  std::string CreateKey(const Session& owner, const std::string& role, const std::string& name = "key") {
    auto reply = Send("POST", "/v1/api-keys", json{{"name", name}, {"role", role}}.dump(), owner.Headers());
    EXPECT_EQ(reply.status, 201) << reply.body;
    return reply.data.value("secret", "");
  }

  /// The token of the newest invitation email to `address`.
  std::string InvitationToken(const std::string& address) {
    auto rows = db_->Query("SELECT body FROM email_outbox WHERE to_address = $1 ORDER BY id DESC", {address});
    EXPECT_TRUE(rows.ok() && !rows->empty());
    if (!rows.ok() || rows->empty()) return {};
    std::string body = (*rows)[0].Text(0);
    auto start = body.find("): ");
    if (start == std::string::npos) return {};
    start += 3;
    return body.substr(start, body.find('\n', start) - start);
  }

  void ExpectProblem(const Reply& reply, int status, const std::string& code, const std::string& field = {}) {
    EXPECT_EQ(reply.status, status) << reply.body;
    EXPECT_EQ(reply.Header("Content-Type"), "application/problem+json");
    EXPECT_EQ(reply.data.value("code", ""), code) << reply.body;
    EXPECT_EQ(reply.data.value("status", 0), status);
    if (!field.empty()) {
      EXPECT_EQ(reply.data.value("field", ""), field) << reply.body;
    }
    EXPECT_FALSE(reply.data.value("request_id", "").empty());
    EXPECT_EQ(reply.data.value("request_id", ""), reply.Header("X-Request-Id"));
  }
};

// ---- routing ---------------------------------------------------------------

TEST_F(PipelineTest, UnknownRouteIs404Problem) {
  auto reply = Send("GET", "/v1/nothing-here");
  ExpectProblem(reply, 404, "not_found");
  ExpectProblem(Send("POST", "/v1/signup/extra", "{}"), 404, "not_found");
}

TEST_F(PipelineTest, WrongMethodIs405WithAllow) {
  auto reply = Send("DELETE", "/v1/signup");
  ExpectProblem(reply, 405, "method_not_allowed");
  EXPECT_EQ(reply.Header("Allow"), "POST");

  auto item = Send("PUT", "/v1/users/usr_1");
  ExpectProblem(item, 405, "method_not_allowed");
  std::string allow = item.Header("Allow");
  for (const char* method : {"GET", "PATCH", "DELETE"}) EXPECT_NE(allow.find(method), std::string::npos) << allow;
}

TEST_F(PipelineTest, KeepsAWellFormedIncomingRequestId) {
  auto reply = Send("GET", "/v1/nothing", "", {{"X-Request-Id", "trace-123.abc_DEF"}});
  EXPECT_EQ(reply.Header("X-Request-Id"), "trace-123.abc_DEF");
  EXPECT_EQ(reply.data["request_id"], "trace-123.abc_DEF");
  auto replaced = Send("GET", "/v1/nothing", "", {{"X-Request-Id", "bad id\"<script>"}});
  EXPECT_TRUE(replaced.Header("X-Request-Id").starts_with("req_")) << replaced.Header("X-Request-Id");
}

TEST_F(PipelineTest, SystemRoutes) {
  auto health = Send("GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.data["status"], "ok");
  auto ready = Send("GET", "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(ready.data, (json{{"status", "ready"}, {"database", "ok"}, {"migrations", "current"}}));
  Send("GET", "/v1/nothing");
  auto metrics = Send("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find(R"(clozit_http_requests_total{method="GET",route="/healthz",status="200"} 1)"),
            std::string::npos)
      << metrics.body;
  // Unmatched paths are counted under a fixed label, never the raw path.
  EXPECT_NE(metrics.body.find(R"x(route="(unmatched)")x"), std::string::npos);
  EXPECT_EQ(metrics.body.find("/v1/nothing"), std::string::npos);
}

// ---- JSON bodies -----------------------------------------------------------

TEST_F(PipelineTest, MalformedJsonIs400OnFieldBody) {
  for (const std::string body : {"{not json", "", "[1,2]", "\"text\"", "{\"company\": }"}) {
    ExpectProblem(Send("POST", "/v1/signup", body, {{"Content-Type", "application/json"}}), 400, "invalid_argument",
                  "body");
  }
  ExpectProblem(Send("POST", "/v1/signup", SignUpBody().dump(), {{"Content-Type", "text/plain"}}), 400,
                "invalid_argument", "body");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM users"), 0);
}

TEST_F(PipelineTest, MissingFieldIsNamed) {
  for (const char* field : {"company", "name", "email", "phone", "password"}) {
    json body = SignUpBody();
    body.erase(field);
    auto reply = Send("POST", "/v1/signup", body.dump());
    ExpectProblem(reply, 400, "invalid_argument", field);
    EXPECT_EQ(reply.data["detail"], std::string(field) + " is required");
    body[field] = nullptr;
    ExpectProblem(Send("POST", "/v1/signup", body.dump()), 400, "invalid_argument", field);
  }
}

TEST_F(PipelineTest, WrongTypeMustBeAString) {
  for (const json& value : {json(5), json(true), json::array({"a"}), json::object()}) {
    json body = SignUpBody();
    body["email"] = value;
    auto reply = Send("POST", "/v1/signup", body.dump());
    ExpectProblem(reply, 400, "invalid_argument", "email");
    EXPECT_EQ(reply.data["detail"], "email must be a string");
  }
}

TEST_F(PipelineTest, ValidationErrorsFromTheModuleNameTheirField) {
  json body = SignUpBody();
  body["phone"] = "12345";
  ExpectProblem(Send("POST", "/v1/signup", body.dump()), 400, "invalid_argument", "phone");
  body = SignUpBody();
  body["password"] = "short";
  ExpectProblem(Send("POST", "/v1/signup", body.dump()), 400, "invalid_argument", "password");
}

// ---- sign-up, sessions, CSRF -----------------------------------------------

TEST_F(PipelineTest, SignUpCreatesTheTenantAndSetsTheSessionCookie) {
  auto reply = Send("POST", "/v1/signup", SignUpBody(" Owner@Example.com ").dump());
  ASSERT_EQ(reply.status, 201) << reply.body;
  std::string cookie = reply.Header("Set-Cookie");
  EXPECT_TRUE(cookie.starts_with("clozit_session=")) << cookie;
  for (const char* attribute : {"; Path=/", "; HttpOnly", "; SameSite=Lax", "; Max-Age="}) {
    EXPECT_NE(cookie.find(attribute), std::string::npos) << attribute << " in " << cookie;
  }
  EXPECT_EQ(cookie.find("Secure"), std::string::npos) << "no Secure over plain HTTP";
  EXPECT_EQ(reply.data["user"]["email"], "owner@example.com");
  EXPECT_EQ(reply.data["user"]["role"], "owner");
  EXPECT_EQ(reply.data["tenant"]["name"], "Acme Inc");
  EXPECT_FALSE(reply.data["csrf_token"].get<std::string>().empty());

  Session session{CookieValue(cookie, "clozit_session"), reply.data["csrf_token"].get<std::string>()};
  auto me = Send("GET", "/v1/me", "", session.Headers(false));  // reads need no CSRF token
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.data["principal"]["kind"], "user");
  EXPECT_EQ(me.data["principal"]["role"], "owner");
  EXPECT_EQ(me.data["csrf_token"], session.csrf);
  EXPECT_EQ(me.data["tenant"]["id"], reply.data["tenant"]["id"]);

  ExpectProblem(Send("POST", "/v1/signup", SignUpBody("owner@example.com").dump()), 409, "already_exists", "email");
}

TEST_F(PipelineTest, SecureCookieOverTls) {
  // Request.tls is set by the server for TLS connections; here by hand.
  http::Request request;
  request.method = "POST";
  request.target = request.path = "/v1/signup";
  request.headers.Set("Content-Type", "application/json");
  request.body = SignUpBody().dump();
  request.remote_ip = "192.0.2.1";
  request.tls = true;
  auto response = handler_(request);
  ASSERT_EQ(response.status, 201);
  EXPECT_NE(std::string(response.headers.GetOr("Set-Cookie", "")).find("; Secure"), std::string::npos);
}

TEST_F(PipelineTest, CookiePostWithoutCsrfTokenIs403) {
  auto owner = SignUp();
  std::string body = json{{"name", "ci"}}.dump();
  ExpectProblem(Send("POST", "/v1/api-keys", body, owner.Headers(false)), 403, "permission_denied", "X-CSRF-Token");
  auto wrong = owner.Headers(false);
  wrong.emplace_back("X-CSRF-Token", "not-the-token");
  ExpectProblem(Send("POST", "/v1/api-keys", body, wrong), 403, "permission_denied", "X-CSRF-Token");
  ExpectProblem(Send("PATCH", "/v1/tenant", json{{"name", "X"}}.dump(), owner.Headers(false)), 403, "permission_denied",
                "X-CSRF-Token");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM api_keys"), 0);

  auto right = Send("POST", "/v1/api-keys", body, owner.Headers());
  EXPECT_EQ(right.status, 201) << right.body;
}

TEST_F(PipelineTest, MissingOrBadCredentialsAre401) {
  ExpectProblem(Send("GET", "/v1/me"), 401, "unauthenticated");
  ExpectProblem(Send("GET", "/v1/me", "", {{"Cookie", "clozit_session=forged"}}), 401, "unauthenticated");
  ExpectProblem(Send("GET", "/v1/me", "", Bearer("ck_nope_nope")), 401, "unauthenticated");
  ExpectProblem(Send("GET", "/v1/me", "", {{"Authorization", "Basic dXNlcjpwYXNz"}}), 401, "unauthenticated");
}

TEST_F(PipelineTest, LoginAndLogout) {
  SignUp();
  auto wrong = Send("POST", "/v1/login", json{{"email", "owner@example.com"}, {"password", "nope-Nope-1"}}.dump());
  ExpectProblem(wrong, 401, "unauthenticated");
  auto login = Send("POST", "/v1/login", json{{"email", "OWNER@example.com"}, {"password", "Correct-Horse-42"}}.dump());
  ASSERT_EQ(login.status, 200) << login.body;
  Session session{CookieValue(login.Header("Set-Cookie"), "clozit_session"),
                  login.data["csrf_token"].get<std::string>()};
  ASSERT_EQ(Send("GET", "/v1/me", "", session.Headers()).status, 200);

  ExpectProblem(Send("POST", "/v1/logout", "", session.Headers(false)), 403, "permission_denied", "X-CSRF-Token");
  auto logout = Send("POST", "/v1/logout", "", session.Headers());
  ASSERT_EQ(logout.status, 204) << logout.body;
  EXPECT_TRUE(logout.body.empty());
  std::string cleared = logout.Header("Set-Cookie");
  EXPECT_TRUE(cleared.starts_with("clozit_session=;")) << cleared;
  EXPECT_NE(cleared.find("Max-Age=0"), std::string::npos) << cleared;
  ExpectProblem(Send("GET", "/v1/me", "", session.Headers()), 401, "unauthenticated");
}

// ---- roles and API keys ----------------------------------------------------

TEST_F(PipelineTest, ViewerKeyReadsButCannotAdminister) {
  auto owner = SignUp();
  std::string secret = CreateKey(owner, "viewer");
  ASSERT_TRUE(secret.starts_with("ck_")) << secret;

  auto me = Send("GET", "/v1/me", "", Bearer(secret));
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(me.data["principal"]["kind"], "api_key");
  EXPECT_EQ(me.data["principal"]["role"], "viewer");
  EXPECT_FALSE(me.data.contains("user"));
  EXPECT_FALSE(me.data.contains("csrf_token"));
  EXPECT_EQ(Send("GET", "/v1/users", "", Bearer(secret)).status, 200);

  // Bearer calls need no CSRF token, but a viewer may not create keys, list them, or rename the tenant.
  ExpectProblem(Send("POST", "/v1/api-keys", json{{"name", "escalate"}}.dump(), Bearer(secret)), 403,
                "permission_denied");
  ExpectProblem(Send("GET", "/v1/api-keys", "", Bearer(secret)), 403, "permission_denied");
  ExpectProblem(Send("PATCH", "/v1/tenant", json{{"name", "Mine"}}.dump(), Bearer(secret)), 403, "permission_denied");
  ExpectProblem(Send("GET", "/v1/audit-log", "", Bearer(secret)), 403, "permission_denied");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM api_keys"), 1);

  // An API key cannot log out: that is for cookie sessions.
  ExpectProblem(Send("POST", "/v1/logout", "", Bearer(secret)), 401, "unauthenticated");
}

TEST_F(PipelineTest, AdminKeyWorksWithoutCsrfAndCannotMintOwnerKeys) {
  auto owner = SignUp();
  std::string admin = CreateKey(owner, "admin");
  auto renamed = Send("PATCH", "/v1/tenant", json{{"name", "Renamed"}}.dump(), Bearer(admin));
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  EXPECT_EQ(renamed.data["name"], "Renamed");
  ExpectProblem(Send("POST", "/v1/api-keys", json{{"name", "x"}, {"role", "owner"}}.dump(), Bearer(admin)), 403,
                "permission_denied", "role");
  ExpectProblem(Send("POST", "/v1/api-keys", json{{"name", "x"}, {"role", "god"}}.dump(), Bearer(admin)), 400,
                "invalid_argument", "role");
  auto member = Send("POST", "/v1/api-keys", json{{"name", "m"}}.dump(), Bearer(admin));
  ASSERT_EQ(member.status, 201) << member.body;
  EXPECT_EQ(member.data["role"], "member");  // the default

  // Revoke through the API; the key stops working.
  std::string id = member.data["id"].get<std::string>();
  auto revoked = Send("DELETE", "/v1/api-keys/" + id, "", Bearer(admin));
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_FALSE(revoked.data["revoked_at"].is_null());
  ExpectProblem(Send("GET", "/v1/me", "", Bearer(member.data["secret"].get<std::string>())), 401, "unauthenticated");
  ExpectProblem(Send("GET", "/v1/api-keys/key_01J0000000000000000000000", "", Bearer(admin)), 404, "not_found");

  auto listed = Send("GET", "/v1/api-keys", "", Bearer(admin));
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.data["data"].size(), 2u);
  for (const auto& key : listed.data["data"]) EXPECT_FALSE(key.contains("secret"));
}

// Regression: "role": null in PATCH /v1/users/{id} demoted the user to viewer instead of leaving the role alone.
TEST_F(PipelineTest, NullRoleInUserUpdateLeavesTheRole) {
  auto owner = SignUp();
  std::string user_id = Send("GET", "/v1/me", "", owner.Headers()).data["user"]["id"].get<std::string>();
  auto reply =
      Send("PATCH", "/v1/users/" + user_id, json{{"name", "Olivia"}, {"role", nullptr}}.dump(), owner.Headers());
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.data["name"], "Olivia");
  EXPECT_EQ(reply.data["role"], "owner");
  ExpectProblem(Send("PATCH", "/v1/users/" + user_id, json{{"role", "admin"}}.dump(), owner.Headers()), 409, "conflict",
                "role");
}

// ---- Idempotency-Key -------------------------------------------------------

TEST_F(PipelineTest, IdempotencyKeyReplaysTheFirstResponse) {
  auto owner = SignUp();
  auto headers = owner.Headers();
  headers.emplace_back("Idempotency-Key", "create-ci-key-1");
  std::string body = json{{"name", "ci"}, {"role", "member"}}.dump();

  auto first = Send("POST", "/v1/api-keys", body, headers);
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(first.Header("Idempotent-Replayed"), "");
  auto second = Send("POST", "/v1/api-keys", body, headers);
  ASSERT_EQ(second.status, 201) << second.body;
  EXPECT_EQ(second.Header("Idempotent-Replayed"), "true");
  EXPECT_EQ(second.Header("Content-Type"), "application/json");
  // The same key, described the same way; its secret was shown once and is not stored readable.
  json expected = first.data;
  expected["secret"] = nullptr;
  expected["secrets_redacted"] = true;
  EXPECT_EQ(second.data, expected);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM api_keys"), 1);
  auto stored = db_->Query("SELECT body FROM idempotency_keys");
  ASSERT_TRUE(stored.ok());
  for (const auto& row : *stored)
    EXPECT_EQ(row.Text(0).find(first.data["secret"].get<std::string>()), std::string::npos);
  auto third = Send("POST", "/v1/api-keys", body, headers);
  EXPECT_EQ(third.body, second.body);

  auto different = Send("POST", "/v1/api-keys", json{{"name", "other"}}.dump(), headers);
  ExpectProblem(different, 422, "idempotency_key_reused", "Idempotency-Key");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM api_keys"), 1);

  // Another key runs again.
  headers.back().second = "create-ci-key-2";
  EXPECT_EQ(Send("POST", "/v1/api-keys", body, headers).status, 201);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM api_keys"), 2);
}

// A path or query parameter that percent-decodes to other than UTF-8 reached PostgreSQL and came back a 500.
TEST_F(PipelineTest, TargetsThatAreNotUtf8AreRefusedBeforeTheHandlers) {
  auto owner = SignUp();
  ExpectProblem(Send("GET", "/v1/refund-requests/%FF", "", owner.Headers()), 404, "not_found");
  ExpectProblem(Send("GET", "/v1/credits/transactions?cursor=%C3%28", "", owner.Headers()), 400, "invalid_argument",
                "cursor");
  ExpectProblem(Send("GET", "/v1/credits/transactions?%ED%A0%80=1", "", owner.Headers()), 400, "invalid_argument",
                "query");
  EXPECT_EQ(Send("GET", "/v1/credits/transactions?category=%E2%82%AC", "", owner.Headers()).status, 400)
      << "valid UTF-8 goes on to the handler (an unknown category)";
}

// Anyone can reach a webhook route (no per-address limit): an Idempotency-Key there stored a row per request.
TEST_F(PipelineTest, PublicRoutesStoreNoIdempotencyKeys) {
  for (int i = 0; i < 3; ++i) {
    auto reply = Send("POST", "/v1/webhooks/stripe", R"({"id":"evt_1","type":"charge.refunded"})",
                      {{"Stripe-Signature", "t=1,v1=00"}, {"Idempotency-Key", "junk-" + std::to_string(i)}});
    ExpectProblem(reply, 400, "invalid_argument", "Stripe-Signature");
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM idempotency_keys"), 0);
}

TEST_F(PipelineTest, IdempotencyKeysAreScopedToTheCaller) {
  auto alice = SignUp("alice@example.com");
  auto bob = SignUp("bob@example.com");
  std::string body = json{{"name", "ci"}}.dump();
  auto alice_headers = alice.Headers();
  alice_headers.emplace_back("Idempotency-Key", "same-key");
  auto bob_headers = bob.Headers();
  bob_headers.emplace_back("Idempotency-Key", "same-key");
  auto a = Send("POST", "/v1/api-keys", body, alice_headers);
  auto b = Send("POST", "/v1/api-keys", body, bob_headers);
  ASSERT_EQ(a.status, 201);
  ASSERT_EQ(b.status, 201);
  EXPECT_EQ(b.Header("Idempotent-Replayed"), "");
  EXPECT_NE(a.data["secret"], b.data["secret"]);
}

TEST_F(PipelineTest, SignUpReplayCreatesOneTenantAndSetsNoCookie) {
  std::vector<std::pair<std::string, std::string>> headers = {{"Idempotency-Key", "signup-1"}};
  auto first = Send("POST", "/v1/signup", SignUpBody().dump(), headers);
  ASSERT_EQ(first.status, 201) << first.body;
  auto replay = Send("POST", "/v1/signup", SignUpBody().dump(), headers);
  ASSERT_EQ(replay.status, 201) << replay.body;
  EXPECT_EQ(replay.Header("Idempotent-Replayed"), "true");
  EXPECT_EQ(replay.Header("Set-Cookie"), "") << "the session token is never stored, so never replayed";
  EXPECT_TRUE(replay.data["csrf_token"].is_null());
  EXPECT_EQ(replay.data["secrets_redacted"], true);
  EXPECT_EQ(replay.data["tenant"], first.data["tenant"]);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM tenants"), 1);
  // Public routes are scoped by client address: another address runs the request (and hits the duplicate).
  remote_ip_ = "192.0.2.77";
  ExpectProblem(Send("POST", "/v1/signup", SignUpBody().dump(), headers), 409, "already_exists", "email");
}

TEST_F(PipelineTest, ErrorsAreReplayedButRetryableOnesAreNot) {
  auto owner = SignUp();
  auto headers = owner.Headers();
  headers.emplace_back("Idempotency-Key", "bad-body");
  ExpectProblem(Send("POST", "/v1/api-keys", json{{"name", 5}}.dump(), headers), 400, "invalid_argument", "name");
  auto replayed = Send("POST", "/v1/api-keys", json{{"name", 5}}.dump(), headers);
  EXPECT_EQ(replayed.status, 400);
  EXPECT_EQ(replayed.Header("Idempotent-Replayed"), "true");
  EXPECT_EQ(replayed.Header("Content-Type"), "application/problem+json");

  auto bad_key = owner.Headers();
  bad_key.emplace_back("Idempotency-Key", std::string(256, 'k'));
  ExpectProblem(Send("POST", "/v1/api-keys", json{{"name", "x"}}.dump(), bad_key), 400, "invalid_argument",
                "Idempotency-Key");
  bad_key.back().second = "has space";
  ExpectProblem(Send("POST", "/v1/api-keys", json{{"name", "x"}}.dump(), bad_key), 400, "invalid_argument",
                "Idempotency-Key");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM api_keys"), 0);
}

// ---- rate limits -----------------------------------------------------------

TEST_F(PipelineTest, PerIpLimitOnLoginAnswers429WithRetryAfter) {
  config_.rate_limit.auth_per_ip_per_minute = 3;
  Build();
  std::string body = json{{"email", "who@example.com"}, {"password", "whatever-1A"}}.dump();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Send("POST", "/v1/login", body).status, 401) << i;
  auto limited = Send("POST", "/v1/login", body);
  ExpectProblem(limited, 429, "rate_limited");
  int retry_after = std::stoi(limited.Header("Retry-After"));
  EXPECT_GE(retry_after, 1);
  EXPECT_LE(retry_after, 20);
  // Another address is not affected.
  remote_ip_ = "192.0.2.2";
  EXPECT_EQ(Send("POST", "/v1/login", body).status, 401);
}

TEST_F(PipelineTest, PerPrincipalLimitAnswers429WithRetryAfter) {
  config_.rate_limit.per_principal_per_second = 1;
  config_.rate_limit.per_principal_burst = 2;
  Build();
  auto owner = SignUp();
  EXPECT_EQ(Send("GET", "/v1/tenant", "", owner.Headers()).status, 200);
  EXPECT_EQ(Send("GET", "/v1/tenant", "", owner.Headers()).status, 200);
  auto limited = Send("GET", "/v1/tenant", "", owner.Headers());
  ExpectProblem(limited, 429, "rate_limited");
  EXPECT_EQ(limited.Header("Retry-After"), "1");
}

// ---- pagination ------------------------------------------------------------

TEST_F(PipelineTest, ListsPageWithLimitAndCursor) {
  auto owner = SignUp();
  for (int i = 0; i < 3; ++i) CreateKey(owner, "viewer", "k" + std::to_string(i));
  auto first = Send("GET", "/v1/api-keys?limit=2", "", owner.Headers());
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.data["data"].size(), 2u);
  EXPECT_EQ(first.data["has_more"], true);
  ASSERT_TRUE(first.data["next_cursor"].is_string());
  auto second =
      Send("GET", "/v1/api-keys?limit=2&cursor=" + first.data["next_cursor"].get<std::string>(), "", owner.Headers());
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.data["data"].size(), 1u);
  EXPECT_EQ(second.data["has_more"], false);
  EXPECT_TRUE(second.data["next_cursor"].is_null());

  for (const char* limit : {"0", "201", "abc", "5x", "-1", ""}) {
    ExpectProblem(Send("GET", std::string("/v1/users?limit=") + limit, "", owner.Headers()), 400, "invalid_argument",
                  "limit");
  }
  ExpectProblem(Send("GET", "/v1/users?cursor=bad%21cursor", "", owner.Headers()), 400, "invalid_argument", "cursor");
  EXPECT_EQ(Send("GET", "/v1/users?limit=200", "", owner.Headers()).status, 200);
}

// ---- invitations and the audit log -----------------------------------------

TEST_F(PipelineTest, InvitationFlowEndToEnd) {
  auto owner = SignUp();
  auto invited =
      Send("POST", "/v1/invitations", json{{"email", "Vera@Example.com"}, {"role", "viewer"}}.dump(), owner.Headers());
  ASSERT_EQ(invited.status, 201) << invited.body;
  EXPECT_EQ(invited.data["status"], "pending");
  EXPECT_FALSE(invited.data.contains("token")) << "the token travels by email only";
  std::string token = InvitationToken("vera@example.com");
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(invited.body.find(token), std::string::npos);

  // The literal route wins over /v1/invitations/{id}, and needs no session.
  json accept = {{"token", token}, {"name", "Vera"}, {"phone", "+14155552673"}, {"password", "Secret-Pass-55"}};
  auto accepted = Send("POST", "/v1/invitations/accept", accept.dump());
  ASSERT_EQ(accepted.status, 201) << accepted.body;
  EXPECT_EQ(accepted.route, "/v1/invitations/accept");
  EXPECT_EQ(accepted.data["user"]["role"], "viewer");
  Session vera{CookieValue(accepted.Header("Set-Cookie"), "clozit_session"),
               accepted.data["csrf_token"].get<std::string>()};
  auto me = Send("GET", "/v1/me", "", vera.Headers());
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(me.data["principal"]["role"], "viewer");
  ExpectProblem(Send("POST", "/v1/invitations/accept", accept.dump()), 409, "conflict", "token");

  std::string id = invited.data["id"].get<std::string>();
  auto fetched = Send("GET", "/v1/invitations/" + id, "", owner.Headers());
  ASSERT_EQ(fetched.status, 200);
  EXPECT_EQ(fetched.data["status"], "accepted");
  ExpectProblem(Send("DELETE", "/v1/invitations/" + id, "", owner.Headers()), 409, "conflict");
  ExpectProblem(Send("GET", "/v1/invitations/" + id, "", vera.Headers()), 403, "permission_denied");

  auto audit = Send("GET", "/v1/audit-log?limit=200", "", owner.Headers());
  ASSERT_EQ(audit.status, 200) << audit.body;
  std::set<std::string> actions;
  for (const auto& entry : audit.data["data"]) actions.insert(entry["action"].get<std::string>());
  for (const char* action : {"tenant.sign_up", "session.create", "invitation.create", "invitation.accept"}) {
    EXPECT_TRUE(actions.contains(action)) << action;
  }
}

// ---- operators -------------------------------------------------------------

TEST_F(PipelineTest, OperatorRoutesUseTheirOwnCookie) {
  auto owner = SignUp();
  privacy::Actor cli{"system", "cli", "", "127.0.0.1", "cli"};
  ASSERT_TRUE(accounts_->CreateOperator("ops@clozit.tech", "Ops", "Operator-Pass-9", cli).ok());

  auto login =
      Send("POST", "/v1/admin/login", json{{"email", "ops@clozit.tech"}, {"password", "Operator-Pass-9"}}.dump());
  ASSERT_EQ(login.status, 200) << login.body;
  std::string set_cookie = login.Header("Set-Cookie");
  EXPECT_NE(set_cookie.find("; Path=/v1/admin"), std::string::npos) << set_cookie;
  std::string token = CookieValue(set_cookie, "clozit_operator_session");
  ASSERT_FALSE(token.empty());
  std::vector<std::pair<std::string, std::string>> operator_cookie = {{"Cookie", "clozit_operator_session=" + token}};

  auto tenants = Send("GET", "/v1/admin/tenants", "", operator_cookie);
  ASSERT_EQ(tenants.status, 200) << tenants.body;
  ASSERT_EQ(tenants.data["data"].size(), 1u);
  std::string tenant_id = tenants.data["data"][0]["id"].get<std::string>();
  EXPECT_EQ(Send("GET", "/v1/admin/tenants/" + tenant_id, "", operator_cookie).status, 200);
  ExpectProblem(Send("GET", "/v1/admin/tenants/ten_01J0000000000000000000000", "", operator_cookie), 404, "not_found");
  auto audit = Send("GET", "/v1/admin/audit-log?tenant_id=" + tenant_id, "", operator_cookie);
  ASSERT_EQ(audit.status, 200) << audit.body;
  EXPECT_FALSE(audit.data["data"].empty());
  auto platform = Send("GET", "/v1/admin/audit-log", "", operator_cookie);
  ASSERT_EQ(platform.status, 200);
  EXPECT_FALSE(platform.data["data"].empty()) << "operator logins are platform-level entries";

  // Neither credential works on the other side.
  ExpectProblem(Send("GET", "/v1/admin/tenants", "", owner.Headers()), 401, "unauthenticated");
  ExpectProblem(Send("GET", "/v1/me", "", {{"Cookie", "clozit_session=" + token}}), 401, "unauthenticated");
  std::string key = CreateKey(owner, "admin");
  ExpectProblem(Send("GET", "/v1/admin/tenants", "", Bearer(key)), 401, "unauthenticated");

  auto with_csrf = operator_cookie;
  with_csrf.emplace_back("X-CSRF-Token", login.data["csrf_token"].get<std::string>());
  ExpectProblem(Send("POST", "/v1/admin/logout", "", operator_cookie), 403, "permission_denied", "X-CSRF-Token");
  auto logout = Send("POST", "/v1/admin/logout", "", with_csrf);
  ASSERT_EQ(logout.status, 204) << logout.body;
  ExpectProblem(Send("GET", "/v1/admin/tenants", "", operator_cookie), 401, "unauthenticated");
}

}  // namespace
}  // namespace clozit::api::test
