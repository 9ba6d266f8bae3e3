// telephony: the Provider interface — what Clozit asks of a carrier.
//
// One implementation per carrier (twilio::TwilioProvider, telnyx::TelnyxProvider)
// speaks that carrier's REST API and webhook format exactly as written in
// shared/reference/providers.md; everything above this interface (dialer,
// phone-number API, webhook endpoints) is carrier-neutral.
//
// Failures are values with stable codes:
//   kInvalidArgument (field "to")  the carrier refused the callee number
//   kUnauthenticated               bad credentials
//   kRateLimited                   too many requests; RetryAfterSeconds() tells when to come back
//   kUnavailable                   the carrier is down, timed out or answered 5xx
//   kNotFound / kConflict          unknown call or number / call already ended
// Adapters retry only where the contract says it is safe (Twilio 429 is never
// processed; Telnyx actions carry a command_id that makes them idempotent).
//
// Thread-safety: implementations are safe to call from many threads at once;
// every call blocks on network I/O, so call them from a worker pool, never
// from an I/O thread. Credentials are never logged nor put in error messages.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "http/message.hpp"
#include "telephony/call_event.hpp"
#include "telephony/media_stream.hpp"

namespace clozit::telephony {

struct PlaceCallRequest {
  std::string from;  // caller id, E.164; must be a number of the account
  std::string to;    // callee, E.164
  bool machine_detection = false;
  std::chrono::seconds ring_timeout{30};
  std::chrono::seconds max_duration{4 * 3600};
  std::string status_callback_url;           // where the carrier posts call events
  std::string status_callback_failover_url;  // Telnyx: where an event goes when the first URL does not answer 2xx
  std::string media_stream_url;              // wss:// URL for the two-way media stream; empty: none
  std::string media_stream_token;            // media::MediaTokens token for the stream (Twilio parameter, Telnyx query)
  std::string client_state;                  // opaque, echoed by Telnyx in every webhook (sent base64-encoded)
};

struct ProviderCall {
  std::string call_id;  // Twilio CallSid or Telnyx call_control_id
  std::string status;   // the carrier's initial status ("queued", "initiated")
};

struct NumberSearch {
  std::string country = "US";  // ISO 3166-1 alpha-2
  std::string area_code;
  std::string contains;  // digits the number must contain
  int limit = 10;
};

struct AvailableNumber {
  std::string phone_number;  // E.164
  std::string locality;
  std::string region;
  std::string monthly_cost;  // decimal string in `currency`; empty when the carrier does not say
  std::string upfront_cost;
  std::string currency;
};

struct OwnedNumber {
  std::string id;            // the carrier's id for the number (Twilio PN…, Telnyx numeric id)
  std::string phone_number;  // E.164
  std::string status;
};

/// A call as the carrier sees it now (for reconciling calls whose webhooks were lost).
struct ProviderCallState {
  bool live = false;                         // queued, ringing or connected
  CallOutcome outcome = CallOutcome::kNone;  // ended: how, when the carrier says (Telnyx does not)
  std::optional<int64_t> duration_seconds;
};

/// The pieces of an inbound webhook request, as received.
struct WebhookRequest {
  std::string url;  // the exact URL the carrier requested (scheme, host[:port], path, query)
  http::Headers headers;
  std::string body;  // raw
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual ProviderKind kind() const = 0;

  virtual Result<ProviderCall> PlaceCall(const PlaceCallRequest& request) = 0;
  /// Ends the call whatever its state (ringing calls are canceled).
  virtual Result<void> Hangup(const std::string& call_id) = 0;
  /// The call's current state at the carrier; kNotFound when the carrier does not know it. Read-only, so
  /// adapters may retry it. The default is for carriers that cannot be asked: kUnavailable.
  virtual Result<ProviderCallState> GetCall(const std::string& call_id);
  /// Transfers the live call to `to`, presenting `caller_id`.
  virtual Result<void> Transfer(const std::string& call_id, const std::string& to, const std::string& caller_id) = 0;

  virtual Result<std::vector<AvailableNumber>> SearchNumbers(const NumberSearch& search) = 0;
  virtual Result<OwnedNumber> BuyNumber(const std::string& phone_number) = 0;
  virtual Result<void> ReleaseNumber(const std::string& number_id) = 0;
  /// The numbers the account holds: the carrier's first page only (Twilio 1,000, Telnyx 250).
  virtual Result<std::vector<OwnedNumber>> ListNumbers() = 0;
  /// The number if the account holds it, else nullopt. Asks for that number alone, so the answer does not
  /// depend on how many the account holds: what decides whether a purchase or a release happened.
  virtual Result<std::optional<OwnedNumber>> FindNumber(const std::string& phone_number) = 0;

  /// True when the request carries this account's valid signature. Check before parsing anything.
  virtual bool VerifyWebhook(const WebhookRequest& request) const = 0;
  /// A verified webhook → CallEvent.
  virtual Result<CallEvent> ParseWebhook(const WebhookRequest& request) const = 0;
  /// The `start` frame of this carrier's media WebSocket (see media_stream.hpp).
  Result<MediaStreamStart> ParseMediaStart(std::string_view frame) const {
    return ParseMediaStreamStart(kind(), frame);
  }
};

/// The kRateLimited error a carrier answered, carrying when to retry.
Error RateLimitedError(std::string_view provider, int retry_after_seconds);
/// The retry-after seconds carried by a kRateLimited error from RateLimitedError.
std::optional<int> RetryAfterSeconds(const Error& error);

}  // namespace clozit::telephony
