// telephony/telnyx: the telnyx-signature-ed25519 check.
//
// Ed25519 over `timestamp + "|" + raw body`, byte for byte, with the
// account's public key; the timestamp must be within the tolerance of now
// (300 s), so a captured webhook cannot be replayed later. Pure functions.
#pragma once

#include <chrono>
#include <string_view>

#include "common/clock.hpp"

namespace clozit::telephony::telnyx {

constexpr std::chrono::seconds kTimestampTolerance{300};

/// `public_key_base64` is the 32-byte key as Telnyx shows it; `signature_base64` the header value;
/// `timestamp` the telnyx-timestamp header (Unix seconds).
bool VerifyWebhook(std::string_view public_key_base64, std::string_view timestamp, std::string_view body,
                   std::string_view signature_base64, TimePoint now,
                   std::chrono::seconds tolerance = kTimestampTolerance);

}  // namespace clozit::telephony::telnyx
