// telephony: the handshake of a carrier media stream (Twilio Media Streams,
// Telnyx media streaming) — the `start` frame that says which call and
// stream a WebSocket carries and in which audio format.
//
// The WebSocket endpoints (later work) read text frames, skip `connected`,
// and hand the `start` frame here before accepting media. Field names follow
// providers.md: camelCase for Twilio, snake_case for Telnyx. Pure functions;
// thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "telephony/call_event.hpp"

namespace clozit::telephony {

struct MediaStreamStart {
  ProviderKind provider = ProviderKind::kTwilio;
  std::string stream_id;  // Twilio streamSid, Telnyx stream_id
  std::string call_id;    // Twilio callSid, Telnyx call_control_id
  std::string encoding;   // "audio/x-mulaw" (Twilio) or "PCMU" (Telnyx)
  int sample_rate = 8000;
  int channels = 1;
  std::map<std::string, std::string> custom_parameters;
  std::string client_state;  // Telnyx only (base64)
};

/// True for the `connected` frame that precedes `start`.
bool IsMediaStreamConnected(std::string_view frame);
/// The `start` frame → MediaStreamStart; anything else is kInvalidArgument.
Result<MediaStreamStart> ParseMediaStreamStart(ProviderKind provider, std::string_view frame);

}  // namespace clozit::telephony
