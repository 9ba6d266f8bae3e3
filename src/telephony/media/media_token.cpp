#include "telephony/media/media_token.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>

#include "common/encoding.hpp"

namespace clozit::telephony::media {

MediaTokens::MediaTokens(std::string secret, const Clock& clock) : secret_(std::move(secret)), clock_(clock) {}

std::string MediaTokens::Mac(std::string_view call_id, std::string_view expiry) const {
  std::string message = std::string(call_id) + "." + std::string(expiry);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  return Base64Url(std::span<const uint8_t>(digest, length));
}

std::string MediaTokens::Issue(std::string_view call_id, std::chrono::seconds ttl) const {
  auto expiry = std::chrono::duration_cast<std::chrono::seconds>((clock_.Now() + ttl).time_since_epoch()).count();
  std::string expiry_text = std::to_string(expiry);
  return std::string(call_id) + "." + expiry_text + "." + Mac(call_id, expiry_text);
}

Result<std::string> MediaTokens::Verify(std::string_view token) const {
  auto refuse = [](const char* why) { return Error::Make(ErrorCode::kUnauthenticated, why, "token"); };
  auto mac_dot = token.rfind('.');
  if (mac_dot == std::string_view::npos || mac_dot == 0) return refuse("malformed media token");
  auto expiry_dot = token.rfind('.', mac_dot - 1);
  if (expiry_dot == std::string_view::npos || expiry_dot == 0) return refuse("malformed media token");
  std::string_view call_id = token.substr(0, expiry_dot);
  std::string_view expiry_text = token.substr(expiry_dot + 1, mac_dot - expiry_dot - 1);
  std::string_view mac = token.substr(mac_dot + 1);
  int64_t expiry = 0;
  auto [end, ec] = std::from_chars(expiry_text.data(), expiry_text.data() + expiry_text.size(), expiry);
  if (ec != std::errc() || end != expiry_text.data() + expiry_text.size()) return refuse("malformed media token");
  if (!ConstantTimeEquals(mac, Mac(call_id, expiry_text))) return refuse("media token signature mismatch");
  auto now = std::chrono::duration_cast<std::chrono::seconds>(clock_.Now().time_since_epoch()).count();
  if (now > expiry) return refuse("media token expired");
  return std::string(call_id);
}

}  // namespace clozit::telephony::media
