#include "telephony/twilio/twilio_provider.hpp"

#include <nlohmann/json.hpp>

#include "telephony/twilio/signature.hpp"

namespace clozit::telephony::twilio {
namespace {

using nlohmann::json;
using Params = std::vector<std::pair<std::string, std::string>>;

std::string JsonText(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// Twilio's error shape → our stable codes.
Error MapError(const http::ClientResponse& response) {
  auto body = json::parse(response.body, nullptr, false);
  int code = 0;
  std::string message = "twilio answered HTTP " + std::to_string(response.status);
  if (body.is_object()) {
    if (auto it = body.find("code"); it != body.end() && it->is_number_integer()) code = it->get<int>();
    if (auto text = JsonText(body, "message"); !text.empty()) message = "twilio " + std::to_string(code) + ": " + text;
  }
  if (response.status == 401 || response.status == 403 || code == 20003) {
    return Error::Make(ErrorCode::kUnauthenticated, "twilio refused the account credentials");
  }
  if (response.status == 429 || code == 20429) {
    return RateLimitedError("twilio", detail::RetryAfterHeader(response).value_or(1));
  }
  if (response.status >= 500) return Error::Make(ErrorCode::kUnavailable, message);
  if (response.status == 404 || code == 20404) return Error::NotFound(message);
  switch (code) {
    case 21201:  // To missing
    case 21211:  // invalid To
    case 21217:  // To not a valid phone number
    case 21214:  // To not reachable
      return Error::InvalidArgument("to", message);
    case 21210:  // From not verified / not owned
    case 21212:  // invalid From
    case 21213:  // From missing
      return Error::InvalidArgument("from", message);
    case 21220:  // call not in progress
      return Error::Make(ErrorCode::kConflict, message);
    case 21422:  // number not available
      return Error::Make(ErrorCode::kConflict, message, "phone_number");
    default:
      return Error::Make(ErrorCode::kInvalidArgument, message);
  }
}

twilio::FormParams ParseForm(std::string_view body) {
  std::multimap<std::string, std::string> params;
  for (auto& [name, value] : http::ParseQuery(body)) params.emplace(std::move(name), std::move(value));
  return params;
}

OwnedNumber ToOwned(const json& number) {
  return {JsonText(number, "sid"), JsonText(number, "phone_number"), JsonText(number, "status")};
}

}  // namespace

TwilioProvider::TwilioProvider(TwilioSettings settings)
    : settings_(std::move(settings)),
      account_path_("/2010-04-01/Accounts/" + detail::FormEncode(settings_.account_sid)),
      authorization_("Basic " + detail::Base64(settings_.account_sid + ":" + settings_.auth_token)),
      pool_(settings_.api_base, settings_.client_options) {}

std::string TwilioProvider::StreamTwiml(const std::string& media_stream_url, const std::string& media_token) {
  if (media_stream_url.empty()) return "<Response><Pause length=\"3600\"/></Response>";
  std::string stream = "<Stream url=\"" + detail::XmlEscape(media_stream_url) + "\"";
  // Twilio ignores query strings on Stream URLs: the token travels as a custom parameter (start.customParameters).
  if (media_token.empty()) {
    stream += "/>";
  } else {
    stream += "><Parameter name=\"token\" value=\"" + detail::XmlEscape(media_token) + "\"/></Stream>";
  }
  return "<Response><Connect>" + stream + "</Connect></Response>";
}

Result<http::ClientResponse> TwilioProvider::Request(const std::string& method, const std::string& path,
                                                     const std::string& body) {
  http::Headers headers;
  headers.Set("Authorization", authorization_);
  headers.Set("Accept", "application/json");
  if (!body.empty() || method == "POST") headers.Set("Content-Type", "application/x-www-form-urlencoded");
  for (int attempt = 0;; ++attempt) {
    CLOZIT_ASSIGN_OR_RETURN(auto response, pool_.Send(method, account_path_ + path, headers, body));
    if (response.status >= 200 && response.status < 300) return response;
    Error error = MapError(response);
    // 429/20429 was never processed: retrying cannot create a second call.
    if (error.code == ErrorCode::kRateLimited && attempt < settings_.retry.max_retries) {
      int wait = RetryAfterSeconds(error).value_or(1);
      if (std::chrono::seconds(wait) <= settings_.retry.max_retry_wait) {
        detail::SleepFor(settings_.retry, std::chrono::seconds(wait));
        continue;
      }
    }
    // A 5xx on a GET changes nothing at Twilio: safe to repeat.
    if (error.code == ErrorCode::kUnavailable && method == "GET" && attempt < settings_.retry.max_retries) {
      detail::SleepFor(settings_.retry, std::chrono::milliseconds(200 << attempt));
      continue;
    }
    return error;
  }
}

Result<ProviderCall> TwilioProvider::PlaceCall(const PlaceCallRequest& request) {
  Params params = {{"To", request.to},
                   {"From", request.from},
                   {"Twiml", StreamTwiml(request.media_stream_url, request.media_stream_token)},
                   {"Timeout", std::to_string(request.ring_timeout.count())},
                   {"TimeLimit", std::to_string(request.max_duration.count())}};
  if (!request.status_callback_url.empty()) {
    params.emplace_back("StatusCallback", request.status_callback_url);
    params.emplace_back("StatusCallbackMethod", "POST");
    for (const char* event : {"initiated", "ringing", "answered", "completed"}) {
      params.emplace_back("StatusCallbackEvent", event);
    }
  }
  if (request.machine_detection) {
    params.emplace_back("MachineDetection", "Enable");
    params.emplace_back("AsyncAmd", "true");
    if (!request.status_callback_url.empty()) {
      params.emplace_back("AsyncAmdStatusCallback", request.status_callback_url);
      params.emplace_back("AsyncAmdStatusCallbackMethod", "POST");
    }
  }
  CLOZIT_ASSIGN_OR_RETURN(auto response, Request("POST", "/Calls.json", detail::FormBody(params)));
  auto body = json::parse(response.body, nullptr, false);
  if (!body.is_object() || JsonText(body, "sid").empty()) {
    return Error::Make(ErrorCode::kUnavailable, "twilio answered an unreadable call resource");
  }
  return ProviderCall{JsonText(body, "sid"), JsonText(body, "status")};
}

Result<void> TwilioProvider::Hangup(const std::string& call_id) {
  CLOZIT_TRY(
      Request("POST", "/Calls/" + detail::FormEncode(call_id) + ".json", detail::FormBody({{"Status", "completed"}})));
  return Ok();
}

Result<ProviderCallState> TwilioProvider::GetCall(const std::string& call_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto response, Request("GET", "/Calls/" + detail::FormEncode(call_id) + ".json", {}));
  auto body = json::parse(response.body, nullptr, false);
  if (!body.is_object()) return Error::Make(ErrorCode::kUnavailable, "twilio answered an unreadable call resource");
  const std::string status = JsonText(body, "status");
  ProviderCallState state;
  if (status == "queued" || status == "initiated" || status == "ringing" || status == "in-progress") {
    state.live = true;
    return state;
  }
  // The final CallStatus vocabulary is the status callbacks' one.
  std::multimap<std::string, std::string> params = {
      {"CallSid", call_id}, {"CallStatus", status}, {"SequenceNumber", "0"}};
  CLOZIT_ASSIGN_OR_RETURN(auto event, ParseTwilioStatusCallback(params));
  if (event.kind != CallEventKind::kEnded) {
    return Error::Make(ErrorCode::kUnavailable, "twilio answered an unknown call status");
  }
  state.outcome = event.outcome;
  const std::string duration = JsonText(body, "duration");
  if (!duration.empty() && duration.find_first_not_of("0123456789") == std::string::npos && duration.size() < 10) {
    state.duration_seconds = std::stoll(duration);
  }
  return state;
}

Result<void> TwilioProvider::Transfer(const std::string& call_id, const std::string& to, const std::string& caller_id) {
  std::string twiml = "<Response><Dial callerId=\"" + detail::XmlEscape(caller_id) + "\" timeout=\"30\">" +
                      detail::XmlEscape(to) + "</Dial></Response>";
  CLOZIT_TRY(Request("POST", "/Calls/" + detail::FormEncode(call_id) + ".json", detail::FormBody({{"Twiml", twiml}})));
  return Ok();
}

Result<std::vector<AvailableNumber>> TwilioProvider::SearchNumbers(const NumberSearch& search) {
  Params query = {{"VoiceEnabled", "true"}, {"PageSize", std::to_string(search.limit)}};
  if (!search.area_code.empty()) query.emplace_back("AreaCode", search.area_code);
  if (!search.contains.empty()) query.emplace_back("Contains", search.contains);
  CLOZIT_ASSIGN_OR_RETURN(auto response, Request("GET",
                                                 "/AvailablePhoneNumbers/" + detail::FormEncode(search.country) +
                                                     "/Local.json?" + detail::FormBody(query),
                                                 {}));
  auto body = json::parse(response.body, nullptr, false);
  std::vector<AvailableNumber> numbers;
  if (!body.is_object() || !body.contains("available_phone_numbers")) {
    return Error::Make(ErrorCode::kUnavailable, "twilio answered an unreadable number list");
  }
  for (const auto& entry : body["available_phone_numbers"]) {
    numbers.push_back({JsonText(entry, "phone_number"), JsonText(entry, "locality"), JsonText(entry, "region"),
                       settings_.local_monthly_cost, "0.00", settings_.currency});
  }
  return numbers;
}

Result<OwnedNumber> TwilioProvider::BuyNumber(const std::string& phone_number) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto response, Request("POST", "/IncomingPhoneNumbers.json", detail::FormBody({{"PhoneNumber", phone_number}})));
  auto body = json::parse(response.body, nullptr, false);
  if (!body.is_object()) return Error::Make(ErrorCode::kUnavailable, "twilio answered an unreadable number");
  return ToOwned(body);
}

Result<void> TwilioProvider::ReleaseNumber(const std::string& number_id) {
  CLOZIT_TRY(Request("DELETE", "/IncomingPhoneNumbers/" + detail::FormEncode(number_id) + ".json", {}));
  return Ok();
}

Result<std::vector<OwnedNumber>> TwilioProvider::ListNumbers() {
  return ListNumbersAt("/IncomingPhoneNumbers.json?PageSize=1000");
}

Result<std::optional<OwnedNumber>> TwilioProvider::FindNumber(const std::string& phone_number) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto listed,
      ListNumbersAt("/IncomingPhoneNumbers.json?PhoneNumber=" + detail::FormEncode(phone_number) + "&PageSize=1000"));
  // The filter may match more than the one number (a pattern at Telnyx): only the exact one counts.
  for (auto& number : listed)
    if (number.phone_number == phone_number) return std::optional<OwnedNumber>(std::move(number));
  return std::optional<OwnedNumber>();
}

Result<std::vector<OwnedNumber>> TwilioProvider::ListNumbersAt(const std::string& path) {
  CLOZIT_ASSIGN_OR_RETURN(auto response, Request("GET", path, {}));
  auto body = json::parse(response.body, nullptr, false);
  if (!body.is_object() || !body.contains("incoming_phone_numbers")) {
    return Error::Make(ErrorCode::kUnavailable, "twilio answered an unreadable number list");
  }
  std::vector<OwnedNumber> numbers;
  for (const auto& entry : body["incoming_phone_numbers"]) numbers.push_back(ToOwned(entry));
  return numbers;
}

bool TwilioProvider::VerifyWebhook(const WebhookRequest& request) const {
  auto signature = request.headers.Get("X-Twilio-Signature");
  if (!signature) return false;
  bool json_body = request.url.find("bodySHA256=") != std::string::npos;
  return twilio::VerifyRequest(settings_.auth_token, request.url,
                               json_body ? twilio::FormParams{} : ParseForm(request.body), request.body, *signature);
}

Result<CallEvent> TwilioProvider::ParseWebhook(const WebhookRequest& request) const {
  return ParseTwilioStatusCallback(ParseForm(request.body));
}

}  // namespace clozit::telephony::twilio
