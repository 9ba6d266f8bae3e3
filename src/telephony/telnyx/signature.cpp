#include "telephony/telnyx/signature.hpp"

#include <sodium.h>

#include <charconv>
#include <string>
#include <vector>

namespace clozit::telephony::telnyx {
namespace {
bool DecodeBase64(std::string_view text, std::vector<unsigned char>& out, size_t expected) {
  out.assign(expected + 3, 0);
  size_t length = 0;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return false;
  }
  out.resize(length);
  return length == expected;
}
}  // namespace

bool VerifyWebhook(std::string_view public_key_base64, std::string_view timestamp, std::string_view body,
                   std::string_view signature_base64, TimePoint now, std::chrono::seconds tolerance) {
  if (sodium_init() < 0) return false;
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), seconds);
  if (timestamp.empty() || ec != std::errc() || end != timestamp.data() + timestamp.size()) return false;
  int64_t now_seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (now_seconds - seconds > tolerance.count() || seconds - now_seconds > tolerance.count()) return false;

  std::vector<unsigned char> key;
  std::vector<unsigned char> signature;
  if (!DecodeBase64(public_key_base64, key, crypto_sign_PUBLICKEYBYTES)) return false;
  if (!DecodeBase64(signature_base64, signature, crypto_sign_BYTES)) return false;
  std::string message(timestamp);
  message += '|';
  message.append(body);
  return crypto_sign_verify_detached(signature.data(), reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), key.data()) == 0;
}

}  // namespace clozit::telephony::telnyx
