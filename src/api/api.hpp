// api: the public REST surface under /v1 — thin handlers that parse and
// validate, call a module, and render JSON.
//
// Every route is declared once as a RouteSpec: its method and pattern, who may
// call it (public, a tenant principal with at least some role, an operator),
// and its handler. The pipeline around each handler is the same for all:
// per-IP limits on sign-up and login, authentication (session cookie or
// `Authorization: Bearer` API key), CSRF on cookie-authenticated state
// changes, the role check, a per-principal rate limit, and Idempotency-Key
// replay on POST. Errors leave as problem+json. Thread-safe after
// construction.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accounts/accounts.hpp"
#include "common/config.hpp"
#include "http/metrics.hpp"
#include "http/rate_limiter.hpp"
#include "http/router.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::billing {
struct Billing;
namespace stripe {
class StripeWebhooks;
}
}  // namespace clozit::billing
namespace clozit::telephony {
class Telephony;
}

namespace clozit::api {

class IdempotencyStore;

enum class Access {
  kPublic,    // anyone
  kTenant,    // a user session or API key of a tenant, with at least `min_role`
  kSession,   // a user's cookie session only (logout)
  kOperator,  // a platform operator session
};

/// What a handler gets: the request and who is calling.
struct Context {
  http::Request& request;
  std::optional<accounts::Principal> principal;
  privacy::Actor actor;
  /// Cookies etc. the handler wants on the response.
  http::Headers response_headers;
};

using RouteHandler = std::function<Result<http::Response>(Context&)>;

struct RouteSpec {
  std::string method;
  std::string pattern;
  Access access = Access::kTenant;
  accounts::Role min_role = accounts::Role::kViewer;
  bool per_ip_limited = false;  // sign-up, login, invitation acceptance
  RouteHandler handler;
  bool streamed_body = false;  // uploads: the server spools the body to a file (Request::body_file)
  /// The handler makes Idempotency-Key safe itself, claiming the key in the same transaction as its write
  /// (billing reservations): the generic replay store is skipped, so a retry after a crash between claim
  /// and response is never stuck behind an abandoned "in flight" claim.
  bool own_idempotency = false;
};

struct ApiDeps {
  storage::Database& db;
  accounts::Accounts& accounts;
  privacy::AuditLog& audit;
  http::Metrics& metrics;
  const Clock& clock;
  Random& random;
  const Config& config;
  /// Credits, purchases, refunds; null: the billing routes answer 503 unavailable.
  billing::Billing* billing = nullptr;
  /// Provider accounts, calls, webhooks; null: the telephony routes answer 503 unavailable.
  telephony::Telephony* telephony = nullptr;
  /// Stripe's signed events; null: POST /v1/webhooks/stripe answers 503 unavailable.
  billing::stripe::StripeWebhooks* stripe_webhooks = nullptr;
};

class Api {
 public:
  explicit Api(ApiDeps deps);
  ~Api();
  /// The full handler: instrumentation, routing, the pipeline, the routes.
  http::Handler Handler();
  const std::vector<RouteSpec>& routes() const { return specs_; }
  /// For http::ServerOptions::streams_body.
  bool StreamsBody(std::string_view method, std::string_view path) const { return router_.StreamsBody(method, path); }
  /// For http::ServerOptions::admit_upload: the pipeline's checks of who is asking (authentication, CSRF, role,
  /// suspension) on an upload's headers, so that a refused caller's body is never spooled. The rate limits are
  /// counted when the whole request runs.
  std::optional<http::Response> AdmitUpload(http::Request& headers_only);
  /// The OpenAPI 3.1 document served at /v1/openapi.json.
  static const std::string& OpenApiDocument();

 private:
  http::Response RunPipeline(const RouteSpec& spec, http::Request& request);

  /// Who may run `spec`: fills `context` with the principal, or returns the refusal. `count` takes the rate
  /// limits' tokens; without it (an upload's admission on its headers) they are only looked at.
  std::optional<http::Response> Admit(const RouteSpec& spec, http::Request& request, Context& context, bool count);
  void AddAccountRoutes();
  void AddSystemRoutes();
  void AddAdminRoutes();
  void AddBillingRoutes();
  void AddContactRoutes();      // contact_routes.cpp: lists, contacts, imports, do-not-call
  void AddTelephonyRoutes();    // telephony_routes.cpp: provider accounts, webhooks, calls
  void AddPhoneNumberRoutes();  // telephony_routes.cpp: phone numbers, caller-id pools

  ApiDeps deps_;
  std::vector<RouteSpec> specs_;
  http::Router router_;
  http::RateLimiter per_principal_;
  http::RateLimiter per_ip_auth_;
  std::unique_ptr<IdempotencyStore> idempotency_;
};

}  // namespace clozit::api
