#include "telephony/telnyx/telnyx_provider.hpp"

#include <nlohmann/json.hpp>

#include "common/encoding.hpp"
#include "telephony/telnyx/signature.hpp"

namespace clozit::telephony::telnyx {
namespace {

using nlohmann::json;

std::string JsonText(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// Telnyx's {"errors":[...]} → our stable codes.
Error MapError(const http::ClientResponse& response) {
  auto body = json::parse(response.body, nullptr, false);
  std::string code;
  std::string pointer;
  std::string message = "telnyx answered HTTP " + std::to_string(response.status);
  if (body.is_object() && body.contains("errors") && body["errors"].is_array() && !body["errors"].empty()) {
    const auto& first = body["errors"][0];
    code = JsonText(first, "code");
    std::string text = JsonText(first, "detail");
    if (text.empty()) text = JsonText(first, "title");
    message = "telnyx " + code + ": " + text;
    if (first.contains("source")) pointer = JsonText(first["source"], "pointer");
  }
  if (response.status == 401 || response.status == 403 || code == "10009") {
    return Error::Make(ErrorCode::kUnauthenticated, "telnyx refused the API key");
  }
  if (response.status == 429 || code == "10011") {
    return RateLimitedError("telnyx", detail::RetryAfterHeader(response).value_or(1));
  }
  if (response.status >= 500) return Error::Make(ErrorCode::kUnavailable, message);
  if (code == "10016" || pointer == "/to") return Error::InvalidArgument("to", message);
  if (pointer == "/from") return Error::InvalidArgument("from", message);
  if (code == "90018") return Error::Make(ErrorCode::kConflict, message);
  if (response.status == 404) return Error::NotFound(message);
  if (response.status == 409) return Error::Make(ErrorCode::kConflict, message);
  std::string field = pointer.empty() ? std::string() : pointer.substr(1);
  return Error::Make(ErrorCode::kInvalidArgument, message, field);
}

std::string PathSegment(const std::string& id) {
  // call_control_id ("v3:…") goes into the path with its ':' unencoded, as Telnyx and its SDK do.
  std::string out;
  for (char c : id) {
    if (c == ':') {
      out += c;
    } else {
      out += detail::FormEncode(std::string_view(&c, 1));
    }
  }
  return out;
}

}  // namespace

TelnyxProvider::TelnyxProvider(const Clock& clock, Random& random, TelnyxSettings settings)
    : clock_(clock),
      random_(random),
      settings_(std::move(settings)),
      authorization_("Bearer " + settings_.api_key),
      pool_(settings_.api_base, settings_.client_options) {}

std::string TelnyxProvider::NewCommandId() {
  uint8_t bytes[16];
  random_.Fill(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  std::string hex = Hex(bytes);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

Result<http::ClientResponse> TelnyxProvider::Request(const std::string& method, const std::string& target,
                                                     const std::string& body, bool idempotent) {
  http::Headers headers;
  headers.Set("Authorization", authorization_);
  headers.Set("Accept", "application/json");
  if (!body.empty()) headers.Set("Content-Type", "application/json");
  for (int attempt = 0;; ++attempt) {
    CLOZIT_ASSIGN_OR_RETURN(auto response, pool_.Send(method, target, headers, body));
    if (response.status >= 200 && response.status < 300) return response;
    Error error = MapError(response);
    bool retryable = idempotent && attempt < settings_.retry.max_retries;
    if (retryable && error.code == ErrorCode::kRateLimited) {
      int wait = RetryAfterSeconds(error).value_or(1);
      if (std::chrono::seconds(wait) <= settings_.retry.max_retry_wait) {
        detail::SleepFor(settings_.retry, std::chrono::seconds(wait));
        continue;
      }
    }
    if (retryable && error.code == ErrorCode::kUnavailable) {
      detail::SleepFor(settings_.retry, std::chrono::milliseconds(200 << attempt));
      continue;
    }
    return error;
  }
}

Result<ProviderCall> TelnyxProvider::PlaceCall(const PlaceCallRequest& request) {
  json body = {{"connection_id", settings_.connection_id},
               {"to", request.to},
               {"from", request.from},
               {"timeout_secs", request.ring_timeout.count()},
               {"time_limit_secs", request.max_duration.count()},
               {"answering_machine_detection", request.machine_detection ? "detect" : "disabled"},
               {"command_id", NewCommandId()}};
  if (!request.status_callback_url.empty()) {
    body["webhook_url"] = request.status_callback_url;
    body["webhook_url_method"] = "POST";
    if (!request.status_callback_failover_url.empty())
      body["webhook_url_failover"] = request.status_callback_failover_url;
  }
  if (!request.client_state.empty()) body["client_state"] = detail::Base64(request.client_state);
  if (!request.media_stream_url.empty()) {
    std::string stream_url = request.media_stream_url;
    if (!request.media_stream_token.empty()) {
      stream_url += (stream_url.find('?') == std::string::npos ? "?token=" : "&token=") +
                    detail::FormEncode(request.media_stream_token);
    }
    body["stream_url"] = stream_url;
    body["stream_track"] = "inbound_track";
    body["stream_bidirectional_mode"] = "rtp";
    body["stream_bidirectional_codec"] = "PCMU";
  }
  CLOZIT_ASSIGN_OR_RETURN(auto response, Request("POST", "/v2/calls", body.dump(), true));
  auto answer = json::parse(response.body, nullptr, false);
  if (!answer.is_object() || !answer.contains("data") || JsonText(answer["data"], "call_control_id").empty()) {
    return Error::Make(ErrorCode::kUnavailable, "telnyx answered an unreadable call");
  }
  return ProviderCall{JsonText(answer["data"], "call_control_id"), "initiated"};
}

Result<void> TelnyxProvider::Hangup(const std::string& call_id) {
  json body = {{"command_id", NewCommandId()}};
  CLOZIT_TRY(Request("POST", "/v2/calls/" + PathSegment(call_id) + "/actions/hangup", body.dump(), true));
  return Ok();
}

Result<ProviderCallState> TelnyxProvider::GetCall(const std::string& call_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto response, Request("GET", "/v2/calls/" + PathSegment(call_id), {}, true));
  auto answer = json::parse(response.body, nullptr, false);
  if (!answer.is_object() || !answer.contains("data") || !answer["data"].is_object() ||
      !answer["data"].contains("is_alive") || !answer["data"]["is_alive"].is_boolean()) {
    return Error::Make(ErrorCode::kUnavailable, "telnyx answered an unreadable call");
  }
  ProviderCallState state;
  state.live = answer["data"]["is_alive"].get<bool>();
  return state;  // Telnyx does not say how an ended call ended
}

Result<void> TelnyxProvider::Transfer(const std::string& call_id, const std::string& to, const std::string& caller_id) {
  json body = {{"to", to}, {"from", caller_id}, {"timeout_secs", 30}, {"command_id", NewCommandId()}};
  CLOZIT_TRY(Request("POST", "/v2/calls/" + PathSegment(call_id) + "/actions/transfer", body.dump(), true));
  return Ok();
}

Result<std::vector<AvailableNumber>> TelnyxProvider::SearchNumbers(const NumberSearch& search) {
  std::vector<std::pair<std::string, std::string>> query = {{"filter[country_code]", search.country},
                                                            {"filter[limit]", std::to_string(search.limit)},
                                                            {"filter[features][]", "voice"}};
  if (!search.area_code.empty()) query.emplace_back("filter[national_destination_code]", search.area_code);
  if (!search.contains.empty()) query.emplace_back("filter[phone_number][contains]", search.contains);
  CLOZIT_ASSIGN_OR_RETURN(auto response,
                          Request("GET", "/v2/available_phone_numbers?" + detail::FormBody(query), {}, true));
  auto body = json::parse(response.body, nullptr, false);
  if (!body.is_object() || !body.contains("data") || !body["data"].is_array()) {
    return Error::Make(ErrorCode::kUnavailable, "telnyx answered an unreadable number list");
  }
  std::vector<AvailableNumber> numbers;
  for (const auto& entry : body["data"]) {
    AvailableNumber number;
    number.phone_number = JsonText(entry, "phone_number");
    if (entry.contains("region_information")) {
      for (const auto& region : entry["region_information"]) {
        std::string type = JsonText(region, "region_type");
        if (type == "location") number.locality = JsonText(region, "region_name");
        if (type == "state") number.region = JsonText(region, "region_name");
      }
    }
    if (entry.contains("cost_information")) {
      const auto& cost = entry["cost_information"];
      number.monthly_cost = JsonText(cost, "monthly_cost");
      number.upfront_cost = JsonText(cost, "upfront_cost");
      number.currency = JsonText(cost, "currency");
    }
    numbers.push_back(std::move(number));
  }
  return numbers;
}

Result<OwnedNumber> TelnyxProvider::BuyNumber(const std::string& phone_number) {
  json body = {{"phone_numbers", json::array({{{"phone_number", phone_number}}})},
               {"connection_id", settings_.connection_id}};
  // Not idempotent: a repeated order could buy twice.
  CLOZIT_ASSIGN_OR_RETURN(auto response, Request("POST", "/v2/number_orders", body.dump(), false));
  auto answer = json::parse(response.body, nullptr, false);
  if (!answer.is_object() || !answer.contains("data") || !answer["data"].contains("phone_numbers") ||
      answer["data"]["phone_numbers"].empty()) {
    return Error::Make(ErrorCode::kUnavailable, "telnyx answered an unreadable number order");
  }
  const auto& ordered = answer["data"]["phone_numbers"][0];
  std::string status = JsonText(answer["data"], "status");
  if (status == "failure") return Error::Make(ErrorCode::kConflict, "telnyx could not buy " + phone_number);
  return OwnedNumber{JsonText(ordered, "id"), JsonText(ordered, "phone_number"), status};
}

Result<void> TelnyxProvider::ReleaseNumber(const std::string& number_id) {
  CLOZIT_TRY(Request("DELETE", "/v2/phone_numbers/" + detail::FormEncode(number_id), {}, false));
  return Ok();
}

Result<std::vector<OwnedNumber>> TelnyxProvider::ListNumbers() {
  return ListNumbersAt("/v2/phone_numbers?page%5Bnumber%5D=1&page%5Bsize%5D=250");
}

Result<std::optional<OwnedNumber>> TelnyxProvider::FindNumber(const std::string& phone_number) {
  CLOZIT_ASSIGN_OR_RETURN(auto listed, ListNumbersAt("/v2/phone_numbers?filter%5Bphone_number%5D=" +
                                                     detail::FormEncode(phone_number) + "&page%5Bsize%5D=250"));
  // The filter may match more than the one number (a pattern at Telnyx): only the exact one counts.
  for (auto& number : listed)
    if (number.phone_number == phone_number) return std::optional<OwnedNumber>(std::move(number));
  return std::optional<OwnedNumber>();
}

Result<std::vector<OwnedNumber>> TelnyxProvider::ListNumbersAt(const std::string& target) {
  CLOZIT_ASSIGN_OR_RETURN(auto response, Request("GET", target, {}, true));
  auto body = json::parse(response.body, nullptr, false);
  if (!body.is_object() || !body.contains("data") || !body["data"].is_array()) {
    return Error::Make(ErrorCode::kUnavailable, "telnyx answered an unreadable number list");
  }
  std::vector<OwnedNumber> numbers;
  for (const auto& entry : body["data"]) {
    numbers.push_back({JsonText(entry, "id"), JsonText(entry, "phone_number"), JsonText(entry, "status")});
  }
  return numbers;
}

bool TelnyxProvider::VerifyWebhook(const WebhookRequest& request) const {
  auto signature = request.headers.Get("telnyx-signature-ed25519");
  auto timestamp = request.headers.Get("telnyx-timestamp");
  if (!signature || !timestamp) return false;
  return telnyx::VerifyWebhook(settings_.public_key_base64, *timestamp, request.body, *signature, clock_.Now());
}

Result<CallEvent> TelnyxProvider::ParseWebhook(const WebhookRequest& request) const {
  return ParseTelnyxWebhook(request.body);
}

}  // namespace clozit::telephony::telnyx
