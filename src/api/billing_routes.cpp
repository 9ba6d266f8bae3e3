// Routes for credits, statements, purchases, refund and adjustment requests
// (tenant side), and the operator's grants and decisions (/v1/admin/…).
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <chrono>

#include "api/api.hpp"
#include "api/json_body.hpp"
#include "api/serialize.hpp"
#include "billing/billing.hpp"
#include "billing/stripe/webhooks.hpp"
#include "contacts/import_command.hpp"

namespace clozit::api {
namespace {

using accounts::Role;
using json = nlohmann::json;

json OptionalTime(const std::optional<TimePoint>& t) { return t ? json(FormatRfc3339(*t)) : json(nullptr); }

json ToJson(const billing::CreditBalance& balance, Credits threshold) {
  json lots = json::array();
  for (const auto& lot : balance.lots) {
    lots.push_back({{"id", lot.lot_id},
                    {"kind", billing::LotKindName(lot.kind)},
                    {"priority", lot.priority},
                    {"original", lot.original.ToString()},
                    {"remaining", lot.remaining.ToString()},
                    {"reserved", lot.reserved.ToString()},
                    {"available", lot.available.ToString()},
                    {"expires_at", OptionalTime(lot.expires_at)},
                    {"created_at", FormatRfc3339(lot.created_at)}});
  }
  return {{"available", balance.available.ToString()},
          {"reserved", balance.reserved.ToString()},
          {"low_balance_threshold", threshold.ToString()},
          {"lots", lots}};
}

json ToJson(const billing::StatementEntry& e) {
  return {{"id", e.id},
          {"created_at", FormatRfc3339(e.at)},
          {"category", e.category},
          {"usage_category", e.usage_category.empty() ? json(nullptr) : json(e.usage_category)},
          {"code", e.code},
          {"amount", e.amount.ToString()},
          {"reference", e.reference}};
}

json ToJson(const billing::Purchase& p) {
  return {{"id", p.id.str()},
          {"tenant_id", p.tenant_id.str()},
          {"credits", p.credits.ToString()},
          {"price_minor", p.price_minor},
          {"currency", p.currency},
          {"provider", p.provider},
          {"payment_reference", p.payment_reference},
          {"lot_id", p.lot_id},
          {"lot_remaining", p.lot_remaining.ToString()},
          {"created_at", FormatRfc3339(p.created_at)}};
}

json ToJson(const billing::RefundRequest& r) {
  return {{"id", r.id.str()},
          {"tenant_id", r.tenant_id.str()},
          {"purchase_id", r.purchase_id.empty() ? json(nullptr) : json(r.purchase_id)},
          {"subject_id", r.subject_id},
          {"reason", r.reason},
          {"status", billing::RequestStatusName(r.status)},
          {"reason_code", billing::RefundReasonName(r.reason_code)},
          {"refundable_credits", r.requested_credits.ToString()},
          {"refunded_credits", r.refunded_credits ? json(r.refunded_credits->ToString()) : json(nullptr)},
          {"refunded_minor", r.refunded_minor ? json(*r.refunded_minor) : json(nullptr)},
          {"currency", r.currency.empty() ? json(nullptr) : json(r.currency)},
          {"last_error", r.last_error.empty() ? json(nullptr) : json(r.last_error)},
          {"decision_reason", r.decision_reason.empty() ? json(nullptr) : json(r.decision_reason)},
          {"decided_at", OptionalTime(r.decided_at)},
          {"created_at", FormatRfc3339(r.created_at)},
          {"updated_at", FormatRfc3339(r.updated_at)}};
}

json ToJson(const billing::AdjustmentRequest& a) {
  json items = json::array();
  for (const auto& item : a.items) {
    items.push_back({{"charge_id", item.transfer_id},
                     {"charged", item.charged.ToString()},
                     {"restored", item.restored.ToString()},
                     {"evidence", json::parse(item.evidence, nullptr, false)}});
  }
  return {{"id", a.id.str()},
          {"tenant_id", a.tenant_id.str()},
          {"description", a.description},
          {"status", billing::RequestStatusName(a.status)},
          {"resolution", a.resolution ? json(billing::AdjustmentResolutionName(*a.resolution)) : json(nullptr)},
          {"restored", a.restored.ToString()},
          {"lot_id", a.lot_id.empty() ? json(nullptr) : json(a.lot_id)},
          {"items", items},
          {"decision_reason", a.decision_reason.empty() ? json(nullptr) : json(a.decision_reason)},
          {"decided_at", OptionalTime(a.decided_at)},
          {"created_at", FormatRfc3339(a.created_at)},
          {"updated_at", FormatRfc3339(a.updated_at)}};
}

json ToJson(const billing::Reservation& r) {
  json usage = json::array();
  for (const auto& item : r.usage) {
    usage.push_back({{"category", billing::UsageCategoryName(item.category)}, {"amount", item.amount.ToString()}});
  }
  return {{"id", r.id.str()},
          {"tenant_id", r.tenant_id.str()},
          {"purpose", r.purpose},
          {"state", billing::ReservationStateName(r.state)},
          {"held", r.held.ToString()},
          {"charged", r.charged.ToString()},
          {"usage", usage},
          {"expires_at", FormatRfc3339(r.expires_at)},
          {"created_at", FormatRfc3339(r.created_at)}};
}

json ToJson(const billing::CreditPack& pack) {
  return {{"id", pack.id},
          {"credits", pack.credits.ToString()},
          {"price_minor", pack.price_minor},
          {"currency", pack.currency}};
}

json ToJson(const billing::Checkout& c) {
  return {{"purchase_id", c.purchase_id.str()},  {"pack_id", c.pack_id},   {"credits", c.credits.ToString()},
          {"price_minor", c.price_minor},        {"currency", c.currency}, {"status", c.status},
          {"checkout_session_id", c.session_id}, {"checkout_url", c.url},  {"created_at", FormatRfc3339(c.created_at)}};
}

json ToJson(const billing::RefundShortfall& r) {
  return {{"id", r.id.str()},
          {"tenant_id", r.tenant_id.str()},
          {"purchase_id", r.purchase_id},
          {"provider", r.provider},
          {"event_id", r.event_id},
          {"refunded_minor", r.refunded_minor},
          {"currency", r.currency},
          {"credits_due", r.credits_due.ToString()},
          {"removed", r.removed.ToString()},
          {"shortfall", r.shortfall.ToString()},
          {"created_at", FormatRfc3339(r.created_at)}};
}

json ToJson(const billing::PriceBookVersion& v) {
  json out = billing::PriceBookJson(v.content);
  out["version"] = v.version;
  out["status"] = billing::PriceBookStatusName(v.status);
  out["effective_from"] = OptionalTime(v.effective_from);
  out["note"] = v.note;
  out["created_at"] = FormatRfc3339(v.created_at);
  out["published_at"] = OptionalTime(v.published_at);
  return out;
}

json ToJson(const billing::Subscription& sub) {
  const bool none = sub.status == billing::SubscriptionStatus::kNone;
  auto time_or_null = [none](TimePoint t) { return none ? json(nullptr) : json(FormatRfc3339(t)); };
  return {{"id", none ? json(nullptr) : json(sub.id.str())},
          {"status", billing::SubscriptionStatusName(sub.status)},
          {"plan", none ? json(nullptr) : json(sub.plan_code)},
          {"next_plan", sub.next_plan_code.empty() ? json(nullptr) : json(sub.next_plan_code)},
          {"cancel_at_period_end", sub.cancel_at_period_end},
          {"period", sub.period},
          {"started_at", time_or_null(sub.started_at)},
          {"current_period_start", time_or_null(sub.current_period_start)},
          {"current_period_end", time_or_null(sub.current_period_end)},
          {"price", sub.price.ToString()},
          {"included_credits", sub.included_credits.ToString()},
          {"price_version", sub.price_version},
          {"canceled_at", OptionalTime(sub.canceled_at)},
          {"ended_at", OptionalTime(sub.ended_at)}};
}

// The Idempotency-Key a money POST must carry.
Result<std::string> RequiredKey(const http::Request& request, const std::string& what) {
  auto key = request.headers.Get("Idempotency-Key");
  if (!key || key->empty()) return Error::InvalidArgument("Idempotency-Key", what + ": send an Idempotency-Key");
  return std::string(*key);
}

// Billing names the key it was given "idempotency_key"; over HTTP it is the header.
template <typename T>
Result<T> KeyFromHeader(Result<T> result) {
  if (!result && result.error().field == "idempotency_key") {
    Error error = result.error();
    error.field = "Idempotency-Key";
    return error;
  }
  return result;
}

// A price-book version from the path; anything but a positive integer names no version.
Result<int64_t> VersionParam(const http::Request& request) {
  const std::string text = request.Param("version");
  int64_t version = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || version > 1'000'000'000) return Error::NotFound("price book version not found");
    version = version * 10 + (c - '0');
  }
  if (text.empty() || version <= 0) return Error::NotFound("price book version not found");
  return version;
}

template <typename T>
http::Response ListResponse(const Page<T>& page) {
  json items = json::array();
  for (const auto& item : page.items) items.push_back(ToJson(item));
  json body = {{"data", items}, {"has_more", !page.next_cursor.empty()}};
  body["next_cursor"] = page.next_cursor.empty() ? json(nullptr) : json(page.next_cursor);
  return http::Response::Json(200, body.dump());
}

template <typename T>
Result<http::Response> JsonOf(const Result<T>& result, int status = 200) {
  if (!result) return result.error();
  return http::Response::Json(status, ToJson(*result).dump());
}

Result<Credits> CreditsField(const json& body, const std::string& field) {
  if (!body.contains(field)) return Error::InvalidArgument(field, field + " is required");
  const json& value = body.at(field);
  if (value.is_string()) {
    auto parsed = Credits::Parse(value.get<std::string>());
    if (!parsed) return Error::InvalidArgument(field, field + " must be a decimal number of credits, e.g. \"12.5\"");
    return *parsed;
  }
  if (value.is_number_integer()) {
    CLOZIT_ASSIGN_OR_RETURN(auto whole, OptionalInt(body, field));
    auto parsed = Credits::FromWhole(*whole);
    if (!parsed) return Error::InvalidArgument(field, field + " is out of range");
    return *parsed;
  }
  return Error::InvalidArgument(field, field + " must be a decimal string of credits (never a float)");
}

// "YYYY-MM-DD" as UTC midnight.
Result<std::optional<TimePoint>> DateParam(const http::Request& request, const std::string& name) {
  auto text = request.QueryParam(name);
  if (!text || text->empty()) return std::optional<TimePoint>();
  int y = 0;
  unsigned m = 0, d = 0;
  char tail = 0;
  bool shaped = text->size() == 10;
  for (size_t i = 0; shaped && i < text->size(); ++i) {
    const char c = (*text)[i];
    shaped = (i == 4 || i == 7) ? c == '-' : (c >= '0' && c <= '9');
  }
  if (!shaped || std::sscanf(text->c_str(), "%4d-%2u-%2u%c", &y, &m, &d, &tail) != 3) {
    return Error::InvalidArgument(name, name + " must be a date YYYY-MM-DD");
  }
  std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(m), std::chrono::day(d)};
  if (!ymd.ok()) return Error::InvalidArgument(name, name + " is not a valid date");
  return std::optional<TimePoint>(std::chrono::sys_days(ymd));
}

Result<billing::StatementFilter> ParseFilter(const http::Request& request) {
  billing::StatementFilter filter;
  if (auto categories = request.QueryParam("category"); categories && !categories->empty()) {
    size_t start = 0;
    while (start <= categories->size()) {
      size_t comma = categories->find(',', start);
      if (comma == std::string::npos) comma = categories->size();
      filter.categories.push_back(categories->substr(start, comma - start));
      start = comma + 1;
    }
  }
  CLOZIT_ASSIGN_OR_RETURN(filter.from, DateParam(request, "from"));
  CLOZIT_ASSIGN_OR_RETURN(filter.to, DateParam(request, "to"));
  return filter;
}

// [{"category": "call_minutes", "amount": "1.5"}, ...]
Result<std::vector<billing::UsageItem>> UsageField(const json& body) {
  if (!body.contains("usage") || !body.at("usage").is_array()) {
    return Error::InvalidArgument("usage", "usage must be an array of {category, amount}");
  }
  std::vector<billing::UsageItem> items;
  for (size_t i = 0; i < body.at("usage").size(); ++i) {
    const json& entry = body.at("usage")[i];
    const std::string at = "usage[" + std::to_string(i) + "]";
    if (!entry.is_object()) return Error::InvalidArgument(at, "usage items are objects {category, amount}");
    auto category = RequiredString(entry, "category");
    auto parsed = category ? billing::ParseUsageCategory(*category) : std::nullopt;
    if (!parsed) {
      return Error::InvalidArgument(
          at + ".category", "category must be call_minutes, ai_processing, voice_generation or campaign_execution");
    }
    auto amount = CreditsField(entry, "amount");
    if (!amount) return Error::InvalidArgument(at + ".amount", amount.error().message);
    items.push_back({*parsed, *amount});
  }
  return items;
}

// A granted lot's lifetime: 1 day to 10 years from now, or none.
Result<std::optional<TimePoint>> ExpiresInDays(const json& body, const Clock& clock) {
  CLOZIT_ASSIGN_OR_RETURN(auto days, OptionalInt(body, "expires_in_days", 1, 3660));
  if (!days) return std::optional<TimePoint>();
  return std::optional<TimePoint>(clock.Now() + std::chrono::days(*days));
}

// `status` of a request list: pending, approved, rejected or refused; absent, any.
Result<std::string> StatusParam(const http::Request& request) {
  std::string status = request.QueryParam("status").value_or("");
  if (!status.empty() && !billing::ParseRequestStatus(status)) {
    return Error::InvalidArgument("status", "status must be pending, approved, rejected or refused");
  }
  return status;
}

Result<std::string> ReasonField(const json& body) {
  CLOZIT_ASSIGN_OR_RETURN(auto reason, OptionalString(body, "reason"));
  return reason.value_or("");
}

}  // namespace

void Api::AddBillingRoutes() {
  billing::Billing* const* billing_slot = &deps_.billing;
  const Clock& clock = deps_.clock;
  // Every handler reaches billing through this: 503 when the server runs without it.
  auto need = [billing_slot]() -> Result<billing::Billing*> {
    if (*billing_slot == nullptr) return Error::Make(ErrorCode::kUnavailable, "billing is not configured");
    return *billing_slot;
  };

  specs_.push_back(
      {"GET", "/v1/credits", Access::kTenant, Role::kViewer, false, [need](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
         CLOZIT_ASSIGN_OR_RETURN(auto balance, b->charging.Balance(c.principal->tenant_id));
         CLOZIT_ASSIGN_OR_RETURN(auto threshold, b->statements.LowBalanceThreshold(c.principal->tenant_id));
         return http::Response::Json(200, ToJson(balance, threshold).dump());
       }});

  specs_.push_back({"GET", "/v1/credits/transactions", Access::kTenant, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto filter, ParseFilter(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto entries,
                                              b->statements.Transactions(c.principal->tenant_id, filter, page));
                      return ListResponse(entries);
                    }});

  specs_.push_back({"GET", "/v1/credits/transactions.csv", Access::kTenant, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(auto filter, ParseFilter(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto csv, b->statements.TransactionsCsv(c.principal->tenant_id, filter));
                      http::Response response = http::Response::Text(200, std::move(csv), "text/csv; charset=utf-8");
                      response.headers.Set("Content-Disposition", "attachment; filename=\"clozit-transactions.csv\"");
                      return response;
                    }});

  specs_.push_back(
      {"GET", "/v1/credits/usage", Access::kTenant, Role::kViewer, false,
       [need, &clock](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
         auto period_text = c.request.QueryParam("period").value_or("day");
         billing::UsagePeriod period = billing::UsagePeriod::kDay;
         if (period_text == "month") {
           period = billing::UsagePeriod::kMonth;
         } else if (period_text != "day") {
           return Error::InvalidArgument("period", "period must be day or month");
         }
         CLOZIT_ASSIGN_OR_RETURN(auto from, DateParam(c.request, "from"));
         CLOZIT_ASSIGN_OR_RETURN(auto to, DateParam(c.request, "to"));
         const TimePoint end = to.value_or(std::chrono::floor<std::chrono::days>(clock.Now()) + std::chrono::days(1));
         const TimePoint start = from.value_or(end - std::chrono::days(31));
         if (end - start > std::chrono::days(400)) return Error::InvalidArgument("from", "at most 400 days at once");
         if (!to && start >= end)
           return Error::InvalidArgument("from", "from must be before today when to is left out");
         CLOZIT_ASSIGN_OR_RETURN(auto rows, b->statements.Usage(c.principal->tenant_id, period, start, end));
         json data = json::array();
         for (const auto& row : rows) {
           data.push_back({{"period", row.period},
                           {"category", row.category},
                           {"amount", row.amount.ToString()},
                           {"charges", row.charges}});
         }
         return http::Response::Json(
             200,
             json{{"period", period_text}, {"from", FormatRfc3339(start)}, {"to", FormatRfc3339(end)}, {"data", data}}
                 .dump());
       }});

  specs_.push_back({"PUT", "/v1/credits/low-balance-threshold", Access::kTenant, Role::kAdmin, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(Credits threshold, CreditsField(body, "threshold"));
                      CLOZIT_TRY(b->statements.SetLowBalanceThreshold(c.principal->tenant_id, threshold, c.actor));
                      return http::Response::Json(200, json{{"threshold", threshold.ToString()}}.dump());
                    }});

  specs_.push_back(
      {"GET", "/v1/purchases", Access::kTenant, Role::kViewer, false, [need](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
         CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
         CLOZIT_ASSIGN_OR_RETURN(auto list, b->purchases.ListPurchases(c.principal->tenant_id, page));
         return ListResponse(list);
       }});

  specs_.push_back(
      {"GET", "/v1/credit-packs", Access::kTenant, Role::kViewer, false, [need](Context&) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
         json data = json::array();
         for (const auto& pack : b->checkouts.packs()) data.push_back(ToJson(pack));
         return http::Response::Json(200, json{{"data", data}}.dump());
       }});

  // Idempotent by itself: the key names the tenant's checkout (and, through its purchase id, the provider's
  // session), claimed in the transaction that records it.
  RouteSpec checkout{"POST",
                     "/v1/purchases/checkout",
                     Access::kTenant,
                     Role::kAdmin,
                     false,
                     [need](Context& c) -> Result<http::Response> {
                       CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                       CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                       CLOZIT_ASSIGN_OR_RETURN(std::string pack_id, RequiredString(body, "pack_id"));
                       const std::string key(c.request.headers.GetOr("Idempotency-Key", ""));
                       return JsonOf(b->checkouts.Start(c.principal->tenant_id, pack_id, key, c.actor), 201);
                     }};
  checkout.own_idempotency = true;
  specs_.push_back(std::move(checkout));

  // Stripe's event deliveries: no session; the signature over the raw body is the authentication.
  billing::stripe::StripeWebhooks* const* webhooks_slot = &deps_.stripe_webhooks;
  specs_.push_back({"POST", "/v1/webhooks/stripe", Access::kPublic, Role::kViewer, false,
                    [webhooks_slot](Context& c) -> Result<http::Response> {
                      if (*webhooks_slot == nullptr) {
                        return Error::Make(ErrorCode::kUnavailable, "stripe is not configured");
                      }
                      auto handled =
                          (*webhooks_slot)->Handle(c.request.headers.GetOr("Stripe-Signature", ""), c.request.body);
                      if (!handled) {
                        if (handled.error().code == ErrorCode::kInvalidArgument) {
                          spdlog::warn("stripe webhook refused (request {} from {}): {}", c.request.request_id,
                                       c.request.remote_ip, handled.error().message);
                        }
                        return handled.error();
                      }
                      spdlog::info("stripe event {} {}: {}", handled->event_id, handled->type, handled->outcome);
                      return http::Response::Json(200, json{{"received", true},
                                                            {"event_id", handled->event_id},
                                                            {"type", handled->type},
                                                            {"outcome", handled->outcome}}
                                                           .dump());
                    }});

  specs_.push_back({"POST", "/v1/refund-requests", Access::kTenant, Role::kAdmin, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string subject, RequiredString(body, "purchase_id"));
                      CLOZIT_ASSIGN_OR_RETURN(std::string reason, ReasonField(body));
                      return JsonOf(b->purchases.RequestRefund(c.principal->tenant_id, subject, reason, c.actor), 201);
                    }});

  specs_.push_back({"GET", "/v1/refund-requests", Access::kTenant, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto list, b->purchases.ListRefundRequests(c.principal->tenant_id, page));
                      return ListResponse(list);
                    }});

  specs_.push_back({"GET", "/v1/refund-requests/{id}", Access::kTenant, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      return JsonOf(b->purchases.GetRefundRequest(c.principal->tenant_id, c.request.Param("id")));
                    }});

  specs_.push_back({"POST", "/v1/adjustment-requests", Access::kTenant, Role::kAdmin, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      if (!body.contains("charge_ids") || !body.at("charge_ids").is_array()) {
                        return Error::InvalidArgument("charge_ids", "charge_ids must be an array of charge ids");
                      }
                      std::vector<std::string> ids;
                      for (const json& id : body.at("charge_ids")) {
                        if (!id.is_string()) return Error::InvalidArgument("charge_ids", "charge ids are strings");
                        ids.push_back(id.get<std::string>());
                      }
                      CLOZIT_ASSIGN_OR_RETURN(std::string description, RequiredString(body, "description"));
                      return JsonOf(b->purchases.RequestAdjustment(c.principal->tenant_id, ids, description, c.actor),
                                    201);
                    }});

  specs_.push_back({"GET", "/v1/adjustment-requests", Access::kTenant, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto list,
                                              b->purchases.ListAdjustmentRequests(c.principal->tenant_id, page));
                      return ListResponse(list);
                    }});

  specs_.push_back({"GET", "/v1/adjustment-requests/{id}", Access::kTenant, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      return JsonOf(b->purchases.GetAdjustmentRequest(c.principal->tenant_id, c.request.Param("id")));
                    }});

  specs_.push_back(
      {"GET", "/v1/prices", Access::kTenant, Role::kViewer, false, [need, &clock](Context&) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
         return JsonOf(b->price_book.Effective(clock.Now()));
       }});

  specs_.push_back(
      {"GET", "/v1/subscription", Access::kTenant, Role::kViewer, false, [need](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
         return JsonOf(b->subscriptions.Get(c.principal->tenant_id));
       }});

  specs_.push_back(
      {"POST", "/v1/subscription", Access::kTenant, Role::kAdmin, false, [need](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
         CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
         CLOZIT_ASSIGN_OR_RETURN(std::string plan, RequiredString(body, "plan"));
         CLOZIT_ASSIGN_OR_RETURN(std::string key, RequiredKey(c.request, "subscribing moves money"));
         return JsonOf(KeyFromHeader(b->subscriptions.Subscribe(c.principal->tenant_id, plan, key, c.actor)), 201);
       }});

  specs_.push_back({"POST", "/v1/subscription/cancel", Access::kTenant, Role::kAdmin, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      return JsonOf(b->subscriptions.Cancel(c.principal->tenant_id, c.actor));
                    }});

  specs_.push_back({"POST", "/v1/subscription/change", Access::kTenant, Role::kAdmin, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string plan, RequiredString(body, "plan"));
                      CLOZIT_ASSIGN_OR_RETURN(std::string key, RequiredKey(c.request, "changing plan moves money"));
                      (void)key;  // the pipeline replays a retry with the same key
                      return JsonOf(b->subscriptions.Change(c.principal->tenant_id, plan, c.actor));
                    }});

  // ---- operator
  specs_.push_back({"GET", "/v1/admin/price-books", Access::kOperator, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto list, b->price_book.List(page));
                      return ListResponse(list);
                    }});

  specs_.push_back({"POST", "/v1/admin/price-books", Access::kOperator, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto note, OptionalString(body, "note"));
                      CLOZIT_ASSIGN_OR_RETURN(auto content, billing::ParsePriceBook(body));
                      return JsonOf(b->price_book.CreateDraft(content, note.value_or(""), c.actor), 201);
                    }});

  specs_.push_back({"GET", "/v1/admin/price-books/{version}", Access::kOperator, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(int64_t version, VersionParam(c.request));
                      return JsonOf(b->price_book.Get(version));
                    }});

  specs_.push_back({"POST", "/v1/admin/price-books/{version}/publish", Access::kOperator, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(int64_t version, VersionParam(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto from_text, OptionalString(body, "effective_from"));
                      std::optional<TimePoint> from;
                      if (from_text) {
                        CLOZIT_ASSIGN_OR_RETURN(from, contacts::ParseTimestamp(*from_text, "effective_from"));
                      }
                      return JsonOf(b->price_book.Publish(version, from, c.actor));
                    }});

  specs_.push_back(
      {"POST", "/v1/admin/tenants/{id}/credit-grants", Access::kOperator, Role::kViewer, false,
       [need, &clock](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
         CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
         billing::PurchaseRequest request;
         request.tenant_id = TenantId(c.request.Param("id"));
         CLOZIT_ASSIGN_OR_RETURN(request.credits, CreditsField(body, "credits"));
         CLOZIT_ASSIGN_OR_RETURN(auto price_minor, OptionalInt(body, "price_minor", 0));
         if (!price_minor) {
           return Error::InvalidArgument("price_minor", "price_minor (an integer of minor currency units) is required");
         }
         request.price_minor = *price_minor;
         CLOZIT_ASSIGN_OR_RETURN(request.currency, RequiredString(body, "currency"));
         CLOZIT_ASSIGN_OR_RETURN(request.payment_reference, RequiredString(body, "payment_reference"));
         CLOZIT_ASSIGN_OR_RETURN(request.expires_at, ExpiresInDays(body, clock));
         CLOZIT_ASSIGN_OR_RETURN(request.idempotency_key, RequiredKey(c.request, "a credit grant moves money"));
         request.actor = c.actor;
         return JsonOf(KeyFromHeader(b->purchases.RecordPurchase(request)), 201);
       }});

  // Reservations on a tenant's behalf (operators; the crash test drives charging through these). Charging is
  // idempotent by itself: reserve by the Idempotency-Key claimed in the reservation's own transaction, settle
  // and void by the reservation. So these routes skip the generic replay store (RouteSpec::own_idempotency).
  auto operator_self_idempotent = [this](std::string pattern, RouteHandler handler) {
    RouteSpec spec{"POST", std::move(pattern), Access::kOperator, Role::kViewer, false, std::move(handler)};
    spec.own_idempotency = true;
    specs_.push_back(std::move(spec));
  };
  operator_self_idempotent("/v1/admin/tenants/{id}/reservations", [need](Context& c) -> Result<http::Response> {
    CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
    CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
    billing::ReserveRequest request;
    request.tenant_id = TenantId(c.request.Param("id"));
    CLOZIT_ASSIGN_OR_RETURN(request.estimate, CreditsField(body, "estimate"));
    CLOZIT_ASSIGN_OR_RETURN(request.purpose, RequiredString(body, "purpose"));
    CLOZIT_ASSIGN_OR_RETURN(std::string expires_at, RequiredString(body, "expires_at"));
    CLOZIT_ASSIGN_OR_RETURN(request.expires_at, contacts::ParseTimestamp(expires_at, "expires_at"));
    CLOZIT_ASSIGN_OR_RETURN(request.idempotency_key, RequiredKey(c.request, "a reservation holds credits"));
    if (!TenantId::Valid(request.tenant_id.str())) return Error::NotFound("tenant not found");
    return JsonOf(KeyFromHeader(b->charging.Reserve(request)), 201);
  });
  operator_self_idempotent(
      "/v1/admin/tenants/{id}/reservations/{reservation_id}/settle", [need](Context& c) -> Result<http::Response> {
        CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
        CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
        CLOZIT_ASSIGN_OR_RETURN(auto usage, UsageField(body));
        return JsonOf(b->charging.Settle(TenantId(c.request.Param("id")), c.request.Param("reservation_id"), usage));
      });
  operator_self_idempotent(
      "/v1/admin/tenants/{id}/reservations/{reservation_id}/void", [need](Context& c) -> Result<http::Response> {
        CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
        return JsonOf(b->charging.Void(TenantId(c.request.Param("id")), c.request.Param("reservation_id")));
      });

  specs_.push_back({"GET", "/v1/admin/stripe/refund-shortfalls", Access::kOperator, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto list, b->checkouts.ListShortfalls(page));
                      return ListResponse(list);
                    }});

  specs_.push_back({"POST", "/v1/admin/refund-requests/{id}/approve", Access::kOperator, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      return JsonOf(b->purchases.ApproveRefund(c.request.Param("id"), c.actor));
                    }});

  specs_.push_back({"POST", "/v1/admin/refund-requests/{id}/reject", Access::kOperator, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string reason, RequiredString(body, "reason"));
                      return JsonOf(b->purchases.RejectRefund(c.request.Param("id"), reason, c.actor));
                    }});

  specs_.push_back({"POST", "/v1/admin/adjustment-requests/{id}/approve", Access::kOperator, Role::kViewer, false,
                    [need, &clock](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      billing::AdjustmentDecision decision;
                      CLOZIT_ASSIGN_OR_RETURN(std::string resolution, RequiredString(body, "resolution"));
                      auto parsed = billing::ParseAdjustmentResolution(resolution);
                      if (!parsed) {
                        return Error::InvalidArgument("resolution",
                                                      "resolution must be credit_adjustment or replacement_credits");
                      }
                      decision.resolution = *parsed;
                      if (body.contains("amounts") && !body.at("amounts").is_null()) {
                        if (!body.at("amounts").is_object()) {
                          return Error::InvalidArgument("amounts", "amounts maps charge ids to credits");
                        }
                        for (const auto& [charge, value] : body.at("amounts").items()) {
                          auto amount = CreditsField(json{{"amount", value}}, "amount");
                          if (!amount) return Error::InvalidArgument("amounts." + charge, amount.error().message);
                          decision.amounts.emplace_back(charge, *amount);
                        }
                      }
                      CLOZIT_ASSIGN_OR_RETURN(decision.reason, ReasonField(body));
                      CLOZIT_ASSIGN_OR_RETURN(decision.expires_at, ExpiresInDays(body, clock));
                      return JsonOf(b->purchases.ApproveAdjustment(c.request.Param("id"), decision, c.actor));
                    }});

  // The operators' review queues: every tenant's requests, optionally by status, and one with its evidence.
  auto review_queue = [&](const std::string& path, auto list, auto get) {
    specs_.push_back(
        {"GET", path, Access::kOperator, Role::kViewer, false, [need, list](Context& c) -> Result<http::Response> {
           CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
           CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
           CLOZIT_ASSIGN_OR_RETURN(auto status, StatusParam(c.request));
           const TenantId tenant(c.request.QueryParam("tenant_id").value_or(""));
           CLOZIT_ASSIGN_OR_RETURN(auto items, (b->purchases.*list)(tenant, page, status));
           return ListResponse(items);
         }});
    specs_.push_back({"GET", path + "/{id}", Access::kOperator, Role::kViewer, false,
                      [need, get](Context& c) -> Result<http::Response> {
                        CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                        return JsonOf((b->purchases.*get)(TenantId(""), c.request.Param("id")));
                      }});
  };
  review_queue("/v1/admin/refund-requests", &billing::Purchases::ListRefundRequests,
               &billing::Purchases::GetRefundRequest);
  review_queue("/v1/admin/adjustment-requests", &billing::Purchases::ListAdjustmentRequests,
               &billing::Purchases::GetAdjustmentRequest);

  specs_.push_back({"POST", "/v1/admin/adjustment-requests/{id}/reject", Access::kOperator, Role::kViewer, false,
                    [need](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto* b, need());
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string reason, RequiredString(body, "reason"));
                      return JsonOf(b->purchases.RejectAdjustment(c.request.Param("id"), reason, c.actor));
                    }});
}

}  // namespace clozit::api
