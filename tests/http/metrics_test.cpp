#include "http/metrics.hpp"

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace clozit::http {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool HasLine(const std::string& text, const std::string& line) {
  for (const auto& l : Lines(text))
    if (l == line) return true;
  return false;
}

TEST(Metrics, EmptyRenderHasOnlyTheHeaders) {
  Metrics metrics;
  auto text = metrics.Render();
  EXPECT_TRUE(HasLine(text, "# TYPE clozit_http_requests_total counter"));
  EXPECT_TRUE(HasLine(text, "# TYPE clozit_http_request_duration_seconds histogram"));
  EXPECT_EQ(text.find("clozit_http_requests_total{"), std::string::npos);
}

TEST(Metrics, CountsByMethodRouteAndStatus) {
  Metrics metrics;
  metrics.Observe("GET", "/v1/users/{id}", 200, milliseconds(2));
  metrics.Observe("GET", "/v1/users/{id}", 200, milliseconds(3));
  metrics.Observe("GET", "/v1/users/{id}", 404, milliseconds(1));
  metrics.Observe("POST", "/v1/api-keys", 201, microseconds(100));
  auto text = metrics.Render();
  EXPECT_TRUE(HasLine(text, R"(clozit_http_requests_total{method="GET",route="/v1/users/{id}",status="200"} 2)"))
      << text;
  EXPECT_TRUE(HasLine(text, R"(clozit_http_requests_total{method="GET",route="/v1/users/{id}",status="404"} 1)"));
  EXPECT_TRUE(HasLine(text, R"(clozit_http_requests_total{method="POST",route="/v1/api-keys",status="201"} 1)"));
}

TEST(Metrics, MethodsTheServerDoesNotKnowShareOneSeries) {
  Metrics metrics;
  for (int i = 0; i < 100; ++i) metrics.Observe("INVENTED" + std::to_string(i), "(unrouted)", 404, microseconds(10));
  metrics.Observe("DELETE", "(unrouted)", 404, microseconds(10));
  auto text = metrics.Render();
  const std::string other = "clozit_http_requests_total{method=\"OTHER\",route=\"(unrouted)\",status=\"404\"} 100";
  const std::string known = "clozit_http_requests_total{method=\"DELETE\",route=\"(unrouted)\",status=\"404\"} 1";
  EXPECT_TRUE(HasLine(text, other)) << text;
  EXPECT_TRUE(HasLine(text, known));
  EXPECT_EQ(text.find("INVENTED"), std::string::npos);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Metrics metrics;
  const std::string labels = R"(method="GET",route="/healthz",status="200")";
  metrics.Observe("GET", "/healthz", 200, microseconds(300));        // <= 0.0005
  metrics.Observe("GET", "/healthz", 200, milliseconds(3));          // <= 0.005
  metrics.Observe("GET", "/healthz", 200, milliseconds(40));         // <= 0.05
  metrics.Observe("GET", "/healthz", 200, std::chrono::seconds(9));  // only +Inf
  auto text = metrics.Render();
  auto bucket = [&](const std::string& le) {
    return "clozit_http_request_duration_seconds_bucket{" + labels + ",le=\"" + le + "\"} ";
  };
  EXPECT_TRUE(HasLine(text, bucket("0.0005") + "1")) << text;
  EXPECT_TRUE(HasLine(text, bucket("0.001") + "1"));
  EXPECT_TRUE(HasLine(text, bucket("0.0025") + "1"));
  EXPECT_TRUE(HasLine(text, bucket("0.005") + "2"));
  EXPECT_TRUE(HasLine(text, bucket("0.025") + "2"));
  EXPECT_TRUE(HasLine(text, bucket("0.05") + "3"));
  EXPECT_TRUE(HasLine(text, bucket("1") + "3"));
  EXPECT_TRUE(HasLine(text, bucket("5") + "3"));
  EXPECT_TRUE(HasLine(text, bucket("+Inf") + "4"));
  EXPECT_TRUE(HasLine(text, "clozit_http_request_duration_seconds_count{" + labels + "} 4"));

  // Every bucket line, in order, never decreases; +Inf equals the count.
  uint64_t previous = 0;
  int buckets = 0;
  for (const auto& line : Lines(text)) {
    if (line.rfind("clozit_http_request_duration_seconds_bucket{", 0) != 0) continue;
    uint64_t value = std::stoull(line.substr(line.rfind(' ') + 1));
    EXPECT_GE(value, previous) << line;
    previous = value;
    ++buckets;
  }
  EXPECT_EQ(buckets, static_cast<int>(Metrics::kBucketsSeconds.size()) + 1);

  // The sum is in seconds.
  for (const auto& line : Lines(text)) {
    if (line.rfind("clozit_http_request_duration_seconds_sum{", 0) != 0) continue;
    EXPECT_NEAR(std::stod(line.substr(line.rfind(' ') + 1)), 9.0433, 1e-6) << line;
  }
}

TEST(Metrics, EscapesLabelValues) {
  Metrics metrics;
  metrics.Observe("GET", "a\"b\\c\nd", 200, milliseconds(1));
  auto text = metrics.Render();
  EXPECT_NE(text.find(R"(route="a\"b\\c\nd")"), std::string::npos) << text;
}

TEST(Metrics, RendersGauges) {
  Metrics metrics;
  metrics.SetGauge("clozit_db_pool_in_use", "Connections in use.", 3);
  metrics.SetGauge("clozit_db_pool_in_use", "Connections in use.", 5);
  auto text = metrics.Render();
  EXPECT_TRUE(HasLine(text, "# HELP clozit_db_pool_in_use Connections in use."));
  EXPECT_TRUE(HasLine(text, "# TYPE clozit_db_pool_in_use gauge"));
  EXPECT_TRUE(HasLine(text, "clozit_db_pool_in_use 5"));
}

}  // namespace
}  // namespace clozit::http
