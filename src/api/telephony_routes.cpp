// Routes for telephony: provider accounts (tenants' own and, for operators,
// the platform's), calls, and the carriers' signed webhooks.
//
// Credentials go in once (POST) and never come out: accounts render a masked
// hint only. Webhook routes are public; Telephony's Webhooks verifies the
// signature with the account named in the path before reading the body, and
// refuses with 403 otherwise. Calls are placed by the dialer; until it lands,
// operators place test calls through POST /v1/admin/calls (no consent check:
// the route is for operators exercising a carrier account, not for tenants).
#include <nlohmann/json.hpp>

#include "api/api.hpp"
#include "api/json_body.hpp"
#include "api/serialize.hpp"
#include "telephony/telephony.hpp"

namespace clozit::api {
namespace {

using accounts::Role;
using json = nlohmann::json;
using telephony::ProviderKind;

json Time(const std::optional<TimePoint>& at) { return at ? json(FormatRfc3339(*at)) : json(nullptr); }
json TextOrNull(const std::string& text) { return text.empty() ? json(nullptr) : json(text); }

json ToJson(const telephony::ProviderAccount& account) {
  json out = {{"id", account.id.str()},
              {"scope", account.tenant_id.empty() ? "platform" : "tenant"},
              {"provider", telephony::ProviderName(account.provider)},
              {"name", account.name},
              {"api_base", account.api_base},
              {"credential_hint", account.secret_hint},
              {"is_default", account.is_default},
              {"managed_by", TextOrNull(account.managed_by)},
              {"created_at", FormatRfc3339(account.created_at)},
              {"updated_at", FormatRfc3339(account.updated_at)}};
  if (account.provider == ProviderKind::kTwilio) {
    out["account_sid"] = account.account_sid;
  } else {
    out["connection_id"] = account.connection_id;
    out["public_key"] = account.public_key;
  }
  return out;
}

json ToJson(const telephony::Call& call) {
  return {{"id", call.id.str()},
          {"account_id", call.account_id},
          {"provider", telephony::ProviderName(call.provider)},
          {"provider_call_id", TextOrNull(call.provider_call_id)},
          {"direction", call.direction},
          {"from", call.from},
          {"to", call.to},
          {"status", call.status},
          {"machine_detection", call.machine_detection},
          {"answered_by", TextOrNull(call.answered_by)},
          {"hangup_cause", TextOrNull(call.hangup_cause)},
          {"error_code", TextOrNull(call.error_code)},
          {"duration_seconds", call.duration_seconds ? json(*call.duration_seconds) : json(nullptr)},
          {"created_at", FormatRfc3339(call.created_at)},
          {"ringing_at", Time(call.ringing_at)},
          {"answered_at", Time(call.answered_at)},
          {"ended_at", Time(call.ended_at)},
          {"updated_at", FormatRfc3339(call.updated_at)}};
}

json ToJson(const telephony::CallDetail& detail) {
  json out = ToJson(detail.call);
  json events = json::array();
  for (const auto& e : detail.events) {
    events.push_back({{"kind", e.kind},
                      {"outcome", e.outcome == "none" ? json(nullptr) : json(e.outcome)},
                      {"answered_by", TextOrNull(e.answered_by)},
                      {"detail", TextOrNull(e.detail)},
                      {"sequence", e.sequence ? json(*e.sequence) : json(nullptr)},
                      {"duration_seconds", e.duration_seconds ? json(*e.duration_seconds) : json(nullptr)},
                      {"occurred_at", Time(e.occurred_at)},
                      {"received_at", FormatRfc3339(e.received_at)},
                      {"effect", e.effect}});
  }
  out["events"] = events;
  return out;
}

json ToJson(const telephony::PhoneNumber& number) {
  return {{"id", number.id.str()},
          {"phone_number", number.e164},
          {"account_id", number.account_id},
          {"provider", telephony::ProviderName(number.provider)},
          {"country", number.country},
          {"number_type", number.number_type},
          {"capabilities", number.capabilities},
          {"source", number.source},
          {"status", number.status},
          {"error_code", TextOrNull(number.error_code)},
          {"purchased_at", Time(number.purchased_at)},
          {"next_fee_at", Time(number.next_fee_at)},
          {"released_at", Time(number.released_at)},
          {"created_at", FormatRfc3339(number.created_at)},
          {"updated_at", FormatRfc3339(number.updated_at)}};
}

json ToJson(const telephony::AvailableNumber& number) {
  return {{"phone_number", number.phone_number},
          {"locality", TextOrNull(number.locality)},
          {"region", TextOrNull(number.region)},
          {"monthly_cost", TextOrNull(number.monthly_cost)},
          {"upfront_cost", TextOrNull(number.upfront_cost)},
          {"currency", TextOrNull(number.currency)}};
}

json ToJson(const telephony::CallerIdPool& pool) {
  return {{"id", pool.id.str()},
          {"name", pool.name},
          {"number_ids", pool.number_ids},
          {"created_at", FormatRfc3339(pool.created_at)},
          {"updated_at", FormatRfc3339(pool.updated_at)}};
}

json ToJson(const telephony::ConnectivityResult& result) {
  return {{"ok", result.ok},
          {"error_code", TextOrNull(result.error_code)},
          {"message", result.message},
          {"numbers", result.numbers}};
}

std::string Dump(const json& body) { return body.dump(-1, ' ', false, json::error_handler_t::replace); }

template <typename T>
http::Response PageOf(const Page<T>& page) {
  return PageResponse(page, [](const T& item) { return ToJson(item); });
}

Result<std::optional<bool>> OptionalBool(const json& body, const std::string& field) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return Error::InvalidArgument(field, field + " must be true or false");
  return std::optional<bool>(it->get<bool>());
}

Result<telephony::ProviderAccountInput> AccountInput(const http::Request& request) {
  CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(request));
  telephony::ProviderAccountInput input;
  CLOZIT_ASSIGN_OR_RETURN(std::string provider, RequiredString(body, "provider"));
  CLOZIT_ASSIGN_OR_RETURN(input.provider, telephony::ParseProviderKind(provider));
  CLOZIT_ASSIGN_OR_RETURN(input.name, RequiredString(body, "name"));
  CLOZIT_ASSIGN_OR_RETURN(auto api_base, OptionalString(body, "api_base"));
  input.api_base = api_base.value_or("");
  CLOZIT_ASSIGN_OR_RETURN(auto is_default, OptionalBool(body, "is_default"));
  input.is_default = is_default.value_or(false);
  if (input.provider == ProviderKind::kTwilio) {
    CLOZIT_ASSIGN_OR_RETURN(input.account_sid, RequiredString(body, "account_sid"));
    CLOZIT_ASSIGN_OR_RETURN(input.secret, RequiredString(body, "auth_token"));
  } else {
    CLOZIT_ASSIGN_OR_RETURN(input.secret, RequiredString(body, "api_key"));
    CLOZIT_ASSIGN_OR_RETURN(input.connection_id, RequiredString(body, "connection_id"));
    CLOZIT_ASSIGN_OR_RETURN(input.public_key, RequiredString(body, "public_key"));
  }
  return input;
}

Result<telephony::PlaceCallInput> CallInput(const json& body) {
  telephony::PlaceCallInput input;
  CLOZIT_ASSIGN_OR_RETURN(auto from, OptionalString(body, "from"));
  input.from = from.value_or("");
  CLOZIT_ASSIGN_OR_RETURN(input.to, RequiredString(body, "to"));
  CLOZIT_ASSIGN_OR_RETURN(auto machine_detection, OptionalBool(body, "machine_detection"));
  input.machine_detection = machine_detection.value_or(false);
  CLOZIT_ASSIGN_OR_RETURN(auto ring, OptionalInt(body, "ring_timeout_seconds"));
  if (ring) input.ring_timeout_seconds = *ring;
  CLOZIT_ASSIGN_OR_RETURN(auto max_duration, OptionalInt(body, "max_duration_seconds"));
  if (max_duration) input.max_duration_seconds = *max_duration;
  CLOZIT_ASSIGN_OR_RETURN(auto account_id, OptionalString(body, "account_id"));
  input.account_id = account_id.value_or("");
  return input;
}

template <typename T>
Result<http::Response> JsonOf(const Result<T>& result, int status = 200) {
  if (!result) return result.error();
  return http::Response::Json(status, Dump(ToJson(*result)));
}

}  // namespace

void Api::AddTelephonyRoutes() {
  telephony::Telephony* const* slot = &deps_.telephony;
  // 503 when the server runs without telephony (tools that build the Api only to list its routes).
  auto need = [slot]() -> Result<telephony::Telephony*> {
    if (*slot == nullptr) return Error::Make(ErrorCode::kUnavailable, "telephony is not configured");
    return *slot;
  };
  // Tenant routes act on the caller's tenant; operator routes on platform accounts (tenant "").
  auto owner = [](const Context& c) -> std::string {
    return c.principal->kind == accounts::Principal::Kind::kOperator ? std::string() : c.principal->tenant_id.str();
  };

  for (auto [prefix, access, write_role] :
       {std::tuple{std::string("/v1/provider-accounts"), Access::kTenant, Role::kAdmin},
        std::tuple{std::string("/v1/admin/provider-accounts"), Access::kOperator, Role::kViewer}}) {
    specs_.push_back({"GET", prefix, access, Role::kViewer, false, [need, owner](Context& c) -> Result<http::Response> {
                        CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                        CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                        CLOZIT_ASSIGN_OR_RETURN(auto accounts, t->accounts.List(owner(c), page));
                        return PageOf(accounts);
                      }});
    specs_.push_back({"POST", prefix, access, write_role, false, [need, owner](Context& c) -> Result<http::Response> {
                        CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                        CLOZIT_ASSIGN_OR_RETURN(auto input, AccountInput(c.request));
                        CLOZIT_ASSIGN_OR_RETURN(auto account, t->accounts.Create(owner(c), input, c.actor));
                        return http::Response::Json(201, Dump(ToJson(account)));
                      }});
    specs_.push_back(
        {"GET", prefix + "/{id}", access, Role::kViewer, false, [need, owner](Context& c) -> Result<http::Response> {
           CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
           CLOZIT_ASSIGN_OR_RETURN(auto account, t->accounts.Get(owner(c), c.request.Param("id")));
           return http::Response::Json(200, Dump(ToJson(account)));
         }});
    specs_.push_back(
        {"DELETE", prefix + "/{id}", access, write_role, false, [need, owner](Context& c) -> Result<http::Response> {
           CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
           CLOZIT_TRY(t->accounts.Delete(owner(c), c.request.Param("id"), c.actor));
           return http::Response::NoContent();
         }});
    specs_.push_back({"POST", prefix + "/{id}/check", access, write_role, false,
                      [need, owner](Context& c) -> Result<http::Response> {
                        CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                        CLOZIT_ASSIGN_OR_RETURN(auto result, t->accounts.Check(owner(c), c.request.Param("id")));
                        return http::Response::Json(200, Dump(ToJson(result)));
                      }});
  }

  // ---- carrier webhooks (public; the signature is the authentication)
  for (auto [pattern, provider] : {std::pair{"/v1/webhooks/twilio/{account_id}/status", ProviderKind::kTwilio},
                                   std::pair{"/v1/webhooks/telnyx/{account_id}", ProviderKind::kTelnyx}}) {
    specs_.push_back({"POST", pattern, Access::kPublic, Role::kViewer, false,
                      [need, provider](Context& c) -> Result<http::Response> {
                        CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                        const std::string url = t->public_base_url() + c.request.target;
                        CLOZIT_ASSIGN_OR_RETURN(
                            auto effect, t->webhooks.Receive(provider, c.request.Param("account_id"), url, c.request));
                        json out = {{"received", true}, {"effect", telephony::EffectName(effect)}};
                        return http::Response::Json(200, out.dump());
                      }});
  }

  // ---- calls
  specs_.push_back(
      {"GET", "/v1/calls", Access::kTenant, Role::kViewer, false, [need](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
         CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
         telephony::CallFilter filter{c.request.QueryParam("status").value_or(""),
                                      c.request.QueryParam("to").value_or(""),
                                      c.request.QueryParam("from").value_or("")};
         CLOZIT_ASSIGN_OR_RETURN(auto calls, t->calls.List(c.principal->tenant_id.str(), filter, page));
         return PageOf(calls);
       }});
  specs_.push_back(
      {"GET", "/v1/calls/{id}", Access::kTenant, Role::kViewer, false, [need](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
         CLOZIT_ASSIGN_OR_RETURN(auto detail, t->calls.Get(c.principal->tenant_id.str(), c.request.Param("id")));
         return http::Response::Json(200, Dump(ToJson(detail)));
       }});
  specs_.push_back({"POST", "/v1/admin/calls", Access::kOperator, Role::kViewer, false,
                    [need, this](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string tenant_id, RequiredString(body, "tenant_id"));
                      if (!deps_.accounts.GetTenant(TenantId(tenant_id))) {
                        return Error::Make(ErrorCode::kNotFound, "no such tenant", "tenant_id");
                      }
                      CLOZIT_ASSIGN_OR_RETURN(auto input, CallInput(body));
                      CLOZIT_ASSIGN_OR_RETURN(auto pool, OptionalString(body, "from_pool_id"));
                      if (pool && input.from.empty()) {
                        // The pool's least recently used number, through the account that holds it.
                        CLOZIT_ASSIGN_OR_RETURN(auto caller_id, t->numbers.PickFromPool(tenant_id, *pool));
                        input.from = caller_id.e164;
                        if (input.account_id.empty()) input.account_id = caller_id.account_id;
                      } else if (input.from.empty()) {
                        return Error::InvalidArgument("from", "from (or from_pool_id) is required");
                      }
                      CLOZIT_ASSIGN_OR_RETURN(auto call, t->calls.Place(tenant_id, input));
                      return http::Response::Json(201, Dump(ToJson(call)));
                    }});
}

void Api::AddPhoneNumberRoutes() {
  telephony::Telephony* const* slot = &deps_.telephony;
  auto need = [slot]() -> Result<telephony::Telephony*> {
    if (*slot == nullptr) return Error::Make(ErrorCode::kUnavailable, "telephony is not configured");
    return *slot;
  };

  // ---- phone numbers
  specs_.push_back({"GET", "/v1/phone-numbers/available", Access::kTenant, Role::kMember, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                      const auto& r = c.request;
                      telephony::NumberSearchInput input;
                      input.country = r.QueryParam("country").value_or("US");
                      input.area_code = r.QueryParam("area_code").value_or("");
                      input.contains = r.QueryParam("contains").value_or("");
                      input.account_id = r.QueryParam("account_id").value_or("");
                      if (auto limit = r.QueryParam("limit")) {
                        try {
                          input.limit = std::stoi(*limit);
                        } catch (const std::exception&) {
                          return Error::InvalidArgument("limit", "limit must be an integer");
                        }
                      }
                      CLOZIT_ASSIGN_OR_RETURN(auto found, t->numbers.Search(c.principal->tenant_id.str(), input));
                      json items = json::array();
                      for (const auto& number : found) items.push_back(ToJson(number));
                      return http::Response::Json(200, Dump(json{{"data", items}}));
                    }});
  specs_.push_back(
      {"GET", "/v1/phone-numbers", Access::kTenant, Role::kViewer, false, [need](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
         CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
         CLOZIT_ASSIGN_OR_RETURN(auto numbers, t->numbers.List(c.principal->tenant_id.str(),
                                                               c.request.QueryParam("status").value_or(""), page));
         return PageOf(numbers);
       }});
  specs_.push_back(
      {"POST", "/v1/phone-numbers", Access::kTenant, Role::kAdmin, false, [need](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
         CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
         telephony::BuyNumberInput input;
         CLOZIT_ASSIGN_OR_RETURN(input.phone_number, RequiredString(body, "phone_number"));
         CLOZIT_ASSIGN_OR_RETURN(auto account_id, OptionalString(body, "account_id"));
         input.account_id = account_id.value_or("");
         input.idempotency_key = c.request.headers.GetOr("Idempotency-Key", "");
         if (input.idempotency_key.empty()) {
           return Error::InvalidArgument("Idempotency-Key", "buying a number charges fees: send an Idempotency-Key");
         }
         return JsonOf(t->numbers.Buy(c.principal->tenant_id.str(), input, c.actor), 201);
       }});
  specs_.push_back({"POST", "/v1/phone-numbers/imports", Access::kTenant, Role::kAdmin, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string number, RequiredString(body, "phone_number"));
                      CLOZIT_ASSIGN_OR_RETURN(std::string account_id, RequiredString(body, "account_id"));
                      return JsonOf(t->numbers.Import(c.principal->tenant_id.str(), number, account_id, c.actor), 201);
                    }});
  specs_.push_back({"GET", "/v1/phone-numbers/{id}", Access::kTenant, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                      return JsonOf(t->numbers.Get(c.principal->tenant_id.str(), c.request.Param("id")));
                    }});
  specs_.push_back({"DELETE", "/v1/phone-numbers/{id}", Access::kTenant, Role::kAdmin, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                      return JsonOf(t->numbers.Release(c.principal->tenant_id.str(), c.request.Param("id"), c.actor));
                    }});

  // ---- caller-id pools
  specs_.push_back({"GET", "/v1/caller-id-pools", Access::kTenant, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                      CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto pools, t->numbers.ListPools(c.principal->tenant_id.str(), page));
                      return PageOf(pools);
                    }});
  specs_.push_back({"POST", "/v1/caller-id-pools", Access::kTenant, Role::kAdmin, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string name, RequiredString(body, "name"));
                      return JsonOf(t->numbers.CreatePool(c.principal->tenant_id.str(), name, c.actor), 201);
                    }});
  specs_.push_back({"GET", "/v1/caller-id-pools/{id}", Access::kTenant, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                      return JsonOf(t->numbers.GetPool(c.principal->tenant_id.str(), c.request.Param("id")));
                    }});
  specs_.push_back({"DELETE", "/v1/caller-id-pools/{id}", Access::kTenant, Role::kAdmin, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                      CLOZIT_TRY(t->numbers.DeletePool(c.principal->tenant_id.str(), c.request.Param("id"), c.actor));
                      return http::Response::NoContent();
                    }});
  specs_.push_back(
      {"POST", "/v1/caller-id-pools/{id}/numbers", Access::kTenant, Role::kAdmin, false,
       [need](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
         // Another tenant's pool is absent whatever the body says.
         CLOZIT_TRY(t->numbers.GetPool(c.principal->tenant_id.str(), c.request.Param("id")));
         CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
         CLOZIT_ASSIGN_OR_RETURN(std::string number_id, RequiredString(body, "number_id"));
         return JsonOf(t->numbers.AddToPool(c.principal->tenant_id.str(), c.request.Param("id"), number_id, c.actor));
       }});
  specs_.push_back({"DELETE", "/v1/caller-id-pools/{id}/numbers/{number_id}", Access::kTenant, Role::kAdmin, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* t, need());
                      return JsonOf(t->numbers.RemoveFromPool(c.principal->tenant_id.str(), c.request.Param("id"),
                                                              c.request.Param("number_id"), c.actor));
                    }});
}

}  // namespace clozit::api
