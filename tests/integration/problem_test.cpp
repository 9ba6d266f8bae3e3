// Every error leaves as RFC 9457 problem+json with a stable `code`, naming the
// offending field where there is one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/harness.hpp"

namespace clozit::itest {
namespace {

using testing::HasSubstr;

class ProblemTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    server_ = StartServer({{"CLOZIT_SERVER__BODY_LIMIT_BYTES", "2048"}});
    ASSERT_NE(server_, nullptr);
    client_ = Client(server_);
  }

  Response PostRaw(const std::string& target, const std::string& body,
                   const std::string& content_type = "application/json") {
    http::Headers headers;
    if (!content_type.empty()) headers.Set("Content-Type", content_type);
    return client_->SendRaw("POST", target, body, headers);
  }

  json ValidSignUp() {
    return {{"company", "Problem Co"},
            {"name", "Pat Problem"},
            {"email", UniqueEmail("problem")},
            {"phone", "+14155552671"},
            {"password", kPassword}};
  }

  ServerProcess* server_ = nullptr;
  std::unique_ptr<TestClient> client_;
};

TEST_P(ProblemTest, MalformedJsonBody) {
  for (const std::string body : {"{not json", "", "{\"email\": \"a@b.c\",}", "\xff\xfe{}"}) {
    SCOPED_TRACE("body: " + body);
    auto response = PostRaw("/v1/signup", body);
    ExpectProblem(response, 400, "invalid_argument", "body");
    EXPECT_THAT(response.Json().value("detail", ""), HasSubstr("JSON"));
  }
  // Valid JSON that is not an object.
  for (const std::string body : {"[]", "\"text\"", "42", "null"}) {
    SCOPED_TRACE("body: " + body);
    ExpectProblem(PostRaw("/v1/signup", body), 400, "invalid_argument", "body");
  }
  // A body that is not JSON at all by its Content-Type.
  ExpectProblem(PostRaw("/v1/signup", ValidSignUp().dump(), "text/plain"), 400, "invalid_argument", "body");
}

TEST_P(ProblemTest, MissingAndWrongTypedFieldsAreNamed) {
  for (const std::string field : {"company", "name", "email", "phone", "password"}) {
    SCOPED_TRACE(field);
    json body = ValidSignUp();
    body.erase(field);
    auto missing = client_->Post("/v1/signup", body);
    ExpectProblem(missing, 400, "invalid_argument", field);
    EXPECT_THAT(missing.Json().value("detail", ""), HasSubstr(field + " is required"));

    body[field] = nullptr;
    ExpectProblem(client_->Post("/v1/signup", body), 400, "invalid_argument", field);
  }
  for (const json& wrong : {json(5), json(true), json::array({"a@example.com"}), json::object()}) {
    SCOPED_TRACE(wrong.dump());
    json body = ValidSignUp();
    body["email"] = wrong;
    auto response = client_->Post("/v1/signup", body);
    ExpectProblem(response, 400, "invalid_argument", "email");
    EXPECT_THAT(response.Json().value("detail", ""), HasSubstr("must be a string"));
  }
  // Values that are strings but invalid are named too.
  json bad_email = ValidSignUp();
  bad_email["email"] = "not-an-email";
  ExpectProblem(client_->Post("/v1/signup", bad_email), 400, "invalid_argument", "email");
  json bad_phone = ValidSignUp();
  bad_phone["phone"] = "12";
  ExpectProblem(client_->Post("/v1/signup", bad_phone), 400, "invalid_argument", "phone");
  json weak = ValidSignUp();
  weak["password"] = "password123!";
  ExpectProblem(client_->Post("/v1/signup", weak), 400, "invalid_argument", "password");
  json short_password = ValidSignUp();
  short_password["password"] = "Ab1-x";
  ExpectProblem(client_->Post("/v1/signup", short_password), 400, "invalid_argument", "password");
  // Query parameters too.
  Account owner = SignUp(*client_, "pager");
  for (const std::string query : {"limit=0", "limit=201", "limit=abc", "limit=5x"}) {
    ExpectProblem(client_->Get("/v1/users?" + query, &owner.cookie), 400, "invalid_argument", "limit");
  }
  ExpectProblem(client_->Get("/v1/users?cursor=%27%3B--", &owner.cookie), 400, "invalid_argument", "cursor");
  ExpectProblem(client_->Post("/v1/api-keys", {{"name", "k"}, {"role", "emperor"}}, &owner.cookie), 400,
                "invalid_argument", "role");
  // None of the refused sign-ups created anything.
  auto users = ListAll(*client_, "/v1/users", owner.cookie);
  EXPECT_EQ(users.size(), 1u);
}

TEST_P(ProblemTest, OversizeBodyIs413) {
  json body = ValidSignUp();
  body["company"] = std::string(10 * 1024, 'x');
  auto response = client_->Post("/v1/signup", body);
  ExpectProblem(response, 413, "payload_too_large", "body");
  // The server is still healthy, and a fresh connection works.
  client_->Close();
  EXPECT_EQ(client_->Get("/healthz").status, 200);
  // Just under the limit is parsed normally (and refused for its content, not its size).
  json near = ValidSignUp();
  near["company"] = std::string(1500, 'y');
  auto accepted_size = client_->Post("/v1/signup", near);
  ExpectProblem(accepted_size, 400, "invalid_argument", "company");
}

TEST_P(ProblemTest, UnknownRouteIs404AndWrongMethodIs405WithAllow) {
  for (const std::string target : {"/v1/nope", "/v1/users/abc/extra", "/", "/v2/me", "/v1/me%00"}) {
    SCOPED_TRACE(target);
    auto response = client_->Get(target);
    ExpectProblem(response, 404, "not_found");
  }
  auto put_me = client_->Send("PUT", "/v1/me", json::object());
  ExpectProblem(put_me, 405, "method_not_allowed");
  EXPECT_EQ(put_me.Header("Allow"), "GET");

  auto delete_keys = client_->Send("DELETE", "/v1/api-keys");
  ExpectProblem(delete_keys, 405, "method_not_allowed");
  EXPECT_THAT(delete_keys.Header("Allow"), HasSubstr("GET"));
  EXPECT_THAT(delete_keys.Header("Allow"), HasSubstr("POST"));

  auto post_tenant = client_->Send("POST", "/v1/tenant", json::object());
  ExpectProblem(post_tenant, 405, "method_not_allowed");
  EXPECT_THAT(post_tenant.Header("Allow"), HasSubstr("GET"));
  EXPECT_THAT(post_tenant.Header("Allow"), HasSubstr("PATCH"));

  // The metrics label these by placeholder, not by raw path.
  auto metrics = client_->Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.body.find("/v1/nope"), std::string::npos);
}

// Regression: a path that percent-decodes to invalid UTF-8 made rendering the 404 problem throw, so the
// caller got a 500 (found by tests/fuzz/fuzz_request.cpp).
TEST_P(ProblemTest, NonUtf8PathIs404Not500) {
  for (const std::string target : {"/v1/%ff", "/%c3%28", "/v1/%ed%a0%80/x", "/v1/users/%ff%fe/extra"}) {
    SCOPED_TRACE(target);
    auto response = client_->Get(target);
    ExpectProblem(response, 404, "not_found");
  }
  auto wrong_method = client_->Send("PUT", "/v1/me?x=%ff");
  ExpectProblem(wrong_method, 405, "method_not_allowed");
  EXPECT_THAT(server_->Log(), testing::Not(HasSubstr("exception")));
}

TEST_P(ProblemTest, MalformedHttpGetsAProblemAndTheConnectionCloses) {
  const int port = server_->port();
  struct Case {
    std::string name;
    std::string bytes;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"bad method", "GARBAGE\r\n\r\n", 400, "invalid_argument"},
      {"bad version", "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400, "invalid_argument"},
      {"length and chunked",
       "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
       "invalid_argument"},
      {"headers over 16 KiB", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n", 413,
       "payload_too_large"},
      {"declared body over the limit", "POST /v1/signup HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n", 413,
       "payload_too_large"},
      {"chunked body over the limit",
       "POST /v1/signup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n" + std::string(4096, 'a') +
           "\r\n0\r\n\r\n",
       413, "payload_too_large"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto response = ParseRawResponse(RawExchange(port, c.bytes));
    ExpectProblem(response, c.status, c.code);
    EXPECT_EQ(response.Header("Connection"), "close");
  }
  // Nothing of this disturbed the server.
  EXPECT_EQ(client_->Get("/healthz").status, 200);
  auto ok = ParseRawResponse(RawExchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(ok.status, 200) << ok;
}

TEST_P(ProblemTest, AuthenticationProblems) {
  ExpectProblem(client_->Get("/v1/me"), 401, "unauthenticated");
  const Credentials bad_cookie = Credentials::Cookie("bogus", "bogus");
  ExpectProblem(client_->Get("/v1/me", &bad_cookie), 401, "unauthenticated");
  http::Headers basic;
  basic.Set("Authorization", "Basic dXNlcjpwYXNz");
  ExpectProblem(client_->Send("GET", "/v1/me", std::nullopt, nullptr, basic), 401, "unauthenticated");
  // The X-Request-Id a caller supplies is echoed into the problem, a bad one replaced.
  http::Headers traced;
  traced.Set("X-Request-Id", "trace-123_abc.def");
  auto with_id = client_->Send("GET", "/v1/me", std::nullopt, nullptr, traced);
  EXPECT_EQ(with_id.Json().value("request_id", ""), "trace-123_abc.def");
  traced.Set("X-Request-Id", "bad id with spaces");
  auto replaced = client_->Send("GET", "/v1/me", std::nullopt, nullptr, traced);
  EXPECT_NE(replaced.Json().value("request_id", ""), "bad id with spaces");
  EXPECT_FALSE(replaced.Json().value("request_id", "").empty());
}

CLOZIT_INSTANTIATE_BACKENDS(ProblemTest);

}  // namespace
}  // namespace clozit::itest
