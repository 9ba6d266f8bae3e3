// telephony/telnyx: the Provider for Telnyx Call Control v2.
//
// JSON over HTTPS with `Authorization: Bearer <api key>`; errors come as
// {"errors":[{code,title,detail,source}]}. Every command (dial, hangup,
// transfer) carries a fresh command_id, which makes it idempotent for 60 s at
// Telnyx: so 429 (honouring Retry-After) and 5xx are retried with the same
// command_id. Webhooks are verified with the account's Ed25519 public key and
// a 300 s timestamp tolerance against the injected clock.
//
// Thread-safe. The API key is never logged nor copied into errors.
#pragma once

#include <string>

#include "common/clock.hpp"
#include "http/client.hpp"
#include "telephony/detail/rest.hpp"
#include "telephony/provider.hpp"

namespace clozit::telephony::telnyx {

struct TelnyxSettings {
  std::string api_key;
  std::string connection_id;                        // the Call Control application's id
  std::string public_key_base64;                    // for webhook signatures
  std::string api_base = "https://api.telnyx.com";  // origin only; tests point it at the carrier emulator
  http::ClientOptions client_options;
  detail::RetryPolicy retry;
};

class TelnyxProvider final : public Provider {
 public:
  TelnyxProvider(const Clock& clock, Random& random, TelnyxSettings settings);

  ProviderKind kind() const override { return ProviderKind::kTelnyx; }
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

 private:
  /// `idempotent`: the request carries a command_id (or changes nothing), so 429/5xx may be repeated.
  Result<http::ClientResponse> Request(const std::string& method, const std::string& target, const std::string& body,
                                       bool idempotent);
  std::string NewCommandId();
  Result<std::vector<OwnedNumber>> ListNumbersAt(const std::string& target);

  const Clock& clock_;
  Random& random_;
  TelnyxSettings settings_;
  std::string authorization_;
  detail::RestPool pool_;
};

}  // namespace clozit::telephony::telnyx
