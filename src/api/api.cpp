#include "api/api.hpp"

#include <strings.h>

#include <set>

#include <nlohmann/json.hpp>

#include "api/idempotency.hpp"
#include "api/json_body.hpp"
#include "api/serialize.hpp"
#include "common/encoding.hpp"
#include "http/middleware.hpp"
#include "storage/migrations.hpp"

namespace clozit::api {

const std::string& OpenApiText();  // generated from openapi.json by the build

const std::string& Api::OpenApiDocument() { return OpenApiText(); }

namespace {

bool IsStateChanging(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

// What a suspended tenant may still change (ADR 0027): sign out, contain a leak (revoke a key, remove a user),
// honour the people it called (do-not-call, consent revocation, erasure), and pay its way out of non-payment.
bool AllowedWhileSuspended(const std::string& method, const std::string& pattern) {
  static const std::set<std::pair<std::string, std::string>> kAllowed = {
      {"POST", "/v1/logout"},          {"DELETE", "/v1/api-keys/{id}"},
      {"DELETE", "/v1/users/{id}"},    {"POST", "/v1/dnc"},
      {"POST", "/v1/dnc/opt-outs"},    {"POST", "/v1/contacts/{id}/consent-revocation"},
      {"DELETE", "/v1/contacts/{id}"}, {"POST", "/v1/purchases/checkout"},
  };
  return kAllowed.count({method, pattern}) > 0;
}

std::optional<std::string> BearerToken(const http::Request& request) {
  auto header = request.headers.Get("Authorization");
  if (!header) return std::nullopt;
  constexpr std::string_view kScheme = "Bearer ";
  if (header->size() <= kScheme.size() || strncasecmp(header->data(), kScheme.data(), kScheme.size()) != 0) {
    return std::string();  // present but not a bearer token: authentication fails
  }
  return std::string(header->substr(kScheme.size()));
}

// Behind the routes (databases, JSON, logs) text is UTF-8. A path that decodes to anything else names no
// resource (404, as for one no route matches); such a query parameter is the caller's mistake (400). PostgreSQL
// refused them as a 500 from deep inside.
std::optional<Error> NotUtf8(const http::Request& request) {
  if (!IsValidUtf8(request.path)) return Error::NotFound("no such resource");
  for (const auto& [name, value] : request.query) {
    if (!IsValidUtf8(name)) return Error::InvalidArgument("query", "a query parameter's name is not UTF-8");
    if (!IsValidUtf8(value)) return Error::InvalidArgument(name, "query parameter " + name + " is not UTF-8");
  }
  return std::nullopt;
}

}  // namespace

Api::Api(ApiDeps deps)
    : deps_(deps),
      per_principal_(deps.clock, deps.config.rate_limit.per_principal_per_second, std::chrono::seconds(1),
                     deps.config.rate_limit.per_principal_burst),
      per_ip_auth_(deps.clock, deps.config.rate_limit.auth_per_ip_per_minute, std::chrono::minutes(1),
                   deps.config.rate_limit.auth_per_ip_per_minute),
      idempotency_(std::make_unique<IdempotencyStore>(deps.db, deps.clock)) {
  AddSystemRoutes();
  AddAccountRoutes();
  AddAdminRoutes();
  AddBillingRoutes();
  AddContactRoutes();
  AddTelephonyRoutes();
  AddPhoneNumberRoutes();
  for (const auto& spec : specs_) {
    http::Admission admit;
    if (spec.streamed_body) {
      admit = [this, &spec](http::Request& headers_only) {
        Context scratch{headers_only, std::nullopt, {}, {}};
        return Admit(spec, headers_only, scratch, false);
      };
    }
    router_.Add(
        spec.method, spec.pattern, [this, &spec](http::Request& request) { return RunPipeline(spec, request); },
        spec.streamed_body, std::move(admit));
  }
}

Api::~Api() = default;

http::Handler Api::Handler() {
  http::InstrumentOptions options;
  options.access_log = deps_.config.log.access_log;
  return http::Instrument([this](http::Request& request) { return router_.Dispatch(request); }, deps_.metrics,
                          deps_.random, options);
}

std::optional<http::Response> Api::AdmitUpload(http::Request& headers_only) {
  headers_only.request_id = "req_" + RandomToken(deps_.random, 12);
  auto refusal = router_.Admit(headers_only);
  if (refusal) refusal->headers.Set("X-Request-Id", headers_only.request_id);
  return refusal;
}

std::optional<http::Response> Api::Admit(const RouteSpec& spec, http::Request& request, Context& context, bool count) {
  auto problem = [&](const Error& error) { return http::Problem(error, request.request_id); };
  if (std::optional<Error> refused = NotUtf8(request)) return problem(*refused);
  auto limited = [&](const http::RateLimiter::Decision& decision) {
    auto response = problem(Error::Make(ErrorCode::kRateLimited, "rate limit exceeded; retry later"));
    response.headers.Set("Retry-After", std::to_string(std::max<int64_t>(1, decision.retry_after.count())));
    return response;
  };

  // An upload's admission only looks (the whole request takes the token when it runs): a caller over its limit
  // is refused before its body is spooled, and an admitted one is not counted twice.
  if (spec.per_ip_limited) {
    const std::string key = "ip:" + request.remote_ip;
    auto decision = count ? per_ip_auth_.Take(key) : per_ip_auth_.Peek(key);
    if (!decision.allowed) return limited(decision);
  }

  context.actor.ip = request.remote_ip;
  context.actor.request_id = request.request_id;

  if (spec.access != Access::kPublic) {
    Result<accounts::Principal> principal = Error::Make(ErrorCode::kUnauthenticated, "authentication required");
    bool via_cookie = false;
    if (auto bearer = BearerToken(request); bearer && spec.access == Access::kTenant) {
      principal = deps_.accounts.AuthenticateApiKey(*bearer);
    } else if (spec.access == Access::kOperator) {
      if (auto cookie = request.Cookie("clozit_operator_session")) {
        principal = deps_.accounts.AuthenticateSession(*cookie);
        via_cookie = true;
      }
    } else if (auto cookie = request.Cookie("clozit_session")) {
      principal = deps_.accounts.AuthenticateSession(*cookie);
      via_cookie = true;
    }
    if (!principal) return problem(principal.error());
    bool operator_principal = principal->kind == accounts::Principal::Kind::kOperator;
    if ((spec.access == Access::kOperator) != operator_principal) {
      return problem(Error::Make(ErrorCode::kUnauthenticated, "authentication required"));
    }
    if (spec.access == Access::kSession && principal->session_id.empty()) {
      return problem(Error::Make(ErrorCode::kUnauthenticated, "a session cookie is required"));
    }
    if (via_cookie && IsStateChanging(request.method)) {
      auto csrf = request.headers.Get("X-CSRF-Token");
      if (!csrf || !ConstantTimeEquals(*csrf, principal->csrf_token)) {
        return problem(
            Error::Make(ErrorCode::kPermissionDenied, "missing or wrong X-CSRF-Token header", "X-CSRF-Token"));
      }
    }
    if (principal->role < spec.min_role) {
      return problem(Error::Make(ErrorCode::kPermissionDenied,
                                 "this action needs the " + std::string(accounts::RoleName(spec.min_role)) + " role"));
    }
    // A suspended tenant keeps read access (its data stays its own to see and export).
    if (principal->suspended && IsStateChanging(request.method) && !AllowedWhileSuspended(spec.method, spec.pattern)) {
      return problem(Error::Make(ErrorCode::kPermissionDenied,
                                 "this account is suspended: it can read its data but not change anything"));
    }
    auto decision = count ? per_principal_.Take(principal->id) : per_principal_.Peek(principal->id);
    if (!decision.allowed) return limited(decision);
    context.actor.kind = principal->ActorKind();
    context.actor.id = principal->id;
    context.actor.tenant_id = principal->tenant_id.str();
    context.principal = std::move(principal).value();
  }
  return std::nullopt;
}

http::Response Api::RunPipeline(const RouteSpec& spec, http::Request& request) {
  Context context{request, std::nullopt, {}, {}};
  if (auto refused = Admit(spec, request, context, true)) return std::move(*refused);
  auto problem = [&](const Error& error) { return http::Problem(error, request.request_id); };

  auto run = [&]() -> http::Response {
    auto result = spec.handler(context);
    if (!result) return problem(result.error());
    http::Response response = std::move(result).value();
    for (const auto& [name, value] : context.response_headers.all()) response.headers.Add(name, value);
    return response;
  };
  // Public routes only where each address is rate limited (sign-up, log-in, invitations): the others are signed
  // deliveries keyed by their own event ids, and a store open to anyone there was a free database write.
  if (request.method == "POST" && (context.principal || spec.per_ip_limited) &&
      request.headers.Get("Idempotency-Key") && !spec.own_idempotency) {
    std::string scope = context.principal ? context.principal->id : "ip:" + request.remote_ip;
    return idempotency_->Run(scope, request, run);
  }
  return run();
}

void Api::AddSystemRoutes() {
  specs_.push_back({"GET", "/healthz", Access::kPublic, accounts::Role::kViewer, false,
                    [](Context&) { return Result<http::Response>(http::Response::Json(200, R"({"status":"ok"})")); }});
  specs_.push_back({"GET", "/readyz", Access::kPublic, accounts::Role::kViewer, false, [this](Context&) {
                      nlohmann::json body = {{"database", "ok"}, {"migrations", "current"}};
                      bool ready = true;
                      if (auto ping = deps_.db.Ping(); !ping) {
                        body["database"] = "unreachable";
                        ready = false;
                      } else if (auto current = storage::IsCurrent(deps_.db); !current || !*current) {
                        body["migrations"] = "pending";
                        ready = false;
                      }
                      body["status"] = ready ? "ready" : "not_ready";
                      return Result<http::Response>(http::Response::Json(ready ? 200 : 503, body.dump()));
                    }});
  specs_.push_back({"GET", "/metrics", Access::kPublic, accounts::Role::kViewer, false, [this](Context&) {
                      return Result<http::Response>(
                          http::Response::Text(200, deps_.metrics.Render(), "text/plain; version=0.0.4"));
                    }});
  specs_.push_back({"GET", "/v1/openapi.json", Access::kPublic, accounts::Role::kViewer, false,
                    [](Context&) { return Result<http::Response>(http::Response::Json(200, OpenApiDocument())); }});
}

}  // namespace clozit::api
