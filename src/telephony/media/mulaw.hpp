// telephony/media: G.711 µ-law, the codec of both carriers' media streams
// (Twilio `audio/x-mulaw`, Telnyx `PCMU`, 8 kHz mono).
//
// Written from ITU-T G.711 (the segment/mantissa form with bias 0x84 that the
// standard's tables describe): 14-bit magnitude + sign, 8 segments, codes
// transmitted inverted. Decoding is a 256-entry table; encoding clips at
// ±32635. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace clozit::telephony::media {

/// Samples per 20 ms frame at 8 kHz: the frame size both carriers use.
inline constexpr size_t kSamplesPerFrame = 160;

uint8_t MulawEncode(int16_t sample);
int16_t MulawDecode(uint8_t code);

/// µ-law bytes → 16-bit PCM (appended to `out`).
void MulawDecode(std::string_view codes, std::vector<int16_t>& out);
/// 16-bit PCM → µ-law bytes.
std::string MulawEncode(std::span<const int16_t> samples);
/// The same into `out`, which has room for samples.size() bytes.
void MulawEncode(std::span<const int16_t> samples, char* out);

}  // namespace clozit::telephony::media
