// The hot path of a media stream: the carriers' `media` frames (one per call
// every 20 ms each way) read and written without a JSON tree.
//
// ScanMediaFrame accepts only a strict subset of JSON — an object of string
// members plus one `media` object of string members, no escapes, no control
// or non-ASCII bytes — and says "not mine" for everything else, which then
// goes to the full parser. So it never accepts a frame the full parser would
// read differently; it may only decline. Pure functions; thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace clozit::telephony::media::detail {

/// Views into the scanned frame.
struct MediaFrameView {
  std::string_view track;    // empty when absent
  std::string_view payload;  // base64 µ-law
};

/// True when `frame` is a `media` event of the fixed shape; false means "use the full parser".
bool ScanMediaFrame(std::string_view frame, MediaFrameView& out);

/// Standard base64 → bytes into `out` (resized, so its capacity is reused). False if not valid base64.
bool DecodeBase64Into(std::string_view text, std::string& out);

/// Appends the outbound `media` frame for `mulaw` to `out`: Twilio's names `streamSid` (when `stream_sid` is
/// not empty), Telnyx's none.
void AppendMediaFrame(std::string_view stream_sid, std::span<const char> mulaw, std::string& out);

}  // namespace clozit::telephony::media::detail
