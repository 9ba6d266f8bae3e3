// libFuzzer target for the carriers' media-stream frames (untrusted WebSocket
// text from whoever holds a media token, or the carrier itself).
//
// Each input is used three ways:
//  (a) as a frame through ScanMediaFrame, the fast path of every `media`
//      frame. The scanner promises it may only decline, never disagree: when
//      it accepts, nlohmann's parser must read the same event, track and
//      payload (the session falls back to that parser for everything the
//      scanner declines, so a disagreement would make a frame mean two things);
//  (b) as a `start` frame for both carriers through ParseMediaStreamStart and
//      IsMediaStreamConnected: an accepted start names what the full parser
//      finds at that carrier's field names, and a start or connected frame is
//      never taken for media;
//  (c) as µ-law bytes written by AppendMediaFrame: the frame we send must
//      scan, parse and decode back to the same bytes;
//  (d) as base64 text: DecodeBase64Into (OpenSSL's lax table codec plus our
//      checks) must accept exactly what libsodium's strict decoder accepts,
//      and decode it to the same bytes — for ASCII text. Bytes from 0x80 up are
//      never base64 and we refuse them; libsodium 1.0.18's constant-time
//      mapping reads some of them as digits (it decodes b4 aa b6 c2 to three
//      bytes: the fuzzer found it), so there it is not the reference.
// media_frame.dict holds the JSON tokens and field names: without it the
// mutator rarely writes an escape inside an otherwise valid frame (a scanner
// made to accept backslashes passed 60 s of fuzzing without the dictionary,
// and failed the payload check within that time with it).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include <sodium.h>
#include <nlohmann/json.hpp>

#include "telephony/media/detail/media_frame.hpp"
#include "telephony/media_stream.hpp"

namespace {

using nlohmann::json;
namespace media = clozit::telephony::media::detail;
using clozit::ErrorCode;
using clozit::telephony::ProviderKind;

void Check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "fuzz_media_frame: check failed: %s\n", what);
  std::abort();
}

/// The string at `key` of `object`, or nullptr when it is absent or not a string.
const std::string* StringAt(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
}

bool Inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void CheckScannerAgreesWithParser(std::string_view frame, const json& parsed) {
  media::MediaFrameView view;
  if (!media::ScanMediaFrame(frame, view)) return;
  Check(Inside(view.track, frame) && Inside(view.payload, frame), "the views point into the frame");
  Check(parsed.is_object(), "an accepted frame is a JSON object");
  const std::string* event = StringAt(parsed, "event");
  Check(event != nullptr && *event == "media", "an accepted frame is a media event");
  Check(parsed.contains("media") && parsed["media"].is_object(), "an accepted frame has a media object");
  const json& inner = parsed["media"];
  const std::string* payload = StringAt(inner, "payload");
  Check(payload != nullptr && *payload == view.payload, "the parser reads the same payload");
  if (inner.contains("track")) {
    const std::string* track = StringAt(inner, "track");
    Check(track != nullptr && *track == view.track, "the parser reads the same track");
  } else {
    Check(view.track.empty(), "no track for the parser, none for the scanner");
  }
  std::string mulaw;
  (void)media::DecodeBase64Into(view.payload, mulaw);
}

void CheckStart(ProviderKind provider, std::string_view frame, const json& parsed) {
  auto start = clozit::telephony::ParseMediaStreamStart(provider, frame);
  if (!start) {
    Check(start.error().code == ErrorCode::kInvalidArgument, "a refused start frame is invalid_argument");
    return;
  }
  const bool twilio = provider == ProviderKind::kTwilio;
  Check(start->provider == provider, "the start names the carrier it was read for");
  Check(!start->stream_id.empty() && !start->call_id.empty() && !start->encoding.empty(),
        "an accepted start names stream, call and encoding");
  const std::string* event = StringAt(parsed, "event");
  Check(event != nullptr && *event == "start", "an accepted start frame is a start event");
  const json& body = parsed["start"];
  const std::string* call_id = StringAt(body, twilio ? "callSid" : "call_control_id");
  Check(call_id != nullptr && *call_id == start->call_id, "the call id is the carrier's field");
  const std::string* stream_id = StringAt(parsed, twilio ? "streamSid" : "stream_id");
  if (stream_id != nullptr && !stream_id->empty()) {
    Check(*stream_id == start->stream_id, "the stream id is the carrier's field");
  }
  media::MediaFrameView view;
  Check(!media::ScanMediaFrame(frame, view), "a start frame is never read as media");
}

void CheckWrittenFrameRoundTrips(std::span<const char> mulaw) {
  for (std::string_view stream_sid : {std::string_view("MZ18ad3ab5a668481ce02b83e7395059f0"), std::string_view()}) {
    std::string frame;
    media::AppendMediaFrame(stream_sid, mulaw, frame);
    media::MediaFrameView view;
    Check(media::ScanMediaFrame(frame, view), "what we write, the scanner reads");
    CheckScannerAgreesWithParser(frame, json::parse(frame, nullptr, false));
    std::string decoded;
    Check(media::DecodeBase64Into(view.payload, decoded), "what we write is base64");
    Check(decoded == std::string_view(mulaw.data(), mulaw.size()), "what we write decodes to what we sent");
  }
}

void CheckBase64AgreesWithLibsodium(std::string_view text) {
  std::string ours;
  if (std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    Check(!media::DecodeBase64Into(text, ours), "base64 with a byte from 0x80 up is refused");
    return;
  }
  std::string strict(text.size() / 4 * 3 + 3, '\0');
  size_t length = 0;
  const bool sodium_ok = sodium_base642bin(reinterpret_cast<unsigned char*>(strict.data()), strict.size(), text.data(),
                                           text.size(), nullptr, &length, nullptr, sodium_base64_VARIANT_ORIGINAL) == 0;
  strict.resize(sodium_ok ? length : 0);
  const bool ours_ok = media::DecodeBase64Into(text, ours);
  Check(ours_ok == sodium_ok, "base64 accepted exactly where libsodium accepts it");
  if (ours_ok) Check(ours == strict, "base64 decoded to libsodium's bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  const json parsed = json::parse(frame, nullptr, false);
  CheckScannerAgreesWithParser(frame, parsed);
  CheckStart(ProviderKind::kTwilio, frame, parsed);
  CheckStart(ProviderKind::kTelnyx, frame, parsed);
  if (clozit::telephony::IsMediaStreamConnected(frame)) {
    media::MediaFrameView view;
    Check(!media::ScanMediaFrame(frame, view), "a connected frame is never read as media");
  }
  // Frames we send carry 20 ms (160 bytes) in practice; longer inputs add nothing but time.
  CheckWrittenFrameRoundTrips(std::span<const char>(frame.data(), std::min<size_t>(size, 4096)));
  CheckBase64AgreesWithLibsodium(frame);
  return 0;
}
