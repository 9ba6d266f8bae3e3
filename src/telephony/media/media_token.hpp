// telephony/media: per-call media tokens — how a media WebSocket proves which
// call it belongs to.
//
// A token is `<call id>.<expiry, unix seconds>.<HMAC-SHA256 over both, base64url>`
// with a platform secret. It is minted when the call is placed (before the
// carrier has assigned its own call id, hence Clozit's call id), travels in
// the call instructions — Twilio `<Stream><Parameter name="token">`, arriving in
// `start.customParameters`; Telnyx `stream_url?token=` — and is checked when the
// stream opens. Thread-safe (immutable after construction).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/result.hpp"

namespace clozit::telephony::media {

class MediaTokens {
 public:
  /// `secret`: at least 16 bytes.
  MediaTokens(std::string secret, const Clock& clock);

  /// A token for `call_id` (no '.' in it) valid for `ttl` from now.
  std::string Issue(std::string_view call_id, std::chrono::seconds ttl) const;
  /// The call id the token was issued for. kUnauthenticated (field "token") when malformed, forged or expired.
  Result<std::string> Verify(std::string_view token) const;

 private:
  std::string Mac(std::string_view call_id, std::string_view expiry) const;
  std::string secret_;
  const Clock& clock_;
};

}  // namespace clozit::telephony::media
