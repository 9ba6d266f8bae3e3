// The real api::Api, wired as src/app/application.cpp wires it, over a fresh
// SQLite file, driven in-process through Api::Handler() with hand-built
// requests (no sockets). Every response is checked against the OpenAPI
// document: its status must be documented for the matched operation, and a
// JSON body must match the documented schema.
#pragma once

#include <cctype>
#include <filesystem>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "accounts/accounts.hpp"
#include "api/api.hpp"
#include "billing/billing.hpp"
#include "billing/stripe/webhooks.hpp"
#include "common/clock.hpp"
#include "common/config.hpp"
#include "http/message.hpp"
#include "http/metrics.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"
#include "storage/migrations.hpp"

namespace clozit::api::test {

using json = nlohmann::json;

/// A small JSON Schema (2020-12 subset) checker for the shapes our OpenAPI
/// document uses: $ref, allOf, oneOf, type, enum, const, required,
/// properties, items, pattern, minimum/maximum, minLength/maxLength.
class SchemaChecker {
 public:
  explicit SchemaChecker(const json& document) : document_(document) {}

  /// The node a "#/..." reference names, or nullptr.
  const json* Lookup(const std::string& ref) const {
    if (!ref.starts_with("#/")) return nullptr;
    json::json_pointer pointer(ref.substr(1));
    return document_.contains(pointer) ? &document_.at(pointer) : nullptr;
  }

  /// Follows $ref chains of OpenAPI objects (responses, parameters, headers).
  const json& Resolve(const json& node) const {
    const json* current = &node;
    for (int depth = 0; depth < 16 && current->is_object() && current->contains("$ref"); ++depth) {
      const json* target = Lookup(current->at("$ref").get<std::string>());
      if (target == nullptr) break;
      current = target;
    }
    return *current;
  }

  std::vector<std::string> Check(const json& schema, const json& value) const {
    std::vector<std::string> errors;
    Check(schema, value, "$", errors);
    return errors;
  }

 private:
  static bool HasType(const json& value, const std::string& type) {
    if (type == "object") return value.is_object();
    if (type == "array") return value.is_array();
    if (type == "string") return value.is_string();
    if (type == "integer") return value.is_number_integer();
    if (type == "number") return value.is_number();
    if (type == "boolean") return value.is_boolean();
    if (type == "null") return value.is_null();
    return false;
  }

  void Check(const json& schema, const json& value, const std::string& path, std::vector<std::string>& errors) const {
    if (!schema.is_object()) return;
    if (schema.contains("$ref")) {
      const json* target = Lookup(schema["$ref"].get<std::string>());
      if (target == nullptr) {
        errors.push_back(path + ": unresolvable $ref " + schema["$ref"].dump());
        return;
      }
      Check(*target, value, path, errors);
    }
    if (schema.contains("allOf")) {
      for (const auto& part : schema["allOf"]) Check(part, value, path, errors);
    }
    if (schema.contains("oneOf")) {
      int matches = 0;
      for (const auto& part : schema["oneOf"]) {
        std::vector<std::string> sub;
        Check(part, value, path, sub);
        matches += sub.empty() ? 1 : 0;
      }
      if (matches != 1) errors.push_back(path + ": matches " + std::to_string(matches) + " oneOf branches");
    }
    if (schema.contains("type")) {
      bool ok = false;
      if (schema["type"].is_string()) {
        ok = HasType(value, schema["type"].get<std::string>());
      } else {
        for (const auto& type : schema["type"]) ok = ok || HasType(value, type.get<std::string>());
      }
      if (!ok) {
        errors.push_back(path + ": expected type " + schema["type"].dump() + ", got " + value.dump());
        return;
      }
    }
    if (schema.contains("enum")) {
      bool found = false;
      for (const auto& option : schema["enum"]) found = found || option == value;
      if (!found) errors.push_back(path + ": " + value.dump() + " not in enum " + schema["enum"].dump());
    }
    if (schema.contains("const") && schema["const"] != value) {
      errors.push_back(path + ": expected " + schema["const"].dump() + ", got " + value.dump());
    }
    if (value.is_string()) {
      const auto& text = value.get_ref<const std::string&>();
      if (schema.contains("pattern") &&
          !std::regex_search(text, std::regex(schema["pattern"].get<std::string>(), std::regex::ECMAScript))) {
        errors.push_back(path + ": " + value.dump() + " does not match " + schema["pattern"].dump());
      }
      if (schema.contains("minLength") && text.size() < schema["minLength"].get<size_t>()) {
        errors.push_back(path + ": shorter than minLength");
      }
      if (schema.contains("maxLength") && text.size() > schema["maxLength"].get<size_t>()) {
        errors.push_back(path + ": longer than maxLength");
      }
    }
    if (value.is_number()) {
      if (schema.contains("minimum") && value.get<double>() < schema["minimum"].get<double>()) {
        errors.push_back(path + ": below minimum");
      }
      if (schema.contains("maximum") && value.get<double>() > schema["maximum"].get<double>()) {
        errors.push_back(path + ": above maximum");
      }
    }
    if (value.is_object()) {
      if (schema.contains("required")) {
        for (const auto& name : schema["required"]) {
          if (!value.contains(name.get<std::string>())) errors.push_back(path + ": missing " + name.dump());
        }
      }
      if (schema.contains("properties")) {
        for (const auto& [name, property] : schema["properties"].items()) {
          if (value.contains(name)) Check(property, value[name], path + "." + name, errors);
        }
      }
    }
    if (value.is_array() && schema.contains("items")) {
      for (size_t i = 0; i < value.size(); ++i)
        Check(schema["items"], value[i], path + "[" + std::to_string(i) + "]", errors);
    }
  }

  const json& document_;
};

inline std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

/// One request's outcome, with the body parsed when it is JSON.
struct Reply {
  int status = 0;
  http::Headers headers;
  std::string body;
  json data;  // discarded unless the body is JSON
  std::string route;

  std::string Header(std::string_view name) const { return std::string(headers.GetOr(name, "")); }
};

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device device;
    directory_ = std::filesystem::path(::testing::TempDir()) /
                 ("clozit_api_" + std::to_string(device()) + "_" + std::to_string(device()));
    config_.database.url = "sqlite:" + (directory_ / "clozit.db").string();
    config_.accounts.argon2_opslimit = 1;
    config_.accounts.argon2_memlimit_kib = 8192;
    document_ = json::parse(Api::OpenApiDocument());
    Build();
  }

  void TearDown() override {
    api_.reset();
    stripe_webhooks_.reset();
    billing_.reset();
    accounts_.reset();
    audit_.reset();
    db_.reset();
    std::filesystem::remove_all(directory_);
  }

  /// Wires the modules as app::Application::Create does (again, after a config_ change).
  void Build() {
    api_.reset();
    stripe_webhooks_.reset();
    billing_.reset();
    accounts_.reset();
    audit_.reset();
    db_.reset();
    storage::OpenOptions options;
    options.url = config_.database.url;
    options.password = config_.database.password;
    options.pool_size = static_cast<int>(config_.database.pool_size);
    options.busy_timeout_ms = static_cast<int>(config_.database.busy_timeout_ms);
    options.write_batch_max = static_cast<int>(config_.database.write_batch_max);
    auto opened = storage::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    db_ = std::move(opened).value();
    auto migrated = storage::Migrate(*db_, clock_);
    ASSERT_TRUE(migrated.ok()) << migrated.error().message;
    audit_ = std::make_unique<privacy::AuditLog>(clock_, random_);
    accounts_ = std::make_unique<accounts::Accounts>(*db_, clock_, random_, *audit_, config_.accounts);
    billing_ = std::make_unique<billing::Billing>(*db_, *audit_, clock_, random_, payment_provider_);
    stripe_webhooks_ = std::make_unique<billing::stripe::StripeWebhooks>(
        *db_, billing_->checkouts, clock_, billing::stripe::WebhookSettings{"whsec_api_test"});
    ApiDeps deps{*db_, *accounts_, *audit_, metrics_, clock_, random_, config_, billing_.get()};
    deps.stripe_webhooks = stripe_webhooks_.get();
    api_ = std::make_unique<Api>(deps);
    handler_ = api_->Handler();
  }

  /// Sends a request through the whole pipeline and checks the reply against the document.
  Reply Send(const std::string& method, const std::string& target, const std::string& body = {},
             const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    http::Request request;
    request.method = method;
    request.target = target;
    auto question = target.find('?');
    request.path = http::PercentDecode(target.substr(0, question), false);
    if (question != std::string::npos) request.query = http::ParseQuery(target.substr(question + 1));
    for (const auto& [name, value] : headers) request.headers.Add(name, value);
    if (!body.empty() && !request.headers.Get("Content-Type")) request.headers.Set("Content-Type", "application/json");
    request.body = body;
    request.remote_ip = remote_ip_;
    http::Response response = handler_(request);

    Reply reply{response.status, response.headers, response.body, json::parse(response.body, nullptr, false),
                request.route};
    CheckDocumented(method, request.route, reply);
    return reply;
  }

  /// Headers for a cookie session, with the CSRF token when `csrf` is set.
  struct Session {
    std::string cookie;  // the token
    std::string csrf;
    std::vector<std::pair<std::string, std::string>> Headers(bool with_csrf = true) const {
      std::vector<std::pair<std::string, std::string>> out = {{"Cookie", "clozit_session=" + cookie}};
      if (with_csrf) out.emplace_back("X-CSRF-Token", csrf);
      return out;
    }
  };

  static std::string CookieValue(const std::string& set_cookie, const std::string& name) {
    if (!set_cookie.starts_with(name + "=")) return {};
    auto end = set_cookie.find(';');
    return set_cookie.substr(name.size() + 1, end - name.size() - 1);
  }

  static json SignUpBody(const std::string& email = "owner@example.com") {
    return {{"company", "Acme Inc"},
            {"name", "Olivia Owner"},
            {"email", email},
            {"phone", "+14155552671"},
            {"password", "Correct-Horse-42"}};
  }

  Session SignUp(const std::string& email = "owner@example.com") {
    auto reply = Send("POST", "/v1/signup", SignUpBody(email).dump());
    EXPECT_EQ(reply.status, 201) << reply.body;
    return {CookieValue(reply.Header("Set-Cookie"), "clozit_session"), reply.data.value("csrf_token", "")};
  }

  /// Creates the operator ops@clozit.tech (once) and logs in: the operator cookie and CSRF headers.
  std::vector<std::pair<std::string, std::string>> OperatorLogin() {
    privacy::Actor cli{"system", "cli", "", "127.0.0.1", "cli"};
    (void)accounts_->CreateOperator("ops@clozit.tech", "Ops", "Operator-Pass-9", cli);  // exists on a second call
    auto login =
        Send("POST", "/v1/admin/login", json{{"email", "ops@clozit.tech"}, {"password", "Operator-Pass-9"}}.dump());
    EXPECT_EQ(login.status, 200) << login.body;
    return {{"Cookie", "clozit_operator_session=" + CookieValue(login.Header("Set-Cookie"), "clozit_operator_session")},
            {"X-CSRF-Token", login.data.value("csrf_token", "")}};
  }

  std::vector<std::pair<std::string, std::string>> Bearer(const std::string& secret) {
    return {{"Authorization", "Bearer " + secret}};
  }

  int64_t Count(const std::string& sql) {
    auto rows = db_->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    return rows.ok() && !rows->empty() ? rows->front().Int(0) : -1;
  }

  void CheckDocumented(const std::string& method, const std::string& route, const Reply& reply) {
    if (!route.starts_with("/")) return;  // 404 and 405 from the router belong to no operation
    SchemaChecker checker(document_);
    const json& paths = document_["paths"];
    ASSERT_TRUE(paths.contains(route)) << route << " is not documented";
    const json& path_item = paths[route];
    ASSERT_TRUE(path_item.contains(Lower(method))) << method << " " << route << " is not documented";
    const json& operation = path_item[Lower(method)];
    const json& responses = operation["responses"];
    std::string status = std::to_string(reply.status);
    std::string where = method + " " + route + " → " + status;
    const json* documented = nullptr;
    if (responses.contains(status)) {
      documented = &responses[status];
    } else if (reply.status >= 500 && responses.contains("default")) {
      documented = &responses["default"];
    }
    ASSERT_NE(documented, nullptr) << where << " is not a documented response: " << reply.body;
    const json& response = checker.Resolve(*documented);
    if (response.contains("headers")) {
      for (const auto& [name, header_ref] : response["headers"].items()) {
        const json& header = checker.Resolve(header_ref);
        if (header.value("required", false)) {
          EXPECT_TRUE(reply.headers.Get(name).has_value()) << where << " lacks documented header " << name;
        }
      }
    }
    if (reply.body.empty()) {
      EXPECT_FALSE(response.contains("content")) << where << " documents a body but sent none";
      return;
    }
    std::string content_type = reply.Header("Content-Type");
    ASSERT_TRUE(response.contains("content") && response["content"].contains(content_type))
        << where << " sent undocumented content type '" << content_type << "'";
    if (content_type.find("json") == std::string::npos) return;
    ASSERT_FALSE(reply.data.is_discarded()) << where << ": body is not JSON";
    auto errors = checker.Check(response["content"][content_type]["schema"], reply.data);
    EXPECT_TRUE(errors.empty()) << where << " does not match its schema:\n"
                                << ::testing::PrintToString(errors) << "\n"
                                << reply.body;
  }

  std::filesystem::path directory_;
  Config config_;
  SystemClock clock_;
  SystemRandom random_;
  http::Metrics metrics_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<privacy::AuditLog> audit_;
  std::unique_ptr<accounts::Accounts> accounts_;
  billing::FakePaymentProvider payment_provider_;
  std::unique_ptr<billing::stripe::StripeWebhooks> stripe_webhooks_;
  std::unique_ptr<billing::Billing> billing_;
  std::unique_ptr<Api> api_;
  http::Handler handler_;
  json document_;
  std::string remote_ip_ = "192.0.2.1";
};

}  // namespace clozit::api::test
