// Health, readiness and metrics endpoints.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>

#include "integration/harness.hpp"

namespace clozit::itest {
namespace {

using testing::HasSubstr;

class SystemTest : public ServerTest {};

TEST_P(SystemTest, HealthReadinessAndMetrics) {
  ASSERT_NE(StartServer(), nullptr);
  auto client = Client();

  auto health = client->Get("/healthz");
  ASSERT_EQ(health.status, 200) << health;
  EXPECT_EQ(health.Header("Content-Type"), "application/json");
  EXPECT_EQ(health.Json().value("status", ""), "ok");
  EXPECT_FALSE(health.Header("X-Request-Id").empty());

  auto ready = client->Get("/readyz");
  ASSERT_EQ(ready.status, 200) << ready;
  auto ready_body = ready.Json();
  EXPECT_EQ(ready_body.value("status", ""), "ready");
  EXPECT_EQ(ready_body.value("database", ""), "ok");
  EXPECT_EQ(ready_body.value("migrations", ""), "current");

  // Traffic on a parameterised route, then the metrics.
  Account owner = SignUp(*client, "metrics");
  EXPECT_EQ(client->Get("/v1/users/" + owner.user_id, &owner.cookie).status, 200);
  EXPECT_EQ(client->Get("/v1/users/usr_01ZZZZZZZZZZZZZZZZZZZZZZZZ", &owner.cookie).status, 404);

  auto metrics = client->Get("/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics;
  EXPECT_THAT(metrics.Header("Content-Type"), testing::StartsWith("text/plain"));
  EXPECT_THAT(metrics.body, HasSubstr("# TYPE clozit_http_requests_total counter"));
  std::smatch match;
  EXPECT_TRUE(std::regex_search(
      metrics.body, match,
      std::regex(R"re(clozit_http_requests_total\{method="GET",route="/healthz",status="200"\} ([0-9]+))re")))
      << metrics.body;
  EXPECT_GE(std::stoi(match.size() > 1 ? match[1].str() : "0"), 1);
  EXPECT_THAT(metrics.body,
              HasSubstr(R"(clozit_http_requests_total{method="POST",route="/v1/signup",status="201"} 1)"));
  // Parameterised routes are labelled by their pattern, never by the id.
  EXPECT_THAT(metrics.body,
              HasSubstr(R"(clozit_http_requests_total{method="GET",route="/v1/users/{id}",status="200"} 1)"));
  EXPECT_THAT(metrics.body,
              HasSubstr(R"(clozit_http_requests_total{method="GET",route="/v1/users/{id}",status="404"} 1)"));
  EXPECT_EQ(metrics.body.find(owner.user_id), std::string::npos);
  EXPECT_EQ(metrics.body.find(owner.email), std::string::npos);
  EXPECT_THAT(metrics.body, HasSubstr("clozit_http_request_duration_seconds_bucket{"));

  // The OpenAPI document is served as JSON.
  auto openapi = client->Get("/v1/openapi.json");
  ASSERT_EQ(openapi.status, 200) << openapi;
  EXPECT_TRUE(openapi.Json().contains("openapi"));

  // Many requests over one kept-alive connection, and many connections.
  for (int i = 0; i < 50; ++i) ASSERT_EQ(client->Get("/healthz").status, 200);
  for (int i = 0; i < 20; ++i) {
    TestClient fresh(servers_.back()->origin());
    ASSERT_EQ(fresh.Get("/healthz").status, 200);
  }
  EXPECT_EQ(servers_.back()->Stop(), 0);
}

CLOZIT_INSTANTIATE_BACKENDS(SystemTest);

}  // namespace
}  // namespace clozit::itest
