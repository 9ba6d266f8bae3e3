// telephony/twilio: the Provider for Twilio Programmable Voice (API 2010-04-01).
//
// REST calls are form-encoded with PascalCase names and HTTP Basic
// AccountSid:AuthToken; answers are JSON, errors {code,message,more_info,status}.
// A call's instructions are inline TwiML: a two-way Media Stream when a media
// URL is given. Status callbacks subscribe to initiated, ringing, answered and
// completed; answering-machine detection is asynchronous and posts to the same
// callback URL. Only 429 is retried (Twilio never processed it); a 5xx on a
// POST is returned as kUnavailable because the call may exist.
//
// Thread-safe. The auth token is never logged nor copied into errors.
#pragma once

#include <memory>
#include <string>

#include "http/client.hpp"
#include "telephony/detail/rest.hpp"
#include "telephony/provider.hpp"

namespace clozit::telephony::twilio {

struct TwilioSettings {
  std::string account_sid;
  std::string auth_token;
  std::string api_base = "https://api.twilio.com";  // origin only; tests point it at the carrier emulator
  http::ClientOptions client_options;
  detail::RetryPolicy retry;
  /// Twilio's search does not return prices (they come from its Pricing API); the monthly fee of a
  /// US local number reported with search results (providers.md: about $1.15 in 2025).
  std::string local_monthly_cost = "1.15";
  std::string currency = "USD";
};

class TwilioProvider final : public Provider {
 public:
  explicit TwilioProvider(TwilioSettings settings);

  ProviderKind kind() const override { return ProviderKind::kTwilio; }
  Result<ProviderCall> PlaceCall(const PlaceCallRequest& request) override;
  Result<void> Hangup(const std::string& call_id) override;
  Result<ProviderCallState> GetCall(const std::string& call_id) override;
  Result<void> Transfer(const std::string& call_id, const std::string& to, const std::string& caller_id) override;
  Result<std::vector<AvailableNumber>> SearchNumbers(const NumberSearch& search) override;
  Result<OwnedNumber> BuyNumber(const std::string& phone_number) override;
  Result<void> ReleaseNumber(const std::string& number_id) override;
  Result<std::vector<OwnedNumber>> ListNumbers() override;
  Result<std::optional<OwnedNumber>> FindNumber(const std::string& phone_number) override;
  bool VerifyWebhook(const WebhookRequest& request) const override;
  Result<CallEvent> ParseWebhook(const WebhookRequest& request) const override;

  /// The TwiML that connects an answered call to a two-way media stream (or just holds it); `media_token`
  /// goes in a `<Parameter name="token">`.
  static std::string StreamTwiml(const std::string& media_stream_url, const std::string& media_token = {});

 private:
  Result<http::ClientResponse> Request(const std::string& method, const std::string& path, const std::string& body);
  Result<std::vector<OwnedNumber>> ListNumbersAt(const std::string& path);

  TwilioSettings settings_;
  std::string account_path_;  // "/2010-04-01/Accounts/{AccountSid}"
  std::string authorization_;
  detail::RestPool pool_;
};

}  // namespace clozit::telephony::twilio
