// Sign-up, login, cookie and API-key authentication, CSRF, revocation, logout,
// and the brakes on password guessing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/harness.hpp"

namespace clozit::itest {
namespace {

using testing::HasSubstr;
using testing::Not;
using testing::StartsWith;

class AccountFlowTest : public ServerTest {};

TEST_P(AccountFlowTest, SignUpLoginApiKeyRevokeLogout) {
  ASSERT_NE(StartServer(), nullptr);
  auto client = Client();
  const std::string email = UniqueEmail("flow");

  // Sign-up: 201, an HttpOnly SameSite=Lax session cookie, the CSRF token in the body.
  auto signup = client->Post("/v1/signup", {{"company", "Flow Inc"},
                                            {"name", "Flo Owner"},
                                            {"email", email},
                                            {"phone", "+14155552671"},
                                            {"password", kPassword}});
  ASSERT_EQ(signup.status, 201) << signup;
  const std::string signup_cookie = signup.CookieLine("clozit_session");
  EXPECT_THAT(signup_cookie, HasSubstr("HttpOnly"));
  EXPECT_THAT(signup_cookie, HasSubstr("SameSite=Lax"));
  EXPECT_THAT(signup_cookie, HasSubstr("Path=/"));
  EXPECT_THAT(signup_cookie, Not(HasSubstr("Secure")));  // plain HTTP on loopback
  const std::string signup_session = signup.Cookie("clozit_session").value_or("");
  ASSERT_FALSE(signup_session.empty());
  auto signed_up = signup.Json();
  EXPECT_THAT(signed_up["tenant"].value("id", ""), StartsWith("ten_"));
  EXPECT_EQ(signed_up["tenant"].value("name", ""), "Flow Inc");
  EXPECT_THAT(signed_up["user"].value("id", ""), StartsWith("usr_"));
  EXPECT_EQ(signed_up["user"].value("email", ""), email);
  EXPECT_EQ(signed_up["user"].value("role", ""), "owner");
  EXPECT_EQ(signed_up["user"].value("phone", ""), "+14155552671");
  EXPECT_FALSE(signed_up["user"].contains("password_hash"));
  EXPECT_FALSE(signed_up.value("csrf_token", "").empty());
  EXPECT_EQ(signup.body.find(signup_session), std::string::npos) << "the session token travels only in the cookie";
  const std::string tenant_id = signed_up["tenant"]["id"];
  const std::string user_id = signed_up["user"]["id"];

  // Login: a new session, different from the sign-up one.
  auto login = client->Post("/v1/login", {{"email", email}, {"password", kPassword}});
  ASSERT_EQ(login.status, 200) << login;
  const std::string session = login.Cookie("clozit_session").value_or("");
  ASSERT_FALSE(session.empty());
  EXPECT_NE(session, signup_session);
  EXPECT_THAT(login.CookieLine("clozit_session"), HasSubstr("HttpOnly"));
  EXPECT_THAT(login.CookieLine("clozit_session"), HasSubstr("SameSite=Lax"));
  auto logged_in = login.Json();
  EXPECT_EQ(logged_in["user"].value("id", ""), user_id);
  const std::string csrf = logged_in.value("csrf_token", "");
  ASSERT_FALSE(csrf.empty());
  EXPECT_NE(csrf, signed_up.value("csrf_token", ""));
  const Credentials cookie = Credentials::Cookie(session, csrf);

  // GET /v1/me with the cookie.
  auto me = client->Get("/v1/me", &cookie);
  ASSERT_EQ(me.status, 200) << me;
  auto me_body = me.Json();
  EXPECT_EQ(me_body["principal"].value("kind", ""), "user");
  EXPECT_EQ(me_body["principal"].value("id", ""), user_id);
  EXPECT_EQ(me_body["principal"].value("role", ""), "owner");
  EXPECT_EQ(me_body["tenant"].value("id", ""), tenant_id);
  EXPECT_EQ(me_body["user"].value("email", ""), email);
  EXPECT_EQ(me_body.value("csrf_token", ""), csrf);

  // A cookie-authenticated state change without (or with a wrong) X-CSRF-Token is refused.
  const Credentials no_csrf = cookie.WithoutCsrf();
  auto refused = client->Post("/v1/api-keys", {{"name", "ci"}}, &no_csrf);
  ExpectProblem(refused, 403, "permission_denied", "X-CSRF-Token");
  EXPECT_FALSE(refused.Json().value("request_id", "").empty());
  EXPECT_EQ(refused.Json().value("request_id", ""), refused.Header("X-Request-Id"));
  Credentials wrong_csrf = cookie;
  wrong_csrf.csrf = std::string(csrf.size(), 'A');
  ExpectProblem(client->Post("/v1/api-keys", {{"name", "ci"}}, &wrong_csrf), 403, "permission_denied", "X-CSRF-Token");
  Credentials other_sessions_csrf = cookie;
  other_sessions_csrf.csrf = signed_up.value("csrf_token", "");
  ExpectProblem(client->Post("/v1/api-keys", {{"name", "ci"}}, &other_sessions_csrf), 403, "permission_denied",
                "X-CSRF-Token");
  EXPECT_TRUE(ListAll(*client, "/v1/api-keys", cookie).empty()) << "a refused request created a key";

  // With the token: 201 and a one-time secret.
  auto created = client->Post("/v1/api-keys", {{"name", "ci"}, {"role", "admin"}}, &cookie);
  ASSERT_EQ(created.status, 201) << created;
  auto key = created.Json();
  const std::string key_id = key.value("id", "");
  const std::string secret = key.value("secret", "");
  EXPECT_THAT(key_id, StartsWith("key_"));
  EXPECT_THAT(secret, StartsWith("ck_"));
  EXPECT_THAT(secret, StartsWith(key.value("prefix", "?") + "_"));
  EXPECT_EQ(key.value("role", ""), "admin");
  EXPECT_EQ(key.value("created_by", ""), user_id);
  EXPECT_TRUE(key["revoked_at"].is_null());
  const Credentials bearer = Credentials::Bearer(secret);

  // The key authenticates as itself.
  auto me_by_key = client->Get("/v1/me", &bearer);
  ASSERT_EQ(me_by_key.status, 200) << me_by_key;
  auto me_key_body = me_by_key.Json();
  EXPECT_EQ(me_key_body["principal"].value("kind", ""), "api_key");
  EXPECT_EQ(me_key_body["principal"].value("id", ""), key_id);
  EXPECT_EQ(me_key_body["principal"].value("role", ""), "admin");
  EXPECT_EQ(me_key_body["tenant"].value("id", ""), tenant_id);
  EXPECT_FALSE(me_key_body.contains("csrf_token"));
  EXPECT_FALSE(me_key_body.contains("user"));

  // Bearer requests need no CSRF token; a key cannot mint a key above its own role.
  auto by_key = client->Post("/v1/api-keys", {{"name", "minted-by-key"}, {"role", "member"}}, &bearer);
  EXPECT_EQ(by_key.status, 201) << by_key;
  ExpectProblem(client->Post("/v1/api-keys", {{"name", "escalate"}, {"role", "owner"}}, &bearer), 403,
                "permission_denied", "role");
  // Logout is for cookie sessions only.
  ExpectProblem(client->Post("/v1/logout", json::object(), &bearer), 401, "unauthenticated");

  // Listings never contain the secret.
  auto listing = client->Get("/v1/api-keys", &cookie);
  ASSERT_EQ(listing.status, 200) << listing;
  EXPECT_EQ(listing.body.find(secret), std::string::npos) << listing;
  EXPECT_EQ(listing.body.find(secret.substr(secret.find('_', 3) + 1)), std::string::npos);
  auto items = listing.Json()["data"];
  ASSERT_EQ(items.size(), 2u) << listing;
  bool found = false;
  for (const auto& item : items) {
    EXPECT_FALSE(item.contains("secret")) << item;
    EXPECT_FALSE(item.contains("secret_hash")) << item;
    found = found || item.value("id", "") == key_id;
  }
  EXPECT_TRUE(found) << listing;
  auto single = client->Get("/v1/api-keys/" + key_id, &cookie);
  ASSERT_EQ(single.status, 200) << single;
  EXPECT_FALSE(single.Json().contains("secret"));
  EXPECT_EQ(single.body.find(secret), std::string::npos);

  // Revoking the key: the bearer stops working at once.
  auto revoked = client->Send("DELETE", "/v1/api-keys/" + key_id, std::nullopt, &cookie);
  ASSERT_EQ(revoked.status, 200) << revoked;
  EXPECT_FALSE(revoked.Json()["revoked_at"].is_null()) << revoked;
  ExpectProblem(client->Get("/v1/me", &bearer), 401, "unauthenticated");
  ExpectProblem(client->Post("/v1/api-keys", {{"name", "after-revoke"}}, &bearer), 401, "unauthenticated");
  // A well-formed but unknown key, and garbage, are refused the same way.
  const Credentials forged = Credentials::Bearer(secret.substr(0, secret.size() - 2) + "xx");
  ExpectProblem(client->Get("/v1/me", &forged), 401, "unauthenticated");
  const Credentials garbage = Credentials::Bearer("not-a-key");
  ExpectProblem(client->Get("/v1/me", &garbage), 401, "unauthenticated");

  // Logout: 204, the cookie is cleared and the session is dead server-side.
  ExpectProblem(client->Post("/v1/logout", json::object(), &no_csrf), 403, "permission_denied", "X-CSRF-Token");
  auto logout = client->Post("/v1/logout", json::object(), &cookie);
  ASSERT_EQ(logout.status, 204) << logout;
  EXPECT_EQ(logout.Cookie("clozit_session").value_or("?"), "");
  EXPECT_THAT(logout.CookieLine("clozit_session"), HasSubstr("Max-Age=0"));
  ExpectProblem(client->Get("/v1/me", &cookie), 401, "unauthenticated");
  ExpectProblem(client->Post("/v1/api-keys", {{"name", "after-logout"}}, &cookie), 401, "unauthenticated");

  // Logging out one session leaves the others (the sign-up session) alone.
  const Credentials first = Credentials::Cookie(signup_session, signed_up.value("csrf_token", ""));
  EXPECT_EQ(client->Get("/v1/me", &first).status, 200);
  // Without any credentials: 401.
  ExpectProblem(client->Get("/v1/me"), 401, "unauthenticated");
}

TEST_P(AccountFlowTest, WrongPasswordIsRefusedAndRepeatedFailuresLockTheAccount) {
  ASSERT_NE(StartServer(), nullptr);
  auto client = Client();
  Account owner = SignUp(*client, "victim");
  ASSERT_FALSE(owner.user_id.empty());

  auto wrong = client->Post("/v1/login", {{"email", owner.email}, {"password", "Wrong-Horse-77"}});
  ExpectProblem(wrong, 401, "unauthenticated");
  EXPECT_TRUE(wrong.SetCookies().empty()) << wrong;
  // An unknown account looks exactly like a wrong password.
  auto unknown = client->Post("/v1/login", {{"email", "nobody-here@example.com"}, {"password", "Wrong-Horse-77"}});
  ExpectProblem(unknown, 401, "unauthenticated");
  EXPECT_EQ(unknown.Json().value("detail", "a"), wrong.Json().value("detail", "b"));
  // The email is matched case-insensitively, so case variations count against the same account.
  std::string upper = owner.email;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ExpectProblem(client->Post("/v1/login", {{"email", upper}, {"password", "Wrong-Horse-77"}}), 401, "unauthenticated");

  // login_max_failures = 5: three more failures lock the account ...
  for (int i = 0; i < 3; ++i) {
    ExpectProblem(
        client->Post("/v1/login", {{"email", owner.email}, {"password", "Wrong-Horse-7" + std::to_string(i)}}), 401,
        "unauthenticated");
  }
  // ... even against the right password, while other accounts are unaffected.
  auto locked = client->Post("/v1/login", {{"email", owner.email}, {"password", kPassword}});
  ExpectProblem(locked, 429, "rate_limited");
  EXPECT_TRUE(locked.SetCookies().empty()) << locked;
  Account bystander = SignUp(*client, "bystander");
  EXPECT_EQ(client->Post("/v1/login", {{"email", bystander.email}, {"password", kPassword}}).status, 200);
  // The existing session keeps working: the lockout is about guessing, not about the account.
  EXPECT_EQ(client->Get("/v1/me", &owner.cookie).status, 200);
}

TEST_P(AccountFlowTest, AuthRoutesAreRateLimitedPerIp) {
  ASSERT_NE(StartServer({{"CLOZIT_RATE_LIMIT__AUTH_PER_IP_PER_MINUTE", "3"}}), nullptr);
  auto client = Client();
  for (int i = 0; i < 3; ++i) {
    auto response = client->Post("/v1/login", {{"email", UniqueEmail("guess")}, {"password", "Wrong-Horse-77"}});
    ExpectProblem(response, 401, "unauthenticated");
  }
  auto limited = client->Post("/v1/login", {{"email", UniqueEmail("guess")}, {"password", "Wrong-Horse-77"}});
  ExpectProblem(limited, 429, "rate_limited");
  EXPECT_GE(std::atoi(limited.Header("Retry-After").c_str()), 1) << limited;
  // Sign-up and invitation acceptance share the per-IP budget.
  ExpectProblem(client->Post("/v1/signup", {{"company", "Late Ltd"},
                                            {"name", "Late Owner"},
                                            {"email", UniqueEmail("late")},
                                            {"phone", "+14155552671"},
                                            {"password", kPassword}}),
                429, "rate_limited");
  ExpectProblem(client->Post("/v1/invitations/accept",
                             {{"token", "x"}, {"name", "X"}, {"phone", "+14155552671"}, {"password", kPassword}}),
                429, "rate_limited");
  // Other routes are not affected.
  EXPECT_EQ(client->Get("/healthz").status, 200);
  ExpectProblem(client->Get("/v1/me"), 401, "unauthenticated");
}

CLOZIT_INSTANTIATE_BACKENDS(AccountFlowTest);

}  // namespace
}  // namespace clozit::itest
