#include "telephony/call_event.hpp"

#include <charconv>

#include <nlohmann/json.hpp>

namespace clozit::telephony {
namespace {

std::optional<int64_t> ParseInt(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string Param(const std::multimap<std::string, std::string>& params, const std::string& name) {
  auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

AnsweredBy TwilioAnsweredBy(std::string_view value) {
  if (value == "human") return AnsweredBy::kHuman;
  if (value.starts_with("machine")) return AnsweredBy::kMachine;
  if (value == "fax") return AnsweredBy::kFax;
  return AnsweredBy::kUnknown;
}

// "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)". Hand-written: date::parse trips GCC 12's
// -Wmaybe-uninitialized at -O3.
std::optional<TimePoint> ParseIso8601(const std::string& text) {
  std::string_view rest = text;
  auto number = [&rest](size_t digits, int& out) {
    if (rest.size() < digits) return false;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + digits, out);
    if (ec != std::errc() || end != rest.data() + digits) return false;
    rest.remove_prefix(digits);
    return true;
  };
  auto literal = [&rest](char c) {
    if (rest.empty() || rest.front() != c) return false;
    rest.remove_prefix(1);
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!number(4, year) || !literal('-') || !number(2, month) || !literal('-') || !number(2, day) ||
      !(literal('T') || literal('t') || literal(' ')) || !number(2, hour) || !literal(':') || !number(2, minute) ||
      !literal(':') || !number(2, second)) {
    return std::nullopt;
  }
  int64_t micros = 0;
  if (literal('.')) {
    int64_t scale = 100'000;
    size_t digits = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      micros += (rest.front() - '0') * scale;
      scale /= 10;
      rest.remove_prefix(1);
      ++digits;
    }
    if (digits == 0) return std::nullopt;
  }
  int offset_minutes = 0;
  if (!(literal('Z') || literal('z'))) {
    int sign = literal('+') ? 1 : literal('-') ? -1 : 0;
    int offset_hours = 0, offset_mins = 0;
    if (sign == 0 || !number(2, offset_hours) || !literal(':') || !number(2, offset_mins)) return std::nullopt;
    offset_minutes = sign * (offset_hours * 60 + offset_mins);
  }
  if (!rest.empty()) return std::nullopt;
  std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                   std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  return TimePoint(std::chrono::sys_days(date)) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         std::chrono::seconds(second) + std::chrono::microseconds(micros) - std::chrono::minutes(offset_minutes);
}

CallOutcome TelnyxOutcome(std::string_view cause) {
  if (cause == "normal_clearing") return CallOutcome::kCompleted;
  if (cause == "user_busy") return CallOutcome::kBusy;
  if (cause == "timeout" || cause == "no_answer") return CallOutcome::kNoAnswer;
  if (cause == "originator_cancel") return CallOutcome::kCanceled;
  return CallOutcome::kFailed;  // call_rejected, not_found, unspecified, time_limit handled below
}

std::string JsonString(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string_view ProviderName(ProviderKind provider) { return provider == ProviderKind::kTwilio ? "twilio" : "telnyx"; }

std::string_view KindName(CallEventKind kind) {
  switch (kind) {
    case CallEventKind::kInitiated:
      return "initiated";
    case CallEventKind::kRinging:
      return "ringing";
    case CallEventKind::kAnswered:
      return "answered";
    case CallEventKind::kMachineDetection:
      return "machine_detection";
    case CallEventKind::kEnded:
      return "ended";
  }
  return "initiated";
}

std::string_view OutcomeName(CallOutcome outcome) {
  switch (outcome) {
    case CallOutcome::kNone:
      return "none";
    case CallOutcome::kCompleted:
      return "completed";
    case CallOutcome::kBusy:
      return "busy";
    case CallOutcome::kNoAnswer:
      return "no_answer";
    case CallOutcome::kFailed:
      return "failed";
    case CallOutcome::kCanceled:
      return "canceled";
  }
  return "none";
}

Result<CallEvent> ParseTwilioStatusCallback(const std::multimap<std::string, std::string>& params) {
  CallEvent event;
  event.provider = ProviderKind::kTwilio;
  event.call_id = Param(params, "CallSid");
  if (event.call_id.size() != 34 || !event.call_id.starts_with("CA")) {
    return Error::InvalidArgument("CallSid", "missing or malformed CallSid");
  }
  std::string status = Param(params, "CallStatus");
  std::string answered_by = Param(params, "AnsweredBy");
  if (status.empty() && !answered_by.empty()) {
    event.kind = CallEventKind::kMachineDetection;  // asynchronous AMD callback
  } else if (status == "queued" || status == "initiated") {
    event.kind = CallEventKind::kInitiated;
  } else if (status == "ringing") {
    event.kind = CallEventKind::kRinging;
  } else if (status == "in-progress" || status == "answered") {
    event.kind = CallEventKind::kAnswered;
  } else if (status == "completed" || status == "busy" || status == "no-answer" || status == "failed" ||
             status == "canceled") {
    event.kind = CallEventKind::kEnded;
    event.outcome = status == "completed"   ? CallOutcome::kCompleted
                    : status == "busy"      ? CallOutcome::kBusy
                    : status == "no-answer" ? CallOutcome::kNoAnswer
                    : status == "failed"    ? CallOutcome::kFailed
                                            : CallOutcome::kCanceled;
  } else {
    return Error::InvalidArgument("CallStatus", "unknown CallStatus");
  }
  event.answered_by = TwilioAnsweredBy(answered_by);
  event.detail = answered_by;
  event.sequence = ParseInt(Param(params, "SequenceNumber"));
  event.duration_seconds = ParseInt(Param(params, "CallDuration"));
  event.event_id = event.call_id + ":" + (status.empty() ? "amd" : status) + ":" +
                   (event.sequence ? std::to_string(*event.sequence) : std::string("-"));
  return event;
}

Result<CallEvent> ParseTelnyxWebhook(std::string_view body) {
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return Error::InvalidArgument("body", "not a JSON object");
  auto data_it = json.find("data");
  if (data_it == json.end() || !data_it->is_object()) return Error::InvalidArgument("data", "missing data");
  const auto& data = *data_it;
  auto payload_it = data.find("payload");
  if (payload_it == data.end() || !payload_it->is_object())
    return Error::InvalidArgument("data.payload", "missing payload");
  const auto& payload = *payload_it;

  CallEvent event;
  event.provider = ProviderKind::kTelnyx;
  event.event_id = JsonString(data, "id");
  event.call_id = JsonString(payload, "call_control_id");
  if (event.event_id.empty()) return Error::InvalidArgument("data.id", "missing event id");
  if (event.call_id.empty()) return Error::InvalidArgument("data.payload.call_control_id", "missing call_control_id");
  event.client_state = JsonString(payload, "client_state");
  event.occurred_at = ParseIso8601(JsonString(data, "occurred_at"));

  std::string type = JsonString(data, "event_type");
  if (type == "call.initiated") {
    event.kind = CallEventKind::kInitiated;
  } else if (type == "call.answered") {
    event.kind = CallEventKind::kAnswered;
  } else if (type == "call.machine.detection.ended" || type == "call.machine.premium.detection.ended") {
    event.kind = CallEventKind::kMachineDetection;
    event.detail = JsonString(payload, "result");
    event.answered_by = event.detail.starts_with("human") ? AnsweredBy::kHuman
                        : event.detail == "machine"       ? AnsweredBy::kMachine
                        : event.detail == "fax_detected"  ? AnsweredBy::kFax
                                                          : AnsweredBy::kUnknown;
  } else if (type == "call.machine.greeting.ended" || type == "call.machine.premium.greeting.ended") {
    event.kind = CallEventKind::kMachineDetection;
    event.answered_by = AnsweredBy::kMachine;
    event.detail = JsonString(payload, "result");
  } else if (type == "call.hangup") {
    event.kind = CallEventKind::kEnded;
    event.detail = JsonString(payload, "hangup_cause");
    event.outcome = event.detail == "time_limit" ? CallOutcome::kCompleted : TelnyxOutcome(event.detail);
    auto start = ParseIso8601(JsonString(payload, "start_time"));
    auto end = ParseIso8601(JsonString(payload, "end_time"));
    if (start && end && *end >= *start) {
      event.duration_seconds = std::chrono::duration_cast<std::chrono::seconds>(*end - *start).count();
    }
  } else {
    return Error::InvalidArgument("data.event_type", "unhandled event type");
  }
  return event;
}

}  // namespace clozit::telephony
