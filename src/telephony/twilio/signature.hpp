// telephony/twilio: the X-Twilio-Signature check.
//
// HMAC-SHA1 with the account's auth token over the exact URL followed by the
// form parameters sorted by name (then value), each as name+value without
// separators; base64. JSON bodies are signed through a `bodySHA256` query
// parameter instead. The URL is accepted with and without its default port,
// because proxies and load balancers disagree about it. Pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace clozit::telephony::twilio {

using FormParams = std::multimap<std::string, std::string>;

/// The base64 signature Twilio would send for this URL and form body.
std::string ComputeSignature(std::string_view auth_token, std::string_view url, const FormParams& params);

/// Verifies a webhook: `signature` is the X-Twilio-Signature header, `body` the raw body (checked
/// against bodySHA256 when the URL carries it; then `params` must be empty).
bool VerifyRequest(std::string_view auth_token, std::string_view url, const FormParams& params, std::string_view body,
                   std::string_view signature);

}  // namespace clozit::telephony::twilio
