// The OpenAPI document against the routes the real Api registers: every
// route documented, nothing documented that is not routed, and each
// operation's security, role, parameters and error responses consistent with
// how the route is declared.
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/api.hpp"
#include "api/api_fixture.hpp"

namespace clozit::api::test {
namespace {

const std::set<std::string> kHttpMethods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"};

bool IsStateChanging(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

/// "METHOD pattern" of every route with no operation in the document.
std::vector<std::string> Undocumented(const json& document, const std::vector<RouteSpec>& routes) {
  std::vector<std::string> missing;
  for (const auto& route : routes) {
    const json& paths = document["paths"];
    if (!paths.contains(route.pattern) || !paths[route.pattern].contains(Lower(route.method))) {
      missing.push_back(route.method + " " + route.pattern);
    }
  }
  return missing;
}

/// "method path" of every documented operation the Api does not route.
std::vector<std::string> Unrouted(const json& document, const std::vector<RouteSpec>& routes) {
  std::set<std::pair<std::string, std::string>> routed;
  for (const auto& route : routes) routed.emplace(Lower(route.method), route.pattern);
  std::vector<std::string> stale;
  for (const auto& [path, item] : document["paths"].items()) {
    for (const auto& [key, operation] : item.items()) {
      if (kHttpMethods.contains(key) && !routed.contains({key, path})) stale.push_back(key + " " + path);
    }
  }
  return stale;
}

class OpenApiTest : public ApiTest {
 protected:
  const json& Operation(const RouteSpec& route) {
    return document_.at("paths").at(route.pattern).at(Lower(route.method));
  }

  /// The names of the security schemes of each alternative, e.g. {{"apiKey"}, {"sessionCookie"}}.
  static std::set<std::set<std::string>> Security(const json& operation) {
    std::set<std::set<std::string>> out;
    for (const auto& requirement : operation.value("security", json::array())) {
      std::set<std::string> names;
      for (const auto& [name, scopes] : requirement.items()) names.insert(name);
      out.insert(names);
    }
    return out;
  }

  /// Parameters of the operation and its path item, resolved, as "in:name".
  std::set<std::string> Parameters(const std::string& path, const json& operation) {
    SchemaChecker checker(document_);
    std::set<std::string> out;
    const json& path_item = document_.at("paths").at(path);
    for (const json* list : {&path_item, &operation}) {
      if (!list->contains("parameters")) continue;
      for (const auto& parameter : (*list)["parameters"]) {
        const json& resolved = checker.Resolve(parameter);
        out.insert(resolved["in"].get<std::string>() + ":" + resolved["name"].get<std::string>());
      }
    }
    return out;
  }
};

TEST_F(OpenApiTest, DocumentIsOpenApi31) {
  ASSERT_TRUE(document_.is_object());
  ASSERT_TRUE(document_["openapi"].is_string());
  EXPECT_TRUE(document_["openapi"].get<std::string>().starts_with("3.1.")) << document_["openapi"];
  EXPECT_TRUE(document_["info"]["title"].is_string());
  EXPECT_TRUE(document_["info"]["version"].is_string());
  ASSERT_TRUE(document_["paths"].is_object());
  EXPECT_FALSE(document_["paths"].empty());
}

TEST_F(OpenApiTest, EveryRouteIsDocumented) {
  ASSERT_FALSE(api_->routes().empty());
  auto missing = Undocumented(document_, api_->routes());
  EXPECT_TRUE(missing.empty()) << "routes missing from src/api/openapi.json: " << ::testing::PrintToString(missing);
}

TEST_F(OpenApiTest, EveryDocumentedOperationIsRouted) {
  auto stale = Unrouted(document_, api_->routes());
  EXPECT_TRUE(stale.empty()) << "operations in src/api/openapi.json with no route: " << ::testing::PrintToString(stale);
}

// The two checks above really do catch a drift in either direction.
TEST_F(OpenApiTest, CoverageChecksDetectDrift) {
  json without_login = document_;
  without_login["paths"]["/v1/login"].erase("post");
  EXPECT_EQ(Undocumented(without_login, api_->routes()), std::vector<std::string>{"POST /v1/login"});

  json with_extra = document_;
  with_extra["paths"]["/v1/users/{id}"]["put"] = json::object();
  with_extra["paths"]["/v1/widgets"]["get"] = json::object();
  auto stale = Unrouted(with_extra, api_->routes());
  EXPECT_EQ(std::set<std::string>(stale.begin(), stale.end()),
            (std::set<std::string>{"put /v1/users/{id}", "get /v1/widgets"}));
}

TEST_F(OpenApiTest, OperationIdsAreUnique) {
  std::set<std::string> ids;
  for (const auto& route : api_->routes()) {
    const json& operation = Operation(route);
    ASSERT_TRUE(operation.contains("operationId")) << route.method << " " << route.pattern;
    EXPECT_TRUE(ids.insert(operation["operationId"].get<std::string>()).second) << operation["operationId"];
  }
}

TEST_F(OpenApiTest, SecurityMatchesHowEachRouteAuthenticates) {
  for (const auto& route : api_->routes()) {
    SCOPED_TRACE(route.method + " " + route.pattern);
    const json& operation = Operation(route);
    ASSERT_TRUE(operation.contains("security")) << "every operation states its security explicitly";
    auto security = Security(operation);
    bool changes = IsStateChanging(route.method);
    switch (route.access) {
      case Access::kPublic:
        EXPECT_TRUE(security.empty());
        break;
      case Access::kTenant: {
        std::set<std::string> cookie = {"sessionCookie"};
        if (changes) cookie.insert("csrfToken");
        EXPECT_EQ(security, (std::set<std::set<std::string>>{cookie, {"apiKey"}}));
        break;
      }
      case Access::kSession:
        EXPECT_EQ(security, (std::set<std::set<std::string>>{{"sessionCookie", "csrfToken"}}));
        break;
      case Access::kOperator: {
        std::set<std::string> cookie = {"operatorCookie"};
        if (changes) cookie.insert("csrfToken");
        EXPECT_EQ(security, (std::set<std::set<std::string>>{cookie}));
        break;
      }
    }
    if (route.access == Access::kTenant || route.access == Access::kSession) {
      EXPECT_EQ(operation.value("x-clozit-min-role", ""), accounts::RoleName(route.min_role));
    } else {
      EXPECT_FALSE(operation.contains("x-clozit-min-role"));
    }
  }
}

TEST_F(OpenApiTest, ErrorResponsesFollowThePipeline) {
  SchemaChecker checker(document_);
  for (const auto& route : api_->routes()) {
    SCOPED_TRACE(route.method + " " + route.pattern);
    const json& responses = Operation(route)["responses"];
    auto has = [&](const char* status) { return responses.contains(status); };
    bool authenticated = route.access != Access::kPublic;
    if (authenticated) {
      EXPECT_TRUE(has("401"));
    }
    if (authenticated || route.per_ip_limited) {
      ASSERT_TRUE(has("429"));
      const json& limited = checker.Resolve(responses["429"]);
      EXPECT_TRUE(limited["headers"].contains("Retry-After"));
    }
    bool csrf = IsStateChanging(route.method) && route.access != Access::kPublic;
    if (csrf || (route.access == Access::kTenant && route.min_role > accounts::Role::kViewer)) {
      EXPECT_TRUE(has("403"));
    }
    if (route.pattern.find('{') != std::string::npos) {
      EXPECT_TRUE(has("404"));
    }
    if (route.method == "POST") {
      EXPECT_TRUE(has("422")) << "Idempotency-Key reuse";
      EXPECT_TRUE(has("409")) << "Idempotency-Key in flight";
    }
    // Every error response is problem+json.
    for (const auto& [status, ref] : responses.items()) {
      if (status == "503" && route.pattern == "/readyz") continue;  // the readiness body, on purpose
      if (status != "default" && std::stoi(status) < 400) continue;
      const json& response = checker.Resolve(ref);
      ASSERT_TRUE(response.contains("content")) << status;
      EXPECT_TRUE(response["content"].contains("application/problem+json")) << status;
    }
  }
}

TEST_F(OpenApiTest, PostsTakeAnIdempotencyKeyAndPathParametersAreDeclared) {
  for (const auto& route : api_->routes()) {
    SCOPED_TRACE(route.method + " " + route.pattern);
    auto parameters = Parameters(route.pattern, Operation(route));
    EXPECT_EQ(parameters.contains("header:Idempotency-Key"), route.method == "POST");
    for (size_t open = route.pattern.find('{'); open != std::string::npos; open = route.pattern.find('{', open + 1)) {
      std::string name = route.pattern.substr(open + 1, route.pattern.find('}', open) - open - 1);
      EXPECT_TRUE(parameters.contains("path:" + name)) << name;
    }
  }
}

TEST_F(OpenApiTest, RequestBodiesAreDocumentedForRoutesThatReadThem) {
  // Routes that parse a JSON body, and the members they require.
  const std::map<std::string, std::set<std::string>> bodies = {
      {"POST /v1/signup", {"company", "name", "email", "phone", "password"}},
      {"POST /v1/login", {"email", "password"}},
      {"PATCH /v1/tenant", {"name"}},
      {"PATCH /v1/users/{id}", {}},
      {"POST /v1/api-keys", {"name"}},
      {"POST /v1/invitations", {"email"}},
      {"POST /v1/invitations/accept", {"token", "name", "phone", "password"}},
      {"POST /v1/admin/login", {"email", "password"}},
      {"PUT /v1/credits/low-balance-threshold", {"threshold"}},
      {"POST /v1/refund-requests", {"purchase_id"}},
      {"POST /v1/purchases/checkout", {"pack_id"}},
      {"POST /v1/webhooks/stripe", {"id", "type", "data"}},
      {"POST /v1/adjustment-requests", {"charge_ids", "description"}},
      {"POST /v1/admin/tenants/{id}/credit-grants", {"credits", "price_minor", "currency", "payment_reference"}},
      {"POST /v1/admin/tenants/{id}/reservations", {"estimate", "purpose", "expires_at"}},
      {"POST /v1/admin/tenants/{id}/reservations/{reservation_id}/settle", {"usage"}},
      {"POST /v1/admin/refund-requests/{id}/reject", {"reason"}},
      {"POST /v1/admin/adjustment-requests/{id}/approve", {"resolution"}},
      {"POST /v1/admin/adjustment-requests/{id}/reject", {"reason"}},
      {"PUT /v1/admin/tenants/{id}/suspension", {"reason"}},
      {"POST /v1/subscription", {"plan"}},
      {"POST /v1/subscription/change", {"plan"}},
      {"POST /v1/admin/price-books", {"calls", "ai", "voice", "campaign", "numbers", "plans"}},
      {"POST /v1/admin/price-books/{version}/publish", {}},
      {"POST /v1/contact-lists", {"name"}},
      {"PATCH /v1/contact-lists/{id}", {"name"}},
      {"POST /v1/contacts", {"phone", "consent"}},
      {"PATCH /v1/contacts/{id}", {}},
      {"POST /v1/contacts/{id}/consent-revocation", {}},
      {"POST /v1/dnc", {"number"}},
      {"POST /v1/dnc/opt-outs", {"number"}},
      {"POST /v1/admin/dnc", {"number"}},
      {"POST /v1/provider-accounts", {"provider", "name"}},
      {"POST /v1/admin/provider-accounts", {"provider", "name"}},
      {"POST /v1/admin/calls", {"tenant_id", "to"}},
      {"POST /v1/phone-numbers", {"phone_number"}},
      {"POST /v1/phone-numbers/imports", {"phone_number", "account_id"}},
      {"POST /v1/caller-id-pools", {"name"}},
      {"POST /v1/caller-id-pools/{id}/numbers", {"number_id"}},
  };
  SchemaChecker checker(document_);
  for (const auto& route : api_->routes()) {
    std::string key = route.method + " " + route.pattern;
    SCOPED_TRACE(key);
    const json& operation = Operation(route);
    auto expected = bodies.find(key);
    if (route.streamed_body) {
      // Uploads: the body is a file, documented by its media type.
      ASSERT_TRUE(operation.contains("requestBody"));
      const json& content = operation["requestBody"]["content"];
      EXPECT_TRUE(content.contains("text/csv") || content.contains("text/plain")) << content.dump();
      EXPECT_FALSE(content.contains("application/json"));
      continue;
    }
    if (route.pattern.starts_with("/v1/webhooks/")) {
      // Carrier webhooks: the carrier's own format (Twilio form fields, Telnyx JSON), documented by media type.
      ASSERT_TRUE(operation.contains("requestBody"));
      const json& content = operation["requestBody"]["content"];
      EXPECT_TRUE(content.contains("application/x-www-form-urlencoded") || content.contains("application/json"));
      continue;
    }
    if (expected == bodies.end()) {
      EXPECT_FALSE(operation.contains("requestBody"));
      continue;
    }
    ASSERT_TRUE(operation.contains("requestBody"));
    EXPECT_TRUE(operation["requestBody"].value("required", false));
    const json& schema = checker.Resolve(operation["requestBody"]["content"]["application/json"]["schema"]);
    std::set<std::string> required;
    for (const auto& name : schema.value("required", json::array())) required.insert(name.get<std::string>());
    EXPECT_EQ(required, expected->second);
  }
}

TEST_F(OpenApiTest, EveryReferenceResolves) {
  SchemaChecker checker(document_);
  std::vector<std::string> broken;
  std::function<void(const json&)> walk = [&](const json& node) {
    if (node.is_object()) {
      if (node.contains("$ref") && node["$ref"].is_string() &&
          checker.Lookup(node["$ref"].get<std::string>()) == nullptr) {
        broken.push_back(node["$ref"].get<std::string>());
      }
      for (const auto& [key, child] : node.items()) walk(child);
    } else if (node.is_array()) {
      for (const auto& child : node) walk(child);
    }
  };
  walk(document_);
  EXPECT_TRUE(broken.empty()) << ::testing::PrintToString(broken);
}

TEST_F(OpenApiTest, SecuritySchemesDescribeTheRealCredentials) {
  const json& schemes = document_["components"]["securitySchemes"];
  EXPECT_EQ(schemes["sessionCookie"]["type"], "apiKey");
  EXPECT_EQ(schemes["sessionCookie"]["in"], "cookie");
  EXPECT_EQ(schemes["sessionCookie"]["name"], "clozit_session");
  EXPECT_EQ(schemes["operatorCookie"]["type"], "apiKey");
  EXPECT_EQ(schemes["operatorCookie"]["in"], "cookie");
  EXPECT_EQ(schemes["operatorCookie"]["name"], "clozit_operator_session");
  EXPECT_EQ(schemes["csrfToken"]["in"], "header");
  EXPECT_EQ(schemes["csrfToken"]["name"], "X-CSRF-Token");
  EXPECT_EQ(schemes["apiKey"]["type"], "http");
  EXPECT_EQ(schemes["apiKey"]["scheme"], "bearer");
  EXPECT_TRUE(schemes["apiKey"]["bearerFormat"].get<std::string>().starts_with("ck_"));
}

TEST_F(OpenApiTest, ProblemSchemaListsEveryErrorCode) {
  const json& problem = document_["components"]["schemas"]["Problem"];
  std::set<std::string> documented;
  for (const auto& code : problem["properties"]["code"]["enum"]) documented.insert(code.get<std::string>());
  for (int code = 0; code <= static_cast<int>(ErrorCode::kInternal); ++code) {
    EXPECT_TRUE(documented.contains(std::string(CodeName(static_cast<ErrorCode>(code))))) << code;
  }
  for (const char* member : {"type", "title", "status", "code", "detail", "field", "request_id"}) {
    EXPECT_TRUE(problem["properties"].contains(member)) << member;
  }
}

TEST_F(OpenApiTest, ServedDocumentIsTheEmbeddedOne) {
  auto reply = Send("GET", "/v1/openapi.json");
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.Header("Content-Type"), "application/json");
  EXPECT_EQ(reply.data, document_);
}

}  // namespace
}  // namespace clozit::api::test
