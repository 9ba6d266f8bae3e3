#include "billing/stripe/stripe_provider.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <thread>

#include "http/form.hpp"

namespace clozit::billing::stripe {
namespace {

using nlohmann::json;

std::string Text(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// Stripe's {"error": {type, code, message}} → our codes. The message is Stripe's, which never holds the key.
Error MapError(const http::ClientResponse& response) {
  auto body = json::parse(response.body, nullptr, false);
  std::string type, code, message;
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    type = Text(body["error"], "type");
    code = Text(body["error"], "code");
    message = Text(body["error"], "message");
  }
  std::string what = "stripe answered HTTP " + std::to_string(response.status);
  if (!type.empty()) what += " " + type;
  if (!code.empty()) what += "/" + code;
  if (!message.empty()) what += ": " + message;
  if (response.status == 401 || type == "authentication_error") {
    return Error::Make(ErrorCode::kUnauthenticated, "stripe refused the secret key");
  }
  if (response.status == 429 || code == "rate_limit") return Error::Make(ErrorCode::kRateLimited, what);
  if (type == "idempotency_error") {
    // 409: another request with this key is still running at Stripe (retryable); 400: the key was used with
    // other parameters (never retryable: the first request's outcome stands).
    return Error::Make(response.status == 409 ? ErrorCode::kUnavailable : ErrorCode::kIdempotencyMismatch, what);
  }
  if (response.status >= 500 || type == "api_error") return Error::Make(ErrorCode::kUnavailable, what);
  if (response.status == 404 || code == "resource_missing") return Error::NotFound(what);
  if (type == "card_error" || code == "charge_already_refunded" || code == "amount_too_large" ||
      code == "charge_disputed" || response.status == 402) {
    return Error::Make(ErrorCode::kConflict, what);
  }
  return Error::Make(ErrorCode::kInvalidArgument, what, Text(body.value("error", json::object()), "param"));
}

bool Retryable(const Error& error) {
  return error.code == ErrorCode::kUnavailable || error.code == ErrorCode::kRateLimited;
}

}  // namespace

std::string StripeCurrency(std::string_view iso_upper) {
  std::string out(iso_upper);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

StripePaymentProvider::StripePaymentProvider(StripeSettings settings) : settings_(std::move(settings)) {}

Result<std::string> StripePaymentProvider::Send(const std::string& method, const std::string& path,
                                                const std::string& form, const std::string& idempotency_key) {
  http::Headers headers;
  headers.Set("Authorization", "Bearer " + settings_.secret_key);
  if (method == "POST") headers.Set("Content-Type", "application/x-www-form-urlencoded");
  headers.Set("Accept", "application/json");
  if (!idempotency_key.empty()) headers.Set("Idempotency-Key", idempotency_key);
  std::chrono::milliseconds backoff = settings_.first_backoff;
  for (int attempt = 0;; ++attempt) {
    Error error = Error::Make(ErrorCode::kUnavailable, "stripe is unreachable");
    std::optional<bool> should_retry;
    auto client = http::Client::Create(settings_.api_base, settings_.client_options);
    if (!client) {
      error = Error::Make(ErrorCode::kUnavailable, "stripe is unreachable: " + client.error().message);
    } else {
      auto response = (*client)->Send(method, path, headers, form);
      if (!response) {
        // The request may or may not have reached Stripe: the same key makes the retry safe either way.
        error = Error::Make(ErrorCode::kUnavailable, "stripe is unreachable: " + response.error().message);
      } else if (response->status >= 200 && response->status < 300) {
        return std::move(response->body);
      } else {
        error = MapError(*response);
        if (auto header = response->headers.Get("Stripe-Should-Retry")) should_retry = *header == "true";
      }
    }
    const bool retry = should_retry.value_or(Retryable(error));
    if (!retry || attempt >= settings_.max_retries) return error;
    if (settings_.sleep) {
      settings_.sleep(backoff);
    } else {
      std::this_thread::sleep_for(backoff);
    }
    backoff *= 2;
  }
}

Result<RefundReceipt> StripePaymentProvider::Refund(const RefundCall& call) {
  if (call.amount_minor <= 0) return Error::InvalidArgument("amount", "refund amount must be positive");
  // Operator grants record payments taken elsewhere ("wire-42"): Stripe cannot return those, so it is not asked.
  if (call.payment_reference.rfind("pi_", 0) != 0 && call.payment_reference.rfind("ch_", 0) != 0) {
    return Error::Make(ErrorCode::kConflict, "payment " + call.payment_reference +
                                                 " was not taken through Stripe: return the money where it was paid");
  }
  http::FormParams params = {{"amount", std::to_string(call.amount_minor)},
                             {"reason", "requested_by_customer"},
                             {"metadata[clozit_refund_request_id]", call.request_id},
                             {"metadata[clozit_refund_attempt]", call.idempotency_key}};
  // Checkout payments are PaymentIntents; a charge id (ch_…) recorded by hand works too.
  params.insert(params.begin(),
                {call.payment_reference.rfind("ch_", 0) == 0 ? "charge" : "payment_intent", call.payment_reference});
  CLOZIT_ASSIGN_OR_RETURN(std::string body,
                          Send("POST", "/v1/refunds", http::FormBody(params), "clozit-refund-" + call.idempotency_key));
  auto refund = json::parse(body, nullptr, false);
  if (!refund.is_object() || Text(refund, "id").empty() || !refund.contains("amount") ||
      !refund["amount"].is_number_integer()) {
    return Error::Make(ErrorCode::kUnavailable, "stripe answered an unreadable refund");
  }
  if (Text(refund, "status") == "failed" || Text(refund, "status") == "canceled") {
    return Error::Make(ErrorCode::kConflict, "stripe refund " + Text(refund, "id") + " " + Text(refund, "status"));
  }
  // pending / requires_action: Stripe pays it out later (or fails it) and says so in refund.updated.
  return RefundReceipt{Text(refund, "id"), refund["amount"].get<int64_t>(), Text(refund, "status") != "succeeded"};
}

Result<std::vector<ProviderRefundState>> StripePaymentProvider::FindRefunds(const std::string& payment_reference,
                                                                            const std::string& request_id) {
  if (payment_reference.rfind("pi_", 0) != 0 && payment_reference.rfind("ch_", 0) != 0) {
    return std::vector<ProviderRefundState>();  // not Stripe's: nothing was ever refunded through it
  }
  const http::FormParams query = {
      {payment_reference.rfind("ch_", 0) == 0 ? "charge" : "payment_intent", payment_reference}, {"limit", "100"}};
  CLOZIT_ASSIGN_OR_RETURN(std::string body, Send("GET", "/v1/refunds?" + http::FormBody(query), "", ""));
  auto list = json::parse(body, nullptr, false);
  if (!list.is_object() || !list.contains("data") || !list["data"].is_array()) {
    return Error::Make(ErrorCode::kUnavailable, "stripe answered an unreadable refund list");
  }
  std::vector<ProviderRefundState> found;
  for (const json& refund : list["data"]) {
    if (!refund.is_object()) continue;
    const json metadata = refund.value("metadata", json::object());
    if (!metadata.is_object() || Text(metadata, "clozit_refund_request_id") != request_id) continue;
    if (Text(refund, "id").empty() || !refund.contains("amount") || !refund["amount"].is_number_integer()) {
      return Error::Make(ErrorCode::kUnavailable, "stripe listed an unreadable refund");
    }
    found.push_back({Text(refund, "id"), refund["amount"].get<int64_t>(), Text(refund, "status"),
                     Text(metadata, "clozit_refund_attempt")});
  }
  // Stripe lists newest first.
  std::reverse(found.begin(), found.end());
  return found;
}

Result<CheckoutSession> StripePaymentProvider::CreateCheckoutSession(const CheckoutCall& call) {
  if (call.amount_minor <= 0) return Error::InvalidArgument("amount", "a checkout needs a positive amount");
  const http::FormParams params = {
      {"mode", "payment"},
      {"client_reference_id", call.purchase_id},
      {"success_url", call.success_url},
      {"cancel_url", call.cancel_url},
      {"line_items[0][quantity]", "1"},
      {"line_items[0][price_data][currency]", StripeCurrency(call.currency)},
      {"line_items[0][price_data][unit_amount]", std::to_string(call.amount_minor)},
      {"line_items[0][price_data][product_data][name]", call.description},
      {"metadata[clozit_purchase_id]", call.purchase_id},
      {"metadata[clozit_tenant_id]", call.tenant_id},
      {"metadata[clozit_pack_id]", call.pack_id},
      {"payment_intent_data[metadata][clozit_purchase_id]", call.purchase_id},
      {"payment_intent_data[metadata][clozit_tenant_id]", call.tenant_id},
  };
  CLOZIT_ASSIGN_OR_RETURN(std::string body, Send("POST", "/v1/checkout/sessions", http::FormBody(params),
                                                 "clozit-checkout-" + call.idempotency_key));
  auto session = json::parse(body, nullptr, false);
  if (!session.is_object() || Text(session, "id").empty() || Text(session, "url").empty()) {
    return Error::Make(ErrorCode::kUnavailable, "stripe answered an unreadable checkout session");
  }
  return CheckoutSession{Text(session, "id"), Text(session, "url")};
}

}  // namespace clozit::billing::stripe
