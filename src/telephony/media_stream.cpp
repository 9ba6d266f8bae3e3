#include "telephony/media_stream.hpp"

#include <nlohmann/json.hpp>

namespace clozit::telephony {
namespace {

using nlohmann::json;

std::string Text(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int Number(const json& object, const char* key, int fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int>() : fallback;
}

}  // namespace

bool IsMediaStreamConnected(std::string_view frame) {
  auto message = json::parse(frame, nullptr, false);
  return message.is_object() && Text(message, "event") == "connected";
}

Result<MediaStreamStart> ParseMediaStreamStart(ProviderKind provider, std::string_view frame) {
  auto message = json::parse(frame, nullptr, false);
  if (message.is_discarded() || !message.is_object()) return Error::InvalidArgument("frame", "not a JSON object");
  if (Text(message, "event") != "start") return Error::InvalidArgument("event", "not a start frame");
  auto start_it = message.find("start");
  if (start_it == message.end() || !start_it->is_object()) return Error::InvalidArgument("start", "missing start");
  const json& start = *start_it;
  bool twilio = provider == ProviderKind::kTwilio;
  MediaStreamStart result;
  result.provider = provider;
  result.stream_id = twilio ? Text(message, "streamSid") : Text(message, "stream_id");
  if (result.stream_id.empty() && twilio) result.stream_id = Text(start, "streamSid");
  result.call_id = twilio ? Text(start, "callSid") : Text(start, "call_control_id");
  const json format = start.value(twilio ? "mediaFormat" : "media_format", json::object());
  result.encoding = Text(format, "encoding");
  result.sample_rate = Number(format, twilio ? "sampleRate" : "sample_rate", 8000);
  result.channels = Number(format, "channels", 1);
  const json custom = start.value(twilio ? "customParameters" : "custom_parameters", json::object());
  if (custom.is_object()) {
    for (const auto& [key, value] : custom.items())
      if (value.is_string()) result.custom_parameters[key] = value.get<std::string>();
  }
  if (!twilio) result.client_state = Text(start, "client_state");
  if (result.stream_id.empty()) return Error::InvalidArgument("stream_id", "missing stream id");
  if (result.call_id.empty()) return Error::InvalidArgument("call_id", "missing call id");
  if (result.encoding.empty()) return Error::InvalidArgument("media_format", "missing media format");
  return result;
}

}  // namespace clozit::telephony
