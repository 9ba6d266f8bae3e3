// telephony: one vocabulary for what providers tell us about a call.
//
// Twilio status callbacks and Telnyx Call Control webhooks are parsed into
// CallEvent values so the call state machine never sees a provider's wire
// format. Parsing happens only after the request's signature was verified.
// Pure values; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/clock.hpp"
#include "common/result.hpp"

namespace clozit::telephony {

enum class ProviderKind { kTwilio, kTelnyx };
std::string_view ProviderName(ProviderKind provider);

enum class CallEventKind {
  kInitiated,         // the provider accepted the call and is dialling
  kRinging,           // the callee's phone rings (Twilio only)
  kAnswered,          // connected
  kMachineDetection,  // answering-machine detection finished (see answered_by)
  kEnded,             // final; see outcome
};

enum class CallOutcome { kNone, kCompleted, kBusy, kNoAnswer, kFailed, kCanceled };
enum class AnsweredBy { kUnknown, kHuman, kMachine, kFax };

struct CallEvent {
  ProviderKind provider = ProviderKind::kTwilio;
  /// Dedupe key: Telnyx's event id; for Twilio, CallSid + status + sequence number.
  std::string event_id;
  /// Twilio CallSid or Telnyx call_control_id.
  std::string call_id;
  CallEventKind kind = CallEventKind::kInitiated;
  CallOutcome outcome = CallOutcome::kNone;  // set on kEnded
  AnsweredBy answered_by = AnsweredBy::kUnknown;
  std::string detail;               // e.g. Telnyx hangup_cause, Twilio AnsweredBy raw value
  std::optional<int64_t> sequence;  // ordering hint when the provider gives one
  std::optional<int64_t> duration_seconds;
  std::optional<TimePoint> occurred_at;
  std::string client_state;  // Telnyx client_state (base64), echoed back
};

std::string_view KindName(CallEventKind kind);
std::string_view OutcomeName(CallOutcome outcome);

/// A Twilio status callback (form parameters, already decoded) → CallEvent.
Result<CallEvent> ParseTwilioStatusCallback(const std::multimap<std::string, std::string>& params);
/// A Telnyx Call Control webhook body (JSON) → CallEvent. Unknown event types are kInvalidArgument.
Result<CallEvent> ParseTelnyxWebhook(std::string_view body);

}  // namespace clozit::telephony
